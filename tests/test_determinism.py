"""A derandomized property draws the same examples whatever the process imported."""

import importlib
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcert.properties.determinism import source_constants_off


def _draws():
    out = []

    @settings(derandomize=True, max_examples=300, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.floats(allow_nan=False), st.integers())
    def collect(x, n):
        out.append((x, n))

    with source_constants_off():
        collect()
    return out


def test_draws_do_not_depend_on_literals_in_modules_imported_since(tmp_path, monkeypatch):
    before = _draws()
    (tmp_path / "odd_literals.py").write_text(
        "A = 987654.321\nB = -31337\nC = 2.5e-300\nD = 'gradcert'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("odd_literals")
    try:
        after = _draws()
    finally:
        sys.modules.pop("odd_literals", None)
    assert after == before
    assert all(x != 987654.321 and n != -31337 for x, n in after)
