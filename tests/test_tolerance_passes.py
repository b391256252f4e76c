"""The tolerance model's fast paths give what the model as first written gives.

- The flat first-order pass and Monte Carlo runs equal the node-by-node
  statement of the model (tests/tolerance_reference.py) bit for bit: every
  bound, spread and run count, float64 and float32, with and without the exact
  result.
- ``verdict`` (the Monte Carlo runs only where they can matter) gives the same
  violations, and refuses the same results, as ``tolerance(...).check(...)``.
- ``Tolerance.check`` on an oracle ``Exact`` (distances in MPFR, no mpf made)
  gives the same violations as on the same numbers handed over as mpfs.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerance_reference import reference

from gradcert.graph import DomainError, Graph, Node, canonical, trace
from gradcert.oracle import Unresolved, exact_graph
from gradcert.oracle.tolerance import MCA_RUNS, SAFETY, Refused, tolerance, verdict
from gradcert.properties.strategies import graphs

_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _bits(x: float) -> Any:
    return "nan" if x != x else x.hex() if math.isfinite(x) else repr(x)


def _exact(graph: Graph) -> Any:
    try:
        return exact_graph(graph)
    except (DomainError, Unresolved):
        return None


@_SETTINGS
@given(graphs(max_nodes=40), st.sampled_from(["float64", "float32"]), st.booleans(),
       st.integers(0, 3))
def test_the_flat_passes_equal_the_model_node_by_node(graph, dtype, with_exact, seed):
    ex = _exact(graph) if with_exact else None
    try:
        want = reference(graph, ex, dtype, seed)
    except DomainError as e:
        with pytest.raises(DomainError) as got:
            tolerance(graph, ex, dtype, seed)
        assert str(got.value) == str(e)
        return
    t = tolerance(graph, ex, dtype, seed)
    lin_v, lin_g, mca_v, mca_g, runs = want
    assert (_bits(t.linear_value), [_bits(g) for g in t.linear_grad]) == \
        (_bits(lin_v), [_bits(g) for g in lin_g])
    assert (_bits(t.mca_value), [_bits(g) for g in t.mca_grad], t.runs) == \
        (_bits(mca_v), [_bits(g) for g in mca_g], runs)


def test_the_flat_passes_equal_the_model_on_seeded_random_graphs():
    # the evidence's random graphs: every op, fan-out, magnitudes from 1e-30 to 1e30
    import test_tolerance as evidence

    rng = random.Random(12)
    compared = 0
    for k in range(300):
        graph = evidence.random_graph(rng, 60)
        ex = _exact(graph) if k % 2 else None
        for dtype in ("float64", "float32"):
            try:
                want = reference(graph, ex, dtype, k)
            except DomainError:
                continue
            t = tolerance(graph, ex, dtype, k)
            got = (t.linear_value, list(t.linear_grad), t.mca_value, list(t.mca_grad), t.runs)
            assert repr(got) == repr(want), graph.to_json()
            compared += 1
    assert compared > 500


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Refused as e:
        return ("refused", str(e))


def _results(ex: Any, tol: Any, rng: random.Random) -> list[tuple[float, list[float]]]:
    """Results at, inside and just outside the bounds, of either sign, and their
    first-order part."""
    out = [(ex.value_f64, list(ex.grad_f64))]
    for scale in (0.5, 0.999, 1.0, 1.001, 3.0):
        for bound_v, bound_g in ((tol.value, tol.grad),
                                 (SAFETY * tol.linear_value,
                                  [SAFETY * g for g in tol.linear_grad])):
            sign = rng.choice((-1.0, 1.0))
            v = ex.value_f64 + sign * scale * bound_v if math.isfinite(bound_v) else 1.0
            gs = [e + rng.choice((-1.0, 1.0)) * scale * b if math.isfinite(b) else e
                  for e, b in zip(ex.grad_f64, bound_g, strict=True)]
            out.append((v, gs))
    return out


@_SETTINGS
@given(graphs(max_nodes=40), st.sampled_from(["float64", "float32"]), st.randoms())
def test_verdict_judges_as_the_whole_model(graph, dtype, rnd):
    ex = _exact(graph)
    if ex is None:
        return
    try:
        tol = tolerance(graph, ex, dtype)
    except DomainError:
        return
    for value, grads in _results(ex, tol, rnd):
        want = _outcome(tol.check, value, grads, ex)
        got = _outcome(lambda *args: verdict(*args)[1], graph, ex, value, grads, dtype)
        assert got == want, (graph.to_json(), value, grads)


def test_verdict_skips_the_runs_only_for_results_inside_the_first_order_bound():
    graph = trace(lambda x, y: (x * y).tanh() / (x + 2.0), [0.3, -1.2])
    ex = exact_graph(graph)
    tol, bad = verdict(graph, ex, ex.value_f64, ex.grad_f64)
    assert bad == [] and tol.runs == 0 and tol.mca_value == 0.0
    assert tol.value == SAFETY * tol.linear_value
    assert "not needed" in tol.describe() and "running-error)" in tol.describe()
    outside = [ex.grad_f64[0] * (1 + 1e-9), ex.grad_f64[1]]
    full, bad = verdict(graph, ex, ex.value_f64, outside)
    assert [v.leaf for v in bad] == [0] and full.runs == MCA_RUNS
    assert full == tolerance(graph, ex)


def test_verdict_runs_the_model_where_a_run_may_overflow():
    # x * 1.0 at the largest float: a run moved up by 2u overflows, so the whole
    # model's bound is infinite and it refuses a finite result; the first-order
    # bound alone is finite, and verdict must not pass the result on it
    big = 1.7976931348623157e308
    graph = Graph((Node.leaf(big), Node("mulc", (0,), 1.0), Node("mulc", (1,), 0.5)))
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    assert math.isfinite(tol.linear_value) and math.isinf(tol.value)
    with pytest.raises(Refused):
        tol.check(ex.value_f64, ex.grad_f64, ex)
    with pytest.raises(Refused):
        verdict(graph, ex, ex.value_f64, ex.grad_f64)


def test_verdict_runs_the_model_where_an_operand_of_a_smooth_op_is_known_roughly():
    # log of a difference that cancels: its operand is known to about itself, so
    # a run may stray beyond the first-order bounds: the model decides
    graph = trace(lambda x, y: (x * 0.1 - y * 0.1).log() * 2.0, [1.0 + 2.0**-48, 1.0])
    ex = exact_graph(graph)
    tol, bad = verdict(graph, ex, ex.value_f64, ex.grad_f64)
    assert tol.runs > 0 and tol == tolerance(graph, ex)


def test_check_on_an_exact_result_equals_the_check_on_its_mpfs():
    import test_tolerance as evidence

    rng = random.Random(3)
    for _ in range(60):
        graph = evidence.random_graph(rng, 30)
        ex = _exact(graph)
        if ex is None:
            continue
        tol = tolerance(graph, ex)
        mpfs = SimpleNamespace(value=ex.value, grad=ex.grad, value_f64=ex.value_f64,
                               grad_f64=ex.grad_f64, values_f64=ex.values_f64, graph=graph)
        for value, grads in _results(ex, tol, rng) + [(math.nan, [math.inf] * len(ex.grad))]:
            assert _outcome(tol.check, value, grads, ex) == \
                _outcome(tol.check, value, grads, mpfs)


def test_canonical_is_found_once_and_handed_out_fresh():
    graph = trace(lambda x: x.tanh() - x.tanh(), [0.5])
    first = canonical(graph)
    first[0] = 99  # a caller's list is its own
    assert canonical(graph) == [0, 1, 1, 3]
    assert graph.leaves == (0,) and graph == trace(lambda x: x.tanh() - x.tanh(), [0.5])
