"""The engine host and the judge's client: the protocol, limits, crashes and restarts.

Engines here are small modules written to a temporary directory, loaded by a host
process; nothing an engine does reaches this (the judge's) process.
"""

import math
import os
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings

from gradcert.adapters import client as client_module
from gradcert.adapters import load_target, run_graph
from gradcert.adapters.client import (
    EngineFailed,
    HostClient,
    HostCrashed,
    HostTimeout,
    LoadError,
    Unsupported,
)
from gradcert.adapters.protocol import ProtocolError, number, to_float, wire_graph
from gradcert.graph import Graph, Node, trace
from gradcert.properties import strategies as gs

STANDALONE = Path(__file__).resolve().parent / "standalone_host.py"
PLANTED_BASE = Path(__file__).resolve().parent / "planted" / "engines" / "base.py"


def engine_module(tmp_path, name, body):
    """A package ``hostile_<name>`` in tmp_path: the planted base engine and ``body``
    (which subclasses ``Base``) as its Value."""
    pkg = tmp_path / f"eng_{name}"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text(PLANTED_BASE.read_text())
    (pkg / "engine.py").write_text("from .base import Value as Base\n"
                                   + textwrap.dedent(body))
    return f"eng_{name}.engine:Value"


@pytest.fixture
def host(tmp_path):
    """A client factory: ``host(target_body)``, closed after the test."""
    made = []

    def make(body=None, name="e", **kw):
        target = engine_module(tmp_path, name, body) if body is not None else "gradcert"
        c = HostClient(target, path=str(tmp_path), **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def run(c, graph, cpu=10.0, **kw):
    return c.request("run", graph=wire_graph(graph), cpu=cpu, **kw)


EXP = Graph((Node.leaf(1.0), Node("exp", (0,))))


def exp_at(x):
    return Graph((Node.leaf(x), Node("exp", (0,))))


# -- the protocol's numbers ------------------------------------------------------


@pytest.mark.parametrize("x", [0.1, -0.0, 5e-324, 1.7976931348623157e308, math.inf, -math.inf])
def test_numbers_travel_exactly(x):
    import json

    back = to_float(json.loads(json.dumps(number(x))), "x")
    assert back == x and math.copysign(1, back) == math.copysign(1, x)
    assert math.isnan(to_float(json.loads(json.dumps(number(math.nan))), "x"))
    with pytest.raises(ProtocolError, match="expected a number"):
        to_float(True, "x")


@settings(max_examples=30, deadline=None)
@given(gs.graphs(max_nodes=12, leaves="mixed"))
def test_a_host_gives_the_in_process_numbers_bit_for_bit(shared_host, g):
    want = run_graph(load_target("gradcert"), g)
    got = run(shared_host, g)
    assert [to_float(x, "") for x in got["grads"]] == list(want.grads)
    value = to_float(got["value"], "")
    assert value == want.value or (math.isnan(value) and math.isnan(want.value))


@pytest.fixture(scope="module")
def shared_host():
    c = HostClient("gradcert")
    yield c
    c.close()


def test_handles_live_in_the_host_across_requests(host):
    c = host()
    g = trace(lambda x: x * x * x, [2.0])
    gid = c.request("build", graph=wire_graph(g), cpu=5)["graph"]
    c.request("backward", ref=[gid, 2], cpu=5)
    assert c.request("grads", refs=[[gid, 0]], cpu=5)["grads"] == [12.0]
    c.request("backward", ref=[gid, 2], cpu=5)  # gradcert's engine accumulates
    assert c.request("grads", refs=[[gid, 0]], cpu=5)["grads"] == [24.0]
    c.request("zero_grad", refs=[[gid, 0]], cpu=5)
    again = c.request("build", graph=wire_graph(g), leaves=[[gid, 0]], cpu=5)["graph"]
    c.request("backward", ref=[again, 2], cpu=5)
    assert c.request("grads", refs=[[gid, 0]], cpu=5)["grads"] == [12.0]
    c.request("adam_step", refs=[[gid, 0]], step=1, lr=0.1, betas=[0.9, 0.999], eps=1e-8,
              cpu=5)
    assert c.request("value", ref=[gid, 0], cpu=5)["value"] == pytest.approx(1.9)
    c.request("free", cpu=5)
    with pytest.raises(EngineFailed, match="no built node") as e:
        c.request("value", ref=[gid, 0], cpu=5)
    assert e.value.kind == "request"


def test_error_replies_name_the_node_and_what_went_wrong(host):
    c = host("""
        class Value(Base):
            def log(self):
                raise KeyboardInterrupt("not now")
            def tanh(self):
                v = super().tanh()
                v.data = None
                return v
    """)
    with pytest.raises(EngineFailed) as e:
        run(c, trace(lambda x: (x * 2.0).log(), [1.0]))
    assert (e.value.kind, e.value.node, e.value.op) == ("engine", 2, "log")
    assert str(e.value) == "the engine raised KeyboardInterrupt: not now at node 2 (log)"
    with pytest.raises(EngineFailed, match=r"value \(\.data\) is not a number: None"):
        run(c, trace(lambda x: x.tanh(), [1.0]))
    with pytest.raises(EngineFailed, match="node 1: log of \\[1\\]: wrong arguments") as e:
        c.request("run", graph=[["leaf", 1.0], ["log", [1]]], cpu=5)
    assert e.value.kind == "request"
    assert c.starts == 1  # none of that cost the host its life


def test_a_functional_engine_says_unsupported_for_handles(host):
    pytest.importorskip("autograd")
    c = HostClient("autograd")
    try:
        with pytest.raises(Unsupported, match="functional"):
            c.request("build", graph=wire_graph(EXP), cpu=30)
        assert to_float(c.request("forward", graph=wire_graph(EXP), cpu=30)["value"], "") \
            == math.e
    finally:
        c.close()


# -- crashes, limits, restarts ------------------------------------------------------


def test_an_exit_is_a_crash_and_the_next_request_gets_a_fresh_host(host):
    c = host("""
        import os, sys
        class Value(Base):
            def exp(self):
                if self.data > 100:
                    print("about to go")
                    sys.stdout.flush()
                    os._exit(0)
                return super().exp()
    """)
    with pytest.raises(HostCrashed) as e:
        run(c, exp_at(101.0))
    assert "exit code 0" in str(e.value) and "about to go" in e.value.output
    assert to_float(run(c, EXP)["value"], "") == math.e
    assert c.starts == 2


def test_a_segfault_is_a_crash(host):
    c = host("""
        import ctypes
        class Value(Base):
            def exp(self):
                ctypes.string_at(0)
    """)
    with pytest.raises(HostCrashed, match="SIGSEGV"):
        run(c, EXP)


def test_closing_the_protocols_pipes_is_a_crash(host):
    c = host("""
        import os
        class Value(Base):
            def exp(self):
                for fd in range(3, 64):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                return super().exp()
    """)
    with pytest.raises(HostCrashed, match="ended|closed|pipe"):
        run(c, EXP)


def test_a_c_level_loop_is_stopped_by_cpu_time(host):
    c = host("""
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        class Value(Base):
            def exp(self):
                sum(range(10**12))
    """)
    with pytest.raises(HostTimeout, match="more than 0.5 s of CPU") as e:
        run(c, EXP, cpu=0.5)
    assert e.value.seconds == 0.5
    assert not c.running


def test_a_sleeping_engine_meets_the_wall_ceiling(host, monkeypatch):
    c = host("""
        import time
        class Value(Base):
            def exp(self):
                time.sleep(60)
    """)
    c.start()  # under the usual ceiling: a loaded machine may take seconds to load it
    monkeypatch.setattr(client_module, "wall_ceiling", lambda cpu: 1.0)
    with pytest.raises(HostTimeout, match="wall time"):
        run(c, EXP)


def test_output_is_kept_to_its_tail(host):
    c = host("""
        import sys
        class Value(Base):
            def exp(self):
                sys.stdout.write("x" * (1 << 20) + "\\n")
                print("the last line", file=sys.stderr)
                return super().exp()
    """)
    for _ in range(3):
        run(c, EXP)
    assert os.path.getsize(c._log) <= client_module.OUTPUT_KEEP + 10_000
    assert c.output_tail().rstrip().endswith("the last line")


def test_probing_goes_past_ops_that_hang_or_crash(host):
    c = host("""
        import os
        class Value(Base):
            def exp(self):
                while True:
                    pass
            def tanh(self):
                os._exit(4)
            def log(self):
                raise RuntimeError("log is broken")
            def __rtruediv__(self, other):
                return NotImplemented
    """)
    c.start()
    caps = c.capabilities(probe_cpu=0.5)
    assert {"exp", "tanh", "log"} <= caps.ops and "rdivc" not in caps.ops
    assert "did not finish within 0.5 s of CPU" in caps.notes["exp"]
    assert "crashed the host" in caps.notes["tanh"] and "exit code 4" in caps.notes["tanh"]
    assert caps.notes["log"] == "fails at every probe point: RuntimeError: log is broken"
    assert "returns NotImplemented" in caps.notes["rdivc"]


@pytest.mark.parametrize("body, says", [
    ("import os\nos._exit(0)\nValue = Base\n", "exit code 0"),
    ("import sys\nsys.exit(0)\nValue = Base\n", "SystemExit"),
    ("raise ImportError('no such thing')\n", "ImportError: no such thing"),
    ("while True:\n    pass\n", "of CPU"),
    ("class Value:\n    pass\n", r"calling Value\(2.0\) raised TypeError"),
])
def test_a_target_that_cannot_load_is_a_load_error(host, body, says):
    c = host(body, load_cpu=1.0)
    with pytest.raises(LoadError, match=says):
        c.start()


def test_gradcert_is_imported_before_the_users_directory(host, tmp_path):
    # a directory holding a broken gradcert/ (an old checkout, say) and the target
    (tmp_path / "gradcert").mkdir()
    (tmp_path / "gradcert" / "__init__.py").write_text("raise ImportError('the wrong one')\n")
    c = host("Value = Base\n")
    assert c.start().value_class
    assert to_float(run(c, EXP)["value"], "") == math.e


def test_the_judge_never_imports_the_target(host):
    c = host("import os\nPID = os.getpid()\nValue = Base\n")
    c.start()
    assert "eng_e.engine" not in sys.modules and "eng_e" not in sys.modules


# -- a host written without gradcert -------------------------------------------------


def test_a_standalone_host_speaks_the_protocol(tmp_path):
    c = HostClient(None, command=[sys.executable, str(STANDALONE)], path=str(tmp_path))
    try:
        info = c.start()
        assert info.name == "standalone" and not info.prelude
        caps = c.capabilities()
        # it has the first nineteen ops: the ten added since are unsupported, not errors
        assert caps.unsupported == {"sqrt", "abs", "max", "min", "log1p", "expm1", "erf",
                                    "sin", "cos", "pow"} and caps.has_zero_grad
        g = trace(lambda x, y: (x * y).log() + x.exp(), [2.0, 3.0])
        want = run_graph(load_target("gradcert"), g)
        got = run(c, g)
        assert [to_float(x, "") for x in got["grads"]] == pytest.approx(want.grads, rel=1e-15)
        with pytest.raises(Unsupported, match="no Adam"):
            c.request("adam_step", refs=[], step=1, lr=0.1, betas=[0.9, 0.999], eps=1e-8,
                      cpu=5)
    finally:
        c.close()


def test_a_host_of_another_protocol_version_is_refused(tmp_path):
    c = HostClient(None, command=[sys.executable, str(STANDALONE), "--version", "2"],
                   path=str(tmp_path))
    try:
        with pytest.raises(LoadError, match="version 2; this gradcert speaks version 1"):
            c.start()
    finally:
        c.close()
