"""Results in a terminal or a CI log: the verdict table and the comparison.

``render_verdict`` is the plain-text verdict; ``print_verdict`` the same
with colour (rich), after the failures, root causes first. Both are built from
one list of rows, never from each other's text.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gradcert.reports import figures
from gradcert.reports.figures import fmt_num
from gradcert.results import PropertyResult, Results

if TYPE_CHECKING:
    from gradcert.reports.compare import Comparison

__all__ = ["COLOUR", "print_comparison", "print_verdict", "render_verdict"]

COLOUR = {"passed": "green", "certified": "green", "failed": "red", "error": "red",
          "crashed": "red", "timeout": "red", "bad": "red", "unsupported": "yellow",
          "not run": "dim", "incomplete": "yellow"}
_HEAD = ("property", "outcome", "error/bound", "ulps", "bits", "graphs", "note")


def _row(p: PropertyResult) -> tuple[str, ...]:
    frac, ulps, bits = figures.error_cells(figures.property_error(p))
    return (p.id, p.outcome, frac, ulps, bits, str(p.graphs_checked),
            figures.note(p) or figures.cause(p) or ("see the finding above" if p.bad else ""))


def _footer(r: Results, out: Path | None) -> list[tuple[str, str]]:
    """The lines under the table, each with the status that colours it."""
    lines = [("levels: " + ", ".join(f"{lv} {st}" for lv, st in r.levels().items()), "")]
    for p in r.failures():
        if p.reproducer:
            lines.append((f"reproducer for {p.id}: {p.reproducer}", ""))
    if out is not None:
        lines.append((f"report: {out / 'report.html'}, {out / 'results.json'}, "
                      f"{out / 'junit.xml'}", ""))
    rate = r.graphs_per_s
    lines.append((f"verdict: {r.verdict.upper()}  ({r.graphs_checked} graphs checked in "
                  f"{r.duration_s:.1f} s" + (f", {rate:.1f} graphs/s)" if rate is not None
                                            else ")"), r.verdict))
    return lines


def render_verdict(results: Results, out: Path | None = None) -> str:
    """The verdict table as plain text (what ``certify`` prints, without colour).

    >>> r = Results("gradcert", [PropertyResult("ops.values", "ops", graphs_checked=9,
    ...     worst={"ulps": 3.0, "of_bound": 0.25, "kind": "grad"})], duration_s=3.0)
    >>> text = render_verdict(r)
    >>> print(text.splitlines()[2])
    ops.values  passed          0.25     3   2.0       9
    >>> print(text.splitlines()[-1])
    verdict: CERTIFIED  (9 graphs checked in 3.0 s, 3.0 graphs/s)
    """
    rows = [_HEAD, *(_row(p) for p in results.ordered())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD) - 1)]
    right = {2, 3, 4, 5}
    lines = ["  ".join(c.rjust(w) if i in right and r is not _HEAD else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r[:-1], widths, strict=True)))
             + ("  " + r[-1] if r[-1] else "") for r in rows]
    lines = [ln.rstrip() for ln in lines]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", *(text for text, _ in _footer(results, out))])


def _failure_text(p: PropertyResult) -> str:
    """A failure for the terminal: its root cause and severity, then the message the
    property wrote (which already holds the claim, evidence, graph and reproducer)."""
    head = []
    rc = p.root_cause
    if rc is not None and not p.is_root_cause:
        head.append(f"caused by {rc.op or rc.property}"
                    + (f" (see {rc.property})" if rc.property else "") + f": {rc.text}")
    message = str((p.failure or {}).get("message") or "").rstrip()
    if p.severity is not None and "severity:" not in message:
        head.append(f"severity: {p.severity.klass}"
                    + (f", {fmt_num(p.severity.ratio, 'bound')} x the bound"
                       if p.severity.ratio == p.severity.ratio else ""))
    if not message:
        message = f"{p.id} {p.outcome}: {figures.summary(p)}"
    return "\n".join([*head, message])


def print_verdict(results: Results, out: Path | None = None, stream: TextIO | None = None,
                  failures: bool = True) -> None:
    """Print the failures (root causes first), then the verdict table, with colour on a
    terminal."""
    stream = stream or sys.stdout
    if failures:
        for p in results.failures():
            print("\n" + _failure_text(p), file=stream)
    print("", file=stream)
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
    except ImportError:
        print(render_verdict(results, out), file=stream)
        return
    console = Console(file=stream, highlight=False, width=None if stream.isatty() else 150)
    seed = "derandomized" if results.seed is None else f"seed {results.seed}"
    table = Table(title=f"gradcert {results.kind} {results.target} ({results.profile}, {seed})")
    for col in ("level", *_HEAD):
        table.add_column(col, justify="right" if col in _HEAD[2:6] else "left",
                         overflow="fold")
    levels = results.levels()
    last = None
    for p in results.ordered():
        lv = (f"{p.level} [{COLOUR.get(levels[p.level], '')}]{levels[p.level]}[/]"
              if p.level != last else "")
        last = p.level
        pid, outcome, *rest = (escape(c) for c in _row(p))
        table.add_row(lv, pid, f"[{COLOUR.get(p.outcome, '')}]{outcome}[/]", *rest)
    console.print(table)
    for text, status in _footer(results, out):
        console.print(f"[bold {COLOUR[status]}]{escape(text)}[/]" if status else escape(text))


def print_comparison(c: Comparison, console: Any = None) -> None:
    """Print a comparison as terminal tables that fit the console's width: engines are
    columns, split into several tables when there are too many for one."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    width = console.width
    verdicts = {r.target: r.verdict for r in c.results}
    for name, lines in c.reasons().items():
        v = verdicts[name]
        console.print(f"[bold]{escape(name)}[/]: [bold {COLOUR[v]}]{v.upper()}[/]")
        for line in lines:
            console.print(textwrap.fill(escape(line), width=width, initial_indent="  - ",
                                        subsequent_indent="    "), soft_wrap=True)
    for s in c.sections():
        lo = 0
        while lo < len(c.names):
            hi = lo + 1  # as many engines as fit the width, at least one
            while hi < len(c.names) and \
                    console.measure(_table(s, lo, hi + 1, width)).maximum <= width:
                hi += 1
            console.print(_table(s, lo, hi, width))
            lo = hi


def _table(s: Any, lo: int, hi: int, width: int) -> Any:
    """Section ``s`` with the columns of engines ``lo`` to ``hi``; long cells wrap (fold)
    rather than being cut."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=s.title, title_justify="left", pad_edge=False, collapse_padding=True)
    table.add_column(s.head[0], overflow="fold")
    for h in s.head[1 + lo: 1 + hi]:
        table.add_column(h, overflow="fold", max_width=max(12, width // (hi - lo + 1)))
    for row in s.rows:
        table.add_row(escape(row[0].text), *(_coloured(x) for x in row[1 + lo: 1 + hi]))
    return table


def _coloured(cell: Any) -> str:
    from rich.markup import escape

    colour = COLOUR.get(cell.status, "")
    return f"[{colour}]{escape(cell.text)}[/]" if colour else escape(cell.text)
