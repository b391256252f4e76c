"""The tolerance model: how far a correct engine's value and gradients may be from exact.

A fixed rtol either misses small bugs or rejects correct but ill-conditioned
results, so the bound is derived from the graph itself, from two estimates
of how far a correct float64 (or float32) engine can drift:

- a first-order *running error bound*: every op result, every local
  derivative, every product and every sum of the backward pass may carry a
  few roundings (each op row's ``float_roundings``), and their effects are
  propagated with absolute values, forward for the value and backward for
  the gradients, through each op by its largest slope over its operands'
  error intervals (so an operand known to a relative error near 1 is
  bounded, not extrapolated). A local derivative's error bound is the larger
  of two valid ways to compute it: from the operands (tanh' = sech^2 x, the
  row's ``variation``) or from the op's rounded output (tanh' = 1 - t^2,
  sigmoid' = s(1 - s), exp' = out, pow' = c*out/x, div' = -out/y: the row's
  ``output_form`` and ``output_error``), each fed with its inputs' error
  bounds;
- *Monte Carlo arithmetic*: :data:`MCA_RUNS` float evaluations of value and
  gradients where every one of those results is moved by a random relative
  error of up to two unit roundoffs, alternating the two derivative forms;
  the largest deviation from the exact (or the unperturbed) result is kept.
  It covers what a first-order bound cannot see, such as a relu whose input
  straddles 0.

The bound is :data:`SAFETY` times the larger of the two. docs/tolerance.md
states the model and the measured false-positive and detection rates.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gradcert.graph import DomainError, Graph, canonical
from gradcert.ops import OPS, Op
from gradcert.oracle.exact import Exact, Unresolved
from gradcert.oracle.metrics import ulp_distance

__all__ = [
    "MCA_RUNS",
    "SAFETY",
    "Refused",
    "UNIT_ROUNDOFF",
    "Tolerance",
    "Violation",
    "tolerance",
    "verdict",
]

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}
"""Half an ulp of 1, relative: the error of one correctly rounded operation."""

UNDERFLOW = {"float64": 2.0**-1074, "float32": 2.0**-149}
"""The smallest subnormal: more than the absolute error one rounding may add near 0."""

_TINY = {"float64": 2.0**-1022, "float32": 2.0**-126}  # the smallest normal number

SAFETY = 8.0
"""The factor between the model's estimate and the bound an engine is held to."""

MCA_RUNS = 4
"""Monte Carlo runs per graph (half with derivatives in output form)."""

CHAIN_ROUNDINGS = 2
"""Roundings per backward term ``grad * local derivative`` (a product, and slack)."""

_MODEL = "running-error+mca"
_FIRST_ORDER = "running-error"  # the Monte Carlo runs were not needed (see verdict)


class Refused(ArithmeticError):
    """A result the model cannot judge: its bound is infinite or undefined (an
    intermediate overflowed, or an operand sits at a pole) and the result is not an
    overflow every correct engine has. Never a pass: the caller reports it."""


@dataclass(frozen=True)
class Violation:
    """One value or gradient of an engine outside its bound.

    ``leaf`` indexes ``graph.leaves`` (None for the value); ``expected`` is
    the exact result rounded to float64; ``ulps`` the distance between the
    two in units in the last place of the checked dtype; ``error`` the
    distance of ``actual`` from the exact (unrounded) result.
    """

    what: str
    leaf: int | None
    expected: float
    actual: float
    bound: float
    ulps: float
    error: float = math.nan

    def __str__(self) -> str:
        where = "value" if self.leaf is None else f"d out / d leaf {self.leaf}"
        return (f"{where}: got {self.actual!r}, exact {self.expected!r}, "
                f"off by {self.error:.3g} > bound {self.bound:.3g} ({self.ulps:.3g} ulps)")


