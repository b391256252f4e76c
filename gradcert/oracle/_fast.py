"""The oracle's fast error-tracked pass: mpfr numbers, error bounds in floats.

The general pass of gradcert.oracle.exact keeps its error bounds as log2
magnitudes, so they span any exponent, but every sum of two bounds costs a
log2 and a power. On the common graph every value, partial and gradient is
an ordinary number, and then the same running error analysis fits in plain
floats: this pass keeps, for every value, partial and gradient, its absolute
error bound times ``2**prec`` (so a correctly rounded result adds its own
magnitude) and each magnitude as ``abs(float(x))``, and sums them as floats.

It computes the same values as the general pass (the op table's formulas,
written out per op, at the same precision: equal bit for bit) and the same
gradients but for x ** c, whose partial c * x**(c-1) it takes as
c * (x**c / x), a division instead of a second power. It bounds their errors
by the same first-order rules, exactness read from MPFR's ternary value.
Float arithmetic rounds the bounds by a relative 2**-53 per operation; the
bounds are doubled when they are handed on (:func:`log_bound`), which covers
any chain shorter than 2**51 operations.

It is sound only where floats are: every nonzero magnitude (value, partial,
gradient, constant) within 2**+-400 and every nonzero bound within 2**+-600,
so that no product of a bound and a magnitude underflows or overflows; at
most 1000 bits and at least 53. Whenever anything is outside that, or
anything else is unusual (an op outside its domain, a sign or an operand too inexact for a
first-order bound, an inexact zero where a magnitude is needed), the pass
gives up and returns None: the general pass then decides, with its own
diagnostics, at the same precision.
"""

from __future__ import annotations

import math
from typing import Any

import gmpy2
from gmpy2 import exp, log, mpfr, tanh

from gradcert.graph import Graph

__all__ = ["MIN_PREC", "MAX_PREC", "Plan", "plan", "run", "log_bound", "certain"]

MIN_PREC = 53
"""The smallest working precision of this pass: gmpy2 takes a float constant
into an operation exactly only at 53 bits or more."""

MAX_PREC = 1000
"""The largest working precision of this pass: 2**-prec stays a normal float."""

_LO, _HI = 2.0**-400, 2.0**400  # nonzero magnitudes must lie within these
_FLOOR, _CEIL = 2.0**-600, 2.0**600  # nonzero error bounds must lie within these
_NEG = -math.inf
_ONE = mpfr(1)

# op codes: first those whose partials are constants 1, -1 or 0 (negated from
# RSUBC on), then those with two partials, then the rest
(ADD, SUB, ADDC, RELU, RSUBC, NEG, MUL, DIV, MULC, EXP, TANH, SIGMOID, LOG, POWC, DIVC,
 RDIVC) = range(16)
_CODES = {"add": ADD, "sub": SUB, "mul": MUL, "mulc": MULC, "rmulc": MULC, "relu": RELU,
          "exp": EXP, "tanh": TANH, "sigmoid": SIGMOID, "log": LOG, "div": DIV,
          "powc": POWC, "addc": ADDC, "raddc": ADDC, "subc": ADDC, "rsubc": RSUBC,
          "neg": NEG, "divc": DIVC, "rdivc": RDIVC}


class Plan:
    """A graph as rows ``(code, node, arg0, arg1, constant, |constant|)`` and its
    leaves as exact mpfr numbers."""

    __slots__ = ("rows", "leaf_values", "leaves", "n")

    def __init__(self, rows: list[tuple[Any, ...]], leaf_values: list[Any],
                 leaves: tuple[int, ...], n: int) -> None:
        self.rows = rows
        self.leaf_values = leaf_values
        self.leaves = leaves
        self.n = n


def plan(graph: Graph) -> Plan | None:
    """The graph as this pass runs it, or None if a leaf or constant is beyond
    2**+-400 (then only the general pass runs)."""
    rows: list[tuple[Any, ...]] = []
    leaf_values: list[Any] = []
    codes = _CODES
    lo, hi = _LO, _HI
    with gmpy2.context(precision=53):
        zero = mpfr(0)  # zero + x is x exactly, and cheaper than mpfr(x)
        for i, node in enumerate(graph.nodes):
            name = node.op
            if name == "leaf":
                x = node.value
                if x and not lo <= abs(x) <= hi:
                    return None
                leaf_values.append(zero + x)
                continue
            leaf_values.append(None)
            args = node.args
            c = node.const
            if c is None:
                rows.append((codes[name], i, args[0], args[-1], 0.0, 0.0))
                continue
            ac = abs(c)
            if c and not lo <= ac <= hi:
                return None
            # constants stay floats: gmpy2 takes them exactly into each operation
            rows.append((codes[name], i, args[0], -1, -c if name == "subc" else c, ac))
    return Plan(rows, leaf_values, graph.leaves, len(graph.nodes))


