"""The op table: every row complete, a toy row that runs through oracle, tolerance
and strategies, and the rows of the ops real models use checked by hand."""

import dataclasses
import math
from fractions import Fraction

import gmpy2
import mpmath
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mp_ops import mp_op, mp_partials

from gradcert.adapters.generic import method_of
from gradcert.engine import Value
from gradcert.graph import DomainError, Graph, Node, trace
from gradcert.ops import OPS, Op, dispatch, interpreter_source
from gradcert.oracle import exact, exact_graph, numbers
from gradcert.oracle.tolerance import Refused, tolerance
from gradcert.properties import strategies as gs

with mpmath.workprec(300):  # sin and cos of 1e22, from mpmath
    SIN22, COS22 = float(mpmath.sin(mpmath.mpf(1e22))), float(mpmath.cos(mpmath.mpf(1e22)))
NEW = ("sqrt", "abs", "max", "min", "log1p", "expm1", "erf", "sin", "cos", "pow")
KINDS = ("linear", "kink", "smooth")


def _point(op: Op) -> tuple[float, ...]:
    """Operands (and the constant) inside the op's domain, away from any kink."""
    for xs in ((0.75, 1.25), (2.0, 3.0), (1.5, 0.5)):
        args = xs[:op.arity] + ((2.0,) if op.has_const else ())
        if not op.domain(*args) and (op.switch is None or op.switch(*xs[:op.arity])):
            return args
    raise AssertionError(f"{op.name}: no probe point in its domain")


@pytest.mark.parametrize("name", list(OPS))
def test_every_row_is_complete(name):
    op = OPS[name]
    assert op.name == name and op.arity in (1, 2) and op.kind in KINDS
    args = _point(op)
    # eval in every number system: floats, an mpmath context, MPFR
    v, ps = op.eval(math, *args)
    assert math.isfinite(v) and len(ps) == op.arity
    ctx = mpmath.MPContext()
    ctx.prec = 113
    mv, mps = op.eval(ctx, *map(ctx.mpf, args))
    assert abs(mv - v) <= 1e-15 * abs(v) + 1e-300
    with numbers.context(113):
        nv, nps = op.eval(numbers, *map(numbers.number, args))
    assert abs(float(nv) - v) <= 1e-15 * abs(v) + 1e-300 and len(nps) == op.arity
    # the spellings: a method of the tracer, the reference engine and the interpreters
    assert any(name in dict(forms).values() for forms in dispatch().values())
    assert f'"{name}": lambda' in interpreter_source()
    assert method_of(op) is None or hasattr(Value, method_of(op)) or name == "max" \
        or name == "min"
    got = op.apply(*[Value(x) for x in args[:op.arity]], *args[op.arity:])
    assert got.data == pytest.approx(v, rel=1e-15)
    # the oracle's facts
    kv, kp = op.rounding_counts(abs(args[0]), exact=True)
    fv, fp = op.rounding_counts(args, exact=False)
    assert min(kv, kp, fv, fp) >= 0
    if op.kind == "kink":
        assert op.switch is not None and op.jump > 0 and op.copies
    if op.kind == "smooth":  # a partial that moves needs a bound on how far
        assert op.variation.__name__ != "_constant_partials"
        errs = (1e-9,) * op.arity
        moves = op.variation(math, args[:op.arity], errs, args[-1] if op.has_const else None,
                             v, ps)
        assert len(moves) == op.arity and all(m >= 0 for m in moves)
    assert (op.domain_edge(args[-1] if op.has_const else None) is not None) or not any(
        op.domain(*([x] * op.arity), *args[op.arity:]) for x in (-1.0, 0.0, -1e300))
    # the tolerance model's and the strategies' facts
    assert (op.output_form is None) == (op.output_error is None)
    assert op.has_const == (op.const_effect is not None)
    assert all(isinstance(x, float) and math.isfinite(x) for x in op.edges)
    assert op.partner is None or OPS[op.partner].partner == name
    # the independent reference in the tests knows it
    c = ctx.mpf(args[-1]) if op.has_const else None
    assert abs(mp_op(ctx, name, c)(*map(ctx.mpf, args[:op.arity])) - mv) <= abs(mv) * 1e-30
    for p, q in zip(mp_partials(ctx, name, c)(*map(ctx.mpf, args[:op.arity])), mps,
                    strict=True):
        assert abs(p - q) <= (abs(p) + 1) * 1e-30, name


# ---------------------------------------------------------------------------
# A toy op added to the table runs through oracle, tolerance and strategies.


def _cube(ns, x):
    return x * x * x, (3 * x * x,)


def _cube_variation(ns, xs, es, c, out, ps):
    # |(3 t**2)'| = 6 |t| <= 6 (|x| + e) over the interval
    e = es[0]
    return (6 * e * (abs(xs[0]) + e * 1.001) if e else 0 * e,)


CUBE = Op("cube", 1, False, "{0}.cube()", _cube, roundings=(2, 2), variation=_cube_variation,
          float_roundings=(2, 2), edges=(1e100, -1e100, 1e-120, 3.0), safe_chain=(1.0, None))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(OPS, "cube", CUBE)
    yield CUBE


