"""Rounding exact numbers to float64 or float32, and certifying the rounding.

:func:`round_to` rounds an mpmath mpf (or a gmpy2 mpfr, int or float) once,
to nearest with ties to even, into the subnormal range and to +-inf beyond
the range. :func:`certain` says whether an error bound lets the float64
rounding of an approximate value be certain: the oracle's certificate.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath

try:
    from gradcert.oracle import _mpfr
except ImportError:  # no gmpy2
    _mpfr = None  # type: ignore[assignment]
_MPFR: Any = None if _mpfr is None else _mpfr.mpfr
_NEG = -math.inf

__all__ = ["round_to", "certain"]

_FORMATS = {"float64": (53, -1074, 1024), "float32": (24, -149, 128)}
# dtype -> (significand bits, exponent of the smallest subnormal, 2**emax is
# the first power of two beyond range)


def _parts(x: Any) -> tuple[int, Any, int]:
    """(sign, mantissa, exponent) of an mpf/float/int, value = (-1)**sign * man * 2**exp."""
    if type(x) is _MPFR:  # its _mpf_ is unnormalised, and zero has no exponent
        if not x:
            return 0, 0, 0
        if not _mpfr.gmpy2.is_finite(x):
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


def certain(x: Any, err: float) -> tuple[float, bool]:
    """The float64 rounding of ``x`` (as :func:`round_to` takes it), and whether
    every number within 2**err of it rounds to the same float64 (``err``: a
    log2 bound on x's absolute error, -inf when x is exact).

    An exact value on a rounding midpoint is certain (ties to even); an
    inexact one near it is not, nor is one whose error reaches a quarter ulp.

    >>> import mpmath
    >>> third = mpmath.mpf(1) / 3
    >>> certain(third, -120.0), certain(third, -54.0)
    ((0.3333333333333333, True), (0.3333333333333333, False))
    """
    sign, man, exp = _parts(x)
    f, q, dist = _round(sign, man, exp, _F64)
    if err == _NEG:
        return f, True
    if not man:
        return 0.0, err < q - 1  # everything within half the smallest subnormal is 0
    if err >= q - 2:
        return f, False
    if dist is None:
        return f, True
    return f, dist != 0 and exp + dist.bit_length() - 1 > err
