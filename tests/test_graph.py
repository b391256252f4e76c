"""The graph IR and op table: validation, JSON, code generation, evaluation."""

import json
import math

import mpmath
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mp_ops import mp_op

from gradcert.engine import Value
from gradcert.graph import (
    DomainError,
    Graph,
    GraphError,
    Node,
    evaluate,
    node_operands,
    to_python,
    trace,
)
from gradcert.ops import OPS

FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def graphs(draw, leaves_first=False):
    """Any valid graph (maybe outside the ops' domains): leaves, then ops on earlier nodes."""
    nodes = [Node.leaf(draw(FLOATS)) for _ in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(0, 10))):
        if not leaves_first and draw(st.integers(0, 5)) == 0:
            nodes.append(Node.leaf(draw(FLOATS)))
            continue
        name = draw(st.sampled_from(sorted(OPS)))
        op = OPS[name]
        args = tuple(draw(st.integers(0, len(nodes) - 1)) for _ in range(op.arity))
        nodes.append(Node(name, args, draw(FLOATS) if op.has_const else None))
    return Graph(tuple(nodes))


def _bits(g):
    return [(n.op, n.args, repr(n.const), repr(n.value)) for n in g.nodes]


@settings(max_examples=150)
@given(graphs())
def test_json_round_trip_is_exact(g):
    back = Graph.from_json(g.to_json())
    assert back == g and _bits(back) == _bits(g)  # -0.0 and every float bit kept
    assert Graph.from_dict(json.loads(g.to_json(indent=2))) == g


def _retrace(g):
    """Run to_python's source with a Value that records into a new trace."""
    ns = {}
    exec(to_python(g, "rebuild"), ns)

    def f(*xs):
        it = iter(xs)
        return ns["rebuild"](lambda value: next(it))[1]

    return trace(f, g.inputs)


@settings(max_examples=150)
@given(graphs(leaves_first=True))
def test_to_python_traces_back_to_the_same_graph(g):
    assert _bits(_retrace(g)) == _bits(g)


def test_to_python_runs_with_the_engine():
    g = Graph((Node.leaf(2.0), Node("rsubc", (0,), -1.5), Node.leaf(0.5),
               Node("mul", (1, 2)), Node("powc", (3,), -2.0), Node("rmulc", (4,), -3.0)))
    ns = {}
    exec(to_python(g), ns)
    leaves, out = ns["build"](Value)
    out.backward()
    # f = -3 ((-1.5 - a) b)^-2 at a = 2, b = 0.5: u = -1.75, f = -3 / u^2
    u = -1.75
    assert [v.data for v in leaves] == [2.0, 0.5]
    assert out.data == evaluate(g)[-1] == pytest.approx(-3.0 / u**2, rel=1e-15)
    # df/du = 6 / u^3; du/da = -b, du/db = -1.5 - a
    assert leaves[0].grad == pytest.approx(6 / u**3 * -0.5, rel=1e-15)
    assert leaves[1].grad == pytest.approx(6 / u**3 * -3.5, rel=1e-15)


def test_trace_records_constants_on_either_side():
    g = trace(lambda x, y: 2.0 - x / 3 + 4.0 / y * 5.0 + (1.0 + x) - -y ** 2, [1.0, 2.0])
    assert [(n.op, n.const) for n in g.nodes if n.op != "leaf"] == [
        ("divc", 3.0), ("rsubc", 2.0), ("rdivc", 4.0), ("mulc", 5.0), ("add", None),
        ("raddc", 1.0), ("add", None), ("powc", 2.0), ("neg", None), ("sub", None)]
    x, y = 1.0, 2.0
    assert evaluate(g)[-1] == 2.0 - x / 3 + 4.0 / y * 5.0 + (1.0 + x) - -y**2


def test_trace_functions_and_output_placement():
    g = trace(lambda x, y: x.log().exp().relu().tanh().sigmoid(), [1.0, 2.0])
    assert [n.op for n in g.nodes] == ["leaf", "leaf", "log", "exp", "relu", "tanh", "sigmoid"]
    g = trace(lambda x, y: x, [1.0, 2.0])  # a leaf that is not last gets `+ 0.0`
    assert g.nodes[-1] == Node("addc", (0,), 0.0) and g.output == 2
    g = trace(lambda x: x * x, [3])
    assert g.nodes[1].args == (0, 0) and g.inputs == (3.0,)


@pytest.mark.parametrize("f, xs, words", [
    (lambda x: x, [math.inf], "node 0: input must be a finite number"),
    (lambda x: x, ["1"], "node 0"),
    (lambda x: 1.0, [1.0], "computed from its inputs"),
])
def test_trace_errors(f, xs, words):
    with pytest.raises(GraphError, match=words):
        trace(f, xs)


def test_trace_rejects_mixing_traces_and_non_numbers():
    outer = []
    trace(lambda x: outer.append(x) or x, [1.0])
    with pytest.raises(GraphError, match="different traces"):
        trace(lambda y: y + outer[0], [2.0])
    with pytest.raises(TypeError):
        trace(lambda x: x + "a", [1.0])
    with pytest.raises(TypeError, match="no op takes a constant base"):
        trace(lambda x: 2.0**x, [1.0])


