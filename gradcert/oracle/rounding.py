"""Rounding exact numbers to float64 or float32, and the oracle's certificate.

:func:`round_to` rounds an mpmath mpf (or a gmpy2 mpfr, int or float) once,
to nearest with ties to even, into the subnormal range and to +-inf beyond
the range. :func:`certain` says whether an error bound makes the float64
rounding of an approximate value certain, decided exactly on integers;
:func:`certain_many` is the same question for many values at once, in
float arithmetic with a margin, for the common case, leaving the rest to
:func:`certain`.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath

from gradcert.oracle.numbers import mpfr as _MPFR

__all__ = ["round_to", "certain", "certain_many"]

_FORMATS = {"float64": (53, -1074, 1024), "float32": (24, -149, 128)}
# dtype -> (significand bits, exponent of the smallest subnormal, 2**emax is
# the first power of two beyond range)


def _parts(x: Any) -> tuple[int, Any, int]:
    """(sign, mantissa, exponent) of an mpf/float/int, value = (-1)**sign * man * 2**exp."""
    if type(x) is _MPFR:  # its _mpf_ is unnormalised, and zero has no exponent
        if not x:
            return 0, 0, 0
        if not x.is_finite():
            raise ValueError(f"cannot round {x!r}: not a finite number")
    t = getattr(x, "_mpf_", None)
    if t is None:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"cannot round {type(x).__name__}: expected an mpf, int or float")
        t = mpmath.libmp.from_int(x) if isinstance(x, int) else mpmath.libmp.from_float(x)
    sign, man, exp, _ = t
    if not man and exp:
        raise ValueError(f"cannot round {x!r}: not a finite number")
    return sign, man, exp


def _round(sign: int, man: Any, exp: int, fmt: tuple[int, int, int]) -> tuple[float, int, Any]:
    """The rounding (nearest, ties to even), the grid exponent q, and man's distance
    from a rounding midpoint in units of 2**exp (None when on the grid)."""
    prec, qmin, emax = fmt
    k = exp + man.bit_length()  # 2**(k-1) <= |x| < 2**k
    if not man or k < qmin - 1:  # below a quarter of the smallest subnormal: 0
        return (-0.0 if sign else 0.0), qmin, None
    if k > emax + 1:  # at least twice the largest finite number: inf
        return (-math.inf if sign else math.inf), k - prec, None
    q = max(k - prec, qmin)
    dist = None
    if exp < q:
        shift = q - exp
        r = man >> shift
        rem = man - (r << shift)
        half = 1 << (shift - 1)
        dist = abs(rem - half)
        if rem > half or (rem == half and r & 1):
            r += 1
    else:
        r = man << (exp - q)
    f = math.inf if r.bit_length() + q > emax else math.ldexp(float(int(r)), q)
    return (-f if sign else f), q, dist


def round_to(x: Any, dtype: str = "float64") -> float:
    """``x`` (an mpf, gmpy2 mpfr, int or float) correctly rounded to ``dtype``, as a Python float.

    Rounds once, to nearest with ties to even, including into the subnormal
    range, and to +-inf beyond the range (so float32 results never suffer a
    double rounding through float64).

    >>> import mpmath
    >>> round_to(mpmath.mpf(1) / 3) == 1 / 3
    True
    >>> round_to(mpmath.mpf(1) / 3, "float32")
    0.3333333432674408
    >>> round_to(mpmath.mpf(2) ** 1024)
    inf
    """
    fmt = _FORMATS.get(dtype)
    if fmt is None:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return _round(*_parts(x), fmt)[0]


_F64 = _FORMATS["float64"]


def _binary(e: Any) -> tuple[int, int]:
    """A nonnegative float, int or MPFR number as (man, exp): e = man * 2**exp exactly."""
    if type(e) is _MPFR:
        man, exp = e.as_mantissa_exp()
        return int(man), int(exp)
    num, den = float(e).as_integer_ratio() if type(e) is not int else (e, 1)
    return num, -(den.bit_length() - 1)  # den is a power of two


def _below(e: tuple[int, int], man: int, exp: int) -> bool:
    """e < man * 2**exp, exactly."""
    em, ee = e
    if ee >= exp:
        return em << (ee - exp) < man
    return em < man << (exp - ee)


def certain(x: Any, err: Any, side: int | None = None) -> tuple[float, bool]:
    """The float64 rounding of ``x`` (as :func:`round_to` takes it), and whether
    every number within ``err`` of it (an absolute bound: a float, int or MPFR
    number; 0 when x is exact) rounds to the same float64. Decided exactly.

    An exact value on a rounding midpoint is certain (ties to even); an
    inexact one near it is not, nor is one whose error reaches a quarter ulp
    (the distance to the next boundary where the spacing halves, at a power of
    two). Given ``side``, the sign of (exact - x), only the numbers on that
    side count: then the float64 is the rounding of those, also where x itself
    is a midpoint (an exact value just above one rounds up).

    >>> import mpmath
    >>> third = mpmath.mpf(1) / 3
    >>> certain(third, 2.0**-120), certain(third, 2.0**-54)
    ((0.3333333333333333, True), (0.3333333333333333, False))
    >>> certain(2**53 + 1, 0.5), certain(2**53 + 1, 0.5, side=1)   # a midpoint, inexact
    ((9007199254740992.0, False), (9007199254740994.0, True))
    """
    sign, man, exp = _parts(x)
    f, q, dist = _round(sign, man, exp, _F64)
    if not err:
        return f, True
    e = _binary(err)
    if side in (1, -1):
        return _one_sided(sign, man, exp, q, e, side)
    if not man:
        return 0.0, _below(e, 1, q - 1)  # within half the smallest subnormal: 0
    if not _below(e, 1, q - 2):
        return f, False
    if dist is None:
        return f, True
    return f, bool(dist) and _below(e, dist, exp)


def _shifted(sign: int, man: int, exp: int, delta: int, dexp: int) -> tuple[int, int, int]:
    """x + delta * 2**dexp, exactly, as (sign, man, exp)."""
    low = min(exp, dexp)
    total = (-man if sign else man) * (1 << (exp - low)) + delta * (1 << (dexp - low))
    return (1 if total < 0 else 0), abs(total), low


def _one_sided(sign: int, man: int, exp: int, q: int, e: tuple[int, int],
               side: int) -> tuple[float, bool]:
    """The rounding of the numbers strictly beyond x on ``side``, up to err away, if
    it is one float64 (rounding is monotone: the two ends decide)."""
    near = _round(*_shifted(sign, man, exp, side, min(exp, q) - 2), _F64)[0]
    em, ee = e
    far = _round(*_shifted(sign, man, exp, side * em, ee), _F64)[0]
    return near, near == far


_SLACK = 1.0 - 2.0**-40  # covers the few float roundings in certain_many


def certain_many(values: Any, nums: Any, errs: Any,
                 scale: float = 1.0) -> tuple[list[float], list[int]]:
    """The float64 roundings of MPFR numbers ``values`` (``nums`` holds each as a
    float, its rounding to nearest) whose error bounds are ``errs`` (floats) times
    ``scale`` (a power of two), and the positions whose rounding this does not
    show certain: the caller decides those with :func:`certain`. Needs a context
    of 53 bits or more.

    Certain here: a value whose bound is 0, or a normal one where ``|v - f| +
    err`` is below the distance from ``f`` to a rounding boundary (half an ulp,
    a quarter where ``f`` is a power of two: taken on both sides) with a
    margin for this test's own float roundings (``v - f`` is exact).
    """
    doubt: list[int] = []
    ulp = math.ulp
    for i, (v, f, e) in enumerate(zip(values, nums, errs, strict=True)):
        a = abs(f)
        if not 2.0**-1021 < a < 2.0**1023:
            if v or e:
                doubt.append(i)  # zero, subnormal or overflow: decide exactly
            continue
        if e:  # else exact: float() rounds it correctly
            u = ulp(a)
            r = v - f
            if r.rc or not abs(float(r)) * (1.0 + 2.0**-50) + e * scale < (
                    u * 0.25 if a == u * 2.0**52 else u * 0.5) * _SLACK:  # u/4 below 2**k
                doubt.append(i)
    return list(nums), doubt
