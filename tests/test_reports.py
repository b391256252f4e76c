"""Reports: the Markdown golden file, what each report leads with, failures, HTML
structure, comparisons. Rendering in a browser is in test_reports_browser.py."""

from __future__ import annotations

import copy
import io
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_data import synthetic

from gradcert.reports import compare, render_verdict, to_html, to_markdown
from gradcert.reports.terminal import print_verdict
from gradcert.results import OUTCOMES, PropertyResult, Results

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def results():
    return Results.load(DATA / "results_sample.json")


# -- Markdown ----------------------------------------------------------------------


def test_markdown_matches_golden_file(results):
    # Regenerate after an intended change with: GRADCERT_REGOLD=1 pytest tests/test_reports.py
    md = to_markdown(results)
    golden = GOLDEN / "report.md"
    if os.environ.get("GRADCERT_REGOLD"):
        golden.write_text(md)
    assert md == golden.read_text()


def test_markdown_states_verdict_levels_and_failures(results):
    md = to_markdown(results)
    assert "**FAILED**" in md.splitlines()[0]
    assert "| robustness | ❌ failed |" in md
    assert "| ops | ✅ passed |" in md
    assert "| optimizer | · not run |" in md
    assert "robustness.chain_10k" in md and "repro_robustness.chain_10k.py" in md


