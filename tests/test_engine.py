"""The reference Value: each op's value and gradient, graph semantics, bad inputs."""

import math
import sys

import mpmath
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mp_ops import mp_op

from gradcert.engine import Value
from gradcert.graph import DomainError, Graph, Node, evaluate, node_operands
from gradcert.ops import OPS
from gradcert.properties.strategies import graphs


def grads(f, *xs):
    """Value and gradients of f at xs, built fresh on the engine."""
    leaves = [Value(x) for x in xs]
    out = f(*leaves)
    out.backward()
    return out.data, tuple(v.grad for v in leaves)


# (name, f, inputs, value, gradients): every expectation worked out by hand.
HAND = [
    ("add", lambda x, y: x + y, (2.0, 3.0), 5.0, (1.0, 1.0)),
    ("sub", lambda x, y: x - y, (2.0, 3.0), -1.0, (1.0, -1.0)),
    ("mul", lambda x, y: x * y, (2.0, 3.0), 6.0, (3.0, 2.0)),
    ("div", lambda x, y: x / y, (3.0, 2.0), 1.5, (0.5, -0.75)),
    ("x+c", lambda x: x + 1.0, (2.0,), 3.0, (1.0,)),
    ("c+x", lambda x: 1.0 + x, (2.0,), 3.0, (1.0,)),
    ("x-c", lambda x: x - 5.0, (2.0,), -3.0, (1.0,)),
    ("c-x", lambda x: 5.0 - x, (2.0,), 3.0, (-1.0,)),
    ("x*c", lambda x: x * 4.0, (2.0,), 8.0, (4.0,)),
    ("c*x", lambda x: 4.0 * x, (2.0,), 8.0, (4.0,)),
    ("x/c", lambda x: x / 4.0, (2.0,), 0.5, (0.25,)),
    ("c/x", lambda x: 3.0 / x, (2.0,), 1.5, (-0.75,)),
    ("int c-x", lambda x: 5 - x, (2.0,), 3.0, (-1.0,)),
    ("neg", lambda x: -x, (2.0,), -2.0, (-1.0,)),
    ("(-2)**3", lambda x: x**3, (-2.0,), -8.0, (12.0,)),
    ("(-2)**2", lambda x: x**2, (-2.0,), 4.0, (-4.0,)),
    ("(-2)**-1", lambda x: x**-1, (-2.0,), -0.5, (-0.25,)),
    ("(-2)**-2", lambda x: x**-2, (-2.0,), 0.25, (0.25,)),
    ("4**0.5", lambda x: x**0.5, (4.0,), 2.0, (0.25,)),
    ("4**-0.5", lambda x: x**-0.5, (4.0,), 0.5, (-0.0625,)),
    ("4**1.5", lambda x: x**1.5, (4.0,), 8.0, (3.0,)),
    ("x**0", lambda x: x**0, (-3.0,), 1.0, (0.0,)),
    ("x**1", lambda x: x**1, (-3.0,), -3.0, (1.0,)),
    ("0**2", lambda x: x**2, (0.0,), 0.0, (0.0,)),
    ("0**1", lambda x: x**1, (0.0,), 0.0, (1.0,)),
    ("log 1", lambda x: x.log(), (1.0,), 0.0, (1.0,)),
    ("log 4", lambda x: x.log(), (4.0,), 2 * math.log(2.0), (0.25,)),
    ("exp 0", lambda x: x.exp(), (0.0,), 1.0, (1.0,)),
    ("exp 1", lambda x: x.exp(), (1.0,), math.e, (math.e,)),
    ("relu +", lambda x: x.relu(), (2.0,), 2.0, (1.0,)),
    ("relu -", lambda x: x.relu(), (-2.0,), 0.0, (0.0,)),
    ("relu 0", lambda x: x.relu(), (0.0,), 0.0, (0.0,)),
    ("tanh 0", lambda x: x.tanh(), (0.0,), 0.0, (1.0,)),
    ("sigmoid 0", lambda x: x.sigmoid(), (0.0,), 0.5, (0.25,)),
    ("x*x", lambda x: x * x, (3.0,), 9.0, (6.0,)),
    ("x+x", lambda x: x + x, (3.0,), 6.0, (2.0,)),
    ("x-x", lambda x: x - x, (3.0,), 0.0, (0.0,)),
    ("x/x", lambda x: x / x, (3.0,), 1.0, (0.0,)),
    ("fan-out", lambda x: x * 3.0 + x * x + x, (2.0,), 12.0, (8.0,)),
    ("diamond", lambda x: (x * 2.0 + x * 2.0) * (x * 2.0), (1.0,), 8.0, (16.0,)),
]


