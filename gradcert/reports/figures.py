"""What every report shows, formatted once: numbers, errors, notes, failures.

The terminal, Markdown and HTML renderers (and the comparison) take their
words and numbers from here, so a figure reads the same everywhere. The
primary error figure is the error as a fraction of its tolerance bound (1 is
the edge of passing), with ulps and bits of error beside it; a result within
its bound whose exact value is about 0 shows "exact ≈ 0" instead of a
meaningless ulp count.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from gradcert.results import PropertyResult, Results, RootCause, Sample, Severity, conventions_text

__all__ = ["ACCURACY_HEAD", "EXACT_NEAR_ZERO", "MEANING", "FailureView", "accuracy_rows",
           "at_max", "error_cells", "failure_view",
           "findings_title", "fmt_num", "header_parts", "input_cell", "note", "property_error",
           "show", "summary"]

MEANING = ("Errors are shown as a fraction of the tolerance bound gradcert derives for "
           "each result (≤ 1 passes, 1 is the edge), with the error in ulps and in bits "
           "(log2(1 + ulps), 0 when exact) beside it.")
EXACT_NEAR_ZERO = ("exact ≈ 0: within the bound, but the exact value is about 0 at the "
                   "scale of the computation (a cancellation, or a tiny derivative such as "
                   "tanh' far from 0), so ulps and relative error say nothing there; the "
                   "absolute error is what the bound limits.")


def fmt_num(x: Any, kind: str = "g") -> str:
    """A number as every report shows it: ``"bound"`` (a fraction of the bound) to 2
    digits, ``"ulps"`` as an integer, ``"bits"`` to one decimal, others to 3 digits;
    a missing number is a dash.

    >>> fmt_num(0.1234, "bound"), fmt_num(3.4e-20, "bound"), fmt_num(2.1e5, "bound")
    ('0.12', '3.4e-20', '2.1e+05')
    >>> fmt_num(3.0, "ulps"), fmt_num(4.4e18, "ulps"), fmt_num(6.71, "bits"), fmt_num(0.0, "bits")
    ('3', '4.4e+18', '6.7', '0')
    >>> fmt_num(1.5e-17), fmt_num(None), fmt_num(float("inf"), "ulps"), fmt_num(12345.0, "int")
    ('1.5e-17', '—', 'inf', '12,345')
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if kind == "bound":
        return f"{v:.2g}"
    if kind == "ulps":
        return f"{v:.0f}" if abs(v) < 1e6 else f"{v:.2g}"
    if kind == "bits":
        return f"{v:.1f}"
    if kind == "int":
        return f"{v:,.0f}"
    return f"{v:.3g}"


def input_cell(s: Sample | None, fmt: Any = repr) -> str:
    """The inputs of the worst sample, or a dash when there is none or it is exact (then
    every sample was exact and no input is worse than another).

    >>> input_cell(Sample("grad", ulps=2.0, of_bound=0.1, inputs=(0.5, -1e300)))
    '(0.5, -1e+300)'
    >>> input_cell(Sample("grad", ulps=0.0, of_bound=0.0, inputs=(1.0,)))
    '—'
    """
    if s is None or s.inputs is None or (s.of_bound == 0 and s.ulps == 0):
        return "—"
    shown = ", ".join(fmt(v) for v in s.inputs[:4])
    return f"({shown}{', …' if len(s.inputs) > 4 else ''})"


def at_max(s: Sample | None) -> str:
    """Where an op's maximum error was seen: its ulps, bits and inputs, in one cell;
    a dash when every sample was exact.

    >>> at_max(Sample("grad", ulps=47.0, of_bound=0.12, inputs=(1e50,)))
    '47 ulps, 5.6 bits at (1e+50)'
    >>> at_max(Sample("grad", ulps=4.4e18, rel=1.0, of_bound=0.015, inputs=(20.0,)))
    'exact ≈ 0 at (20.0)'
    """
    where = input_cell(s)
    if s is None or where == "—":
        return "—"
    _, ulps, bits = error_cells(s)
    if ulps == "exact ≈ 0":
        return f"exact ≈ 0 at {where}"
    unit = "ulp" if ulps == "1" else "ulps"
    return f"{ulps} {unit}, {bits} bit{'' if bits == '1.0' else 's'} at {where}"


ACCURACY_HEAD = ["op", "gradient: max error / bound", "median", "at the max",
                 "value: max error / bound", "median", "at the max"]


