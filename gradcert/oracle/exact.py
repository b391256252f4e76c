"""Exact values and gradients of a graph, in mpmath, certified to float64.

The exact value of a graph is the real-number value of its function at the
float64 leaf values (constants are the float64 constants as given); its
gradient is the vector of exact partial derivatives of the output with
respect to the leaves. :func:`exact_graph` computes both in mpmath: a forward
pass with the op table, then reverse mode (each node's adjoint times the op's
exact local partials).

**The precision rule.** A result is only reported once its float64 rounding
is *certified*, not merely stable: while it evaluates at working precision
``p``, the oracle carries beside every value, local partial and adjoint a
first-order bound on its absolute error (a running error analysis, as in
Higham's *Accuracy and Stability of Numerical Algorithms*, §3.3): each op
adds its own rounding (half an ulp at ``p`` for ``+ - * /``, which are
rounded correctly, and none when one is exact: MPFR says so, and on mpf the
oracle knows it when the operands' bits fit in ``p``; 8 ulps for ``exp``,
``log``, ``tanh``, ``sigmoid`` and powers, except at exact points such as
exp(0) = 1) to the errors of its operands times its partials. Cancellation
is therefore seen as it happens:
in ``(x + 1e30) - 1e30`` the absolute error of the sum survives the
subtraction and is large relative to the result, which is what "stable
between two consecutive precisions" cannot see. A value is certified when
the whole interval ``value +- bound`` rounds to one float64 (it stays a
quarter-ulp away from any rounding midpoint; an exact value on a midpoint
rounds to even). The oracle starts at ``p = 53 + 64`` bits and, while any
value or leaf gradient is not certified, raises ``p`` to at least
``53 + 2 * (p - 53)`` (and further by the bits the worst bound says are
missing), up to ``max_prec`` bits. On a well-conditioned graph the first
run certifies everything, so the rule costs the bookkeeping, not a second
run: less than one plain pass without bounds (bench/bench_oracle.py).

The bound is first order: it is trusted only where the operands of a
nonlinear op are known to better than 2**-8 relative (so local partials vary
by less than that across the operand's error interval); integer powers
``x ** n`` are bounded without that condition (``n |d| (|x| + |d|)**(n-1)``).
A relu or a domain test (log, non-integer or negative power, division) is
trusted only when its input's sign is certain. A node that fails these tests
is not certified either and raises the precision.

**Limits.** A quantity that is exactly zero but computed inexactly (for
instance ``tanh(x) - tanh(x) * 1.0``, which the oracle cannot tell from a
tiny nonzero) can only be certified when its bound falls below float64's
smallest subnormal; fed to log, relu, a non-integer power or a division it
can never be, nor can an inexactly computed value that is exactly a float64
midpoint (``exp(log(y))`` for such a y). After ``max_prec`` bits (default
8192) the oracle raises :class:`Unresolved` naming the node. So do inputs
beyond the oracle's range: exp, tanh or sigmoid of a number beyond 2**1000,
or a value beyond 2**(+-2**50) (exp(1e16), sigmoid(-1e16), ``x ** c`` that
large; the bounds' exponents are floats, exact only to 2**53). tanh(1e300)
is fine: only its partial is that small, and tiny partials are bounded.
Identical subexpressions are recognised, so ``a - a`` and ``a / a`` of one
node or of two structurally identical nodes are exact. A result beyond
float64's range rounds to +-inf and sets :attr:`Exact.overflow`; it must not
be compared as a number.

Values on which an op is evaluated exactly at a non-differentiable point (a
relu of exactly 0, whose derivative is 0 by the table's convention) are
listed in :attr:`Exact.kinks`.

**Numbers.** The passes run on gmpy2's mpfr numbers (gradcert.oracle._mpfr),
each in a fresh gmpy2 context of its thread, so a caller's gmpy2 settings are
neither used nor changed. MPFR reports whether each operation rounded, which
makes the exactness of ``+ - * /`` a flag to read. Each precision is first
tried by a fast pass (gradcert.oracle._fast) whose bounds are plain floats,
for graphs whose magnitudes stay within 2**+-400; where it cannot bound or
certify every result, the general pass below, with log2 bounds, decides at
the same precision. A general pass that leaves mpfr's exponent range (about
2**(+-2**30)) or raises is redone on mpmath's mpf, whose verdict stands.
Results are always mpf, of a private mpmath context per thread (never the
global ``mp.prec``), made exactly from the pass's numbers when
:attr:`Exact.value`, ``grad`` or ``values`` is first read.
Without gmpy2 the oracle runs on mpf alone and warns once. The certified
gradient of a 1,000-node graph costs about 6x the reference engine's float64
forward and backward on mpfr, about 30x on mpf, whether mpmath runs over
gmpy2 or on its pure-Python backend (bench/bench_oracle.py, and again with
MPMATH_NOGMPY=1).

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
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

import mpmath

from gradcert.graph import DomainError, Graph, trace
from gradcert.ops import OPS
from gradcert.oracle.rounding import certain as _certain
from gradcert.oracle.rounding import round_to

try:
    from gradcert.oracle import _fast, _mpfr
except ImportError:  # no gmpy2: mpmath alone
    _mpfr = None  # type: ignore[assignment]
    _fast = None  # type: ignore[assignment]
_MPFR: Any = None if _mpfr is None else _mpfr.mpfr

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

_RANGE = 1000  # exp-like ops refuse |x| >= 2**_RANGE: too costly for mpmath
_BIG = 2**50  # log2 magnitudes are tracked as floats, exact only below 2**53
_VALID = -8.0  # first-order bounds are trusted while relative errors stay below 2**-8
_NEG = -math.inf
_log2 = math.log2


class Unresolved(ArithmeticError):
    """The oracle cannot certify a float64 result within its precision limit."""

    def __init__(self, node: int | None, problem: str) -> None:
        self.node = node
        self.problem = problem
        where = "graph" if node is None else f"node {node}"
        super().__init__(f"{where}: {problem}")


class Exact:
    """Exact value and gradient of a graph, with their correctly rounded float64s.

    ``grad`` and ``grad_f64`` follow ``graph.leaves``; ``values`` and
    ``values_f64`` hold every node. ``prec`` is the working precision of the
    certified run, ``precisions`` every precision tried. ``overflow`` says the
    value or some gradient is beyond float64's range (its ``*_f64`` is
    +-inf). ``kinks`` lists the nodes evaluated exactly at a kink (relu(0)).
    ``certified`` is False only when a fixed ``prec`` was asked for.

    Immutable. The exact numbers ``value``, ``grad`` and ``values`` are mpf;
    the oracle keeps its own numbers and converts them (exactly) on first
    access, since most callers read only the float64s.
    """

    __slots__ = ("graph", "value_f64", "grad_f64", "values_f64", "prec", "overflow",
                 "kinks", "certified", "precisions", "_raw", "_mpf")

    graph: Graph
    value_f64: float
    grad_f64: tuple[float, ...]
    values_f64: tuple[float, ...]
    prec: int
    overflow: bool
    kinks: tuple[int, ...]
    certified: bool
    precisions: tuple[int, ...]
    _raw: tuple[Any, ...] | None  # the pass's numbers, until converted
    _mpf: tuple[Any, tuple[Any, ...], tuple[Any, ...]] | None

    def __init__(self, graph: Graph, value: Any, grad: tuple[Any, ...], values: tuple[Any, ...],
                 value_f64: float, grad_f64: tuple[float, ...], values_f64: tuple[float, ...],
                 prec: int, overflow: bool, kinks: tuple[int, ...] = (),
                 certified: bool = True, precisions: tuple[int, ...] = ()) -> None:
        put = object.__setattr__
        put(self, "graph", graph)
        put(self, "value_f64", value_f64)
        put(self, "grad_f64", grad_f64)
        put(self, "values_f64", values_f64)
        put(self, "prec", prec)
        put(self, "overflow", overflow)
        put(self, "kinks", kinks)
        put(self, "certified", certified)
        put(self, "precisions", precisions)
        put(self, "_raw", None)
        put(self, "_mpf", (value, tuple(grad), tuple(values)))

    @classmethod
    def _lazy(cls, graph: Graph, raw_values: Sequence[Any], raw_grads: Sequence[Any],
              convert: Callable[[Any], Any], zero: Any, **fields: Any) -> Exact:
        """An Exact whose mpf numbers are made from the pass's on first access."""
        self = cls(graph, None, (), (), **fields)
        object.__setattr__(self, "_raw", (raw_values, raw_grads, convert, zero))
        object.__setattr__(self, "_mpf", None)
        return self

    def _numbers(self) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
        raw = self._raw  # read first: another thread sets _mpf before clearing _raw
        got = self._mpf
        if got is None:
            assert raw is not None
            raw_values, raw_grads, convert, zero = raw
            values = tuple(map(convert, raw_values))
            grads = tuple(zero if type(g) is int else convert(g) for g in raw_grads)
            got = (values[-1], grads, values)
            object.__setattr__(self, "_mpf", got)
            object.__setattr__(self, "_raw", None)
        return got

    @property
    def value(self) -> Any:
        """The exact value of the graph's output, an mpf."""
        return self._numbers()[0]

    @property
    def grad(self) -> tuple[Any, ...]:
        """The exact gradient, one mpf per leaf (``graph.leaves``)."""
        return self._numbers()[1]

    @property
    def values(self) -> tuple[Any, ...]:
        """The exact value of every node, mpfs."""
        return self._numbers()[2]

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        return (f"Exact(value_f64={self.value_f64!r}, grad_f64={self.grad_f64!r}, "
                f"prec={self.prec}, overflow={self.overflow})")


