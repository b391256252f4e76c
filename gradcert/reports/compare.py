"""Engines side by side: verdicts and their reasons, properties, accuracy per op, plots.

One :class:`Comparison` lays the tables out once (:meth:`Comparison.sections`);
Markdown, HTML and the terminal (:mod:`gradcert.reports.terminal`) render them.
Engines are columns, so three engines fit an 80-column terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from gradcert.reports import figures, html, plots
from gradcert.reports.figures import fmt_num
from gradcert.reports.markdown import MARK, table
from gradcert.results import LEVELS, OpStats, Results

__all__ = ["Cell", "Comparison", "Section", "compare"]


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and a status to colour it by (an outcome, a verdict, a
    level status, or "bad" for an error beyond its bound)."""

    text: str
    status: str = ""


@dataclass
class Section:
    """One table of the comparison: a title, a header (the first column names the
    rows, then one column per engine), rows and an explanation."""

    title: str
    head: list[str]
    rows: list[list[Cell]]
    explain: str = ""
    tags: list[str] = field(default_factory=list)


def _op_cell(st: OpStats | None, failing: bool) -> Cell:
    if st is None:
        return Cell("—")
    frac, ulps, _ = figures.error_cells(st.worst)
    if st.worst is not None and ulps not in ("—", "0"):
        frac += f" ({ulps})" if ulps == "exact ≈ 0" else \
            f" ({ulps} ulp{'' if ulps == '1' else 's'})"
    return Cell(frac, "bad" if failing else "")


