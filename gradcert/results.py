"""The results of a certification: the one results model and its JSON document.

``results.json`` (schema ``gradcert.results``, version 1) is what
``gradcert certify`` writes and what every report reads, through
:meth:`Results.load`::

    {"schema": "gradcert.results", "version": 1,
     "target": "micrograd", "engine": {"name", "dtype", "ops", ...},
     "verdict": "certified" | "failed",
     "profile": "quick", "seed": 12345, "started": "2026-...Z", "duration_s": 41.2,
     "graphs_checked": 2140, "graphs_per_s": 52.0,
     "levels": {"ops": "passed", ...},
     "properties": [{"id", "level", "meaning", "outcome" (one of OUTCOMES),
                     "graphs_checked", "duration_s",
                     "worst": {"ulps", "rel", "of_bound", "op", "inputs"},
                     "failure": {"message", "summary", "expected", "actual", "code",
                                 "graph", "severity", "root_cause", "worst"},
                     "reproducer": "reproducers/graphs.oracle.py",
                     "notes": {...}}],
     "ops": {"log": {"value": {"count", "max_of_bound", "median_of_bound", "max_ulps",
                               "median_ulps", "max_rel", "median_rel", "worst"},
                     "grad": {...}}},
     "samples": [{"op", "kind", "ulps", "rel", "of_bound", "inputs", "nodes"}]}

``of_bound`` is an error over its tolerance bound (1 is the edge of passing):
the figure reports lead with. An error of many ulps on an exact value near 0
can be well inside the bound. A failure may carry a ``severity``
(``{"class", "ratio"}``), a ``root_cause`` (``{"op", "property", "text"}``)
and a ``worst`` example beside the shrunk one.

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
    "KINDS",
    "LEVELS",
    "OUTCOMES",
    "SCHEMA",
    "SEVERITY_CLASSES",
    "VERSION",
    "OpStats",
    "PropertyResult",
    "Results",
    "ResultsError",
    "RootCause",
    "Sample",
    "Severity",
    "jsonable",
    "level_status",
    "merge_records",
    "ops_summary",
    "read_records",
    "verdict",
]

SCHEMA = "gradcert.results"
VERSION = 1
# The levels of the suite, in the order a verdict lists them: single ops up to models,
# with the engine's behaviour at the edges (depth, size, domain) as a level of its own.
LEVELS = ("ops", "graphs", "semantics", "robustness", "optimizer", "models")
KINDS = ("certify", "check_grads")  # what made the results: an engine's or functions' checks
OUTCOMES = ("passed", "failed", "error", "crashed", "timeout", "unsupported", "not run")
BAD = frozenset({"failed", "error", "crashed", "timeout"})  # a finding against the engine
SEVERITY_CLASSES = ("wrong derivative", "wrong value", "inaccurate", "range", "crash", "hang")
# When several tests make up one property, the worst outcome wins.
_RANK = {"unsupported": 0, "passed": 1, "not run": 2, "timeout": 3, "error": 4, "crashed": 5,
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


# -- one compared number, and the statistics of an op ---------------------------


@dataclass(frozen=True)
class Sample:
    """One number an engine computed, compared with the exact one.

    ``kind`` is what was compared (a ``value``, a ``grad``ient, an optimizer's
    ``param``eter); ``op`` the op it came from (None: the output of a whole
    graph of ``nodes`` nodes); ``of_bound`` the error over its tolerance bound.

    >>> s = Sample("grad", op="tanh", ulps=4.4e18, rel=1.0, of_bound=0.015, inputs=(20.0,))
    >>> s.passed, s.exact_near_zero, s.magnitude, round(s.bits)
    (True, True, 20.0, 62)
    """

    kind: str
    op: str | None = None
    ulps: float = math.nan
    rel: float = math.nan
    of_bound: float = math.nan
    inputs: tuple[Any, ...] | None = None
    nodes: int | None = None

    @property
    def passed(self) -> bool:
        """Within its bound (False when no bound was recorded)."""
        return self.of_bound <= 1.0

    @property
    def bits(self) -> float:
        """Herbie's bits of error, log2(1 + ulps): 0 when exact, 64 at worst."""
        if math.isnan(self.ulps):
            return math.nan
        return 64.0 if math.isinf(self.ulps) else min(64.0, math.log2(1.0 + self.ulps))

    @property
    def exact_near_zero(self) -> bool:
        """Within the bound, yet with no correct significant bit: the exact value is
        about 0 at the scale of this computation, so ulps and relative error say
        nothing about accuracy here (the absolute error is what the bound limits)."""
        return self.passed and (self.ulps >= 2.0**52 or self.rel >= 0.5)

    @property
    def magnitude(self) -> float | None:
        """The largest finite magnitude among the inputs (None without inputs)."""
        mags = [abs(x) for x in (_num(v) for v in self.inputs or ()) if math.isfinite(x)]
        return max(mags) if mags else None

    def to_dict(self) -> dict[str, Any]:
        d = {"op": self.op, "kind": self.kind, "ulps": self.ulps, "rel": self.rel,
             "of_bound": self.of_bound, "inputs": None if self.inputs is None
             else list(self.inputs), "nodes": self.nodes}
        return {k: v for k, v in d.items()
                if k == "op" or not (v is None or (isinstance(v, float) and math.isnan(v)))}

    @classmethod
    def from_dict(cls, d: Any) -> Sample:
        if isinstance(d, Sample):
            return d
        if not isinstance(d, Mapping):
            raise ResultsError(f"a sample must be an object, got {d!r:.80}")
        inputs = d.get("inputs")
        nodes = d.get("nodes")
        return cls(kind=str(d.get("kind", "grad")),
                   op=None if d.get("op") is None else str(d["op"]),
                   ulps=_num(d.get("ulps")), rel=_num(d.get("rel")),
                   of_bound=_num(d.get("of_bound")),
                   inputs=tuple(inputs) if isinstance(inputs, (list, tuple)) else
                   (None if inputs is None else (inputs,)),
                   nodes=int(nodes) if isinstance(nodes, (int, float)) else None)


