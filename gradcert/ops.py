"""The op table: every fact about an op, on its row.

Each :class:`Op` row says what the op computes and everything gradcert needs
to know about it, so that adding an op is one row here, the reference
engine's own one-line method, and the independent mpmath reference in the
tests:

- **what it is**: arity, constant, domain, and ``eval``, the value and exact
  partial derivatives written once against a numeric namespace ``ns`` (the
  ``math`` module for float64, an mpmath context, or the oracle's MPFR
  namespace), as mpmath writes a function once against a context;
- **how it is spelled**: ``template`` (``"{0} + {c}"``, ``"{0}.log()"``,
  ``"abs({0})"``), from which its application to an engine's objects
  (:meth:`Op.apply`), the tracer's operators (:func:`dispatch`) and the
  reproducers' interpreters are generated; ``function``, its name in
  numpy-like namespaces;
- **what the oracle needs**: ``kind``, the operand and point where its domain
  test flips (``edge``), how many correctly rounded operations ``eval`` takes
  (``roundings``), and ``variation``, a bound on how far each partial moves
  over its operands' error intervals, with its soundness argument beside it
  (``eval`` and ``variation`` multiply any intermediate result by at most 8
  factors on its way to a value, partial or bound: the oracle's bound on
  what an underflow moves rests on it);
- **what the tolerance model needs**: the roundings a correct float engine's
  value and derivative may carry (``float_roundings``), the partials as
  engines compute them from the rounded output (``output_form``) and how far
  those move (``output_error``), the effect of a rounded constant;
- **what the strategies need**: edge inputs, constants, and how to chain it.

Bounds (``variation``, ``output_error``) are written against ``ns`` too:
they run on floats (the tolerance model, the oracle's float-bound screen)
and on MPFR numbers (the oracle's general pass). Their arguments: ``xs`` the
operands as numbers of that system, ``es`` bounds on the operands' errors,
``c`` the constant (or None), ``out`` the value, ``ps`` the partials.

>>> OPS["log"].eval(math, 2.0)
(0.6931471805599453, (0.5,))
>>> OPS["raddc"].template, OPS["raddc"].apply(3.0, 1.5)
('{c} + {0}', 4.5)
>>> dispatch()["__radd__"]
(('const', 'raddc'),)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OPS", "Op", "dispatch", "interpreter_source"]

Rule = Callable[..., tuple[Any, ...]]
Roundings = tuple[float, float] | Callable[[Any], tuple[float, float]]


def _everywhere(*operands: Any) -> str | None:
    return None


def _positive(*operands: Any) -> float:
    return 1.0


def _constant_partials(ns: Any, xs: Any, es: Any, c: Any, out: Any,
                       ps: tuple[Any, ...]) -> tuple[Any, ...]:
    return (0,) * len(ps)


def _powc_float_roundings(operands: Any) -> tuple[float, float]:
    """libm's pow is within 1 ulp (value and derivative: 4 roundings each); a correct
    engine's derivative c * x ** (c - 1) also rounds c - 1, by up to u * |c - 1|,
    which moves x ** (c - 1) by a relative |ln x| * u * |c - 1| more."""
    x, c = operands[0], operands[-1]
    if x == 0 or not math.isfinite(x) or c == 1:
        return (4, 4)
    return (4, 4 + abs(c - 1) * abs(math.log(abs(x))))


@dataclass(frozen=True)
class Op:
    """One row of the op table (see the module docstring for what each part is for).

    ``eval(ns, *operands)`` returns ``(value, partials)``: operands are the
    node operands, then the constant when ``has_const``. ``domain`` returns
    why operands are outside the op's domain, or None. ``kind`` is
    ``"linear"`` (constant partials), ``"kink"`` (piecewise linear: the sign
    of ``switch(*nodes)`` picks the branch, and a partial jumps by at most
    ``jump`` across it) or ``"smooth"``. ``same`` is the exact result when
    both operands are one node: ``"zero"`` (a - a), ``"one"`` (a / a) or
    ``"first"`` (max(a, a)). ``overflow_sign`` is the sign of a value too large
    for float64. ``partner`` is the op's inverse: ``op(partner(y)) == y`` exactly
    wherever ``partner(y)`` is defined (exp and log), which the oracle uses
    (``exp(log(y))`` is y, exactly) and the strategies chain; ``shifted`` is
    ``(g, k)`` with ``op(g(y)) == y + k`` exactly wherever ``g(y)`` is defined
    (expm1 of log is y - 1), which the oracle uses alike. ``open_range`` is
    an open interval the exact value never leaves (sigmoid's (0, 1)): a value
    computed on its end is exactly inside.
    """

    name: str
    arity: int
    has_const: bool
    template: str
    eval: Callable[..., tuple[Any, tuple[Any, ...]]]
    domain: Callable[..., str | None] = _everywhere
    overflow_sign: Callable[..., float] = _positive
    commutative: bool = False
    same: str | None = None
    # the oracle
    kind: str = "smooth"
    edge: tuple[int, float] | Callable[[float], tuple[int, float] | None] | None = None
    roundings: Roundings = (1, 1)
    variation: Rule = _constant_partials
    switch: Callable[..., Any] | None = None
    jump: float = 0.0
    open_range: tuple[float, float] | None = None
    # the tolerance model
    float_roundings: Roundings = (1, 0)
    output_form: Callable[..., tuple[Any, ...] | None] | None = None
    output_error: Rule | None = None
    const_effect: Callable[[float, float, float], tuple[float, float]] | None = None
    # the strategies
    edges: tuple[float, ...] = ()
    consts: tuple[float, ...] | None = None
    tame_const: float | None = None
    chain_leaf: str = "any"
    chain_consts: str | tuple[float, ...] | None = None
    partner: str | None = None
    shifted: tuple[str, float] | None = None
    safe_chain: tuple[float, float | None] = (0.5, 1.0)
    # spellings
    function: str | None = None
    _apply: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = ["a", "b"][:self.arity] + (["c"] if self.has_const else [])
        body = self.template.format(*names[:self.arity], c="c")
        object.__setattr__(self, "_apply", eval(f"lambda {', '.join(names)}: {body}"))

    def apply(self, *operands: Any) -> Any:
        """The op applied with its spelling to live objects (an engine's Values,
        tensors, numbers): the node operands, then the constant if it has one."""
        return self._apply(*operands)

    def forward(self, ns: Any, *operands: Any) -> Any:
        """The op's value in namespace ``ns`` (``eval`` without the partials)."""
        return self.eval(ns, *operands)[0]

    def partials(self, ns: Any, *operands_and_out: Any) -> tuple[Any, ...]:
        """The exact partials in ``ns``; the trailing ``out`` (the value) is accepted
        for the callers that have it and is not needed."""
        return self.eval(ns, *operands_and_out[:-1])[1]

    def domain_edge(self, const: float | None) -> tuple[int, float] | None:
        """``(operand, point)`` where the domain test flips, for this constant; None
        if the op is defined on the whole real line."""
        return self.edge(const) if callable(self.edge) else self.edge  # type: ignore[arg-type]

    def rounding_counts(self, operands: Any, *, exact: bool) -> tuple[float, float]:
        """Roundings of the value and of each partial: of ``eval`` in the oracle's
        MPFR arithmetic (``exact=True``), or of a correct float64 engine's; a callable
        count is given the operands (and the constant)."""
        r = self.roundings if exact else self.float_roundings
        return r(operands) if callable(r) else r

    @property
    def has_domain(self) -> bool:
        """Whether some real operands are outside the op's domain."""
        return self.domain is not _everywhere

    @property
    def copies(self) -> bool:
        """Whether its result is an operand or a sum of operands (no product): exact
        below the normal range, where products and functions underflow."""
        if self.kind == "kink":
            return True
        if self.kind != "linear":
            return False
        ps = self.partials(math, *([1.0] * self.arity), *([3.0] if self.has_const else []),
                           None)
        return all(p in (1, -1) for p in ps)


# ---------------------------------------------------------------------------
# Bounds over error intervals. An operand x known to within e lies in
# [x - e, x + e]; these give the extremes of |x + d| there. ``_times`` keeps a
# zero error zero (0 * inf is no error, not nan); ``_inv(0)`` is inf.


# The interval is widened by a relative 2**-20: a bound computed in floating
# point may fall short of the exact one by far less than that, so the extremes
# here stay extremes of the exact interval (the oracle's soundness argument,
# gradcert/oracle/bounds.py, rests on it; the tolerance model does not notice).
_WIDE = 1 + 2.0**-20


def _near(m: Any, e: Any) -> Any:
    """The smallest |x + d| for |d| <= e, given m = |x|: 0 when the interval reaches 0."""
    e = e * _WIDE
    return m - e if e < m else 0 * m


def _far(m: Any, e: Any) -> Any:
    """The largest |x + d| for |d| <= e, given m = |x|."""
    return m + e * _WIDE


def _inv(m: Any) -> Any:
    return 1 / m if m > 0 else math.inf


def _times(e: Any, k: Any) -> Any:
    return e * k if e else 0 * e


def _pow_sup(m: Any, e: Any, k: Any) -> Any:
    """The largest |x + d| ** k for |d| <= e, given m = |x|."""
    if k >= 0:
        return _far(m, e) ** k
    near = _near(m, e)
    return near ** k if near > 0 else math.inf


# ---------------------------------------------------------------------------
# The rows: + - * / and their forms with a constant.


def _div_domain(x: Any, y: Any) -> str | None:
    return "division by zero" if y == 0 else None


def _div(ns: Any, x: Any, y: Any) -> tuple[Any, tuple[Any, ...]]:
    q = x / y
    return q, (1 / y, -q / y)


def _div_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # 1/y moves by |d|/(|y| |y + d|) <= ey / near(y)**2; x/y**2 moves by at most
    # ex / near(y)**2 + |x + dx| |1/y**2 - 1/(y + d)**2|, and the latter is at most
    # far(x) ey (2|y| + ey) / (y**2 near**2) <= 2 far(x) ey / near**3.
    ex, ey = es
    near = abs(xs[1]) - ey * _WIDE
    if not near > 0:
        return (math.inf if ey else 0 * ey, math.inf)
    ny2 = 1 / (near * near)
    return (ey * ny2, ex * ny2 + ey * 2 * (abs(xs[0]) + ex * _WIDE) * ny2 / near)


def _div_output(ns: Any, x: Any, y: Any, out: Any) -> tuple[Any, ...]:
    return (1 / y, -out / y)


def _div_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                      u: float) -> tuple[Any, ...]:
    # -out/y from the rounded out: |o'/y' - o/y| <= fo/near(y) + far(o) ey / (|y| near(y))
    x, y = xs
    ny = _inv(_near(abs(y), es[1]))
    return (_times(es[1], ny * ny),
            _times(fo, ny) + _times(es[1], _far(abs(out), fo) * ny * _inv(abs(y))))


