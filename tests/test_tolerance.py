"""The tolerance model holds both ways: correct engines pass, small bugs fail.

Beside unit tests of the DESIGN.md examples, :func:`evidence` runs the model
on seeded random graphs against correct float64 engines (the reference
Value; a variant with other valid roundings: a * (1/b), local derivatives
from the rounded output as PyTorch computes them, x * x, reversed gradient
accumulation; and eight engines of a random family of correct ones, with
libm results a float up or down) and against that variant with a relative error
of 1e-9 planted in one local derivative: 10,000 graphs here, in five seeded
chunks; docs/measure_tolerance.py prints the rates quoted in
docs/tolerance.md.
"""

from __future__ import annotations

import math
import random
import struct
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import mpmath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcert.engine import Value
from gradcert.graph import DomainError, Graph, Node, node_operands, trace
from gradcert.ops import OPS
from gradcert.oracle import Unresolved, exact_graph
from gradcert.oracle.tolerance import SAFETY, UNIT_ROUNDOFF, Refused, Tolerance, tolerance

PLANT = 1e-9  # relative error planted in one local derivative
REACH = 0.01  # a plant counts where its edge carries >= 1% of the leaf's |gradient| mass
DROWNED = 1.0  # ... and moves it by more than the largest error of the correct engines


# ---------------------------------------------------------------------------
# Two correct float64 engines.


def reference_engine(graph: Graph) -> tuple[float, list[float]]:
    """gradcert's Value, replaying the graph op by op."""
    vals: list[Any] = []
    leaves = []
    for node in graph.nodes:
        if node.op == "leaf":
            v = Value(node.value)  # type: ignore[arg-type]
            leaves.append(v)
        else:
            v = OPS[node.op].apply(*node_operands(node, vals))
        vals.append(v)
    vals[-1].backward()
    return vals[-1].data, [leaf.grad for leaf in leaves]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


_VARIANT = {  # op -> (value, local derivatives from operands and output)
    "add": (lambda x, y: x + y, lambda x, y, o: (1.0, 1.0)),
    "sub": (lambda x, y: x - y, lambda x, y, o: (1.0, -1.0)),
    "mul": (lambda x, y: x * y, lambda x, y, o: (y, x)),
    "div": (lambda x, y: x * (1.0 / y), lambda x, y, o: (1.0 / y, -o / y)),
    "addc": (lambda x, c: x + c, lambda x, c, o: (1.0,)),
    "raddc": (lambda x, c: c + x, lambda x, c, o: (1.0,)),
    "subc": (lambda x, c: x - c, lambda x, c, o: (1.0,)),
    "rsubc": (lambda x, c: c - x, lambda x, c, o: (-1.0,)),
    "mulc": (lambda x, c: x * c, lambda x, c, o: (c,)),
    "rmulc": (lambda x, c: c * x, lambda x, c, o: (c,)),
    "divc": (lambda x, c: x * (1.0 / c), lambda x, c, o: (1.0 / c,)),
    "rdivc": (lambda x, c: c * (1.0 / x), lambda x, c, o: (-o / x,)),
    "neg": (lambda x: -x, lambda x, o: (-1.0,)),
    "powc": (lambda x, c: x * x if c == 2 else x**c,
             lambda x, c, o: (c * o / x if x != 0 else c * x ** (c - 1) if c else 0.0,)),
    "log": (math.log, lambda x, o: (1.0 / x,)),
    "exp": (math.exp, lambda x, o: (o,)),
    "relu": (lambda x: x if x > 0 else 0.0, lambda x, o: (1.0 if x > 0 else 0.0,)),
    "tanh": (math.tanh, lambda x, o: (1.0 - o * o,)),
    "sigmoid": (_sigmoid, lambda x, o: (o * (1.0 - o),)),
    "sqrt": (math.sqrt, lambda x, o: (0.5 / o,)),
    "abs": (abs, lambda x, o: (1.0 if x > 0 else -1.0 if x < 0 else 0.0,)),
    "max": (max, lambda x, y, o: (1.0, 0.0) if x > y else (0.0, 1.0) if y > x else (0.5, 0.5)),
    "min": (min, lambda x, y, o: (1.0, 0.0) if x < y else (0.0, 1.0) if y < x else (0.5, 0.5)),
    "log1p": (math.log1p, lambda x, o: (1.0 / (1.0 + x),)),
    "expm1": (math.expm1, lambda x, o: (o + 1.0,)),
    "erf": (math.erf, lambda x, o: (2.0 / math.sqrt(math.pi) * math.exp(-x * x),)),
    "sin": (math.sin, lambda x, o: (math.cos(x),)),
    "cos": (math.cos, lambda x, o: (-math.sin(x),)),
    "pow": (lambda x, y: x**y, lambda x, y, o: (y * o / x, o * math.log(x))),
}
assert set(_VARIANT) == set(OPS)