def accuracy_rows(r: Results) -> list[tuple[str, bool, list[str]]]:
    """One row per op: (op, failing, cells after the op) for :data:`ACCURACY_HEAD`."""
    failing = r.failing_ops()
    rows = []
    for op, kinds in sorted(r.ops.items()):
        cells: list[str] = []
        for kind in ("grad", "value"):
            st = kinds.get(kind)
            cells += ["—", "—", "—"] if st is None else [
                fmt_num(st.max_of_bound, "bound"), fmt_num(st.median_of_bound, "bound"),
                at_max(st.worst)]
        rows.append((op, op in failing, cells))
    return rows


def error_cells(s: Sample | None) -> tuple[str, str, str]:
    """An error as (fraction of the bound, ulps, bits); "exact ≈ 0" replaces the ulps
    of a result within its bound whose exact value is about 0.

    >>> error_cells(Sample("grad", ulps=105.0, of_bound=0.12))
    ('0.12', '105', '6.7')
    >>> error_cells(Sample("grad", ulps=4.4e18, rel=1.0, of_bound=0.015))
    ('0.015', 'exact ≈ 0', '—')
    >>> error_cells(None)
    ('—', '—', '—')
    """
    if s is None:
        return "—", "—", "—"
    if s.exact_near_zero:
        return fmt_num(s.of_bound, "bound"), "exact ≈ 0", "—"
    return fmt_num(s.of_bound, "bound"), fmt_num(s.ulps, "ulps"), fmt_num(s.bits, "bits")


def property_error(p: PropertyResult) -> Sample | None:
    """The error a property's row shows: its worst sample, or for a finding the
    failure's own size (its severity ratio); None when the finding is not an error
    size (a crash, a wrong semantics), so no reassuring 0 stands beside a failure."""
    sev = p.severity
    if p.bad and sev is not None and not math.isnan(sev.ratio):
        return Sample("grad", of_bound=sev.ratio)
    s = p.worst_sample
    if s is None or (p.bad and not s.of_bound > 1.0):
        return None
    return s


def note(p: PropertyResult) -> str:
    """A property's one-line remark: why it is unsupported, the convention or depth it
    showed, the ops it could not check (nothing for a finding, told in its own block).

    >>> note(PropertyResult("ops.kinks", "ops", notes={"relu'(0)": 0.0}))
    "relu'(0) = 0.0"
    >>> note(PropertyResult("ops.values", "ops", notes={"tests": {"log": "unsupported",
    ...                                                          "add": "passed"}}))
    'unsupported: log'
    >>> note(PropertyResult("ops.values", "ops", outcome="passed", notes={"oracle_refused": 2}))
    '2 examples refused (no finite bound there)'
    """
    n = p.notes
    if p.bad:
        return ""  # a finding is told in full once, in its own block
    if p.outcome == "not run":  # why: the session ended first, or never got to it
        why = str((p.failure or {}).get("message") or "").strip()
        return why.splitlines()[0].removeprefix("not run: ")[:90] if why else ""
    if p.outcome == "unsupported":
        return str(n.get("unsupported", "")).removeprefix("unsupported: ")
    parts = []
    kink = n.get("relu'(0)")
    if kink is not None:
        parts.append(f"relu'(0) = {kink}")
    if "second_backward" in n:
        parts.append(f"a second backward {n['second_backward']}")
    if "max_ok_depth" in n:
        parts.append(f"depth {fmt_num(n['max_ok_depth'], 'int')} ok")
    plain = n.get("default_settings")
    if isinstance(plain, dict) and "max_ok_depth" in plain:
        told = f"default settings: depth {fmt_num(plain['max_ok_depth'], 'int')} ok"
        if "failed_depth" in plain:
            why = str(plain.get("error", "")).split(" while ")[0]
            told += f", {fmt_num(plain['failed_depth'], 'int')} fails ({why[:100]})"
        parts.append(told)
    if "nodes_per_s" in n:
        parts.append(f"{fmt_num(n['nodes_per_s'], 'int')} nodes/s")
    if "optimizer" in n:
        parts.append(str(n["optimizer"]))
    if n.get("oracle_refused"):
        parts.append(f"{n['oracle_refused']} examples refused (no finite bound there)")
    skipped = sorted(k for k, o in (n.get("tests") or {}).items() if o == "unsupported")
    if skipped and p.outcome == "passed":
        parts.append("unsupported: " + ", ".join(skipped))
    return "; ".join(parts)