# ---------------------------------------------------------------------------
# Magnitudes and exactness.


def _mag(x: Any) -> float:
    """An upper bound on log2|x| (-inf for zero); |x| >= 2**(_mag(x) - 1)."""
    if type(x) is int:
        return _NEG if x == 0 else float(x.bit_length())
    if type(x) is _MPFR:
        return _mpfr.upper(x)
    t = x._mpf_
    return float(t[2] + t[3]) if t[1] else _NEG


def _sum_exact(a: Any, b: Any, prec: int) -> bool:
    """Whether a + b (or a - b) of mpfs is exact at ``prec`` bits (no rounding)."""
    ta, tb = a._mpf_, b._mpf_
    if not ta[1] or not tb[1]:
        return True
    return max(ta[2] + ta[3], tb[2] + tb[3]) + 1 - min(ta[2], tb[2]) <= prec


def _mul_exact(a: Any, b: Any, prec: int) -> bool:
    """Whether a * b of mpfs is exact at ``prec`` bits."""
    return a._mpf_[3] + b._mpf_[3] <= prec


_EXACT_WHEN: dict[str, Callable[[tuple[Any, ...], int], bool]] = {
    "add": lambda o, p: _sum_exact(o[0], o[1], p),
    "sub": lambda o, p: _sum_exact(o[0], o[1], p),
    "addc": lambda o, p: _sum_exact(o[0], o[1], p),
    "raddc": lambda o, p: _sum_exact(o[0], o[1], p),
    "subc": lambda o, p: _sum_exact(o[0], o[1], p),
    "rsubc": lambda o, p: _sum_exact(o[0], o[1], p),
    "mul": lambda o, p: _mul_exact(o[0], o[1], p),
    "mulc": lambda o, p: _mul_exact(o[0], o[1], p),
    "rmulc": lambda o, p: _mul_exact(o[0], o[1], p),
    "neg": lambda o, p: True,
    "relu": lambda o, p: True,
}


