"""Level ``semantics``: what backward means when graphs share nodes, are run twice, or
are built next to each other."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as hs

from gradcert.graph import Graph, Node, evaluate, trace
from gradcert.ops import OPS
from gradcert.properties import strategies as st
from gradcert.properties.assertions import check_graph, compare, fmt, judged, oracle
from gradcert.properties.reproducer import build_source
from gradcert.properties.runner import Finding

_TOTAL_UNARY = ("tanh", "sigmoid", "exp", "neg", "mulc", "addc", "relu", "log", "powc")


def tame(graph: Graph, limit: float = 1e150) -> bool:
    """Whether every value and every local derivative of ``graph`` is finite and within
    ``limit`` in float64 (what :func:`strategies.graphs` guarantees for its graphs):
    otherwise a correct engine's partials overflow (``x / x`` at 5e-324 has partials
    +-inf, and inf - inf is nan) and there is nothing to judge."""
    try:
        vals = evaluate(graph)
    except Exception:
        return False
    for i, n in enumerate(graph.nodes):
        if not (math.isfinite(vals[i]) and abs(vals[i]) <= limit):
            return False
        if n.op == "leaf":
            continue
        xs = [vals[a] for a in n.args] + ([n.const] if n.const is not None else [])
        try:
            ds = OPS[n.op].partials(math, *xs, vals[i])
        except (ArithmeticError, ValueError):
            return False
        if not all(math.isfinite(float(d)) and abs(float(d)) <= limit for d in ds):
            return False
    return True


def build(check: Any, graph: Graph, leaves: Sequence[Any] | None = None) -> list[Any]:
    """Build ``graph`` on the engine op by op (on the given leaf handles, if any):
    the handles, one per node."""
    if check.caps.functional:
        check.unsupported("a functional engine has no op-by-op handles to run backward on")
    given = iter(leaves) if leaves is not None else None

    def make() -> list[Any]:
        hs_: list[Any] = []
        for n in graph.nodes:
            if n.op == "leaf":
                hs_.append(next(given) if given is not None else check.adapter.leaf(n.value))
            else:
                hs_.append(check.adapter.apply(n.op, [hs_[a] for a in n.args], n.const))
        return hs_

    return check.call(make, graph, "building the graph")


def grads(check: Any, graph: Graph, handles: Sequence[Any]) -> list[float]:
    return check.call(lambda: [float(check.adapter.grad(handles[i])) for i in graph.leaves],
                      graph, "reading gradients")


def backward(check: Any, graph: Graph, handles: Sequence[Any]) -> None:
    check.call(lambda: check.adapter.backward(handles[-1]), graph, "backward")


def _graphs(check: Any, **kw: Any) -> Any:
    """Random graphs over the engine's ops; for a float32 engine, narrowed to float32."""
    from gradcert.properties.assertions import as_float32

    s: Any = st.graphs(check.caps.ops,
                       max_nodes=min(check.profile.max_nodes, kw.pop("max_nodes", 8)), **kw)
    if check.caps.dtype == "float32":
        s = s.map(as_float32).filter(lambda g: g is not None)
    return s


@hs.composite
def _fan_out(draw: Any, base: Any, unary: tuple[str, ...], combine: tuple[str, ...]) -> Graph:
    g = draw(base)
    nodes = list(g.nodes)
    out = len(nodes) - 1
    users = []
    for _ in range(draw(hs.integers(2, 3))):
        op = draw(hs.sampled_from(unary))
        const = {"mulc": 0.5, "addc": 1.0, "powc": 2.0}.get(op)
        nodes.append(Node(op, (out,), const))
        users.append(len(nodes) - 1)
    comb = draw(hs.sampled_from(combine))
    acc = users[0]
    for u in users[1:]:
        nodes.append(Node(comb, (acc, u)))
        acc = len(nodes) - 1
    graph = Graph(tuple(nodes))
    assume(tame(graph))
    return graph


def test_fan_out(gradcert_check: Any) -> None:
    check = gradcert_check
    ops = check.caps.ops
    unary = tuple(o for o in _TOTAL_UNARY if o in ops)
    combine = tuple(o for o in ("add", "mul", "sub") if o in ops)
    if not unary or not combine:
        check.unsupported("fan-out needs a unary op and one of add, mul, sub")
    check.examples(_fan_out(_graphs(check, max_nodes=5), unary, combine),
                   lambda g: check_graph(check, g))


