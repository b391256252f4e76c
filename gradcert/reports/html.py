"""The self-contained HTML report: inline CSS, inline SVG plots, no network, no script."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from gradcert.reports import figures, plots
from gradcert.reports.figures import fmt_num
from gradcert.reports.markdown import PROPERTIES_HEAD, evidence_head
from gradcert.results import PropertyResult, Results

__all__ = ["SYMBOL", "Html", "figure", "outcome", "page", "table", "to_html"]

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;
 max-width:72em;color:#1f2328;padding:0 1.2em}
h1{font-size:1.55em;margin:.2em 0}h2{margin-top:1.8em;border-bottom:1px solid #d0d7de;
 padding-bottom:.2em}h3{margin:.2em 0 .6em}code{font-size:.92em}
.meta{color:#57606a;margin:.3em 0 1em}.explain{color:#57606a;font-size:.92em;max-width:60em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #d0d7de;
 padding:.3em .65em;vertical-align:top}th{background:#f6f8fa;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.bad td{background:#fff1f0}tr.bad td:first-child{box-shadow:inset 4px 0 #cf222e}
.passed,.certified{color:#1a7f37}.failed,.error,.crashed,.timeout{color:#cf222e;font-weight:600}
.unsupported,.not-run,.incomplete{color:#6e7781}
.badge{display:inline-block;padding:.1em .55em;border-radius:.3em;color:#fff;
 font-weight:700;letter-spacing:.04em;text-transform:uppercase;font-size:.85em}
.badge.certified{background:#1a7f37;color:#fff}.badge.failed{background:#cf222e;color:#fff}
.roots{border-left:5px solid #cf222e;background:#fff8f7;padding:.5em 1em;margin:1em 0}
.roots ol{margin:.3em 0;padding-left:1.4em}
section.failure{border:1px solid #d0d7de;border-left:5px solid #cf222e;border-radius:.3em;
 padding:.6em 1em;margin:1em 0}
section.failure p{margin:.35em 0}section.failure ul{margin:.3em 0}
pre{background:#f6f8fa;padding:.6em .8em;white-space:pre-wrap;overflow-wrap:anywhere;
 border-radius:.3em;margin:.4em 0}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}
figcaption{color:#57606a;font-size:.92em;max-width:60em}
ul.why{margin:0;padding-left:1.1em}td,p,li{overflow-wrap:break-word}
"""


class Html(str):
    """Text that is already HTML (not escaped again by :func:`table`)."""


def _h(x: Any) -> str:
    return x if isinstance(x, Html) else escape(str(x))


SYMBOL = {"passed": "✔", "certified": "✔", "failed": "✘", "error": "✘", "crashed": "✘",
          "timeout": "◔", "unsupported": "–", "not run": "·", "incomplete": "◐", "bad": "✘"}