BAD_GRAPHS = [
    ((), None, "at least one node"),
    ((Node.leaf(1.0), Node("frob", (0,))), 1, "unknown op 'frob'"),
    ((Node.leaf(1.0), Node("add", (0,))), 1, "add takes 2 argument(s), got 1"),
    ((Node.leaf(1.0), Node("log", (0, 0))), 1, "log takes 1 argument(s), got 2"),
    ((Node.leaf(1.0), Node("log", (1,))), 1, "forward reference"),
    ((Node.leaf(1.0), Node("log", (-1,))), 1, "not a node id"),
    ((Node.leaf(1.0), Node("log", (True,))), 1, "not a node id"),
    ((Node.leaf(math.nan),), 0, "finite number"),
    ((Node.leaf(math.inf),), 0, "finite number"),
    ((Node.leaf("1"),), 0, "finite number"),  # type: ignore[arg-type]
    ((Node("leaf", (0,), value=1.0),), 0, "no arguments"),
    ((Node("leaf", const=1.0, value=1.0),), 0, "no constant"),
    ((Node.leaf(1.0), Node("powc", (0,))), 1, "needs a finite constant, got None"),
    ((Node.leaf(1.0), Node("powc", (0,), math.inf)), 1, "finite constant"),
    ((Node.leaf(1.0), Node("mulc", (0,), "2")), 1, "finite constant"),  # type: ignore[arg-type]
    ((Node.leaf(1.0), Node("log", (0,), 2.0)), 1, "log takes no constant"),
    ((Node.leaf(1.0), Node("log", (0,), value=2.0)), 1, "only leaves carry a value"),
    (("leaf",), 0, "expected a Node"),
]


@pytest.mark.parametrize("nodes, where, problem", BAD_GRAPHS)
def test_graph_errors_name_node_and_problem(nodes, where, problem):
    with pytest.raises(GraphError) as info:
        Graph(nodes)
    assert info.value.node == where and problem in info.value.problem
    assert str(info.value).startswith("graph" if where is None else f"node {where}")


GOOD = {"format": "gradcert.graph", "version": 1,
        "nodes": [{"op": "leaf", "value": 2.0}, {"op": "powc", "args": [0], "const": 3.0}]}


@pytest.mark.parametrize("text, problem", [
    ("{not json", "invalid JSON"),
    ("[]", "not a gradcert.graph document"),
    (json.dumps({**GOOD, "format": "other"}), "not a gradcert.graph document"),
    (json.dumps({**GOOD, "version": 2}), "unsupported version 2"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "version"}), "unsupported version None"),
    (json.dumps({**GOOD, "nodes": {}}), "'nodes' must be a list"),
    (json.dumps({**GOOD, "nodes": [1]}), "string 'op'"),
    (json.dumps({**GOOD, "nodes": [{"op": "leaf", "value": 1.0}, {"op": "log", "args": 0}]}),
     "'args' must be a list"),
    (json.dumps({**GOOD, "nodes": [{"op": "leaf", "value": 1.0}, {"op": "exp", "args": [3]}]}),
     "forward reference"),
    (json.dumps({**GOOD, "nodes": [{"op": "leaf", "value": 1.0}, {"op": "exp", "args": [0.0]}]}),
     "not a node id"),
])
def test_bad_json_is_a_graph_error(text, problem):
    with pytest.raises(GraphError, match=problem):
        Graph.from_json(text)


def test_good_json_and_accessors():
    g = Graph.from_json(json.dumps(GOOD))
    assert g.nodes == (Node.leaf(2.0), Node("powc", (0,), 3.0))
    assert (g.leaves, g.inputs, g.output, len(g), g.ops_used()) == (
        (0,), (2.0,), 1, 2, frozenset({"powc"}))
    assert g.to_dict() == GOOD
    h = g.with_inputs([-1])
    assert h.inputs == (-1.0,) and evaluate(h) == [-1.0, -1.0]
    with pytest.raises(GraphError, match="2 inputs for 1 leaves"):
        g.with_inputs([1.0, 2.0])


def test_evaluate_in_float64_and_mpmath():
    g = trace(lambda x, y: (x * y).log() + 2.0 / x - y.sigmoid() + x.tanh().relu(), [3.0, 4.0])
    x, y = 3.0, 4.0
    expected = math.log(12.0) + 2.0 / 3.0 - 1 / (1 + math.exp(-4.0)) + math.tanh(3.0)
    assert evaluate(g)[-1] == pytest.approx(expected, rel=1e-15)
    prec = mpmath.mp.prec
    ctx = mpmath.MPContext()
    ctx.prec = 300
    values = evaluate(g, ctx)
    assert all(isinstance(v, ctx.mpf) for v in values)
    exact = (ctx.log(ctx.mpf(12)) + ctx.mpf(2) / 3 - 1 / (1 + ctx.exp(-ctx.mpf(y)))
             + ctx.tanh(ctx.mpf(x)))
    assert abs(values[-1] - exact) < ctx.mpf(2) ** -290
    assert mpmath.mp.prec == prec  # never the global context


