"""Results as JUnit XML, for CI systems that read test reports.

One ``<testcase>`` per property (for check_grads, per function checked),
named by its id, with the verdict table's word for its outcome: a wrong
number is a ``<failure>``; an engine that raised, crashed or timed out, or a
property not run, an ``<error>``; an unsupported one ``<skipped>``.
``gradcert certify`` writes pytest's own junit.xml (one case per test);
this renders any results, check_grads' included.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gradcert.reports import figures
from gradcert.results import Results

__all__ = ["JUNIT", "to_junit"]

JUNIT = {"failed": "failure", "error": "error", "crashed": "error", "timeout": "error",
         "not run": "error", "unsupported": "skipped"}
"""JUnit's element for each outcome (passed: none)."""


def to_junit(r: Results) -> str:
    """Render results as a JUnit XML document.

    >>> from gradcert.results import PropertyResult
    >>> xml = to_junit(Results("eng", [PropertyResult("ops.values", "ops"),
    ...     PropertyResult("ops.gradients", "ops", outcome="failed",
    ...                    failure={"message": "log' is off"})]))
    >>> 'failures="1"' in xml and "log' is off" in xml
    True
    """
    suite = ET.Element("testsuite", name=f"gradcert {r.kind} {r.target}",
                       tests=str(len(r.properties)), time=f"{r.duration_s:.3f}")
    counts = {"failure": 0, "error": 0, "skipped": 0}
    for p in r.ordered():
        case = ET.SubElement(suite, "testcase", classname=f"gradcert.{p.level}", name=p.id,
                             time=f"{p.duration_s:.3f}")
        kind = JUNIT.get(p.outcome)
        if kind is None:
            continue
        counts[kind] += 1
        message = str((p.failure or {}).get("message") or "")
        first = (figures.note(p) or p.outcome) if kind == "skipped" else figures.summary(p)
        el = ET.SubElement(case, kind, type=p.outcome, message=first[:500])
        el.text = message or first
    for kind, n in counts.items():
        suite.set("failures" if kind == "failure" else "errors" if kind == "error"
                  else "skipped", str(n))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
