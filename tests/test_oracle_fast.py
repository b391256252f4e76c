"""The oracle's fast pass (float error bounds on mpfr numbers).

Its bounds must contain the exact numbers, checked against the general pass
run at a far higher precision with its own bound; it must compute the very
numbers of the general pass; and where it gives up, the oracle's answer must
be the general pass's.
"""

import importlib
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_oracle_exact import small_graphs

from gradcert.graph import DomainError, Graph, Node, trace
from gradcert.oracle import Unresolved, exact_graph

oracle_exact = importlib.import_module("gradcert.oracle.exact")
pytestmark = pytest.mark.skipif(oracle_exact._mpfr is None, reason="needs gmpy2")
if oracle_exact._mpfr is not None:
    from gradcert.oracle import _fast, _mpfr


def fast_run(g, prec):
    """The fast pass's (values, errs, grads, gerrs, kinks), bounds as log2, or None."""
    q = _fast.plan(g)
    if q is None:
        return None
    with _mpfr.context(prec) as mc:
        got = _fast.run(q, prec)
        if got is None or not _mpfr.clean(mc):
            return None
    values, errs, grads, gerrs, kinks = got
    return (values, [_fast.log_bound(e, prec) for e in errs], grads,
            [_fast.log_bound(e, prec) for e in gerrs], kinks)


def general_run(g, prec):
    """The general pass at ``prec`` bits, with its error bounds, on mpfr; None if
    it raises or leaves mpfr's range."""
    with oracle_exact._numbers(True, quick=False):
        plan = oracle_exact._plan(g, oracle_exact._context().numbers)
        with _mpfr.context(prec) as mc:
            try:
                run = oracle_exact._pass(plan, prec, True, False, [0])
            except (DomainError, Unresolved):
                return None
            return run if _mpfr.clean(mc) else None


def _within(a, b, err_a, err_b):
    """|a - b| <= 2**err_a + 2**err_b, decided exactly (a, b are mpfr)."""
    with _mpfr.context(20000):
        gap = abs(_mpfr.mpfr(a) - _mpfr.mpfr(b))
        return gap <= _mpfr.mpfr(2) ** err_a + _mpfr.mpfr(2) ** err_b if gap else True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_graphs(max_ops=20), st.sampled_from([53, 64, 117, 300, 1000]))
@pytest.mark.slow
def test_fast_bounds_contain_the_exact_numbers(g, prec):
    got = fast_run(g, prec)
    assume(got is not None)
    values, errs, grads, gerrs, _ = got
    hi = general_run(g, 8 * prec + 600)
    assume(hi is not None and hi.doubtful is None)
    for i, (v, e) in enumerate(zip(values, errs, strict=True)):
        assert _within(v, hi.values[i], e, hi.errs[i]), f"value of node {i}"
    for leaf in g.leaves:
        g_lo = grads[leaf] if grads[leaf] is not None else 0
        g_hi = hi.grads[leaf] if hi.grads[leaf] is not None else 0
        e_hi = hi.gerrs[leaf] if hi.grads[leaf] is not None else -math.inf
        assert _within(g_lo, g_hi, gerrs[leaf], e_hi), f"gradient of leaf {leaf}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_graphs(max_ops=20), st.sampled_from([53, 117, 300]))
@pytest.mark.slow
def test_fast_pass_computes_the_general_pass_numbers(g, prec):
    got = fast_run(g, prec)
    assume(got is not None)
    values, _, grads, gerrs, kinks = got
    ref = general_run(g, prec)
    assume(ref is not None)
    assert values == ref.values
    assert kinks == ref.kinks
    # the partials of x ** c, x / y and c / x are computed another way
    powc = any(n.op in ("powc", "div", "rdivc") for n in g.nodes)
    for leaf in g.leaves:
        if grads[leaf] is None or ref.grads[leaf] is None:
            assert not grads[leaf] and not ref.grads[leaf]
        elif powc:
            assert _within(grads[leaf], ref.grads[leaf], gerrs[leaf], ref.gerrs[leaf])
        else:
            assert grads[leaf] == ref.grads[leaf]


def _answer(g):
    try:
        ex = exact_graph(g)
    except DomainError as e:
        return ("domain", e.node)
    except Unresolved as e:
        return ("unresolved", e.node)
    return ex.values_f64, ex.grad_f64, ex.kinks, ex.overflow


