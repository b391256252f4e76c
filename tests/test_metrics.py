"""ulp distance, relative error and bits of error, including every float edge."""

import math
import struct

import mpmath
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gradcert.oracle import bits_of_error, ordinal, rel_error, ulp_distance

finite = st.floats(allow_nan=False, allow_infinity=False)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(finite)
def test_next_float_is_one_ulp_away(x):
    up = math.nextafter(x, math.inf)
    assume(math.isfinite(up))
    assert ulp_distance(x, up) == 1.0
    assert ulp_distance(x, math.nextafter(x, -math.inf)) == 1.0 or x == -1.7976931348623157e308


@given(finite, finite)
def test_symmetric_and_zero_only_when_equal(a, b):
    d = ulp_distance(a, b)
    assert d == ulp_distance(b, a)
    assert (d == 0) == (a == b)


@given(finite, finite, finite)
def test_additive_along_a_line(a, b, c):
    lo, mid, hi = sorted((a, b, c))
    whole, parts = ulp_distance(lo, hi), ulp_distance(lo, mid) + ulp_distance(mid, hi)
    if whole < 2**53:  # counts are floats: exact below 2**53
        assert whole == parts
    else:
        assert whole == pytest.approx(parts, rel=2**-51)


@given(finite, finite)
def test_ordinal_is_monotone(a, b):
    assert (a < b) == (ordinal(a) < ordinal(b))


def test_zeros_subnormals_and_the_top():
    assert ulp_distance(0.0, -0.0) == 0.0
    assert ulp_distance(5e-324, -5e-324) == 2.0
    assert ulp_distance(0.0, 5e-324) == 1.0
    assert ulp_distance(2.2250738585072014e-308, 2.225073858507201e-308) == 1.0  # normal/subnormal
    top = 1.7976931348623157e308
    assert ulp_distance(-top, top) == float(2 * (2**63 - 2**52 - 1))  # 0x7FEF...F twice
    assert ulp_distance(1.0, 2.0) == 2**52


def test_nan_and_infinities():
    inf, nan = math.inf, math.nan
    assert ulp_distance(nan, nan) == 0.0
    assert ulp_distance(nan, 1.0) == inf and ulp_distance(1.0, nan) == inf
    assert ulp_distance(inf, inf) == 0.0 and ulp_distance(-inf, -inf) == 0.0
    assert ulp_distance(inf, -inf) == inf
    assert ulp_distance(inf, 1.7976931348623157e308) == inf
    assert bits_of_error(nan, 1.0) == 64.0
    assert bits_of_error(inf, 1.0, "float32") == 32.0


@given(finite32)
def test_float32_neighbours(x):
    bits = struct.unpack("<i", struct.pack("<f", x))[0]
    nxt = struct.unpack("<f", struct.pack("<i", bits + (1 if x >= 0 else -1)))[0]
    assume(math.isfinite(nxt) and x != 0)
    assert ulp_distance(x, nxt, "float32") == 1.0
    assert ulp_distance(x, nxt) > 1.0 or x == nxt  # many float64s between float32 neighbours


def test_float32_zero_subnormal_and_range():
    assert ulp_distance(0.0, 2.0**-149, "float32") == 1.0
    assert ulp_distance(-0.0, 0.0, "float32") == 0.0
    assert ulp_distance(1.0, 2.0, "float32") == 2**23
    assert ulp_distance(1e300, 1e301, "float32") == 0.0  # both beyond range: inf
    with pytest.raises(ValueError, match="dtype"):
        ulp_distance(1.0, 2.0, "float16")


def test_rel_error_uses_the_exact_value():
    ctx = mpmath.MPContext()
    ctx.prec = 200
    third = ctx.mpf(1) / 3
    r = rel_error(1 / 3, third)
    assert 0 < r < 2**-53  # 1/3 is correctly rounded
    assert 0 < rel_error(0.3, ctx.mpf(3) / 10) < 2**-53
    assert rel_error(1.1, 1) == pytest.approx(0.1, rel=1e-12)
    assert rel_error(0.0, 0) == 0.0
    assert rel_error(1e-300, 0) == math.inf
    assert math.isnan(rel_error(math.nan, 1))
    assert rel_error(math.inf, mpmath.inf) == 0.0
    assert rel_error(-math.inf, mpmath.inf) == math.inf
    assert rel_error(math.inf, 1) == math.inf
    assert rel_error(1.0, mpmath.inf) == math.inf
    assert rel_error(1.0, mpmath.mpf(2) ** -2000) == math.inf  # beyond float range


@given(finite, finite)
def test_rel_error_matches_exact_rational(a, b):
    assume(b != 0)
    from fractions import Fraction

    want = abs(Fraction(a) - Fraction(b)) / abs(Fraction(b))
    got = rel_error(a, b)
    if want > 2**1023:
        assert got == math.inf
    else:
        assert got == pytest.approx(float(want), rel=1e-30, abs=0)


@given(finite, finite)
def test_bits_of_error_is_herbies(a, b):
    d = ulp_distance(a, b)
    assert bits_of_error(a, b) == pytest.approx(min(64.0, math.log2(d + 1)))
    assert 0.0 <= bits_of_error(a, b) <= 64.0
    assert (bits_of_error(a, b) == 0.0) == (a == b)
