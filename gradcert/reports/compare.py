"""Engines side by side: verdicts, accuracy per op, speed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from gradcert.reports.summary import LEVELS, Summary, fmt_num, summarize

__all__ = ["Comparison", "compare"]


class Comparison:
    """Several results documents, summarized for a side-by-side view.

    >>> c = compare([{"target": "a", "verdict": "certified"},
    ...              {"target": "b", "verdict": "failed"}])
    >>> [row[:2] for row in c.overview_rows()]
    [['a', 'certified'], ['b', 'failed']]
    """

    def __init__(self, summaries: Sequence[Summary]) -> None:
        if not summaries:
            raise ValueError("compare needs at least one results document")
        self.summaries = list(summaries)

    def overview_head(self) -> list[str]:
        return ["engine", "verdict", *LEVELS, "passed", "failed", "unsupported",
                "graphs", "graphs/s"]

    def overview_rows(self) -> list[list[str]]:
        rows = []
        for s in self.summaries:
            outcomes = [str(p.get("outcome")) for p in s.properties]
            rows.append([s.target, s.verdict, *(s.levels.get(lv, "not run") for lv in LEVELS),
                         str(outcomes.count("passed")),
                         str(sum(outcomes.count(o) for o in ("failed", "error", "timeout"))),
                         str(outcomes.count("unsupported")), str(s.graphs_checked),
                         fmt_num(s.graphs_per_s)])
        return rows

    def accuracy_head(self, kind: str = "grad") -> list[str]:
        return ["op", *(f"{s.target} max ulps" for s in self.summaries)]

    def accuracy_rows(self, kind: str = "grad") -> list[list[str]]:
        """Per op: each engine's max error in ulps and, in brackets, over its tolerance."""
        table: dict[str, list[str]] = {}
        for i, s in enumerate(self.summaries):
            for a in s.accuracy:
                if a.kind == kind:
                    cell = fmt_num(a.max_ulps, "ulps")
                    if a.max_of_bound == a.max_of_bound:  # not nan
                        cell += f" ({fmt_num(a.max_of_bound)})"
                    table.setdefault(a.op, ["—"] * len(self.summaries))[i] = cell
        return [[op, *cells] for op, cells in sorted(table.items())]

    def properties_head(self) -> list[str]:
        return ["property", *(s.target for s in self.summaries)]

    def properties_rows(self) -> list[list[str]]:
        ids: dict[str, list[str]] = {}
        for i, s in enumerate(self.summaries):
            for p in s.properties:
                ids.setdefault(str(p.get("id")), ["—"] * len(self.summaries))[i] = str(
                    p.get("outcome"))
        return [[pid, *cells] for pid, cells in ids.items()]

    def _sections(self) -> list[tuple[str, list[str], list[list[str]]]]:
        return [("Verdicts", self.overview_head(), self.overview_rows()),
                ("Properties", self.properties_head(), self.properties_rows()),
                ("Gradient accuracy per op (max error in ulps, and over its tolerance)",
                 self.accuracy_head("grad"), self.accuracy_rows("grad")),
                ("Value accuracy per op (max error in ulps, and over its tolerance)",
                 self.accuracy_head("value"),
                 self.accuracy_rows("value"))]

    def to_markdown(self) -> str:
        out = ["# gradcert: engines compared"]
        for title, head, rows in self._sections():
            out += ["", f"## {title}", "", "| " + " | ".join(head) + " |",
                    "|" + "---|" * len(head)]
            out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
                 "<title>gradcert: engines compared</title><style>"
                 "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
                 "th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f4f4f4}"
                 "</style></head><body><h1>gradcert: engines compared</h1>"]
        for title, head, rows in self._sections():
            parts.append(f"<h2>{escape(title)}</h2><table><thead><tr>"
                         + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows]
            parts.append("</tbody></table>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def print(self, console: Any = None) -> None:
        """Print the comparison as terminal tables (rich)."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        for title, head, rows in self._sections():
            t = Table(title=title, title_justify="left")
            for h in head:
                t.add_column(h)
            for r in rows:
                t.add_row(*r)
            console.print(t)


def compare(docs: Sequence[Mapping[str, Any]]) -> Comparison:
    """Summarize results documents for comparison, in the order given."""
    return Comparison([summarize(d) for d in docs])
