"""The oracle never certifies a wrong number: checked against tests/xcheck.py.

xcheck is written from the math and shares no code with the oracle: mpmath at
3000 bits and more, its own reverse mode over textbook derivatives, its own
rounding, and precision doubling until two runs agree. Wherever the oracle
certifies a value or gradient, that float64 must be the reference's; it may
refuse (Unresolved). Checked on generated graphs (the suite's strategies and
a generator biased to cancellation and domain edges), on adversarial
constructions (huge and tiny exponents, nodes beyond MPFR's exponent range,
exact ties and rounding midpoints, subnormals, cancellations, deep chains).
The five defects the oracle once had are in test_oracle_defects.py.

The refusal rate on the strategies' graphs is measured here too:
``python -m pytest tests/test_oracle_xcheck.py -k refusals -s -n 0 --no-cov``.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_oracle_exact import small_graphs
from xcheck import disagreement, reference

from gradcert.graph import DomainError, Graph, Node, trace
from gradcert.ops import OPS
from gradcert.oracle import Unresolved, exact_graph
from gradcert.properties import strategies as gs


def judge(g: Graph, **options) -> str:
    """"certified", "refused" or "domain" for the oracle's answer on ``g``; fails the
    test where the oracle is wrong by the reference."""
    try:
        ex = exact_graph(g, **options)
        assert len(ex.values_f64) == len(g.nodes)  # every node's value too (certified
        # when first read)
    except Unresolved:
        return "refused"
    except DomainError as e:
        ref = reference(g)
        assert not ref.decided or ref.domain_node == e.node, \
            f"oracle: domain error at node {e.node}; reference: {ref}\n{g.to_json()}"
        return "domain"
    assert ex.certified
    why = disagreement(g, ex, reference(g))
    assert why is None, f"{why}\n{g.to_json()}"
    return "certified"


def test_a_100000_node_graph_is_certified():
    # a chain of tanh, exp, log and products, with sharing: 100,000 nodes
    def f(x, y):
        acc = x
        for _ in range(12_500):
            acc = (acc * y + (y * y).exp().log()) * 0.5 + acc.tanh() * 0.25
        return acc

    g = trace(f, [0.7, 1.3])
    assert len(g) >= 100_000
    ex = exact_graph(g)
    assert ex.certified and math.isfinite(ex.value_f64)


# ---------------------------------------------------------------------------
# Generated graphs.


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(gs.graphs(max_nodes=25))
def test_strategies_graphs(g):
    judge(g)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(small_graphs(max_ops=12))
def test_graphs_biased_to_cancellation_and_domain_edges(g):
    judge(g)


# ---------------------------------------------------------------------------
# Adversarial constructions.

HUGE = [1e300, -1e300, 2.0**1000, 2.0**-1000, 5e-324, -5e-324, 2.2250738585072014e-308,
        1 + 2.0**-52, 1 - 2.0**-53, 2.0**53 + 2, 1e16, 7.4e8, -7.4e8, 745.13321910194122,
        -745.13321910194122, 709.782712893384, 1e-300]
EXPONENTS = [2.0**64, -(2.0**64), 1e10, -1e10, 2.0**-60, 8.470329472543028e-22, 1e300,
             2.0**31 + 0.5, 0.5, -0.5, 3.0, 1 / 3]

CONSTRUCTIONS = {
    # huge and tiny exponents
    "x ** 2**64 near 1": (lambda x: x ** 2.0**64, [1 + 2.0**-52]),
    "x ** -2**64 near 1": (lambda x: x ** -(2.0**64) * 3.0, [1 - 2.0**-53]),
    "x ** 1e10 cancelled": (lambda x: x ** 1e10 - 1.0, [1 + 2.0**-52]),
    "exp at MPFR's edge": (lambda x: x.exp() * 0.0 + x, [7.4e8]),
    "exp(-7.4e8)": (lambda x: x.exp() + x * 1e-300, [-7.4e8]),
    # beyond MPFR's exponent range
    "exp(1e9) * 0.0": (lambda x: x.exp() * 0.0 + 1.0, [1e9]),
    "exp(-2**40) * exp(2**40)": (lambda x: (-x).exp() * x.exp() * x, [2.0**40]),
    "x ** 1e300": (lambda x: x ** 1e300, [1.5]),
    "exp(exp(30))": (lambda x: x.exp().exp(), [30.0]),
    "sigmoid(-1e300 + 1)": (lambda x: (x + 1.0).sigmoid(), [-1e300]),
    "tanh' at 1e300 after a sum": (lambda x: (x + 1.0).tanh() * 2.0, [1e300]),
    "(c - 1e300) + 1e300 into exp": (lambda x: ((-9.3 - x) + x).exp(), [1e300]),
    # exact ties and rounding midpoints
    "1 + 2**-53 (exact tie)": (lambda x, y: x + y, [1.0, 2.0**-53]),
    "(x + y)**2 tie": (lambda x, y: (x + y) ** 2.0, [1 + 2.0**-52, 1.0]),
    "sqrt of an exact square": (lambda x, y: ((x + y) * (x + y)) ** 0.5, [1.0, 2.0**-53]),
    "inexact midpoint exp(log)": (lambda x, y: (x + y).log().exp(), [1.0, 2.0**-53]),
    "x / y - 0.5 == 0": (lambda x, y: (x / y - 0.5) * 3.0 + x, [1.0, 2.0]),
    "exp(log(x)) + y tie": (lambda x, y: x.log().exp() + y, [1 + 2.0**-52, 1.0]),
    "log(exp(x)) * 1.5 tie": (lambda x, y: x.exp().log() * y * 1.5, [2.0, 1 + 2.0**-52]),
    "t / t into a tie": (lambda x, y: (x - 9.02) ** 2.0 * (y.tanh() / y.tanh()), [0.031, 0.5]),
    "tie at 2**-1075": (lambda x: x * 0.5, [5e-324]),
    # subnormals
    "subnormal product": (lambda x, y: x * y * 1e-10, [1e-300, 3.0]),
    "subnormal gradient": (lambda x, y: (x * y).log() * 1e-310, [1e-300, 3.0]),
    "exp(-745.13...)": (lambda x: x.exp(), [-745.13321910194122]),
    "sigmoid(-745)": (lambda x: x.sigmoid() * 2.0, [-745.0]),
    "smallest normal": (lambda x: x * (1 - 2.0**-53), [2.2250738585072014e-308]),
    # cancellations
    "(x + 1e300) - 1e300": (lambda x: (x + 1e300) - 1e300, [1e-300]),
    "(exp(x) - 1) / x": (lambda x: (x.exp() - 1.0) / x, [1e-100]),
    "tanh(x) - x": (lambda x: x.tanh() - x, [1e-8]),
    "x - x * 1.0 into log": (lambda x: (x.tanh() - x.tanh() * 1.0).log(), [0.5]),
    "1 - tanh^2 at 20": (lambda x: 1.0 - x.tanh() ** 2.0, [20.0]),
    "relu of a tiny positive": (lambda x: (x.exp() - 1.0 - x).relu(), [1e-25]),
    # exact zeros and identical subexpressions
    "a - a": (lambda x: (x.tanh() - x.tanh()) * 3.0 + x, [0.3]),
    "a / a": (lambda x: x.exp() / x.exp(), [3.0]),
    "relu(x - x)": (lambda x: (x.sigmoid() - x.sigmoid()).relu() + x, [2.0]),
    # the ops real models use
    "sqrt of an exact square, as sqrt": (lambda x, y: ((x + y) * (x + y)).sqrt(), [1.0, 2.0**-53]),
    "sqrt of the smallest subnormal": (lambda x: x.sqrt() * 3.0, [5e-324]),
    "sqrt of a subnormal product": (lambda x, y: (x * y).sqrt(), [1e-300, 3e-20]),
    "sqrt(x) * sqrt(x) - x": (lambda x: x.sqrt() * x.sqrt() - x, [2.0]),
    "sin(1e22)": (lambda x: x.sin(), [1e22]),
    "cos(1e22)": (lambda x: x.cos(), [1e22]),
    "sin(-1e300) * cos(1e300)": (lambda x: x.sin() * (-x).cos(), [-1e300]),
    "sin of a float near pi": (lambda x: x.sin(), [math.pi]),
    "sin of an inexact sum near pi": (lambda x, y: (x + y).sin(), [3.0, 0.14159265358979312]),
    "cos of an inexact sum near pi/2": (lambda x, y: (x + y).cos(),
                                        [1.5, 0.07079632679489656]),
    "sin of an inexact huge product": (lambda x, y: (x * y).sin(), [1e22, 3.0]),
    "cos(355)": (lambda x: x.cos() + 1.0, [355.0]),
    "erf far out": (lambda x: x.erf(), [27.0]),
    "erf(6) - 1": (lambda x: x.erf() - 1.0, [6.0]),
    "erf of a product far out": (lambda x, y: (x * y).erf() * 2.0, [30.0, -1.0]),
    "erf(1e300)": (lambda x: x.erf() + x * 1e-300, [1e300]),
    "erf near 0": (lambda x: x.erf() / x, [1e-300]),
    "log1p near 0": (lambda x: x.log1p(), [1e-300]),
    "log1p near -1": (lambda x: x.log1p(), [-1 + 2.0**-53]),
    "log1p of an inexact sum near -1": (lambda x, y: (x + y).log1p(), [-1.0, 2.0**-60]),
    "log1p(x) - x": (lambda x: x.log1p() - x, [1e-8]),
    "expm1 near 0": (lambda x: x.expm1() / x, [1e-300]),
    "expm1 near -1": (lambda x: x.expm1() + 1.0, [-40.0]),
    "expm1(-1e300)": (lambda x: x.expm1() * 2.0, [-1e300]),
    "log1p(expm1(x))": (lambda x: x.expm1().log1p() * 3.0, [-40.0]),
    "expm1(log1p(x))": (lambda x: x.log1p().expm1(), [-1 + 2.0**-53]),
    "expm1(log(y)) onto a midpoint": (lambda x: x.log().expm1() * -9.68095598195084, [0.25]),
    "exp(log1p(y)) - 1.5": (lambda x: x.log1p().exp() - 1.5, [0.5]),
    "log1p(abs(expm1(y))) + 1 - 2**-53": (lambda x, y: abs(x.expm1()).log1p() + y,
                                          [0.25, 1 - 2.0**-53]),
    "log1p(relu(expm1(y))) of a negative y": (lambda x: x.expm1().relu().log1p() * 3.0,
                                              [-0.25]),
    "log(relu(exp(y))) near y = 0": (lambda x, y: (x * y).exp().relu().log() + 1.0,
                                     [1e-300, 1e-300]),
    "exp(abs(log(y))) below 1": (lambda x: abs(x.log()).exp() * 3.0, [0.25]),
    "x ** 0": (lambda x, y: x**y, [2.0, 0.0]),
    "0 ** y": (lambda x, y: x**y, [0.0, 2.0]),
    "negative base, integer power": (lambda x, y: x**y, [-2.0, 2.0]),
    "x ** y near 1, huge y": (lambda x, y: x**y, [1 + 2.0**-52, 2.0**60]),
    "x ** y - 1": (lambda x, y: x**y - 1.0, [1 + 2.0**-52, 1.0]),
    "10 ** 308": (lambda x, y: x**y, [10.0, 308.0]),
    "x ** y of inexact operands": (lambda x, y: (x * 3.0) ** (y / 3.0), [0.1, 2.0]),
    "max tie": (lambda x, y: x.max(y) * 3.0, [1.0, 1.0]),
    "min tie": (lambda x, y: x.min(y) * 3.0, [1.0, 1.0]),
    "max(a, a)": (lambda x: x.tanh().max(x.tanh()) * 2.0, [0.5]),
    "max of an inexact tie": (lambda x, y: ((x + y) - y).max(x), [1.0, 1e-20]),
    "max near a tie": (lambda x, y: (x * y).max(x), [1.0, 1 + 2.0**-52]),
    "abs(0)": (lambda x, y: abs(x - y) + x, [1.0, 1.0]),
    "abs of a tiny product": (lambda x, y: abs(x * y) * 1e300, [1e-300, -1e-300]),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTIONS))
def test_adversarial_constructions(name):
    f, xs = CONSTRUCTIONS[name]
    judge(trace(f, xs))


def test_deep_chains():
    judge(trace(lambda x: _iterate(x, lambda v: v.tanh() * 1.5, 5000), [0.7]))
    judge(trace(lambda x: _iterate(x, lambda v: (v * x + (x * x).exp().log()) * 0.5, 2000),
                [1.3]))
    judge(trace(lambda x: _iterate(x, lambda v: v * (1.0 + 2.0**-52), 10_000), [1.0]))
    judge(trace(lambda *xs: sum(xs), [1.0 / k for k in range(1, 3000)]))


def _iterate(x, step, n):
    for _ in range(n):
        x = step(x)
    return x


@st.composite
def adversarial_graphs(draw):
    """Small graphs over every op whose leaves and constants are extreme: huge and
    tiny magnitudes, 1 +- an ulp, MPFR's exponent edges, huge powers."""
    leaves = st.sampled_from(HUGE) | st.floats(-4, 4) | st.sampled_from([0.0, 1.0, 2.0, 0.5])
    nodes = [Node.leaf(draw(leaves)) for _ in range(draw(st.integers(1, 3)))]
    consts = st.sampled_from(EXPONENTS + HUGE + [2.0, 1.0, -1.0, 0.0])
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(sorted(OPS)))
        op = OPS[name]
        last = len(nodes) - 1
        args = tuple(draw(st.integers(max(0, last - 2), last)) for _ in range(op.arity))
        const = draw(consts) if op.has_const else None
        nodes.append(Node(name, args, const))
    return Graph(tuple(nodes))


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(adversarial_graphs())
def test_adversarial_graphs(g):
    judge(g, max_prec=4096)


# ---------------------------------------------------------------------------
# Refusals on the strategies' graphs.


def test_refusals_are_rare_on_the_strategies_graphs():
    graphs: list[Graph] = []

    @settings(database=None, derandomize=True, max_examples=3000, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(gs.graphs())
    def collect(g):
        graphs.append(g)

    from gradcert.properties.determinism import source_constants_off

    with source_constants_off():  # the same sample in any worker, whatever it imported
        collect()
    refused, domain = [], []
    for g in graphs:
        try:
            exact_graph(g)
        except Unresolved:
            refused.append(g)
        except DomainError:  # float64 kept it in the domain, exact arithmetic does not
            domain.append(g)
    rate = len(refused) / len(graphs)
    print(f"refused {len(refused)} of {len(graphs)} graphs ({rate:.3%}); "
          f"{len(domain)} leave a domain in exact arithmetic")
    for g in domain:
        judge(g)
    assert graphs
    assert rate < 0.001, [g.to_json() for g in refused[:3]]
