"""The conformance suite's machinery: ids, reproducers, time limits, failure messages."""

import ast
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings

from gradcert.adapters import Capabilities, GenericAdapter, load_target, run_graph
from gradcert.engine import Value
from gradcert.properties import strategies as st
from gradcert.properties.assertions import check_graph
from gradcert.properties.recording import MAX_SAMPLES, Recorder
from gradcert.properties.registry import LEVELS, PROPERTIES
from gradcert.properties.reproducer import build_source
from gradcert.properties.runner import (
    PROFILES,
    Check,
    Config,
    EngineTimeout,
    property_id,
    time_limit,
)
from gradcert.properties.suite import LEVEL_FILES

ENGINE = Path(__file__).resolve().parents[1] / "gradcert" / "engine" / "value.py"
CORRECT_LINE = "_log(x), 0.0, self, 1.0 / x, None"
BUGGY_LINE = "_log(x), 0.0, self, -1.0 / x, None"  # d log(x)/dx = -1/x: planted


def _engine_source(buggy):
    text = ENGINE.read_text()
    assert CORRECT_LINE in text
    return text.replace(CORRECT_LINE, BUGGY_LINE) if buggy else text


def test_every_suite_test_is_a_registered_property_and_back():
    found = set()
    for path in LEVEL_FILES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.add(property_id(str(path), node.name))
    assert found == set(PROPERTIES)
    assert {p.level for p in PROPERTIES.values()} == set(LEVELS)


def test_the_catalogue_speaks_the_same_ids():
    catalogue = pytest.importorskip("tests.planted.catalogue")
    assert set(PROPERTIES) == catalogue.ALL_PROPERTIES


@settings(max_examples=25, deadline=None)
@given(st.graphs(max_nodes=10))
def test_build_source_rebuilds_the_graph_exactly(g):
    namespace = {}
    exec(build_source(g), namespace)
    leaves, out = namespace["build"](Value)
    out.backward()
    run = run_graph(load_target(None), g)
    assert out.data == run.value or (out.data != out.data and run.value != run.value)
    assert tuple(x.grad for x in leaves) == run.grads


def test_time_limit_interrupts_a_hang_and_keeps_an_outer_alarm():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout), time_limit(0.2):
            while True:
                pass
        assert time.monotonic() - t0 < 5
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 20 < left <= 30  # the outer alarm is re-armed with what it had left
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not fired


def test_recorder_keeps_the_worst_and_bounds_its_samples():
    r = Recorder("ops.values")
    for i in range(3 * MAX_SAMPLES):
        r.observe(float(i % 7), 0.0, op="exp", kind="value")
    assert r.worst["ulps"] == 6.0
    assert len(r.samples) < MAX_SAMPLES


def test_the_recorded_worst_is_the_largest_fraction_of_its_bound_not_of_ulps():
    r = Recorder("ops.gradients")
    r.observe(4.4e18, 1.0, op="tanh", inputs=[20.0], of_bound=0.015)  # tanh'(20) ~ 0
    r.observe(105.0, 1.3e-14, op="powc", inputs=[1e-100], of_bound=0.12)
    r.observe(9e18, 1.0, op="tanh", inputs=[30.0])  # no bound: says less
    assert r.worst["op"] == "powc" and r.worst["of_bound"] == 0.12


def _check(tmp_path, adapter, pid, item=None, **profile):
    from dataclasses import replace

    config = Config(target=adapter.target, profile=replace(PROFILES["quick"], **profile),
                    seed=3, out=tmp_path)
    return Check(config, adapter, Recorder(pid, item), pid, item)


def _graph_for_log(x):
    from gradcert.properties.suite.ops import op_graph

    return op_graph("log", (x,), None)


def test_a_finding_reads_without_the_code_and_leaves_a_working_reproducer(tmp_path):
    (tmp_path / "buggy_engine.py").write_text(_engine_source(buggy=True))
    sys.path.insert(0, str(tmp_path))
    try:
        adapter = load_target("buggy_engine:Value")
        check = _check(tmp_path, adapter, "ops.gradients", "log")
        with pytest.raises(pytest.fail.Exception) as e:
            check.examples(st.op_inputs("log"),
                           lambda t: check_graph(check, _graph_for_log(*t[0]), op="log"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("buggy_engine", None)
    msg = str(e.value)
    for part in ("ops.gradients failed for log", "d(node 1)/d(leaf 0", "the oracle says",
                 "ulps", "tolerance model:", "finite differences", "seed: 3",
                 "first wrong node: 1 = log("):
        assert part in msg, part
    assert check.record.outcome == "failed"
    script = Path(check.record.reproducer)
    assert script.name == "ops.gradients-log.py" and f"reproducer: {script}" in msg
    text = script.read_text()
    assert "import gradcert.properties" not in text and "buggy_engine import Value" in text
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and "<-- wrong" in run.stdout
    (tmp_path / "buggy_engine.py").write_text(_engine_source(buggy=False))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


class Hangs:
    """A Value whose exp never returns."""

    def __init__(self, data):
        self.data, self.grad = float(data), 0.0

    def exp(self):
        while True:
            pass


def test_a_hanging_engine_times_out_per_example(tmp_path):
    adapter = GenericAdapter(Hangs, capabilities=Capabilities(frozenset({"exp"})))
    check = _check(tmp_path, adapter, "ops.values", "exp", example_time_limit=0.3)
    t0 = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="timeout"):
        check.examples(st.op_inputs("exp"),
                       lambda t: check_graph(check, _exp_graph(*t[0]), op="exp"))
    assert time.monotonic() - t0 < 10
    assert check.record.outcome == "timeout"


def _exp_graph(x):
    from gradcert.properties.suite.ops import op_graph

    return op_graph("exp", (x,), None)


def test_an_engine_that_raises_is_an_error_on_a_shrunk_graph(tmp_path):
    class Raises(Hangs):
        def exp(self):
            raise ArithmeticError("exp is broken")

    adapter = GenericAdapter(Raises, capabilities=Capabilities(frozenset({"exp"})))
    check = _check(tmp_path, adapter, "ops.values", "exp")
    with pytest.raises(pytest.fail.Exception, match="ArithmeticError: exp is broken"):
        check.examples(st.op_inputs("exp"),
                       lambda t: check_graph(check, _exp_graph(*t[0]), op="exp"))
    assert check.record.outcome == "error"
    assert len(check.record.failure["graph"]["nodes"]) == 2  # the op and its leaf