def _sech2(x: float) -> float:
    e = math.exp(-2.0 * abs(x))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _sigmoid_prime(x: float) -> float:
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


_OTHER = {  # other correct forms: value, local derivatives from the operands
    "div": (lambda x, y: x / y, lambda x, y, o: (1.0 / y, -x / (y * y))),
    "divc": (lambda x, c: x / c, lambda x, c, o: (1.0 / c,)),
    "rdivc": (lambda x, c: c / x, lambda x, c, o: (-c / (x * x),)),
    "powc": (lambda x, c: x**c, lambda x, c, o: (c * x ** (c - 1) if c else 0.0,)),
    "exp": (math.exp, lambda x, o: (math.exp(x),)),
    "tanh": (math.tanh, lambda x, o: (_sech2(x),)),
    "sigmoid": (lambda x: 1.0 / (1.0 + math.exp(-x)) if x > -700 else _sigmoid(x),
                lambda x, o: (_sigmoid_prime(x),)),
    "sqrt": (math.sqrt, lambda x, o: (1.0 / (2.0 * math.sqrt(x)),)),
    "expm1": (math.expm1, lambda x, o: (math.exp(x),)),
    "pow": (lambda x, y: x**y, lambda x, y, o: (y * x ** (y - 1.0), x**y * math.log(x))),
}
_LIBM = frozenset({"powc", "log", "exp", "tanh", "sigmoid", "log1p", "expm1", "erf", "sin",
                   "cos", "pow"})  # within 1 ulp, not rounded


_OP_INDEX = {name: k for k, name in enumerate(sorted(OPS))}


def _faithful(x: float, key: tuple[Any, ...]) -> float:
    """x, or a float next to it, as a function of ``key`` (the engine, op and
    inputs), as a deterministic libm: up to 1.5 ulps from the exact result
    when x is correctly rounded, a little more than a libm within 1 ulp. An
    exact zero, such as the derivative of x ** 0, stays exact."""
    k = hash(key) % 3
    return x if not k or not x or not math.isfinite(x) else math.nextafter(
        x, math.inf if k == 1 else -math.inf)


