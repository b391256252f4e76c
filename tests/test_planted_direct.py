"""The planted engines, checked without the harness: each defect is really there,
and nothing else is wrong.

For every defective engine a witness (a hand-written expression) shows the
defect against gradcert's reference engine by far more than rounding: a
wrong value or gradient, a finite result where the reference raises, or a
RecursionError. For every correct engine, and for every defective engine on
graphs that avoid the ops its defect touches, hypothesis-generated graphs
agree with the reference engine to 1e-12 relative to the graph's magnitudes
(a first-order bound on how far two valid roundings can drift apart).
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# pytest puts tests/ on sys.path (rootdir conftest, no tests/__init__.py), as
# its doctest collection of tests/planted/ does: one import name for both.
from planted import catalogue, engines

from gradcert.adapters.generic import probe
from gradcert.engine import Value as Reference
from gradcert.graph import Graph, Node, node_operands, to_python
from gradcert.ops import OPS

DEFECTIVE = catalogue.defective()
CORRECT = catalogue.correct()
ids = lambda e: e.name  # noqa: E731


# -- the catalogue's shape -----------------------------------------------------


def test_catalogue_lists_every_engine_module_once():
    modules = {m.name for m in pkgutil.iter_modules(engines.__path__)}
    names = [e.name for e in catalogue.CATALOGUE]
    assert len(names) == len(set(names))
    assert set(names) | catalogue.NOTES_ONLY == modules
    assert not set(names) & catalogue.NOTES_ONLY


def test_catalogue_has_enough_engines_and_known_property_ids():
    assert len(DEFECTIVE) >= 15
    assert len(CORRECT) >= 3  # the base and at least two other valid roundings
    for e in DEFECTIVE:
        assert e.expect <= catalogue.ALL_PROPERTIES, e.name
        assert e.may_also_fail <= catalogue.ALL_PROPERTIES, e.name
        assert not e.expect & e.may_also_fail, e.name
    for e in CORRECT:
        assert e.may_also_fail == frozenset() and e.touches == frozenset(), e.name


def test_property_ids_are_the_suites():
    registry = pytest.importorskip("gradcert.properties.registry")
    assert set(registry.PROPERTIES) == catalogue.ALL_PROPERTIES


def test_targets_name_importable_value_classes():
    base = catalogue.get("base").load()
    for e in catalogue.CATALOGUE:
        module, attr = e.target.split(":")
        cls = getattr(importlib.import_module(module), attr)
        assert cls is e.load() and issubclass(cls, base)
    with pytest.raises(KeyError, match="no planted engine 'nope'"):
        catalogue.get("nope")


_CLASS_BOOKKEEPING = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                      "__annotations__", "__firstlineno__", "__static_attributes__"}


@pytest.mark.parametrize("entry", [e for e in catalogue.CATALOGUE if e.name != "base"], ids=ids)
def test_each_engine_is_the_base_with_one_small_change(entry):
    base = catalogue.get("base").load()
    cls = entry.load()
    assert cls.__bases__ == (base,)
    own = set(vars(cls)) - _CLASS_BOOKKEEPING
    assert 1 <= len(own) <= 2, f"{entry.name} overrides {sorted(own)}"
    for name in own:
        assert hasattr(base, name), f"{entry.name}.{name} is not a hook point of the base"
        lines = inspect.getsource(getattr(cls, name))
        assert lines.count("\n") <= 25, f"{entry.name}.{name} is not a small change"
    if not entry.correct:
        assert "DEFECT" in inspect.getsource(cls), "mark the defective line"


# -- witnesses: each defect, shown directly --------------------------------------


@dataclass(frozen=True)
class Witness:
    """``f(*xs)`` built on the engine and on the reference; ``shows`` what differs.

    ``"value"`` or ``"grad"``: that part differs by at least ``min_rel``
    relative (and for ``"grad"`` the value agrees); ``"finite"``: the engine
    returns a finite number where the reference raises; ``"recursion"``: the
    engine's backward raises RecursionError where the reference's does not.
    """

    f: Callable[..., Any]
    xs: Sequence[float]
    shows: str
    min_rel: float = 1e-3
    backwards: int = 1


def _shared(x):
    a = x * 2.0
    return a + a  # `a` feeds both operands: its gradient must be passed on once


def _chain(x):
    for _ in range(3000):
        x = x + 1.0
    return x


def _reused(x):
    y = x * x
    y.backward()  # the node y, backpropagated, is then reused
    return y * x


WITNESSES: dict[str, list[Witness]] = {
    "grad_assigned": [Witness(lambda x: x * x + x, [3.0], "grad")],
    "pow_forgot_minus_one": [Witness(lambda x: x ** 3, [2.0], "grad")],
    "pow_wrong_coefficient": [Witness(lambda x: x ** 3, [2.0], "grad")],
    "log_grad_squared": [Witness(lambda x: x.log(), [2.0], "grad")],
    "log_eps_guard": [Witness(lambda x: x.log(), [1e-8], "grad", 0.1),
                      Witness(lambda x: x.log(), [1.0], "grad", 1e-9)],
    "log_clamped": [Witness(lambda x: x.log(), [-1.0], "finite"),
                    Witness(lambda x: x.log(), [0.0], "finite"),
                    Witness(lambda x: x.log(), [1e-20], "value")],
    "exp_grad_from_input": [Witness(lambda x: x.exp(), [2.0], "grad")],
    "exp_clamped": [Witness(lambda x: x.exp(), [100.0], "value"),
                    Witness(lambda x: x.exp(), [1000.0], "finite")],
    "relu_grad_ge_zero": [Witness(lambda x: x.relu(), [-3.0], "grad")],
    "relu_leaky": [Witness(lambda x: x.relu(), [-2.0], "value")],
    "tanh_missing_square": [Witness(lambda x: x.tanh(), [1.0], "grad")],
    "tanh_exp_formula": [Witness(lambda x: x.tanh(), [1e-9], "value", 1e-9)],
    "sigmoid_grad_float32": [Witness(lambda x: x.sigmoid(), [0.3], "grad", 1e-9)],
    "rsub_reversed": [Witness(lambda x: 2.0 - x, [5.0], "value")],
    "rdiv_reversed": [Witness(lambda x: 2.0 / x, [4.0], "value")],
    "div_denominator_sign": [Witness(lambda x, y: x / y, [3.0, 2.0], "grad")],
    "div_eps_guard": [Witness(lambda x, y: x / y, [1.0, 1e-6], "value", 1e-7),
                      Witness(lambda x, y: x / y, [1.0, 0.0], "finite")],
    "sub_grad_sign": [Witness(lambda x, y: x - y, [3.0, 2.0], "grad")],
    "mul_grad_own_operand": [Witness(lambda x, y: x * y, [2.0, 5.0], "grad")],
    "topo_no_visited": [Witness(_shared, [1.5], "grad")],
    "topo_recursive": [Witness(_chain, [0.5], "recursion")],
    "stale_intermediate_grads": [Witness(lambda x: x * x + x, [3.0], "grad", backwards=2)],
    "float32_storage": [Witness(lambda x: x * 3.0, [0.1], "value", 1e-9)],
    "pow_zero_base_grad": [Witness(lambda x: x ** 0, [0.0], "raises")],
    "div_grad_y_squared": [Witness(lambda x, y: x / y, [1e-300, 1e-200], "raises")],
    "sigmoid_exp_overflow": [Witness(lambda x: x.sigmoid(), [-745.0], "raises")],
    "visited_never_cleared": [Witness(_reused, [3.0], "grad")],
    "no_radd_recursive": [Witness(_chain, [0.5], "recursion")],
    "equal_values_merged": [Witness(lambda x, y: x * 3.0 + y * 2.0, [2.0, 3.0], "grad")],
}


def _run(V: Any, w: Witness) -> tuple[float, list[float]]:
    leaves = [V(x) for x in w.xs]
    out = w.f(*leaves)
    for _ in range(w.backwards):
        out.backward()
    return float(out.data), [float(x.grad) for x in leaves]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def test_every_defective_engine_has_a_witness():
    assert set(WITNESSES) == {e.name for e in DEFECTIVE}


@pytest.mark.parametrize("entry", DEFECTIVE, ids=ids)
def test_witness_shows_the_defect(entry):
    V = entry.load()
    for w in WITNESSES[entry.name]:
        if w.shows == "finite":
            with pytest.raises((ValueError, ZeroDivisionError, OverflowError)):
                _run(Reference, w)
            value, _ = _run(V, w)
            assert math.isfinite(value), f"{entry.name}: {value!r} at {w.xs}"
            continue
        ref_value, ref_grads = _run(Reference, w)
        if w.shows == "raises":
            assert math.isfinite(ref_value) and all(map(math.isfinite, ref_grads))
            with pytest.raises(ArithmeticError):
                _run(V, w)
            continue
        if w.shows == "recursion":
            with pytest.raises(RecursionError):
                _run(V, w)
            continue
        value, grads = _run(V, w)
        if w.shows == "value":
            assert _rel(value, ref_value) >= w.min_rel, (entry.name, value, ref_value)
        else:
            assert _rel(value, ref_value) <= 1e-15, (entry.name, value, ref_value)
            worst = max(_rel(g, r) for g, r in zip(grads, ref_grads, strict=True))
            assert worst >= w.min_rel, (entry.name, grads, ref_grads)


# -- agreement with the reference engine on generated graphs ----------------------

_CONSTS = (-2.0, -0.5, 0.5, 1.5, 2.0, 3.0)
_EXPONENTS = (-2.0, -1.0, 0.5, 1.5, 2.0, 3.0)
_LEAVES = st.floats(0.1, 3.0) | st.floats(-3.0, -0.1) | st.sampled_from([1.0, 2.0, -1.0])


@st.composite
def graphs_over(draw: Any, ops: Sequence[str]) -> Graph:
    """Small graphs over ``ops``: every value in [1e-6, 1e6] in magnitude (or relu's 0).

    Values stay clear of 0 so two engines whose roundings differ still take
    the same side of every kink and domain edge. A drawn node whose inputs
    leave its op's domain or that range is dropped, not rejected.
    """
    nodes = [Node.leaf(draw(_LEAVES)) for _ in range(draw(st.integers(1, 3)))]
    values: list[float] = [n.value for n in nodes]  # type: ignore[misc]
    for _ in range(draw(st.integers(1, 10))):
        name = draw(st.sampled_from(ops))
        op = OPS[name]
        args = tuple(draw(st.integers(0, len(nodes) - 1)) for _ in range(op.arity))
        const = draw(st.sampled_from(_EXPONENTS if name == "powc" else _CONSTS)) \
            if op.has_const else None
        node = Node(name, args, const)
        operands = node_operands(node, values)
        if op.domain(*operands):
            continue
        try:
            v = op.forward(math, *operands)
        except (OverflowError, ValueError, ZeroDivisionError):
            continue
        if 1e-6 <= abs(v) <= 1e6 or (name == "relu" and v == 0.0):
            nodes.append(node)
            values.append(v)
    if nodes[-1].op == "leaf":
        nodes.append(Node("addc", (len(nodes) - 1,), 1.0))
    return Graph(tuple(nodes))


def _magnitudes(graph: Graph) -> tuple[float, list[float]]:
    """First-order error scales: of the output value, and of each leaf's gradient.

    The value's is |out| plus every path's |partials| times the leaf values'
    magnitudes; a gradient's is the sum over paths of the |partials|' products.
    tanh' and sigmoid' count at least 1e-2: engines that take them from the
    rounded output (1 - t*t) are off by about one ulp of 1 in absolute terms.
    """
    values: list[float] = []
    partials: list[list[float]] = []
    mags: list[float] = []
    for i, n in enumerate(graph.nodes):
        if n.op == "leaf":
            values.append(n.value)  # type: ignore[arg-type]
            partials.append([])
            mags.append(abs(n.value))  # type: ignore[arg-type]
            continue
        op = OPS[n.op]
        operands = node_operands(n, values)
        values.append(op.forward(math, *operands))
        ps = [abs(float(p)) for p in op.partials(math, *operands, values[i])]
        if n.op in ("tanh", "sigmoid"):
            ps = [max(p, 1e-2) for p in ps]
        partials.append(ps)
        mags.append(abs(values[i]) + sum(p * mags[a] for p, a in zip(ps, n.args, strict=True)))
    adjoint = [0.0] * len(graph.nodes)
    adjoint[-1] = 1.0
    for i in range(len(graph.nodes) - 1, -1, -1):
        for p, a in zip(partials[i], graph.nodes[i].args, strict=True):
            adjoint[a] += p * adjoint[i]
    return mags[-1], [adjoint[i] for i in graph.leaves]


def _replay(V: Any, graph: Graph) -> tuple[float, list[float]]:
    handles: list[Any] = []
    for n in graph.nodes:
        if n.op == "leaf":
            handles.append(V(n.value))
        else:
            handles.append(OPS[n.op].apply(*node_operands(n, handles)))
    handles[-1].backward()
    return float(handles[-1].data), [float(handles[i].grad) for i in graph.leaves]


def _assert_agrees(V: Any, graph: Graph, rel: float = 1e-12) -> None:
    value, grads = _replay(V, graph)
    ref_value, ref_grads = _replay(Reference, graph)
    mag, grad_mags = _magnitudes(graph)
    where = f"\n{to_python(graph)}"
    assert abs(value - ref_value) <= rel * mag, f"value {value!r} vs {ref_value!r}{where}"
    for i, (g, r, m) in enumerate(zip(grads, ref_grads, grad_mags, strict=True)):
        assert abs(g - r) <= rel * m + 1e-300, f"grad[{i}] {g!r} vs {r!r}{where}"


_PROBED: dict[type, list[str]] = {}


def _ops_of(cls: type) -> list[str]:
    """The ops of the table the engine class has, as the generic adapter probes them
    (the planted engines have the first nineteen, not sqrt, max, x ** y, ...)."""
    if cls not in _PROBED:
        _PROBED[cls] = sorted(probe(cls).ops)
    return _PROBED[cls]


@pytest.mark.parametrize("entry", CORRECT, ids=ids)
@settings(max_examples=150)
@given(data=st.data())
def test_correct_engine_agrees_with_the_reference(entry, data):
    cls = entry.load()
    _assert_agrees(cls, data.draw(graphs_over(_ops_of(cls)), label="graph"))


@pytest.mark.parametrize("entry", [e for e in DEFECTIVE if e.touches is not None], ids=ids)
@settings(max_examples=40)
@given(data=st.data())
def test_defective_engine_agrees_away_from_its_defect(entry, data):
    cls = entry.load()
    ops = [op for op in _ops_of(cls) if op not in entry.touches]
    _assert_agrees(cls, data.draw(graphs_over(ops), label="graph"))


@pytest.mark.parametrize("name", ["tanh_missing_square", "rsub_reversed", "float32_storage"])
def test_the_agreement_check_sees_planted_defects(name):
    """The tolerance above is tight enough to catch even a float32 rounding."""
    graph = Graph((Node.leaf(0.7), Node("rsubc", (0,), 2.0), Node("tanh", (1,))))
    with pytest.raises(AssertionError):
        _assert_agrees(catalogue.get(name).load(), graph)


_ROUNDS_DIFFERENTLY = {
    # tanh'(20): 1 - t*t is 0, the exact value 1.7e-17
    "correct_torch_like": Graph((Node.leaf(20.0), Node("tanh", (0,)))),
    # 2.98 * (1 / 2.59) is one ulp above 2.98 / 2.59
    "correct_reciprocal": Graph((Node.leaf(2.98), Node.leaf(2.59), Node("div", (0, 1)))),
    # x's three contributions 0.34 + 0.85 - 1.88, summed in another order
    "correct_kahn_order": Graph((Node.leaf(2.529), Node("mulc", (0,), 0.34),
                                 Node("mulc", (0,), 0.85), Node("mulc", (0,), -1.88),
                                 Node("add", (1, 2)), Node("add", (4, 3)))),
}


def test_every_other_correct_engine_has_a_rounding_example():
    assert set(_ROUNDS_DIFFERENTLY) == {e.name for e in CORRECT} - {"base"}


@pytest.mark.parametrize("name", sorted(_ROUNDS_DIFFERENTLY))
def test_correct_engine_rounds_differently_yet_agrees(name):
    """Each correct variant really differs from the reference, within the tolerance."""
    graph = _ROUNDS_DIFFERENTLY[name]
    V = catalogue.get(name).load()
    assert _replay(V, graph) != _replay(Reference, graph)
    _assert_agrees(V, graph)
