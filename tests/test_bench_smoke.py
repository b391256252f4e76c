"""The engine benchmark compares like with like: same graph, same numbers.

bench/bench_engine.py replays one plan on gradcert, micrograd and bare floats;
these tests run it on a small DAG and check that every engine computes the
plain-float forward exactly and that the leaf gradients agree.
"""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from gradcert.engine import Value
from gradcert.engine import value as value_module

pytestmark = pytest.mark.e2e  # the benchmarks' commands, run

_PATH = Path(__file__).resolve().parents[1] / "bench" / "bench_engine.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_engine", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_engine", mod)
    spec.loader.exec_module(mod)
    return mod


be = _load_bench()
NODES = 2_000


@pytest.fixture(scope="module")
def plan():
    return be.make_plan(NODES, seed=3)


def test_plan_is_a_connected_bounded_dag_with_sharing(plan):
    assert plan.nodes == NODES
    used = set()
    for s, (op, i, j, _c) in enumerate(plan.steps):
        n = len(plan.inputs) + s
        assert 0 <= i < n and (j == -1 or 0 <= j < n), (s, i, j)
        assert (j != -1) == (op in (be.ADD, be.MUL)), (s, op, j)
        used.update((i, j))
    # every node but the output feeds some later node, so backward reaches all
    assert used - {-1} == set(range(NODES - 1))
    assert any(i == j for _op, i, j, _c in plan.steps)  # x op x
    values = be.replay_floats(plan)
    inner = values[len(plan.inputs):]
    assert all(v == 0.0 or abs(v) >= be.LO for v in inner)
    assert all(math.isfinite(v) for v in values)
    assert {op for op, *_ in plan.steps} == set(range(len(be.OP_NAMES)))


def test_same_seed_same_plan():
    sizes = [(n, s) for n in (128, 149, 156, 177, 501) for s in range(4)]
    assert [be.make_plan(n, seed=s).nodes for n, s in sizes] == [n for n, _ in sizes]
    assert be.make_plan(300, seed=5) == be.make_plan(300, seed=5)
    assert be.make_plan(300, seed=5) != be.make_plan(300, seed=6)


def test_engines_agree_with_floats_and_each_other(plan):
    floats = be.replay_floats(plan)
    ours = be.replay_values(plan, Value)
    ours[-1].backward()
    be.check_agreement(plan, floats, ours, "gradcert")  # forward: exactly the floats
    assert any(ours[k].grad != 0.0 for k in range(len(plan.inputs)))
    micrograd = pytest.importorskip("micrograd.engine")
    be.ensure_recursion_limit(plan.nodes)
    theirs = be.replay_values(plan, micrograd.Value)
    theirs[-1].backward()
    be.check_agreement(plan, floats, theirs, "micrograd", reference=ours, rtol=1e-12)
    for k in range(len(plan.inputs)):
        assert theirs[k].grad == pytest.approx(ours[k].grad, rel=1e-9, abs=1e-300)


def test_check_agreement_sees_a_difference(plan):
    floats = be.replay_floats(plan)
    ours = be.replay_values(plan, Value)
    ours[-1].backward()
    floats[100] = math.nextafter(floats[100], math.inf)
    with pytest.raises(AssertionError, match="node 100"):
        be.check_agreement(plan, floats, ours, "gradcert")


def test_backward_order_dense_and_sorted_agree(plan):
    """backward's index-placed order equals the sort-based fallback's."""
    out = be.replay_values(plan, Value)[-1]
    dense = [v for v in value_module._by_creation(out, {}) if v is not None]
    assert [id(v) for v in dense] == [id(v) for v in value_module._sorted(out, {})]
    assert all(a._i > b._i for a, b in zip(dense, dense[1:], strict=False))


@pytest.mark.parametrize("slack", [1 << 20, 1 << 10])
def test_backward_with_sparse_creation_indices(monkeypatch, slack):
    """Dense placement and, past the slack, the sort fallback give the same answer."""
    monkeypatch.setattr(value_module, "_DENSE_SLACK", slack)
    calls = []
    sort = value_module._sorted
    monkeypatch.setattr(value_module, "_sorted",
                        lambda root, leaves: calls.append(root) or sort(root, leaves))
    x = Value(3.0)
    h = x * x  # an inner node much older than the rest of the graph
    junk = [Value(1.0) * 2.0 for _ in range(1 << 15)]
    y = (h * 2.0 + x) * (h + 1.0)
    del junk
    y.backward()
    # y = (2x^2 + x)(x^2 + 1); dy/dx = (4x + 1)(x^2 + 1) + (2x^2 + x) 2x at x = 3
    assert x.grad == 13.0 * 10.0 + 21.0 * 6.0
    assert len(calls) == (slack < 1 << 15)  # the fallback ran only when the slack was small
    order = value_module._by_creation(y, {})
    assert [v.data for v in order if v is not None] == [y.data, 10.0, 21.0, 18.0, 9.0]


def test_main_prints_a_table(capsys):
    assert be.main(["--nodes", "1000", "--repeats", "1", "--chain", "0"]) == 0
    out = capsys.readouterr().out
    assert "gradcert, GC on (default)" in out and "bytes per node" in out


def test_no_gc_pauses_and_restores_the_collector_even_on_error():
    import gc

    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), value_module.no_gc():
        with value_module.no_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it paused, so leaves it paused
        Value(1.0) / 0.0
    assert gc.isenabled()
    gc.disable()
    try:
        with value_module.no_gc():
            pass
        assert not gc.isenabled()  # paused by the caller: left as it was
    finally:
        gc.enable()


def _load(name):
    spec = importlib.util.spec_from_file_location(name, _PATH.parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_detection_bench_plants_an_error_that_moves_a_gradient_and_gradcert_sees_it():
    bd = _load("bench_detection")
    graphs = bd.draw_graphs(40)
    assert graphs and [len(g) for g in graphs] == [len(g) for g in bd.draw_graphs(40)]
    m = bd.measure(40, errors=(1e-6,), with_gradcheck=False)
    assert m["judged"] >= 10
    assert m["false"][0] == 0  # the correct engine is never flagged
    assert m["flagged"][1e-6][0] >= 0.9 * m["judged"]
    g = graphs[0]
    site = bd.plant_site(g, seed=0)
    if site is not None:
        assert bd.backward(g, (site, 1e-3))[1] != bd.backward(g)[1]
