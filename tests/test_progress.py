"""certify's progress display: a header line, then a bar over the suite's tests on a
terminal, or a line per finished property in a log."""

import io
import re

import pytest

from gradcert.certify import certify
from tests.planted import catalogue


class Terminal(io.StringIO):
    def isatty(self):
        return True

pytestmark = pytest.mark.e2e


def test_progress_bar_counts_the_suite_and_replaces_pytest_output(tmp_path):
    stream = Terminal()
    results = certify(None, seed=1, out=tmp_path / "rep", jobs=1, select="kinks or dtype",
                      stream=stream)
    text = stream.getvalue()
    assert text.startswith("gradcert certify gradcert: profile quick, seed 1, 1 worker(s)")
    done = re.findall(r"(\d+)/(\d+)", text)
    assert done and done[-1][0] == done[-1][1] == "2", text  # both selected tests finished
    assert "test session starts" not in text  # pytest's own reporter stayed out
    assert {p.id for p in results.properties} == {"ops.kinks", "robustness.dtype"}


def test_without_a_tty_each_finished_property_gets_a_line_with_its_outcome(tmp_path):
    stream = io.StringIO()  # a CI log: no TTY, so no live bar
    target = catalogue.get("base").target  # no zero_grad: one property is unsupported
    results = certify(target, seed=1, out=tmp_path / "rep", jobs=2,
                      select="kinks or zero_grad or (values and (log or exp))", stream=stream)
    line = r"^\[(\d+)/(\d+)\] ([a-z_.0-9]+): (\w+) \(\d+ s elapsed\)$"
    lines = re.findall(line, stream.getvalue(), re.M)
    assert [int(n) for n, _, _, _ in lines] == [1, 2, 3], stream.getvalue()
    assert {total for _, total, _, _ in lines} == {"3"}
    assert {(pid, outcome) for _, _, pid, outcome in lines} == {
        (p.id, p.outcome) for p in results.properties}, "one line per property, once it ends"
    assert results.property("semantics.zero_grad").outcome == "unsupported"
    assert "━" not in stream.getvalue()


def test_quiet_and_in_process_runs_show_no_bar(tmp_path):
    stream = io.StringIO()
    certify(None, seed=1, out=tmp_path / "rep", jobs=0, select="kinks", stream=stream)
    assert "worker(s)" not in stream.getvalue()