def _f32(x: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def variant_engine(graph: Graph, plant: tuple[int, int, float] | None = None,
                   absolute: bool = False, float32: bool = False,
                   rng: random.Random | None = None) -> tuple[float, list[float]]:
    """A PyTorch-like float64 engine; ``plant=(node, operand, rel)`` bends one local
    derivative; ``absolute`` sums |local derivatives| instead (the gradient mass);
    ``float32`` rounds every input, constant and result to float32.

    With ``rng``, one of a family of correct float64 engines instead: per op
    a form drawn at random (a / b or a * (1/b), derivatives from the operands
    or from the rounded output), libm results (powers, log, exp, tanh,
    sigmoid and their derivatives) moved to a neighbouring float or not, as
    a function of their inputs (:func:`_faithful`), and gradient terms
    summed in a random order."""
    r = _f32 if float32 else float
    nodes = graph.nodes
    vals: list[float] = []
    parts: list[tuple[float, ...]] = []
    forms = {op: (_VARIANT[op][0] if rng.random() < 0.5 else _OTHER[op][0],
                  _VARIANT[op][1] if rng.random() < 0.5 else _OTHER[op][1])
             for op in sorted(_OTHER)} if rng is not None else {}
    salt = rng.random() if rng is not None else 0.0
    for node in nodes:
        if node.op == "leaf":
            vals.append(r(node.value))  # type: ignore[arg-type]
            parts.append(())
            continue
        f, d = forms.get(node.op) or _VARIANT[node.op]
        xs = node_operands(node, vals, r)
        out = r(f(*xs))
        libm = rng is not None and node.op in _LIBM
        if libm:
            out = _faithful(out, (salt, _OP_INDEX[node.op], *xs))
        vals.append(out)
        ps = tuple(abs(p) if absolute else r(p) for p in d(*xs, out))
        if libm:
            ps = tuple(_faithful(p, (salt, _OP_INDEX[node.op], k, *xs))
                       for k, p in enumerate(ps))
        parts.append(ps)
    if plant is not None:
        i, k, rel = plant
        p = list(parts[i])
        p[k] *= 1.0 + rel
        parts[i] = tuple(p)
    terms: list[list[float]] = [[] for _ in nodes]
    adj = [0.0] * len(nodes)
    terms[-1].append(1.0)
    for i in range(len(nodes) - 1, -1, -1):
        a = 0.0
        if rng is not None:
            rng.shuffle(terms[i])
        for t in reversed(terms[i]):  # another summation order than Value's
            a = r(a + t)
        adj[i] = a
        for j, p in zip(nodes[i].args, parts[i], strict=True):
            terms[j].append(r(a * p))
    return vals[-1], [adj[i] for i in graph.leaves]


# ---------------------------------------------------------------------------
# Seeded random graphs: every op, fan-out, mixed magnitudes, domain respected.

_OPNAMES = sorted(OPS)
_POWERS = (2.0, 3.0, -1.0, 0.5, 1.5, -0.5, -2.0, 0.0, 1.0, 2.5, 4.0)
_SPECIAL = (0.5, -0.5, 1.0, 2.0, 0.1, 1e-8, 20.0, -20.0, 35.0, -35.0)


def _leaf(rng: random.Random) -> float:
    k = rng.random()
    if k < 0.5:
        return rng.uniform(-3.0, 3.0)
    if k < 0.8:
        return rng.gauss(0.0, 1.0) * 10.0 ** rng.uniform(-4.0, 4.0)
    if k < 0.9:
        return float(rng.randint(-4, 4))
    return rng.choice(_SPECIAL)


def _const(op: str, rng: random.Random) -> float:
    if op == "powc":
        return rng.choice(_POWERS)
    c = rng.uniform(-4.0, 4.0) if rng.random() < 0.7 else float(rng.randint(-3, 3))
    return 1.0 if op == "divc" and c == 0 else c


def random_graph(rng: random.Random, max_ops: int = 20) -> Graph:
    nodes: list[Node] = []
    vals: list[float] = []
    for _ in range(rng.randint(1, 4)):
        nodes.append(Node.leaf(_leaf(rng)))
        vals.append(nodes[-1].value)  # type: ignore[arg-type]
    n_leaves, n_ops = len(nodes), rng.randint(1, max_ops)
    while len(nodes) - n_leaves < n_ops:
        op = OPS[rng.choice(_OPNAMES)]
        args = tuple(len(nodes) - 1 - min(int(rng.expovariate(0.4)), len(nodes) - 1)
                     for _ in range(op.arity))
        node = Node(op.name, args, _const(op.name, rng) if op.has_const else None)
        xs = node_operands(node, vals)
        if op.domain(*xs) or (op.name in ("exp", "sigmoid", "tanh") and abs(xs[0]) > 1e4):
            continue  # (exp(-1e16) and tanh.(1e16) are beyond the oracle.s exponent range)
        try:
            v = op.forward(math, *xs)
        except (OverflowError, ZeroDivisionError, ValueError):
            continue
        if not 1e-30 <= abs(v) <= 1e30 and v != 0.0:
            continue
        nodes.append(node)
        vals.append(v)
    return Graph(tuple(nodes))


# ---------------------------------------------------------------------------
# The evidence: false positives of correct engines, detection of planted errors.


@dataclass
class Evidence:
    graphs: int = 0
    skipped: Counter = field(default_factory=Counter)  # graphs the oracle refused, by why
    margin: float = 0.0  # the largest |correct engine - exact| / bound seen
    mca_larger: int = 0  # bounds (value or gradient) set by the Monte Carlo spread
    bounds: int = 0
    false_positives: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)  # checks refused (no bound), by engine
    # one plant per graph: (caught, reaches the output, |effect| / correct engines' error)
    plants: list = field(default_factory=list)
    examples: list = field(default_factory=list)

    def detection(self, drowned: float = DROWNED) -> tuple[int, int]:
        """(caught, counted): plants that reach the output and stand out of the
        error correct engines make on the same gradient by more than ``drowned``x."""
        counted = [c for c, reach, ratio in self.plants if reach and ratio > drowned]
        return sum(counted), len(counted)


