"""How a conformance property runs: profiles, the per-test check context, time limits,
and how a finding becomes a readable failure with a reproducer.

Each property is a pytest test that takes the ``gradcert_check`` fixture (a
:class:`Check`). It draws examples with hypothesis under the profile's
settings, runs them on the engine through the adapter, and raises a
:class:`Finding` when the engine is wrong; :meth:`Check.examples` lets
hypothesis shrink it, then :meth:`Check.fail` writes the reproducer and fails
the test with a message that needs no knowledge of the test's code.

>>> PROFILES["ci"].derandomize, PROFILES["quick"].examples <= PROFILES["thorough"].examples
(True, True)
>>> property_id("gradcert/properties/suite/semantics.py", "test_fan_out")
'semantics.fan_out'
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradcert.graph import Graph, to_python
from gradcert.properties import registry

__all__ = [
    "PROFILES",
    "Check",
    "Config",
    "EngineRaised",
    "EngineTimeout",
    "Finding",
    "TimedOut",
    "Profile",
    "property_id",
    "time_limit",
]


@dataclass(frozen=True)
class Profile:
    """How hard a certification looks. ``examples``: hypothesis examples per graph
    property; ``op_examples``: per op; limits in seconds."""

    name: str
    examples: int
    op_examples: int
    derandomize: bool
    database: bool
    example_time_limit: float  # one example on the engine; beyond it: "timeout"
    test_timeout: float  # a whole test (pytest-timeout's backstop)
    max_nodes: int  # random graphs' size
    deep_depths: tuple[int, ...]  # robustness.deep_chain's ladder
    large_nodes: int  # robustness.large_graph's size
    large_time_bound: float  # seconds for its forward + backward


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", examples=20, op_examples=20, derandomize=False, database=True,
                     example_time_limit=10.0, test_timeout=300.0, max_nodes=12,
                     deep_depths=(2_000, 20_000, 100_000), large_nodes=100_000,
                     large_time_bound=60.0),
    "ci": Profile("ci", examples=200, op_examples=100, derandomize=True, database=False,
                  example_time_limit=20.0, test_timeout=900.0, max_nodes=20,
                  deep_depths=(2_000, 5_000, 20_000, 50_000, 100_000), large_nodes=100_000,
                  large_time_bound=60.0),
    "thorough": Profile("thorough", examples=1000, op_examples=500, derandomize=False,
                        database=True, example_time_limit=30.0, test_timeout=3600.0,
                        max_nodes=30, deep_depths=(2_000, 5_000, 10_000, 20_000, 50_000,
                                                   100_000),
                        large_nodes=100_000, large_time_bound=60.0),
}


@dataclass(frozen=True)
class Config:
    """What a session certifies and how: the target, profile, seed and output directory."""

    target: str | None = None
    profile: Profile = field(default_factory=lambda: PROFILES["quick"])
    seed: int | None = None
    out: Path | None = None

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
    """The engine raised (or returned something that is not a number) where the oracle
    has a finite answer."""

    outcome = "error"

    def __init__(self, graph: Graph | None, error: BaseException, what: str = "") -> None:
        original = getattr(error, "original", None) or getattr(error, "__cause__", None) or error
        node = getattr(error, "node", None)
        where = f" at node {node}" if node is not None else ""
        op = getattr(error, "op", None)
        where += f" ({op})" if op else ""
        summary = (f"the engine raised {type(original).__name__}: {original}{where}"
                   f"{' while ' + what if what else ''}, where the oracle has a finite answer")
        super().__init__(summary, graph, repro={"kind": "oracle"} if graph is not None else None)
        self.error = error


class TimedOut(Finding):
    """The engine did not finish within a property's time bound."""

    outcome = "timeout"


