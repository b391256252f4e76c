"""The declared conventions, applied the same way in every property and reproducer.

Three things a correct engine may do differently from the op table, each a
convention the run declares and reports (docs/conventions.md):

- **kink**: relu'(0) may be anywhere in [0, 1]. A graph whose relu sits exactly
  on 0 is judged against the exact answer with the engine's own relu'(0) (the
  relu at the kink becomes ``x * c``: the same value, 0, and derivative ``c``);
- **flush**: a value or gradient whose exact value is below the smallest normal
  number (2**-1022 in float64) may be 0 (XLA flushes subnormals; PyTorch's
  sigmoid gives 0 below -709.78);
- **range**: with ``--range normal`` only inputs and exact intermediates within
  :data:`~gradcert.properties.runner.NORMAL_RANGE` in magnitude (zero included)
  are judged. Under the default (``full``) a finding there is classed ``range``.

``--strict`` refuses the first two: relu'(0) must be 0 and nothing flushes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from gradcert.graph import Graph, Node
from gradcert.properties.runner import extreme

__all__ = ["TINY", "engine_kink", "flushed", "judge", "kink_graph", "outside_range"]

TINY = {"float64": 2.0**-1022, "float32": 2.0**-126}
"""The smallest normal number of each dtype: exact results below it may flush to 0."""


def flushed(expected: float, actual: float, dtype: str = "float64") -> bool:
    """Whether ``actual`` is a flush to zero of an exact result below the normal range.

    >>> flushed(4.9e-324, 0.0), flushed(1e-300, 0.0), flushed(4.9e-324, 1.0)
    (True, False, False)
    """
    return actual == 0.0 and 0.0 < abs(expected) < TINY[dtype]


def kink_graph(graph: Graph, kinks: Sequence[int], c: float) -> Graph:
    """``graph`` with each relu at a kink (node indices ``kinks``) replaced by ``x * c``:
    the same values there (0), and derivative ``c``.

    >>> from gradcert.graph import trace
    >>> [n.op for n in kink_graph(trace(lambda x: x.relu(), [0.0]), [1], 1.0).nodes]
    ['leaf', 'mulc']
    """
    nodes = list(graph.nodes)
    for k in kinks:
        if nodes[k].op != "relu":
            raise ValueError(f"kink_graph: node {k} is {nodes[k].op}, not relu")
        nodes[k] = Node("mulc", nodes[k].args, float(c))
    return Graph(tuple(nodes))


def engine_kink(check: Any) -> float | None:
    """The engine's relu'(0), measured once per engine (None: it has no relu, or the
    measurement failed; the graph is then judged by the op table's 0)."""
    engine = check.engine
    if hasattr(engine, "relu_kink"):
        return engine.relu_kink
    from gradcert.properties.engine import op_graph

    c: float | None = None
    if "relu" in check.caps.ops:
        try:
            run = engine.run(op_graph("relu", (0.0,), None), what="relu'(0), the convention")
            c = float(run.grads[0])
        except Exception:  # a crash or a timeout is another property's finding
            c = None
    with contextlib.suppress(AttributeError):
        engine.relu_kink = c
    return c


def outside_range(check: Any, graph: Graph, ex: Any) -> bool:
    """Whether ``--range normal`` puts ``graph`` out of scope: an input, constant or exact
    intermediate outside NORMAL_RANGE in magnitude (zero aside)."""
    return bool(check.config.range == "normal" and extreme(graph, ex.values_f64))


def judge(check: Any, graph: Graph, value: float, grads: Sequence[float], ex: Any,
          tol: Any) -> tuple[list[Any], Any, Any]:
    """The violations of ``tol`` by the engine's results under the declared conventions,
    with the exact answer and tolerance they were judged by. Raises the tolerance's
    ``Refused`` where it has no bound. Counts what a convention let pass in the record's
    notes (``flushed``, ``kink``)."""
    strict = check.config.strict
    dtype = check.caps.dtype
    notes = check.record.notes
    found = tol.check(value, grads, ex)
    kinks = tuple(k for k in getattr(ex, "kinks", ()) or () if graph.nodes[k].op == "relu")
    if found and kinks and not strict:
        c = engine_kink(check)
        if c is not None and 0.0 < c <= 1.0:
            from gradcert.oracle import exact_graph
            from gradcert.oracle.tolerance import tolerance

            g = kink_graph(graph, kinks, c)
            ex2 = exact_graph(g)
            tol2 = tolerance(g, ex2, dtype=dtype, seed=check.seed)
            found2 = tol2.check(value, grads, ex2)
            if len(found2) < len(found) or not found2:
                notes["kink"] = notes.get("kink", 0) + 1
                found, ex, tol = found2, ex2, tol2
    if found and not strict:
        kept = [v for v in found if not flushed(v.expected, v.actual, dtype)]
        if len(kept) < len(found):
            notes["flushed"] = notes.get("flushed", 0) + len(found) - len(kept)
        found = kept
    return found, ex, tol