def test_a_toy_op_runs_through_oracle_tolerance_and_strategies(toy):
    g = Graph((Node.leaf(1.1), Node("cube", (0,)), Node("addc", (1,), 0.5)))
    ex = exact_graph(g)
    assert ex.value_f64 == float(Fraction(1.1) ** 3 + Fraction(1, 2))
    assert ex.grad_f64 == (float(3 * Fraction(1.1) ** 2),)
    tol = tolerance(g, ex)
    assert tol.check(1.1**3 + 0.5, [3 * 1.1 * 1.1], ex) == []
    assert tol.check(1.1**3 + 0.5, [3 * 1.1 * 1.1 * (1 + 1e-9)], ex)
    drawn = []

    @settings(database=None, derandomize=True, max_examples=40, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(gs.graphs(ops={"cube", "mul"}, max_nodes=6))
    def collect(g):
        drawn.append(g)

    collect()
    assert any("cube" in g.ops_used() for g in drawn)
    assert ((3.0,), None) in gs.edge_cases("cube")
    for g in drawn[:10]:
        exact_graph(g)


# ---------------------------------------------------------------------------
# The ops real models use, by hand.


def test_new_rows_are_in_the_table():
    assert set(NEW) <= set(OPS)
    assert dispatch()["__pow__"] == (("const", "powc"), ("node", "pow"))
    assert dispatch()["__abs__"] == (("none", "abs"),)


@pytest.mark.parametrize("f, x, value, grad", [
    (lambda x: x.sqrt(), 4.0, 2.0, 0.25),
    (lambda x: x.sqrt(), 5e-324, math.sqrt(5e-324), 0.5 / math.sqrt(5e-324)),
    (lambda x: abs(x), -3.0, 3.0, -1.0),
    (lambda x: abs(x - x), 3.0, 0.0, 0.0),  # abs'(0) = 0
    (lambda x: x.log1p(), 1e-300, 1e-300, 1.0),
    (lambda x: x.log1p(), -1 + 2**-53, math.log(2**-53), 2.0**53),
    (lambda x: x.expm1(), 1e-300, 1e-300, 1.0),
    (lambda x: x.expm1(), -1e300, -1.0, 0.0),
    (lambda x: x.erf(), 30.0, 1.0, 0.0),  # erf'(30) = 1.4e-391: below float64
    (lambda x: x.erf(), 0.0, 0.0, 2 / math.sqrt(math.pi)),
    (lambda x: x.sin(), 0.0, 0.0, 1.0),
    (lambda x: x.cos(), 0.0, 1.0, -0.0),
    (lambda x: x.sin(), 1e22, SIN22, COS22),
    (lambda x: x.cos(), 1e22, COS22, -SIN22),
])
def test_hand_checked_values_and_derivatives(f, x, value, grad):
    ex = exact(f, [x])
    assert ex.value_f64 == value and ex.grad_f64 == (grad,)
    leaf = Value(x)  # the reference engine's own derivative, within an ulp or two
    out = f(leaf)
    out.backward()
    assert out.data == pytest.approx(value, rel=2e-16, abs=0)
    assert leaf.grad == pytest.approx(grad, rel=4e-16, abs=1e-320)


def test_pow_of_two_nodes():
    ex = exact(lambda x, y: x**y, [2.0, 10.0])
    assert ex.value_f64 == 1024.0
    assert ex.grad_f64 == (5120.0, float(mpmath.mpf(1024) * mpmath.log(2)))
    assert exact(lambda x, y: x**y, [3.0, 0.0]).grad_f64 == (0.0, math.log(3.0))
    for xs in ([0.0, 2.0], [-2.0, 2.0], [-1.0, 0.5]):
        with pytest.raises(DomainError, match="positive base"):
            exact(lambda x, y: x**y, xs)
    x, y = Value(2.0), Value(10.0)
    (x**y).backward()
    assert x.grad == 5120.0 and y.grad == pytest.approx(1024 * math.log(2), rel=1e-15)


def test_max_and_min_ties_split_the_gradient_evenly():
    for f in (lambda x, y: x.max(y), lambda x, y: x.min(y)):
        ex = exact(f, [1.5, 1.5])
        assert ex.grad_f64 == (0.5, 0.5) and ex.kinks == (2,)
        a, b = Value(1.5), Value(1.5)
        f(a, b).backward()
        assert (a.grad, b.grad) == (0.5, 0.5)
    assert exact(lambda x: x.max(x), [2.0]).grad_f64 == (1.0,)  # max(a, a) is a
    assert exact(lambda x, y: x.max(y), [1.0, 2.0]).grad_f64 == (0.0, 1.0)
    assert exact(lambda x, y: x.min(y), [1.0, 2.0]).grad_f64 == (1.0, 0.0)


def test_domains_of_the_new_rows():
    for f, x, op in [(lambda x: x.sqrt(), 0.0, "sqrt"), (lambda x: x.sqrt(), -1.0, "sqrt"),
                     (lambda x: x.log1p(), -1.0, "log1p")]:
        with pytest.raises(DomainError) as e:
            exact(f, [x])
        assert e.value.op == op


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NEW), st.floats(-30, 30), st.floats(0.01, 5))
@example("pow", 2.2250738585e-313, 0.01171875)  # x ** (y - 1) overflows, y x ** (y - 1) not
def test_the_reference_engine_agrees_with_the_oracle_on_each_new_op(name, x, y):
    """The engine's own one-line derivatives (not the rows) within the tolerance model."""
    op = OPS[name]
    xs = (x, y)[:op.arity]
    if op.domain(*xs):  # sqrt, log1p, pow: a point inside
        xs = (abs(x) + 0.5, y)[:op.arity]
    if op.switch is not None and op.switch(*xs) == 0:
        return
    g = trace(lambda *v: op.apply(*v), list(xs))
    try:
        ex = exact_graph(g)
    except DomainError:
        return
    vs = [Value(t) for t in xs]
    out = op.apply(*vs)
    out.backward()
    grads = [v.grad for v in vs]
    try:
        assert tolerance(g, ex).check(out.data, grads, ex) == [], (name, xs)
    except Refused:  # the model's own floats overflow (a subnormal x): a few roundings then
        assert all(math.isclose(d, e, rel_tol=1e-14) for d, e in zip(grads, ex.grad_f64,
                                                                      strict=True)), (name, xs)