def _divc_domain(x: Any, c: Any) -> str | None:
    return "division by zero" if c == 0 else None


def _rdivc(ns: Any, x: Any, c: Any) -> tuple[Any, tuple[Any, ...]]:
    q = c / x
    return q, (-q / x,)


def _rdivc_domain(x: Any, c: Any) -> str | None:
    return "division by zero" if x == 0 else None


def _rdivc_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # c/x**2 moves by at most 2 |c| e / near(x)**3 (as x/y**2 in div)
    nx = _inv(_near(abs(xs[0]), es[0]))
    return (_times(es[0], 2 * abs(c) * nx * nx * nx),)


def _rdivc_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                        u: float) -> tuple[Any, ...]:
    # -out/x from the rounded out, as in div
    nx = _inv(_near(abs(xs[0]), es[0]))
    return (_times(fo, nx) + _times(es[0], _far(abs(out), fo) * nx * _inv(abs(xs[0]))),)


# x ** c: the value, and the partial as c * (out / x): two roundings on the
# value's, all relative (c - 1 would round the exponent, and x ** (c - 1)
# turns that into a relative error |log x| times as large). Where out
# underflows (in float64 only), c * x ** (c - 1). At x = 0 (an integer c >= 0,
# by the domain) the partial is 1 for c = 1 and 0 otherwise. In exact
# arithmetic a half-integer power (x ** 0.5, x ** -0.5, x ** 1.5: norms) is x ** k
# times or over sqrt(x), k the integer next to c towards 0, three roundings
# (MPFR's pow of a non-integer exponent costs ten times as much); x ** k (x > 0,
# by the domain) lies between 1 and the value, so it over- or underflows only
# where the value does.
# Floats keep libm's pow: the float64 forward is an engine's, bit for bit.


