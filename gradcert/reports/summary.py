"""What every report shows, computed once from a results document.

Reports read the results as the plain JSON document ``certify`` writes
(``results.json``), so a report can be made from a file on any machine.
Missing fields show as a dash: older or partial results still render.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gradcert.results import BAD, OUTCOMES, level_status, ops_summary

__all__ = ["LEVELS", "OUTCOMES", "OpAccuracy", "Summary", "fmt_num", "summarize"]

LEVELS = ("ops", "graphs", "semantics", "robustness", "optimizer", "models")


@dataclass(frozen=True)
class OpAccuracy:
    """Error statistics of one op, for values or for gradients."""

    op: str
    kind: str  # "value" or "grad"
    count: int
    max_ulps: float
    median_ulps: float
    max_rel: float
    median_rel: float
    max_of_bound: float = math.nan  # the largest error over its tolerance
    worst_inputs: Any = None


@dataclass(frozen=True)
class Summary:
    """The figures a report shows, in display order."""

    target: str
    verdict: str
    profile: str
    seed: Any
    duration_s: float | None
    graphs_checked: int
    properties: list[dict[str, Any]]
    levels: dict[str, str]
    accuracy: list[OpAccuracy]
    failures: list[dict[str, Any]]
    samples: list[dict[str, Any]] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)

    @property
    def graphs_per_s(self) -> float | None:
        if not self.duration_s:
            return None
        return self.graphs_checked / self.duration_s


def _accuracy(doc: Mapping[str, Any]) -> list[OpAccuracy]:
    """Per-op statistics: from the samples when there are any, else the ``ops`` table."""
    samples = doc.get("samples") or []
    table = ops_summary(samples) if samples else (doc.get("ops") or {})
    out = []
    for op, kinds in sorted(table.items()):
        for kind in ("value", "grad"):
            st = (kinds or {}).get(kind)
            if not st:
                continue
            out.append(OpAccuracy(
                op=op, kind=kind, count=int(st.get("count", 0)),
                max_ulps=_float(st.get("max_ulps")), median_ulps=_float(st.get("median_ulps")),
                max_rel=_float(st.get("max_rel")), median_rel=_float(st.get("median_rel")),
                max_of_bound=_float(st.get("max_of_bound")), worst_inputs=st.get("worst_inputs"),
            ))
    return out


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def summarize(doc: Mapping[str, Any]) -> Summary:
    """The :class:`Summary` of one results document.

    >>> s = summarize({"target": "gradcert", "verdict": "certified", "properties": [
    ...     {"id": "ops.values", "level": "ops", "outcome": "passed", "graphs_checked": 40}]})
    >>> s.levels["ops"], s.graphs_checked
    ('passed', 40)
    """
    props = sorted(doc.get("properties") or [], key=_prop_order)
    by_level: dict[str, list[str]] = {}
    for p in props:
        by_level.setdefault(str(p.get("level", "?")), []).append(str(p.get("outcome", "?")))
    levels = {lv: level_status(by_level.get(lv, [])) for lv in LEVELS}
    for lv in by_level:
        levels.setdefault(lv, level_status(by_level[lv]))
    return Summary(
        target=str(doc.get("target", "?")),
        verdict=str(doc.get("verdict", "?")),
        profile=str(doc.get("profile", "?")),
        seed=doc.get("seed"),
        duration_s=_float_or_none(doc.get("duration_s")),
        graphs_checked=sum(int(p.get("graphs_checked") or 0) for p in props),
        properties=props,
        levels=levels,
        accuracy=_accuracy(doc),
        failures=[p for p in props if p.get("outcome") in BAD],
        samples=list(doc.get("samples") or []),
        engine=dict(doc.get("engine") or {}),
    )


def _prop_order(p: Mapping[str, Any]) -> tuple[int, str]:
    level = p.get("level")
    return (LEVELS.index(level) if level in LEVELS else len(LEVELS), str(p.get("id", "")))


def _float_or_none(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def fmt_num(x: Any, kind: str = "g") -> str:
    """A number as a report shows it: ulps as integers, other values to 3 digits.

    >>> fmt_num(3.0, "ulps"), fmt_num(1.5e-17), fmt_num(None), fmt_num(float("inf"), "ulps")
    ('3', '1.5e-17', '—', 'inf')
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if kind == "ulps":
        return f"{v:.0f}" if v < 1e6 else f"{v:.2e}"
    return f"{v:.3g}"