def _worse(a: Sample, b: Sample) -> bool:
    """Whether ``a`` is a worse error than ``b``: by fraction of the bound where both
    have one (what passing is judged by), else by ulps; nan is never worse."""
    if not (math.isnan(a.of_bound) or math.isnan(b.of_bound)):
        return a.of_bound > b.of_bound
    if math.isnan(b.of_bound) != math.isnan(a.of_bound):
        return math.isnan(b.of_bound)
    return a.ulps > b.ulps or (math.isnan(b.ulps) and not math.isnan(a.ulps))


def _worst_of(samples: Iterable[Sample]) -> Sample | None:
    """The worst of ``samples`` (see :func:`_worse`), None if there are none."""
    worst = None
    for s in samples:
        if worst is None or _worse(s, worst):
            worst = s
    return worst


@dataclass(frozen=True)
class OpStats:
    """The errors of one op's values or gradients: max and median as a fraction of
    the bound, in ulps and relative terms, and the worst sample (the one whose
    fraction of the bound is the maximum shown)."""

    op: str
    kind: str  # "value" or "grad"
    count: int
    max_of_bound: float = math.nan
    median_of_bound: float = math.nan
    max_ulps: float = math.nan
    median_ulps: float = math.nan
    max_rel: float = math.nan
    median_rel: float = math.nan
    worst: Sample | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k) for k in (
            "count", "max_of_bound", "median_of_bound", "max_ulps", "median_ulps", "max_rel",
            "median_rel")}
        if self.worst is not None:
            d["worst"] = self.worst.to_dict()
        return d

    @classmethod
    def from_dict(cls, op: str, kind: str, d: Mapping[str, Any]) -> OpStats:
        worst = d.get("worst")
        if worst is None and d.get("worst_inputs") is not None:  # before "worst" existed
            worst = {"kind": kind, "op": op, "inputs": d["worst_inputs"],
                     "ulps": d.get("max_ulps"), "of_bound": d.get("max_of_bound")}
        return cls(op=op, kind=kind, count=int(d.get("count") or 0),
                   **{k: _num(d.get(k)) for k in ("max_of_bound", "median_of_bound",
                                                   "max_ulps", "median_ulps", "max_rel",
                                                   "median_rel")},
                   worst=None if worst is None else Sample.from_dict(worst))