ENGINES = {"reference": reference_engine, "variant": variant_engine}
FAITHFUL = 8  # engines of variant_engine's random family, per graph, beside ENGINES


def _live(graph: Graph) -> list[bool]:
    live = [False] * len(graph.nodes)
    live[-1] = True
    for i in range(len(graph.nodes) - 1, -1, -1):
        if live[i]:
            for a in graph.nodes[i].args:
                live[a] = True
    return live


def evidence(n_graphs: int, seed: int = 0, max_ops: int = 20) -> Evidence:
    rng = random.Random(seed)
    ev = Evidence()
    while ev.graphs < n_graphs:
        graph = random_graph(rng, max_ops)
        try:
            ex = exact_graph(graph)
        except (DomainError, Unresolved) as e:
            ev.skipped[type(e).__name__] += 1
            continue
        ev.graphs += 1
        tol = tolerance(graph, ex, seed=ev.graphs)
        lin = (tol.linear_value, *tol.linear_grad)
        mca = (tol.mca_value, *tol.mca_grad)
        ev.bounds += len(lin)
        ev.mca_larger += sum(m > x for m, x in zip(mca, lin, strict=True))
        errors = [0.0] * len(ex.grad)
        family = random.Random(ev.graphs)
        faithful = ("faithful", lambda g, rng=family: variant_engine(g, rng=rng))
        engines = [*ENGINES.items(), *[faithful] * FAITHFUL]  # each call draws an engine
        failed = set()
        runs = []
        try:
            runs = [(name, *engine(graph)) for name, engine in engines]
        except (ValueError, ZeroDivisionError):  # sqrt(sin(3.9e26)): a correct float64
            ev.graphs -= 1  # evaluation leaves a domain the exact one keeps: nothing to judge
            ev.skipped["a correct float64 evaluation leaves the domain"] += 1
            continue
        for name, value, grads in runs:
            try:
                bad = tol.check(value, grads, ex)
            except Refused:  # an infinite bound judges nothing: neither pass nor failure
                ev.refused[name] += 1
                continue
            if bad and name not in failed:
                failed.add(name)
                ev.false_positives[name] += 1  # graphs, not engines
                ev.examples.append((name, graph.to_json(), [str(v) for v in bad]))
            errors = [max(e, float(abs(g - x))) for e, g, x in zip(errors, grads, ex.grad,
                                                                 strict=True)]
            for got, want, bound in zip((value, *grads), (ex.value, *ex.grad),
                                        (tol.value, *tol.grad), strict=True):
                if 0 < bound < math.inf:
                    ev.margin = max(ev.margin, float(abs(got - want)) / bound)
        live = _live(graph)
        i, k = rng.choice([(i, k) for i, n in enumerate(graph.nodes) if live[i]
                           for k in range(len(n.args))] or [(0, 0)])
        if graph.nodes[i].op == "leaf":
            continue  # a graph that is one leaf has no local derivative
        _, clean = variant_engine(graph)
        value, planted = variant_engine(graph, plant=(i, k, PLANT))
        _, mass = variant_engine(graph, absolute=True)
        try:
            caught = bool(tol.check(value, planted, ex))
        except Refused:
            ev.refused["planted"] += 1
            continue
        reach, ratio = False, 0.0
        for c, p, m, e in zip(clean, planted, mass, errors, strict=True):
            if m > 0 and abs(p - c) / PLANT >= REACH * m:
                reach = True
                ratio = max(ratio, abs(p - c) / e if e else math.inf)
        ev.plants.append((caught, reach, ratio))
        if reach and ratio > DROWNED and not caught:
            ev.examples.append(("missed", graph.to_json(), (i, k)))
    return ev


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.slow
def test_correct_engines_pass_and_planted_errors_fail_on_10000_graphs(seed):
    ev = evidence(2000, seed=seed)  # 5 x 2,000 graphs, in chunks that xdist can spread
    assert not ev.false_positives, (dict(ev.false_positives), ev.examples[:3])
    caught, counted = ev.detection()
    assert counted >= 1000, counted
    assert caught >= 0.99 * counted, (caught, counted, ev.examples[:3])