class Comparison:
    """Several engines' results, laid out side by side.

    ``links``: for each engine, the path of its own report (or None), relative to
    where the comparison is written.

    >>> from gradcert.results import PropertyResult
    >>> c = compare([Results("a", [PropertyResult("ops.values", "ops")]),
    ...              Results("b", [PropertyResult("ops.values", "ops", outcome="failed")])])
    >>> [cell.text for cell in c.sections()[0].rows[0]]
    ['verdict', 'certified', 'failed']
    """

    def __init__(self, results: Sequence[Results],
                 links: Sequence[str | None] | None = None) -> None:
        if not results:
            raise ValueError("compare needs at least one results document")
        self.results = list(results)
        self.links = list(links) if links is not None else [None] * len(self.results)

    @property
    def names(self) -> list[str]:
        return [r.target for r in self.results]

    def verdicts(self) -> Section:
        rows = [[Cell("verdict"), *(Cell(r.verdict, r.verdict) for r in self.results)],
                [Cell("run"), *(Cell(", ".join(figures.header_parts(r)[:2])
                                     .removeprefix("profile "))
                                for r in self.results)]]
        levels = [r.levels() for r in self.results]
        extra = [lv for lvs in levels for lv in lvs if lv not in LEVELS]
        for lv in [*LEVELS, *dict.fromkeys(extra)]:
            rows.append([Cell(lv), *(Cell(lvs.get(lv, "not run"), lvs.get(lv, "not run"))
                                     for lvs in levels)])
        for label, outcomes in (("passed", ("passed",)),
                                ("failed", ("failed", "error", "crashed", "timeout")),
                                ("unsupported", ("unsupported",)), ("not run", ("not run",))):
            counts = [r.count(*outcomes) for r in self.results]
            if label in ("passed", "failed") or any(counts):
                rows.append([Cell(f"properties {label}"), *(Cell(str(n)) for n in counts)])
        rows.append([Cell("graphs checked"),
                     *(Cell(fmt_num(r.graphs_checked, "int")) for r in self.results)])
        rows.append([Cell("graphs/s"), *(Cell(fmt_num(r.graphs_per_s, "int"))
                                         for r in self.results)])
        return Section("Verdicts", ["", *self.names], rows)

    def reasons(self) -> dict[str, list[str]]:
        """Per engine, one line per finding (root causes first), then what it could not
        be checked on (ops it lacks, properties unsupported or not run)."""
        out = {}
        for r in self.results:
            lines = []
            for p in r.failures():
                why = figures.summary(p)
                rc = p.root_cause
                if not p.is_root_cause and rc is not None:
                    why = f"caused by {rc.op or rc.property}: {rc.text or why}"
                sev = f", {p.severity.klass}" if p.severity else ""
                lines.append(f"{p.id} ({p.outcome}{sev}): {why}")
            if not lines and r.verdict == "certified":
                lines.append("every property it supports passed")
            lacks = r.engine.get("unsupported_ops") or []
            if lacks:
                lines.append(f"lacks the ops {', '.join(map(str, lacks))}")
            for outcome in ("unsupported", "not run"):
                ids = [p.id for p in r.ordered() if p.outcome == outcome]
                if ids:
                    lines.append(f"{outcome}: {', '.join(ids)}")
            out[r.target] = lines
        return out

    def properties(self) -> Section:
        ids: dict[str, list[Cell]] = {}
        for i, r in enumerate(self.results):
            for p in r.ordered():
                frac = figures.error_cells(figures.property_error(p))[0]
                text = p.outcome + ("" if frac == "—" else f" {frac}")
                ids.setdefault(p.id, [Cell("not run", "not run")] * len(self.results))[i] = Cell(
                    text, p.outcome)
        return Section("Properties", ["property", *self.names],
                       [[Cell(pid), *cells] for pid, cells in ids.items()],
                       "Each property's outcome and its worst error as a fraction of the "
                       "bound (≤ 1 passes).")

    def accuracy(self, kind: str = "grad") -> Section:
        ops = sorted({op for r in self.results for op, kinds in r.ops.items() if kind in kinds})
        failing = [r.failing_ops() for r in self.results]
        rows = [[Cell(op), *(_op_cell(r.ops.get(op, {}).get(kind), op in failing[i])
                             for i, r in enumerate(self.results))] for op in ops]
        what = "Gradient" if kind == "grad" else "Value"
        return Section(f"{what} accuracy per op", ["op", *self.names], rows,
                       "Max error over the bound and, in brackets, that sample's error "
                       "in ulps; — where the engine lacks the op.")

    def sections(self) -> list[Section]:
        return [self.verdicts(), self.properties(), self.accuracy("grad"),
                self.accuracy("value")]

    # -- renderers -------------------------------------------------------------

    def to_markdown(self) -> str:
        out = ["# gradcert: engines compared", ""]
        for r, link in zip(self.results, self.links, strict=True):
            report = f" ([report]({link}))" if link else ""
            out.append(f"- **{r.target}**: {MARK.get(r.verdict, r.verdict)}{report} · "
                       + " · ".join(figures.header_parts(r)[:3]))
        out += ["", figures.MEANING + " " + figures.EXACT_NEAR_ZERO, "", "## Why", ""]
        for name, lines in self.reasons().items():
            out += [f"**{name}**", ""] + [f"- {ln}" for ln in lines] + [""]
        for s in self.sections():
            out += [f"## {s.title}", ""]
            if s.explain:
                out += [s.explain, ""]
            out += table(s.head, [[_md(c) for c in row] for row in s.rows]) + [""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        body = ["<h1>gradcert: engines compared</h1>", '<table class="engines"><thead><tr>'
                "<th>engine</th><th>verdict</th><th>why</th><th>report</th></tr></thead>"
                "<tbody>"]
        reasons = self.reasons()
        for r, link in zip(self.results, self.links, strict=True):
            a = f'<a href="{escape(link)}">{escape(link)}</a>' if link else "—"
            why = "".join(f"<li>{escape(ln)}</li>" for ln in reasons[r.target])
            body.append(f"<tr><td><code>{escape(r.target)}</code></td>"
                        f'<td><span class="badge {escape(r.verdict)}">{escape(r.verdict)}'
                        f'</span></td><td><ul class="why">{why}</ul></td><td>{a}</td></tr>')
        body.append(f'</tbody></table><p class="explain">{escape(figures.MEANING)} '
                    f"{escape(figures.EXACT_NEAR_ZERO)}</p>")
        for s in self.sections():
            body.append(f"<h2>{escape(s.title)}</h2>")
            if s.explain:
                body.append(f'<p class="explain">{escape(s.explain)}</p>')
            body.append(html.table(s.head, [[_html(c) for c in row] for row in s.rows],
                                   s.title.split()[0].lower(),
                                   bad=[any(c.status == "bad" for c in row) for row in s.rows]))
        body.append("<h2>Plots</h2>")
        try:
            body += [html.figure(svg, cap) for svg, cap in plots.comparison_plots(self.results)]
        except plots.PlotsUnavailable as e:
            body.append(f"<p>{escape(str(e))}</p>")
        return html.page("gradcert: engines compared", body)

    def print(self, console: Any = None) -> None:
        """Print the comparison to a terminal (rich), within the console's width."""
        from gradcert.reports.terminal import print_comparison

        print_comparison(self, console)


def _md(c: Cell) -> str:
    if c.status == "bad":
        return f"❌ {c.text}"
    if c.status in MARK and c.text.startswith(c.status):
        return MARK[c.status] + c.text[len(c.status):]
    return c.text


def _html(c: Cell) -> Any:
    return html.outcome(c.status, c.text) if c.status else c.text


def compare(results: Sequence[Results], links: Sequence[str | None] | None = None
            ) -> Comparison:
    """Engines side by side, in the order given."""
    return Comparison(results, links)
