"""Exact values and gradients of a graph, certified to float64.

The exact value of a graph is the real-number value of its function at the
float64 leaf values (constants are the float64 constants as given); its
gradient is the vector of exact partial derivatives of the output with
respect to the leaves. :func:`exact_graph` computes both at ``p`` bits in
MPFR: a forward pass with the op table, then reverse mode (each node's
adjoint times the op's exact local partials).

**The precision rule.** A result is only reported once its float64 rounding
is *certified*, not merely stable: beside every value, local partial and
adjoint the pass carries a bound on its absolute error, a running error
analysis written once against the op rows (:mod:`gradcert.oracle.bounds`,
which states why each bound holds). Cancellation is therefore seen as it
happens: in ``(x + 1e30) - 1e30`` the absolute error of the sum survives the
subtraction and is large relative to the result, which is what "stable
between two consecutive precisions" cannot see. A value is certified when
every number within twice its bound rounds to one float64
(:func:`gradcert.oracle.rounding.certain`; an exact value on a midpoint
rounds to even). The oracle starts at ``p = 53 + 64`` bits and, while the
value or a leaf gradient is not certified, or a domain test, kink or pole is
within 16 error bounds of its operand, raises ``p`` to at least
``53 + 2 * (p - 53)`` (and further by the bits the worst bound says are
missing), up to ``max_prec`` bits, else :class:`Unresolved`. These runs
evaluate the nodes the output depends on, and those a domain test depends on
(so a domain error is raised wherever it is, as if every node ran). Every
node's value (:attr:`Exact.values_f64`) is certified the same way when first
read: from the same run where it has them all and certifies them, else by a
run of every node. On a well-conditioned graph the first run certifies
everything.

Each precision runs the error analysis first with its bounds as floats (the
screen: fast, for graphs whose magnitudes stay within 2**+-128), and where
that gives up, with its bounds as MPFR numbers (the general pass), which
reach MPFR's exponent range, 2**(+-2**30). There, a result that underflows
on exact operands (exp or sigmoid of -1e300, tanh' at 1e300) is bounded by
MPFR's smallest number and certified as 0.0; any other number beyond that
range is refused (:class:`Unresolved`).

**Limits.** A quantity that is exactly zero but computed inexactly (for
instance ``tanh(x) - tanh(x) * 1.0``, which the oracle cannot tell from a
tiny nonzero) can only be certified when its bound falls below float64's
smallest subnormal; fed to log, relu, a non-integer power or a division it
can never be, nor can an inexactly computed value that is exactly a float64
midpoint (``(y ** 0.5) ** 2.0`` for such a y; where every op it depends on is
rational, exact fractions decide it). Identical subexpressions are
recognised, so ``a - a``, ``a / a`` and ``max(a, a)`` of one node or of two
structurally identical nodes are exact, and so is an op of its inverse
(``exp(log(y))`` is y). A result beyond float64's range
rounds to +-inf and sets :attr:`Exact.overflow`; it must not be compared as
a number.

Nodes the output depends on that evaluate an op exactly at a
non-differentiable point (a relu of exactly 0, whose derivative is 0 by the
table's convention) are listed in :attr:`Exact.kinks`.

Results are mpf, of a private mpmath context per thread (never the global
``mp.prec``), made exactly from MPFR's numbers when :attr:`Exact.value`,
``grad`` or ``values`` is first read; ``value_f64`` and ``grad_f64`` are
ready at once. The certified gradient of a 1,000-node graph costs five to
nine times the reference engine's float64 forward and backward
(bench/bench_oracle.py).

>>> e = exact(lambda x: (x + 1e16) - 1e16, [1.0])
>>> e.value_f64
1.0
>>> (1.0 + 1e16) - 1e16        # float64 loses the 1
0.0
>>> e = exact(lambda x, y: (x * y).log() + 2.0 / x, [3.0, 4.0])
>>> e.grad_f64 == (1 / 3 - 2 / 9, 0.25)
True
>>> exact(lambda x: x.relu(), [0.0]).kinks
(1,)
>>> exact(lambda x: x.sigmoid(), [-1e300]).grad_f64
(0.0,)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import FrozenInstanceError
from fractions import Fraction
from typing import Any, cast

from gradcert.graph import Graph, trace
from gradcert.ops import OPS
from gradcert.oracle import bounds, numbers
from gradcert.oracle.bounds import Beyond, Run
from gradcert.oracle.rounding import certain, certain_many, round_to

__all__ = [
    "START_PREC",
    "MAX_PREC",
    "Exact",
    "Unresolved",
    "exact",
    "exact_graph",
    "round_to",
]

START_PREC = 53 + 64
"""The first working precision, in bits: float64's 53 plus a 64-bit margin."""