@pytest.mark.parametrize("f, xs, value, expected", [h[1:] for h in HAND],
                         ids=[h[0] for h in HAND])
def test_op_value_and_gradient_by_hand(f, xs, value, expected):
    got, g = grads(f, *xs)
    assert got == value
    assert g == expected


@pytest.mark.parametrize("x", [1.0, -0.5, 3.0, -20.0, 35.0])
def test_tanh_and_sigmoid_by_formula(x):
    t, (dt,) = grads(lambda v: v.tanh(), x)
    s, (ds,) = grads(lambda v: v.sigmoid(), x)
    ctx = mpmath.MPContext()
    ctx.prec = 200
    assert t == math.tanh(x)
    assert dt == pytest.approx(float(ctx.sech(x) ** 2), rel=1e-14)  # exact, even where 1-t^2 = 0
    assert s == pytest.approx(float(1 / (1 + ctx.exp(-x))), rel=1e-15)
    assert ds == pytest.approx(float(ctx.exp(-x) / (1 + ctx.exp(-x)) ** 2), rel=1e-14)


def test_int_data_is_float_and_repr():
    v = Value(3)
    assert type(v.data) is float and v.data == 3.0
    assert repr(v) == "Value(data=3.0, grad=0.0)"


@pytest.mark.slow
def test_a_million_op_chain_backpropagates_without_recursion():
    x = Value(1.5)
    y = x
    for _ in range(1_000_000):
        y = -y
    assert sys.getrecursionlimit() < 1_000_000
    y.backward()
    assert y.data == 1.5 and x.grad == 1.0


def test_sum_of_a_thousand_values():
    xs = [Value(float(i)) for i in range(2000)]
    total = sum(xs)
    total.backward()
    assert total.data == sum(range(2000))
    assert all(x.grad == 1.0 for x in xs)


def test_second_backward_doubles_leaf_grads_and_keeps_inner_grads_fresh():
    x, y = Value(1.5), Value(-2.0)
    z = x * y
    out = (z * z + z.exp()) / y
    out.backward()
    first = (x.grad, y.grad, z.grad, out.grad)
    out.backward()
    assert (x.grad, y.grad) == (2 * first[0], 2 * first[1])
    assert (z.grad, out.grad) == (first[2], 1.0)


def test_backward_from_an_inner_node_after_the_output():
    x, y = Value(2.0), Value(3.0)
    z = x * y
    out = z * z
    out.backward()  # x.grad = 2 z y = 36
    z.backward()  # z's own gradient starts fresh at 1; x gains y
    assert z.grad == 1.0 and x.grad == 36.0 + 3.0


def test_zero_grad_resets_accumulation():
    x = Value(2.0)
    y = x * x
    y.backward()
    x.zero_grad()
    assert x.grad == 0.0
    y.backward()
    assert x.grad == 4.0


def test_backward_of_a_leaf():
    x = Value(2.0)
    x.backward()
    x.backward()
    assert x.grad == 2.0


def test_distinct_nodes_with_equal_values_stay_distinct():
    a, b = Value(2.0), Value(2.0)
    assert a is not b and len({a, b}) == 2 and a != b
    (a * 3.0 + b * 5.0).backward()
    assert (a.grad, b.grad) == (3.0, 5.0)
    x = Value(2.0)
    u, v = x * 1.0, x * 1.0  # equal values, separate paths
    out = u * 2.0 + v
    out.backward()
    assert (u.grad, v.grad, x.grad) == (2.0, 1.0, 3.0)