@dataclass(frozen=True)
class Tolerance:
    """Absolute bounds for a graph's value and per-leaf gradients.

    ``value``/``grad`` are the bounds (``SAFETY`` times the larger of
    ``linear`` and ``mca``); ``linear_*`` the first-order running error
    bound, ``mca_*`` the Monte Carlo spread, kept to show where a bound came
    from.
    """

    value: float
    grad: tuple[float, ...]
    model: str
    safety: float
    dtype: str
    linear_value: float
    linear_grad: tuple[float, ...]
    mca_value: float
    mca_grad: tuple[float, ...]
    runs: int

    def describe(self) -> str:
        """One line: the model, its factor, and the bounds it gave."""
        grads = ", ".join(f"{g:.2g}" for g in self.grad)
        if self.model == _FIRST_ORDER:
            how = (f"{self.safety:g} x the first-order running error bound (every result "
                   f"inside it: the Monte Carlo runs, which can only widen it, not needed)")
        else:
            how = (f"{self.safety:g} x max(first-order running error bound, spread of "
                   f"{self.runs} Monte Carlo runs)")
        return f"{self.dtype} tolerance ({self.model}): {how}; value +-{self.value:.2g}, " \
               f"grads +-[{grads}]"

    def check(self, value: float, grads: Sequence[float], exact: Any) -> list[Violation]:
        """The engine's results that fall outside the bounds around ``exact``.

        ``exact`` is the oracle's result (``.value``, ``.grad``, and their
        float64 roundings ``.value_f64``, ``.grad_f64``). A NaN or infinite
        result where the exact one is finite is a violation, with two exceptions
        for non-finite bounds: an engine's infinity where an exact intermediate
        (``.values_f64``) is beyond the float64 range and a plain float64
        evaluation of ``.graph`` gives the same infinity is agreement (the overflow
        is one every correct engine has), any other infinity or NaN stays a
        violation, and a finite result under an infinite or NaN bound raises
        :class:`Refused`, with the reason, since no bound means no judgement.

        >>> from types import SimpleNamespace
        >>> from gradcert.graph import trace
        >>> t = tolerance(trace(lambda x: x * x, [3.0]))
        >>> ex = SimpleNamespace(value=9.0, grad=(6.0,), value_f64=9.0, grad_f64=(6.0,))
        >>> t.check(9.0, [6.0], ex), [v.what for v in t.check(9.0, [6.01], ex)]
        ([], ['grad'])
        """
        grads = list(grads)
        if len(grads) != len(self.grad):
            raise ValueError(f"check: {len(grads)} gradients given for "
                             f"{len(self.grad)} leaves")
        exact_value: Any
        exact_grads: Sequence[Any]
        f64: Sequence[float]
        mine = isinstance(exact, Exact)  # then its distances to ours, without mpfs
        exact_grads = exact.grad_f64 if mine else list(exact.grad)
        if len(exact_grads) != len(self.grad):
            raise ValueError(f"check: the exact result has {len(exact_grads)} gradients "
                             f"for {len(self.grad)} leaves (is it of another graph?)")
        if mine:
            f64 = exact_grads
            d_value, d_grads = exact.distances(_float_or_none(value),
                                               [_float_or_none(g) for g in grads])
            exact_value = None
        else:
            exact_value = exact.value
            d_value, d_grads = None, [None] * len(grads)
            f64 = getattr(exact, "grad_f64", None) or [float(g) for g in exact_grads]
        out: list[Violation] = []
        ref: list[tuple[float, list[float]] | None] = []  # the float64 run, once needed

        def overflow_agrees(actual: Any, leaf: int | None, expected: float) -> bool:
            actual = _number(actual, "value" if leaf is None else f"grad {leaf}")
            if (not math.isinf(actual) or self.dtype != "float64"
                    or math.copysign(1.0, actual) != math.copysign(1.0, expected)):
                return False  # an infinity of the exact result's sign, or no agreement
            try:
                values = getattr(exact, "values_f64", ())
            except Unresolved as e:  # (the oracle certifies them when first read)
                raise Refused(f"{'value' if leaf is None else f'd out / d leaf {leaf}'}: "
                              f"{actual!r} may be an overflow every correct engine has, but "
                              f"the oracle cannot certify the intermediates ({e})") from None
            if not any(math.isinf(v) for v in values):
                return False  # no exact intermediate is beyond float64
            graph = getattr(exact, "graph", None)
            if not isinstance(graph, Graph):
                return False
            if not ref:
                ref.append(_run(graph, canonical(graph), _facts(graph), None, self.dtype_u,
                                output_form=False))
            if ref[0] is None:
                return False
            got = ref[0][0] if leaf is None else ref[0][1][leaf]
            return got == actual

        def refuse(what: str, actual: Any, expected: float, bound: float) -> None:
            raise Refused(f"{what}: the bound is {bound!r} (an intermediate overflows or an "
                          f"operand sits at a pole), so {_number(actual, what)!r} against "
                          f"exact {expected!r} cannot be judged")

        results: list[tuple[str, int | None, Any, Any, float, float]] = [
            ("value", None, value, d_value, _f64(exact, "value_f64", exact_value), self.value)]
        results += [("grad", i, g, d, float(ef), b) for i, (g, d, ef, b)
                    in enumerate(zip(grads, d_grads, f64, self.grad, strict=True))]
        for what, leaf, actual, diff, expected, bound in results:
            if not math.isfinite(bound) and math.isfinite(expected):
                if math.isfinite(_number(actual, what)):  # a number no bound can judge
                    refuse("value" if leaf is None else f"d out / d leaf {leaf}", actual,
                           expected, bound)
                if overflow_agrees(actual, leaf, expected):
                    continue
            v = self._violation(what, leaf, actual, exact, expected, bound, diff)
            if v:
                out.append(v)
        return out

    @property
    def dtype_u(self) -> float:
        """The unit roundoff of the checked dtype."""
        return UNIT_ROUNDOFF[self.dtype]

    def _violation(self, what: str, leaf: int | None, actual: Any, exact: Any,
                   expected: float, bound: float, diff: Any) -> Violation | None:
        """``diff`` is |exact - actual| when known, else it comes from ``exact``'s mpf."""
        actual = _number(actual, what if leaf is None else f"{what} {leaf}")
        if not math.isfinite(expected):
            bad = actual != expected  # overflow: a correct engine overflows the same way
            error = 0.0 if actual == expected else math.inf
        elif not math.isfinite(actual):
            bad, error = True, math.inf
        else:
            if diff is None:
                diff = abs((exact.value if leaf is None else exact.grad[leaf]) - actual)
            bad, error = diff > bound, float(diff)
        if not bad:
            return None
        return Violation(what, leaf, expected, actual, bound,
                         ulp_distance(actual, expected, self.dtype), error)