_SPECIAL = {"exp": (0, 1), "log": (1, 0), "tanh": (0, 0), "sigmoid": (0, 0.5)}


def _exact_point(name: str, operands: tuple[Any, ...], es: Sequence[Any], prec: int,
                 bits: Callable[[Any], int]) -> bool:
    """Whether a nonlinear op on exact operands gave an exact result: exp(0) = 1,
    log(1) = 0, tanh(0) = 0, sigmoid(0) = 1/2, x ** c for c in {0, 1}, or a
    positive integer c small enough for x ** c to fit in ``prec`` bits."""
    if any(e != _NEG for e in es):
        return False
    x = operands[0]
    if name in _SPECIAL:
        return bool(x == _SPECIAL[name][0])
    if name == "powc":
        c = operands[1]
        if c == 0 or c == 1:
            return True
        return bool(c > 0 and c == int(c) and (not x or bits(x) * int(c) <= prec))
    return False


def _upper(t: tuple[Any, ...]) -> Any:
    """An upper bound on log2|x| from x's mpf tuple, raised to -2**50 for tinier x
    (still an upper bound, and exact as a float); OverflowError beyond 2**(2**50)."""
    if not t[1]:
        return _NEG
    m = t[2] + t[3]
    if m > _BIG:
        raise OverflowError(m)
    return m if m > -_BIG else -_BIG


def _lsum(a: float, b: float, _NEG: float = _NEG, _log2: Any = _log2) -> float:
    """log2(2**a + 2**b) (globals bound as defaults: this is the hottest helper)."""
    if a < b:
        a, b = b, a
    if b == _NEG or b < a - 64.0:  # then 1.0 + 2.0**(b - a) rounds to 1.0
        return a
    return a + _log2(1.0 + 2.0 ** (b - a))


def _rel(m: float, e: float) -> float:
    """log2 of a relative error bound, from a magnitude bound m and an absolute one e."""
    if e == _NEG:
        return _NEG
    return math.inf if m == _NEG else e - m + 1.0


# Relative error bounds (log2) of an op's local partials caused by the errors of
# its operands, f(ms, es, c) -> one bound per operand, from the partial's
# logarithmic derivative: (1/x)' relative is 1 x rel(x), (x**c)' is |c - 1| x
# rel(x), exp' = exp, tanh' = sech^2, sigmoid' = s(1 - s) have log-derivatives
# bounded by 1, 2, 1 (times the operand's absolute error). mul is bilinear and
# handled exactly; constant partials (add, neg, mulc, ...) only round.


def _pe_div(ms: Sequence[float], es: Sequence[float], c: Any) -> tuple[float, ...]:
    ry = _rel(ms[1], es[1])
    return ry, max(_rel(ms[0], es[0]), ry + 1.0) + 1.0


def _pe_powc(ms: Sequence[float], es: Sequence[float], c: Any) -> tuple[float, ...]:
    if c == 0 or c == 1:
        return (_NEG,)
    return (_rel(ms[0], es[0]) + _log2(abs(float(c) - 1.0)),)


_PARTIAL_REL: dict[str, Callable[..., tuple[float, ...]]] = {
    "div": _pe_div,
    "rdivc": lambda ms, es, c: (_rel(ms[0], es[0]) + 1.0 if c else _NEG,),  # -c/x**2
    "powc": _pe_powc,
    "log": lambda ms, es, c: (_rel(ms[0], es[0]),),
    "exp": lambda ms, es, c: (es[0],),
    "tanh": lambda ms, es, c: (es[0] + 1.0,),
    "sigmoid": lambda ms, es, c: (es[0],),
}
_LINEAR = frozenset({"add", "sub", "addc", "raddc", "subc", "rsubc", "mulc", "rmulc",
                     "divc", "neg"})
