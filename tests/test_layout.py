"""The import directions of DESIGN.md, checked on the source with ast."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gradcert"

# package -> the gradcert packages it may import (besides itself)
ALLOWED = {
    "ops": set(),
    "graph": {"ops"},
    "engine": set(),
    "oracle": {"graph", "ops"},
    "adapters": {"graph", "ops"},
    "properties": {"graph", "ops", "oracle", "adapters", "results"},
    "check": {"graph", "ops", "oracle", "engine"},  # engine: the Value class for plain floats
    "torch": {"check"},
    "jax": {"check"},
    "results": set(),
    "reports": {"results"},
    "settings": set(),
}


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "gradcert" and len(parts) > 1:
                found.add(parts[1])
    return found


SOURCES = sorted(p for p in ROOT.rglob("*.py") if _package(p) in ALLOWED)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_design(path):
    pkg = _package(path)
    bad = _imports(path) - ALLOWED[pkg] - {pkg}
    assert not bad, f"{path.relative_to(ROOT)} ({pkg}) imports gradcert.{sorted(bad)}"


def test_checker_sees_a_violation(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from gradcert.engine import Value\nimport gradcert.oracle.exact\n")
    assert _imports(f) == {"engine", "oracle"}


# -- the judge never runs engine code ---------------------------------------------------

# What of gradcert.adapters the judge (properties/, certify, the plugin) may import: the
# host client and the protocol. Loading a target (registry), an adapter or the host would
# put engine code in the judge's process.
JUDGE_ADAPTERS = {"gradcert.adapters.client", "gradcert.adapters.protocol"}
JUDGE = sorted([p for p in ROOT.rglob("*.py") if _package(p) == "properties"]
               + [ROOT / "certify.py", ROOT / "pytest_plugin.py"])


def _adapter_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "gradcert.adapters":
                names = [f"gradcert.adapters.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n == "gradcert.adapters" or
                  n.startswith("gradcert.adapters.")}
    return found


@pytest.mark.parametrize("path", JUDGE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_judge_imports_only_the_host_client_of_adapters(path):
    bad = _adapter_imports(path) - JUDGE_ADAPTERS
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: engine code in the judge"


def test_the_adapter_checker_sees_a_loader(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from gradcert.adapters import load_target\n"
                 "from gradcert.adapters.client import HostClient\n")
    assert _adapter_imports(f) == {"gradcert.adapters.load_target", "gradcert.adapters.client"}


RECORDS_PID = """
import json, os, sys
from gradcert.engine import Value

with open(os.environ["PIDS_FILE"], "a") as f:
    main = sys.modules["__main__"]
    f.write(json.dumps({"pid": os.getpid(), "main": getattr(main.__spec__, "name", None)})
            + "\\n")
"""


@pytest.mark.e2e
@pytest.mark.parametrize("jobs", ["0", "2"])
def test_certify_never_imports_the_target_in_the_judge(tmp_path, jobs):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "pid_engine.py").write_text(RECORDS_PID)
    pids = tmp_path / "pids.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    env["PIDS_FILE"] = str(pids)
    proc = subprocess.Popen([sys.executable, "-m", "gradcert", "certify", "pid_engine:Value",
                             "-k", "kinks or dtype", "-j", jobs, "--seed", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    seen = [json.loads(line) for line in pids.read_text().splitlines()]
    assert len(seen) >= 2  # the controller's host, and a worker's (or the session's)
    assert all(s["main"] == "gradcert.adapters.host" for s in seen), seen
    assert proc.pid not in {s["pid"] for s in seen}


SUITE = sorted((ROOT / "properties" / "suite").glob("*.py"))


@pytest.mark.parametrize("path", SUITE, ids=lambda p: p.name)
def test_suite_modules_import_helpers_never_each_other(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    assert not {m for m in found if m.startswith("gradcert.properties.suite")}, path.name