def test_the_toy_row_is_gone_after_the_test():
    assert "cube" not in OPS
    assert dataclasses.is_dataclass(CUBE)


_SMOOTH = sorted(name for name, op in OPS.items() if op.kind == "smooth")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(_SMOOTH), st.floats(-40, 40), st.floats(-6, 6),
       st.floats(-12, -1), st.floats(-12, -1), st.sampled_from([2.0, 0.5, -1.0, 3.0, 1 / 3]),
       st.lists(st.floats(-1, 1), min_size=2, max_size=2))
def test_variation_bounds_how_far_each_partial_moves(name, x, y, lex, ley, c, ts):
    """Each smooth row's ``variation`` (the oracle's soundness argument) is at least the
    move of each exact partial between the centre of the error box and its corners and a
    point inside it, away from the domain's edge by the oracle's margin of 16 errors."""
    op = OPS[name]
    const = (c,) if op.has_const else ()
    xs = [x, y][:op.arity]
    if op.domain(*xs, *const):
        xs[0] = abs(x) + 0.5
        if op.domain(*xs, *const):
            return
    es = [abs(v) * 10.0**lex + 1e-300 for v in xs[:1]] + [abs(xs[-1]) * 10.0**ley + 1e-300]
    es = es[:op.arity]
    edge = op.domain_edge(c if op.has_const else None)
    if edge is not None and not es[edge[0]] * 16 < abs(xs[edge[0]] - edge[1]):
        return
    ctx = mpmath.MPContext()
    ctx.prec = 600  # the moves are differences of these: their own error is allowed below
    here = [ctx.mpf(v) for v in xs]
    mc = [ctx.mpf(v) for v in const]
    v0, p0 = op.eval(ctx, *here, *mc)
    ps = tuple(float(p) for p in p0)
    # The oracle evaluates the bound in floats (its screen) only where every magnitude is
    # within 2**+-128 and every error within [2**-500, 2**128], so nothing underflows,
    # and in MPFR (its general pass) everywhere: both are checked where they apply.
    screen = (all(not v or 2.0**-128 <= abs(v) <= 2.0**128 for v in [*xs, *const, *ps])
              and all(2.0**-500 <= e <= 2.0**128 for e in es))
    with numbers.context(300):
        n = numbers.number
        general = op.variation(numbers, tuple(map(n, xs)), tuple(map(n, es)),
                               n(c) if op.has_const else None, n(float(v0)), tuple(map(n, ps)))
        bounds = [[ctx.mpf(numbers.to_mpf(b, ctx)) if gmpy2.is_finite(b) else ctx.inf
                   for b in general]]
    if screen:
        try:
            floats = op.variation(math, tuple(xs), tuple(es), c if op.has_const else None,
                                  float(v0), ps)
        except (OverflowError, ZeroDivisionError):
            floats = (math.inf,) * op.arity
        bounds.append([ctx.mpf(b) for b in floats])
    corners = [[s * e for s, e in zip(signs, es, strict=False)]
               for signs in ((1, 1), (-1, -1), (1, -1), (-1, 1))]
    corners.append([t * e for t, e in zip(ts, es, strict=False)])
    for d in corners:
        there = [h + ctx.mpf(dd) for h, dd in zip(here, d, strict=False)]
        _, p1 = op.eval(ctx, *there, *mc)
        for k in range(op.arity):
            move = abs(p1[k] - p0[k])
            own = (abs(p0[k]) + abs(p1[k])) * ctx.mpf(2) ** (8 - ctx.prec)  # eval's roundings
            for bound in bounds:
                assert move <= bound[k] * (1 + 1e-9) + ctx.mpf(1e-300) + own, \
                    (name, xs, es, k, float(move), float(bound[k]), len(bounds))