def run(p: Plan, prec: int) -> tuple[list[Any], list[float], list[Any], list[float],
                                     list[int]] | None:
    """Values, their error bounds, gradients (None for zero), their bounds, and
    the nodes at a kink, at ``prec`` bits; or None when this pass cannot bound
    them (see the module). Bounds are in units of ``2**-prec`` and not yet
    doubled: :func:`log_bound` turns one into the log2 of an absolute bound.
    The caller holds a gmpy2 context of ``prec`` bits and checks its flags."""
    if not MIN_PREC <= prec <= MAX_PREC:
        return None
    try:
        got = _forward(p, prec)
        if got is None:
            return None
        values, errs, kinks, parts = got
        back = _reverse(p, prec, parts)
    except (OverflowError, ZeroDivisionError, ValueError):
        return None
    if back is None:
        return None
    return values, errs, back[0], back[1], kinks


def log_bound(e: float, prec: int) -> float:
    """log2 of the absolute error bound that a bound ``e`` of :func:`run` stands
    for: doubled (for the bounds' own float roundings) and scaled by 2**-prec."""
    return math.log2(e) + 1.0 - prec if e else _NEG


def certain(values: list[Any], errs: list[float], prec: int) -> tuple[list[float], list[int]]:
    """The float64 roundings of values of :func:`run`, and the positions of those
    whose error bound does not show that rounding certain here (the caller
    decides them exactly). Needs a context of ``prec`` bits.

    A rounding is certain when ``|v - f| + err`` stays below the distance from
    ``f`` to a rounding boundary: half an ulp, a quarter below a power of two
    (taken on both sides). ``v - f`` is exact at ``prec`` >= 53 bits; every
    value here is a normal float64, or zero.
    """
    fs: list[float] = []
    doubt: list[int] = []
    ulp = math.ulp
    scale = 2.0 ** (1 - prec)
    tiny = 2.0**-1000  # covers a bound's underflow in e * scale
    slack = 1.0 - 2.0**-40
    top = 2.0**52
    for i, (v, e) in enumerate(zip(values, errs, strict=True)):
        f = float(v)
        fs.append(f)
        if not v:
            if e:
                doubt.append(i)
            continue
        r = v - f
        u = ulp(f)
        gap = u * 0.25 if abs(f) == u * top else u * 0.5
        if r.rc or not (abs(float(r)) * (1.0 + 2.0**-50) + (e * scale + tiny if e else 0.0)
                        < gap * slack):
            doubt.append(i)
    return fs, doubt