def test_evaluate_relu_and_sigmoid_branches_in_mpmath():
    ctx = mpmath.MPContext()
    ctx.prec = 80
    g = trace(lambda x: x.relu() + x.sigmoid(), [-2.0])
    assert abs(evaluate(g, ctx)[-1] - 1 / (1 + ctx.exp(2))) < ctx.mpf(2) ** -78
    assert evaluate(g)[-1] == 1 / (1 + math.exp(2.0))


@pytest.mark.parametrize("f, x, value", [
    (lambda x: x.exp(), 1000.0, math.inf),
    (lambda x: x**401, -10.0, -math.inf),
    (lambda x: x**400, -10.0, math.inf),
    (lambda x: x**0.5 * 1e308 * 10.0, 4.0, math.inf),
])
def test_float64_overflow_is_signed_inf(f, x, value):
    assert evaluate(trace(f, [x]))[-1] == value


@pytest.mark.parametrize("f, x, node, op, reason", [
    (lambda x: (x - 1.0).log(), 1.0, 2, "log", "log needs a positive input"),
    (lambda x: x.log(), -1.0, 1, "log", "log needs a positive input"),
    (lambda x: (x * 0.0) ** -1, 2.0, 2, "powc", "0 to a negative power"),
    (lambda x: x ** (1 / 3), -8.0, 1, "powc", "a non-integer power needs a positive base"),
    (lambda x: x ** 0.5, 0.0, 1, "powc", "a non-integer power needs a positive base"),
    (lambda x: x / (x - x), 2.0, 2, "div", "division by zero"),
    (lambda x: x / 0.0, 2.0, 1, "divc", "division by zero"),
    (lambda x: 1.0 / x, 0.0, 1, "rdivc", "division by zero"),
])
def test_domain_errors_carry_node_op_inputs_reason(f, x, node, op, reason):
    g = trace(f, [x])
    for ns in (math, mpmath.MPContext()):
        with pytest.raises(DomainError) as info:
            evaluate(g, ns)
        e = info.value
        assert (e.node, e.op, e.reason) == (node, op, reason)
        assert e.inputs == node_operands(g.nodes[node], evaluate(_prefix(g, node)),
                                         float if ns is math else ns.mpf)
        assert str(e).startswith(f"node {node}: {op}(") and reason in str(e)


def _prefix(g, node):
    """The graph up to (not including) ``node``: its operands' values."""
    return Graph(g.nodes[:node])


def test_domain_error_message_shows_inputs():
    e = DomainError(4, "powc", [-8.0, 1 / 3], "why")
    assert str(e) == "node 4: powc(-8.0, 0.3333333333333333): why"
    assert "'abc'" in str(DomainError(0, "log", ["abc"], "r"))


@pytest.mark.parametrize("name", sorted(OPS))
def test_apply_spells_the_template(name):
    op = OPS[name]
    operands = [Value(1.5)] * op.arity + ([2.0] if op.has_const else [])
    got = op.apply(*operands).data
    assert got == op.forward(math, *[getattr(v, "data", v) for v in operands])
    src = op.template.format(*["a", "b"][:op.arity], c="2.0")
    assert eval(src, {"a": Value(1.5), "b": Value(1.5)}).data == got




@settings(max_examples=150)
@given(st.sampled_from(sorted(OPS)), st.floats(0.1, 6.0), st.sampled_from([1.0, -1.0]),
       st.floats(0.1, 6.0), st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 2.5, 3.0]))
def test_op_table_partials_match_mpmath_diff(name, x, sign, y, c):
    op = OPS[name]
    if name in ("divc",) and c == 0.0:
        c = 2.0
    if not op.domain(*[x * sign, y][:op.arity], *([c] if op.has_const else [])):
        x *= sign  # log, sqrt, log1p, pow and powc of a fraction keep x > 0
    assume(op.switch is None or abs(op.switch(*[x, y][:op.arity])) > 1e-3)  # off a kink
    ctx = mpmath.MPContext()
    ctx.prec = 120
    point = [ctx.mpf(x), ctx.mpf(y)][:op.arity]
    const = [ctx.mpf(c)] if op.has_const else []
    out = op.forward(ctx, *point, *const)
    f = mp_op(ctx, name, const[0] if const else None)
    assert abs(out - f(*point)) <= abs(out) * ctx.mpf(2) ** -110
    parts = op.partials(ctx, *point, *const, out)
    for i in range(op.arity):
        num = ctx.diff(lambda t, i=i: f(*[t if j == i else point[j] for j in range(op.arity)]),
                       point[i])
        assert abs(parts[i] - num) <= (abs(num) + 1) * ctx.mpf(2) ** -90, (name, i)
