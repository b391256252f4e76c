"""The hostile catalogue end to end: each engine in tests/hostile gets the verdict and
outcomes its entry names, with the engine's own message, and certification goes on.

All entries are certified in one subprocess, one after another (``jobs=0``: the judge
in that process, the engines in their hosts), as tests/test_catalogue.py does; the
load errors are also run through the command line, whose exit code must be 2.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradcert.results import OUTCOMES

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261201

RUNNER = """
import io, json, os, sys
from tests.hostile.catalogue import CATALOGUE
from gradcert.certify import CertifyError, certify
from gradcert.settings import resolve

out = sys.argv[1]
for e in CATALOGUE:
    saved = dict(os.environ)
    os.environ.update(e.env)
    try:
        v = resolve({}, environ=e.env)  # the entry's limits, as certify's arguments
        r = certify(e.target, profile="quick", seed=int(sys.argv[2]), out=f"{out}/{e.name}",
                    jobs=0, select=e.select, quiet=True, stream=io.StringIO(),
                    example_timeout=v["example_timeout"], load_timeout=v["load_timeout"])
    except CertifyError as err:
        print(json.dumps({"name": e.name, "verdict": "load error", "message": str(err)}),
              flush=True)
        continue
    except Exception as err:  # a bug of gradcert's: say so, and go on with the others
        print(json.dumps({"name": e.name, "verdict": "gradcert raised",
                          "message": f"{type(err).__name__}: {err}"}), flush=True)
        continue
    finally:
        os.environ.clear()
        os.environ.update(saved)
    props = {p.id: {"outcome": p.outcome, "message": (p.failure or {}).get("message", ""),
                    "note": (p.notes or {}).get("unsupported", "")} for p in r.properties}
    print(json.dumps({"name": e.name, "verdict": r.verdict, "props": props}), flush=True)
"""


@pytest.fixture(scope="module")
def catalogue():
    return pytest.importorskip("tests.hostile.catalogue")


@pytest.mark.slow
def test_every_hostile_engine_gets_its_verdict_and_outcomes(catalogue, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    run = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path), str(SEED)], cwd=ROOT,
                         capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    found = {d["name"]: d for d in map(json.loads, run.stdout.splitlines())}
    assert set(found) == {e.name for e in catalogue.CATALOGUE}
    problems = []
    for e in catalogue.CATALOGUE:
        d = found[e.name]
        if d["verdict"] != e.verdict:
            problems.append(f"{e.name}: {d['verdict']}, not {e.verdict}: "
                            f"{d.get('message') or _outcomes(d)}")
            continue
        if e.verdict == "load error":
            if e.says not in d["message"]:
                problems.append(f"{e.name}: the load error does not say {e.says!r}: "
                                f"{d['message'][:500]}")
            continue
        props = d["props"]
        for pid, p in props.items():
            want = e.expect.get(pid, "passed")
            if p["outcome"] not in OUTCOMES or p["outcome"] != want:
                problems.append(f"{e.name}: {pid} is {p['outcome']}, not {want}: "
                                f"{(p['message'] or p['note'])[:600]}")
        missing = set(e.expect) - set(props)
        if missing:
            problems.append(f"{e.name}: no outcome for {sorted(missing)}")
        if e.expect:
            first = props.get(next(iter(e.expect)), {})
            if e.says not in first.get("message", ""):
                problems.append(f"{e.name}: the failure does not say {e.says!r}: "
                                f"{first.get('message', '')[:600]}")
    assert not problems, "\n".join(problems)


def _outcomes(d):
    return {k: v["outcome"] for k, v in d.get("props", {}).items()}


@pytest.mark.parametrize("name", ["exits_at_import", "sys_exit_at_import"])
def test_an_engine_that_exits_while_loading_never_exits_0(catalogue, tmp_path, name):
    e = catalogue.get(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-m", "gradcert", "certify", e.target, "--out",
                          str(tmp_path / "rep")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert e.says in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "rep" / "results.json").exists()
