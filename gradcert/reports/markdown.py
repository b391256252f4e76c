"""The Markdown report: for a pull-request comment or a CI step summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gradcert.reports.summary import Summary, fmt_num, summarize

__all__ = ["to_markdown"]

_MARK = {"passed": "✅ passed", "failed": "❌ failed", "error": "💥 error",
         "timeout": "⏱ timeout", "unsupported": "➖ unsupported", "not run": "· not run"}


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def header_line(s: Summary) -> str:
    """The run in one line: profile, seed, graphs checked and their rate."""
    parts = [f"profile `{s.profile}`", "derandomized" if s.seed is None else f"seed `{s.seed}`",
             f"{s.graphs_checked} graphs checked"]
    if s.duration_s is not None:
        parts.append(f"in {s.duration_s:.1f} s")
        if s.graphs_per_s is not None:
            parts.append(f"({s.graphs_per_s:.1f} graphs/s)")
    if s.engine.get("dtype"):
        parts.append(f"dtype {s.engine['dtype']}")
    return " · ".join(parts)


def properties_rows(s: Summary, marks: bool = True) -> list[list[Any]]:
    """One row per property; ``marks`` prefixes outcomes with a symbol."""
    rows = []
    for p in s.properties:
        worst = p.get("worst") or {}
        rows.append([f"`{p.get('id')}`", p.get("level", "—"),
                     _MARK.get(str(p.get("outcome")), p.get("outcome")) if marks
                     else p.get("outcome"),
                     fmt_num(worst.get("ulps"), "ulps"), fmt_num(worst.get("rel")),
                     p.get("graphs_checked", "—")])
    return rows


def accuracy_rows(s: Summary) -> list[list[Any]]:
    return [[f"`{a.op}`", a.kind, a.count, fmt_num(a.max_ulps, "ulps"),
             fmt_num(a.median_ulps, "ulps"), fmt_num(a.max_rel), fmt_num(a.median_rel),
             fmt_num(a.max_of_bound), _inputs(a.worst_inputs)] for a in s.accuracy]


ACCURACY_HEAD = ["op", "of", "n", "max ulps", "median ulps", "max rel.", "median rel.",
                 "max error/tolerance", "worst inputs"]


def _inputs(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, (list, tuple)):
        return "(" + ", ".join(repr(v) for v in x) + ")"
    return repr(x)


def to_markdown(doc: Mapping[str, Any]) -> str:
    """Render a results document as Markdown.

    >>> md = to_markdown({"target": "gradcert", "verdict": "certified", "properties": []})
    >>> md.splitlines()[0]
    '# gradcert certify `gradcert`: **CERTIFIED**'
    """
    s = summarize(doc)
    out = [f"# gradcert certify `{s.target}`: **{s.verdict.upper()}**", "", header_line(s), ""]
    out += ["## Levels", ""]
    out += _table(["level", "status"], [[lv, _MARK.get(st, st)] for lv, st in s.levels.items()])
    out += ["", "## Properties", ""]
    out += _table(["property", "level", "outcome", "worst ulps", "worst rel. error", "graphs"],
                  properties_rows(s))
    out += ["", "## Accuracy per op", ""]
    if s.accuracy:
        out += _table(ACCURACY_HEAD, accuracy_rows(s))
        out += ["", "An error of many ulps on an exact value near 0 can be well inside the "
                "tolerance; `max error/tolerance` (1 is the edge of passing) says how close "
                "each op came to failing."]
    else:
        out.append("No per-op accuracy was recorded.")
    if s.failures:
        out += ["", "## Failures"]
        for p in s.failures:
            out += ["", f"### `{p.get('id')}`: {p.get('outcome')}", ""]
            if p.get("meaning"):
                out += [f"_{p['meaning']}_", ""]
            f = p.get("failure") or {}
            if f.get("message"):
                out += ["```", str(f["message"]).rstrip(), "```"]
            if "expected" in f or "actual" in f:
                out += ["", f"expected `{f.get('expected')}`, actual `{f.get('actual')}`"]
            if f.get("code"):
                out += ["", "Minimal graph:", "", "```python", str(f["code"]).rstrip(), "```"]
            if p.get("reproducer"):
                out += ["", f"Reproducer: `{p['reproducer']}` (exits 1 while the defect is "
                            "present, 0 once fixed)"]
    return "\n".join(out) + "\n"