def _powc(ns: Any, x: Any, c: Any) -> tuple[Any, tuple[Any, ...]]:
    if not x:
        v = x**c
        return v, (x - x + 1 if c == 1 else x - x,)
    f = float(c)
    if f % 1 == 0.5 and x > 0 and type(x) is not float:
        r = ns.sqrt(x)
        v = x ** int(f - 0.5) * r if f > 0 else x ** int(f + 0.5) / r
    else:
        v = x**c
    return v, (c * (v / x) if v else c * x ** (c - 1),)


def _powc_domain(x: Any, c: Any) -> str | None:
    if not float(c).is_integer():
        return None if x > 0 else "a non-integer power needs a positive base"
    if c < 0 and x == 0:
        return "0 to a negative power"
    return None


def _powc_overflow_sign(x: Any, c: Any) -> float:
    return -1.0 if x < 0 and float(c).is_integer() and int(c) % 2 else 1.0


def _powc_edge(c: float) -> tuple[int, float] | None:
    return None if float(c).is_integer() and c >= 0 else (0, 0.0)


def _powc_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # c x**(c-1) moves by at most e |c (c - 1)| sup |x + d|**(c - 2) (mean value theorem;
    # for an integer c >= 2 this holds across 0 too, so an inexact zero base is fine)
    if c == 0 or c == 1:
        return (0 * es[0],)
    return (_times(es[0], abs(c * (c - 1)) * _pow_sup(abs(xs[0]), es[0], c - 2)),)


def _powc_output(ns: Any, x: Any, c: Any, out: Any) -> tuple[Any, ...] | None:
    return (c * out / x,) if x != 0 else None


def _powc_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                       u: float) -> tuple[Any, ...]:
    # c out/x from the rounded out: |c| (fo/near(x) + far(out) e / (|x| near(x)))
    x = xs[0]
    if x == 0:
        return (0 * fo,)
    nx = _inv(_near(abs(x), es[0]))
    return (_times(fo, abs(c) * nx) + _times(es[0], abs(c) * _far(abs(out), fo) * nx
                                               * _inv(abs(x))),)


def _powc_const(x: float, c: float, out: float) -> tuple[float, float]:
    # d(x**c)/dc = x**c log|x|; d(c x**(c-1))/dc = x**(c-1) (1 + c log|x|)
    if x == 0.0:
        return 0.0, 0.0
    lx = math.log(abs(x))
    try:
        p = abs(x) ** (c - 1)
    except OverflowError:
        p = math.inf
    return abs(out * lx), abs(p * (1.0 + c * lx))


# ---------------------------------------------------------------------------
# Functions.