_DOMAIN_ARG = {"div": 1, "rdivc": 0, "powc": 0, "log": 0}  # the operand a domain test reads


# ---------------------------------------------------------------------------
# Number systems. The passes run on gmpy2's mpfr numbers when mpmath runs
# over gmpy2 (about 10x cheaper per operation than mpmath's mpf wrappers),
# else on mpf; results are always handed out as mpf.

_local = threading.local()
_warned = False


@dataclass(frozen=True)
class _Numbers:
    """What a pass needs of a number system: the op table's namespace, leaf
    and constant conversion, magnitudes (``upper``: log2 bound, -2**50 at the
    least; ``mag`` unclamped, for values), significant bits, and ``fast``:
    whether results carry MPFR's exactness flag ``rc``."""

    ns: Any
    number: Callable[[float], Any]
    upper: Callable[[Any], float]
    mag: Callable[[Any], float]
    bits: Callable[[Any], int]
    fast: bool


def _mpf_mag(v: Any) -> float:
    t = v._mpf_
    return t[2] + t[3] if t[1] else _NEG


def _mpf_numbers(ctx: Any) -> _Numbers:
    make, from_float = ctx.make_mpf, mpmath.libmp.from_float
    return _Numbers(ns=ctx, number=lambda x: make(from_float(x)),
                    upper=lambda v: _upper(v._mpf_), mag=_mpf_mag,
                    bits=lambda v: v._mpf_[3], fast=False)


class _Context:
    """A thread's oracle state: a private mpmath context (never the global
    ``mp``), and the number systems of its passes."""

    def __init__(self, fast: bool | None = None, quick: bool = True) -> None:
        self.mp = mpmath.MPContext()
        self.slow = _mpf_numbers(self.mp)
        if fast is None:
            fast = _mpfr is not None and mpmath.libmp.BACKEND == "gmpy"
        elif fast and _mpfr is None:
            raise RuntimeError("mpfr passes need gmpy2")
        self.numbers = self.slow if not fast else _Numbers(
            ns=_mpfr, number=_mpfr.number, upper=_mpfr.upper, mag=_mpfr.upper,
            bits=_mpfr.bits, fast=True)
        self.quick = quick and self.numbers.fast  # try gradcert.oracle._fast first

    def to_mpf(self, x: Any) -> Any:
        return _mpfr.to_mpf(x, self.mp) if type(x) is _MPFR else x


@contextmanager
def _numbers(fast: bool, quick: bool = True) -> Iterator[None]:
    """Run this thread's oracle on mpfr (``fast``) or on mpf alone, and with or
    without the fast pass (``quick``), for a while: for tests and the
    benchmark, which compare them."""
    saved = getattr(_local, "ctx", None)
    _local.ctx = _Context(fast, quick)
    try:
        yield
    finally:
        _local.ctx = saved


def _context() -> _Context:
    global _warned
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        if mpmath.libmp.BACKEND != "gmpy" and not _warned:
            _warned = True
            warnings.warn("gmpy2 is not installed: the oracle runs on mpmath's pure-Python "
                          "backend, about 5x slower (pip install gmpy2)", RuntimeWarning,
                          stacklevel=3)
        ctx = _local.ctx = _Context()
    return ctx


# ---------------------------------------------------------------------------
# The evaluation.


_LINEAR_KIND, _MUL_KIND, _RELU_KIND, _OTHER_KIND = 0, 1, 2, 3


@dataclass
class _Plan:
    """What a run needs from the graph, computed once per number system: per
    inner node a row (id, op, args, constant as a number, op name, domain
    operand, kind, exactness test, partial-error rule, pair-exact value, and
    the op's forward, partials, domain test, nonlinear and power flags, so
    the hot loop looks nothing up); leaf values as numbers."""

    rows: list[tuple[Any, ...]]
    leaf_values: list[Any]
    leaves: tuple[int, ...]
    numbers: _Numbers


def _static_row(name: str) -> tuple[Any, ...]:
    """The precision-independent part of a plan row for op ``name``."""
    kind = (_LINEAR_KIND if name in _LINEAR else _MUL_KIND if name == "mul"
            else _RELU_KIND if name == "relu" else _OTHER_KIND)
    return (OPS[name], name, _DOMAIN_ARG.get(name), name in _DOMAIN_ARG or name == "divc",
            kind, _EXACT_WHEN.get(name), _PARTIAL_REL.get(name))


def _callables(name: str) -> tuple[Any, ...]:
    """The op's forward, partials and domain test; whether it is nonlinear (one
    whose input beyond 2**_RANGE is refused when it has no domain operand);
    whether it is x ** c."""
    op = OPS[name]
    return op.forward, op.partials, op.domain, name in _PARTIAL_REL, name == "powc"


_STATIC = {name: _static_row(name) for name in OPS}
_CALLS = {name: _callables(name) for name in OPS}


