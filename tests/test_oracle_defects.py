"""Five ways the oracle once certified a wrong number or refused a plain one.

Each is the exact example of the issue that found it; the expected float64s
come from tests/xcheck.py, the independent reference (mpmath at 3000 and
6000 bits, its own reverse mode and rounding), and are checked here again.
"""

import pytest
from xcheck import reference

from gradcert.graph import trace
from gradcert.oracle import Unresolved, exact_graph


def _graph(f, xs):
    g = trace(f, xs)
    return g, reference(g)


def test_a_x_to_a_huge_power_on_mpf_is_never_certified_wrong():
    # mpmath computes x ** c as exp(c log x) with the log at p + 10 bits: an error of
    # |c log x| 2**-(p+10), far beyond the 8 ulps the mpf pass allowed it. Here it
    # certified 9.434246662523883e-16; the exact value is 9.434246673920144e-16.
    g, ref = _graph(lambda a, b: (a ** (2.0**47 + 0.25)) * (b ** -223063641488875.0)
                    - 1.5813210948120684, [3.0, 2.0])
    assert ref.values_f64[-1] == 9.434246673920144e-16
    try:
        ex = exact_graph(g)
    except Unresolved:
        return  # 3 ** (2**47) is beyond MPFR's exponents: refusing is right
    assert ex.values_f64 == ref.values_f64 and ex.grad_f64 == ref.grad_f64


def test_b_integer_power_of_an_inexact_base_is_bounded_from_above():
    # the fast pass bounded n |d| (|x| + |d|)**(n-1) with float(|x|), rounded to
    # nearest: (1 - 2**-53)**(2**64) is e**-2048, and the bound collapsed
    for f in (lambda t: t.exp() ** 2.0**64,
              lambda t: t.exp() ** 2.0**64 - 1.2977516894726198e+80):  # 1e13 ulps off
        g, ref = _graph(f, [1e-17])
        ex = exact_graph(g)
        assert ex.values_f64 == ref.values_f64 and ex.grad_f64 == ref.grad_f64


def test_c_the_partial_of_x_to_a_tiny_power_does_not_round_its_exponent():
    # c * x ** (c - 1) rounded c - 1 at working precision: a relative error of
    # 2**-p |log x| outside its bound, 1 ulp off here (-5.244270499826418e-168). The
    # op row computes it as c * (out / x) since the table moved to gradcert/ops.py
    g, ref = _graph(lambda x: x ** 8.470329472543028e-22 - x * 8.470329472543028e-152, [1e130])
    assert ref.grad_f64 == (-5.244270499826417e-168,)
    assert exact_graph(g).grad_f64 == ref.grad_f64


def test_d_an_exact_division_at_a_kink_is_certified():
    # MPFR says 1 / 2 is exact; the general pass did not ask, and refused the relu
    # of the exact 0 at every precision
    g, ref = _graph(lambda x, y, z: (x / y - 0.5).relu(), [1.0, 2.0, 1e-300])
    ex = exact_graph(g)
    assert (ex.value_f64, ex.grad_f64, ex.kinks) == (0.0, (0.0, 0.0, 0.0), (5,))
    assert (ex.values_f64, ex.grad_f64) == (ref.values_f64, ref.grad_f64)


@pytest.mark.parametrize("f, x", [(lambda t: t.exp(), -1e15), (lambda t: t.sigmoid(), -1e300),
                                  (lambda t: t.exp() * 3.0 + t.sigmoid(), -2e15)])
def test_e_exp_and_sigmoid_far_below_zero_are_certified_zeros(f, x):
    # beyond -7.8e14 the log2 bounds' exponents were refused: 68% of all refusals,
    # and sigmoid(-1e300) is in the suite's own edge list
    g, ref = _graph(f, [x])
    ex = exact_graph(g)
    assert ex.value_f64 == 0.0 and ex.grad_f64 == (0.0,)
    assert (ex.values_f64, ex.grad_f64) == (ref.values_f64, ref.grad_f64)