MAX_PREC = 8192
"""The default largest working precision before :class:`Unresolved` is raised."""


class Unresolved(ArithmeticError):
    """The oracle cannot certify a float64 result within its precision limit."""

    def __init__(self, node: int | None, problem: str) -> None:
        self.node = node
        self.problem = problem
        where = "graph" if node is None else f"node {node}"
        super().__init__(f"{where}: {problem}")


_UNSET = object()  # an Exact's mpf numbers not made yet


def _distance(exact: Any, x: float | None) -> Any:
    """|exact - x| in the current arithmetic; None for an x that is no finite float."""
    if type(x) is not float or not math.isfinite(x):
        return None
    return abs(x) if type(exact) is int and not exact else abs(exact - x)


class Exact:
    """Exact value and gradient of a graph, with their correctly rounded float64s.

    ``grad`` and ``grad_f64`` follow ``graph.leaves``; ``values`` and
    ``values_f64`` hold every node (``values_f64`` certified when first read).
    ``prec`` is the working precision of the certified run, ``precisions``
    every precision tried. ``overflow`` says the
    value or some gradient is beyond float64's range (its ``*_f64`` is
    +-inf). ``kinks`` lists the nodes the output depends on that are evaluated
    exactly at a kink (relu(0)).
    ``certified`` is False only when a fixed ``prec`` was asked for.

    Immutable. The exact numbers ``value``, ``grad`` and ``values`` are mpf;
    the oracle keeps its own numbers and converts them (exactly) on first
    access, since most callers read only the float64s.
    """

    __slots__ = ("graph", "value_f64", "grad_f64", "_values_f64", "prec", "overflow",
                 "kinks", "certified", "precisions", "_raw", "_value", "_grad", "_values")

    graph: Graph
    value_f64: float
    grad_f64: tuple[float, ...]
    _values_f64: Any  # a tuple, or what makes it when first read
    prec: int
    overflow: bool
    kinks: tuple[int, ...]
    certified: bool
    precisions: tuple[int, ...]
    _raw: tuple[Any, ...] | None  # the pass's numbers, each converted when first read
    _value: Any
    _grad: Any
    _values: Any

    def __init__(self, graph: Graph, value: Any, grad: tuple[Any, ...], values: tuple[Any, ...],
                 value_f64: float, grad_f64: tuple[float, ...], values_f64: tuple[float, ...],
                 prec: int, overflow: bool, kinks: tuple[int, ...] = (),
                 certified: bool = True, precisions: tuple[int, ...] = ()) -> None:
        put = object.__setattr__
        put(self, "graph", graph)
        put(self, "value_f64", value_f64)
        put(self, "grad_f64", grad_f64)
        put(self, "_values_f64", tuple(values_f64))
        put(self, "prec", prec)
        put(self, "overflow", overflow)
        put(self, "kinks", kinks)
        put(self, "certified", certified)
        put(self, "precisions", precisions)
        put(self, "_raw", None)
        put(self, "_value", value)
        put(self, "_grad", tuple(grad))
        put(self, "_values", tuple(values))

    @classmethod
    def _lazy(cls, graph: Graph, raw_values: Sequence[Any], raw_grads: Sequence[Any],
              convert: Callable[[Any], Any], zero: Any,
              values_f64: Callable[[], tuple[float, ...]], whole: Callable[[], Exact] | None,
              **fields: Any) -> Exact:
        """An Exact whose mpf numbers are made from the pass's when first read (every
        node's from ``whole()``, an Exact of a run of every node, where given), and
        whose ``values_f64`` by ``values_f64()``: the value and the gradient without
        every node's value, which few callers read."""
        self = cls(graph, _UNSET, (), (), values_f64=(), **fields)
        put = object.__setattr__
        put(self, "_raw", (raw_values, raw_grads, convert, zero))
        put(self, "_grad", _UNSET)
        put(self, "_values", _UNSET if whole is None else whole)
        put(self, "_values_f64", values_f64)
        return self

    @property
    def values_f64(self) -> tuple[float, ...]:
        """Every node's value, correctly rounded (certified when first read: where
        the oracle's run did not evaluate or certify them all, a run of every node,
        of more bits where needed, does, which may raise :class:`Unresolved`)."""
        got = self._values_f64
        if type(got) is not tuple:
            got = got()
            object.__setattr__(self, "_values_f64", got)
        return got

    @property
    def value(self) -> Any:
        """The exact value of the graph's output, an mpf."""
        got = self._value
        if got is _UNSET:
            raw_values, _, convert, _ = self._raw  # type: ignore[misc]
            got = convert(raw_values[-1])
            object.__setattr__(self, "_value", got)
        return got

    @property
    def grad(self) -> tuple[Any, ...]:
        """The exact gradient, one mpf per leaf (``graph.leaves``)."""
        got = self._grad
        if got is _UNSET:
            _, raw_grads, convert, zero = self._raw  # type: ignore[misc]
            got = tuple(zero if type(g) is int else convert(g) for g in raw_grads)
            object.__setattr__(self, "_grad", got)
        return got

    @property
    def values(self) -> tuple[Any, ...]:
        """The exact value of every node, mpfs (where the oracle's run skipped nodes no
        result needed, from a run of every node, which may raise :class:`Unresolved`)."""
        got = self._values
        if got is _UNSET:
            raw_values, _, convert, _ = self._raw  # type: ignore[misc]
            got = tuple(map(convert, raw_values))
            object.__setattr__(self, "_values", got)
        elif type(got) is not tuple:  # of a run that skipped nodes: from one of them all
            got = got().values
            object.__setattr__(self, "_values", got)
        return got

    def distances(self, value: float | None,
                  grads: Sequence[float | None]) -> tuple[Any, list[Any]]:
        """``abs(self.value - value)`` and ``abs(self.grad[k] - grads[k])`` for each k,
        as mpmath computes them (in 53 bits, rounded to nearest, from the exact mpf
        numbers), without making the mpfs: MPFR rounds each difference the same
        way. Where a number is not a finite float, None.

        >>> e = exact(lambda x: x * 3.0, [0.1])
        >>> d, (g,) = e.distances(0.3, [3.0])
        >>> float(d) == float(abs(e.value - 0.3)) == 2.0**-55, g == 0
        (True, True)
        """
        raw = self._raw
        if raw is None:  # made from mpfs
            return _distance(self.value, value), [
                _distance(g, x) for g, x in zip(self.grad, grads, strict=True)]
        raw_values, raw_grads, _, _ = raw
        with numbers.context(53):  # MPFR's difference, rounded as mpmath's
            return _distance(raw_values[-1], value), [
                _distance(g, x) for g, x in zip(raw_grads, grads, strict=True)]

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return (f"Exact(value_f64={self.value_f64!r}, grad_f64={self.grad_f64!r}, "
                f"prec={self.prec}, overflow={self.overflow})")