def _log(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    return ns.log(x), (1 / x,)


def _log_domain(x: Any) -> str | None:
    return None if x > 0 else "log needs a positive input"


def _log_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # |1/(x + d) - 1/x| = |d| / (|x| |x + d|) <= e / (|x| near(x))
    m, e = abs(xs[0]), es[0]
    near = m - e * _WIDE
    return (e / (m * near) if near > 0 else math.inf if e else 0 * e,)


def _exp(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    v = ns.exp(x)
    return v, (v,)


def _exp_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # |exp(x + d) - exp(x)| <= exp(x) (exp(e) - 1) = exp(x + e) (1 - exp(-e)), and
    # 1 - exp(-e) <= min(1, e): finite where exp(e) is not, tiny where exp(x) is
    e = es[0]
    return (ns.exp(xs[0] + e * _WIDE) * min(e, 1) if e else 0 * e,)


def _exp_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                      u: float) -> tuple[Any, ...]:
    return (fo,)  # exp' = out: as far off as the rounded out


def _relu(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    return (x, (1,)) if x > 0 else (x - x, (0,))  # relu'(0) = 0 by convention


def _tanh(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    # tanh' = sech^2 = 4e/(1 + e)^2 with e = exp(-2|x|): no cancellation at any x.
    # Relative errors: e one rounding, 1 + e 1.5, its square 4, the quotient 6.
    # In exact arithmetic one function, not two: below |x| = 1/2, t = tanh(x) and
    # tanh' = 1 - t*t >= 0.78 (t*t <= 0.22 three roundings, so 1.9 in all); from it
    # on, e <= 1/e and tanh|x| = (1 - e)/(1 + e): 1 - e >= 0.63 takes e's error as
    # at most 0.6 of its own, so 1.6 roundings, 1 + e 1.3, the quotient 3.9. Floats
    # keep libm's tanh: the float64 forward is an engine's, bit for bit
    ax = abs(x)
    if type(x) is not float and ax < 0.5:
        t = ns.tanh(x)
        return t, (1 - t * t,)
    e = ns.exp(-2 * ax)
    d = 1 + e
    if type(x) is not float:
        t = (1 - e) / d
        return (t if x > 0 else -t), (4 * e / (d * d),)
    return ns.tanh(x), (4 * e / (d * d),)


def _tanh_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # |(sech^2)'| = 2 |tanh| sech^2: |tanh| grows with |x| and sech^2 shrinks, so over
    # the interval it is at most 2 tanh(far) sech^2(near); and sech^2 in (0, 1] moves
    # by less than its largest value, sech^2(near)
    m, e = abs(xs[0]), es[0]
    w = e * _WIDE
    t = ns.exp(-2 * (m - w)) if m > w else 1  # sech^2(near) = 4t/(1 + t)^2
    return (min(2 * e * ns.tanh(m + w), 1) * 4 * t / ((1 + t) * (1 + t)),)


def _tanh_output(ns: Any, x: Any, out: Any) -> tuple[Any, ...]:
    return (1 - out * out,)


def _tanh_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                       u: float) -> tuple[Any, ...]:
    # 1 - t*t from the rounded t: 2|t| fo + fo^2, and the rounding of t*t
    return (2 * abs(out) * fo + fo * fo + u * out * out,)


def _sigmoid(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    e = ns.exp(-abs(x))
    d = 1 + e
    return (1 / d if x >= 0 else e / d), (e / (d * d),)


def _sigmoid_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any,
                       ps: Any) -> tuple[Any, ...]:
    # |(s(1 - s))'| = s(1 - s) |1 - 2s| and |1 - 2s| = tanh(|x|/2) grows with |x|; and
    # s(1 - s) > 0 moves by less than its largest value, s'(near)
    m, e = abs(xs[0]), es[0]
    w = e * _WIDE
    t = ns.exp(-(m - w)) if m > w else 1  # s'(near) = t/(1 + t)^2
    return (min(e * ns.tanh((m + w) / 2), 1) * t / ((1 + t) * (1 + t)),)


def _sigmoid_output(ns: Any, x: Any, out: Any) -> tuple[Any, ...]:
    return (out * (1 - out),)


def _sigmoid_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                          u: float) -> tuple[Any, ...]:
    return (abs(1 - 2 * out) * fo + fo * fo,)  # s (1 - s) from the rounded s


# ---------------------------------------------------------------------------
# The ops real models use: sqrt, abs, max, min, log1p, expm1, erf, sin, cos, x ** y.


def _sqrt(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    v = ns.sqrt(x)
    return v, (1 / (2 * v),)  # the value's rounding and the quotient's: 2 (2 v is exact)


def _sqrt_domain(x: Any) -> str | None:
    return None if x > 0 else "sqrt needs a positive input (its derivative is infinite at 0)"


def _sqrt_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # |(1/(2 sqrt t))'| = 1/(4 t**1.5) falls with t, so over [x - e, x + e] the partial
    # moves by at most e / (4 near(x)**1.5) (mean value theorem)
    e = es[0]
    near = _near(abs(xs[0]), e)
    if not near > 0:
        return (math.inf if e else 0 * e,)
    return (e / (4 * near) / ns.sqrt(near) if e else 0 * e,)  # no overflow on the way


def _sqrt_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                       u: float) -> tuple[Any, ...]:
    # 0.5/out from the rounded out: |0.5/o' - 0.5/o| <= 0.5 fo / (|o| near(o))
    m = abs(out)
    return (fo * 0.5 * _inv(m) * _inv(_near(m, fo)) if fo else 0 * fo,)


def _abs(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    if x > 0:
        return x, (1,)
    return (-x, (-1,)) if x < 0 else (x - x, (0,))  # abs'(0) = 0 by convention


def _half(x: Any) -> Any:
    """1/2 in x's number system (exact in every one: float, MPFR, mpf, Fraction)."""
    return (x - x + 1) / 2


def _max(ns: Any, x: Any, y: Any) -> tuple[Any, tuple[Any, ...]]:
    if x > y:
        return x, (1, 0)
    if y > x:
        return y, (0, 1)
    h = _half(x)
    return x, (h, h)  # a tie splits the gradient evenly, by convention


def _min(ns: Any, x: Any, y: Any) -> tuple[Any, tuple[Any, ...]]:
    if x < y:
        return x, (1, 0)
    if y < x:
        return y, (0, 1)
    h = _half(x)
    return x, (h, h)


def _log1p(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    return ns.log1p(x), (1 / (1 + x),)  # 1 + x of exact operands, then the quotient: 2


def _log1p_domain(x: Any) -> str | None:
    return None if x > -1 else "log1p needs an input above -1"


def _log1p_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # |1/(1 + x + d) - 1/(1 + x)| <= e / (m near) with m = |1 + x|, read off the computed
    # partial (m = 1/|ps[0]|, within a few roundings, relative) rather than formed as
    # 1 + x from a float x, which would lose all of m's bits near the pole at -1
    e = es[0]
    if not e:
        return (0 * e,)
    m = 1 / abs(ps[0])
    near = m - e * _WIDE
    return (e / (m * near) if near > 0 else math.inf,)


def _expm1(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    # the partial as exp(x), not out + 1: near out = -1 that sum cancels. In exact
    # arithmetic, from x = -1/2 on, out + 1 >= 0.6 takes out's error as at most 0.65
    # of its own: 1.7 roundings, and one function, not two
    v = ns.expm1(x)
    return v, ((v + 1) if type(x) is not float and x >= -0.5 else ns.exp(x),)


def _expm1_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                        u: float) -> tuple[Any, ...]:
    return (fo,)  # expm1' = out + 1: as far off as the rounded out, and the sum's rounding


# erf' = 2/sqrt(pi) exp(-x*x). Its roundings: pi, the square root, the quotient (2.5 in
# all), exp and the product (2), and the rounding of x*x, which exp turns into a relative
# error of x*x times its own: at most 2 x**2 roundings while x*x 2**-p <= 1. Beyond that
# exp(-x*x) is far below MPFR's range (x*x > 2**30 ln 2): it underflows, and the oracle
# adds its slack for an underflow instead.
_ERF_SCALE = 2.26  # an upper bound on 4/sqrt(pi) = 2.2567...


def _erf(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    return ns.erf(x), (2 / ns.sqrt(ns.pi) * ns.exp(-x * x),)


def _erf_roundings(ax: Any) -> tuple[Any, Any]:
    # beyond x*x = 2**31 the partial underflows MPFR, whose slack covers it instead
    return (1, 5 + 2 * min(ax * ax, 2.0**31))


def _erf_float_roundings(operands: Any) -> tuple[float, float]:
    """libm's erf is within 1 ulp; a correct engine's erf' = 2/sqrt(pi) exp(-x*x) rounds
    x*x too, which exp turns into a relative error of x*x roundings."""
    x = operands[0]
    return (2, 4 + 2 * min(x * x, 750.0))  # beyond, exp(-x*x) is 0.0 in float64


def _erf_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # |erf''(t)| = (4/sqrt(pi)) |t| exp(-t*t) <= (4/sqrt(pi)) far exp(-near**2) over the
    # interval, and never above (4/sqrt(pi)) / sqrt(2e) < 1. exp's argument is shrunk by a
    # relative 2**-30 so that its rounding (a relative 2**-52 of near**2 moved into the
    # exponent) cannot make the bound fall short
    e = es[0]
    m = abs(xs[0])
    near, far = _near(m, e), _far(m, e)
    return (_times(e, min(1, _ERF_SCALE * far * ns.exp(-(near * near) * (1 - 2.0**-30)))),)


def _trig_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # sin' = cos moves by at most e sup |sin t| over the interval, and |sin t| <=
    # |sin x| + e = |out| + e; cos' = -sin likewise with |cos t| <= |cos x| + e. Never by
    # more than e (the mean value theorem with |sin|, |cos| <= 1)
    e = es[0]
    return (_times(e, min(1, _far(abs(out), e) * _WIDE)),)


def _sin(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    return ns.sin(x), (ns.cos(x),)  # MPFR's are correctly rounded at any x: 1 each


def _cos(ns: Any, x: Any) -> tuple[Any, tuple[Any, ...]]:
    return ns.cos(x), (-ns.sin(x),)


def _pow(ns: Any, x: Any, y: Any) -> tuple[Any, tuple[Any, ...]]:
    # x ** y of exact operands is one rounding; d/dx = y (out / x) and d/dy = out ln x,
    # three each (as powc's; where out underflows, in float64 only, y x ** (y - 1))
    v = x**y
    return v, (y * (v / x) if v else y * x ** (y - 1), v * ns.log(x))


def _pow_domain(x: Any, y: Any) -> str | None:
    return None if x > 0 else "x ** y with a node exponent needs a positive base " \
                              "(d/dy = x ** y ln x)"


def _pow_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    # Over the box |dx| <= ex, |dy| <= ey (x - ex > 0: the domain test's margin), each
    # partial moves by at most ex sup|d/dx| + ey sup|d/dy| (mean value theorem), with
    # d2/dx2 = y (y - 1) x**(y-2), d2/dxdy = x**(y-1) (1 + y ln x), d2/dy2 = x**y ln(x)**2.
    # x**(y-k) = exp((y - k) ln t) over the box is at most exp(z_k), z_k = (y - k) ln x
    # + ey L + (|y - k| + ey) ex / near, where L bounds |ln t| (at an end of [near, far])
    # and |ln t - ln x| <= ex / near. near and far are rounded, so their logs are off by
    # about 2**-52 absolute (relative where they are far from 1): L is raised by 2**-20
    # relative and 2**-50 absolute, and z_k by 2**-40 of its terms' size and of
    # |y - k| + ey, far more than those roundings, so exp(z_k) stays above the exact sup
    (x, y), (ex, ey) = xs, es
    near, far = _near(x, ex), _far(x, ex)
    if not near > 0:
        return (math.inf, math.inf)
    lx = ns.log(x)
    big_l = max(abs(ns.log(near)), abs(ns.log(far))) * _WIDE + 2.0**-50
    big_y = _far(abs(y), ey)
    slope = ex / near

    def sup(k: int) -> Any:
        terms = ((y - k) * lx, ey * big_l, (abs(y - k) + ey) * slope)
        z = terms[0] + terms[1] + terms[2]
        size = abs(terms[0]) + terms[1] + terms[2] + abs(y - k) + ey
        return ns.exp(z + size * 2.0**-40)

    cross = sup(1) * (1 + big_y * big_l)
    vx = _times(ex, big_y * (big_y + 1) * sup(2)) + _times(ey, cross) if ex else _times(
        ey, cross)
    vy = _times(ex, cross) + _times(ey, sup(0) * big_l * big_l) if ey else _times(ex, cross)
    return (vx, vy)


def _pow_float_roundings(operands: Any) -> tuple[float, float]:
    """libm's pow is within 1 ulp; d/dx = y * x ** (y - 1) also rounds y - 1, which
    moves x ** (y - 1) by a relative |ln x| * u * |y - 1| (as powc's)."""
    x, y = operands[0], operands[1]
    if not (x > 0 and math.isfinite(x) and math.isfinite(y)):
        return (4, 4)
    return (4, 4 + abs(y - 1) * abs(math.log(x)))


def _pow_output(ns: Any, x: Any, y: Any, out: Any) -> tuple[Any, ...]:
    return (y * out / x, out * ns.log(x))


def _pow_output_error(ns: Any, xs: Any, es: Any, c: Any, out: Any, fo: Any,
                      u: float) -> tuple[Any, ...]:
    # y out / x and out ln x from the rounded out and the operands' errors:
    # |y' o'/x' - y o/x| <= |y| (fo + far(o) ex / |x|) / near(x) + ey far(o) / near(x);
    # |o' ln x' - o ln x| <= fo L + far(o) ex / near(x), L the largest |ln| on [near, far]
    (x, y), (ex, ey) = xs, es
    near = _near(x, ex)
    if not near > 0:
        return (math.inf, math.inf)
    fo_ = _far(abs(out), fo)
    big_l = max(abs(ns.log(near)), abs(ns.log(_far(x, ex))))
    # divided rather than multiplied by 1/near, which overflows at a subnormal x
    return (abs(y) * (fo / near + _times(ex, fo_ / x) / near) + _times(ey, fo_) / near,
            _times(fo, big_l) + _times(ex, fo_) / near)


def _mul_variation(ns: Any, xs: Any, es: Any, c: Any, out: Any, ps: Any) -> tuple[Any, ...]:
    return (es[1], es[0])  # d(x y)/dx = y moves exactly as y does


def _const_shift(x: float, c: float, out: float) -> tuple[float, float]:
    return 1.0, 0.0


def _const_scale(x: float, c: float, out: float) -> tuple[float, float]:
    return abs(x), 1.0


_GENERAL = None  # constants: the strategies' general ones
_POW_CONSTS = (2.0, 3.0, 1.0, 0.0, -1.0, -2.0, -3.0, 4.0, 0.5, -0.5, 1.5, 1 / 3)
_LONG_POW_CONSTS = (1.0, -1.0, 0.5, -0.5, 1 / 3)  # powers a chain can repeat for long

_ROWS = [
    Op("add", 2, False, "{0} + {1}", lambda ns, x, y: (x + y, (1, 1)),
       commutative=True, kind="linear", edges=()),
    Op("sub", 2, False, "{0} - {1}", lambda ns, x, y: (x - y, (1, -1)),
       same="zero", kind="linear"),
    Op("mul", 2, False, "{0} * {1}", lambda ns, x, y: (x * y, (y, x)),
       commutative=True, roundings=(1, 0), variation=_mul_variation,
       edges=(1e150, -1e150, 1e-150, 1e-300, 0.0, -0.0), chain_leaf="near_one",
       safe_chain=(-1.0, None)),
    Op("div", 2, False, "{0} / {1}", _div, domain=_div_domain, same="one", edge=(1, 0.0),
       roundings=(1, 2), variation=_div_variation,
       float_roundings=(2, 2), output_form=_div_output, output_error=_div_output_error,
       edges=(1e-100, -1e-100, 1e100, -1e100, 3.0, 1 / 3), chain_leaf="near_one",
       safe_chain=(-1.0, None)),
    Op("addc", 1, True, "{0} + {c}", lambda ns, x, c: (x + c, (1,)), kind="linear",
       const_effect=_const_shift, tame_const=1.0),
    Op("raddc", 1, True, "{c} + {0}", lambda ns, x, c: (c + x, (1,)), kind="linear",
       const_effect=_const_shift, tame_const=1.0),
    Op("subc", 1, True, "{0} - {c}", lambda ns, x, c: (x - c, (1,)), kind="linear",
       const_effect=_const_shift, tame_const=1.0),
    Op("rsubc", 1, True, "{c} - {0}", lambda ns, x, c: (c - x, (-1,)), kind="linear",
       const_effect=_const_shift, tame_const=1.0),
    Op("mulc", 1, True, "{0} * {c}", lambda ns, x, c: (x * c, (c,)), kind="linear",
       const_effect=_const_scale, tame_const=0.5, chain_consts="near_one",
       safe_chain=(0.5, -1.0)),
    Op("rmulc", 1, True, "{c} * {0}", lambda ns, x, c: (c * x, (c,)), kind="linear",
       const_effect=_const_scale, tame_const=0.5, chain_consts="near_one",
       safe_chain=(0.5, -1.0)),
    Op("divc", 1, True, "{0} / {c}", lambda ns, x, c: (x / c, (1 / c,)), domain=_divc_domain,
       kind="linear", float_roundings=(2, 1),
       const_effect=lambda x, c, out: (abs(out / c), 1.0 / c / c),
       edges=(1e-300, 1e300, -1e300, 1 / 3), tame_const=2.0, chain_consts="near_one",
       safe_chain=(0.5, -1.0)),
    Op("rdivc", 1, True, "{c} / {0}", _rdivc, domain=_rdivc_domain, edge=(0, 0.0),
       roundings=(1, 2), variation=_rdivc_variation,
       float_roundings=(2, 2), output_form=lambda ns, x, c, out: (-out / x,),
       output_error=_rdivc_output_error,
       const_effect=lambda x, c, out: (1.0 / abs(x), 1.0 / x / x),
       edges=(1e-100, -1e-100, 1e100, 3.0, -1.0), tame_const=1.0, chain_consts="near_one",
       safe_chain=(0.5, 2.0)),
    Op("neg", 1, False, "-{0}", lambda ns, x: (-x, (-1,)), kind="linear",
       float_roundings=(0, 0)),
    Op("powc", 1, True, "{0} ** {c}", _powc, domain=_powc_domain, edge=_powc_edge,
       overflow_sign=_powc_overflow_sign,
       roundings=(3, 5), variation=_powc_variation,
       float_roundings=_powc_float_roundings, output_form=_powc_output,
       output_error=_powc_output_error,
       const_effect=_powc_const,
       edges=(-2.0, -0.5, -1.0, -3.0, -10.0, 0.0, 1e-100, 1e50, -1e50, 1 + 2**-52),
       consts=_POW_CONSTS, tame_const=2.0, chain_leaf="positive",
       chain_consts=_LONG_POW_CONSTS, safe_chain=(2.0, 0.5)),
    Op("log", 1, False, "{0}.log()", _log, domain=_log_domain, edge=(0, 0.0),
       variation=_log_variation, float_roundings=(2, 1),
       edges=(1e-300, 2.2250738585072014e-308, 1e-10, 1 + 2**-52, 1 - 2**-53, 1e300,
              1.7976931348623157e308, math.e, 0.5, 1e-16),
       chain_leaf="positive", partner="exp", safe_chain=(2.0, None), function="log"),
    Op("exp", 1, False, "{0}.exp()", _exp, variation=_exp_variation, open_range=(0.0, math.inf),
       float_roundings=(2, 2), output_form=lambda ns, x, out: (out,),
       output_error=_exp_output_error,
       edges=(700.0, 709.0, 709.78, -700.0, -745.0, -708.4, 1e-10, -1e-10, 88.7, -88.7,
              20.0),
       partner="log", shifted=("log1p", 1.0), function="exp"),
    Op("relu", 1, False, "{0}.relu()", _relu, kind="kink", switch=lambda x: x, jump=1.0,
       roundings=(0, 0), float_roundings=(0, 0),
       edges=(1e-300, -1e-300, 5e-324, -5e-324, 1e300, -1e300), chain_leaf="positive",
       function="relu"),
    Op("tanh", 1, False, "{0}.tanh()", _tanh, roundings=(4, 7), variation=_tanh_variation,
       open_range=(-1.0, 1.0),
       float_roundings=(4, 5), output_form=_tanh_output, output_error=_tanh_output_error,
       edges=(20.0, -20.0, 35.0, -35.0, 400.0, -400.0, 19.0, 1e-8, -1e-8, 710.0, 1e300),
       function="tanh"),
    Op("sigmoid", 1, False, "{0}.sigmoid()", _sigmoid, roundings=(4, 6), open_range=(0.0, 1.0),
       variation=_sigmoid_variation,
       float_roundings=(4, 5), output_form=_sigmoid_output,
       output_error=_sigmoid_output_error,
       edges=(35.0, -35.0, 20.0, -20.0, 400.0, -400.0, 36.8, -745.0, 1e-8, 710.0, -1e300),
       function="sigmoid"),
    Op("sqrt", 1, False, "{0}.sqrt()", _sqrt, domain=_sqrt_domain, edge=(0, 0.0),
       roundings=(1, 2), variation=_sqrt_variation,
       float_roundings=(1, 2), output_form=lambda ns, x, out: (0.5 / out,),
       output_error=_sqrt_output_error,
       edges=(4.0, 2.0, 9.0, 0.25, 1e-300, 5e-324, 2.2250738585072014e-308, 1e300,
              1.7976931348623157e308, 1 + 2**-52, 1e-16),
       chain_leaf="positive", safe_chain=(2.0, None), function="sqrt"),
    Op("abs", 1, False, "abs({0})", _abs, kind="kink", switch=lambda x: x, jump=2.0,
       roundings=(0, 0), float_roundings=(0, 0),
       edges=(1e-300, -1e-300, 5e-324, -5e-324, 1e300, -1e300, -2.0, -0.5),
       function="abs"),
    Op("max", 2, False, "{0}.max({1})", _max, commutative=True, same="first", kind="kink",
       switch=lambda x, y: x - y, jump=1.0, roundings=(0, 0), float_roundings=(0, 0),
       edges=(1e-300, -1e-300, 5e-324, 1e300, -1e300, 1 + 2**-52, -2.0 - 2**-51),
       chain_leaf="negative", safe_chain=(-1.0, None), function="maximum"),
    Op("min", 2, False, "{0}.min({1})", _min, commutative=True, same="first", kind="kink",
       switch=lambda x, y: y - x, jump=1.0, roundings=(0, 0), float_roundings=(0, 0),
       edges=(1e-300, -1e-300, 5e-324, 1e300, -1e300, 1 + 2**-52, -2.0 - 2**-51),
       chain_leaf="positive", safe_chain=(1.0, None), function="minimum"),
    Op("log1p", 1, False, "{0}.log1p()", _log1p, domain=_log1p_domain, edge=(0, -1.0),
       roundings=(1, 2), variation=_log1p_variation, float_roundings=(2, 2),
       edges=(-1 + 2**-53, -0.9, -0.5, 1e-16, -1e-16, 1e-300, 5e-324, 1e-8, 1e300,
              1.7976931348623157e308, math.e - 1),
       partner="expm1", function="log1p"),
    Op("expm1", 1, False, "{0}.expm1()", _expm1, roundings=(1, 2), variation=_exp_variation,
       open_range=(-1.0, math.inf), float_roundings=(2, 2),
       output_form=lambda ns, x, out: (out + 1,), output_error=_expm1_output_error,
       edges=(1e-10, -1e-10, 1e-16, 1e-300, 5e-324, 709.0, 709.78, -40.0, -745.0, -1e300,
              20.0, 0.5),
       partner="log1p", shifted=("log", -1.0), function="expm1"),
    Op("erf", 1, False, "{0}.erf()", _erf, roundings=_erf_roundings, variation=_erf_variation,
       open_range=(-1.0, 1.0), float_roundings=_erf_float_roundings,
       edges=(6.0, -6.0, 5.9, 27.0, -27.0, 26.5, 0.5, 1e-8, 1e-300, 5e-324, 1e300, -1e300),
       function="erf"),
    Op("sin", 1, False, "{0}.sin()", _sin, variation=_trig_variation, float_roundings=(2, 2),
       edges=(1e22, -1e22, math.pi, 2 * math.pi, math.pi / 2, 355.0, 1e300, 8.98846567431158e307,
              1e-8, 1e-300, 5e-324),
       function="sin"),
    Op("cos", 1, False, "{0}.cos()", _cos, variation=_trig_variation, float_roundings=(2, 2),
       edges=(1e22, -1e22, math.pi / 2, math.pi, 2 * math.pi, 355.0, 1e300,
              8.98846567431158e307, 1e-8, 1e-300, 5e-324),
       function="cos"),
    Op("pow", 2, False, "{0} ** {1}", _pow, domain=_pow_domain, edge=(0, 0.0),
       roundings=(1, 3), variation=_pow_variation,
       float_roundings=_pow_float_roundings, output_form=_pow_output,
       output_error=_pow_output_error,
       edges=(2.0, 0.5, 10.0, 1e-300, 1e300, 1 + 2**-52, 1e-10),
       chain_leaf="positive_near_one", safe_chain=(1.0, None)),
]

OPS: dict[str, Op] = {op.name: op for op in _ROWS}
"""The op table, by name, simplest first (strategies shrink towards the front)."""


# ---------------------------------------------------------------------------
# Spellings. A template is one of: "{0} OP {1}", "{0} OP {c}", "{c} OP {0}",
# "OP{0}", "{0}.name()", "{0}.name({1})", "name({0})". From them come the
# Python methods a tracer needs and the interpreter of big reproducers.

_DUNDER = {"+": "add", "-": "sub", "*": "mul", "/": "truediv", "**": "pow"}
_FORMS = [
    (re.compile(r"\{0\} (\S+) \{1\}"), lambda m: (f"__{_DUNDER[m[1]]}__", "node")),
    (re.compile(r"\{0\} (\S+) \{c\}"), lambda m: (f"__{_DUNDER[m[1]]}__", "const")),
    (re.compile(r"\{c\} (\S+) \{0\}"), lambda m: (f"__r{_DUNDER[m[1]]}__", "const")),
    (re.compile(r"-\{0\}"), lambda m: ("__neg__", "none")),
    (re.compile(r"\{0\}\.(\w+)\(\)"), lambda m: (m[1], "none")),
    (re.compile(r"\{0\}\.(\w+)\(\{1\}\)"), lambda m: (m[1], "node")),
    (re.compile(r"(\w+)\(\{0\}\)"), lambda m: (f"__{m[1]}__", "none")),
]


def _spelling(op: Op) -> tuple[str, str]:
    """(Python method, what it takes besides self: "node", "const" or "none")."""
    for pattern, read in _FORMS:
        m = pattern.fullmatch(op.template)
        if m:
            return read(m)
    raise ValueError(f"op {op.name}: cannot read its template {op.template!r}")


def dispatch(ops: Mapping[str, Op] | None = None) -> dict[str, tuple[tuple[str, str], ...]]:
    """For each Python method a traced value needs, what its other operand may be
    (``"node"``, ``"const"``, or ``"none"`` for a unary method) and the op it makes.

    >>> dispatch()["__pow__"]
    (('const', 'powc'), ('node', 'pow'))
    """
    table: dict[str, list[tuple[str, str]]] = {}
    for op in (OPS if ops is None else ops).values():
        method, takes = _spelling(op)
        table.setdefault(method, []).append((takes, op.name))
    return {m: tuple(v) for m, v in table.items()}


def interpreter_source(ops: Mapping[str, Op] | None = None, *, name: str = "OPS",
                       lookup: str | None = None, uniform: bool = True) -> str:
    """Python source of ``name = {op: lambda ...}``: each op applied to an engine's
    objects as spelled. ``uniform``: binary ops take ``(a, b, c)`` and unary ones
    ``(a, c)``, ``c`` the constant or None; else each takes its operands and, if it
    has one, the constant. With ``lookup``, ops that have a ``function`` name call
    ``lookup(name)`` on their operands instead (``np.log(a)`` rather than ``a.log()``).

    >>> print(interpreter_source().splitlines()[1])
        "add": lambda a, b, c: a + b,
    >>> print(interpreter_source(lookup="F", uniform=False).splitlines()[15])
        "log": lambda a: F("log")(a),
    """
    lines = [f"{name} = {{"]
    for op in (OPS if ops is None else ops).values():
        operands = ["a", "b"][:op.arity]
        args = operands + (["c"] if uniform or op.has_const else [])
        if lookup is not None and op.function is not None:
            body = f"{lookup}({op.function!r})({', '.join(operands)})"
        else:
            body = op.template.format(*operands, c="c")
        lines.append(f"    {op.name!r}: lambda {', '.join(args)}: {body},")
    lines.append("}")
    return "\n".join(lines).replace("'", '"') + "\n"
