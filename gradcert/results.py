"""The results of a certification: plain dataclasses and their JSON document.

``results.json`` (schema ``gradcert.results``, version 1) is what
``gradcert certify`` writes and what every report reads::

    {"schema": "gradcert.results", "version": 1,
     "target": "micrograd", "engine": {"name", "dtype", "ops", ...},
     "verdict": "certified" | "failed",
     "profile": "quick", "seed": 12345, "started": "2026-...Z", "duration_s": 41.2,
     "graphs_checked": 2140, "graphs_per_s": 52.0,
     "levels": {"ops": "passed", ...},
     "properties": [{"id", "level", "meaning",
                     "outcome": "passed" | "failed" | "unsupported" | "error" | "timeout"
                                | "crashed" | "not run",
                     "graphs_checked", "duration_s",
                     "worst": {"ulps", "rel", "op", "inputs"},
                     "failure": {"message", "expected", "actual", "code", "graph", ...},
                     "reproducer": "reproducers/graphs.oracle.py",
                     "notes": {...}}],
     "ops": {"log": {"value": {"count", "max_ulps", "median_ulps", "max_rel",
                               "median_rel", "worst_inputs"}, "grad": {...}}},
     "samples": [{"op", "kind", "ulps", "rel", "inputs", "nodes", "of_bound"}]}

``of_bound`` is an error over its tolerance (1 is the edge of passing): an
error of many ulps on an exact value near 0 can be well inside the bound.

Numbers that JSON cannot hold (inf, nan) are written as the strings
``"inf"``, ``"-inf"`` and ``"nan"``; ``float()`` reads them back.

While a session runs, each test appends one *record* (a JSON line) per
finished test to a file in the output directory; :func:`merge_records`
folds the records of one property (one per op, say) into one
:class:`PropertyResult`. This module imports nothing of gradcert, so
reports can depend on it alone.

>>> r = Results(target="gradcert", properties=[
...     PropertyResult("ops.values", "ops", outcome="passed", graphs_checked=3)])
>>> r.verdict, Results.from_json(r.to_json()).properties[0].graphs_checked
('certified', 3)
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BAD",
    "OUTCOMES",
    "SCHEMA",
    "VERSION",
    "PropertyResult",
    "Results",
    "ResultsError",
    "jsonable",
    "level_status",
    "merge_records",
    "ops_summary",
    "read_records",
    "verdict",
]

SCHEMA = "gradcert.results"
VERSION = 1
OUTCOMES = ("passed", "failed", "unsupported", "error", "timeout", "crashed", "not run")
BAD = frozenset({"failed", "error", "timeout", "crashed", "not run"})
# When several tests make up one property, the worst outcome wins (a property run in
# part has not been run).
_RANK = {"unsupported": 0, "passed": 1, "not run": 2, "timeout": 3, "crashed": 4, "error": 5,
         "failed": 6}


class ResultsError(ValueError):
    """A results document or record that cannot be read: says what and where."""


def jsonable(x: Any) -> Any:
    """``x`` with every non-finite float replaced by ``"inf"``, ``"-inf"`` or ``"nan"``.

    >>> jsonable({"a": [1.0, float("inf")], "b": float("nan")})
    {'a': [1.0, 'inf'], 'b': 'nan'}
    """
    if isinstance(x, float):
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if x is None or isinstance(x, (str, int, bool)):
        return x
    try:
        return jsonable(float(x))
    except (TypeError, ValueError):
        return repr(x)


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class PropertyResult:
    """One property's outcome and accuracy figures."""

    id: str
    level: str
    meaning: str = ""
    outcome: str = "passed"
    graphs_checked: int = 0
    duration_s: float = 0.0
    worst: dict[str, Any] | None = None  # {"ulps", "rel", "op", "inputs"}
    failure: dict[str, Any] | None = None  # {"message", "expected", "actual", "code", ...}
    reproducer: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ResultsError(f"property {self.id}: outcome {self.outcome!r} is not one of "
                               f"{', '.join(OUTCOMES)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PropertyResult:
        if not isinstance(d, Mapping) or "id" not in d:
            raise ResultsError(f"a property must be an object with an 'id', got {d!r:.80}")
        pid = str(d["id"])
        return cls(
            id=pid, level=str(d.get("level", pid.split(".", 1)[0])),
            meaning=str(d.get("meaning", "")), outcome=str(d.get("outcome", "error")),
            graphs_checked=int(d.get("graphs_checked") or 0),
            duration_s=_num(d.get("duration_s") or 0.0),
            worst=d.get("worst"), failure=d.get("failure"),
            reproducer=d.get("reproducer"), notes=dict(d.get("notes") or {}),
        )


def verdict(outcomes: Iterable[str]) -> str:
    """``"certified"`` when nothing failed, errored or timed out and something passed.

    >>> verdict(["passed", "unsupported"]), verdict(["passed", "timeout"]), verdict([])
    ('certified', 'failed', 'failed')
    """
    seen = set(outcomes)
    return "certified" if "passed" in seen and not seen & BAD else "failed"


def level_status(outcomes: Iterable[str]) -> str:
    """A level's status: failed if any property failed, else passed, else unsupported.

    >>> level_status(["passed", "unsupported"]), level_status(["error"]), level_status([])
    ('passed', 'failed', 'not run')
    """
    seen = set(outcomes)
    if not seen or seen == {"not run"}:
        return "not run"
    if seen & BAD:
        return "failed"
    return "passed" if "passed" in seen else "unsupported"


@dataclass
class Results:
    """A whole certification: the target, its settings and every property's result."""

    target: str
    properties: list[PropertyResult] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)
    profile: str = "quick"
    seed: int | None = None
    started: str = ""
    duration_s: float = 0.0
    ops: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return verdict(p.outcome for p in self.properties)

    @property
    def graphs_checked(self) -> int:
        return sum(p.graphs_checked for p in self.properties)

    @property
    def graphs_per_s(self) -> float | None:
        return self.graphs_checked / self.duration_s if self.duration_s > 0 else None

    def levels(self) -> dict[str, str]:
        """Each level's status, in the order the properties list them."""
        by: dict[str, list[str]] = {}
        for p in self.properties:
            by.setdefault(p.level, []).append(p.outcome)
        return {lv: level_status(o) for lv, o in by.items()}

    def property(self, pid: str) -> PropertyResult:
        for p in self.properties:
            if p.id == pid:
                return p
        raise KeyError(f"no result for property {pid!r}")

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "schema": SCHEMA, "version": VERSION, "target": self.target,
            "engine": self.engine, "verdict": self.verdict, "profile": self.profile,
            "seed": self.seed, "started": self.started, "duration_s": self.duration_s,
            "graphs_checked": self.graphs_checked, "graphs_per_s": self.graphs_per_s,
            "levels": self.levels(),
            "properties": [p.to_dict() for p in self.properties],
            "ops": self.ops, "samples": self.samples,
        })

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Any) -> Results:
        if not isinstance(d, Mapping) or d.get("schema") != SCHEMA:
            raise ResultsError(f"not a {SCHEMA} document")
        if d.get("version") != VERSION:
            raise ResultsError(f"results version {d.get('version')!r}: this gradcert reads "
                               f"version {VERSION}")
        return cls(
            target=str(d.get("target", "?")),
            properties=[PropertyResult.from_dict(p) for p in d.get("properties") or []],
            engine=dict(d.get("engine") or {}), profile=str(d.get("profile", "?")),
            seed=d.get("seed"), started=str(d.get("started", "")),
            duration_s=_num(d.get("duration_s") or 0.0), ops=dict(d.get("ops") or {}),
            samples=list(d.get("samples") or []),
        )

    @classmethod
    def from_json(cls, text: str) -> Results:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ResultsError(f"results: invalid JSON: {e}") from None

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Results:
        return cls.from_json(Path(path).read_text())