# ---------------------------------------------------------------------------
# The precision loop and the certificate.


def exact_graph(graph: Graph, *, prec: int | None = None, max_prec: int = MAX_PREC,
                screen: bool = True) -> Exact:
    """Exact value and gradient of ``graph``, certified to float64 (see the module).

    Raises :class:`gradcert.graph.DomainError` (naming the node, op and inputs)
    when an input leaves an op's domain, and :class:`Unresolved` when the
    float64 roundings cannot be certified within ``max_prec`` bits. With a
    fixed ``prec`` the oracle runs once at that precision, certifies nothing
    and sets ``certified=False`` (for measuring and cross-checking);
    ``screen=False`` runs the general pass alone (the same).

    The value and the gradient are certified here; every node's value
    (``values_f64``) when first read, from the same run where it certifies them
    all, else by running again until it does (which may raise Unresolved then).

    >>> from gradcert.graph import trace
    >>> g = trace(lambda x: (x.exp() - 1.0) / x, [1e-20])
    >>> exact_graph(g).value_f64      # float64 computes 0.0
    1.0
    >>> exact_graph(g).prec > 117     # exp(1e-20) - 1 cancels 66 bits: escalated
    True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"exact_graph needs a gradcert.graph.Graph, got {type(graph).__name__}")
    plan = bounds.plan(graph)
    if prec is not None:
        if not isinstance(prec, int) or prec < 2:
            raise ValueError(f"prec must be an integer number of bits >= 2, got {prec!r}")
        try:
            run = bounds.run(plan, prec, screen=False, track=False)
        except Beyond as e:
            raise Unresolved(e.node, e.problem) from None
        assert run is not None  # the general pass never gives up
        values = run.values
        return _result(graph, plan, run, (prec,), False, round_to(values[-1]),
                       lambda: tuple(map(round_to, values)))
    return _certified(graph, plan, START_PREC, max_prec, screen, every=False)


def _certified(graph: Graph, plan: bounds.Plan, start: int, max_prec: int, screen: bool, *,
               every: bool) -> Exact:
    """The precision loop from ``start`` bits: the value and the gradient certified,
    and every node's value too where ``every``."""
    nodes = range(len(graph.nodes)) if every else (len(graph.nodes) - 1,)
    p = start
    tried: list[int] = []
    try:
        while True:
            p = min(p, max_prec)
            last = p >= max_prec
            tried.append(p)
            try:
                run = (bounds.run(plan, p, screen=True, every=every) if screen else None) or \
                    bounds.run(plan, p, screen=False, every=every)
            except Beyond:
                if last:
                    raise
                # a bound beyond MPFR's range may come from a cancellation that more
                # bits make exact ((c - 1e300) + 1e300 into exp): escalate
                p = 53 + 2 * (p - 53)
                continue
            assert run is not None
            if run.doubt is not None:
                node, reason = run.doubt
                if last:
                    raise Unresolved(node, f"{reason} (max_prec={max_prec})")
                p = 53 + 2 * (p - 53)
                continue
            missing, where, what, vf, gf = _certify(plan, run, nodes)
            if missing > 0 and last and _rational(graph, run, nodes, vf, gf):
                missing = 0
            if missing <= 0:
                break
            if last:
                raise Unresolved(where, f"{what} is not certified at {p} bits "
                                        f"(max_prec={max_prec})")
            p = max(53 + 2 * (p - 53), p + int(missing) + 32)
    except Beyond as e:
        raise Unresolved(e.node, e.problem) from None
    if every:
        return _result(graph, plan, run, tuple(tried), True, vf[-1], lambda: tuple(vf), gf)
    whole: list[Exact] = []

    def everything() -> Exact:
        """A run of every step that certifies every value (once)."""
        if not whole:
            whole.append(_certified(graph, plan, p, max_prec, screen, every=True))
        return whole[0]

    def every_value() -> tuple[float, ...]:
        """Each node's value certified: from this run where it has them all and
        certifies them, else from a run of every step (escalating where needed)."""
        if not run.skipped:
            missing, _, _, vf, _ = _certify(plan, run, range(len(graph.nodes)), grads=False)
            if missing <= 0:
                return tuple(vf)
        return everything().values_f64

    return _result(graph, plan, run, tuple(tried), True, vf[-1], every_value, gf,
                   everything if run.skipped else None)