@hs.composite
def _same_operand(draw: Any, binary: tuple[str, ...], unary: tuple[str, ...]) -> Graph:
    x = draw(st.leaves("mixed"))
    nodes = [Node.leaf(x)]
    if unary and draw(hs.booleans()):
        op = draw(hs.sampled_from(unary))
        nodes.append(Node(op, (0,), {"mulc": 0.5, "addc": 1.0, "powc": 2.0}.get(op)))
    op = draw(hs.sampled_from(binary))
    k = len(nodes) - 1
    nodes.append(Node(op, (k, k)))
    graph = Graph(tuple(nodes))
    assume(tame(graph))
    return graph


def test_same_operand(gradcert_check: Any) -> None:
    check = gradcert_check
    ops = check.caps.ops
    binary = tuple(o for o in ("mul", "add", "sub", "div") if o in ops)
    if not binary:
        check.unsupported("the engine has no binary op")
    unary = tuple(o for o in ("tanh", "exp", "log", "mulc", "addc") if o in ops)
    check.examples(_same_operand(binary, unary), lambda g: check_graph(check, g))


_CONVENTION = "second_backward"


def test_second_backward(gradcert_check: Any) -> None:
    """Backward twice on one output: every leaf gradient doubles (accumulates), stays
    (resets), or backward raises; anything else leaves stale state behind."""
    check = gradcert_check
    if check.caps.functional:
        check.unsupported("a functional engine has no backward to call twice")

    def one(g: Graph) -> None:
        ex, tol = judged(check, g)
        hs_ = build(check, g)
        backward(check, g, hs_)
        first = grads(check, g, hs_)
        compare(check, g, check.adapter.value(hs_[-1]), first, ex, tol, label="first")
        try:
            check.adapter.backward(hs_[-1])
        except Exception as e:
            check.record.notes.setdefault(_CONVENTION, f"raises {type(e).__name__}: {e}"[:200])
            check.record.checked()
            return
        second = grads(check, g, hs_)
        check.record.checked()
        modes = set()
        for a, b in zip(first, second, strict=True):
            if a == b == 0.0:
                continue
            if _close(b, 2 * a):
                modes.add("accumulates")
            elif _close(b, a):
                modes.add("resets")
            else:
                modes.add("neither")
        if modes <= {"accumulates"} or modes <= {"resets"}:
            if modes:
                check.record.notes.setdefault(_CONVENTION, modes.pop())
            return
        raise Finding(
            "after a second backward on the same output the leaf gradients are "
            f"{[fmt(b) for b in second]}: neither accumulated {[fmt(2 * a) for a in first]} "
            f"nor reset to {[fmt(a) for a in first]} (stale intermediate gradients?)", g,
            [f"first backward: {[fmt(a) for a in first]} (exact: "
             f"{[fmt(e) for e in ex.grad_f64]})", f"second backward: {[fmt(b) for b in second]}"],
            expected={"accumulated": [fmt(2 * a) for a in first],
                      "reset": [fmt(a) for a in first]},
            actual=[fmt(b) for b in second],
            repro={"kind": "second_backward", "body": _second_backward_body(check, g, ex)})

    def both(g: Graph) -> None:
        one(g)

    if "mul" in check.caps.ops:
        check.guard(lambda: one(trace(lambda x: (x * x) * x, [3.0])))
    check.examples(_graphs(check, max_nodes=8), both)


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def _second_backward_body(check: Any, g: Graph, ex: Any) -> str:
    return (build_source(g) + "\n\n"
            f"EXACT_GRADS = {[float(x) for x in ex.grad_f64]!r}\n\n\n"
            "def main():\n"
            f"    leaves, out = build({check.adapter.make_value})\n"
            "    backward(out)\n"
            "    first = [grad(x) for x in leaves]\n"
            "    try:\n"
            "        backward(out)\n"
            "    except Exception as e:\n"
            "        print(f'a second backward raises {type(e).__name__}: {e} '\n"
            "              '(a clear error: fine)')\n"
            "        return 0\n"
            "    second = [grad(x) for x in leaves]\n"
            "    print('exact gradient:        ', EXACT_GRADS)\n"
            "    print('after one backward:    ', first)\n"
            "    print('after a second one:    ', second)\n"
            "    acc = table([(f'x{i} (acc.)', 2 * a, b, 1e-12 * abs(a))\n"
            "                 for i, (a, b) in enumerate(zip(first, second))])\n"
            "    reset = sum(not close(b, a, 1e-12 * abs(a)) for a, b in zip(first, second))\n"
            "    if acc == 0 or reset == 0:\n"
            "        return 0\n"
            "    print('neither accumulated (2x the first) nor reset (= the first)')\n"
            "    return 1\n")


