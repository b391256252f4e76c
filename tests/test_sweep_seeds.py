"""Edge bugs are found on every seed, and an op's defect is named as the root cause.

Each planted edge bug (0.0 ** 0 raising in backward, d(x/y)/dy underflowing at
1e-300 / 1e-200, sigmoid(-745) and tanh(400) overflowing) was found by random
draws on some seeds only. The sweep runs every edge before any random example:
the same finding, with the same severity, on seeds 1 to 5. A wrong tanh fails
the ops level and is not blamed on fan-out, the MLP or anything else.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import io, json, sys
from gradcert.certify import certify

out, target, select = sys.argv[1], sys.argv[2], sys.argv[3]
for seed in json.loads(sys.argv[4]):
    r = certify(target, profile="quick", seed=seed, out=f"{out}/{seed}", jobs=0,
                select=select or None, quiet=True, stream=io.StringIO())
    print(json.dumps({"seed": seed, "props": {p.id: {"outcome": p.outcome,
                      "failure": p.failure} for p in r.properties}}), flush=True)
"""


def _certify(tmp_path, target, select, seeds):
    run = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path), target, select,
                          json.dumps(seeds)], cwd=ROOT, capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines()]


EDGE_BUGS = [  # engine, property, op, severity class, what the finding says
    ("pow_zero_base_grad", "ops.gradients", "powc", "crash", "ZeroDivisionError"),
    ("div_grad_y_squared", "ops.gradients", "div", "range", "ZeroDivisionError"),
    ("sigmoid_exp_overflow", "ops.values", "sigmoid", "range", "OverflowError"),
    ("tanh_exp_formula", "ops.values", "tanh", "crash", "OverflowError"),
]


@pytest.mark.catalogue
@pytest.mark.parametrize("name,pid,op,klass,said", EDGE_BUGS, ids=[e[0] for e in EDGE_BUGS])
def test_an_edge_bug_is_found_on_every_seed(tmp_path, name, pid, op, klass, said):
    level, prop = pid.split(".")
    rows = _certify(tmp_path, f"tests.planted.engines.{name}:Value",
                    f"{level} and test_{prop} and {op}", [1, 2, 3, 4, 5])
    assert [r["seed"] for r in rows] == [1, 2, 3, 4, 5]
    summaries = set()
    for r in rows:
        p = r["props"][pid]
        assert p["outcome"] in ("failed", "error"), (r["seed"], p)
        assert said in p["failure"]["summary"], p["failure"]["summary"]
        assert p["failure"]["severity"]["class"] == klass
        assert p["failure"]["worst"]["summary"]
        summaries.add(p["failure"]["summary"])
    assert len(summaries) == 1, summaries  # the same finding on every seed


@pytest.mark.catalogue
def test_a_wrong_op_fails_the_ops_level_only_or_is_named_as_the_root_cause(tmp_path):
    """tanh_exp_formula: ops.values fails; every other property passes, or names tanh as
    its root cause (models.mlp uses relu, since tanh is wrong); the verdict's failures
    list the root causes first."""
    (row,) = _certify(tmp_path, "tests.planted.engines.tanh_exp_formula:Value",
                      "not robustness", [1])
    props = row["props"]
    assert props["ops.values"]["outcome"] in ("failed", "error")
    for pid, p in props.items():
        if pid.startswith("ops.") or p["outcome"] in ("passed", "unsupported"):
            continue
        cause = p["failure"].get("root_cause")
        assert cause and cause["op"] == "tanh", (pid, p["failure"]["message"][:500])


@pytest.mark.catalogue
def test_an_op_a_property_needs_is_named_as_the_root_cause(tmp_path):
    """mul_grad_own_operand: the models need mul, so they run with it and fail; each
    failure names an op of the mul family as its cause, and the results list those
    failures after the ops level's own."""
    from gradcert.results import Results

    (row,) = _certify(tmp_path, "tests.planted.engines.mul_grad_own_operand:Value",
                      "models or (ops and test_gradients and mul)", [1])
    props = row["props"]
    assert props["ops.gradients"]["outcome"] == "failed"
    for pid in ("models.mlp", "models.attention"):
        assert props[pid]["outcome"] == "failed"
        cause = props[pid]["failure"]["root_cause"]
        assert cause["op"] in ("mul", "mulc", "rmulc", "neg"), cause
        assert cause["property"] == "ops.gradients"
    r = Results.load(tmp_path / "1" / "results.json")
    order = [p.id for p in r.failures()]
    assert order[0] == "ops.gradients" and set(order[1:]) == {"models.mlp", "models.attention"}