_UNCERTIFIED = math.nan  # where _certify leaves a rounding undecided (by identity)


def _need(v: Any, e: Any) -> float:
    """How many more bits a value v with error bound e needs to be certified."""
    le = numbers.upper(numbers.mpfr(e)) if e else -math.inf
    return le - (numbers.upper(v) - 53 - 8) if v else le + 1080


def _certify(plan: bounds.Plan, run: Run, nodes: Sequence[int], grads: bool = True
             ) -> tuple[float, int | None, str, list[float], list[float]]:
    """How many more bits the worst result needs (<= 0: all certified), where, and
    the float64 roundings of the values of ``nodes`` and of every leaf gradient
    (unless not ``grads``). Every bound counts twice (for the bounds' own float or
    MPFR arithmetic: see bounds). A value whose bound reaches a rounding boundary
    is certified by the side the exact value lies on, where the run shows it
    (:func:`gradcert.oracle.bounds.sides`)."""
    worst, where, what = 0.0, None, ""
    sides: list[int | None] | None = None
    values, errs = run.values, run.errs
    with numbers.context(run.prec):
        doubt: Sequence[int]
        if run.screen and len(nodes) == len(values):  # every node: in bulk, aligned
            values_f64, doubt = certain_many(values, run.nums, errs, 2.0)
        else:
            values_f64, doubt = [0.0] * len(nodes), range(len(nodes))
        for k in doubt:
            i = nodes[k]
            e2 = errs[i] * 2
            f, ok = certain(values[i], e2)
            if not ok:
                sides = sides or bounds.sides(plan, run)
                if sides[i]:
                    f, ok = certain(values[i], e2, sides[i])
            values_f64[k] = f if ok else _UNCERTIFIED
            if not ok:
                need = _need(values[i], e2)
                if need > worst or where is None:
                    worst, where, what = max(need, 1.0), i, f"the value of node {i}"
        if not grads:
            return worst, where, what, values_f64, []
        gs = [run.grads[i] for i in run.leaves]
        gerrs2 = [run.gerrs[i] * 2 if run.grads[i] is not None else 0.0 for i in run.leaves]
        present = [g if g is not None else numbers.mpfr(0) for g in gs]
        gdoubt: Sequence[int]
        if run.screen:
            grad_f64, gdoubt = certain_many(present, [float(g) for g in present], gerrs2)
        else:
            grad_f64, gdoubt = [0.0] * len(present), range(len(present))
        for k in gdoubt:
            f, ok = certain(present[k], gerrs2[k])
            grad_f64[k] = f if ok else _UNCERTIFIED
            if not ok:
                need = _need(present[k], gerrs2[k])
                if need > worst or where is None:
                    worst, where, what = max(need, 1.0), run.leaves[k], \
                        f"the gradient of leaf {k}"
    return worst, where, what, values_f64, grad_f64