def _forward(p: Plan, prec: int) -> tuple[list[Any], list[float], list[int],
                                          tuple[list[Any], ...]] | None:
    """Values, their error bounds, the nodes at a kink, and each node's partials
    as lists (value, magnitude and bound of the first and the second
    operand's; relu's is 0 or 1)."""
    LO, HI, FLOOR, CEIL = _LO, _HI, _FLOOR, _CEIL
    s = 2.0**-prec
    K = 2.0 ** (prec - 10)  # a relative error (units of 2**-prec) at which first order ends
    H = 2.0 ** (prec - 2)  # one at which a sign is no longer certain
    values: list[Any] = list(p.leaf_values)
    n = p.n
    errs = [0.0] * n
    mags = [0.0] * n
    for i in p.leaves:
        mags[i] = abs(float(values[i]))
    # the partials: value, magnitude and error bound of each operand's, as lists
    # (tuples per node would be garbage the collector keeps visiting)
    pv0: list[Any] = [None] * n
    pa0 = [0.0] * n
    pe0 = [0.0] * n
    pv1: list[Any] = [None] * n
    pa1 = [0.0] * n
    pe1 = [0.0] * n
    kinks: list[int] = []
    for code, i, a, b, c, ac in p.rows:
        x = values[a]
        ex = errs[a]
        ax = mags[a]
        if code <= SUB:
            y = values[b]
            v = x + y if code == ADD else x - y
            av = abs(float(v))
            e = ex + errs[b]
            if v.rc:
                e += av
        elif code == MUL:
            y = values[b]
            ey = errs[b]
            ay = mags[b]
            if ex and ey and not ax and not ay:
                return None  # two inexact zeros: only a second-order bound, which may underflow
            v = x * y
            av = abs(float(v))
            e = ex * ay + ey * ax + ex * ey * s
            if v.rc:
                e += av
            pv0[i], pa0[i], pe0[i], pv1[i], pa1[i], pe1[i] = y, ay, ey, x, ax, ex
        elif code == MULC:
            v = x * c
            av = abs(float(v))
            e = ex * ac
            if v.rc:
                e += av
        elif code == RELU:
            if ex and not ex < ax * H:
                return None
            if x > 0:
                v, e = x, ex
                pv0[i] = 1
            else:
                v, e = x - x, 0.0
                pv0[i] = 0
                if not x:
                    kinks.append(i)
            av = abs(float(v))
        elif EXP <= code <= SIGMOID:  # partials from x's absolute error alone
            if code == EXP:
                r = ex
                v = exp(x)
                own = v.rc
                pv = v
            elif code == TANH:
                r = 2.0 * ex
                v = tanh(x)
                own = v.rc
                t = exp(-2 * abs(x))
                d = 1 + t
                pv = 4 * t / (d * d)
            else:
                r = ex
                t = exp(-abs(x))
                d = 1 + t
                v = 1 / d if x >= 0 else t / d
                own = t.rc or d.rc or v.rc
                pv = t / (d * d)
            if not r < K:
                return None
            av = abs(float(v))
            pa = abs(float(pv))
            if pv and not LO <= pa <= HI:
                return None
            pe = pa * (8.0 + 2.0 * r)
            e = ex * pa + ex * pe * s
            if own:
                e += 8.0 * av
            pv0[i], pa0[i], pe0[i] = pv, pa, pe
        elif code == LOG:
            if not x > 0 or (ex and not ex < ax * H):
                return None
            r = ex / ax
            if not r < K:
                return None
            v = log(x)
            av = abs(float(v))
            pv = 1 / x
            pa = abs(float(pv))
            pe = pa * (8.0 + 2.0 * r)
            e = ex * pa + ex * pe * s
            if v.rc:
                e += 8.0 * av
            pv0[i], pa0[i], pe0[i] = pv, pa, pe
        elif code == DIV:
            y = values[b]
            ey = errs[b]
            ay = mags[b]
            if not y or (ey and not ey < ay * H) or (ex and not ax):
                return None
            rx = ex / ax if ex else 0.0
            ry = ey / ay
            r1 = rx + 2.0 * ry
            if not (ry < K and r1 < K):
                return None
            v = x / y
            av = abs(float(v))
            q0 = 1 / y
            q1 = -x / (y * y)
            qa0 = abs(float(q0))
            qa1 = abs(float(q1))
            if not LO <= qa0 <= HI or (q1 and not LO <= qa1 <= HI):
                return None
            qe0 = qa0 * (8.0 + 2.0 * ry)
            qe1 = qa1 * (8.0 + 2.0 * r1)
            e = ex * qa0 + ey * qa1 + (ex * qe0 + ey * qe1) * s
            if v.rc:
                e += av
            pv0[i], pa0[i], pe0[i], pv1[i], pa1[i], pe1[i] = q0, qa0, qe0, q1, qa1, qe1
        elif code == POWC:
            got = _powc(x, ex, ax, c, s, K, H)
            if got is None:
                return None
            v, e, av, pv0[i], pa0[i], pe0[i] = got
        elif code == ADDC:
            v = x + c
            av = abs(float(v))
            e = ex
            if v.rc:
                e += av
        elif code == RSUBC:
            v = c - x
            av = abs(float(v))
            e = ex
            if v.rc:
                e += av
        elif code == NEG:
            v = -x  # rounds when x has more bits than prec (a leaf, below 53)
            av = ax
            e = ex + av if v.rc else ex
        elif code == DIVC:
            v = x / c
            av = abs(float(v))
            pv = _ONE / c
            pa = abs(float(pv))
            if not LO <= pa <= HI:
                return None
            e = ex * pa
            if v.rc:
                e += av
            pv0[i], pa0[i], pe0[i] = pv, pa, pa if pv.rc else 0.0
        else:  # RDIVC: c / x, partial -c / x**2
            if not x or (ex and not ex < ax * H):
                return None
            r = 2.0 * (ex / ax)
            if not r < K:
                return None
            v = c / x
            av = abs(float(v))
            pv = -c / (x * x)
            pa = abs(float(pv))
            if not LO <= pa <= HI:
                return None
            pe = pa * (8.0 + 2.0 * r)
            e = ex * pa + ex * pe * s
            if v.rc:
                e += av
            pv0[i], pa0[i], pe0[i] = pv, pa, pe
        if (v and not LO <= av <= HI) or (e and not FLOOR <= e <= CEIL):
            return None
        values[i] = v
        errs[i] = e
        mags[i] = av
    return values, errs, kinks, (pv0, pa0, pe0, pv1, pa1, pe1)


