"""The Markdown report: for a pull-request comment or a CI step summary."""

from __future__ import annotations

from typing import Any

from gradcert.reports import figures
from gradcert.reports.figures import fmt_num
from gradcert.results import Results

__all__ = ["MARK", "to_markdown"]

MARK = {"passed": "✅ passed", "failed": "❌ failed", "error": "💥 error",
        "crashed": "💥 crashed", "timeout": "⏱ timeout", "unsupported": "➖ unsupported",
        "not run": "· not run", "incomplete": "◐ incomplete", "certified": "✅ certified"}


def cell(x: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(x).replace("|", "\\|").replace("\n", " ")


def table(head: list[str], rows: list[list[Any]], right: int = 0) -> list[str]:
    """A Markdown table; the last ``right`` columns are numbers, aligned right."""
    align = ["---"] * (len(head) - right) + ["---:"] * right
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


def _code(text: str, lang: str = "") -> list[str]:
    return ["```" + lang, text.rstrip(), "```"]


def properties_rows(r: Results) -> list[list[Any]]:
    rows = []
    for p in r.ordered():
        frac, ulps, bits = figures.error_cells(figures.property_error(p))
        rows.append([f"`{p.id}`", MARK.get(p.outcome, p.outcome), frac, ulps, bits,
                     figures.note(p) or figures.cause(p) or ("see Failures" if p.bad else ""),
                     fmt_num(p.graphs_checked, "int")])
    return rows


PROPERTIES_HEAD = ["property", "outcome", "error / bound", "ulps", "bits", "note", "graphs"]


def accuracy_rows(r: Results) -> list[list[str]]:
    """One row per op; an op with an error beyond its bound or a failed test is marked."""
    return [[f"❌ **`{op}`**" if failing else f"`{op}`", *cells]
            for op, failing, cells in figures.accuracy_rows(r)]


def failure_lines(p: Any) -> list[str]:
    """One failing property as a block: the claim, what was found, the evidence, the
    worst example, the minimal graph, the reproducer. Prose wraps; only code is fenced."""
    v = figures.failure_view(p)
    out = [f"### `{v.id}`: {MARK.get(v.outcome, v.outcome)}", ""]
    if v.root_cause is not None:
        where = f" (see `{v.root_cause.property}`)" if v.root_cause.property else ""
        op = f"`{v.root_cause.op}`" if v.root_cause.op else "another finding"
        out += [f"**Caused by {op}**{where}: {v.root_cause.text}", ""]
    if v.severity is not None:
        out += [f"**Severity:** {v.severity.klass}"
                + (f", {fmt_num(v.severity.ratio, 'bound')} × the bound"
                   if v.severity.ratio == v.severity.ratio else ""), ""]
    if v.claim:
        out += [f"**Claim:** {v.claim}", ""]
    out += [f"**Found:** {v.found}", ""]
    if v.details:
        out += [f"- {d}" for d in v.details] + [""]
    if v.evidence:
        out += table(evidence_head(v), [list(e)[:len(evidence_head(v))] for e in v.evidence])
        out += [""]
    if v.worst:
        out += ["**Worst example found:**", ""] + [f"- {w}" for w in v.worst] + [""]
        if v.worst_code:
            out += _code(v.worst_code, "python") + [""]
    if v.code:
        out += ["**Minimal graph** (shrunk):", ""] + _code(v.code, "python") + [""]
    if v.reproducer:
        out += [f"**Reproducer:** `{v.reproducer}` (exits 1 while the defect is present, "
                "0 once fixed)", ""]
    if v.others:
        out += ["**Also found by this property:**", ""] + [f"- {o}" for o in v.others] + [""]
    return out


def evidence_head(v: figures.FailureView) -> list[str]:
    """expected, actual, and bound when the failure gives one."""
    has_bound = any(e[3] != "—" for e in v.evidence)
    return ["", "expected", "actual", *(["bound"] if has_bound else [])]


def root_cause_lines(r: Results) -> list[str]:
    """The findings to fix first, one line each, then those they explain."""
    fails = r.failures()
    roots = [p for p in fails if p.is_root_cause]
    out = [f"{i}. `{p.id}` ({p.outcome}"
           + (f", {p.severity.klass}" if p.severity else "") + f"): {figures.summary(p)}"
           for i, p in enumerate(roots, 1)]
    caused = [p for p in fails if not p.is_root_cause]
    if caused:
        out += ["", "Explained by those:", ""]
        for p in caused:
            rc = p.root_cause
            assert rc is not None
            out.append(f"- `{p.id}`: {rc.text or 'caused by ' + str(rc.op or rc.property)}")
    return out


def to_markdown(r: Results) -> str:
    """Render results as Markdown.

    >>> from gradcert.results import PropertyResult
    >>> md = to_markdown(Results("gradcert", [PropertyResult("ops.values", "ops")]))
    >>> md.splitlines()[0]
    '# gradcert certify `gradcert`: **CERTIFIED**'
    """
    out = [f"# gradcert {r.kind} `{r.target}`: **{r.verdict.upper()}**", "",
           " · ".join(figures.header_parts(r)), ""]
    if r.failures():
        out += [f"## {figures.findings_title(r)}", ""] + root_cause_lines(r) + [""]
    out += ["## Levels", ""]
    out += table(["level", "status"], [[lv, MARK.get(st, st)] for lv, st in r.levels().items()])
    checks = r.kind == "check_grads"
    out += ["", "## Functions" if checks else "## Properties", "", figures.MEANING, ""]
    head = PROPERTIES_HEAD[:-1] + ["inputs"] if checks else PROPERTIES_HEAD
    out += table(["function" if checks else head[0], *head[1:]], properties_rows(r), right=1)
    if not checks:  # a function's check has no per-op figures
        out += ["", "## Accuracy per op", ""]
    if checks:
        pass
    elif r.ops:
        out += table(figures.ACCURACY_HEAD, accuracy_rows(r))
        out += ["", "\"At the max\" is the sample with the maximum error over its bound: "
                "its error in ulps and bits, and its inputs. " + figures.EXACT_NEAR_ZERO]
        if r.failing_ops():
            out += ["", "❌ marks an op with an error beyond its bound or a failed op test."]
    else:
        out.append("No per-op accuracy was recorded.")
    fails = r.failures()
    if fails:
        out += ["", "## Failures", ""]
        for p in fails:
            out += failure_lines(p)
    return "\n".join(out).rstrip() + "\n"
