"""Reports: Markdown golden file, HTML structure and rendering, compare, merge."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gradcert.reports import compare, summarize, to_html, to_markdown
from gradcert.reports.merge import MergeError, merge

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def doc():
    return json.loads((DATA / "results_sample.json").read_text())


def test_markdown_matches_golden_file(doc):
    # Regenerate after an intended change with: GRADCERT_REGOLD=1 pytest tests/test_reports.py
    md = to_markdown(doc)
    golden = GOLDEN / "report.md"
    if os.environ.get("GRADCERT_REGOLD"):
        golden.write_text(md)
    assert md == golden.read_text()


def test_markdown_states_verdict_levels_and_failures(doc):
    md = to_markdown(doc)
    assert "**FAILED**" in md.splitlines()[0]
    assert "| robustness | ❌ failed |" in md
    assert "| ops | ✅ passed |" in md
    assert "robustness.chain_10k" in md and "repro_robustness.chain_10k.py" in md


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.tables: dict[str, int] = {}
        self.cells: list[str] = []
        self._in_td = False
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "table":
            self.tables[a.get("class", "")] = 0
            self._table = a.get("class", "")
        if tag == "tr" and self.tables:
            self.tables[self._table] += 1
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("#", "data:")):
                self.external.append(a[key])
        self._in_td = tag == "td"

    def handle_data(self, data):
        if self._in_td:
            self.cells.append(data)


def test_html_has_tables_plots_and_no_external_resources(doc):
    page = to_html(doc)
    p = _Tags()
    p.feed(page)
    assert {"levels", "properties", "accuracy"} <= set(p.tables)
    assert p.tables["properties"] == len(doc["properties"]) + 1  # header row + one per property
    assert p.tags.count("svg") == 3, "two per-op plots and error against size"
    assert p.external == [] and "http" not in page.split("</style>")[0]
    assert "failed" in p.cells and "chain_10k" in page


def test_html_without_samples_says_so(doc):
    doc.pop("samples")
    page = to_html(doc)
    assert "No error samples" in page and "<svg" not in page


def test_summary_per_op_statistics(doc):
    s = summarize(doc)
    mul = next(a for a in s.accuracy if a.op == "mul" and a.kind == "grad")
    ulps = [x["ulps"] for x in doc["samples"] if x["op"] == "mul" and x["kind"] == "grad"]
    assert mul.count == len(ulps) and mul.max_ulps == max(ulps)
    assert s.levels["robustness"] == "failed" and s.levels["ops"] == "passed"
    assert s.graphs_checked == sum(p.get("graphs_checked", 0) for p in doc["properties"])


def test_compare_side_by_side(doc):
    other = copy.deepcopy(doc)
    other["target"] = "other"
    other["verdict"] = "certified"
    for p in other["properties"]:
        p["outcome"] = "passed"
    c = compare([doc, other])
    rows = c.overview_rows()
    assert [r[0] for r in rows] == [doc["target"], "other"]
    assert rows[1][1] == "certified"
    md = c.to_markdown()
    assert "## Gradient accuracy per op" in md and "other max ulps" in md
    assert "<table>" in c.to_html()
    with pytest.raises(ValueError, match="at least one"):
        compare([])


def test_merge_combines_shards(doc):
    a = copy.deepcopy(doc)
    b = copy.deepcopy(doc)
    b["seed"] = 99
    for p in a["properties"]:
        if p["outcome"] == "failed":
            p["outcome"] = "passed"
            p.pop("failure", None)
            p.pop("reproducer", None)
    m = merge([a, b])
    assert m["verdict"] == "failed" and m["seed"] == [a["seed"], 99]
    chain = next(p for p in m["properties"] if p["id"] == "robustness.chain_10k")
    assert chain["outcome"] == "failed" and "reproducer" in chain
    assert len(m["samples"]) == 2 * len(doc["samples"])
    a_only = merge([a])
    assert a_only["verdict"] == "certified"


def test_merge_refuses_different_targets(doc):
    b = dict(doc, target="else")
    with pytest.raises(MergeError, match="target"):
        merge([doc, b])
    with pytest.raises(MergeError, match="nothing"):
        merge([])


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")


def _render(html_path: Path, shot: Path) -> str:
    """Render a page in headless Chromium; return what it logged to its console."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--window-size=1200,2400", f"--screenshot={shot}", html_path.as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return "\n".join(line for line in proc.stderr.splitlines() if ":CONSOLE" in line)


def _ink(png: Path) -> float:
    """The fraction of the screenshot's pixels that are not white."""
    import matplotlib.image

    img = matplotlib.image.imread(str(png))
    rgb = img[..., :3]
    return float((rgb.min(axis=-1) < 0.95).mean())


def test_console_check_catches_a_broken_page(tmp_path):
    _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>undefined_fn()</script>")
    assert "undefined_fn" in _render(bad, tmp_path / "bad.png")


def test_html_renders_in_chromium_without_console_errors(doc, tmp_path):
    _chromium()
    page = tmp_path / "report.html"
    page.write_text(to_html(doc))
    shot = tmp_path / "report.png"
    console = _render(page, shot)
    assert console == ""
    assert shot.exists() and _ink(shot) > 0.02, "the page rendered (nearly) blank"