# A last resort: a value or gradient that is a rounding midpoint exactly, but
# computed inexactly (3 / (2 / x) is 1.5 x), is certified by no bound. Where every
# op it depends on is rational (the rows' eval uses no function of ``ns``), or was
# computed exactly by the run (its bound is 0: ``exp(log(y)) - 3``), it is
# computed exactly in fractions, by the same row formulas, and rounded exactly.

_BIGGEST = 1 << 16  # numerators and denominators beyond this many bits: give up


class _NoFunctions:
    """A numeric namespace without functions: a row that needs one is not rational."""

    def __getattr__(self, name: str) -> Any:
        raise ArithmeticError(name)


def _checked(*qs: Any) -> None:
    for q in qs:
        if type(q) not in (Fraction, int) or (type(q) is Fraction and max(
                q.numerator.bit_length(), q.denominator.bit_length()) > _BIGGEST):
            raise ArithmeticError("not a small fraction")


def _rational(graph: Graph, run: Run, nodes: Sequence[int], values_f64: list[float],
              grad_f64: list[float]) -> bool:
    """Round every value (of ``nodes``, as ``values_f64`` lists them) and gradient
    the run left uncertified (marked by ``_UNCERTIFIED`` in the lists) from exact
    fractions, in place; False if one of them depends on an op that is not
    rational or on fractions too large."""
    ns = _NoFunctions()
    vals: list[Any] = [None] * len(graph.nodes)
    parts: list[Any] = [None] * len(graph.nodes)

    def operands(j: int) -> list[Any]:
        node = graph.nodes[j]
        got = [vals[a] for a in node.args]
        return got + [Fraction(node.const)] if node.const is not None else got

    def value(i: int) -> Any:
        """Node i's exact value (and its ancestors', into vals), or raise."""
        stack = [i]
        while stack:
            j = stack[-1]
            if vals[j] is not None:
                stack.pop()
                continue
            node = graph.nodes[j]
            if node.op == "leaf":
                vals[j] = Fraction(cast(float, node.value))
                stack.pop()
                continue
            if not run.errs[j]:  # the run computed it exactly
                vals[j] = Fraction(*run.values[j].as_integer_ratio())
                _checked(vals[j])
                stack.pop()
                continue
            todo = [a for a in node.args if vals[a] is None]
            if todo:
                stack.extend(todo)
                continue
            v, ps = OPS[node.op].eval(ns, *operands(j))
            _checked(v, *ps)
            vals[j], parts[j] = v, ps
            stack.pop()
        return vals[i]

    def partials(j: int) -> Any:
        node = graph.nodes[j]
        if len(node.args) == 2 and node.args[0] == node.args[1] and \
                OPS[node.op].same in ("zero", "one"):
            return (0, 0)  # a - a and a / a do not move with a: no need of a's value
        if parts[j] is None:
            for a in graph.nodes[j].args:
                value(a)
            parts[j] = OPS[graph.nodes[j].op].eval(ns, *operands(j))[1]
            _checked(*parts[j])
        return parts[j]

    try:
        for k, f in enumerate(values_f64):
            if f is _UNCERTIFIED:
                values_f64[k] = _float(value(nodes[k]))
        if any(f is _UNCERTIFIED for f in grad_f64):
            adj = [Fraction(0)] * len(graph.nodes)
            adj[-1] = Fraction(1)
            inverse = run.short  # exp(log(y)) and the like: partial 1 in y
            for i in range(len(graph.nodes) - 1, -1, -1):
                if adj[i] and i in inverse:
                    adj[inverse[i]] += adj[i]  # exp(log(y)): partial 1 in y
                elif adj[i] and graph.nodes[i].op != "leaf":
                    for a, q in zip(graph.nodes[i].args, partials(i), strict=True):
                        adj[a] += adj[i] * q
            for k, leaf in enumerate(graph.leaves):
                if grad_f64[k] is _UNCERTIFIED:
                    grad_f64[k] = _float(adj[leaf])
    except (ArithmeticError, ValueError, TypeError):
        return False
    return True