def _stat(values: Iterable[float], fn: Any) -> float:
    xs = [x for x in values if not math.isnan(x)]
    return float(fn(xs)) if xs else math.nan


def ops_summary(samples: Iterable[Sample | Mapping[str, Any]]) -> dict[str, dict[str, OpStats]]:
    """Per op and kind ("value"/"grad"): :class:`OpStats`. Whole-graph samples (no op)
    and optimizer parameters belong to no op and are left out.

    >>> s = ops_summary([{"op": "log", "kind": "value", "ulps": 9.0, "of_bound": 0.1},
    ...                  {"op": "log", "kind": "value", "ulps": 2.0, "of_bound": 0.5,
    ...                   "inputs": [0.5]}])
    >>> st = s["log"]["value"]
    >>> st.max_of_bound, st.max_ulps, st.worst.inputs, st.worst.ulps
    (0.5, 9.0, (0.5,), 2.0)
    """
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in map(Sample.from_dict, samples):
        if s.op is not None and s.kind in ("value", "grad"):
            groups.setdefault((s.op, s.kind), []).append(s)
    out: dict[str, dict[str, OpStats]] = {}
    for (op, kind), rows in sorted(groups.items()):
        out.setdefault(op, {})[kind] = OpStats(
            op=op, kind=kind, count=len(rows),
            max_of_bound=_stat((r.of_bound for r in rows), max),
            median_of_bound=_stat((r.of_bound for r in rows), statistics.median),
            max_ulps=_stat((r.ulps for r in rows), max),
            median_ulps=_stat((r.ulps for r in rows), statistics.median),
            max_rel=_stat((r.rel for r in rows), max),
            median_rel=_stat((r.rel for r in rows), statistics.median),
            worst=_worst_of(rows))
    return out


# -- one property ------------------------------------------------------------------


@dataclass(frozen=True)
class Severity:
    """How bad a finding is: its class (one of SEVERITY_CLASSES) and error over bound."""

    klass: str
    ratio: float = math.nan


@dataclass(frozen=True)
class RootCause:
    """What a failure comes from: an op and the property that shows it, in words."""

    op: str | None
    property: str | None
    text: str


@dataclass
class PropertyResult:
    """One property's outcome and accuracy figures."""

    id: str
    level: str
    meaning: str = ""
    outcome: str = "passed"
    graphs_checked: int = 0
    duration_s: float = 0.0
    worst: dict[str, Any] | None = None  # a sample: {"ulps", "rel", "of_bound", "op", ...}
    failure: dict[str, Any] | None = None  # {"message", "expected", "actual", "code", ...}
    reproducer: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ResultsError(f"property {self.id}: outcome {self.outcome!r} is not one of "
                               f"{', '.join(OUTCOMES)}")

    @property
    def bad(self) -> bool:
        """A finding against the engine (failed, error, crashed, timeout)."""
        return self.outcome in BAD

    @property
    def worst_sample(self) -> Sample | None:
        """The worst error recorded while the property ran, as a :class:`Sample`."""
        return Sample.from_dict(self.worst) if isinstance(self.worst, Mapping) else None

    @property
    def severity(self) -> Severity | None:
        """The failure's severity, when the run classified it.

        >>> p = PropertyResult("ops.values", "ops", outcome="failed", failure={
        ...     "severity": {"class": "wrong value", "ratio": 3e5}})
        >>> p.severity
        Severity(klass='wrong value', ratio=300000.0)
        """
        sev = (self.failure or {}).get("severity")
        if not isinstance(sev, Mapping) or not sev.get("class"):
            return None
        return Severity(str(sev["class"]), _num(sev.get("ratio")))

    @property
    def root_cause(self) -> RootCause | None:
        """What the failure comes from, when the run traced it."""
        rc = (self.failure or {}).get("root_cause")
        if not isinstance(rc, Mapping):
            return None
        return RootCause(None if rc.get("op") is None else str(rc["op"]),
                         None if rc.get("property") is None else str(rc["property"]),
                         str(rc.get("text") or ""))

    @property
    def is_root_cause(self) -> bool:
        """A finding not traced to another property's failure."""
        rc = self.root_cause
        return self.bad and (rc is None or rc.property in (None, self.id))

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
    """``"certified"`` when something passed and everything else passed or is
    unsupported: a finding or a property not run is no certification.

    >>> verdict(["passed", "unsupported"]), verdict(["passed", "crashed"]), verdict([])
    ('certified', 'failed', 'failed')
    >>> verdict(["passed", "not run"])
    'failed'
    """
    seen = set(outcomes)
    return "certified" if "passed" in seen and seen <= {"passed", "unsupported"} else "failed"


