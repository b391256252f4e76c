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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gradcert.graph import DomainError, Graph, canonical, node_operands
from gradcert.ops import OPS, Op
from gradcert.oracle.metrics import ulp_distance

__all__ = [
    "MCA_RUNS",
    "SAFETY",
    "Refused",
    "UNIT_ROUNDOFF",
    "Tolerance",
    "Violation",
    "tolerance",
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
        return (f"{self.dtype} tolerance ({self.model}): {self.safety:g} x max(first-order "
                f"running error bound, spread of {self.runs} Monte Carlo runs); "
                f"value +-{self.value:.2g}, grads +-[{grads}]")

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
        exact_grads = list(exact.grad)
        if len(exact_grads) != len(self.grad):
            raise ValueError(f"check: the exact result has {len(exact_grads)} gradients "
                             f"for {len(self.grad)} leaves (is it of another graph?)")
        f64 = getattr(exact, "grad_f64", None) or [float(g) for g in exact_grads]
        out: list[Violation] = []
        ref: list[tuple[float, list[float]] | None] = []  # the float64 run, once needed

        def overflow_agrees(actual: Any, leaf: int | None, expected: float) -> bool:
            actual = _number(actual, "value" if leaf is None else f"grad {leaf}")
            if (not math.isinf(actual) or self.dtype != "float64"
                    or math.copysign(1.0, actual) != math.copysign(1.0, expected)):
                return False  # an infinity of the exact result's sign, or no agreement
            if not any(math.isinf(v) for v in getattr(exact, "values_f64", ())):
                return False  # no exact intermediate is beyond float64
            graph = getattr(exact, "graph", None)
            if not isinstance(graph, Graph):
                return False
            if not ref:
                ref.append(_run(graph, canonical(graph), None, self.dtype_u, output_form=False))
            if ref[0] is None:
                return False
            got = ref[0][0] if leaf is None else ref[0][1][leaf]
            return got == actual

        def refuse(what: str, actual: Any, expected: float, bound: float) -> None:
            raise Refused(f"{what}: the bound is {bound!r} (an intermediate overflows or an "
                          f"operand sits at a pole), so {_number(actual, what)!r} against "
                          f"exact {expected!r} cannot be judged")

        results: list[tuple[str, int | None, Any, Any, float, float]] = [
            ("value", None, value, exact.value, _f64(exact, "value_f64", exact.value),
             self.value)]
        results += [("grad", i, g, e, float(ef), b) for i, (g, e, ef, b)
                    in enumerate(zip(grads, exact_grads, f64, self.grad, strict=True))]
        for what, leaf, actual, ex_, expected, bound in results:
            if not math.isfinite(bound) and math.isfinite(expected):
                if math.isfinite(_number(actual, what)):  # a number no bound can judge
                    refuse("value" if leaf is None else f"d out / d leaf {leaf}", actual,
                           expected, bound)
                if overflow_agrees(actual, leaf, expected):
                    continue
            v = self._violation(what, leaf, actual, ex_, expected, bound)
            if v:
                out.append(v)
        return out

    @property
    def dtype_u(self) -> float:
        """The unit roundoff of the checked dtype."""
        return UNIT_ROUNDOFF[self.dtype]

    def _violation(self, what: str, leaf: int | None, actual: Any, exact: Any,
                   expected: float, bound: float) -> Violation | None:
        actual = _number(actual, what if leaf is None else f"{what} {leaf}")
        if not math.isfinite(expected):
            bad = actual != expected  # overflow: a correct engine overflows the same way
            error = 0.0 if actual == expected else math.inf
        elif not math.isfinite(actual):
            bad, error = True, math.inf
        else:
            diff = abs(exact - actual)
            bad, error = diff > bound, float(diff)
        if not bad:
            return None
        return Violation(what, leaf, expected, actual, bound,
                         ulp_distance(actual, expected, self.dtype), error)


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


def _times(f: float, k: float) -> float:
    """f * k for an error bound f, with 0 * inf = 0 (no error stays no error)."""
    return f * k if f else 0.0


def _uncertain(op: Op, xs: Sequence[float], fx: Sequence[float]) -> bool:
    """Whether a kink's branch may differ between the inputs and the exact ones."""
    spread = sum(fx[:op.arity])
    return bool(spread > 0.0 and abs(op.switch(*xs[:op.arity])) <= spread)  # type: ignore[misc]


def _variation(op: Op, xs: Sequence[float], c: Any, out: float, fx: Sequence[float],
               ps: Sequence[float]) -> tuple[float, ...]:
    """Per local derivative, how far it moves over its inputs' error intervals."""
    if op.kind == "kink":
        return (op.jump if _uncertain(op, xs, fx) else 0.0,) * op.arity
    if not any(fx):
        return (0.0,) * op.arity
    return op.variation(math, xs[:op.arity], fx, c, out, ps)


# ---------------------------------------------------------------------------
# The model.


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


def _exact_copy(node: Any, same: list[int]) -> bool:
    """``a - a`` and ``max(a, a)``: the same float in every engine, exactly.
    (``a / a`` is not exactly 1 in an engine that divides as ``a * (1/a)``.)"""
    return (OPS[node.op].same in ("zero", "first")
            and same[node.args[0]] == same[node.args[-1]])


def _linear(graph: Graph, u: float, dtype: str,
            same: list[int]) -> tuple[float, list[float]]:
    """First-order running error bounds of the value and the leaves' gradients."""
    eta, tiny = UNDERFLOW[dtype], _TINY[dtype]

    def floor(x: float, factors: Sequence[float], errors: Sequence[float]) -> float:
        """The underflow error of a product or function value x, unless a factor
        is exactly 0 (its value 0 and its error bound 0)."""
        if abs(x) >= tiny:
            return 0.0
        exact_zero = any(not v and not e for v, e in zip(factors, errors, strict=False))
        return 0.0 if exact_zero else eta

    nodes = graph.nodes
    n = len(nodes)
    vals: list[float] = [0.0] * n
    fwd = [0.0] * n  # bound on |engine value - exact value|, per node
    parts: list[tuple[float, ...]] = [()] * n
    derr: list[tuple[float, ...]] = [()] * n
    for i, node in enumerate(nodes):
        c = same[i]
        if c != i:
            vals[i], fwd[i], parts[i], derr[i] = vals[c], fwd[c], parts[c], derr[c]
            continue
        if node.op == "leaf":
            vals[i] = node.value  # type: ignore[assignment]
            fwd[i] = _to_dtype_error(vals[i], dtype, u)
            continue
        op = OPS[node.op]
        xs = node_operands(node, vals)
        reason = op.domain(*xs)
        if reason:
            raise DomainError(i, node.op, xs, reason)
        try:
            out, p = op.eval(math, *xs)
        except OverflowError:
            out, p = math.inf, (math.inf,) * op.arity
        vals[i] = out
        parts[i] = p
        fx = [fwd[a] for a in node.args]
        rv, rd = op.rounding_counts(xs, exact=False)
        f = rv * u * abs(out)
        if not op.copies:
            f += rv * floor(out, xs, (*fx, 0.0))
        try:
            var = _variation(op, xs, node.const, out, fx, p)
        except (OverflowError, ZeroDivisionError):
            var = (math.inf,) * op.arity
        if _exact_copy(node, same):  # a - a is 0; max(a, a) is a, with a's error
            f = 0.0 if op.same == "zero" else fwd[node.args[0]]
            if op.kind == "kink":  # max(a, a): whichever branch, the partials sum to 1,
                var = (0.0,) * op.arity  # exactly, into a's one adjoint
        elif op.kind == "kink" and _uncertain(op, xs, fx):
            f += sum(fx)  # 1-Lipschitz on either side of the kink
        else:
            # each operand's error moves the value by at most the largest |partial|
            # over the error intervals: |partial here| + how far it moves
            for pk, vk, fk in zip(p, var, fx, strict=True):
                if fk:
                    f += (abs(pk) + vk) * fk
        fc = _to_dtype_error(node.const, dtype, u) if node.const is not None else 0.0
        if fc:
            assert op.const_effect is not None  # every op with a constant has one
            cv, cd = op.const_effect(xs[0], node.const, out)  # type: ignore[arg-type]
            f += _times(fc, cv)
        fwd[i] = f = _clean(f)
        d = var
        if op.output_form is not None and op.output_error is not None:
            try:
                d = tuple(max(a, b) for a, b in zip(
                    d, op.output_error(math, xs[:op.arity], fx, node.const, out, f, u),
                    strict=True))
            except (OverflowError, ZeroDivisionError):
                d = (math.inf,) * op.arity
        if fc:
            d = (d[0] + _times(fc, cd),)
        derr[i] = tuple(dk + rd * (u * abs(pk) + floor(pk, xs, (*fx, 0.0))) if rd else dk
                        for dk, pk in zip(d, p, strict=True))
    adj = [0.0] * n  # float adjoints
    err = [0.0] * n  # bound on their error
    tsum = [0.0] * n  # sum of |terms| added into each adjoint
    count = [0] * n
    adj[-1] = 1.0
    for i in range(n - 1, -1, -1):
        node = nodes[i]
        if count[i] > 1:
            err[i] += (count[i] - 1) * u * tsum[i]
        a = adj[i]
        if node.op == "leaf" or (a == 0.0 and err[i] == 0.0):
            continue
        e = err[i]
        for j, pj, dj in zip(node.args, parts[i], derr[i], strict=True):
            term = a * pj
            adj[j] += term
            t = abs(term)
            err[j] = _clean(err[j] + _times(e, abs(pj)) + _times(abs(a), dj) + _times(e, dj)
                            + CHAIN_ROUNDINGS * (u * t + floor(term, (a, pj), (e, dj))))
            tsum[j] += t
            count[j] += 1
    return fwd[-1], [_clean(err[i]) for i in graph.leaves]


def _run(graph: Graph, same: list[int], rng: random.Random | None, u: float,
         output_form: bool, inputs_round: bool = False) -> tuple[float, list[float]] | None:
    """One float evaluation of value and gradients, each result moved by <= 2u.

    None when the moves carry an operand out of its op's domain (the log of a
    difference whose sign flips): that run is no valid evaluation. With
    ``inputs_round`` the leaves and constants are moved too (a float32
    engine rounds them).
    """
    nodes = graph.nodes
    n = len(nodes)
    s = 2.0 * u
    uni = rng.uniform if rng is not None else None

    def jiggle(x: float) -> float:
        return x + x * s * uni(-1.0, 1.0) if uni is not None else x

    vals: list[float] = [0.0] * n
    parts: list[tuple[float, ...]] = [()] * n
    for i, node in enumerate(nodes):
        c = same[i]
        if c != i:
            vals[i], parts[i] = vals[c], parts[c]
            continue
        if node.op == "leaf":
            vals[i] = jiggle(node.value) if inputs_round else node.value  # type: ignore[assignment,arg-type]
            continue
        op = OPS[node.op]
        xs = node_operands(node, vals)
        if inputs_round and node.const is not None:
            xs = (*xs[:-1], jiggle(xs[-1]))
        if op.domain(*xs):
            return None
        try:
            out, p = op.eval(math, *xs)
            if not _exact_copy(node, same):
                out = jiggle(out)
        except OverflowError:
            out, p = math.inf, (math.inf,) * op.arity
        except (ValueError, ZeroDivisionError):
            return None
        vals[i] = out
        try:
            if output_form and op.output_form is not None:
                p = op.output_form(math, *xs, out) or p
        except (OverflowError, ZeroDivisionError):
            p = (math.inf,) * op.arity
        parts[i] = tuple(jiggle(float(q)) for q in p)
    adj = [0.0] * n
    adj[-1] = 1.0
    for i in range(n - 1, -1, -1):
        a = adj[i]
        if a == 0.0 or nodes[i].op == "leaf":
            continue
        for j, pj in zip(nodes[i].args, parts[i], strict=True):
            adj[j] = jiggle(adj[j] + jiggle(a * pj))
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

    Cost: about 6 to 14 float64 evaluations of the graph, forward and
    backward, in pure Python (docs/measure_tolerance.py measures it); linear
    in its size; no mpmath. Deterministic for a given ``seed``. On 10,000
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
    if not isinstance(graph, Graph):
        raise TypeError(f"tolerance: expected a gradcert.graph.Graph, "
                        f"got {type(graph).__name__}")
    u = _check_dtype(dtype)
    same = canonical(graph)
    lin_v, lin_g = _linear(graph, u, dtype, same)
    if exact is not None:
        if getattr(exact, "graph", graph) != graph:
            raise ValueError("tolerance: the exact result is of another graph")
        ref_v = float(exact.value_f64)
        ref_g = [float(g) for g in exact.grad_f64]
        if len(ref_g) != len(lin_g):
            raise ValueError(f"tolerance: the exact result has {len(ref_g)} gradients "
                             f"for {len(lin_g)} leaves (is it of another graph?)")
    else:
        ref = _run(graph, same, None, u, output_form=False)
        assert ref is not None  # _linear checked the domain
        ref_v, ref_g = ref
    rng = random.Random(seed)
    mca_v = 0.0
    mca_g = [0.0] * len(lin_g)
    runs = 0
    for k in range(MCA_RUNS):
        run = _run(graph, same, rng, u, output_form=bool(k % 2),
                   inputs_round=dtype != "float64")
        if run is None:
            continue
        runs += 1
        v, g = run
        mca_v = max(mca_v, _deviation(v, ref_v))
        mca_g = [max(m, _deviation(x, r)) for m, x, r in zip(mca_g, g, ref_g, strict=True)]
    return Tolerance(
        value=SAFETY * max(lin_v, mca_v),
        grad=tuple(SAFETY * max(a, b) for a, b in zip(lin_g, mca_g, strict=True)),
        model=_MODEL, safety=SAFETY, dtype=dtype,
        linear_value=lin_v, linear_grad=tuple(lin_g),
        mca_value=mca_v, mca_grad=tuple(mca_g), runs=runs,
    )
