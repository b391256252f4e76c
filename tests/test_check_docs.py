"""docs/check_grads.md and the README's section on check_grads run as written: every python
block, the PyTorch ones when torch is installed and the JAX ones when jax is; the pytest
examples are called with the fixture. (The README's >>> examples run in test_readme.)"""

import re
from pathlib import Path

import pytest

from gradcert.check.fixture import grads_for

DOC = Path(__file__).parents[1] / "docs" / "check_grads.md"
README = Path(__file__).parents[1] / "README.md"
_SECTION = README.read_text().split("## Checking your own functions")[1].split("\n## ")[0]
BLOCKS = [b for text in (DOC.read_text(), _SECTION)
          for b in re.findall(r"```python\n(.*?)```", text, re.S) if ">>>" not in b]


def test_the_page_has_its_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_example_runs(code, tmp_path, monkeypatch):
    for framework in ("torch", "jax", "hypothesis"):
        if re.search(rf"^(import|from) {framework}\b", code, re.M):
            pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)  # a failing example's reproducer lands here
    namespace: dict = {"__name__": "check_grads_docs"}
    exec(compile(code, str(DOC), "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    for test in tests:
        test(gradcert_grads=grads_for(tmp_path, None))