def _plan(graph: Graph, numbers: _Numbers) -> _Plan:
    convert = numbers.number
    made: dict[float, Any] = {}

    def number(x: float) -> Any:  # leaves and constants repeat: convert each once
        if not x:
            return convert(x)
        v = made.get(x)
        if v is None:
            v = made[x] = convert(x)
        return v

    canon: list[int] = []
    seen: dict[tuple[Any, ...], int] = {}
    rows: list[tuple[Any, ...]] = []
    leaf_values: list[Any] = []
    pair_value = {"sub": convert(0.0), "div": convert(1.0)}
    for i, n in enumerate(graph.nodes):
        name = n.op
        if name == "leaf":
            assert n.value is not None  # a validated leaf has its float
            leaf_values.append(number(n.value))
            canon.append(i)
            continue
        leaf_values.append(None)
        static = _STATIC[name]
        args = n.args
        pair = None
        if len(args) == 2:
            c0, c1 = canon[args[0]], canon[args[1]]
            if c0 == c1 and name in pair_value:
                pair = pair_value[name]
            key: tuple[Any, ...] = (name, c1, c0) if c1 < c0 and static[0].commutative \
                else (name, c0, c1)
        else:
            key = (name, canon[args[0]], n.const)
        canon.append(seen.setdefault(key, i))
        const = None if n.const is None else number(n.const)
        row = (i, static[0], args, const, *static[1:], pair, *_CALLS[name])
        if name == "powc" and n.const is not None and n.const >= 0 and n.const.is_integer():
            row = row[:5] + (None,) + row[6:]  # x ** 2 has no domain edge at 0
        rows.append(row)
    return _Plan(rows, leaf_values, graph.leaves, numbers)


@dataclass
class _Run:
    values: list[Any]
    errs: list[Any]
    grads: list[Any]
    gerrs: list[Any]
    kinks: list[int]
    doubtful: int | None  # a node whose bound cannot be trusted at this precision
    reason: str
    prec: int
    leaves: tuple[int, ...]


def _run(graph: Graph, plans: dict[bool, _Plan], ctx: _Context, prec: int, track: bool,
         last: bool) -> _Run:
    """Forward and reverse at ``prec`` bits, with error bounds when ``track``.

    A pass on mpfr numbers is kept only if it stays within mpfr's range and
    raises nothing; otherwise (overflow, underflow, a domain error, an
    unresolved node) the pass is redone on mpf, whose verdict stands."""
    where: list[int] = [0]
    fast = ctx.numbers.fast
    plan = plans.get(fast) or plans.setdefault(fast, _plan(graph, ctx.numbers))
    try:
        if plan.numbers.fast:
            with _mpfr.context(prec) as mc:
                try:
                    run = _pass(plan, prec, track, last, where)
                except (ArithmeticError, ValueError, TypeError):
                    run = None
                if run is not None and _mpfr.clean(mc):
                    return run
            plan = plans.get(False) or plans.setdefault(False, _plan(graph, ctx.slow))
        ctx.mp.prec = prec
        return _pass(plan, prec, track, last, where)
    except OverflowError:  # a magnitude's exponent beyond float: 2**(2**1024)
        raise Unresolved(where[0], "a magnitude beyond the oracle's range") from None


def _quick(graph: Graph, plan: _fast.Plan, prec: int, tried: tuple[int, ...]) -> Exact | None:
    """The result of the fast pass (gradcert.oracle._fast) at ``prec`` bits, if
    it bounds every number, stays in mpfr's range and certifies every value
    and leaf gradient; else None, and the general pass decides."""
    with _mpfr.context(prec) as mc:
        got = _fast.run(plan, prec)
        if got is None or not _mpfr.clean(mc):
            return None
        values, errs, grads, gerrs, kinks = got
        values_f64, doubt = _fast.certain(values, errs, prec)
        for i in doubt:
            f, ok = _certain(values[i], _fast.log_bound(errs[i], prec))
            if not ok:
                return None
            values_f64[i] = f
        grad_f64: list[float] = []
        for leaf in plan.leaves:
            g = grads[leaf]
            if g is None:
                grad_f64.append(0.0)
                continue
            e = _fast.log_bound(gerrs[leaf], prec)
            f, ok = _mpfr.certain(g, e)
            if not ok:
                f, ok = _certain(g, e)
                if not ok:
                    return None
            grad_f64.append(f)
    run = _Run(values, [], grads, [], kinks, None, "", prec, plan.leaves)
    return _result(graph, run, prec, tried, True, values_f64, grad_f64)