def cause(p: PropertyResult) -> str:
    """A finding explained by another's, in a few words ("" for a root cause).

    >>> cause(PropertyResult("models.mlp", "models", outcome="failed", failure={
    ...     "root_cause": {"op": "mul", "property": "ops.gradients", "text": "mul'"}}))
    'caused by mul (ops.gradients)'
    """
    rc = p.root_cause
    if rc is None or p.is_root_cause:
        return ""
    return f"caused by {rc.op or rc.property}" + (f" ({rc.property})" if rc.op and rc.property
                                                  else "")


def summary(p: PropertyResult) -> str:
    """A finding in one sentence: the failure's summary, else the first line of its
    message that is not the property's own heading.

    >>> summary(PropertyResult("robustness.chain_10k", "robustness", "chains work", "failed",
    ...     failure={"message": "robustness.chain_10k: backward raised RecursionError"}))
    'backward raised RecursionError'
    """
    f = p.failure or {}
    text = str(f.get("summary") or "")
    if not text:
        text = _first_line(str(f.get("message") or ""), p) or p.outcome
    return text


def _heading(line: str, p: PropertyResult) -> bool:
    """Whether ``line`` is a message's heading: the property's id, outcome and claim."""
    return line.startswith(p.id) and bool(p.meaning) and line.endswith(p.meaning)


def _unprefixed(line: str, p: PropertyResult) -> str:
    """``line`` without a leading "<property id>...: "."""
    if line.startswith(p.id) and ": " in line:
        return line.split(": ", 1)[1]
    return line


def _first_line(message: str, p: PropertyResult) -> str:
    for raw in message.splitlines():
        line = raw.strip()
        if line and not _heading(line, p) and not line.startswith("severity: "):
            return _unprefixed(line, p)
    return ""


def findings_title(r: Results) -> str:
    """"Root causes" once the run traced findings to their causes, else "Findings"."""
    return "Root causes" if any(p.root_cause for p in r.failures()) else "Findings"