def test_add_mul_sub_follow_python_floats_past_the_range():
    assert (Value(1e308) * 10.0).data == math.inf
    assert (Value(-1e308) - 1e308).data == -math.inf
    assert (Value(1e308) + Value(1e308)).data == math.inf


BAD = [
    ("log(0)", lambda: Value(0.0).log(), ValueError, ["log", "0.0"]),
    ("log(-1)", lambda: Value(-1.0).log(), ValueError, ["log", "-1.0"]),
    ("0**-1", lambda: Value(0.0) ** -1, ZeroDivisionError, ["pow", "0.0", "-1.0"]),
    ("0**0.5", lambda: Value(0.0) ** 0.5, ValueError, ["pow", "0.0", "0.5"]),
    ("(-8)**(1/3)", lambda: Value(-8.0) ** (1 / 3), ValueError, ["pow", "-8.0", "0.333"]),
    ("10**400", lambda: Value(10.0) ** 400, OverflowError, ["pow", "10.0", "400.0"]),
    ("exp(1000)", lambda: Value(1000.0).exp(), OverflowError, ["exp", "1000.0"]),
    ("x/0", lambda: Value(1.0) / 0.0, ZeroDivisionError, ["division", "1.0"]),
    ("x/Value(0)", lambda: Value(1.0) / Value(0.0), ZeroDivisionError, ["division", "1.0"]),
    ("c/x at 0", lambda: 2.0 / Value(0.0), ZeroDivisionError, ["division", "2.0"]),
    ("Value+str", lambda: Value(1.0) + "a", TypeError, ["+", "str"]),
    ("str-Value", lambda: "a" - Value(1.0), TypeError, ["-", "str"]),
    ("Value-None", lambda: Value(1.0) - None, TypeError, ["-", "NoneType"]),
    ("Value*list", lambda: Value(1.0) * [1.0], TypeError, ["*", "list"]),
    ("str/Value(0)", lambda: "a" / Value(0.0), TypeError, ["/", "str"]),
    ("Value/bool", lambda: Value(1.0) / True, TypeError, ["/", "bool"]),
    ("Value**str", lambda: Value(1.0) ** "2", TypeError, ["**", "str"]),
    ("(-2)**Value", lambda: Value(-2.0) ** Value(2.0), ValueError, ["pow", "-2.0", "base"]),
    ("sqrt(0)", lambda: Value(0.0).sqrt(), ValueError, ["sqrt", "0.0"]),
    ("log1p(-1)", lambda: Value(-1.0).log1p(), ValueError, ["log1p", "-1.0"]),
    ("expm1(1000)", lambda: Value(1000.0).expm1(), OverflowError, ["expm1", "1000.0"]),
    ("Value.max(2)", lambda: Value(1.0).max(2.0), TypeError, ["max", "float"]),
    ("2**Value", lambda: 2.0 ** Value(2.0), TypeError, ["exponent"]),
    ("Value(str)", lambda: Value("1"), TypeError, ["str"]),
    ("Value(bool)", lambda: Value(True), TypeError, ["bool"]),
]


@pytest.mark.parametrize("make, error, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs_raise_naming_op_and_input(make, error, words):
    with pytest.raises(error) as info:
        make()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


# -- properties ----------------------------------------------------------------

CONSTS = st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0])
POW_CONSTS = st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 1.5])


@st.composite
def domain_graphs(draw):
    """Small graphs whose float64 evaluation stays in every op's domain, moderate in size."""
    nodes = [Node.leaf(draw(st.floats(-3.0, 3.0))) for _ in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(1, 10))):
        name = draw(st.sampled_from(sorted(OPS)))
        op = OPS[name]
        args = tuple(draw(st.integers(0, len(nodes) - 1)) for _ in range(op.arity))
        const = draw(POW_CONSTS if name == "powc" else CONSTS) if op.has_const else None
        nodes.append(Node(name, args, const))
    g = Graph(tuple(nodes))
    try:
        values = evaluate(g)
    except DomainError:
        assume(False)
    assume(all(v == 0.0 or 1e-6 <= abs(v) <= 1e6 for v in values))
    return g