# ---------------------------------------------------------------------------
# DESIGN.md's examples, both ways.


def _check(f, xs, value, grads, dtype="float64"):
    graph = trace(f, xs)
    ex = exact_graph(graph)
    return tolerance(graph, ex, dtype=dtype).check(value, grads, ex), ex


def test_tanh_prime_20_from_rounded_output_passes():
    t = math.tanh(20.0)
    assert t == 1.0 and 1.0 - t * t == 0.0  # what PyTorch computes
    bad, ex = _check(lambda x: x.tanh(), [20.0], t, [1.0 - t * t])
    assert 1.6e-17 < ex.grad[0] < 1.8e-17
    assert bad == []


def test_sigmoid_prime_35_from_rounded_output_passes():
    s = _sigmoid(35.0)
    d = s * (1.0 - s)
    bad, ex = _check(lambda x: x.sigmoid(), [35.0], s, [d])
    assert 0.05 < abs(d - ex.grad[0]) / ex.grad[0] < 0.06  # 5.6% off, yet correct
    assert bad == []


def test_tanh_prime_400_of_one_fails():
    bad, _ = _check(lambda x: x.tanh(), [400.0], 1.0, [1.0])
    assert [(v.what, v.leaf) for v in bad] == [("grad", 0)]
    assert bad[0].ulps > 1e15 and bad[0].error == 1.0 and bad[0].bound < 1e-14
    assert str(bad[0]).startswith("d out / d leaf 0: got 1.0, exact 0.0, off by 1 > bound")


def test_planted_error_in_log_prime_fails():
    f = lambda x, y: (x * y).log() + x  # noqa: E731
    xs = [3.0, 0.7]
    value, grads = reference_engine(trace(f, xs))
    assert _check(f, xs, value, grads)[0] == []
    p = xs[0] * xs[1]
    planted = [g + (1.0 / p) * PLANT * y for g, y in zip(grads, xs[::-1], strict=True)]
    bad = _check(f, xs, value, planted)[0]
    assert [v.leaf for v in bad] == [0, 1]


@given(st.floats(-800.0, 800.0))
def test_output_form_tanh_and_sigmoid_pass_everywhere(x):
    for op, fwd in (("tanh", math.tanh), ("sigmoid", _sigmoid)):
        graph = Graph((Node.leaf(x), Node(op, (0,))))
        ex = exact_graph(graph)
        tol = tolerance(graph, ex)
        out = fwd(x)
        _, (d,) = variant_engine(graph)
        assert tol.check(out, [d], ex) == [], (op, x)
        assert tol.check(*reference_engine(graph), ex) == [], (op, x)


@given(st.floats(1e-300, 1e300), st.sampled_from([1e-9, -1e-9, 1e-6]))
def test_relative_error_in_log_prime_fails_everywhere(x, rel):
    graph = Graph((Node.leaf(x), Node("log", (0,))))
    ex = exact_graph(graph)
    bad = tolerance(graph, ex).check(math.log(x), [(1.0 / x) * (1.0 + rel)], ex)
    assert [v.what for v in bad] == ["grad"]


def test_ill_conditioned_but_correct_result_passes_and_bound_follows_conditioning():
    f = lambda x: (x + 1e8) - 1e8  # noqa: E731
    graph = trace(f, [0.1])
    ex = exact_graph(graph)
    value = (0.1 + 1e8) - 1e8
    assert abs(value - 0.1) / 0.1 > 1e-9  # far outside any fixed rtol near 1e-12
    tol = tolerance(graph, ex)
    assert tol.check(value, [1.0], ex) == []
    well = tolerance(trace(lambda x: x * 3.0, [0.1]))
    assert tol.value / 0.1 > 1e6 * well.value / 0.3


def test_relu_whose_input_rounds_to_zero_allows_either_branch():
    x = math.nextafter(1 / 3, 1.0)  # 3x = 1 + 2**-53 exactly: float64 rounds it to 1.0
    graph = trace(lambda x: (x * 3.0 - 1.0).relu() * 5.0, [x])
    ex = exact_graph(graph)
    assert ex.grad[0] == 15  # the exact relu input is 2**-53 > 0
    value, grads = reference_engine(graph)
    assert grads == [0.0]  # the float relu input is 0.0
    tol = tolerance(graph, ex)
    assert tol.check(value, grads, ex) == [] and tol.check(value, [15.0], ex) == []
    assert tol.check(value, [1000.0], ex) != []
    assert tol.value < 1e-14


