"""Level ``semantics``: what backward means when graphs share nodes, are run twice, or
are built next to each other."""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from gradcert.graph import Graph, Node, trace
from gradcert.properties import strategies as gs
from gradcert.properties.assertions import check_graph, compare, fmt, graphs_for, judged, oracle
from gradcert.properties.engine import op_graph
from gradcert.properties.runner import EngineRaised, Finding

_TOTAL_UNARY = ("tanh", "sigmoid", "exp", "neg", "mulc", "addc", "relu", "log", "powc")
_CONST = {"mulc": 0.5, "addc": 1.0, "powc": 2.0}  # a unary op's constant in these graphs


@st.composite
def _fan_out(draw: Any, base: Any, unary: tuple[str, ...], combine: tuple[str, ...]) -> Graph:
    g = draw(base)
    nodes = list(g.nodes)
    out = len(nodes) - 1
    users = []
    for _ in range(draw(st.integers(2, 3))):
        op = draw(st.sampled_from(unary))
        nodes.append(Node(op, (out,), _CONST.get(op)))
        users.append(len(nodes) - 1)
    comb = draw(st.sampled_from(combine))
    acc = users[0]
    for u in users[1:]:
        nodes.append(Node(comb, (acc, u)))
        acc = len(nodes) - 1
    graph = Graph(tuple(nodes))
    assume(gs.tame(graph))
    return graph


def test_fan_out(gradcert_check: Any) -> None:
    check = gradcert_check
    ops = check.sound_ops
    unary = tuple(o for o in _TOTAL_UNARY if o in ops)
    combine = tuple(o for o in ("add", "mul", "sub") if o in ops)
    if not unary or not combine:
        check.unsupported("fan-out needs a unary op and one of add, mul, sub")
    check.examples(_fan_out(graphs_for(check, max_nodes=5), unary, combine),
                   lambda g: check_graph(check, g))


@st.composite
def _same_operand(draw: Any, binary: tuple[str, ...], unary: tuple[str, ...]) -> Graph:
    x = draw(gs.leaves("mixed"))
    nodes = [Node.leaf(x)]
    if unary and draw(st.booleans()):
        op = draw(st.sampled_from(unary))
        nodes.append(Node(op, (0,), _CONST.get(op)))
    op = draw(st.sampled_from(binary))
    k = len(nodes) - 1
    nodes.append(Node(op, (k, k)))
    graph = Graph(tuple(nodes))
    assume(gs.tame(graph))
    return graph


def test_same_operand(gradcert_check: Any) -> None:
    check = gradcert_check
    ops = check.sound_ops
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
    engine = check.engine
    if check.caps.functional:
        check.unsupported("a functional engine has no backward to call twice")

    def one(g: Graph) -> None:
        ex, tol = judged(check, g)
        built = engine.build(g)
        engine.backward(built)
        first = engine.grads(built)
        compare(check, g, engine.value(built), first, ex, tol, label="first")
        try:
            engine.backward(built, what="a second backward")
        except EngineRaised as e:
            said = getattr(e.error, "message", str(e.error)).removeprefix("the engine ")
            check.record.notes.setdefault(_CONVENTION, said[:200])
            check.record.checked()
            return
        second = engine.grads(built)
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
            repro={"kind": "second_backward", "exact": [float(x) for x in ex.grad_f64]})

    if "mul" in check.sound_ops:
        check.guard(lambda: one(trace(lambda x: (x * x) * x, [3.0])))
    check.examples(graphs_for(check, max_nodes=8), one)


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))