def reference_gradient(g):
    """Reverse mode in float64 with the op table's partials, and a magnitude scale."""
    values = evaluate(g)
    adj, scale = [0.0] * len(g), [0.0] * len(g)
    adj[-1] = scale[-1] = 1.0
    for i in reversed(range(len(g))):
        n = g.nodes[i]
        if n.op == "leaf":
            continue
        parts = OPS[n.op].partials(math, *node_operands(n, values), values[i])
        for a, p in zip(n.args, parts, strict=True):
            adj[a] += p * adj[i]
            scale[a] += abs(p) * scale[i]
    return values, [adj[i] for i in g.leaves], [scale[i] for i in g.leaves]


def on_engine(g):
    handles = []
    for n in g.nodes:
        if n.op == "leaf":
            handles.append(Value(n.value))
        else:
            operands = node_operands(n, handles)
            handles.append(OPS[n.op].apply(*operands))
    handles[-1].backward()
    return handles


@settings(max_examples=150)
@given(domain_graphs())
def test_engine_matches_op_table_chained_in_float64(g):
    values, expected, scale = reference_gradient(g)
    handles = on_engine(g)
    assert [h.data for h in handles] == values  # same forward, bit for bit
    for leaf, e, s in zip(g.leaves, expected, scale, strict=True):
        got = handles[leaf].grad
        assert abs(got - e) <= 8 * len(g) * 2.0**-52 * s, (leaf, got, e)




@settings(max_examples=200)
@given(st.sampled_from(sorted(OPS)), st.floats(0.05, 4.0), st.floats(-4.0, 4.0),
       st.booleans(), CONSTS, POW_CONSTS)
def test_engine_derivatives_match_mpmath_diff(name, pos, y, negate, c, pc):
    op = OPS[name]
    const = (pc if name == "powc" else c) if op.has_const else None
    x = -pos if negate else pos
    if name in ("div",):
        y = y if abs(y) > 0.05 else 1.0
    xs = (x, y) if op.arity == 2 else (x,)
    if op.domain(*xs, *([] if const is None else [const])):  # log, sqrt, log1p, pow, ...
        x = pos
        xs = (x, y) if op.arity == 2 else (x,)
    assume(op.switch is None or abs(op.switch(*xs)) > 1e-3)  # away from a kink
    value, got = grads(lambda *v: op.apply(*v, *([] if const is None else [const])), *xs)
    ctx = mpmath.MPContext()
    ctx.prec = 113
    f = mp_op(ctx, name, ctx.mpf(const) if const is not None else None)
    point = [ctx.mpf(v) for v in xs]
    assert value == pytest.approx(float(f(*point)), rel=4e-16, abs=1e-300)
    for i in range(op.arity):
        def partial(t, i=i):
            return f(*[t if j == i else point[j] for j in range(op.arity)])
        assert got[i] == pytest.approx(float(ctx.diff(partial, point[i])), rel=1e-13, abs=1e-15)


@given(graph=graphs(max_nodes=40, max_leaves=3))
@settings(max_examples=60, deadline=None)
def test_second_backward_exactly_doubles_leaf_grads_of_random_graphs(graph):
    # Leaves used many times sum their new gradient apart, so float addition
    # order cannot make the second call differ from the first.
    values: list = []
    for n in graph.nodes:
        if n.op == "leaf":
            values.append(Value(n.value))
        else:
            args = [values[a] for a in n.args]
            values.append(OPS[n.op].apply(*args, *(() if n.const is None else (n.const,))))
    leaves = [values[i] for i in graph.leaves]
    out = values[-1]
    out.backward()
    first = [v.grad for v in leaves]
    inner = [v.grad for v in values if v not in leaves]
    out.backward()
    assert [v.grad for v in leaves] == [2 * g for g in first]
    assert [v.grad for v in values if v not in leaves] == inner