# ---------------------------------------------------------------------------
# The Tolerance object and bad input.


def test_bounds_scale_with_dtype_and_are_deterministic():
    graph = trace(lambda x, y: (x * y).exp() / (x + 2.0), [0.3, -1.2])
    t64, t32 = tolerance(graph), tolerance(graph, dtype="float32")
    ratio = UNIT_ROUNDOFF["float32"] / UNIT_ROUNDOFF["float64"]
    assert 0.5 * ratio < t32.value / t64.value < 2 * ratio
    assert tolerance(graph, seed=3) == tolerance(graph, seed=3)
    assert isinstance(t64, Tolerance) and t64.safety == SAFETY
    assert t64.value == SAFETY * max(t64.linear_value, t64.mca_value)
    assert "8 x max" in t64.describe() and "float64" in t64.describe()


def test_non_finite_results_are_violations():
    graph = trace(lambda x: x * 2.0, [1.5])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    bad = tol.check(math.nan, [math.inf], ex)
    assert [(v.what, v.ulps) for v in bad] == [("value", math.inf), ("grad", math.inf)]
    assert "got nan" in str(bad[0])


def test_overflow_matching_the_exact_overflow_is_not_a_violation():
    graph = trace(lambda x: x * 2.0, [1.5])
    tol = tolerance(graph)
    ex = SimpleNamespace(value=mpmath.mpf("1e400"), grad=(mpmath.mpf(2),),
                         value_f64=math.inf, grad_f64=(2.0,))
    assert tol.check(math.inf, [2.0], ex) == []
    assert [v.what for v in tol.check(1e308, [2.0], ex)] == ["value"]


def test_bad_input_is_refused_with_a_clear_message():
    graph = trace(lambda x: x * 2.0, [1.5])
    ex = exact_graph(graph)
    with pytest.raises(ValueError, match="dtype must be one of"):
        tolerance(graph, dtype="float16")
    with pytest.raises(TypeError, match="expected a gradcert.graph.Graph"):
        tolerance("x * 2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 gradients given for 1 leaves"):
        tolerance(graph).check(3.0, [2.0, 2.0], ex)
    with pytest.raises(ValueError, match="another graph"):
        tolerance(trace(lambda x, y: x * y, [1.0, 2.0]), ex)
    with pytest.raises(ValueError, match="the exact result is of another graph"):
        tolerance(trace(lambda x: x * 3.0, [1.5]), ex)
    with pytest.raises(ValueError, match="exact result has 1 gradients for 2 leaves"):
        tolerance(trace(lambda x, y: x * y, [1.0, 2.0])).check(2.0, [2.0, 1.0], ex)
    with pytest.raises(ValueError, match="value is not a number"):
        tolerance(graph).check("three", [2.0], ex)  # type: ignore[arg-type]


def test_runs_pushed_out_of_the_domain_are_dropped_and_the_bound_stays_honest():
    x = 1.0 + 2.0**-52
    graph = trace(lambda x, y: (x * 1.0 - y * 1.0).log(), [x, 1.0])  # log(2**-52)
    ex = exact_graph(graph)
    tols = [tolerance(graph, ex, seed=s) for s in range(20)]
    assert min(t.runs for t in tols) < 4 <= max(t.runs for t in tols)
    # the log's input is known only to about its own size: the bound says so, and
    # where the interval reaches the pole (an infinite bound) the check refuses
    assert all(t.value > 1.0 for t in tols) and any(math.isinf(t.value) for t in tols)
    for t in tols:
        if math.isinf(t.value):
            with pytest.raises(Refused, match="cannot be judged"):
                t.check(*reference_engine(graph), ex)
        else:
            assert t.check(*reference_engine(graph), ex) == []


def test_a_graph_outside_the_domain_in_float64_is_refused():
    graph = Graph((Node.leaf(-1.0), Node("log", (0,))))
    with pytest.raises(DomainError, match="log needs a positive input"):
        tolerance(graph)