def test_reuse_after_backward(gradcert_check: Any) -> None:
    """Build y = f(leaves) and backward it; then build z = y * x0 on y and a leaf of the
    graph already backpropagated, and backward z: each leaf's gradient grows by exactly
    dz/dleaf (accumulates) or becomes it (resets). An engine whose visited flags are
    never cleared skips y's graph the second time (minigrad: 9 for x * x * x at 3, not
    27)."""
    check = gradcert_check
    engine = check.engine
    if check.caps.functional:
        check.unsupported("a functional engine builds every graph fresh by design")
    found = next((o for o in ("mul", "add") if o in check.sound_ops), None)
    if found is None:
        check.unsupported("reusing a node needs mul or add")
    comb: str = str(found)

    def one(g: Graph) -> None:
        x0 = g.leaves[0]
        whole = Graph((*g.nodes, Node(comb, (g.output, x0))))
        assume(gs.tame(whole))
        ex_a, tol_a = judged(check, g)
        ex, tol = judged(check, whole)
        built = engine.build(g)
        engine.backward(built)
        first = engine.grads(built)
        compare(check, g, engine.value(built), first, ex_a, tol_a, label="first")
        top = Graph((Node.leaf(ex_a.value_f64), Node.leaf(g.inputs[0]), Node(comb, (0, 1))))
        z = engine.build(top, [built.ref(), built.ref(x0)], what="building z = y * x0 on y")
        engine.backward(z, what="backward of z")
        after = engine.grads(built)
        check.record.checked()
        wrong = [b for a, b, e, ta, tw in zip(first, after, ex.grad_f64, tol_a.grad, tol.grad,
                                              strict=True)
                 # adds (one more rounding: of the sum), or resets
                 if not (abs(b - a - e) <= ta + tw + 2.0**-52 * abs(b) or abs(b - e) <= tw)]
        if not wrong:
            return
        exact = [fmt(e) for e in ex.grad_f64]
        # the first backward added once more: y kept its own gradient of 1 and passes
        # it on again (intermediate gradients never reset); else y's graph was skipped
        stale = all(abs(b - 2 * a - e) <= 2 * ta + tw + 2.0**-52 * abs(b)
                    for a, b, e, ta, tw in zip(first, after, ex.grad_f64, tol_a.grad, tol.grad,
                                               strict=True))
        why = ("y passes on its gradient of the first backward again: intermediate "
               "gradients never reset?" if stale else "visited flags never cleared?")
        raise Finding(
            f"after backward of z = y {OPS_SHOWN[comb]} x0, built on y (already "
            f"backpropagated) and its leaf x0, the leaf gradients are "
            f"{[fmt(b) for b in after]}: neither the first backward's {[fmt(a) for a in first]} "
            f"plus dz/dleaf {exact}, nor dz/dleaf ({why})", whole,
            [f"first backward (of y): {[fmt(a) for a in first]}",
             f"after backward of z: {[fmt(b) for b in after]}", f"exact dz/dleaf: {exact}"],
            expected={"accumulated": [fmt(a + e) for a, e in zip(first, ex.grad_f64,
                                                                    strict=True)],
                      "reset": exact},
            actual=[fmt(b) for b in after],
            repro={"kind": "reuse_after_backward", "comb": comb,
                   "exact": [float(e) for e in ex.grad_f64],
                   "added": [float(ta + tw) for ta, tw in zip(tol_a.grad, tol.grad, strict=True)],
                   "reset": [float(tw) for tw in tol.grad]})

    if "mul" in check.sound_ops:
        check.guard(lambda: one(trace(lambda x: x * x, [3.0])))
    check.examples(graphs_for(check, max_nodes=6), one)


OPS_SHOWN = {"mul": "*", "add": "+"}


def test_zero_grad(gradcert_check: Any) -> None:
    """Backward, zero_grad, then a new forward from the same leaves and backward:
    the gradients are zero after zero_grad, then exactly the fresh ones."""
    check = gradcert_check
    engine = check.engine
    if not check.caps.has_zero_grad:
        check.unsupported("the engine has no zero_grad")

    def one(g: Graph) -> None:
        ex, tol = judged(check, g)
        built = engine.build(g)
        engine.backward(built)
        engine.zero_grad(built)
        after = engine.grads(built)
        if any(a != 0.0 for a in after):
            raise Finding(f"after zero_grad the leaf gradients are {[fmt(a) for a in after]}, "
                          "not 0", g, expected=0.0, actual=[fmt(a) for a in after],
                          repro=None)
        again = engine.build(g, built)
        engine.backward(again)
        compare(check, g, engine.value(again), engine.grads(again), ex, tol)
        check.record.checked()

    check.examples(graphs_for(check, max_nodes=8), one)


def test_fresh_graph(gradcert_check: Any) -> None:
    """Build graph A, build and backpropagate an unrelated graph B, then backward A:
    both match the oracle."""
    check = gradcert_check
    engine = check.engine
    if check.caps.functional:
        check.unsupported("a functional engine builds every graph fresh by design")

    def one(ab: tuple[Graph, Graph]) -> None:
        a, b = ab
        ta, tb = oracle(check, a), oracle(check, b)
        assume(ta is not None and tb is not None)
        assert ta is not None and tb is not None
        built = engine.build(a)
        rb = engine.run(b, what="running the graph in between")
        compare(check, b, rb.value, rb.grads, *tb, label="between")
        engine.backward(built)
        compare(check, a, engine.value(built), engine.grads(built), *ta, label="a")
        check.record.checked(2)

    check.examples(st.tuples(graphs_for(check, max_nodes=6), graphs_for(check, max_nodes=6)),
                   one)


def test_equal_values(gradcert_check: Any) -> None:
    """Leaves and intermediate nodes with equal values stay distinct nodes:
    out = (x0 * x1) * x0 + (x1 * x0) with x0 == x1."""
    check = gradcert_check
    check.require("mul", "add")

    def one(v: float) -> None:
        g = trace(lambda x0, x1: (x0 * x1) * x0 + (x1 * x0), [v, v])
        check_graph(check, g)

    check.examples(gs.leaves("realistic").filter(lambda v: v != 0.0), one)


def test_constant_left(gradcert_check: Any) -> None:
    """c + x, c - x, c * x, c / x (the reflected operators) and c - x * x."""
    check = gradcert_check
    rops = tuple(o for o in ("raddc", "rsubc", "rmulc", "rdivc") if o in check.caps.ops)
    if not rops:
        check.unsupported("the engine has no reflected operator with a constant on the left")

    strategy = st.sampled_from(rops).flatmap(lambda op: st.tuples(st.just(op),
                                                                   gs.op_inputs(op)))

    def one(t: tuple[str, tuple[tuple[float, ...], float | None]]) -> None:
        op, (xs, c) = t
        check_graph(check, op_graph(op, xs, c))

    check.examples(strategy, one)