def _pass(plan: _Plan, prec: int, track: bool, last: bool, where: list[int]) -> _Run:
    """One pass at ``prec`` bits (the caller has set the numbers' precision).

    With mpfr numbers (``fast``), an op of one rounding is exact exactly when
    MPFR says so (``rc == 0``); with mpf, when its operands' bits fit."""
    NEG, lsum = _NEG, _lsum
    LINEAR, MUL, RELU, BIG = _LINEAR_KIND, _MUL_KIND, _RELU_KIND, _BIG
    nums = plan.numbers
    ns, upper, mag, bits, fast = nums.ns, nums.upper, nums.mag, nums.bits, nums.fast
    values: list[Any] = list(plan.leaf_values)
    n = len(values)
    errs: list[Any] = [NEG] * n
    mags: list[Any] = [NEG] * n
    for i in plan.leaves:
        mags[i] = mag(values[i])
    partials: list[tuple[Any, ...]] = [()] * n
    perrs: list[Any] = [()] * n
    kinks: list[int] = []
    doubtful: int | None = None
    reason = ""
    rnd = 3 - prec  # log2 of 8 ulps at prec, relative: one op's own rounding
    half = -prec  # one correctly rounded + - * /
    ms: tuple[Any, ...] = ()
    es: tuple[Any, ...] = ()
    for (i, _op, args, c, name, k, has_domain, kind, exact_when, prel, pair, forward, partial,
         domain, ranged, powc) in plan.rows:
        where[0] = i
        if len(args) == 1:
            a0 = args[0]
            operands = (values[a0], c) if c is not None else (values[a0],)
            if track:
                ms, es = (mags[a0],), (errs[a0],)
        else:
            a0, a1 = args
            operands = (values[a0], values[a1])
            if track:
                ms, es = (mags[a0], mags[a1]), (errs[a0], errs[a1])
        why = domain(*operands) if has_domain else None
        if track:
            if k is not None and es[k] != NEG and not es[k] < ms[k] - 1:
                if why and last:
                    raise Unresolved(i, f"cannot decide at {prec} bits whether the input "
                                        f"of {name} is in its domain ({why})")
                if why:
                    return _Run(values, errs, [], [], kinks, i, f"{name}'s domain is undecided",
                                prec, plan.leaves)
                if doubtful is None:
                    doubtful, reason = i, f"the sign of {name}'s input is uncertain"
            if ranged and k is None and ms[0] > _RANGE:
                raise Unresolved(i, f"{name} of an input beyond 2**{_RANGE}")
            if powc and ms[0] != NEG and abs(c) * abs(ms[0]) > 2.0 ** 49:
                raise Unresolved(i, "x ** c is beyond the oracle's range")
        if why:
            raise DomainError(i, name, operands, why)
        v = forward(ns, *operands) if pair is None else pair
        ps = partial(ns, *operands, v)
        values[i] = v
        partials[i] = ps
        m = mags[i] = mag(v)
        if kind == RELU and not operands[0]:
            kinks.append(i)
        if not track:
            continue
        if m != NEG and not -BIG < m < BIG:
            raise Unresolved(i, "a value of magnitude beyond 2**(2**50)")
        if kind == LINEAR:
            if fast:
                e = NEG if not v.rc else m + half
            else:
                e = NEG if exact_when is not None and exact_when(operands, prec) else m + half
            for p, ej in zip(ps, es, strict=False):
                if ej != NEG:
                    if type(p) is int:
                        e = lsum(e, ej)
                    else:
                        pmag = upper(p)
                        if pmag != NEG:  # a zero constant (x * 0.0) passes no error on
                            e = lsum(e, pmag + ej + 1e-9)
            errs[i] = NEG if pair is not None else e
            if name == "divc":  # the partial 1/c rounds
                perrs[i] = (upper(ps[0]) + rnd,)
            continue
        if kind == MUL:
            perrs[i] = (es[1], es[0])
            e = NEG if (not v.rc if fast else exact_when(operands, prec)) else m + half
            e0, e1 = es
            if e0 != NEG:
                e = lsum(e, ms[1] + e0) if ms[1] != NEG else e
            if e1 != NEG:
                e = lsum(e, ms[0] + e1) if ms[0] != NEG else e
                if e0 != NEG:
                    e = lsum(e, e0 + e1)
            errs[i] = e
            continue
        if kind == RELU:
            e0 = es[0]
            certain = e0 == NEG or e0 < ms[0] - 1
            if not certain and doubtful is None:
                doubtful, reason = i, "the sign of relu's input is uncertain"
            errs[i] = e0 if (operands[0] > 0 or not certain) else NEG
            continue
        if powc and k is None and c >= 1:
            # x ** n, integer n >= 1: a polynomial, bounded without first-order
            # terms (mean value theorem), so an inexact zero base is fine:
            # |(x+d)**n - x**n| <= n |d| (|x| + |d|)**(n-1)
            e0 = es[0]
            pmj = upper(ps[0])
            cf = float(c)
            u = lsum(ms[0], e0)
            exact_x = e0 == NEG and bits(operands[0]) * (cf - 1) + bits(c) <= prec
            pej = pmj + rnd if pmj != NEG and not exact_x else NEG  # n * x**(n-1) may be exact
            e = NEG if _exact_point(name, operands, es, prec, bits) else m + rnd
            if e0 != NEG:
                e = lsum(e, _log2(cf) + e0 + (cf - 1) * u)
                if cf >= 2:
                    pej = lsum(pej, _log2(cf) + _log2(cf - 1) + e0 + (cf - 2) * u)
            perrs[i] = [pej]
            errs[i] = e
            continue
        # nonlinear ops: partials round, and move with their operands' errors
        if len(ps) == 1 and type(ps[0]) is not int:  # exp, log, tanh, sigmoid, x ** c, c / x
            p = ps[0]
            e0 = es[0]
            r = prel(ms, es, c)[0]
            pmj = upper(p)  # partials only ever need upper bounds
            pej = pmj + rnd if pmj != NEG else NEG
            if r != NEG:
                if pmj != NEG:
                    pej = lsum(pej, pmj + r + 1)
                elif e0 != NEG:
                    pej = math.inf  # a zero partial (c*x**(c-1)) from inexact x
                if doubtful is None and pej != NEG and not r + 2 < _VALID:
                    doubtful, reason = i, f"an operand of {name} is too inexact"
            perrs[i] = (pej,)
            e = m + rnd if m != NEG and not (e0 == NEG and _exact_point(
                name, operands, es, prec, bits)) else NEG
            if e0 != NEG:
                e = lsum(e, lsum(pmj + e0 if pmj != NEG else NEG, pej + e0))
            errs[i] = e
            continue
        pm = []
        pe = []
        for j, r in enumerate(prel(ms, es, c)):
            p = ps[j]
            if type(p) is int:
                pmj = 1 if p else NEG
                pej = NEG
            else:
                pmj = upper(p)  # partials only ever need upper bounds
                pej = pmj + rnd if pmj != NEG else NEG
            if r != NEG:
                if pmj != NEG:
                    pej = lsum(pej, pmj + r + 1)
                elif not (es[0] == NEG if name == "div" else all(e == NEG for e in es)):
                    pej = math.inf  # a zero partial (-x/y**2, c*x**(c-1)) from inexact x
                if doubtful is None and pej != NEG and not r + 2 < _VALID:
                    doubtful, reason = i, f"an operand of {name} is too inexact"
            pm.append(pmj)
            pe.append(pej)
        perrs[i] = pe
        if pair is not None:
            continue  # errs[i] stays exact
        exact_point = es[0] == NEG and _exact_point(name, operands, es, prec, bits)
        e = m + rnd if m != NEG and not exact_point else NEG
        for pmj, pej, ej in zip(pm, pe, es, strict=False):
            if ej != NEG:
                e = lsum(e, lsum(pmj + ej if pmj != NEG else NEG, pej + ej))
        errs[i] = e

    # reverse mode: grads[a] += grads[i] * d node_i / d node_a
    grads: list[Any] = [None] * n
    gerrs: list[Any] = [NEG] * n
    grads[n - 1] = nums.number(1.0)
    mul_exact, sum_exact = _mul_exact, _sum_exact
    for row in reversed(plan.rows):
        i = row[0]
        where[0] = i
        g = grads[i]
        if g is None:
            continue
        ge = gerrs[i]
        if not g and ge == NEG:
            continue
        ps = partials[i]
        if track:
            gm = upper(g)
            pe = perrs[i]
        for j, a in enumerate(row[2]):
            p = ps[j]
            te = ge
            if type(p) is int:
                if p == 0:
                    continue
                tv = g if p == 1 else -g
            else:
                tv = g * p
                if track:
                    pmj = upper(p)
                    pej = pe[j] if pe else NEG
                    te = lsum(pmj + ge if pmj != NEG else NEG, gm + pej if gm != NEG else NEG)
                    if pej != NEG:
                        te = lsum(te, ge + pej)
                    if (tv.rc if fast else not mul_exact(g, p, prec)):
                        te = lsum(te, upper(tv) - prec)
            old = grads[a]
            if old is None:
                grads[a] = tv
                gerrs[a] = te
            else:
                sv = grads[a] = old + tv
                if track:
                    e = lsum(gerrs[a], te)
                    if (sv.rc if fast else not sum_exact(old, tv, prec)):
                        e = lsum(e, upper(sv) - prec)
                    gerrs[a] = e
    return _Run(values, errs, grads, gerrs, kinks, doubtful, reason, prec, plan.leaves)