def level_status(outcomes: Iterable[str]) -> str:
    """A level's status: failed if any property has a finding, incomplete if some
    were not run, else passed, else unsupported.

    >>> level_status(["passed", "unsupported"]), level_status(["timeout"]), level_status([])
    ('passed', 'failed', 'not run')
    >>> level_status(["passed", "not run"]), level_status(["not run"])
    ('incomplete', 'not run')
    """
    seen = set(outcomes)
    if not seen or seen == {"not run"}:
        return "not run"
    if seen & BAD:
        return "failed"
    if "not run" in seen:
        return "incomplete" if seen & {"passed", "unsupported"} else "not run"
    return "passed" if "passed" in seen else "unsupported"


def _level_order(p: PropertyResult) -> int:
    return LEVELS.index(p.level) if p.level in LEVELS else len(LEVELS)


# -- the declared conventions ----------------------------------------------------

KINK = "relu'(0) anywhere in [0, 1]"
FLUSH = "a result whose exact value is below 2**-1022 may be 0"


def conventions(strict: bool = False, range: str = "full") -> dict[str, Any]:
    """The conventions a certification judged by (docs/conventions.md): the kink and
    flush conventions (refused with ``strict``: relu'(0) must be 0, no flush) and the
    range of inputs and exact intermediates (``"normal"``: 1e-150..1e150, zero included).

    >>> conventions()["kink"], conventions(strict=True)["flush"]
    ("relu'(0) anywhere in [0, 1]", 'refused (strict)')
    """
    return {"strict": bool(strict), "kink": "relu'(0) = 0 (strict)" if strict else KINK,
            "flush": "refused (strict)" if strict else FLUSH, "range": range}


def conventions_text(strict: bool = False, range: str = "full") -> str:
    """The conventions in one phrase, for headers.

    >>> conventions_text()
    "conventions: relu'(0) in [0, 1], subnormal results may flush to 0, range full"
    >>> conventions_text(True, "normal")
    "strict (relu'(0) = 0, no flush), range normal (1e-150..1e150)"
    """
    head = ("strict (relu'(0) = 0, no flush)" if strict
            else "conventions: relu'(0) in [0, 1], subnormal results may flush to 0")
    return f"{head}, range {range}" + (" (1e-150..1e150)" if range == "normal" else "")


# -- a whole certification -----------------------------------------------------


