"""The oracle's number system: gmpy2's MPFR numbers, in a fresh context per pass.

MPFR rounds every arithmetic operation and every function it has (``exp``,
``log``, ``tanh``, ``sqrt``, ``log1p``, ``expm1``, ``erf``, ``sin``,
``cos``, powers) correctly, here to nearest, at any precision, and says
whether it rounded: the ternary value ``x.rc`` of each result and the
context's ``inexact`` flag. Those two facts are what the oracle's error
analysis rests on: a correctly rounded result at ``p`` bits is within
2**-p of the exact one, relative, and an exact one is exact.

This module is also the numeric namespace the op rows are evaluated in (it
has ``exp``, ``log``, ... and ``pi`` at the working precision), converts
float64 leaves and constants to MPFR exactly, and MPFR results to mpmath's
``mpf`` exactly, in a private mpmath context per thread (the global
``mpmath.mp`` is never read or changed).

Arithmetic runs at the precision of gmpy2's current context, which is
thread-local: the oracle enters a fresh context (:func:`context`) for each
pass, so a caller's gmpy2 settings are neither used nor changed. MPFR's
exponents reach 2**(+-2**30) (``EMIN``): a result beyond that underflows
(to 0 or +-2**(EMIN - 1), within ``TINY`` of the exact one) or overflows
(to +-inf), and the context's flags say so.

>>> with context(117):
...     x = number(0.1) / 3
...     (upper(x), x.rc != 0, float(to_mpf(number(0.75), mpmath_context())))
(-4, True, 0.75)
"""

from __future__ import annotations

import math
import threading
from typing import Any

import gmpy2
import mpmath
from gmpy2 import cos, erf, exp, expm1, log, log1p, mpfr, sin, sqrt, tanh
from mpmath.libmp import normalize

__all__ = ["EMIN", "ONE", "TINY", "context", "cos", "erf", "exactly", "exp", "expm1", "log",
           "log1p", "mpfr", "mpmath_context", "number", "sin", "sqrt", "tanh", "to_mpf", "unit",
           "upper"]

EMIN: int = gmpy2.context().emin
"""The smallest exponent of an MPFR number here: its smallest positive number is
``2**(EMIN - 1)``, about 10**-323228497."""

TINY = mpfr(2) ** (EMIN - 1)
"""How far an underflowed MPFR result may be from the exact one."""


def context(prec: int) -> Any:
    """A fresh gmpy2 context at ``prec`` bits: round to nearest, no traps, flags clear."""
    return gmpy2.context(precision=prec)


def number(x: float) -> Any:
    """The float ``x`` as an MPFR number, exactly (53 bits, whatever the context)."""
    return mpfr(x, 53)


ONE = mpfr(1)
_ZERO = mpfr(0)


def exactly(x: float) -> Any:
    """The float ``x`` as an MPFR number, exactly, in a context of 53 bits or more:
    :func:`number` at a tenth of its cost (gmpy2's constructor is slow); not for -0.0.

    >>> with context(64):
    ...     exactly(0.1) == number(0.1), exactly(5e-324) == number(5e-324)
    (True, True)
    """
    return _ZERO + x


_UNITS: dict[int, Any] = {}


def unit(prec: int) -> Any:
    """2**(2 - prec), one rounding at ``prec`` bits with the analysis's factor 4."""
    got = _UNITS.get(prec)
    if got is None:
        got = _UNITS[prec] = mpfr(2) ** (2 - prec)
    return got


def upper(v: Any) -> float:
    """An upper bound on log2|v| (-inf for zero): 2**(upper(v) - 1) <= |v|."""
    return gmpy2.get_exp(v) if v else -math.inf


def __getattr__(name: str) -> Any:
    if name == "pi":  # at the precision of the current context
        return gmpy2.const_pi()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_mpf(v: Any, ctx: Any) -> Any:
    """The finite MPFR number (or int) ``v`` as an mpf of the mpmath context ``ctx``,
    exactly."""
    if type(v) is not mpfr:
        return ctx.mpf(v)
    sign, man, e, _ = v._mpf_  # unnormalised: trailing zero bits, zero with exponent 1
    if not man:
        return ctx.zero
    bc = man.bit_length()
    return ctx.make_mpf(normalize(sign, man, e, bc, bc, "n"))


_local = threading.local()


def mpmath_context() -> Any:
    """This thread's private mpmath context, in which the oracle hands out mpfs."""
    ctx = getattr(_local, "mp", None)
    if ctx is None:
        ctx = _local.mp = mpmath.MPContext()
    return ctx
