"""optimizer.adam uses an engine's own Adam when its adapter has one, and judges it."""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.e2e

ADAPTER = '''
from gradcert.adapters.reference import ReferenceAdapter


class NoBiasCorrection(ReferenceAdapter):
    """gradcert's engine with an Adam that forgets to divide m by 1 - beta1^t."""

    def adam(self, leaves, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        b1, b2 = betas
        m, v, t = [0.0] * len(leaves), [0.0] * len(leaves), [0]

        def step():
            t[0] += 1
            for i, p in enumerate(leaves):
                m[i] = b1 * m[i] + (1 - b1) * p.grad
                v[i] = b2 * v[i] + (1 - b2) * p.grad * p.grad
                p.data -= lr * m[i] / ((v[i] / (1 - b2 ** t[0])) ** 0.5 + eps)
        return step


ADAPTER = NoBiasCorrection()
'''


def _run(tmp_path, target):
    """Certify ``target`` (None: gradcert) on optimizer.adam in a fresh process, from a
    directory holding the adapter module."""
    (tmp_path / "adammod.py").write_text(textwrap.dedent(ADAPTER))
    args = [sys.executable, "-m", "gradcert", "certify", *([target] if target else []),
            "-k", "adam", "--seed", "2", "-j", "1", "--out", "rep"]
    run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
    doc = json.loads((tmp_path / "rep" / "results.json").read_text())
    return next(p for p in doc["properties"] if p["id"] == "optimizer.adam")


def test_the_engines_own_adam_is_used_and_passes(tmp_path):
    p = _run(tmp_path, None)
    assert p["outcome"] == "passed" and p["notes"]["optimizer"] == "the engine's own Adam"


def test_an_own_adam_without_bias_correction_fails(tmp_path):
    p = _run(tmp_path, "adammod:ADAPTER")
    assert p["outcome"] == "failed", p.get("failure")
    assert p["notes"]["optimizer"] == "the engine's own Adam"
    assert "after Adam step 1" in p["failure"]["message"]