def test_a_float32_engine_passes_the_float32_model_and_not_the_float64_one():
    rng = random.Random(11)
    checked = outside64 = 0
    while checked < 300:
        graph = random_graph(rng, 12)
        try:
            ex = exact_graph(graph)
            value, grads = variant_engine(graph, float32=True)
        except (DomainError, Unresolved, ValueError, ZeroDivisionError):
            continue  # outside the domain in float32 (a difference rounded to 0)
        if not all(math.isfinite(v) for v in (value, *grads)):
            continue  # beyond float32's range
        checked += 1
        assert tolerance(graph, ex, dtype="float32").check(value, grads, ex) == [], graph
        outside64 += bool(tolerance(graph, ex).check(value, grads, ex))
    assert outside64 > checked // 2


def test_pytorch_float64_passes_on_300_graphs():
    torch = pytest.importorskip("torch")
    fns = {"log": torch.log, "exp": torch.exp, "relu": torch.relu, "tanh": torch.tanh,
           "sigmoid": torch.sigmoid}
    rng = random.Random(5)
    checked = 0
    while checked < 300:
        graph = random_graph(rng, 20)
        try:
            ex = exact_graph(graph)
        except (DomainError, Unresolved):
            continue
        checked += 1
        vals: list[Any] = []
        leaves = []
        for node in graph.nodes:
            if node.op == "leaf":
                v = torch.tensor(node.value, dtype=torch.float64, requires_grad=True)
                leaves.append(v)
            elif node.op in fns:
                v = fns[node.op](vals[node.args[0]])
            else:
                v = OPS[node.op].apply(*node_operands(node, vals))
            vals.append(v)
        vals[-1].backward()
        grads = [0.0 if x.grad is None else x.grad.item() for x in leaves]
        assert tolerance(graph, ex).check(vals[-1].item(), grads, ex) == [], graph


def test_a_minus_a_is_exact_also_from_separate_nodes():
    graph = trace(lambda x: (x.tanh() - x.tanh()).relu() * 3.0 + x, [0.3])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    assert tol.check(*reference_engine(graph), ex) == []
    # the relu's input is exactly 0 in every engine, so its branch is certain
    assert tol.grad[0] < 1e-14
    assert tol.check(ex.value_f64, [4.0], ex) != []


def test_results_that_underflow_to_zero_are_within_the_bound():
    graph = trace(lambda x: x.sigmoid() * 2.0, [-800.0])
    ex = exact_graph(graph)
    assert 0 < ex.value < 1e-300 and 0 < ex.grad[0] < 1e-300
    value, grads = reference_engine(graph)
    assert value == 0.0 and grads == [0.0]
    tol = tolerance(graph, ex)
    assert tol.check(value, grads, ex) == []
    assert tol.value < 1e-320


def test_overflowing_graph_gets_an_infinite_bound_and_must_overflow_too():
    graph = trace(lambda x: x.exp() * 0.5, [800.0])
    ex = exact_graph(graph)
    assert ex.overflow and ex.value_f64 == math.inf
    tol = tolerance(graph, ex)
    assert tol.value == math.inf
    assert tol.check(math.inf, [math.inf], ex) == []
    assert [v.what for v in tol.check(1e308, [math.inf], ex)] == ["value"]
    assert tolerance(trace(lambda x: x**-2.0 + 1.0, [1e-200])).value == math.inf


def test_an_overflow_of_an_exact_intermediate_is_agreement_on_the_reference_engine():
    # x * 1e300 * 1e20 is 1e320 exactly: beyond float64, so every correct engine
    # gives inf, and inf * 1e-100 stays inf, though the exact value is 1e220
    graph = trace(lambda x: x * 1e300 * 1e20 * 1e-100, [1.0])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    assert not ex.overflow and math.isfinite(ex.value_f64) and tol.value == math.inf
    value, grads = reference_engine(graph)
    assert value == math.inf and tol.check(value, grads, ex) == []
    assert [v.what for v in tol.check(-math.inf, grads, ex)] == ["value"]  # wrong sign
    with pytest.raises(Refused, match="the bound is inf"):
        tol.check(1e300, grads, ex)  # a number: no bound can judge it
    assert [v.what for v in tol.check(value, [2e220], ex)] == ["grad"]  # finite bound