@dataclass
class Results:
    """A whole certification: the target, its settings and every property's result.

    ``samples`` are :class:`Sample` (dicts are converted); ``ops`` is computed from
    them when there are any.

    >>> r = Results("eng", [
    ...     PropertyResult("semantics.fan_out", "semantics", outcome="failed", failure={
    ...         "root_cause": {"op": "tanh", "property": "ops.values", "text": "tanh"}}),
    ...     PropertyResult("ops.values", "ops", outcome="failed")],
    ...     samples=[{"op": "tanh", "kind": "value", "ulps": 40.0, "of_bound": 3.0}])
    >>> [p.id for p in r.failures()], r.failing_ops(), r.levels()["graphs"]
    (['ops.values', 'semantics.fan_out'], {'tanh'}, 'not run')
    >>> r.accuracy()[0].max_of_bound
    3.0
    """

    target: str
    properties: list[PropertyResult] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)
    profile: str = "quick"
    seed: int | list[int | None] | None = None  # a list for merged shards
    started: str = ""
    duration_s: float = 0.0
    ops: dict[str, dict[str, OpStats]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    shards: int = 1
    kind: str = "certify"  # or "check_grads": checks of a team's own functions
    conventions: dict[str, Any] = field(default_factory=conventions)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ResultsError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        self.samples = [Sample.from_dict(s) for s in self.samples]
        if self.samples:  # the samples are the source; ``ops`` stands alone only without them
            self.ops = ops_summary(self.samples)
        self.ops = {op: {k: st if isinstance(st, OpStats) else OpStats.from_dict(op, k, st)
                         for k, st in (kinds or {}).items() if k in ("value", "grad") and st}
                    for op, kinds in self.ops.items()}

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
        """Each level's status: for a certification every level of LEVELS in order
        ("not run" when no property of it ran), then any other level the properties
        name."""
        by: dict[str, list[str]] = {lv: [] for lv in LEVELS} if self.kind == "certify" else {}
        for p in self.properties:
            by.setdefault(p.level, []).append(p.outcome)
        return {lv: level_status(o) for lv, o in by.items()}

    def ordered(self) -> list[PropertyResult]:
        """The properties by level (in LEVELS order), each level in its own order."""
        return sorted(self.properties, key=_level_order)

    def property(self, pid: str) -> PropertyResult:
        for p in self.properties:
            if p.id == pid:
                return p
        raise KeyError(f"no result for property {pid!r}")

    def count(self, *outcomes: str) -> int:
        """How many properties have one of ``outcomes``."""
        return sum(p.outcome in outcomes for p in self.properties)

    def failures(self) -> list[PropertyResult]:
        """The properties with a finding, root causes first, each group by level."""
        bad = [p for p in self.ordered() if p.bad]
        return [p for p in bad if p.is_root_cause] + [p for p in bad if not p.is_root_cause]

    def accuracy(self) -> list[OpStats]:
        """Every op's statistics, by op name, values before gradients."""
        return [kinds[k] for _, kinds in sorted(self.ops.items())
                for k in ("value", "grad") if k in kinds]

    def failing_ops(self) -> set[str]:
        """Ops with an error beyond the bound, a failed ops-level test, or named as a
        root cause."""
        out = {st.op for st in self.accuracy() if st.max_of_bound > 1.0}
        for p in self.properties:
            if p.level == "ops":
                out |= {str(item) for item, o in (p.notes.get("tests") or {}).items()
                        if o in BAD}
            rc = p.root_cause
            if p.bad and rc is not None and rc.op:
                out.add(rc.op)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = {"schema": SCHEMA, "version": VERSION, "target": self.target,
             "engine": self.engine, "verdict": self.verdict, "profile": self.profile,
             "seed": self.seed, "started": self.started, "duration_s": self.duration_s,
             "graphs_checked": self.graphs_checked, "graphs_per_s": self.graphs_per_s,
             "levels": self.levels(),
             "properties": [p.to_dict() for p in self.properties],
             "ops": {op: {k: st.to_dict() for k, st in kinds.items()}
                     for op, kinds in self.ops.items()},
             "samples": [s.to_dict() for s in self.samples]}
        if self.kind == "certify":
            d["conventions"] = dict(self.conventions)
        if self.shards > 1:
            d["shards"] = self.shards
        if self.kind != "certify":
            d["kind"] = self.kind
        return jsonable(d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Any) -> Results:
        if not isinstance(d, Mapping) or d.get("schema") != SCHEMA:
            raise ResultsError(f"not a gradcert results document (expected a JSON object "
                               f"with \"schema\": \"{SCHEMA}\")")
        if d.get("version") != VERSION:
            raise ResultsError(f"results version {d.get('version')!r}: this gradcert reads "
                               f"version {VERSION}")
        ops = d.get("ops") or {}
        if not isinstance(ops, Mapping):
            raise ResultsError(f"\"ops\" must be an object, got {ops!r:.80}")
        return cls(
            target=str(d.get("target", "?")),
            properties=[PropertyResult.from_dict(p) for p in d.get("properties") or []],
            engine=dict(d.get("engine") or {}), profile=str(d.get("profile", "?")),
            seed=d.get("seed"), started=str(d.get("started", "")),
            duration_s=_num(d.get("duration_s") or 0.0),
            ops={str(op): dict(kinds or {}) for op, kinds in ops.items()},
            samples=list(d.get("samples") or []), shards=int(d.get("shards") or 1),
            kind=str(d.get("kind") or "certify"),
            conventions=dict(d.get("conventions") or conventions()),
        )

    @classmethod
    def from_json(cls, text: str) -> Results:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ResultsError(f"is not JSON: {e}") from None

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read ``path``; a :class:`ResultsError` naming the file says what is wrong."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ResultsError(f"cannot read {path}: {e.strerror or e}") from None
        try:
            return cls.from_json(text)
        except ResultsError as e:
            raise ResultsError(f"{path} {e}" if str(e).startswith("is not") else
                               f"{path}: {e}") from None

    @classmethod
    def merge(cls, shards: Sequence[Results]) -> Results:
        """One result from shards of one target (other seeds, other ``-k`` subsets).

        A property run in several shards is folded as the tests of one property
        are (:func:`merge_records`): the worst outcome, the sum of graphs checked,
        the worst error. Samples are concatenated and the per-op figures
        recomputed; ``duration_s`` is the total time of all shards.

        >>> a = Results("t", [PropertyResult("ops.values", "ops", graphs_checked=3)], seed=1)
        >>> b = Results("t", [PropertyResult("ops.values", "ops", "", "failed", 2)], seed=2)
        >>> m = Results.merge([a, b])
        >>> m.verdict, m.properties[0].graphs_checked, m.seed, m.shards
        ('failed', 5, [1, 2], 2)
        """
        if not shards:
            raise ResultsError("nothing to merge: give at least one results file")
        first = shards[0]
        for i, r in enumerate(shards[1:], 2):
            if r.target != first.target:
                raise ResultsError(f"shard {i} has target {r.target!r}, shard 1 has "
                                   f"{first.target!r}: only shards of one target merge")
        props = merge_records([p.to_dict() for r in shards for p in r.properties])
        seeds: list[int | None] = []
        for r in shards:
            seeds.extend(r.seed if isinstance(r.seed, list) else [r.seed])
        samples = [s for r in shards for s in r.samples]
        return cls(target=first.target, properties=props, engine=first.engine,
                   profile=first.profile, seed=seeds, started=first.started,
                   duration_s=sum(r.duration_s for r in shards),
                   ops={} if samples else first.ops, samples=samples,
                   shards=sum(r.shards for r in shards), kind=first.kind,
                   conventions=first.conventions)


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
    error is the largest fraction of its bound (or in ulps, without bounds);
    the first failure (and its reproducer) is kept, and the others are listed
    under ``notes["failures"]``.

    >>> rs = merge_records([
    ...     {"id": "ops.values", "outcome": "passed", "graphs_checked": 5,
    ...      "worst": {"ulps": 9.0, "of_bound": 0.1, "op": "log"}},
    ...     {"id": "ops.values", "outcome": "unsupported", "graphs_checked": 0},
    ...     {"id": "ops.values", "outcome": "failed", "graphs_checked": 2,
    ...      "worst": {"ulps": 2.0, "of_bound": 4.0, "op": "exp"},
    ...      "failure": {"message": "exp is off"}}])
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
    wa, wb = a.worst_sample, b.worst_sample
    worst = b.worst if wb is not None and (wa is None or _worse(wb, wa)) else a.worst
    notes = {**b.notes, **a.notes}
    notes["tests"] = {**b.notes.get("tests", {}), **a.notes.get("tests", {})}
    if not notes["tests"]:
        del notes["tests"]
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
