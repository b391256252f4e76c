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
    "properties": {"graph", "ops", "oracle", "adapters"},
    "reports": {"results"},
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
