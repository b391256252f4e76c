"""Error metrics between floats and exact values: ulps, relative error, bits.

``ulp_distance`` counts the representable numbers between two floats by
mapping each float's bit pattern to an integer that is ordered like the reals
(negative numbers mirrored below zero, -0.0 and +0.0 both 0), so subnormals,
zeros and the largest finite numbers need no special case. ``bits_of_error``
is Herbie's measure: log2 of (ulps + 1), 0 for equal numbers and 64 at worst
in float64.

>>> ulp_distance(1.0, 1.0 + 2**-52)
1.0
>>> bits_of_error(1.0, 1.0 + 2**-52)
1.0
"""

from __future__ import annotations

import math
import struct
from typing import Any

__all__ = ["bits_of_error", "ordinal", "rel_error", "ulp_distance"]

_LAYOUT = {"float64": ("<d", "<q", 1 << 63), "float32": ("<f", "<i", 1 << 31)}


def _layout(dtype: str) -> tuple[str, str, int]:
    layout = _LAYOUT.get(dtype)
    if layout is None:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return layout


def ordinal(x: float, dtype: str = "float64") -> int:
    """The integer position of float ``x`` among ``dtype``'s numbers, ordered like the
    reals, with ordinal(-0.0) == ordinal(0.0) == 0 and neighbours one apart.

    A float64 ``x`` that is not a float32 is first rounded to float32.

    >>> ordinal(0.0), ordinal(-0.0), ordinal(5e-324), ordinal(-5e-324)
    (0, 0, 1, -1)
    """
    fmt, ifmt, sign = _layout(dtype)
    try:
        (bits,) = struct.unpack(ifmt, struct.pack(fmt, x))
    except OverflowError:  # a float64 beyond float32's range packs as float32 inf
        bits = struct.unpack(ifmt, struct.pack(fmt, math.copysign(math.inf, x)))[0]
    return bits if bits >= 0 else -(bits + sign)


def ulp_distance(a: float, b: float, dtype: str = "float64") -> float:
    """How many ``dtype`` numbers lie between ``a`` and ``b`` (steps from one to the other).

    0 when equal (also +0.0 and -0.0); inf when exactly one is nan, or one is
    infinite and the other is not, or they are infinities of opposite sign;
    0 for two nans. Symmetric; additive along monotone runs.

    >>> ulp_distance(0.0, -0.0)
    0.0
    >>> ulp_distance(5e-324, -5e-324)
    2.0
    >>> ulp_distance(1.0, float("inf"))
    inf
    >>> ulp_distance(1.0, 1.0 + 2**-23, "float32")
    1.0
    """
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    if math.isinf(a) or math.isinf(b):
        return 0.0 if a == b else math.inf
    return float(abs(ordinal(a, dtype) - ordinal(b, dtype)))


_ctx: Any = None


def _context() -> Any:
    """A private mpmath context at 128 bits, created once (its precision never changes)."""
    global _ctx
    if _ctx is None:
        import mpmath

        ctx = mpmath.MPContext()
        ctx.prec = 128
        _ctx = ctx
    return _ctx


def rel_error(actual: float, exact: Any) -> float:
    """|actual - exact| / |exact|, computed without rounding the difference first.

    ``exact`` is an mpf (or any real); 0 when both are 0, inf when only the
    exact value is 0, nan when ``actual`` is nan.

    >>> import mpmath
    >>> rel_error(0.1, mpmath.mpf(1) / 10) < 1e-16
    True
    >>> rel_error(1.0, 0)
    inf
    """
    actual = float(actual)
    if math.isnan(actual):
        return math.nan
    ctx = _context()
    ex = exact if isinstance(exact, ctx.mpf) else ctx.mpf(exact)
    if math.isinf(actual):
        return 0.0 if ctx.isinf(ex) and (ex > 0) == (actual > 0) else math.inf
    if not ex:
        return 0.0 if actual == 0 else math.inf
    if ctx.isinf(ex):
        return math.inf
    r = abs(ctx.mpf(actual) - ex) / abs(ex)
    return math.inf if r > ctx.mpf(2) ** 1023 else float(r)


def bits_of_error(a: float, b: float, dtype: str = "float64") -> float:
    """Herbie's bits of error between two floats: log2(ulp_distance + 1).

    >>> bits_of_error(1.0, 1.0)
    0.0
    >>> bits_of_error(1.0, 1.0 + 3 * 2**-52)
    2.0
    """
    d = ulp_distance(a, b, dtype)
    full = 64.0 if dtype == "float64" else 32.0
    return full if math.isinf(d) else min(full, math.log2(d + 1.0))
