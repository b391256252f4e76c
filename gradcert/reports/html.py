"""The self-contained HTML report: inline CSS, inline SVG, no network."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from gradcert.reports import plots
from gradcert.reports.markdown import (
    ACCURACY_HEAD,
    accuracy_rows,
    header_line,
    properties_rows,
)
from gradcert.reports.summary import summarize

__all__ = ["to_html"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:68em;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.passed,.certified{color:#17692a}.failed,.error,.timeout{color:#b00020}.unsupported{color:#777}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto}figure{margin:1em 0}
.verdict{font-weight:bold;text-transform:uppercase}
"""


def _md_code(text: str) -> str:
    """Markdown inline code (`x`) and emphasis markers to HTML-safe text."""
    return escape(text.replace("`", ""))


def _table(head: list[str], rows: list[list[Any]], cls: str) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for r in rows:
        cells = []
        for c in r:
            text = _md_code(str(c))
            outcome = next((o for o in ("passed", "failed", "error", "timeout", "unsupported")
                            if o in text), None)
            num = text.replace(".", "").replace("e-", "").replace("e+", "").isdigit()
            klass = outcome or ("num" if num else "")
            cells.append(f'<td class="{klass}">{text}</td>' if klass else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{cls}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _plots(samples: list[dict[str, Any]]) -> str:
    if not samples:
        return "<p>No error samples were recorded, so there is nothing to plot.</p>"
    try:
        figs = [plots.ulps_by_op_svg(samples, "grad"), plots.ulps_by_op_svg(samples, "value"),
                plots.error_vs_size_svg(samples)]
    except plots.PlotsUnavailable as e:
        return f"<p>{escape(str(e))}</p>"
    return "".join(f'<figure class="plot">{svg}</figure>' for svg in figs)


def to_html(doc: Mapping[str, Any]) -> str:
    """Render a results document as one self-contained HTML page.

    >>> page = to_html({"target": "gradcert", "verdict": "certified", "properties": []})
    >>> page.startswith("<!DOCTYPE html>") and "CERTIFIED" in page.upper()
    True
    """
    s = summarize(doc)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gradcert: {escape(s.target)} {escape(s.verdict)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>gradcert certify <code>{escape(s.target)}</code>: '
        f'<span class="verdict {escape(s.verdict)}">{escape(s.verdict)}</span></h1>',
        f"<p>{_md_code(header_line(s))}</p>",
        "<h2>Levels</h2>",
        _table(["level", "status"], [[lv, st] for lv, st in s.levels.items()], "levels"),
        "<h2>Properties</h2>",
        _table(["property", "level", "outcome", "worst ulps", "worst rel. error", "graphs"],
               properties_rows(s, marks=False), "properties"),
        "<h2>Accuracy per op</h2>",
        _table(ACCURACY_HEAD, accuracy_rows(s), "accuracy") if s.accuracy
        else "<p>No per-op accuracy was recorded.</p>",
        "<h2>Plots</h2>", _plots(s.samples),
    ]
    if s.failures:
        parts.append("<h2>Failures</h2>")
        for p in s.failures:
            f = p.get("failure") or {}
            parts.append(f'<h3><code>{escape(str(p.get("id")))}</code>: '
                         f'<span class="{escape(str(p.get("outcome")))}">'
                         f'{escape(str(p.get("outcome")))}</span></h3>')
            if p.get("meaning"):
                parts.append(f"<p><em>{escape(str(p['meaning']))}</em></p>")
            if f.get("message"):
                parts.append(f'<pre class="message">{escape(str(f["message"]))}</pre>')
            if f.get("code"):
                parts.append("<p>Minimal graph:</p>"
                             f'<pre class="code">{escape(str(f["code"]))}</pre>')
            if p.get("reproducer"):
                parts.append(f"<p>Reproducer: <code>{escape(str(p['reproducer']))}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