def _float(q: Any) -> float:
    try:
        return float(q)  # correctly rounded, ties to even, subnormals too
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def _result(graph: Graph, plan: bounds.Plan, run: Run, tried: tuple[int, ...], certified: bool,
            value_f64: float, values_f64: Callable[[], tuple[float, ...]],
            grad_f64: Sequence[float] | None = None,
            whole: Callable[[], Exact] | None = None) -> Exact:
    """The Exact of a run; ``whole`` gives one of a run of every step, where this one
    skipped some (for ``values``)."""
    raw_grads = [0 if run.grads[i] is None else run.grads[i] for i in run.leaves]
    gf = tuple(grad_f64) if grad_f64 is not None else tuple(map(round_to, raw_grads))
    overflow = math.isinf(value_f64) or any(math.isinf(g) for g in gf)
    kinks = tuple(run.kinks)
    if kinks:  # those the output depends on
        live = plan.live()
        kinks = tuple(k for k in kinks if live[k])
    mp = numbers.mpmath_context()
    return Exact._lazy(graph, run.values, raw_grads, lambda x: numbers.to_mpf(x, mp), mp.zero,
                       values_f64, whole, value_f64=value_f64, grad_f64=gf, prec=run.prec,
                       overflow=overflow, kinks=kinks, certified=certified, precisions=tried)


def exact(f: Callable[..., Any], xs: Sequence[float], **options: Any) -> Exact:
    """Trace ``f`` (written with the reference engine's operators) at ``xs`` and
    return its exact value and gradient (:func:`exact_graph`).

    ``f`` takes one argument per input, and may use every op of the op table
    as the reference engine spells it: ``+ - * /`` (also with numbers on
    either side), ``**`` (a constant or a traced exponent), unary ``-``,
    ``abs()``, and the methods ``.log() .exp() .relu() .tanh() .sigmoid()
    .sqrt() .log1p() .expm1() .erf() .sin() .cos() .max(y) .min(y)``.

    >>> e = exact(lambda x, y: x * y + x.tanh(), [2.0, 5.0])
    >>> e.value_f64 == 10.0 + math.tanh(2.0)
    True
    >>> e.grad_f64[1]
    2.0
    >>> exact(lambda x: (x + 1e16) - 1e16, [1.0]).value_f64 == 1.0
    True
    >>> exact(lambda x: x.exp(), [710.0]).overflow
    True
    """
    return exact_graph(trace(f, xs), **options)