def _float_or_none(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _number(x: Any, what: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"check: {what} is not a number: {x!r}") from e


def _f64(exact: Any, name: str, fallback: Any) -> float:
    v = getattr(exact, name, None)
    return float(fallback) if v is None else float(v)


# ---------------------------------------------------------------------------
# Error bounds of local derivatives, from the op rows: how far the errors of an
# op's inputs move its local derivative as a correct engine may compute it,
# from the operands (the row's ``variation``: the derivative's own slope at its
# largest over the inputs' error intervals, a mean-value bound, so a relative
# error near or beyond 1 is bounded too; inf where an interval reaches a pole)
# or from the rounded output (``output_error``). The derivative's own
# roundings (``float_roundings``) come on top.


def _check_dtype(dtype: str) -> float:
    try:
        return UNIT_ROUNDOFF[dtype]
    except KeyError:
        raise ValueError(f"tolerance: dtype must be one of {sorted(UNIT_ROUNDOFF)}, "
                         f"got {dtype!r}") from None


def _clean(x: float) -> float:
    return math.inf if x != x else x  # an undefined bound is no bound


def _to_dtype_error(x: float, dtype: str, u: float) -> float:
    """The error of converting the float64 ``x`` to ``dtype`` (an input or a constant)."""
    if dtype == "float64":
        return 0.0
    try:
        if struct.unpack("<f", struct.pack("<f", x))[0] == x:
            return 0.0
    except OverflowError:
        return math.inf
    return u * abs(x) + UNDERFLOW[dtype]


def _times(f: float, k: float) -> float:
    """f * k for an error bound f, with 0 * inf = 0 (no error stays no error)."""
    return f * k if f else 0.0


_LINEAR, _KINK, _SMOOTH = 0, 1, 2


class _Facts(NamedTuple):
    """What the passes read of one op's row, looked up once per graph."""

    op: Op
    arity: int
    eval: Callable[..., Any]
    domain: Callable[..., str | None] | None  # None: defined everywhere
    rounds: tuple[float, float] | None  # float_roundings; None: they depend on the operands
    copies: bool  # the row's ``copies``: no product, exact below the normal range
    kind: int  # _LINEAR (constant partials: no variation), _KINK or _SMOOTH
    variation: Callable[..., tuple[Any, ...]]
    output_form: Callable[..., Any] | None
    output_error: Callable[..., tuple[Any, ...]] | None  # with output_form only
    switch: Callable[..., Any] | None
    jump: float
    same_copy: bool  # op(a, a) is a's float or 0 exactly (the row's ``same``)
    const_effect: Callable[..., tuple[float, float]] | None
    zeros: tuple[float, ...]  # no move, per partial
    fast: bool  # linear, one or two operands and the constant of a unary op only, fixed
    # roundings, no domain, no output form: the first-order pass's short way


class _FactsOf(dict[str, _Facts]):
    """Each op's facts, looked up in the op table the first time a pass asks."""

    def __missing__(self, name: str) -> _Facts:
        op = OPS[name]
        both = op.output_form is not None and op.output_error is not None
        got = self[name] = _Facts(
            op, op.arity, op.eval, op.domain if op.has_domain else None,
            None if callable(op.float_roundings) else op.float_roundings, op.copies,
            {"linear": _LINEAR, "kink": _KINK}.get(op.kind, _SMOOTH), op.variation,
            op.output_form, op.output_error if both else None, op.switch, op.jump,
            op.same in ("zero", "first"), op.const_effect, (0.0,) * op.arity,
            op.kind == "linear" and not callable(op.float_roundings) and not op.has_domain
            and not both and (op.arity == 2 and not op.has_const
                              or op.arity == 1 and op.same is None))
        return got


def _facts(graph: Graph) -> dict[str, _Facts]:
    """The facts of the ops of ``graph``, as its passes ask for them."""
    return _FactsOf()


def _floor(x: float, xs: Sequence[float], fx: Sequence[float], eta: float,
           tiny: float) -> float:
    """The underflow error of a product or function value x, unless a factor is
    exactly 0 (its value 0 and its error bound 0; the constant has none)."""
    if abs(x) >= tiny:
        return 0.0
    exact_zero = any(not v and not e for v, e in zip(xs, (*fx, 0.0), strict=False))
    return 0.0 if exact_zero else eta


class _Linear(NamedTuple):
    """The first-order pass: the bounds, and whether a Monte Carlo run stays finite
    wherever they do (see :func:`verdict`)."""

    value: float
    grad: list[float]
    tame: bool


_TAME_REL = 2.0**-10  # an operand of a smooth op known to this, relative
_TAME_MAX = 2.0**960  # and every value, bound and gradient below this


def _linear(graph: Graph, u: float, dtype: str, same: list[int],
            facts: dict[str, _Facts]) -> _Linear:
    """First-order running error bounds of the value and the leaves' gradients.

    Written flat for speed, with the same float operations in the same order as
    the model's statement node by node (tests/tolerance_reference.py, against
    which tests/test_tolerance_passes.py checks it bit for bit): where a term
    is left out here, it is an exact 0 added to a bound."""
    eta, tiny, inf = UNDERFLOW[dtype], _TINY[dtype], math.inf
    rounded = dtype != "float64"  # inputs and constants round too
    nodes = graph.nodes
    n = len(nodes)
    vals: list[float] = [0.0] * n
    fwd = [0.0] * n  # bound on |engine value - exact value|, per node
    parts: list[tuple[float, ...]] = [()] * n
    derr: list[tuple[float, ...]] = [()] * n
    tame = True
    xs: tuple[float, ...]
    fx: tuple[float, ...]
    for i, node in enumerate(nodes):
        c = same[i]
        if c != i:
            vals[i], fwd[i], parts[i], derr[i] = vals[c], fwd[c], parts[c], derr[c]
            continue
        name = node.op
        if name == "leaf":
            v: float = node.value  # type: ignore[assignment]
            vals[i] = v
            if rounded:
                fwd[i] = _to_dtype_error(v, dtype, u)
            continue
        fa = facts[name]
        args, const, arity = node.args, node.const, fa.arity
        if fa.fast and not rounded:  # the steps below, less what is 0 for such an op
            rv, rd = fa.rounds  # type: ignore[misc]
            if arity == 1:
                a0 = args[0]
                x0, f0 = vals[a0], fwd[a0]
                xs = (x0,) if const is None else (x0, float(const))
                fx = (f0,)
                try:
                    out, p = fa.eval(math, *xs)
                except OverflowError:
                    out, p = inf, (inf,)
                ao = abs(out)
                f = rv * u * ao
                if not fa.copies and not ao >= tiny:
                    f += rv * _floor(out, xs, fx, eta, tiny)
                if f0:
                    f += abs(p[0]) * f0
            else:
                a0, a1 = args
                x0, x1, f0, f1 = vals[a0], vals[a1], fwd[a0], fwd[a1]
                try:
                    out, p = fa.eval(math, x0, x1)
                except OverflowError:
                    out, p = inf, (inf, inf)
                ao = abs(out)
                f = rv * u * ao
                if not fa.copies and not ao >= tiny:
                    f += rv * _floor(out, (x0, x1), (f0, f1), eta, tiny)
                if fa.same_copy and same[a0] == same[a1]:
                    f = 0.0  # a - a: the same float in every engine
                else:
                    if f0:
                        f += abs(p[0]) * f0
                    if f1:
                        f += abs(p[1]) * f1
                xs, fx = (x0, x1), (f0, f1)
            vals[i] = out
            parts[i] = p
            fwd[i] = f if f == f else inf
            derr[i] = tuple(rd * (u * abs(pk) if abs(pk) >= tiny else
                                  u * abs(pk) + _floor(pk, xs, fx, eta, tiny))
                            for pk in p) if rd else fa.zeros
            continue
        if arity == 1:
            xs = (vals[args[0]],) if const is None else \
                (vals[args[0]], float(const))
            fx = (fwd[args[0]],)
        elif arity == 2:
            xs = (vals[args[0]], vals[args[1]]) if const is None else \
                (vals[args[0]], vals[args[1]], float(const))
            fx = (fwd[args[0]], fwd[args[1]])
        else:
            xs = tuple(vals[k] for k in args)
            if const is not None:
                xs = (*xs, float(const))
            fx = tuple(fwd[k] for k in args)
        if fa.domain is not None:
            reason = fa.domain(*xs)
            if reason:
                raise DomainError(i, name, xs, reason)
        try:
            out, p = fa.eval(math, *xs)
        except OverflowError:
            out, p = inf, (inf,) * arity
        vals[i] = out
        parts[i] = p
        rv, rd = fa.rounds or fa.op.rounding_counts(xs, exact=False)
        ao = abs(out)
        f = rv * u * ao
        if not fa.copies and not ao >= tiny:
            f += rv * _floor(out, xs, fx, eta, tiny)
        kind = fa.kind
        inexact = any(fx)
        if kind == _LINEAR:  # constant partials: they do not move
            var: tuple[float, ...] = fa.zeros
            if inexact:
                if fa.same_copy and same[args[0]] == same[args[-1]]:
                    f = 0.0  # a - a: the same float in every engine
                else:
                    for pk, fk in zip(p, fx, strict=True):
                        if fk:
                            f += abs(pk) * fk
            elif fa.same_copy and same[args[0]] == same[args[-1]]:
                f = 0.0
        else:
            uncertain = False
            # per local derivative, how far it moves over its inputs' error intervals
            try:
                if kind == _KINK:
                    spread = sum(fx)
                    uncertain = bool(spread > 0.0 and abs(
                        fa.switch(*xs[:arity])) <= spread)  # type: ignore[misc]
                    var = (fa.jump if uncertain else 0.0,) * arity
                elif not inexact:
                    var = fa.zeros
                else:
                    var = fa.variation(math, xs[:arity], fx, const, out, p)
            except (OverflowError, ZeroDivisionError):
                var = (inf,) * arity
            if fa.same_copy and same[args[0]] == same[args[-1]]:
                f = fx[0]  # max(a, a) is a, with a's error, whichever branch
                var = fa.zeros  # and its partials sum to 1, exactly, into a's adjoint
            elif uncertain:
                f += sum(fx)  # 1-Lipschitz on either side of the kink
            elif inexact:
                # each operand's error moves the value by at most the largest |partial|
                # over the error intervals: |partial here| + how far it moves
                for pk, vk, fk in zip(p, var, fx, strict=True):
                    if fk:
                        f += (abs(pk) + vk) * fk
            if kind == _SMOOTH and tame and inexact:
                # a Monte Carlo run may stray twice as far as these bounds: near a
                # pole or up an exponential that is no longer first order (see verdict)
                tame = all(fk <= _TAME_REL * abs(xk) for fk, xk in zip(fx, xs, strict=False))
        fc = _to_dtype_error(const, dtype, u) if rounded and const is not None else 0.0
        if fc:
            assert fa.const_effect is not None  # every op with a constant has one
            cv, cd = fa.const_effect(xs[0], const, out)
            f += _times(fc, cv)
        if f != f:
            f = inf  # an undefined bound is no bound
        fwd[i] = f
        d = var
        oe = fa.output_error
        if oe is not None:
            try:
                d = tuple(b if b > a else a for a, b in zip(
                    d, oe(math, xs[:arity], fx, const, out, f, u), strict=True))
            except (OverflowError, ZeroDivisionError):
                d = (inf,) * arity
        if fc:
            d = (d[0] + _times(fc, cd),)
        if rd:
            d = tuple(dk + rd * (u * abs(pk) if abs(pk) >= tiny else
                                 u * abs(pk) + _floor(pk, xs, fx, eta, tiny))
                      for dk, pk in zip(d, p, strict=True))
        derr[i] = d
    adj = [0.0] * n  # float adjoints
    err = [0.0] * n  # bound on their error
    tsum = [0.0] * n  # sum of |terms| added into each adjoint
    count = [0] * n
    adj[-1] = 1.0
    chain = CHAIN_ROUNDINGS
    for i in range(n - 1, -1, -1):
        k = count[i]
        if k > 1:
            err[i] += (k - 1) * u * tsum[i]
        a = adj[i]
        e = err[i]
        node = nodes[i]
        if (a == 0.0 and e == 0.0) or node.op == "leaf":
            continue
        aa = abs(a)
        for j, pj, dj in zip(node.args, parts[i], derr[i], strict=False):  # equal lengths
            term = a * pj
            adj[j] += term
            t = abs(term)
            r = chain * (u * t if t >= tiny else
                         u * t + _floor(term, (a, pj), (e, dj), eta, tiny))
            # the grad's error times |partial|, |grad| times the partial's error, the
            # product of the two errors, and the product's roundings
            if e:
                x = err[j] + e * abs(pj) + (aa * dj if aa else 0.0) + e * dj + r
            else:
                x = err[j] + (aa * dj if aa else 0.0) + r
            err[j] = x if x == x else inf
            tsum[j] += t
            count[j] += 1
    grad = [err[i] if err[i] == err[i] else inf for i in graph.leaves]
    # every magnitude far from float64's overflow (a nan or inf fails the test)
    tame = tame and (sum(map(abs, vals)) + sum(fwd) + sum(map(abs, adj)) + sum(err)
                     <= _TAME_MAX)
    return _Linear(fwd[-1], grad, tame)


def _run(graph: Graph, same: list[int], facts: dict[str, _Facts], rng: random.Random | None,
         u: float, output_form: bool,
         inputs_round: bool = False) -> tuple[float, list[float]] | None:
    """One float evaluation of value and gradients, each result moved by <= 2u.

    None when the moves carry an operand out of its op's domain (the log of a
    difference whose sign flips): that run is no valid evaluation. With
    ``inputs_round`` the leaves and constants are moved too (a float32
    engine rounds them). A move is ``x + x * 2u * uniform(-1, 1)``, drawn from
    ``rng`` in node order (random.Random.uniform's arithmetic, inlined).
    """
    nodes = graph.nodes
    n = len(nodes)
    s = 2.0 * u
    draw = rng.random if rng is not None else None
    inf = math.inf
    vals: list[float] = [0.0] * n
    parts: list[tuple[float, ...]] = [()] * n
    for i, node in enumerate(nodes):
        c = same[i]
        if c != i:
            vals[i], parts[i] = vals[c], parts[c]
            continue
        name = node.op
        if name == "leaf":
            v: float = node.value  # type: ignore[assignment]
            if inputs_round and draw is not None:
                v = v + v * s * (-1.0 + 2.0 * draw())
            vals[i] = v
            continue
        fa = facts[name]
        args, const, arity = node.args, node.const, fa.arity
        if arity == 1:
            xs: tuple[float, ...] = (vals[args[0]],) if const is None else \
                (vals[args[0]], float(const))
        else:
            xs = tuple(vals[k] for k in args)
            if const is not None:
                xs = (*xs, float(const))
        if inputs_round and const is not None and draw is not None:
            k = xs[-1]
            xs = (*xs[:-1], k + k * s * (-1.0 + 2.0 * draw()))
        if fa.domain is not None and fa.domain(*xs):
            return None
        try:
            out, p = fa.eval(math, *xs)
            if draw is not None and not (fa.same_copy and same[args[0]] == same[args[-1]]):
                out = out + out * s * (-1.0 + 2.0 * draw())
        except OverflowError:
            out, p = inf, (inf,) * arity
        except (ValueError, ZeroDivisionError):
            return None
        vals[i] = out
        if output_form and fa.output_form is not None:
            try:
                p = fa.output_form(math, *xs, out) or p
            except (OverflowError, ZeroDivisionError):
                p = (inf,) * arity
        if draw is None:
            parts[i] = tuple(map(float, p))
        else:
            moved = []
            for q in p:
                q = float(q)
                moved.append(q + q * s * (-1.0 + 2.0 * draw()))
            parts[i] = tuple(moved)
    adj = [0.0] * n
    adj[-1] = 1.0
    for i in range(n - 1, -1, -1):
        a = adj[i]
        if a == 0.0 or nodes[i].op == "leaf":
            continue
        if draw is None:
            for j, pj in zip(nodes[i].args, parts[i], strict=True):
                adj[j] = adj[j] + a * pj
            continue
        for j, pj in zip(nodes[i].args, parts[i], strict=True):
            t = a * pj
            t = t + t * s * (-1.0 + 2.0 * draw())
            t = adj[j] + t
            adj[j] = t + t * s * (-1.0 + 2.0 * draw())
    return vals[-1], [adj[i] for i in graph.leaves]


def _deviation(run: float, ref: float) -> float:
    if run == ref:
        return 0.0
    return _clean(abs(run - ref)) if math.isfinite(ref) else math.inf


def tolerance(graph: Graph, exact: Any = None, dtype: str = "float64",
              seed: int = 0) -> Tolerance:
    """The bounds within which a correct ``dtype`` engine's value and gradients fall.

    Model: ``SAFETY`` (8) times the larger of a first-order running error
    bound (each op, local derivative, product and sum of the backward pass
    within a few roundings of ``UNIT_ROUNDOFF[dtype]``; local derivatives
    from the operands or from the rounded output, as PyTorch computes tanh'
    = 1 - t^2) and the spread of ``MCA_RUNS`` (4) Monte Carlo runs, each
    result moved by a random relative error of up to 2u. The spread is
    measured from ``exact`` (an oracle result with ``.value_f64`` and
    ``.grad_f64``) when given, else from an unperturbed float evaluation;
    a run whose moves carry an operand out of its op's domain is dropped
    (``runs`` counts those kept). Raises :class:`gradcert.graph.DomainError`
    when the graph's float64 evaluation leaves an op's domain.

    Cost: about 5 to 9 float64 evaluations of the graph, forward and
    backward, by a plain Python engine (docs/measure_tolerance.py measures
    it; :func:`verdict` skips the Monte Carlo runs where they cannot change a
    verdict); linear in its size; no mpmath. Deterministic for a given ``seed``. On 10,000
    random graphs no correct engine (ten of them) fell outside, and 99.5% of
    the relative errors of 1e-9 planted in a local derivative did, counting
    those that reach the output by more than the correct engines' own error
    there (docs/tolerance.md).

    >>> from gradcert.graph import trace
    >>> t = tolerance(trace(lambda x: x.tanh(), [20.0]))
    >>> t.grad[0] > 1.7e-17  # a tanh' of 0, from 1 - t^2 with t = 1.0, passes
    True
    >>> t.grad[0] < 1e-14  # a tanh' of 1.0 fails
    True
    """
    u, same, facts, lin, ref_v, ref_g = _first_order(graph, exact, dtype)
    return _with_runs(graph, same, facts, u, dtype, seed, lin, ref_v, ref_g)


def _first_order(graph: Graph, exact: Any, dtype: str) -> tuple[
        float, list[int], dict[str, _Facts], _Linear, float | None, list[float] | None]:
    """The checks of the arguments, and the first-order pass; the reference of the
    Monte Carlo spread when ``exact`` gives it."""
    if not isinstance(graph, Graph):
        raise TypeError(f"tolerance: expected a gradcert.graph.Graph, "
                        f"got {type(graph).__name__}")
    u = _check_dtype(dtype)
    same = canonical(graph)
    facts = _facts(graph)
    lin = _linear(graph, u, dtype, same, facts)
    if exact is None:
        return u, same, facts, lin, None, None
    other = getattr(exact, "graph", graph)
    if other is not graph and other != graph:
        raise ValueError("tolerance: the exact result is of another graph")
    ref_g = [float(g) for g in exact.grad_f64]
    if len(ref_g) != len(lin.grad):
        raise ValueError(f"tolerance: the exact result has {len(ref_g)} gradients "
                         f"for {len(lin.grad)} leaves (is it of another graph?)")
    return u, same, facts, lin, float(exact.value_f64), ref_g


def _with_runs(graph: Graph, same: list[int], facts: dict[str, _Facts], u: float, dtype: str,
               seed: int, lin: _Linear, ref_v: float | None,
               ref_g: list[float] | None) -> Tolerance:
    """The whole model: the first-order bounds and the Monte Carlo spread."""
    if ref_v is None or ref_g is None:
        ref = _run(graph, same, facts, None, u, output_form=False)
        assert ref is not None  # _linear checked the domain
        ref_v, ref_g = ref
    rng = random.Random(seed)
    mca_v = 0.0
    mca_g = [0.0] * len(lin.grad)
    runs = 0
    for k in range(MCA_RUNS):
        run = _run(graph, same, facts, rng, u, output_form=bool(k % 2),
                   inputs_round=dtype != "float64")
        if run is None:
            continue
        runs += 1
        v, g = run
        mca_v = max(mca_v, _deviation(v, ref_v))
        mca_g = [max(m, _deviation(x, r)) for m, x, r in zip(mca_g, g, ref_g, strict=True)]
    return Tolerance(
        value=SAFETY * max(lin.value, mca_v),
        grad=tuple(SAFETY * max(a, b) for a, b in zip(lin.grad, mca_g, strict=True)),
        model=_MODEL, safety=SAFETY, dtype=dtype,
        linear_value=lin.value, linear_grad=tuple(lin.grad),
        mca_value=mca_v, mca_grad=tuple(mca_g), runs=runs,
    )


def verdict(graph: Graph, exact: Any, value: Any, grads: Sequence[Any], dtype: str = "float64",
            seed: int = 0) -> tuple[Tolerance, list[Violation]]:
    """``tolerance(graph, exact, dtype, seed)`` and its ``check(value, grads, exact)``:
    the same violations, the same :class:`Refused`, with the Monte Carlo runs made
    only where they can change them.

    The bound is ``SAFETY`` times the larger of the first-order bound and the
    runs' spread, so a result inside ``SAFETY`` times the first-order bound
    alone passes whatever the runs give, as long as their spread is finite (an
    infinite bound refuses a finite result instead). The runs are skipped, and
    the first-order :class:`Tolerance` returned (``runs`` 0, its model
    ``running-error``), when every result is inside it and the first-order
    pass shows that no run can overflow: every value, bound and gradient of
    the pass below 2**960 (a run moves each result by at most 2u, so it
    strays at most about twice as far as the bounds say), and every operand of
    a smooth op known to a relative 2**-10 (where the bounds' first order
    holds: no run reaches a pole, or climbs an exponential, that the bounds
    keep clear of). Otherwise the whole model is computed and judges.

    >>> from gradcert.graph import trace
    >>> from gradcert.oracle.exact import exact_graph
    >>> g = trace(lambda x: x.tanh() * 3.0, [0.5])
    >>> ex = exact_graph(g)
    >>> tol, bad = verdict(g, ex, ex.value_f64, ex.grad_f64)
    >>> bad, tol.runs, tol == tolerance(g, ex)
    ([], 0, False)
    >>> tol, bad = verdict(g, ex, ex.value_f64, [1.0])
    >>> [v.what for v in bad], tol.runs, tol == tolerance(g, ex)
    (['grad'], 4, True)
    """
    u, same, facts, lin, ref_v, ref_g = _first_order(graph, exact, dtype)
    if lin.tame:
        first = Tolerance(
            value=SAFETY * lin.value, grad=tuple(SAFETY * g for g in lin.grad),
            model=_FIRST_ORDER, safety=SAFETY, dtype=dtype,
            linear_value=lin.value, linear_grad=tuple(lin.grad),
            mca_value=0.0, mca_grad=(0.0,) * len(lin.grad), runs=0)
        try:
            if not first.check(value, grads, exact):
                return first, []
        except Refused:
            pass  # the whole model decides
    full = _with_runs(graph, same, facts, u, dtype, seed, lin, ref_v, ref_g)
    return full, full.check(value, grads, exact)