# -- records: one JSON line per finished test -------------------------------


def read_records(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every record in the given JSON-lines files; a torn last line (a worker killed
    while writing) is skipped, anything else unreadable is a :class:`ResultsError`."""
    out: list[dict[str, Any]] = []
    for path in paths:
        lines = Path(path).read_text().splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if n == len(lines):
                    continue
                raise ResultsError(f"{path}:{n}: not a JSON record") from None
            if not isinstance(rec, dict) or "id" not in rec:
                raise ResultsError(f"{path}:{n}: a record needs an 'id'")
            out.append(rec)
    return out


def merge_records(records: Sequence[Mapping[str, Any]],
                  meanings: Mapping[str, str] | None = None) -> list[PropertyResult]:
    """One :class:`PropertyResult` per property id, folding the records of its tests.

    The worst outcome wins; graphs checked and durations add up; the worst
    error is the largest in ulps; the first failure (and its reproducer) is
    kept, and the others are listed under ``notes["failures"]``.

    >>> rs = merge_records([
    ...     {"id": "ops.values", "outcome": "passed", "graphs_checked": 5,
    ...      "worst": {"ulps": 1.0, "op": "log"}},
    ...     {"id": "ops.values", "outcome": "unsupported", "graphs_checked": 0},
    ...     {"id": "ops.values", "outcome": "failed", "graphs_checked": 2,
    ...      "worst": {"ulps": 9.0, "op": "exp"}, "failure": {"message": "exp is off"}}])
    >>> r = rs[0]
    >>> r.outcome, r.graphs_checked, r.worst["op"], r.failure["message"]
    ('failed', 7, 'exp', 'exp is off')
    """
    meanings = meanings or {}
    merged: dict[str, PropertyResult] = {}
    for rec in records:
        pid = str(rec["id"])
        outcome = str(rec.get("outcome", "error"))
        if outcome not in OUTCOMES:
            outcome = "error"
        new = PropertyResult(
            id=pid, level=str(rec.get("level") or pid.split(".", 1)[0]),
            meaning=str(rec.get("meaning") or meanings.get(pid, "")), outcome=outcome,
            graphs_checked=int(rec.get("graphs_checked") or 0),
            duration_s=_num(rec.get("duration_s") or 0.0),
            worst=rec.get("worst"), failure=rec.get("failure"),
            reproducer=rec.get("reproducer"), notes=dict(rec.get("notes") or {}),
        )
        if rec.get("item"):
            new.notes.setdefault("tests", {})[str(rec["item"])] = outcome
        old = merged.get(pid)
        merged[pid] = new if old is None else _fold(old, new)
    return list(merged.values())


def _fold(a: PropertyResult, b: PropertyResult) -> PropertyResult:
    worse = b if _RANK[b.outcome] > _RANK[a.outcome] else a
    worst = a.worst
    if b.worst and (not a.worst or _num(b.worst.get("ulps")) > _num(a.worst.get("ulps"))
                    or math.isnan(_num(a.worst.get("ulps")))):
        worst = b.worst
    notes = {**b.notes, **a.notes}
    notes["tests"] = {**b.notes.get("tests", {}), **a.notes.get("tests", {})}
    failure, reproducer = a.failure, a.reproducer
    if b.failure:
        if failure is None or _RANK[b.outcome] > _RANK[a.outcome]:
            if failure is not None:
                notes.setdefault("failures", []).append(failure.get("message", ""))
            failure, reproducer = b.failure, b.reproducer
        else:
            notes.setdefault("failures", []).append(b.failure.get("message", ""))
    return PropertyResult(
        id=a.id, level=a.level, meaning=a.meaning or b.meaning, outcome=worse.outcome,
        graphs_checked=a.graphs_checked + b.graphs_checked,
        duration_s=a.duration_s + b.duration_s, worst=worst, failure=failure,
        reproducer=reproducer, notes=notes,
    )


def ops_summary(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per op and kind ("value"/"grad"): count, max and median error in ulps and
    relative terms, and the inputs of the worst sample.

    >>> s = ops_summary([{"op": "log", "kind": "value", "ulps": 0.0, "rel": 0.0},
    ...                  {"op": "log", "kind": "value", "ulps": 2.0, "rel": 1e-16,
    ...                   "inputs": [0.5]}])
    >>> s["log"]["value"]["max_ulps"], s["log"]["value"]["worst_inputs"]
    (2.0, [0.5])
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for s in samples:
        if s.get("op") is not None:  # whole-graph errors have no op
            groups.setdefault((str(s.get("op")), str(s.get("kind", "grad"))), []).append(s)
    out: dict[str, Any] = {}
    for (op, kind), rows in sorted(groups.items()):
        ulps = [u for u in (_num(r.get("ulps")) for r in rows) if not math.isnan(u)]
        rel = [x for x in (_num(r.get("rel")) for r in rows) if not math.isnan(x)]
        of_bound = [x for x in (_num(r.get("of_bound")) for r in rows) if not math.isnan(x)]
        worst = max(rows, key=lambda r: -1.0 if math.isnan(_num(r.get("ulps")))
                    else _num(r.get("ulps")))
        out.setdefault(op, {})[kind] = {
            "count": len(rows),
            "max_ulps": max(ulps, default=math.nan),
            "median_ulps": statistics.median(ulps) if ulps else math.nan,
            "max_rel": max(rel, default=math.nan),
            "median_rel": statistics.median(rel) if rel else math.nan,
            "max_of_bound": max(of_bound, default=math.nan),
            "worst_inputs": worst.get("inputs"),
        }
    return out