def exact_graph(graph: Graph, *, prec: int | None = None,
                max_prec: int = MAX_PREC) -> Exact:
    """Exact value and gradient of ``graph``, certified to float64 (see the module).

    Raises :class:`gradcert.graph.DomainError` (naming the node, op and inputs)
    when an input leaves an op's domain, and :class:`Unresolved` when the
    float64 roundings cannot be certified within ``max_prec`` bits. With a
    fixed ``prec`` the oracle runs once at that precision, certifies nothing
    and sets ``certified=False`` (for measuring and cross-checking).

    >>> from gradcert.graph import trace
    >>> g = trace(lambda x: (x.exp() - 1.0) / x, [1e-20])
    >>> exact_graph(g).value_f64      # float64 computes 0.0
    1.0
    >>> exact_graph(g).prec > 117     # exp(1e-20) - 1 cancels 66 bits: escalated
    True
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"exact_graph needs a gradcert.graph.Graph, got {type(graph).__name__}")
    ctx = _context()
    saved = ctx.mp.prec
    try:
        plans: dict[bool, _Plan] = {}
        if prec is not None:
            if not isinstance(prec, int) or prec < 2:
                raise ValueError(f"prec must be an integer number of bits >= 2, got {prec!r}")
            run = _run(graph, plans, ctx, prec, track=False, last=True)
            return _result(graph, run, prec, (prec,), certified=False)
        quick = _fast.plan(graph) if ctx.quick else None
        p = START_PREC
        tried: list[int] = []
        while True:
            p = min(p, max_prec)
            last = p >= max_prec
            tried.append(p)
            if quick is not None and (done := _quick(graph, quick, p, tuple(tried))):
                return done
            run = _run(graph, plans, ctx, p, track=True, last=last)
            missing, where, what, vf, gf = _certify(graph, run)
            if missing <= 0:
                return _result(graph, run, p, tuple(tried), True, vf, gf)
            if last:
                raise Unresolved(where, f"{what} is not certified at {p} bits "
                                        f"(max_prec={max_prec})")
            p = max(53 + 2 * (p - 53), p + int(missing) + 32)
    finally:
        ctx.mp.prec = saved


def _certify(graph: Graph, run: _Run) -> tuple[float, int | None, str, list[float],
                                                list[float]]:
    """How many more bits the worst result needs (<= 0: all certified), where, and
    the float64 roundings of every value and leaf gradient."""
    if run.doubtful is not None:
        return 64.0, run.doubtful, run.reason, [], []
    if type(run.values[-1]) is _MPFR:  # most roundings are quickly shown certain
        with _mpfr.context(run.prec):
            values_f64, doubt = _mpfr.certain_many(run.values, run.errs)
            return _certify_all(graph, run, _mpfr.certain, values_f64, doubt)
    return _certify_all(graph, run, None, [0.0] * len(run.values), range(len(run.values)))


def _certify_all(graph: Graph, run: _Run, quick: Callable[[Any, float], tuple[float, bool]]
                 | None, values_f64: list[float], doubt: Sequence[int],
                 ) -> tuple[float, int | None, str, list[float], list[float]]:
    """The rest of :func:`_certify`, given the values' quick roundings and the
    positions of those not yet shown certain (decided here exactly)."""
    worst, where, what = 0.0, None, ""
    values, errs = run.values, run.errs
    for i in doubt:
        v, e = values[i], errs[i]
        f, ok = _certain(v, e)
        values_f64[i] = f
        if not ok:
            need = e - (_mag(v) - 53 - 8) if v else e + 1080
            if need > worst or where is None:
                worst, where, what = max(need, 1.0), i, f"the value of node {i}"
    grad_f64: list[float] = []
    for k, leaf in enumerate(run.leaves):
        g, e = run.grads[leaf], run.gerrs[leaf]
        if g is None:
            grad_f64.append(0.0)
            continue
        if _mag(g) > _BIG:  # tiny is fine: rounding to 0 is decided on exact integers
            raise Unresolved(leaf, f"the gradient of leaf {k} is beyond 2**(2**50)")
        if quick is None or not (r := quick(g, e))[1]:
            r = _certain(g, e)
        f, ok = r
        grad_f64.append(f)
        if not ok:
            need = e - (_mag(g) - 53 - 8) if g else e + 1080
            if need > worst or where is None:
                worst, where, what = max(need, 1.0), leaf, f"the gradient of leaf {k}"
    return worst, where, what, values_f64, grad_f64


def _result(graph: Graph, run: _Run, prec: int, tried: tuple[int, ...],
            certified: bool, values_f64: Sequence[float] | None = None,
            grad_f64: Sequence[float] | None = None) -> Exact:
    ctx = _context()
    raw_grads = [0 if run.grads[i] is None else run.grads[i] for i in run.leaves]
    vf = tuple(values_f64) if values_f64 is not None else _roundings(run.values, run.prec)
    gf = tuple(grad_f64) if grad_f64 is not None else _roundings(raw_grads, run.prec)
    overflow = math.isinf(vf[-1]) or any(math.isinf(g) for g in gf)
    return Exact._lazy(graph, run.values, raw_grads, ctx.to_mpf, ctx.mp.zero,
                       value_f64=vf[-1], grad_f64=gf, values_f64=vf,
                       prec=prec, overflow=overflow, kinks=tuple(run.kinks),
                       certified=certified, precisions=tried)


def _roundings(xs: Sequence[Any], prec: int) -> tuple[float, ...]:
    """The float64 roundings of numbers of one pass (mpfr converts itself to a
    normal float64 correctly, to nearest in the oracle's context)."""
    if not xs or not any(type(x) is _MPFR for x in xs):
        return tuple(map(round_to, xs))
    with _mpfr.context(prec):
        return tuple(f if 2.0**-1021 < abs(f := float(x)) < 2.0**1023 else round_to(x)
                     for x in xs)


def exact(f: Callable[..., Any], xs: Sequence[float], **options: Any) -> Exact:
    """Trace ``f`` (written with the reference engine's operators) at ``xs`` and
    return its exact value and gradient (:func:`exact_graph`).

    ``f`` takes one argument per input: ``+ - * /`` (also with numbers on
    either side), ``**`` with a constant exponent, unary ``-``, and the
    methods ``.log() .exp() .relu() .tanh() .sigmoid()``.

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
