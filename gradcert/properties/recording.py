"""What a property records while it runs: graphs checked, errors seen, its outcome.

One :class:`Recorder` per test. The pytest plugin turns it into a record
(a dict, written as one JSON line as soon as the test ends), so a result
survives even if a later test kills the process.

>>> r = Recorder("ops.values", item="log")
>>> r.observe(2.0, 1e-16, op="log", kind="value", inputs=[0.5])
>>> r.observe(0.0, 0.0, op="log", kind="value", inputs=[1.0])
>>> r.checked(2)
>>> rec = r.record()
>>> rec["graphs_checked"], rec["worst"]["ulps"], len(rec["samples"])
(2, 2.0, 2)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Recorder"]

MAX_SAMPLES = 400  # per test: enough for per-op medians, small enough for results.json


class Recorder:
    """Accumulates one test's figures; ``outcome`` and ``failure`` are set on a finding."""

    def __init__(self, pid: str, item: str | None = None) -> None:
        self.id = pid
        self.item = item
        self.graphs_checked = 0
        self.worst: dict[str, Any] | None = None
        self.samples: list[dict[str, Any]] = []
        self.notes: dict[str, Any] = {}
        self.outcome: str | None = None
        self.failure: dict[str, Any] | None = None
        self.reproducer: str | None = None
        self._stride = 1
        self._seen = 0

    def checked(self, n: int = 1) -> None:
        """Count ``n`` more graphs (or op applications) checked."""
        self.graphs_checked += n

    def observe(self, ulps: float, rel: float, *, op: str | None = None,
                kind: str = "grad", inputs: Any = None, nodes: int | None = None,
                of_bound: float | None = None) -> None:
        """Note one error; keep it if it is the worst seen (the largest fraction of its
        bound, or in ulps where there is no bound), and sample it for the
        statistics (every ``k``-th once there are many). ``op`` is None for an error of a
        whole graph of ``nodes`` nodes; ``of_bound`` is the error over its tolerance."""
        if self.worst is None or _worse(ulps, of_bound, self.worst):
            self.worst = {"ulps": ulps, "rel": rel, "op": op, "kind": kind, "inputs": inputs}
            if of_bound is not None:
                self.worst["of_bound"] = of_bound
        if op is None and nodes is None:
            return  # no op and no graph size: nothing a per-op table or plot can use
        self._seen += 1
        if self._seen % self._stride == 0:
            sample = {"op": op, "kind": kind, "ulps": ulps, "rel": rel, "inputs": inputs}
            if nodes is not None:
                sample["nodes"] = nodes
            if of_bound is not None:
                sample["of_bound"] = of_bound
            self.samples.append(sample)
            if len(self.samples) >= MAX_SAMPLES:
                self.samples = self.samples[::2]
                self._stride *= 2

    def fail(self, outcome: str, failure: dict[str, Any], reproducer: str | None = None) -> None:
        """Mark the test as ``outcome`` ("failed", "error", "timeout") with its details."""
        self.outcome, self.failure, self.reproducer = outcome, failure, reproducer

    def record(self) -> dict[str, Any]:
        """The record the plugin writes for this test."""
        return {"id": self.id, "item": self.item, "outcome": self.outcome,
                "graphs_checked": self.graphs_checked, "worst": self.worst,
                "samples": self.samples, "notes": self.notes, "failure": self.failure,
                "reproducer": self.reproducer}


def _worse(ulps: float, of_bound: float | None, worst: dict[str, Any]) -> bool:
    old = worst.get("of_bound")
    if of_bound is not None and old is not None:
        return _gt(of_bound, old)
    if (of_bound is None) != (old is None):
        return old is None  # an error with a bound says more than one without
    return _gt(ulps, worst["ulps"])


def _gt(a: float, b: float) -> bool:
    if math.isnan(b):
        return not math.isnan(a)
    return a > b