@pytest.mark.parametrize("f, xs", [
    (lambda x: (x.tanh() - x.tanh()).relu() + x, [0.5]),  # an inexact zero: general knows it is 0
    (lambda x: x.exp() * x, [300.0]),  # e**300 is beyond 2**400
    (lambda x: x * 1e-130, [3.0]),  # a constant beyond 2**-400
    (lambda x: x + 1.0, [1e-300]),  # a leaf beyond 2**-400
    (lambda x: (x - 1.0).log(), [1.0]),  # log(0): a domain error
    (lambda x: (x * 1.0 - x).log(), [3.0]),  # log of an inexact zero: unresolved
    (lambda x: (x.exp() - 1.0) / x, [1e-30]),  # cancellation: needs more bits
    (lambda x: x.tanh() * 2.0, [400.0]),  # tanh' = 4e**-800 is below 2**-400
    # an operand known to 2**-7 only (exp(1e-33) - 1 at 117 bits): past first order
    (lambda x: (x.exp() - 1.0).log(), [1e-33]),
    (lambda x: x / (x.exp() - 1.0), [1e-33]),
    (lambda x: 2.0 / (x.exp() - 1.0), [1e-33]),
    (lambda x: (x.exp() - 1.0) ** 0.5, [1e-33]),
    (lambda x: ((x + 0.0) * 2.0**399) ** 6, [2.0**-398]),  # a gradient beyond 2**400
])
def test_where_the_fast_pass_gives_up_the_general_pass_answers(f, xs):
    g = trace(f, xs)
    quick = _answer(g)
    with oracle_exact._numbers(True, quick=False):
        general = _answer(g)
    assert quick == general
    assert fast_run(g, 117) is None or quick[0] == "unresolved" or len(
        exact_graph(g).precisions) > 1


def test_fast_pass_refuses_precisions_beyond_its_range():
    q = _fast.plan(trace(lambda x: x * x, [3.0]))
    assert q is not None and _fast.run(q, _fast.MAX_PREC + 1) is None
    assert _fast.run(q, _fast.MIN_PREC - 1) is None
    assert _fast.run(q, _fast.MIN_PREC) is not None


def test_beyond_range_leaves_and_constants_leave_no_plan():
    assert _fast.plan(Graph((Node.leaf(2.0**401),))) is None
    assert _fast.plan(trace(lambda x: x * 2.0**-401, [1.0])) is None
    assert _fast.plan(trace(lambda x: x * 0.0 + 2.0**400, [0.0])) is not None


def test_well_conditioned_graphs_need_no_general_pass(monkeypatch):
    # the fast pass certifies an ordinary graph alone, at the first precision
    calls = []
    real = oracle_exact._pass
    monkeypatch.setattr(oracle_exact, "_pass", lambda *a: calls.append(1) or real(*a))

    def net(w1, w2, x):
        h = (w1 * x + 0.5).tanh() + (w2 * x).sigmoid() + (x * x + 1.0).log()
        return (h ** 2 / (w2 - 3.0)).exp() + (h - 1.0).relu() + h ** 0.5 - 1.0 / w1

    ex = exact_graph(trace(net, [0.3, -0.7, 1.25]))
    assert ex.precisions == (oracle_exact.START_PREC,) and calls == []


@settings(max_examples=800, deadline=None)
@given(st.integers(2**52, 2**53 - 1), st.integers(-450, 400),
       st.one_of(st.integers(-(2**64), 2**64), st.integers(2**63 - 2**40, 2**63 + 2**40),
                 st.just(0), st.just(2**63)),
       st.floats(-4, 4), st.booleans(), st.sampled_from([117, 300]))
def test_fast_float64_certificate_is_sound(man, q, offset, jitter, neg, prec):
    # v lies near the float64 man * 2**q (often near a rounding midpoint, or on
    # one), the bound near v's distance from that midpoint: when certain() does
    # not doubt v, both ends of v +- bound round to v's float64
    import mpmath

    from gradcert.oracle import round_to

    units = man * 2**64 + offset
    dist = abs(abs(offset) - 2**63) or 1
    err_log = q - 64 + math.log2(dist) + jitter  # log2 of the absolute bound
    e = 2.0 ** (err_log - 1 + prec)  # in certain()'s units: doubled, times 2**prec
    with _mpfr.context(prec):
        v = _mpfr.mpfr(-units if neg else units) * _mpfr.gmpy2.exp2(q - 64)
        assert v.rc == 0
        fs, doubt = _fast.certain([v], [e], prec)
    if doubt:
        return
    ctx = mpmath.MPContext()
    ctx.prec = 3000
    x = _mpfr.to_mpf(v, ctx)
    d = ctx.mpf(2) ** err_log * (1 + ctx.mpf(2) ** -100)
    assert round_to(x - d) == round_to(x + d) == fs[0]


def test_fast_float64_certificate_decides_the_common_case():
    with _mpfr.context(117):
        third = _mpfr.number(1.0) / 3
        zero = third - third
        fs, doubt = _fast.certain([third, third, zero, zero, _mpfr.number(0.5)],
                                  [1.0, 2.0**70, 0.0, 1.0, 0.0], 117)
    assert fs == [1 / 3, 1 / 3, 0.0, 0.0, 0.5]
    assert doubt == [1, 3]  # a loose bound, and an inexact zero
