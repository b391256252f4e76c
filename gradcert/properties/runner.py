"""How a conformance property runs: profiles, the per-test check context, and how a
finding becomes a readable failure with a reproducer.

Each property is a pytest test that takes the ``gradcert_check`` fixture (a
:class:`Check`). It draws examples with hypothesis under the profile's
settings, runs them on the engine through its host
(:mod:`gradcert.properties.engine`), and raises a :class:`Finding` when the
engine is wrong; :meth:`Check.examples` lets hypothesis shrink it, then
:meth:`Check.fail` writes the reproducer and fails the test with a message
that needs no knowledge of the test's code. An engine that goes over its CPU
limit or kills its host stops the property at once (:class:`EngineTimeout`,
:class:`EngineCrashed`), with the example's graph.

>>> PROFILES["ci"].derandomize, PROFILES["quick"].examples <= PROFILES["thorough"].examples
(True, True)
>>> property_id("gradcert/properties/suite/semantics.py", "test_fan_out")
'semantics.fan_out'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradcert.graph import Graph, to_python
from gradcert.properties import registry

__all__ = [
    "PROFILES",
    "Check",
    "Config",
    "EngineCrashed",
    "EngineRaised",
    "EngineTimeout",
    "Finding",
    "Profile",
    "TimedOut",
    "property_id",
]


@dataclass(frozen=True)
class Profile:
    """How hard a certification looks. ``examples``: hypothesis examples per graph
    property; ``op_examples``: per op. Limits are CPU seconds of the engine's host, so a
    loaded machine does not change a verdict; ``test_timeout`` is a wall-clock backstop
    for the whole test (pytest-timeout's), far above what the CPU limits allow."""

    name: str
    examples: int
    op_examples: int
    derandomize: bool
    database: bool
    example_cpu: float  # one request of an example on the engine; beyond it: "timeout"
    test_timeout: float  # a whole test, wall clock (pytest-timeout's backstop)
    chain_cpu: float  # one sum() chain of robustness.chain_10k / deep_chain
    max_nodes: int  # random graphs' size
    deep_depths: tuple[int, ...]  # robustness.deep_chain's ladder
    large_nodes: int  # robustness.large_graph's size
    large_cpu: float  # CPU seconds for its forward + backward


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", examples=20, op_examples=20, derandomize=False, database=True,
                     example_cpu=10.0, test_timeout=3000.0, chain_cpu=100.0, max_nodes=12,
                     deep_depths=(2_000, 20_000, 100_000), large_nodes=100_000,
                     large_cpu=60.0),
    "ci": Profile("ci", examples=200, op_examples=100, derandomize=True, database=False,
                  example_cpu=20.0, test_timeout=9000.0, chain_cpu=300.0, max_nodes=20,
                  deep_depths=(2_000, 5_000, 20_000, 50_000, 100_000), large_nodes=100_000,
                  large_cpu=60.0),
    "thorough": Profile("thorough", examples=1000, op_examples=500, derandomize=False,
                        database=True, example_cpu=30.0, test_timeout=36000.0,
                        chain_cpu=1200.0, max_nodes=30,
                        deep_depths=(2_000, 5_000, 10_000, 20_000, 50_000, 100_000),
                        large_nodes=100_000, large_cpu=60.0),
}


@dataclass(frozen=True)
class Config:
    """What a session certifies and how: the target (or the command of a host that speaks
    for an engine), profile, seed and output directory."""

    target: str | None = None
    profile: Profile = field(default_factory=lambda: PROFILES["quick"])
    seed: int | None = None
    out: Path | None = None
    host: tuple[str, ...] | None = None
    load_cpu: float | None = None  # CPU seconds to load the target (None: the client's)
    strict: bool = False  # refuse the kink and flush conventions (docs/conventions.md)
    range: str = "full"  # or "normal": only inputs and exact values within NORMAL_RANGE

    def hypothesis_settings(self, examples: int) -> Any:
        from hypothesis import HealthCheck, settings
        from hypothesis.database import DirectoryBasedExampleDatabase

        db = None
        if self.profile.database and self.seed is None and self.out is not None:
            db = DirectoryBasedExampleDatabase(str(self.out / ".hypothesis"))
        return settings(max_examples=max(1, examples), derandomize=self.profile.derandomize,
                        database=db, deadline=None, print_blob=False,
                        report_multiple_bugs=False, suppress_health_check=list(HealthCheck))