def outcome(o: str, text: str | None = None) -> Html:
    """An outcome (or ``text`` in its colours), coloured by class and marked by a symbol,
    so colour is not the only cue."""
    klass = "failed" if o == "bad" else o.replace(" ", "-")
    return Html(f'<span class="{escape(klass)}">{SYMBOL.get(o, "")} '
                f"{escape(o if text is None else text)}</span>")


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], cls: str,
          numeric: Sequence[int] = (), bad: Sequence[bool] = (),
          groups: Sequence[tuple[str, int]] = ()) -> str:
    """An HTML table; ``numeric`` column indices are right-aligned, rows flagged in
    ``bad`` are highlighted, ``groups`` (label, columns) head the columns in groups."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    if groups:
        th = ("".join(f'<th colspan="{n}">{escape(g)}</th>' for g, n in groups)
              + "</tr><tr>" + th)
    body = []
    for i, r in enumerate(rows):
        cells = "".join(f'<td class="num">{_h(c)}</td>' if j in numeric else f"<td>{_h(c)}</td>"
                        for j, c in enumerate(r))
        flag = ' class="bad"' if i < len(bad) and bad[i] else ""
        body.append(f"<tr{flag}>{cells}</tr>")
    return (f'<table class="{cls}"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def page(title: str, body: Sequence[str]) -> str:
    """A whole self-contained page."""
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{escape(title)}</title>", f"<style>{CSS}</style></head><body>",
                      *body, "</body></html>"]) + "\n"


def figure(svg: str, caption: str) -> str:
    return f'<figure class="plot">{svg}<figcaption>{escape(caption)}</figcaption></figure>'


def _plots(r: Results) -> list[str]:
    if not r.samples:
        return ["<p>No error samples were recorded, so there is nothing to plot.</p>"]
    try:
        return [figure(svg, caption) for svg, caption in plots.report_plots(r)]
    except plots.PlotsUnavailable as e:
        return [f"<p>{escape(str(e))}</p>"]


def _code(text: str) -> str:
    return f'<pre class="code">{escape(text)}</pre>'


def failure(p: PropertyResult) -> str:
    """One failing property as a block (see :func:`gradcert.reports.figures.failure_view`)."""
    v = figures.failure_view(p)
    out = [f'<section class="failure" id="{escape(v.id)}">',
           f"<h3><code>{escape(v.id)}</code>: {outcome(v.outcome)}</h3>"]
    if v.root_cause is not None:
        where = (f' (see <a href="#{escape(v.root_cause.property)}"><code>'
                 f"{escape(v.root_cause.property)}</code></a>)" if v.root_cause.property else "")
        op = f"<code>{escape(v.root_cause.op)}</code>" if v.root_cause.op else "another finding"
        out.append(f"<p><strong>Caused by {op}</strong>{where}: {escape(v.root_cause.text)}</p>")
    if v.severity is not None:
        ratio = (f", {fmt_num(v.severity.ratio, 'bound')} × the bound"
                 if v.severity.ratio == v.severity.ratio else "")
        out.append(f"<p><strong>Severity:</strong> {escape(v.severity.klass)}{ratio}</p>")
    if v.claim:
        out.append(f"<p><strong>Claim:</strong> {escape(v.claim)}</p>")
    out.append(f"<p><strong>Found:</strong> {escape(v.found)}</p>")
    if v.details:
        out.append("<ul>" + "".join(f"<li>{escape(d)}</li>" for d in v.details) + "</ul>")
    if v.evidence:
        head = evidence_head(v)
        out.append(table(head, [e[:len(head)] for e in v.evidence], "evidence"))
    if v.worst:
        out.append("<p><strong>Worst example found:</strong></p><ul>"
                   + "".join(f"<li>{escape(w)}</li>" for w in v.worst) + "</ul>")
        if v.worst_code:
            out.append(_code(v.worst_code))
    if v.code:
        out.append("<p><strong>Minimal graph</strong> (shrunk):</p>" + _code(v.code))
    if v.reproducer:
        out.append(f"<p><strong>Reproducer:</strong> <code>{escape(v.reproducer)}</code> "
                   "(exits 1 while the defect is present, 0 once fixed)</p>")
    if v.others:
        out.append("<p><strong>Also found by this property:</strong></p><ul>"
                   + "".join(f"<li>{escape(o)}</li>" for o in v.others) + "</ul>")
    out.append("</section>")
    return "".join(out)


def roots(r: Results) -> str:
    """The root causes box: the findings to fix first, linked to their blocks."""
    fails = r.failures()
    items = []
    for p in fails:
        if not p.is_root_cause:
            continue
        sev = f", {escape(p.severity.klass)}" if p.severity else ""
        items.append(f'<li><a href="#{escape(p.id)}"><code>{escape(p.id)}</code></a> '
                     f"({outcome(p.outcome)}{sev}): {escape(figures.summary(p))}</li>")
    out = [f'<div class="roots"><strong>{figures.findings_title(r)}</strong> '
           "(fix these first)<ol>",
           *items, "</ol>"]
    caused = [p for p in fails if not p.is_root_cause]
    if caused:
        out.append("Explained by those: " + ", ".join(
            f'<a href="#{escape(p.id)}"><code>{escape(p.id)}</code></a>' for p in caused))
    out.append("</div>")
    return "".join(out)


def to_html(r: Results) -> str:
    """Render results as one self-contained HTML page.

    >>> from gradcert.results import PropertyResult
    >>> page_ = to_html(Results("gradcert", [PropertyResult("ops.values", "ops")]))
    >>> page_.startswith("<!DOCTYPE html>") and "certified" in page_
    True
    """
    body = [f'<h1>gradcert {escape(r.kind)} <code>{escape(r.target)}</code> '
            f'<span class="badge {escape(r.verdict)}">{escape(r.verdict)}</span></h1>',
            f'<p class="meta">{escape(" · ".join(figures.header_parts(r)))}</p>']
    if r.failures():
        body.append(roots(r))
    levels = r.levels()
    body += ["<h2>Levels</h2>",
             table(list(levels), [[outcome(st) for st in levels.values()]], "levels")]
    props = r.ordered()
    rows = [[Html(f"<code>{escape(p.id)}</code>"), outcome(p.outcome),
             *figures.error_cells(figures.property_error(p)),
             Html(f'<a href="#{escape(p.id)}">{escape(figures.cause(p) or "see below")}</a>')
             if p.bad else figures.note(p),
             fmt_num(p.graphs_checked, "int")] for p in props]
    checks = r.kind == "check_grads"  # a team's functions: no per-op figures or plots
    head = ["function", *PROPERTIES_HEAD[1:-1], "inputs"] if checks else PROPERTIES_HEAD
    body += ["<h2>Functions</h2>" if checks else "<h2>Properties</h2>",
             f'<p class="explain">{escape(figures.MEANING)}</p>',
             table(head, rows, "properties", numeric=(2, 3, 4, 6),
                   bad=[p.bad for p in props])]
    if not checks:
        body.append("<h2>Accuracy per op</h2>")
    if checks:
        pass
    elif r.ops:
        ops = figures.accuracy_rows(r)
        body += [table(["op", *[h.split(": ")[-1] for h in figures.ACCURACY_HEAD[1:]]],
                       [[Html(f"<code>{escape(op)}</code>"), *cells] for op, _, cells in ops],
                       "accuracy", numeric=(1, 2, 4, 5), bad=[bad for _, bad, _ in ops],
                       groups=[("", 1), ("gradient", 3), ("value", 3)]),
                 '<p class="explain">"At the max" is the sample with the maximum error over '
                 "its bound: its error in ulps and bits, and its inputs. Highlighted rows: an "
                 "error beyond the bound or a failed op test. "
                 f"{escape(figures.EXACT_NEAR_ZERO)}</p>"]
    else:
        body.append("<p>No per-op accuracy was recorded.</p>")
    if not checks:
        body += ["<h2>Plots</h2>", *_plots(r)]
    fails = r.failures()
    if fails:
        body += ["<h2>Failures</h2>", *(failure(p) for p in fails)]
    return page(f"gradcert: {r.target} {r.verdict}", body)
