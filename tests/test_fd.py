"""Finite differences: known derivatives, the exact oracle on random graphs, and gradcheck-style
directional checks that accept right gradients and reject wrong ones."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcert.graph import Graph, Node, evaluate
from gradcert.oracle import (
    central_difference,
    directional_check,
    exact_graph,
    gradient_fd,
    richardson,
)

KNOWN = [
    (lambda v: math.sin(v[0]), lambda x: math.cos(x), 1.0),
    (lambda v: math.exp(v[0]), math.exp, 3.0),
    (lambda v: math.log(v[0]), lambda x: 1 / x, 1e-3),  # steps must shrink to stay > 0
    (lambda v: v[0] ** 3, lambda x: 3 * x * x, -2.0),
    (lambda v: 1 / (1 + v[0] ** 2), lambda x: -2 * x / (1 + x * x) ** 2, 0.7),
    (lambda v: math.tanh(v[0]), lambda x: 1 / math.cosh(x) ** 2, 0.3),
    (lambda v: math.sqrt(v[0]), lambda x: 0.5 / math.sqrt(x), 1e6),
]


@pytest.mark.parametrize("f, df, x", KNOWN)
def test_known_derivatives(f, df, x):
    e = richardson(f, [x], 0)
    want = df(x)
    assert e.value == pytest.approx(want, rel=1e-9)
    assert abs(e.value - want) <= 100 * e.error + 1e-12 * abs(want)  # the estimate is honest
    assert e.evaluations >= 4 and e.step > 0


def test_partial_in_the_right_input():
    f = lambda v: v[0] * v[1] ** 2 + math.exp(v[2])
    g = gradient_fd(f, [2.0, 3.0, 0.5])
    assert g == pytest.approx([9.0, 12.0, math.exp(0.5)], rel=1e-9)
    assert central_difference(f, [2.0, 3.0, 0.5], 1) == pytest.approx(12.0, rel=1e-9)


def test_errors_are_clear():
    with pytest.raises(TypeError, match="callable"):
        richardson(3.0, [1.0], 0)
    with pytest.raises(IndexError, match="out of range"):
        richardson(lambda v: v[0], [1.0], 1)
    with pytest.raises(ValueError, match="finite"):
        richardson(lambda v: v[0], [math.nan], 0)
    with pytest.raises(ValueError, match="every step"):
        richardson(lambda v: math.log(v[0]), [0.0], 0)
    with pytest.raises(ValueError, match="components"):
        directional_check(lambda v: v[0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        directional_check(lambda v: 0.0, [], [])
    with pytest.raises(ValueError, match="fails"):
        directional_check(lambda v: math.log(v[0]), [0.0], [1.0])


# -- against the exact oracle on random well-conditioned graphs ---------------

SAFE_UNARY = ["tanh", "sigmoid", "exp_tanh", "log_sigmoid", "sq", "mulc"]


@st.composite
def smooth_graphs(draw):
    """Graphs of bounded, well-conditioned ops on inputs in [0.5, 2]."""
    k = draw(st.integers(1, 4))
    nodes = [Node.leaf(draw(st.floats(0.5, 2.0))) for _ in range(k)]
    for _ in range(draw(st.integers(1, 10))):
        last = len(nodes) - 1
        a = draw(st.integers(0, last))
        kind = draw(st.sampled_from(["add", "mul"] + SAFE_UNARY))
        if kind in ("add", "mul"):
            nodes.append(Node(kind, (a, draw(st.integers(0, last)))))
            nodes.append(Node("tanh", (len(nodes) - 1,)))  # keep magnitudes bounded
        elif kind == "exp_tanh":
            nodes.append(Node("tanh", (a,)))
            nodes.append(Node("exp", (len(nodes) - 1,)))
        elif kind == "log_sigmoid":
            nodes.append(Node("sigmoid", (a,)))
            nodes.append(Node("log", (len(nodes) - 1,)))
        elif kind == "sq":
            nodes.append(Node("powc", (a,), 2.0))
        elif kind == "mulc":
            nodes.append(Node("mulc", (a,), draw(st.floats(-2.0, 2.0))))
        else:
            nodes.append(Node(kind, (a,)))
    return Graph(tuple(nodes))


def _as_function(graph):
    return lambda xs: evaluate(graph.with_inputs(xs))[-1]


@settings(max_examples=60, deadline=None)
@given(smooth_graphs())
def test_fd_agrees_with_the_oracle(g):
    ex = exact_graph(g)
    fd = gradient_fd(_as_function(g), g.inputs)
    for got, want in zip(fd, ex.grad_f64, strict=True):
        assert abs(got - want) <= 1e-6 * max(1.0, abs(want)), (got, want, g.to_json())


@settings(max_examples=60, deadline=None)
@given(smooth_graphs(), st.integers(0, 2**32 - 1))
def test_directional_check_accepts_the_exact_gradient(g, seed):
    ex = exact_graph(g)
    r = directional_check(_as_function(g), g.inputs, ex.grad_f64, seed=seed)
    assert r.agrees(), (r, g.to_json())
    assert math.isclose(math.fsum(c * c for c in r.direction), 1.0, rel_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(smooth_graphs(), st.integers(0, 2**32 - 1), st.data())
def test_directional_check_rejects_a_wrong_gradient(g, seed, data):
    ex = exact_graph(g)
    wrong = list(ex.grad_f64)
    i = data.draw(st.integers(0, len(wrong) - 1))
    wrong[i] += 0.01  # a 1e-2 absolute error, far above fd's accuracy
    r = directional_check(_as_function(g), g.inputs, wrong, rng=random.Random(seed))
    if abs(r.direction[i]) > 0.01:  # a direction almost orthogonal to the error cannot see it
        assert not r.agrees(), (r, g.to_json())


def test_directional_check_is_two_evaluations_and_seeded():
    calls = []

    def f(v):
        calls.append(list(v))
        return v[0] * v[1]

    a = directional_check(f, [3.0, 4.0], [4.0, 3.0], seed=7)
    assert len(calls) == 2
    assert a == directional_check(f, [3.0, 4.0], [4.0, 3.0], seed=7)
    assert a.direction != directional_check(f, [3.0, 4.0], [4.0, 3.0], seed=8).direction
    assert not directional_check(lambda v: math.nan, [1.0], [0.0]).agrees()
