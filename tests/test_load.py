"""A verdict does not depend on how loaded the machine is: limits are the engine host's CPU
time, so certifying with busy loops competing for every core gives the same verdict,
outcomes and shrunk graphs as certifying on a quiet machine."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLANTED = Path(__file__).resolve().parent / "planted" / "engines"

SLOW_EXP = """
import time

from .base import Value as Base


class Value(Base):
    def exp(self):
        t = time.process_time() + 0.15  # 0.15 s of CPU on every exp
        while time.process_time() < t:
            pass
        return super().exp()
"""


@contextlib.contextmanager
def busy_loops(n):
    """``n`` processes spinning in Python, competing with certification for the cores."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in loops:
            p.kill()
            p.wait()


def certify(cwd, *args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    e.update(env)
    run = subprocess.run([sys.executable, "-m", "gradcert", "certify", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=1800, env=e)
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads((Path(cwd) / args[args.index("--out") + 1] / "results.json").read_text())


def engine(tmp_path, name, source=None):
    pkg = tmp_path / "eng"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text((PLANTED / "base.py").read_text())
    (pkg / f"{name}.py").write_text(source or (PLANTED / f"{name}.py").read_text())
    return f"eng.{name}:Value"


def _differences(a, b):
    pa, pb = ({p["id"]: p for p in d["properties"]} for d in (a, b))
    return {k: (pa[k]["outcome"], pb[k]["outcome"], (pb[k].get("failure") or {})
                .get("message", "")[:800]) for k in pa if verdict(a)[1][k] != verdict(b)[1][k]}


def verdict(doc):
    return doc["verdict"], {p["id"]: (p["outcome"], (p.get("failure") or {}).get("graph"))
                            for p in doc["properties"]}


@pytest.mark.slow
def test_the_quick_profile_gives_the_same_verdict_and_graphs_under_load(tmp_path):
    target = engine(tmp_path, "sub_grad_sign")
    args = [target, "--seed", "3", "-j", "2"]
    quiet = certify(tmp_path, *args, "--out", "quiet")
    with busy_loops(os.cpu_count() or 1):
        loaded = certify(tmp_path, *args, "--out", "loaded")
    assert quiet["verdict"] == "failed"
    assert verdict(quiet)[1]["ops.gradients"][1]  # a shrunk graph to compare
    assert verdict(loaded) == verdict(quiet), _differences(quiet, loaded)


@pytest.mark.slow
def test_an_engine_near_its_cpu_limit_passes_under_load_too(tmp_path):
    # 0.15 s of CPU per exp, 0.3 s allowed: under load each exp takes longer than 0.3 s of
    # wall time (a wall-clock limit would call it a timeout), never more CPU
    target = engine(tmp_path, "slow_exp", SLOW_EXP)
    args = [target, "-k", "values and exp", "--seed", "5", "-j", "1"]
    quiet = certify(tmp_path, *args, "--out", "quiet", GRADCERT_EXAMPLE_TIMEOUT="0.3")
    with busy_loops(2 * (os.cpu_count() or 1)):
        loaded = certify(tmp_path, *args, "--out", "loaded", GRADCERT_EXAMPLE_TIMEOUT="0.3")
    assert verdict(quiet) == verdict(loaded)
    assert quiet["verdict"] == "certified", quiet["properties"]