def show(x: Any) -> str:
    """An expected or actual figure, as plain text (lists and dicts flattened).

    >>> show({"accumulated": ["54.0"], "reset": ["27.0"]}), show(["72.0"]), show(None)
    ('accumulated 54.0; reset 27.0', '72.0', '—')
    """
    if x is None:
        return "—"
    if isinstance(x, dict):
        return "; ".join(f"{k} {show(v)}" for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return ", ".join(show(v) for v in x)
    return str(x)


def header_parts(r: Results) -> list[str]:
    """The run in a few phrases: profile, seed, graphs checked and their rate, dtype,
    and how many properties ended how."""
    seed = "derandomized" if r.seed is None else (
        f"seeds {', '.join(map(str, r.seed))}" if isinstance(r.seed, list) else f"seed {r.seed}")
    checks = r.kind == "check_grads"  # a team's functions: no profile or seed of gradcert's
    parts = [] if checks else [f"profile {r.profile}", seed]
    if not checks:
        c = r.conventions
        parts.append(conventions_text(bool(c.get("strict")), str(c.get("range", "full"))))
    run = f"{fmt_num(r.graphs_checked, 'int')} {'inputs' if checks else 'graphs'} checked"
    if r.duration_s:
        run += f" in {r.duration_s:.1f} s"
        if r.graphs_per_s is not None:
            run += f" ({r.graphs_per_s:,.0f} {'inputs' if checks else 'graphs'}/s)"
    parts.append(run)
    if r.engine.get("dtype"):
        parts.append(str(r.engine["dtype"]))
    if r.shards > 1:
        parts.append(f"{r.shards} shards merged")
    counts = [(o, r.count(o)) for o in ("passed", "failed", "error", "crashed", "timeout",
                                        "unsupported", "not run")]
    parts.append(f"{len(r.properties)} {'functions' if checks else 'properties'}: "
                 + ", ".join(f"{n} {o}" for o, n in counts if n))
    return parts


# -- a failure, laid out once ----------------------------------------------------


@dataclass
class FailureView:
    """One failing property, in the order a report shows it: the root cause, the claim,
    what was found, the evidence, the minimal graph and the reproducer."""

    id: str
    outcome: str
    claim: str
    found: str
    severity: Severity | None = None
    root_cause: RootCause | None = None  # only when another property or op caused it
    details: list[str] = field(default_factory=list)
    evidence: list[tuple[str, str, str, str]] = field(default_factory=list)
    worst: list[str] = field(default_factory=list)
    worst_code: str | None = None
    code: str | None = None
    reproducer: str | None = None
    others: list[str] = field(default_factory=list)  # the same property's other findings


def failure_view(p: PropertyResult) -> FailureView:
    """The :class:`FailureView` of ``p``: the message without the lines that repeat
    the claim, the summary, the graph's code, the run's settings or the reproducer
    path, which the view shows once each.

    >>> p = PropertyResult("semantics.second_backward", "semantics", "a second backward "
    ...     "accumulates", "failed", failure={"message": "semantics.second_backward failed: "
    ...     "a second backward accumulates\\n  gave 72\\n  first backward: 27\\n"
    ...     "  graph (2 nodes, 1 leaves):\\n    def build(Value):\\n"
    ...     "  target: t; profile: ci; seed: 1\\n  reproducer: r.py",
    ...     "summary": "gave 72", "code": "def build(Value):\\n"}, reproducer="r.py")
    >>> v = failure_view(p)
    >>> v.found, v.details, v.code, v.reproducer
    ('gave 72', ['first backward: 27'], 'def build(Value):', 'r.py')
    """
    f = p.failure or {}
    found = summary(p)
    code = str(f["code"]).rstrip() if f.get("code") else None
    rc = p.root_cause
    return FailureView(
        id=p.id, outcome=p.outcome, claim=p.meaning, found=found, severity=p.severity,
        root_cause=rc if rc is not None and not p.is_root_cause else None,
        details=_details(str(f.get("message") or ""), p, found, code),
        evidence=_evidence(f.get("expected"), f.get("actual"), f.get("bound")),
        worst=_worst_lines(f.get("worst")),
        worst_code=str(f["worst"]["code"]).rstrip()
        if isinstance(f.get("worst"), dict) and f["worst"].get("code") else None,
        code=code, reproducer=p.reproducer,
        others=[ln for m in p.notes.get("failures") or [] if (ln := _first_line(str(m), p))],
    )


def _details(message: str, p: PropertyResult, found: str, code: str | None) -> list[str]:
    code_lines = {ln.strip() for ln in (code or "").splitlines() if ln.strip()}
    out: list[str] = []
    in_graph = False
    for raw in message.splitlines():
        line = raw.strip()
        if not line or _heading(line, p) or _unprefixed(line, p) == found:
            continue
        if line.startswith(("target: ", "reproducer: ", "severity: ")):
            continue  # shown once each, in their own place
        if line.startswith("graph (") and line.endswith(":") and code is not None:
            in_graph = True
            continue
        if in_graph and (line in code_lines or raw.startswith("    ")):
            continue
        in_graph = False
        if line not in out:
            out.append(line)
    return out


def _evidence(expected: Any, actual: Any, bound: Any) -> list[tuple[str, str, str, str]]:
    """Rows of (what, expected, actual, bound); value and gradients aligned when the
    failure gives them as ``{"value", "grads"}``."""
    if expected is None and actual is None:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict) \
            and {"value", "grads"} <= set(expected) & set(actual):
        b = bound if isinstance(bound, dict) else {}
        rows = [("value", show(expected["value"]), show(actual["value"]), show(b.get("value")))]
        eg, ag, bg = expected["grads"] or [], actual["grads"] or [], b.get("grads") or []
        for i in range(max(len(eg), len(ag))):
            rows.append((f"d/dx{i}", show(eg[i]) if i < len(eg) else "—",
                         show(ag[i]) if i < len(ag) else "—",
                         show(bg[i]) if i < len(bg) else "—"))
        return rows
    return [("result", show(expected), show(actual), show(bound))]


def _worst_lines(worst: Any) -> list[str]:
    """The worst example found (beside the shrunk one), in a few lines."""
    if not worst:
        return []
    if not isinstance(worst, dict):
        return [show(worst)]
    out = []
    if worst.get("summary") or worst.get("message"):
        out.append(str(worst.get("summary") or worst.get("message")).strip())
    for key in ("inputs", "expected", "actual", "bound"):
        if key in worst:
            out.append(f"{key}: {show(worst[key])}")
    ratio = worst.get("ratio", worst.get("of_bound"))
    if ratio is not None:
        out.append(f"error / bound: {fmt_num(ratio, 'bound')}")
    rest = {k: v for k, v in worst.items() if k not in (
        "summary", "message", "inputs", "expected", "actual", "bound", "ratio", "of_bound",
        "code", "graph")}
    if rest:
        out.append(json.dumps(rest, default=str))
    return out