def _row(md: str, first_cell: str) -> list[str]:
    line = next(ln for ln in md.splitlines() if ln.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_the_primary_figure_is_the_fraction_of_the_bound_and_a_pass_is_never_alarming():
    md = to_markdown(synthetic())
    head = _row(md, "property")
    row = dict(zip(head, _row(md, "`ops.gradients`"), strict=True))
    # tanh'(20): 4.36e18 ulps off an exact value of ~1.7e-17, well inside the bound
    assert row["error / bound"] == "0.0021" and row["ulps"] == "exact ≈ 0"
    assert "e+18" not in md and "inf" not in md.replace("info", "")
    failed = dict(zip(head, _row(md, "`ops.values`"), strict=True))
    assert failed["error / bound"] == "2.4e+05", "a finding shows its own size, not a 0"
    crashed = dict(zip(head, _row(md, "`robustness.chain_10k`"), strict=True))
    assert crashed["error / bound"] == "—" and crashed["note"] == "see Failures"


def test_per_op_rows_show_the_worst_sample_and_mark_failing_ops():
    md = to_markdown(synthetic())
    head = _row(md, "op")
    tanh = _row(md, "❌ **`tanh`**")
    assert head[4:7] == ["value: max error / bound", "median", "at the max"]
    assert tanh[4:7] == ["21", "0.4", "487 ulps, 8.9 bits at (0.00390625)"]
    assert tanh[1:4] == ["0.0021", "0.0021", "exact ≈ 0 at (20.0)"]
    assert _row(md, "`log`")[1:] == ["0.01", "0.01", "9 ulps, 3.3 bits at (0.5)", "—", "—", "—"]


def _block(md: str, pid: str) -> str:
    start = md.index(f"### `{pid}`")
    end = md.find("\n### ", start + 1)
    return md[start:end if end > 0 else None]


def test_failures_come_root_cause_first_with_severity_worst_example_and_no_repeats():
    md = to_markdown(synthetic())
    assert "## Root causes" in md
    order = [m.group(1) for m in re.finditer(r"^### `([a-z_.0-9]+)`", md, re.M)]
    assert order.index("ops.values") < order.index("semantics.fan_out")
    assert order[-1] == "semantics.fan_out", "a failure another explains comes last"
    fan = _block(md, "semantics.fan_out")
    assert "**Caused by `tanh`** (see `ops.values`)" in fan
    tanh = _block(md, "ops.values")
    assert "**Severity:** wrong value, 2.4e+05 × the bound" in tanh
    assert "tanh(1e-300) is 0.0; the oracle says 1e-300" in tanh  # the worst example
    assert "| value | 0.00390623013190634 | 0.003906230131906374 | 1.4e-17 |" in tanh
    assert "first wrong node: 1 = tanh(node 0 = 0.00390625)" in tanh
    lines = [ln for ln in tanh.splitlines() if ln.strip() and not ln.startswith(("```", "|"))]
    assert len(lines) == len(set(lines)), "no line of a failure block is said twice"
    assert tanh.count("x0.tanh()") == 1 and tanh.count("ops.values-tanh.py") == 1
    assert "target: t; profile" not in md, "the run's settings are in the header, once"


def test_every_outcome_renders_everywhere():
    r = synthetic()
    md, page, text = to_markdown(r), to_html(r), render_verdict(r)
    for outcome in OUTCOMES:
        assert outcome in md and outcome in page and outcome in text, outcome
    assert r.verdict == "failed" and r.levels()["optimizer"] == "not run"


# -- the terminal --------------------------------------------------------------------


def test_print_verdict_lists_root_causes_first_and_never_reparses_its_text():
    r = synthetic()
    out = io.StringIO()
    print_verdict(r, stream=out)
    text = out.getvalue()
    assert text.index("ops.values failed for tanh") < text.index("semantics.fan_out failed")
    assert "caused by tanh (see ops.values)" in text
    assert "severity: crash" in text and "verdict: FAILED" in text
    plain = render_verdict(r)
    assert "0.0021  exact ≈ 0" in plain and "2.4e+05" in plain


# -- HTML ----------------------------------------------------------------------------


class Tags(HTMLParser):
    """Tags, tables (rows per table class), highlighted rows and outside references."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.tables: dict[str, int] = {}
        self.bad_rows: dict[str, int] = {}
        self.external: list[str] = []
        self._table = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") or ""
            self.tables[self._table] = 0
            self.bad_rows[self._table] = 0
        if tag == "tr" and self.tables:
            self.tables[self._table] += 1
            self.bad_rows[self._table] += a.get("class") == "bad"
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("#", "data:")):
                self.external.append(a[key])


def test_html_has_tables_plots_and_no_external_resources(results):
    page = to_html(results)
    p = Tags()
    p.feed(page)
    assert {"levels", "properties", "accuracy"} <= set(p.tables)
    assert p.tables["properties"] == len(results.properties) + 1  # header + one per property
    assert p.tags.count("svg") >= 3, "error per op, against input, against graph size"
    assert p.external == [] and "<script" not in page and "http" not in page.split("</style>")[0]
    assert p.bad_rows["properties"] == 1  # chain_10k


def test_html_highlights_failing_ops_and_wraps_long_text():
    page = to_html(synthetic())
    p = Tags()
    p.feed(page)
    assert p.bad_rows["accuracy"] == 1 and p.tables["accuracy"] == 2 + 2, "two header rows, two ops"
    assert "white-space:pre-wrap" in page and "overflow-x" not in page
    assert 'href="#ops.values"' in page and 'id="ops.values"' in page


def test_html_without_samples_says_so(results):
    results.samples = []
    page = to_html(results)
    assert "No error samples" in page and "<svg" not in page


# -- comparison ----------------------------------------------------------------------


def _engines(results):
    other = copy.deepcopy(results)
    other.target = "torch"
    for p in other.properties:
        if p.bad:
            p.outcome, p.failure, p.reproducer = "passed", None, None
    return [results, other, synthetic()]


def test_compare_side_by_side(results):
    c = compare(_engines(results), links=["a/report.md", None, "c/report.md"])
    verdicts = c.sections()[0].rows[0]
    assert [x.text for x in verdicts] == ["verdict", "failed", "certified", "failed"]
    md = c.to_markdown()
    assert "## Gradient accuracy per op" in md and "| op | mypkg.engine:Value | torch |" in md
    assert "([report](a/report.md))" in md and "([report](c/report.md))" in md
    assert "caused by tanh: tanh's value is wrong" in md, "reasons per engine"
    page = c.to_html()
    p = Tags()
    p.feed(page)
    assert {"engines", "verdicts", "properties", "gradient", "value"} <= set(p.tables)
    assert p.external == ["a/report.md", "c/report.md"]
    assert 'class="badge failed"' in page and 'class="badge certified"' in page
    with pytest.raises(ValueError, match="at least one"):
        compare([])


@pytest.mark.parametrize("n", [1, 3, 5])
def test_the_terminal_comparison_fits_80_columns_without_cutting(results, n):
    from rich.console import Console

    engines = (_engines(results) * 2)[:n]
    out = io.StringIO()
    compare(engines).print(Console(file=out, width=80, color_system=None))
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert "…" not in out.getvalue()
    for r in engines:
        assert r.target in out.getvalue()


def test_a_finding_explained_by_another_names_its_cause_in_every_table_and_severity_once():
    caused = PropertyResult("models.mlp", "models", "the MLP's gradients", "failed", failure={
        "message": "models.mlp failed: the MLP's gradients\n  severity: wrong derivative\n"
                   "  d(node 9)/d(leaf 1) is 2.0; the oracle says 0.0",
        "severity": {"class": "wrong derivative", "ratio": 1e9},
        "root_cause": {"op": "mul", "property": "ops.gradients", "text": "mul' is off"}})
    root = PropertyResult("ops.gradients", "ops", "partials", "failed", failure={
        "message": "ops.gradients failed for mul", "severity": {"class": "wrong derivative",
                                                               "ratio": 1e9}})
    r = Results("eng", [root, caused])
    md, page, text = to_markdown(r), to_html(r), render_verdict(r)
    for doc in (md, page, text):
        assert "caused by mul (ops.gradients)" in doc
    out = io.StringIO()
    print_verdict(r, stream=out)
    assert out.getvalue().count("severity: wrong derivative") == 2  # once per finding
    block = md[md.index("### `models.mlp`"):]
    assert block.count("wrong derivative") == 1  # the **Severity:** line, not the message's
