"""The suite finds every planted defect, shrinks it, and leaves a red reproducer; it
certifies every correct engine. (The planted engines are in tests/planted.)

The catalogue is certified in ``PARTS`` subprocesses (so pytest-xdist spreads
them over the cores; each has one correct engine), in-process there (``jobs=0``),
so an interpreter starts once per part: a defective engine runs only the
properties its entry expects to fail (ops properties only on the ops its defect
touches); a correct engine runs the whole quick profile.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261124
MAX_SHRUNK_NODES = 12

RUNNER = """
import io, json, sys
from tests.planted.catalogue import CATALOGUE
from gradcert.certify import certify

out, selections = sys.argv[1], json.loads(sys.argv[2])
for e in CATALOGUE:
    if e.name not in selections:
        continue
    r = certify(e.target, profile="quick", seed=int(sys.argv[3]), out=f"{out}/{e.name}",
                jobs=0, select=selections[e.name], quiet=True, stream=io.StringIO())
    props = {p.id: {"outcome": p.outcome, "reproducer": p.reproducer,
                    "nodes": len(((p.failure or {}).get("graph") or {}).get("nodes") or []),
                    "message": (p.failure or {}).get("message", "")} for p in r.properties}
    print(json.dumps({"name": e.name, "verdict": r.verdict, "seconds": r.duration_s,
                      "props": props}), flush=True)
"""


def selection(entry):
    """The pytest -k expression that runs just the properties ``entry`` expects to fail."""
    if entry.correct:
        return None
    parts = []
    for pid in sorted(entry.expect):
        level, name = pid.split(".")
        expr = f"{level} and test_{name}"
        if level == "ops" and entry.touches:
            expr += " and (" + " or ".join(sorted(entry.touches)) + ")"
        parts.append(f"({expr})")
    return " or ".join(parts)


@pytest.fixture(scope="module")
def catalogue():
    return pytest.importorskip("tests.planted.catalogue")


PARTS = 4


def part(catalogue, k):
    """The ``k``-th of ``PARTS`` shares of the catalogue: every ``PARTS``-th engine of the
    correct ones and of the defective ones, so each share costs about the same."""
    correct = [e for e in catalogue.CATALOGUE if e.correct]
    defective = [e for e in catalogue.CATALOGUE if not e.correct]
    return correct[k::PARTS] + defective[k::PARTS]


@pytest.mark.catalogue
@pytest.mark.parametrize("k", range(PARTS))
def test_every_planted_defect_is_found_and_every_correct_engine_certified(catalogue, tmp_path,
                                                                          k):
    engines = part(catalogue, k)
    selections = {e.name: selection(e) for e in engines}
    run = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path), json.dumps(selections),
                          str(SEED)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    found = {d["name"]: d for d in map(json.loads, run.stdout.splitlines())}
    assert set(found) == {e.name for e in engines}
    problems = []
    for e in engines:
        d = found[e.name]
        if e.correct:
            if d["verdict"] != "certified":
                bad = {k: v["message"][:300] for k, v in d["props"].items()
                       if v["outcome"] != "passed" and v["outcome"] != "unsupported"}
                problems.append(f"{e.name} (correct) was not certified: {bad}")
            continue
        flagged = [pid for pid in sorted(e.expect)
                   if d["props"].get(pid, {}).get("outcome") in ("failed", "error")]
        if not flagged:
            problems.append(f"{e.name}: none of {sorted(e.expect)} failed: "
                            f"{ {k: v['outcome'] for k, v in d['props'].items()} }")
            continue
        p = d["props"][flagged[0]]
        if p["nodes"] > MAX_SHRUNK_NODES:
            problems.append(f"{e.name}: {flagged[0]} shrank only to {p['nodes']} nodes")
        if p["outcome"] == "failed" and p["reproducer"]:
            rep = subprocess.run([sys.executable, p["reproducer"]], cwd=ROOT,
                                 capture_output=True, text=True, timeout=300)
            if rep.returncode != 1:
                problems.append(f"{e.name}: the reproducer {p['reproducer']} exits "
                                f"{rep.returncode}, not 1: {rep.stdout[-500:]}{rep.stderr[-500:]}")
    assert not problems, "\n".join(problems)


def test_the_parts_cover_the_catalogue_once_each_with_a_correct_engine(catalogue):
    parts = [part(catalogue, k) for k in range(PARTS)]
    names = [e.name for p in parts for e in p]
    assert sorted(names) == sorted(e.name for e in catalogue.CATALOGUE)
    assert all(any(e.correct for e in p) for p in parts)


def test_selection_names_the_expected_properties_and_touched_ops(catalogue):
    e = catalogue.get("pow_forgot_minus_one")
    assert selection(e) == "(ops and test_gradients and (powc))"
    assert selection(catalogue.get("base")) is None
