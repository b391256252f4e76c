"""Killed at any point, certification never claims more than it checked: every property
has an outcome in every output it writes (results.json, junit.xml, the terminal table,
report.md), exit 0 only with a complete certified verdict, and no host is left behind.

A seeded list of kill points: after k tests have finished, SIGKILL one process of the
run (the controller, an xdist worker, or an engine host).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradcert.properties.registry import PROPERTIES
from gradcert.results import OUTCOMES

PLANS = [(kind, random.Random(f"{kind}-{i}").randrange(0, 50))
         for i, kind in enumerate(["host", "worker", "controller", "host", "worker", "host"])]


def _processes(marker):
    """pid -> (ppid, cmdline) of the processes whose environment holds ``marker``."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if marker.encode() not in (d / "environ").read_bytes():
                continue
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if " Z " in stat[stat.rindex(")"):][:4]:
            continue  # a zombie: dead already
        found[int(d.name)] = (int(stat[stat.rindex(")") + 2:].split()[1]), cmd)
    return found


def _victim(kind, controller, procs, rng):
    if kind == "controller":
        return controller
    if kind == "host":
        pids = [p for p, (_, cmd) in procs.items() if "gradcert.adapters.host" in cmd]
    else:
        pids = [p for p, (pp, cmd) in procs.items()
                if pp == controller and "gradcert.adapters.host" not in cmd]
    return rng.choice(sorted(pids)) if pids else None


def _finished(out):
    return sum(len(p.read_text().splitlines()) for p in (out / "records").glob("*.jsonl")) \
        if (out / "records").is_dir() else 0


@pytest.mark.slow
@pytest.mark.parametrize("kind, after", PLANS)
def test_killed_anywhere_every_output_is_complete_and_honest(tmp_path, kind, after):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc")
    marker = f"GRADCERT_KILL_TEST={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    env["GRADCERT_KILL_TEST"] = marker.split("=", 1)[1]
    out = tmp_path / "rep"
    proc = subprocess.Popen([sys.executable, "-m", "gradcert", "certify", "--seed", "1",
                             "-j", "2", "--out", str(out)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    rng = random.Random(after)
    killed = None
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and killed is None and time.monotonic() < deadline:
            if _finished(out) >= after:
                killed = _victim(kind, proc.pid, _processes(marker), rng)
                if killed is not None:
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=900)
        # nothing of the run outlives it: no worker, no engine host
        for _ in range(100):
            if not _processes(marker):
                break
            time.sleep(0.1)
        assert not _processes(marker), _processes(marker)
    finally:
        for pid in _processes(marker):
            os.kill(pid, signal.SIGKILL)

    code, doc_path = proc.returncode, out / "results.json"
    if killed == proc.pid:
        assert code != 0 and not doc_path.exists()
        return
    assert doc_path.exists(), stdout[-2000:] + stderr[-2000:]
    doc = json.loads(doc_path.read_text())
    props = {p["id"]: p for p in doc["properties"]}
    assert set(props) == set(PROPERTIES)
    assert all(p["outcome"] in OUTCOMES for p in props.values())
    assert (code == 0) == (doc["verdict"] == "certified"), (code, doc["verdict"])
    if code == 0:
        assert {p["outcome"] for p in props.values()} == {"passed"}
    else:
        assert code == 1 and killed is not None
    # every output names every property
    report = (out / "report.md").read_text()
    for pid in PROPERTIES:
        assert pid in stdout, pid
        assert pid in report, pid
    cases = ET.parse(out / "junit.xml").getroot().iter("testcase")
    levels = {f"{c.get('classname').split('.')[-1]}.{c.get('name').split('[')[0][5:]}"
              for c in cases}
    assert levels == set(PROPERTIES)
