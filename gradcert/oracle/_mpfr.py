"""gmpy2's mpfr numbers as the oracle's fast number system.

The op table is written against a namespace with ``exp``, ``log`` and
``tanh`` (graph.py); this module is such a namespace for gmpy2, plus what the
oracle's error-tracked pass needs to know about an mpfr number: its binary
magnitude, whether the operation that made it was exact (MPFR's ternary
value, ``x.rc``), how many significant bits it has, a quick certificate of
its float64 rounding, and its exact conversion to an mpmath mpf.

Arithmetic on mpfr numbers runs at the precision of gmpy2's current context,
which is thread-local: the oracle enters a fresh context (:func:`context`)
for each pass and leaves it when done, so a caller's gmpy2 settings are
neither used nor changed. A pass is trusted only if the context's flags stay
clear (no overflow, underflow, NaN or range error): mpfr's exponents are
bounded, mpmath's are not, so a pass that leaves mpfr's range is redone in
mpmath.

>>> with context(117):
...     x = number(0.1) / 3
...     (upper(x), x.rc != 0, bits(number(0.75)))
(-4, True, 2)
"""

from __future__ import annotations

import math
from typing import Any

import gmpy2
from gmpy2 import exp, get_exp, log, mpfr, tanh
from mpmath.libmp import normalize

__all__ = ["exp", "log", "tanh", "mpfr", "context", "clean", "number", "upper",
           "bits", "to_mpf", "certain", "certain_many"]

_NEG = -math.inf
_SLACK = 1.0 - 2.0**-40  # covers the few float roundings in certain()


def context(prec: int) -> Any:
    """A fresh gmpy2 context at ``prec`` bits (round to nearest, no traps)."""
    return gmpy2.context(precision=prec)


def clean(ctx: Any) -> bool:
    """Whether no operation in ``ctx`` left mpfr's range or made a NaN."""
    return not (ctx.overflow or ctx.underflow or ctx.invalid or ctx.erange
                or ctx.divzero)


def number(x: float) -> Any:
    """The float ``x`` as an mpfr, exactly (53 bits, whatever the context)."""
    return mpfr(x, 53)


def upper(v: Any) -> float:
    """An upper bound on log2|v| (-inf for zero); |v| >= 2**(upper(v) - 1)."""
    return get_exp(v) if v else _NEG


def bits(v: Any) -> int:
    """The number of significant bits of v (0 for zero)."""
    if not v:
        return 0
    man = abs(v.as_mantissa_exp()[0])
    return int(man.bit_length() - man.bit_scan1())


def to_mpf(v: Any, ctx: Any) -> Any:
    """The finite mpfr ``v`` as an mpf of the mpmath context ``ctx``, exactly."""
    sign, man, exp, _ = v._mpf_  # unnormalised: trailing zero bits, zero with exponent 1
    if not man:
        return ctx.zero
    bc = man.bit_length()
    return ctx.make_mpf(normalize(sign, man, exp, bc, bc, "n"))


def certain(v: Any, err: float) -> tuple[float, bool]:
    """The float64 rounding of ``v``, and True if every number within 2**err of
    ``v`` surely rounds to it; False means "not shown here" (the caller then
    decides exactly). Needs a context of ``v``'s precision or more.

    Only normal float64s are handled: there ``v - f`` is exact, and the nearest
    rounding boundary is half an ulp of ``f`` away (a quarter on the smaller
    side of a power of two; the quarter is used on both sides).
    """
    f = float(v)
    a = abs(f)
    if not 2.0**-1021 < a < 2.0**1023:
        return f, False
    m, q = math.frexp(a)
    q -= 53  # ulp(f) = 2**q
    if err >= q - 2:
        return f, False
    r = v - f
    if r.rc:
        return f, False
    gap = math.ldexp(1.0, q - 2 if m == 0.5 else q - 1)
    return f, (abs(float(r)) * (1.0 + 2.0**-50) + 2.0**err) < gap * _SLACK


def certain_many(vs: Any, errs: Any) -> tuple[list[float], list[int]]:
    """:func:`certain` of each ``(v, err)`` pair, in one loop: the float64
    roundings, and the positions not shown certain here (their float is then
    ``float(v)``, for the caller to redecide exactly)."""
    fs: list[float] = []
    doubt: list[int] = []
    frexp, ldexp, lo, hi, slack = math.frexp, math.ldexp, 2.0**-1021, 2.0**1023, _SLACK
    for i, (v, err) in enumerate(zip(vs, errs, strict=True)):
        f = float(v)
        fs.append(f)
        a = abs(f)
        if not lo < a < hi:
            doubt.append(i)
            continue
        m, q = frexp(a)
        q -= 53
        if err >= q - 2:
            doubt.append(i)
            continue
        r = v - f
        if r.rc or not (abs(float(r)) * (1.0 + 2.0**-50) + 2.0**err
                        < ldexp(1.0, q - 2 if m == 0.5 else q - 1) * slack):
            doubt.append(i)
    return fs, doubt
