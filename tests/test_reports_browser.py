"""The HTML report and comparison opened in headless Chromium: each page renders its
tables and plots, nothing is cut or scrolls sideways, the console stays silent, and a
screenshot is written (to $GRADCERT_SCREENSHOTS when set, to look at; else a temporary
directory). Skipped without Chromium (.ci/run installs Debian's chromium) or
matplotlib."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from report_data import synthetic

from gradcert.reports import compare, to_html
from gradcert.results import Results

pytestmark = pytest.mark.e2e  # headless Chromium

DATA = Path(__file__).parent / "data"
WIDTH = 1280

# Measures the page as laid out and logs it to the console, where the test reads it.
_PROBE = """<script>
(function () {
  const big = (e) => {
    const b = e.getBoundingClientRect();
    return b.width > 200 && b.height > 100;
  };
  const r = {
    tables: Array.from(document.querySelectorAll("table")).map((t) => t.className),
    plots: Array.from(document.querySelectorAll("figure svg")).filter(big).length,
    width: document.documentElement.scrollWidth, window: window.innerWidth,
    height: document.documentElement.scrollHeight,
    cut: Array.from(document.querySelectorAll("pre, td, th, p, li, h1, h2, h3"))
      .filter((e) => e.scrollWidth > e.clientWidth + 1)
      .map((e) => e.tagName + ": " + e.textContent.slice(0, 60)),
  };
  console.log("GRADCERT-CHECK " + JSON.stringify(r));
})();
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")


def _run(page: Path, height: int, shot: Path | None = None) -> list[str]:
    """Open ``page`` in headless Chromium; the lines it logged to its console."""
    with tempfile.TemporaryDirectory() as profile:
        args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                f"--window-size={WIDTH},{height}"]
        # headless Chromium exits after one action: a screenshot, or printing the DOM
        args.append(f"--screenshot={shot}" if shot is not None else "--dump-dom")
        proc = subprocess.run([*args, page.as_uri()], capture_output=True, text=True,
                              timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def render(html: str, name: str, tmp_path: Path) -> dict:
    """Lay ``html`` out in Chromium, check the console, write its full-page screenshot;
    the layout figures the probe measured."""
    page = tmp_path / f"{name}.html"
    page.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    console = _run(page, 1000)
    probes = [ln for ln in console if "GRADCERT-CHECK" in ln]
    others = [ln for ln in console if "GRADCERT-CHECK" not in ln]
    assert others == [], f"{name}: the page logged to the console: {others}"
    assert len(probes) == 1, console
    found = json.loads(re.search(r"GRADCERT-CHECK (\{.*\})", probes[0]).group(1)
                       .replace('\\"', '"'))
    shots = Path(os.environ.get("GRADCERT_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"{name}.png"
    _run(page, min(found["height"] + 40, 16000), shot)
    assert shot.is_file() and _ink(shot) > 0.02, f"{name}: the page rendered (nearly) blank"
    return found


def _ink(png: Path) -> float:
    """The fraction of the screenshot's pixels that are not white."""
    import matplotlib.image

    rgb = matplotlib.image.imread(str(png))[..., :3]
    return float((rgb.min(axis=-1) < 0.95).mean())


@pytest.fixture
def browser():
    _chromium()


def _laid_out(found: dict, name: str) -> None:
    assert found["width"] <= found["window"], f"{name} scrolls sideways"
    assert found["cut"] == [], f"{name}: text cut or scrolling inside its box: {found['cut']}"


def test_the_console_check_catches_a_broken_page(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>undefined_fn()</script>")
    assert any("undefined_fn" in line for line in _run(bad, 400))


def test_a_report_renders_its_tables_and_plots(browser, tmp_path):
    found = render(to_html(Results.load(DATA / "results_sample.json")), "report", tmp_path)
    assert {"levels", "properties", "accuracy"} <= set(found["tables"])
    assert found["plots"] == 3, "error per op, against input, against graph size"
    _laid_out(found, "report")


def test_a_report_with_every_kind_of_failure_renders_whole(browser, tmp_path):
    found = render(to_html(synthetic()), "report-failures", tmp_path)
    assert {"levels", "properties", "accuracy", "evidence"} <= set(found["tables"])
    assert found["plots"] == 3
    _laid_out(found, "report-failures")


def test_a_comparison_of_three_engines_renders_side_by_side(browser, tmp_path):
    sample = Results.load(DATA / "results_sample.json")
    fixed = copy.deepcopy(sample)
    fixed.target = "torch"
    for p in fixed.properties:
        if p.bad:
            p.outcome, p.failure, p.reproducer = "passed", None, None
    c = compare([sample, fixed, synthetic()], links=["a/report.html", "b/report.html", None])
    found = render(c.to_html(), "comparison", tmp_path)
    assert {"engines", "verdicts", "properties", "gradient", "value"} <= set(found["tables"])
    assert found["plots"] == 3
    _laid_out(found, "comparison")