def test_an_overflow_is_refused_where_the_intermediates_cannot_be_certified():
    # the oracle certifies each node's value when first read: where it cannot, whether
    # an intermediate overflowed is unknown, and an engine's inf is not judged
    graph = trace(lambda x: x * 1e300 * 1e20 * 1e-100, [1.0])
    ex = exact_graph(graph)

    class Uncertain:  # the oracle's answers, but no certified intermediates
        value, grad, value_f64, grad_f64 = ex.value, ex.grad, ex.value_f64, ex.grad_f64

        @property
        def values_f64(self):
            raise Unresolved(2, "the value of node 2 is not certified")

    value, grads = reference_engine(graph)
    assert tolerance(graph, ex).check(value, grads, ex) == []  # certified: agreement
    with pytest.raises(Refused, match="cannot certify the intermediates"):
        tolerance(graph, ex).check(value, grads, Uncertain())


@given(st.one_of(st.floats(allow_nan=True), st.sampled_from([math.inf, -math.inf, 0.0])))
def test_an_infinite_bound_never_passes(actual):
    # the value's bound is inf (a correct float64 run overflows): only the overflow
    # every correct engine has agrees; another infinity or NaN is a violation, and a
    # number is refused: never a pass
    graph = trace(lambda x: x * 1e300 * 1e20 * 1e-100, [1.0])
    ex = exact_graph(graph)
    tol = tolerance(graph, ex)
    try:
        bad = tol.check(actual, [float(ex.grad_f64[0])], ex)
    except Refused as e:
        assert math.isfinite(actual) and "cannot be judged" in str(e)
    else:
        assert not math.isfinite(actual)
        assert (bad == []) == (actual == math.inf)
    # a pole reached by rounding: 1e-200 ** -3 overflows in the gradient, so its bound
    # is inf, and no gradient passes (an engine's +inf has the wrong sign)
    pole = trace(lambda x: x**-2.0 * 1e-300, [1e-200])
    ex2 = exact_graph(pole)
    t2 = tolerance(pole, ex2)
    assert not math.isfinite(t2.grad[0]) and math.isfinite(ex2.grad_f64[0])
    try:
        assert [v.what for v in t2.check(math.inf, [actual], ex2)] == ["grad"]
    except Refused:
        assert math.isfinite(actual)
    nan_bound = Tolerance(math.nan, (1.0,), "m", 8.0, "float64", 0.0, (0.0,), 0.0, (0.0,), 0)
    one = exact_graph(trace(lambda x: x * 2.0, [1.5]))
    try:
        assert nan_bound.check(actual, [2.0], one) != []
    except Refused:
        assert math.isfinite(actual)


def test_float32_counts_the_rounding_of_inputs_and_constants():
    u = UNIT_ROUNDOFF["float32"]
    exact_inputs = tolerance(trace(lambda x: x * 0.5, [3.0]), dtype="float32")
    assert exact_inputs.linear_value == 1.5 * u  # one rounding: 3.0 and 0.5 are float32s
    rounded = tolerance(trace(lambda x: x * 0.1, [0.3]), dtype="float32")
    assert rounded.linear_value >= 3 * 0.03 * u  # 0.3, 0.1 and the product round
    assert tolerance(trace(lambda x: x + 1.0, [1e39]), dtype="float32").value == math.inf


def test_an_operand_off_by_far_more_than_itself_is_bounded_not_extrapolated():
    # sigmoid(172) is 1 - 1.5e-75; a libm within 1 ulp may return 1 - 2**-53,
    # whose log is -1.1e-16 instead of -1.5e-75: then the cube's value and
    # derivative are off by far more than first order says (3 x^2 dx, with
    # x = -1.5e-75), and only the slope over the whole interval bounds them
    graph = trace(lambda x: x.sigmoid().log() ** 3, [172.0])
    ex = exact_graph(graph)
    s = math.nextafter(1.0, 0.0)
    t = math.log(s)
    value, grad = t**3, 3 * t * t * (1 / s) * (s * (1 - s))
    assert abs(value - ex.value_f64) > 1e50 * abs(ex.value_f64)
    tol = tolerance(graph, ex)
    assert tol.check(value, [grad], ex) == []
    assert tol.check(value * 1e6, [grad], ex) != []
    # the running error bound covers it alone, Monte Carlo runs aside
    assert tol.linear_value >= abs(value - ex.value_f64)
    assert tol.linear_grad[0] >= abs(grad - ex.grad_f64[0])