def test_zero_grad(gradcert_check: Any) -> None:
    """Backward, zero_grad, then a new forward from the same leaves and backward:
    the gradients are zero after zero_grad, then exactly the fresh ones."""
    check = gradcert_check
    if not check.caps.has_zero_grad:
        check.unsupported("the engine has no zero_grad")

    def one(g: Graph) -> None:
        ex, tol = judged(check, g)
        hs_ = build(check, g)
        backward(check, g, hs_)
        leaves = [hs_[i] for i in g.leaves]
        check.call(lambda: check.adapter.zero_grad(leaves), g, "zero_grad")
        after = grads(check, g, hs_)
        if any(a != 0.0 for a in after):
            raise Finding(f"after zero_grad the leaf gradients are {[fmt(a) for a in after]}, "
                          "not 0", g, expected=0.0, actual=[fmt(a) for a in after],
                          repro=None)
        hs2 = build(check, g, leaves)
        backward(check, g, hs2)
        compare(check, g, check.adapter.value(hs2[-1]), grads(check, g, hs2), ex, tol)
        check.record.checked()

    check.examples(_graphs(check, max_nodes=8), one)


def test_fresh_graph(gradcert_check: Any) -> None:
    """Build graph A, build and backpropagate an unrelated graph B, then backward A:
    both match the oracle."""
    from gradcert.adapters.base import run_graph

    check = gradcert_check

    def one(ab: tuple[Graph, Graph]) -> None:
        a, b = ab
        ta, tb = oracle(check, a), oracle(check, b)
        assume(ta is not None and tb is not None)
        assert ta is not None and tb is not None
        ha = build(check, a)
        rb = check.call(lambda: run_graph(check.adapter, b), b, "running the graph in between")
        compare(check, b, rb.value, rb.grads, *tb, label="between")
        backward(check, a, ha)
        compare(check, a, check.adapter.value(ha[-1]), grads(check, a, ha), *ta, label="a")
        check.record.checked(2)

    check.examples(hs.tuples(_graphs(check, max_nodes=6), _graphs(check, max_nodes=6)), one)


def test_equal_values(gradcert_check: Any) -> None:
    """Leaves and intermediate nodes with equal values stay distinct nodes:
    out = (x0 * x1) * x0 + (x1 * x0) with x0 == x1."""
    check = gradcert_check
    check.require("mul", "add")

    def one(v: float) -> None:
        g = trace(lambda x0, x1: (x0 * x1) * x0 + (x1 * x0), [v, v])
        check_graph(check, g)

    check.examples(st.leaves("realistic").filter(lambda v: v != 0.0), one)


def test_constant_left(gradcert_check: Any) -> None:
    """c + x, c - x, c * x, c / x (the reflected operators) and c - x * x."""
    from gradcert.properties.suite.ops import op_graph

    check = gradcert_check
    rops = tuple(o for o in ("raddc", "rsubc", "rmulc", "rdivc") if o in check.caps.ops)
    if not rops:
        check.unsupported("the engine has no reflected operator with a constant on the left")

    strategy = hs.sampled_from(rops).flatmap(lambda op: hs.tuples(hs.just(op),
                                                                   st.op_inputs(op)))

    def one(t: tuple[str, tuple[tuple[float, ...], float | None]]) -> None:
        op, (xs, c) = t
        check_graph(check, op_graph(op, xs, c))

    check.examples(strategy, one)
