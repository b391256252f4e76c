"""certify's progress display: a header line, then a bar over the suite's tests."""

import io
import re

import pytest

from gradcert.certify import certify

pytestmark = pytest.mark.e2e


def test_progress_bar_counts_the_suite_and_replaces_pytest_output(tmp_path):
    stream = io.StringIO()
    results = certify(None, seed=1, out=tmp_path / "rep", jobs=1, select="kinks or dtype",
                      stream=stream)
    text = stream.getvalue()
    assert text.startswith("gradcert certify gradcert: profile quick, seed 1, 1 worker(s)")
    done = re.findall(r"(\d+)/(\d+)", text)
    assert done and done[-1][0] == done[-1][1] == "2", text  # both selected tests finished
    assert "test session starts" not in text  # pytest's own reporter stayed out
    assert {p.id for p in results.properties} == {"ops.kinks", "robustness.dtype"}


def test_quiet_and_in_process_runs_show_no_bar(tmp_path):
    stream = io.StringIO()
    certify(None, seed=1, out=tmp_path / "rep", jobs=0, select="kinks", stream=stream)
    assert "worker(s)" not in stream.getvalue()
