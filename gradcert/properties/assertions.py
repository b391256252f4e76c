"""Comparing an engine's numbers with the oracle's, and saying so readably.

:func:`check_graph` is the one assertion most properties make: build the
graph fresh on the engine, run it, and compare its value and every leaf
gradient with the exact ones, within the tolerance model's bounds. It
records each error (in ulps and relative terms), steers hypothesis
towards larger ones with ``hypothesis.target``, and raises
:class:`Mismatch`, whose message names the node and leaf, the oracle,
engine and finite-difference values, the error in ulps and the tolerance
with where it came from.

>>> fmt(0.1), fmt(float("inf")), fmt(None)
('0.1', 'inf', 'n/a')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gradcert.graph import DomainError, Graph, evaluate
from gradcert.ops import OPS
from gradcert.oracle.tolerance import Refused
from gradcert.properties import conventions
from gradcert.properties.conventions import flushed as flush_ok
from gradcert.properties.runner import Check, Finding, extreme

__all__ = ["Mismatch", "as_float32", "check_graph", "compare", "fmt", "graphs_for", "judged",
           "oracle", "refused", "reverse_mode"]


def fmt(x: Any) -> str:
    """A number as a failure message shows it: ``repr`` of the float, exactly."""
    if x is None:
        return "n/a"
    try:
        return repr(float(x))
    except (TypeError, ValueError, OverflowError):
        return repr(x)


def oracle(check: Check, graph: Graph) -> tuple[Any, Any] | None:
    """The exact answer and the tolerance for ``graph`` at the engine's dtype, or None when
    the graph leaves the ops' domain, its exact answer overflows float64, or the oracle
    cannot resolve it (counted in the record's notes as ``oracle_unresolved``)."""
    from gradcert.oracle import exact_graph
    from gradcert.oracle.tolerance import tolerance

    try:
        ex = exact_graph(graph)
        if ex.overflow:
            return None
        if conventions.outside_range(check, graph, ex):  # --range normal: out of scope
            notes = check.record.notes
            notes["outside_range"] = notes.get("outside_range", 0) + 1
            return None
        return ex, tolerance(graph, ex, dtype=check.caps.dtype, seed=check.seed)
    except DomainError:
        return None
    except Exception as e:  # the oracle cannot judge this graph: say so, judge others
        if not isinstance(e, (ArithmeticError, ValueError)):
            raise RuntimeError(f"gradcert's oracle failed on {graph.to_json()[:300]}: "
                               f"{type(e).__name__}: {e} (a bug in gradcert, not in the "
                               f"engine)") from e
        notes = check.record.notes
        notes["oracle_unresolved"] = notes.get("oracle_unresolved", 0) + 1
        notes.setdefault("oracle_unresolved_example",
                         f"{type(e).__name__}: {str(e)[:160]} on {graph.to_json()[:300]}")
        return None


def judged(check: Check, graph: Graph) -> tuple[Any, Any]:
    """:func:`oracle`'s exact answer and tolerance, rejecting (hypothesis draws another)
    a graph the oracle cannot judge."""
    from hypothesis import assume

    truth = oracle(check, graph)
    assume(truth is not None)
    assert truth is not None
    return truth


def _target(score: float, label: str) -> None:
    try:
        from hypothesis import target
        from hypothesis.control import currently_in_test_context

        if currently_in_test_context() and math.isfinite(score):
            target(score, label=label)
    except Exception:  # targeting is a search aid: never a reason to fail
        pass


def compare(check: Check, graph: Graph, value: Any, grads: Sequence[Any], ex: Any, tol: Any,
            *, op: str | None = None, what: str = "both", label: str = "error") -> None:
    """Record the errors of ``value`` and ``grads`` against ``ex``; raise :class:`Mismatch`
    on any violation of ``tol`` (``what``: "value", "grad" or "both")."""
    from gradcert.oracle import round_to
    from gradcert.oracle.metrics import bits_of_error, rel_error, ulp_distance

    dtype = check.caps.dtype
    inputs = list(graph.inputs)
    worst_bits = 0.0
    outputs: list[tuple[str, Any, Any, float]] = []
    if what in ("value", "both"):
        outputs.append(("value", value, ex.value, tol.value))
    if what in ("grad", "both"):
        outputs += [("grad", g, e, b) for g, e, b in zip(grads, ex.grad, tol.grad, strict=False)]
    for kind, actual, exact, bound in outputs:
        a = _float(actual)
        ulps = ulp_distance(a, round_to(exact, dtype), dtype)
        rel = rel_error(a, exact)
        check.record.observe(ulps, rel, op=op, kind=kind, inputs=inputs, nodes=len(graph),
                             of_bound=_of_bound(a, exact, bound))
        worst_bits = max(worst_bits, bits_of_error(a, round_to(exact, dtype)))
    _target(worst_bits, label)
    table_ex, table_tol = ex, tol  # the op table's answer: the reproducer's first case
    try:  # under the declared conventions: relu'(0) in [0, 1], subnormals may flush
        found, ex, tol = conventions.judge(check, graph, _float(value),
                                           [_float(g) for g in grads], ex, tol)
    except Refused as e:  # no bound, no verdict: counted and shown, never a pass
        refused(check, graph, e)
        from hypothesis import reject
        from hypothesis.control import currently_in_test_context

        if currently_in_test_context():
            reject()
        return
    bad = [v for v in found if what == "both" or v.what == what]
    if bad:
        m = Mismatch(graph, bad, ex, tol, value, grads, dtype, strict=check.config.strict)
        # the reproducer judges every usual relu'(0) from the op table's answer
        m.repro = {"kind": "oracle", "ex": table_ex, "tol": table_tol}
        raise m


def refused(check: Check, graph: Graph, why: Exception) -> None:
    """Count an example the tolerance model refused to judge (``oracle_refused`` in the
    record's notes, with the first reason): the report shows it beside the verdict."""
    notes = check.record.notes
    notes["oracle_refused"] = notes.get("oracle_refused", 0) + 1
    notes.setdefault("oracle_refused_example", f"{str(why)[:200]} on {graph.to_json()[:200]}")


def _of_bound(actual: float, exact: Any, bound: float) -> float:
    """The error as a fraction of the tolerance (1 is the edge of what passes)."""
    try:
        err = abs(actual - float(exact))
    except OverflowError:
        return math.inf
    if not math.isfinite(err):
        return math.inf
    return err / bound if bound > 0 else (0.0 if err == 0 else math.inf)


def check_graph(check: Check, graph: Graph, *, op: str | None = None, what: str = "both",
                reject: bool = True) -> Any:
    """Run ``graph`` fresh on the engine and :func:`compare` it with the oracle.

    Graphs outside the domain are rejected (hypothesis draws another) when
    ``reject``; otherwise they are skipped and None is returned.
    """
    if check.caps.dtype == "float32":
        narrowed = as_float32(graph)
        if narrowed is None:
            if reject:
                from hypothesis import reject as hreject

                hreject()
            return None
        graph = narrowed
    truth = oracle(check, graph)
    if truth is None:
        if reject:
            from hypothesis import reject as hreject

            hreject()
        return None
    ex, tol = truth
    run = check.engine.run(graph)
    compare(check, graph, run.value, run.grads, ex, tol, op=op, what=what)
    check.record.checked()
    return run


def graphs_for(check: Check, *, max_nodes: int = 8, **kw: Any) -> Any:
    """Random graphs over the engine's ops, at most ``max_nodes`` (and the profile's) big;
    for a float32 engine, narrowed to float32 (see :func:`as_float32`)."""
    from gradcert.properties import strategies as gs

    s: Any = gs.graphs(check.sound_ops, max_nodes=min(check.profile.max_nodes, max_nodes),
                       **kw)
    if check.caps.dtype == "float32":
        s = s.map(as_float32).filter(lambda g: g is not None)
    return s


def reverse_mode(graph: Graph, plant: tuple[int, float] | None = None
                 ) -> tuple[float, list[float]]:
    """Value and leaf gradients in plain float64 reverse mode over the op table: a
    reference where the point is scale, not the last ulp (the judge's own floats).
    ``plant`` ``(node, r)`` multiplies that node's first partial by ``1 + r``: an
    engine with one defect, for measuring what detects it (bench/bench_detection.py).

    >>> from gradcert.graph import trace
    >>> reverse_mode(trace(lambda x, y: x * y + x, [3.0, 4.0]))
    (15.0, [5.0, 3.0])
    """
    vals = evaluate(graph)
    adj = [0.0] * len(graph)
    adj[-1] = 1.0
    for i in range(len(graph) - 1, -1, -1):
        n = graph.nodes[i]
        if n.op == "leaf" or not adj[i]:
            continue
        xs = [vals[a] for a in n.args] + ([n.const] if n.const is not None else [])
        ps = OPS[n.op].partials(math, *xs, vals[i])
        if plant is not None and plant[0] == i:
            ps = (ps[0] * (1 + plant[1]), *ps[1:])
        for a, d in zip(n.args, ps, strict=False):
            adj[a] += adj[i] * d
    return vals[-1], [adj[i] for i in graph.leaves]


_F32_MAX, _F32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38


def _f32(x: float) -> float:
    import struct

    return float(struct.unpack("f", struct.pack("f", x))[0])


def as_float32(graph: Graph) -> Graph | None:
    """``graph`` with its leaves and constants rounded to float32, as a float32 engine holds
    them, or None if some value or local derivative leaves float32's normal range
    (nothing fair to judge).

    >>> from gradcert.graph import trace
    >>> as_float32(trace(lambda x: x * 0.1, [1 / 3])).inputs
    (0.3333333432674408,)
    >>> as_float32(trace(lambda x: x * x, [1e30])) is None
    True
    """
    from gradcert.graph import Node

    try:
        with_inputs = graph.with_inputs([_f32(x) for x in graph.inputs])
        g = Graph(tuple(n if n.const is None else Node(n.op, n.args, _f32(n.const))
                        for n in with_inputs.nodes))
        values = evaluate(g)
    except (ArithmeticError, ValueError):
        return None
    def fits(v: float) -> bool:
        return v == 0.0 or _F32_TINY <= abs(v) <= _F32_MAX

    for i, n in enumerate(g.nodes):
        if not fits(values[i]):
            return None
        if n.op != "leaf":
            xs = [values[a] for a in n.args] + ([n.const] if n.const is not None else [])
            try:
                if not all(fits(float(d)) for d in OPS[n.op].partials(math, *xs, values[i])):
                    return None
            except (ArithmeticError, ValueError):
                return None
    return g


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return math.nan


class Mismatch(Finding):
    """The engine's value or gradients are outside the tolerance of the exact ones."""

    def __init__(self, graph: Graph, violations: Sequence[Any], ex: Any, tol: Any,
                 value: Any, grads: Sequence[Any], dtype: str, strict: bool = False) -> None:
        self.violations = list(violations)
        self.tol = tol
        self.dtype = dtype
        self.ex = ex
        v = self.violations[0]
        ratios = [_ratio(w) for w in self.violations]
        self.ratio = max(ratios)
        w = self.violations[ratios.index(self.ratio)]
        try:
            values = ex.values_f64  # (certified when first read)
        except ArithmeticError:  # not every one can be: the float64 evaluation's then
            values = None
        if extreme(graph, values) and (not math.isfinite(w.actual) or w.actual == 0):
            self.klass = "range"  # an underflow or overflow near float64's limits
        elif any(x.what == "value" for x in self.violations):
            self.klass = "wrong value"
        lines = [self._line(graph, w) for w in self.violations[1:6]]  # [0] is the summary
        if len(self.violations) > 6:
            lines.append(f"... and {len(self.violations) - 6} more")
        if self.klass == "range":
            lines.append("a range finding: an input or exact intermediate lies outside "
                         "1e-150..1e150 in magnitude, where an intermediate of the engine "
                         "underflows or overflows though the exact answer is fine; "
                         "--range normal declares such inputs out of scope")
        if any(graph.nodes[k].op == "relu" for k in getattr(ex, "kinks", ())):
            lines.append("a relu sits exactly on 0 here: judged with "
                         + ("relu'(0) = 0 (--strict)" if strict else
                            "the engine's own relu'(0) when it is in [0, 1]"))
        if strict and any(flush_ok(w.expected, w.actual, dtype) for w in self.violations):
            lines.append("a subnormal exact result flushed to 0: refused under --strict")
        lines.append(f"tolerance model: {tol.describe()}")
        super().__init__(
            f"{self._name(graph, v)} is {fmt(v.actual)}; the oracle says {fmt(v.expected)} "
            f"({_ulps(v.ulps)} ulps off, allowed {fmt(v.bound)})",
            graph, lines,
            expected={"value": fmt(ex.value_f64), "grads": [fmt(g) for g in ex.grad_f64]},
            actual={"value": fmt(value), "grads": [fmt(g) for g in grads]},
            repro={"kind": "oracle", "ex": ex, "tol": tol})

    @staticmethod
    def _name(graph: Graph, v: Any) -> str:
        out = graph.output
        if v.what == "value":
            return f"the value of the output (node {out}, {graph.nodes[out].op})"
        node = graph.leaves[v.leaf]
        return f"d(node {out})/d(leaf {v.leaf} = node {node}, input {fmt(graph.inputs[v.leaf])})"

    def _line(self, graph: Graph, v: Any) -> str:
        return (f"{self._name(graph, v)}: oracle {fmt(v.expected)}, engine {fmt(v.actual)}, "
                f"error {_ulps(v.ulps)} ulps ({self.dtype}), bound {fmt(v.bound)}")

    def explain(self, check: Check) -> list[str]:
        lines = []
        graph = self.graph
        assert graph is not None
        for v in self.violations[:3]:
            if v.what == "grad":
                lines.append(f"finite differences of the engine's forward, d/d(leaf {v.leaf}): "
                             f"{fmt(_fd(check, graph, v.leaf))}")
        node = _first_wrong_node(check, graph)
        if node is not None:
            n = graph.nodes[node]
            vals = evaluate(graph)
            args = ", ".join(f"node {a} = {fmt(vals[a])}" for a in n.args)
            const = f", constant {fmt(n.const)}" if n.const is not None else ""
            lines.append(f"first wrong node: {node} = {n.op}({args}{const})")
        return lines


def _ratio(v: Any) -> float:
    """A violation's error over its bound (inf for a non-finite result)."""
    err = _float(v.error)
    if math.isnan(err):
        try:
            err = abs(_float(v.actual) - v.expected)
        except OverflowError:
            err = math.inf
    if math.isnan(err) or math.isinf(err):
        return math.inf
    return err / v.bound if v.bound > 0 else (0.0 if err == 0 else math.inf)


def _ulps(u: Any) -> str:
    u = _float(u)
    return "inf" if math.isinf(u) else ("nan" if math.isnan(u) else f"{u:.3g}")


def _fd(check: Check, graph: Graph, leaf: int) -> float | None:
    from gradcert.oracle.fd import central_difference
    from gradcert.properties.runner import EngineRaised

    def f(xs: Sequence[float]) -> float:
        return check.engine.forward(graph.with_inputs(xs))

    try:
        return central_difference(f, list(graph.inputs), leaf)
    except (EngineRaised, ArithmeticError, ValueError):
        return None


def _first_wrong_node(check: Check, graph: Graph) -> int | None:
    """The earliest node whose sub-graph (the node as output) the engine gets wrong."""
    from gradcert.properties.runner import EngineRaised

    for k, n in enumerate(graph.nodes):
        if n.op == "leaf":
            continue
        sub = Graph(graph.nodes[:k + 1])
        truth = oracle(check, sub)
        if truth is None:
            continue
        ex, tol = truth
        try:
            run = check.engine.run(sub)
        except EngineRaised:
            return k
        try:
            if tol.check(_float(run.value), [_float(g) for g in run.grads], ex):
                return k
        except Refused:
            continue
    return None
