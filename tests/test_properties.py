"""The conformance suite's machinery: ids, reproducers, limits, failure messages."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings

from gradcert.adapters import Capabilities, load_target, run_graph
from gradcert.adapters.client import HostClient
from gradcert.engine import Value
from gradcert.graph import Graph, Node
from gradcert.properties import strategies as st
from gradcert.properties.assertions import check_graph
from gradcert.properties.engine import Engine, op_graph, start_engine
from gradcert.properties.recording import MAX_SAMPLES, Recorder
from gradcert.properties.registry import LEVELS, PROPERTIES
from gradcert.properties.reproducer import build_source
from gradcert.properties.runner import PROFILES, Check, Config, property_id
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


@pytest.fixture
def engines():
    """Engines started by a test, closed after it."""
    made = []
    yield made
    for e in made:
        e.close()


def _check(tmp_path, engine, pid, item=None, **profile):
    from dataclasses import replace

    config = Config(target=engine.target, profile=replace(PROFILES["quick"], **profile),
                    seed=3, out=tmp_path)
    return Check(config, engine, Recorder(pid, item), pid, item)


def _engine(engines, tmp_path, name, source, ops=None, cpu=10.0):
    """An engine in module ``name`` of tmp_path, behind its host (with ``ops`` declared
    instead of probed, if given)."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    if ops is None:
        engine = start_engine(f"{name}:Value", path=str(tmp_path), cpu=cpu)
    else:
        client = HostClient(f"{name}:Value", path=str(tmp_path))
        engine = Engine(client, Capabilities(frozenset(ops)), client.start(), cpu)
    engines.append(engine)
    return engine


def test_a_finding_reads_without_the_code_and_leaves_a_working_reproducer(tmp_path, engines):
    engine = _engine(engines, tmp_path, "buggy_engine", _engine_source(buggy=True))
    check = _check(tmp_path, engine, "ops.gradients", "log")
    with pytest.raises(pytest.fail.Exception) as e:
        check.examples(st.op_inputs("log"),
                       lambda t: check_graph(check, op_graph("log", t[0], None), op="log"))
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


HANGS = """
    class Value:
        \"\"\"A Value whose exp never returns (a loop in C, holding the GIL).\"\"\"

        def __init__(self, data):
            self.data, self.grad = float(data), 0.0

        def backward(self):
            pass

        def exp(self):
            sum(range(10**12))
"""


def test_a_hanging_engine_times_out_with_its_graph_and_a_reproducer(tmp_path, engines):
    engine = _engine(engines, tmp_path, "hangs", HANGS, ops={"exp"}, cpu=0.3)
    check = _check(tmp_path, engine, "ops.values", "exp")
    with pytest.raises(pytest.fail.Exception, match="more than 0.3 s of CPU"):
        check.examples(st.op_inputs("exp"),
                       lambda t: check_graph(check, op_graph("exp", t[0], None), op="exp"))
    assert check.record.outcome == "timeout"
    assert len(check.record.failure["graph"]["nodes"]) == 2
    script = Path(check.record.reproducer)
    assert "CPU_LIMIT = 0.3" in script.read_text()
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1 and "more than 0.3 s of CPU" in run.stdout, run.stdout


def test_an_engine_that_crashes_is_crashed_and_the_next_example_gets_a_fresh_host(
        tmp_path, engines):
    dies = HANGS.replace("sum(range(10**12))", "import os; os._exit(9)")
    engine = _engine(engines, tmp_path, "dies", dies, ops={"exp"})
    check = _check(tmp_path, engine, "ops.values", "exp")
    with pytest.raises(pytest.fail.Exception, match="exit code 9"):
        check.examples(st.op_inputs("exp"),
                       lambda t: check_graph(check, op_graph("exp", t[0], None), op="exp"))
    assert check.record.outcome == "crashed"
    script = Path(check.record.reproducer)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1 and "exit code 9" in run.stdout, run.stdout
    assert not engine.client.running and engine.client.starts == 1
    assert engine.forward(Graph((Node.leaf(2.5),))) == 2.5  # on a fresh host
    assert engine.client.starts == 2


def test_an_engine_that_raises_is_an_error_on_a_shrunk_graph(tmp_path, engines):
    raises = HANGS.replace("sum(range(10**12))", "raise ArithmeticError('exp is broken')")
    engine = _engine(engines, tmp_path, "raises", raises, ops={"exp"})
    check = _check(tmp_path, engine, "ops.values", "exp")
    with pytest.raises(pytest.fail.Exception, match="ArithmeticError: exp is broken"):
        check.examples(st.op_inputs("exp"),
                       lambda t: check_graph(check, op_graph("exp", t[0], None), op="exp"))
    assert check.record.outcome == "error"
    assert len(check.record.failure["graph"]["nodes"]) == 2  # the op and its leaf