class EngineTimeout(BaseException):
    """One example ran longer than the profile's per-example limit.

    A BaseException, so hypothesis stops at once instead of shrinking a hang.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"one example took longer than {seconds:g} s")
        self.seconds = seconds
        self.graph: Graph | None = None


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`EngineTimeout` in the main thread after ``seconds`` (SIGALRM).

    An outer alarm (pytest-timeout's) is kept: if it is due first it fires as
    it would have, and it is re-armed with its remaining time afterwards.
    Elsewhere than the main thread, or without SIGALRM, nothing is limited.

    >>> with time_limit(5.0):
    ...     x = sum(range(10))
    >>> x
    45
    """
    if (not seconds or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    outer_handler = signal.getsignal(signal.SIGALRM)
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()
    outer_first = bool(outer_left) and outer_left <= seconds

    def on_alarm(signum: int, frame: Any) -> None:
        if outer_first and callable(outer_handler):
            outer_handler(signum, frame)
        raise EngineTimeout(seconds)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, outer_left if outer_first else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_left and not outer_first:
            left = outer_left - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


# -- the per-test context -----------------------------------------------------


class Check:
    """A property test's view of the session: the adapter, its capabilities, the
    profile, the recorder, and how to run examples and report findings."""

    def __init__(self, config: Config, adapter: Any, recorder: Any, pid: str,
                 item: str | None = None) -> None:
        self.config = config
        self.adapter = adapter
        self.record = recorder
        self.id = pid
        self.item = item
        self._caps: Any = None

    @property
    def caps(self) -> Any:
        if self._caps is None:
            self._caps = self.adapter.capabilities()
        return self._caps

    @property
    def profile(self) -> Profile:
        return self.config.profile

    @property
    def seed(self) -> int:
        return 0 if self.config.seed is None else self.config.seed

    def require(self, *ops: str, any_of: bool = False) -> frozenset[str]:
        """Skip as unsupported unless the engine has the ops (all, or ``any_of``)."""
        import pytest

        have = frozenset(self.caps.ops)
        missing = [o for o in ops if o not in have]
        if (any_of and len(missing) == len(ops)) or (not any_of and missing):
            pytest.skip(f"unsupported: the engine lacks {', '.join(missing)}")
        return have & frozenset(ops)

    def unsupported(self, why: str) -> None:
        import pytest

        pytest.skip(f"unsupported: {why}")

    def call(self, fn: Callable[[], Any], graph: Graph | None, what: str = "") -> Any:
        """``fn()`` on the engine, with the per-example time limit; whatever the engine
        raises becomes an :class:`EngineRaised` finding on ``graph``."""
        try:
            with time_limit(self.profile.example_time_limit):
                return fn()
        except EngineTimeout as t:
            t.graph = graph
            raise
        except Finding:
            raise
        except Exception as e:  # the engine's code is untrusted: anything may come out
            from gradcert.adapters.base import Unsupported

            if isinstance(e, Unsupported):
                self.unsupported(str(e))
            raise EngineRaised(graph, e, what) from e

    def examples(self, strategy: Any, check: Callable[[Any], None],
                 examples: int | None = None) -> None:
        """Run ``check`` on hypothesis examples of ``strategy``; report the shrunk finding."""
        from hypothesis import given
        from hypothesis import seed as hseed

        def example(x: Any) -> None:
            check(x)

        n = self.profile.examples if examples is None else examples
        test = self.config.hypothesis_settings(n)(given(strategy)(example))
        if self.config.seed is not None:
            test = hseed(self.config.seed)(test)
        self.guard(test)

    def guard(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` and turn a finding or a timeout into this test's failure."""
        try:
            fn()
        except Finding as f:
            self.fail(f)
        except EngineTimeout as t:
            self.fail(Finding(f"timeout: {t}", t.graph, repro=None), outcome="timeout")

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
                path = reproducer.write(self, f, self.config.out / "reproducers" / f"{name}.py")
            except Exception as e:  # a reproducer that cannot be written must not hide the finding
                f.lines.append(f"(the reproducer could not be written: {type(e).__name__}: {e})")
        try:
            extra = f.explain(self)
        except Exception as e:
            extra = [f"(no further details: {type(e).__name__}: {e})"]
        lines = [f"{self.id} {outcome}" + (f" for {self.item}" if self.item else "")
                 + f": {prop.meaning}", f"  {f.summary}"]
        lines += [f"  {line}" for line in f.lines + extra]
        code = None
        if f.graph is not None:
            code = to_python(f.graph) if len(f.graph) <= 60 else None
            lines.append(f"  graph ({len(f.graph)} nodes, {len(f.graph.leaves)} leaves):")
            lines += ["    " + c for c in (code or _summarize(f.graph)).splitlines()]
        seed = "derandomized" if self.profile.derandomize else self.config.seed
        lines.append(f"  target: {self.config.target or 'gradcert'}; profile: "
                     f"{self.profile.name}; seed: {seed}")
        lines.append(f"  reproducer: {path if path else 'none written'}")
        message = "\n".join(lines)
        failure = {"message": message, "summary": f.summary,
                   "expected": f.expected, "actual": f.actual, "code": code,
                   "graph": f.graph.to_dict() if f.graph is not None and len(f.graph) <= 2000
                   else None}
        failure = {k: v for k, v in failure.items() if v is not None}
        self.record.fail(outcome, failure, str(path) if path else None)
        pytest.fail(message, pytrace=False)


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

