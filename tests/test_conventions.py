"""The declared conventions (docs/conventions.md), end to end and unit by unit.

A flush-to-zero engine is certified by default and fails with --strict; an engine
whose d(x/y)/dy at 1e-300 / 1e-200 is -inf fails by default with severity class
range and is certified with --range normal. relu'(0) anywhere in [0, 1] is judged
the same way in every property, and a reproducer written for one engine passes a
correct engine with another relu'(0).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gradcert.graph import trace
from gradcert.oracle import exact_graph
from gradcert.oracle.tolerance import tolerance
from gradcert.properties import conventions
from gradcert.properties.reproducer import oracle_body
from gradcert.results import Results
from gradcert.settings import SettingError, resolve

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import io, json, sys
from gradcert.certify import certify

out, target, select, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
r = certify(target, profile="quick", seed=1, out=out, jobs=0, select=select, quiet=True,
            stream=io.StringIO(), **opts)
print(json.dumps({p.id: {"outcome": p.outcome, "failure": p.failure, "notes": p.notes}
                  for p in r.properties}))
"""


def _certify(tmp_path, target, select, **opts):
    out = tmp_path / ("strict" if opts.get("strict") else opts.get("range", "default"))
    run = subprocess.run([sys.executable, "-c", RUNNER, str(out), target, select,
                          json.dumps(opts)], cwd=ROOT, capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1]), Results.from_json(
        (out / "results.json").read_text())


@pytest.mark.catalogue
def test_a_flush_to_zero_engine_passes_by_default_and_fails_with_strict(tmp_path):
    target = "tests.planted.conventions:FlushValue"
    select = "ops and (exp or sigmoid) and not kinks"
    props, results = _certify(tmp_path, target, select)
    assert props and all(p["outcome"] == "passed" for p in props.values()), props
    assert sum(p["notes"].get("flushed", 0) for p in props.values()) > 0
    assert results.conventions["strict"] is False
    props, results = _certify(tmp_path, target, select, strict=True)
    assert results.conventions["strict"] is True
    failed = [p for p in props.values() if p["outcome"] == "failed"]
    assert failed, props
    assert any("flushed to 0" in json.dumps(p["failure"]) for p in failed), failed


@pytest.mark.catalogue
def test_an_intermediate_underflow_is_a_range_finding_and_normal_range_certifies(tmp_path):
    target = "tests.planted.conventions:IEEEDivValue"
    select = "ops and gradients and div"
    props, _ = _certify(tmp_path, target, select)
    p = props["ops.gradients"]
    assert p["outcome"] == "failed", p
    assert p["failure"]["severity"]["class"] == "range"
    assert "range finding" in json.dumps(p["failure"])
    props, results = _certify(tmp_path, target, select, range="normal")
    assert props["ops.gradients"]["outcome"] == "passed", props
    assert results.conventions["range"] == "normal"
    assert props["ops.gradients"]["notes"].get("outside_range", 0) > 0


# -- units ------------------------------------------------------------------------


def test_strict_and_range_are_settings_rows():
    v = resolve({}, environ={"GRADCERT_STRICT": "1", "GRADCERT_RANGE": "normal"})
    assert v["strict"] is True and v["range"] == "normal"
    assert resolve({})["strict"] is False and resolve({})["range"] == "full"
    with pytest.raises(SettingError, match="--range: unknown range 'tiny'"):
        resolve({"range": "tiny"})
    with pytest.raises(SettingError, match="GRADCERT_STRICT: must be 1 or 0"):
        resolve({}, environ={"GRADCERT_STRICT": "maybe"})


def test_the_cli_takes_strict_without_a_value_and_range_with_one():
    from gradcert.cli import _parser

    args = _parser().parse_args(["certify", "x", "--strict", "--range", "normal"])
    assert args.strict == "1" and args.range == "normal"


def _check(strict=False, kink=None, dtype="float64"):
    engine = SimpleNamespace(relu_kink=kink)
    return SimpleNamespace(engine=engine, config=SimpleNamespace(strict=strict, range="full"),
                           caps=SimpleNamespace(dtype=dtype, ops={"relu"}),
                           record=SimpleNamespace(notes={}), seed=0)


@pytest.mark.parametrize("c", [0.0, 0.25, 0.5, 1.0])
def test_a_relu_on_its_kink_is_judged_with_the_engines_own_convention(c):
    graph = trace(lambda x, y: (x * y).relu() * 3.0 + y, [0.0, 2.0])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    assert ex.kinks
    grads = [3.0 * 2.0 * c, 1.0]  # d/dx = 3 * relu'(0) * y; d/dy = 3 * relu'(0) * x + 1
    check = _check(kink=c)
    found, _, _ = conventions.judge(check, graph, 2.0, grads, ex, tol)
    assert found == []
    strict, _, _ = conventions.judge(_check(strict=True, kink=c), graph, 2.0, grads,
                                   ex, tol)
    assert bool(strict) == (c != 0.0)
    wrong, _, _ = conventions.judge(_check(kink=c), graph, 2.0, [6.0 * c + 0.5, 1.0], ex,
                                   tol)
    assert wrong  # the engine's convention, not any number


def test_a_subnormal_result_may_flush_unless_strict():
    graph = trace(lambda x: x.exp(), [-708.4])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    assert 0 < ex.value_f64 < 2.0**-1022
    check = _check()
    assert conventions.judge(check, graph, 0.0, [0.0], ex, tol)[0] == []
    assert check.record.notes["flushed"] == 2
    assert len(conventions.judge(_check(strict=True), graph, 0.0, [0.0], ex, tol)[0]) == 2
    normal = trace(lambda x: x.exp(), [-700.0])  # 9.9e-305: normal, so 0 is wrong
    exn = exact_graph(normal)
    assert conventions.judge(_check(), normal, 0.0, [0.0], exn, tolerance(normal, exn))[0]


def _run_script(tmp_path, body, c):
    """Run a reproducer body against the reference engine with relu'(0) = c."""
    prelude = (
        "import math\n"
        "from tests.planted.engines.base import Value as _V\n"
        f"C = {c!r}\n"
        "class Value(_V):\n"
        "    @staticmethod\n"
        "    def rule_relu(x):\n"
        "        return (x, 1.0) if x > 0.0 else (0.0, C if x == 0.0 else 0.0)\n"
        "def backward(out): out.backward()\n"
        "def value(v): return v.data\n"
        "def grad(v): return v.grad\n")
    from gradcert.properties.reproducer import _HELPERS

    path = tmp_path / f"repro_{c}.py"
    path.write_text(prelude + _HELPERS + body + "\nraise SystemExit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=ROOT, env=env).returncode


def test_a_reproducer_passes_a_correct_engine_with_another_kink_convention(tmp_path):
    graph = trace(lambda x, y: (x * y).relu() * 3.0 + y, [0.0, 2.0])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    alts = []
    for c in (0.5, 1.0):
        g = conventions.kink_graph(graph, ex.kinks, c)
        e = exact_graph(g)
        alts.append((c, e, tolerance(g, e)))
    body = oracle_body(graph, "Value", ex=ex, tol=tol, dtype="float64", alternatives=alts,
                       flush=True)
    assert [_run_script(tmp_path, body, c) for c in (0.0, 0.5, 1.0)] == [0, 0, 0]
    strict = oracle_body(graph, "Value", ex=ex, tol=tol, dtype="float64")
    assert [_run_script(tmp_path, strict, c) for c in (0.0, 1.0)] == [0, 1]