def _powc(x: Any, ex: float, ax: float, c: float, s: float,
          K: float, H: float) -> tuple[Any, float, float, Any, float, float] | None:
    """x ** c: the value, its bound and magnitude, the partial, its magnitude and bound."""
    if c == 0:
        return x**c, 0.0, 1.0, x - x, 0.0, 0.0  # the table's partial: an exact zero
    integer = c.is_integer()
    if not integer and not x > 0:
        return None
    if not x and c < 0:
        return None
    v = x**c
    av = abs(float(v))
    # c * x**(c-1) as c * (x**c / x): a division costs far less than a power
    t = v / x if x else x ** (c - 1)
    pv = t * c
    pa = abs(float(pv))
    if pv and not _LO <= pa <= _HI:
        return None
    own_p = 8.0 * pa if (v.rc or t.rc or pv.rc) else 0.0
    if integer and c >= 1:
        # a polynomial: |(x+d)**n - x**n| <= n |d| (|x| + |d|)**(n-1), no first-order limit
        u = ax + ex * s
        e = c * ex * u ** (c - 1) if ex else 0.0
        pe = own_p + (c * (c - 1) * ex * u ** (c - 2) if ex and c >= 2 else 0.0)
    else:
        if ex and not ex < ax * H:
            return None
        r = abs(c - 1.0) * (ex / ax) if ex else 0.0
        if not r < K:
            return None
        pe = own_p + pa * 2.0 * r
        e = ex * pa + ex * pe * s
    if v.rc:
        e += 8.0 * av
    return v, e, av, pv, pa, pe


def _reverse(p: Plan, prec: int,
             parts: tuple[list[Any], ...]) -> tuple[list[Any], list[float]] | None:
    """Reverse mode: gradients (None where none arrives) and their error bounds."""
    pv0, pa0, pe0, pv1, pa1, pe1 = parts
    LO, HI, FLOOR, CEIL = _LO, _HI, _FLOOR, _CEIL
    s = 2.0**-prec
    n = p.n
    grads: list[Any] = [None] * n
    gerrs = [0.0] * n
    gsum = [0.0] * n  # bounds on |each partial sum| of a gradient, for its roundings
    grads[n - 1] = mpfr(1)
    gsum[n - 1] = 1.0
    for code, i, a, b, c, ac in reversed(p.rows):
        g = grads[i]
        if g is None:
            continue
        ge = gerrs[i]
        if not g:
            if not ge:
                continue
            return None  # an inexact zero gradient: no magnitude to bound products by
        ga = abs(float(g))
        if not LO <= ga <= HI or (ge and not FLOOR <= ge <= CEIL):
            return None
        if code <= NEG:  # constant partials: the term is +-g, exactly
            if code == RELU and not pv0[i]:
                continue
            terms: tuple[tuple[Any, ...], ...] = ((a, -g if code >= RSUBC else g, ge, ga),)
            if code <= SUB:
                terms += ((b, g if code == ADD else -g, ge, ga),)
        else:
            ops = ((a, pv0, pa0, pe0), (b, pv1, pa1, pe1)) if code <= DIV else ((a, pv0, pa0, pe0),)
            terms = ()
            for t, pvs, pas, pes in ops:
                pv, pa, pe = (c, ac, 0.0) if code == MULC else (pvs[i], pas[i], pes[i])
                tv = g * pv
                ta = ga * pa
                te = pa * ge + ga * pe + ge * pe * s
                if tv.rc:
                    te += ta
                terms += ((t, tv, te, ta),)
        for t, tv, te, ta in terms:
            old = grads[t]
            if old is None:
                grads[t], gerrs[t], gsum[t] = tv, te, ta
            else:
                sv = grads[t] = old + tv
                gs = gsum[t] + ta
                gsum[t] = gs
                gerrs[t] += te + gs if sv.rc else te
    for i in p.leaves:
        g, ge = grads[i], gerrs[i]
        if g is None:
            continue
        if (g and not LO <= abs(float(g)) <= HI) or (ge and not FLOOR <= ge <= CEIL) \
                or (ge and not g):
            return None
    return grads, gerrs