def property_id(module_path: str, function: str) -> str:
    """The id of the property a suite test checks: ``<module>.<function minus test_>``."""
    level = Path(module_path).stem
    name = function.split("[", 1)[0].removeprefix("test_")
    return f"{level}.{name}"


# -- findings ---------------------------------------------------------------


class Finding(Exception):
    """The engine is wrong (``outcome="failed"``) or raised (``"error"``) on ``graph``.

    ``lines`` say what was expected and what came out; ``repro`` tells
    :mod:`gradcert.properties.reproducer` what script to write.
    """

    outcome = "failed"
    klass = "wrong derivative"  # its severity class (results.SEVERITY_CLASSES) when failed
    ratio = math.nan  # how far past its bound (error over bound), where there is one

    def __init__(self, summary: str, graph: Graph | None = None, lines: list[str] | None = None,
                 *, expected: Any = None, actual: Any = None,
                 repro: dict[str, Any] | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.graph = graph
        self.lines = list(lines or [])
        self.expected = expected
        self.actual = actual
        self.repro = repro

    def explain(self, check: Check) -> list[str]:
        """Details worth computing only once, for the final (shrunk) example."""
        return []


class EngineRaised(Finding):
    """The engine raised, or returned something that is not a number (``error`` is the
    host's error reply, with its message and where)."""

    outcome = "error"

    def __init__(self, graph: Graph | None, error: Any, what: str = "",
                 oracle: bool = True) -> None:
        node = getattr(error, "node", None)
        op = getattr(error, "op", None)
        where = f" at node {node}" if node is not None else ""
        where += f" ({op})" if op else ""
        message = getattr(error, "message", None) or str(error)
        summary = (f"{message}{where}{' while ' + what if what else ''}"
                   + (", where the oracle has a finite answer" if oracle and graph else ""))
        super().__init__(summary, graph, repro={"kind": "oracle"} if graph is not None else None)
        self.error = error
        self.klass = "range" if graph is not None and extreme(graph) else "crash"


class TimedOut(Finding):
    """The engine did not finish within a property's time bound."""

    outcome = "timeout"


class EngineTimeout(BaseException):
    """The engine's host went over its CPU limit on ``graph`` and was killed.

    A BaseException, so hypothesis stops at once instead of shrinking a hang.
    """

    def __init__(self, message: str, graph: Graph | None = None, seconds: float = 0.0) -> None:
        super().__init__(message)
        self.message, self.graph, self.seconds = message, graph, seconds


class EngineCrashed(BaseException):
    """The engine's host died on ``graph`` (an exit, a signal, closed pipes, a broken
    protocol). A BaseException, so hypothesis stops at once: each retry costs a host."""

    def __init__(self, message: str, graph: Graph | None = None) -> None:
        super().__init__(message)
        self.message, self.graph = message, graph


# -- the per-test context -----------------------------------------------------


class Check:
    """A property test's view of the session: the engine (behind its host), its
    capabilities, the profile, the recorder, and how to run examples and report findings."""

    def __init__(self, config: Config, engine: Any, recorder: Any, pid: str,
                 item: str | None = None) -> None:
        self.config = config
        self.engine = engine
        self.record = recorder
        self.id = pid
        self.item = item
        self.worst: Finding | None = None  # the finding furthest past its bound so far

    def note(self, f: Finding) -> None:
        """Keep ``f`` if it is the worst finding of this test so far (by error over bound)."""
        if self.worst is None or _rank(f) > _rank(self.worst):
            self.worst = f

    @property
    def sound_ops(self) -> frozenset[str]:
        """The engine's ops minus those the op screen finds wrong (see
        :mod:`gradcert.properties.sweep`): what graph, semantics, optimizer and model
        properties draw from, so an op's defect is the ops level's finding only. All of
        the engine's ops if none is right."""
        from gradcert.properties.sweep import defects

        ops = frozenset(self.caps.ops)
        if self.id.startswith("ops."):
            return ops
        sound = ops - set(self.call(lambda: defects(self)))
        return sound or ops

    @property
    def caps(self) -> Any:
        return self.engine.caps

    @property
    def profile(self) -> Profile:
        return self.config.profile

    @property
    def seed(self) -> int:
        return 0 if self.config.seed is None else self.config.seed

    def require(self, *ops: str, any_of: bool = False) -> frozenset[str]:
        """Skip as unsupported unless the engine has the ops (all, or ``any_of``)."""
        have = frozenset(self.caps.ops)
        missing = [o for o in ops if o not in have]
        if (any_of and len(missing) == len(ops)) or (not any_of and missing):
            self.unsupported(f"the engine lacks {', '.join(missing)}")
        return have & frozenset(ops)

    def unsupported(self, why: str) -> None:
        import pytest

        pytest.skip(f"unsupported: {why}")

    def examples(self, strategy: Any, check: Callable[[Any], None],
                 examples: int | None = None) -> None:
        """Run ``check`` on hypothesis examples of ``strategy``; report the shrunk finding."""
        from hypothesis import given
        from hypothesis import seed as hseed

        from gradcert.adapters.client import Unsupported

        def example(x: Any) -> None:
            self.engine.new_example()
            try:
                check(x)
            except Finding as f:
                self.note(f)
                raise
            except Unsupported as e:  # not a finding to shrink: the property is unsupported
                self.unsupported(str(e))

        n = self.profile.examples if examples is None else examples
        test = self.config.hypothesis_settings(n)(given(strategy)(example))
        if self.config.seed is not None:
            test = hseed(self.config.seed)(test)
        self.guard(test)

    def guard(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` and turn a finding, a timeout or a crash into this test's failure."""
        from gradcert.adapters.client import Unsupported

        try:
            fn()
        except Finding as f:
            self.fail(f)
        except Unsupported as e:
            self.unsupported(str(e))
        except EngineTimeout as t:
            self.fail(Finding(t.message, t.graph, repro=_isolated(t.graph, t.seconds)),
                      outcome="timeout")
        except EngineCrashed as c:
            self.fail(Finding(c.message, c.graph, repro=_isolated(c.graph, None)),
                      outcome="crashed")

    def call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` outside hypothesis (an engine request, say); a finding, timeout or
        crash fails the test as in :meth:`guard`."""
        box: list[Any] = []
        self.guard(lambda: box.append(fn()))
        return box[0]

    def report(self, f: Finding) -> None:
        """Fail the test with finding ``f``, found outside hypothesis (no shrinking)."""

        def raise_it() -> None:
            raise f

        self.guard(raise_it)

    def fail(self, f: Finding, outcome: str | None = None) -> None:
        """Record ``f``, write its reproducer, and fail the test with a readable message."""
        import pytest

        from gradcert.properties import reproducer

        outcome = outcome or f.outcome
        prop = registry.get(self.id)
        name = self.id + (f"-{self.item}" if self.item else "")
        path = None
        if self.config.out is not None and f.repro is not None:
            try:
                path = reproducer.write(self, f, self.config.out / "reproducers" / f"{name}.py",
                                        outcome)
            except Exception as e:  # a reproducer that cannot be written must not hide the finding
                f.lines.append(f"(the reproducer could not be written: {type(e).__name__}: {e})")
        try:
            extra = f.explain(self) if outcome in ("failed", "error") else []
        except (Exception, EngineTimeout, EngineCrashed) as e:
            extra = [f"(no further details: {type(e).__name__}: {str(e)[:300]})"]
        lines = [f"{self.id} {outcome}" + (f" for {self.item}" if self.item else "")
                 + f": {prop.meaning}"]
        lines += [f"  {line}" for line in f.summary.splitlines()]
        lines += [f"  {line}" for line in f.lines + extra]
        code = None
        if f.graph is not None:
            code = to_python(f.graph) if len(f.graph) <= 60 else None
            lines.append(f"  graph ({len(f.graph)} nodes, {len(f.graph.leaves)} leaves):")
            lines += ["    " + c for c in (code or _summarize(f.graph)).splitlines()]
        seed = "derandomized" if self.profile.derandomize else self.config.seed
        target = self.config.target or ("host " + " ".join(self.config.host)
                                        if self.config.host else "gradcert")
        lines.append(f"  target: {target}; profile: {self.profile.name}; seed: {seed}")
        lines.append(f"  reproducer: {path if path else 'none written'}")
        severity = _severity(f, outcome)
        lines.insert(1, f"  severity: {severity['class']}"
                     + (f", {severity['ratio']:.3g} x the bound"
                        if math.isfinite(severity["ratio"]) else ""))
        cause = self._root_cause(f, outcome)
        if cause is not None:
            lines.insert(1, f"  caused by {cause['op']}, see {cause['property']}: "
                            f"{cause['text']}")
        worst = self.worst if self.worst is not None and _rank(self.worst) > _rank(f) else None
        if worst is not None:
            lines.append(f"  worst example seen: {worst.summary.splitlines()[0]}")
        message = "\n".join(lines)
        failure = {"message": message, "summary": f.summary,
                   "expected": f.expected, "actual": f.actual, "code": code,
                   "graph": f.graph.to_dict() if f.graph is not None and len(f.graph) <= 2000
                   else None, "severity": severity, "root_cause": cause,
                   "worst": _example(worst or f)}
        failure = {k: v for k, v in failure.items() if v is not None}
        self.record.fail(outcome, failure, str(path) if path else None)
        pytest.fail(message, pytrace=False)


    def _root_cause(self, f: Finding, outcome: str) -> dict[str, str] | None:
        """An op wrong on its own in ``f``'s graph, for a finding outside the ops level."""
        if self.id.startswith("ops.") or f.graph is None or outcome not in ("failed", "error") \
                or len(f.graph) > 200:
            return None
        from gradcert.properties.sweep import blame

        try:
            return blame(self, f.graph)
        except (Exception, EngineTimeout, EngineCrashed):
            return None


INACCURATE = 100.0
"""A wrong number at most this many times its bound is "inaccurate", not "wrong"."""


def _rank(f: Finding) -> float:
    if f.outcome == "error":
        return math.inf  # raising where the oracle has an answer: past any bound
    r = f.ratio
    return -1.0 if math.isnan(r) else r


def _severity(f: Finding, outcome: str) -> dict[str, Any]:
    """The finding's class (results.SEVERITY_CLASSES) and its error over bound."""
    if outcome == "timeout":
        return {"class": "hang", "ratio": math.nan}
    if outcome == "crashed":
        return {"class": "crash", "ratio": math.nan}
    klass = f.klass
    if klass in ("wrong value", "wrong derivative") and f.ratio <= INACCURATE:
        klass = "inaccurate"
    return {"class": klass, "ratio": f.ratio}


def _example(f: Finding) -> dict[str, Any]:
    """A finding as results.json keeps its worst example: what, how far off, the graph."""
    d: dict[str, Any] = {"summary": f.summary, "class": f.klass, "ratio": f.ratio,
                         "expected": f.expected, "actual": f.actual}
    if f.graph is not None and len(f.graph) <= 60:
        d["code"] = to_python(f.graph)
        d["graph"] = f.graph.to_dict()
    return {k: v for k, v in d.items() if v is not None}


NORMAL_RANGE = (1e-150, 1e150)
"""Magnitudes (besides zero) an example keeps to for its findings not to be range findings."""


def extreme(graph: Graph, values: Any = None) -> bool:
    """Whether ``graph`` has an input, a constant or a value (``values``, else its float64
    evaluation) of magnitude outside :data:`NORMAL_RANGE` (zero aside): there an engine's
    intermediate can underflow or overflow while the exact answer is fine.

    >>> from gradcert.graph import trace
    >>> extreme(trace(lambda x, y: x / y, [1e-300, 1e-200])), extreme(trace(lambda x: x * 2, [3.0]))
    (True, False)
    """
    from gradcert.graph import evaluate

    lo, hi = NORMAL_RANGE
    nums = [n.const for n in graph.nodes if n.const is not None] + list(graph.inputs)
    if values is None:
        try:
            values = evaluate(graph)
        except (ArithmeticError, ValueError):
            values = []
    nums += [float(v) for v in values]
    return any(x != 0 and not lo <= abs(x) <= hi for x in nums)


def _isolated(graph: Graph | None, seconds: float | None) -> dict[str, Any] | None:
    """The reproducer of a timeout or a crash: the graph, run in a limited child process."""
    if graph is None or len(graph) > 5000:
        return None
    return {"kind": "isolated", "cpu": seconds}


def _summarize(graph: Graph) -> str:
    ops: dict[str, int] = {}
    for n in graph.nodes:
        ops[n.op] = ops.get(n.op, 0) + 1
    return "ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(ops.items()))


def finite(x: Any) -> bool:
    """Whether ``x`` is a finite real number (engines may hand back anything)."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError, OverflowError):
        return False
