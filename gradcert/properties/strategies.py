"""Hypothesis strategies for expression graphs, their leaves, and single ops.

:func:`graphs` grows a :class:`~gradcert.graph.Graph` node by node over a
chosen subset of the op table (what the engine under test supports). Every
node is checked as it is made: its op's domain, a finite float64 value, and a
bounded sensitivity (so gradients stay finite too). A node that fails is
repaired locally, by picking other arguments or another allowed op, never by
rejecting the whole graph. Choices are drawn so that shrinking moves towards
fewer nodes, chains on the most recent node, the first allowed op, and leaves
such as ``1.0``.

No kink is ever taken exactly (relu or abs of ``0.0``, max or min of two
equal values): which derivative an engine picks there is a convention,
checked by its own property. Nor is a smooth op drawn where its relative
condition number passes 2**53 (``x ** y`` at x within rounding of 1 and a
huge y, sin of a rounded 1e26): float64's value is noise there.

>>> from hypothesis import find, settings
>>> g = find(graphs(ops={"mul", "log"}), lambda g: "log" in g.ops_used(),
...          settings=settings(database=None, derandomize=True))
>>> [n.op for n in g.nodes]
['leaf', 'log']
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from gradcert.graph import Graph, GraphError, Node, evaluate, trace
from gradcert.ops import OPS

__all__ = ["KINDS", "add_chain", "chains", "edge_cases", "graphs", "in_domain", "leaves",
           "op_inputs", "random_dag", "sum_chain", "tame", "wide_sums"]

KINDS = ("realistic", "nasty", "mixed")
"""Kinds of leaf values: see :func:`leaves`."""

_BIG = 1e150  # an op may not push a value past this, unless an operand already was
_MAX_FLOAT = 1.7976931348623157e308
_SENSITIVITY = 1e200  # bound on the sum over paths of |products of partials| between nodes
_NOISE = 2.0**53  # (x ** y at x within rounding of 1, y = -4.6e82: float64 says 1.0 where
# the exact value is beyond any range; sin of a rounded 3.9e26 has any sign)

_REALISTIC_EDGES = (1.0, 0.0, 2.0, -1.0, 0.5, 3.0, -2.0, -0.5, 0.25, 1.5, -3.0, 0.1)
_NASTY_EDGES = (
    1e300, -1e300, 1e-300, -1e-300, 1e150, -1e150, 1e-150, 1e100, -1e-100,
    2.2250738585072014e-308, 1 + 2**-52, 1 - 2**-53, -1 - 2**-52, 0.1, 1 / 3,
    math.pi, -math.e, 1e16, 1e16 + 2, 2.0**53 + 1, 1e-16, 123456789.12345679,
)
_CONSTS = (2.0, 1.0, 0.5, -1.0, 3.0, -2.0, 0.0, 0.1, 1e-3, 1e3, 10.0, -0.5)
# Op facts (edge inputs, constants, how to chain an op) live on the op's row.
# What the sweep (edge_cases) adds: inputs every op meets at its first few uses, the other
# operand of a binary op at an edge, the pairs of operands whose derivatives reach the
# float64 extremes, and the constants of constant ops.
_SWEEP_COMMON = (1.0, 0.0, -1.0, 0.5, 2.0, -3.0, 1e-300, -1e-300, 1e150, -1e150, 1e300)
_SWEEP_PARTNERS = (1.0, -2.0, 0.5, 1e-200)
_SWEEP_PAIRS: dict[str, tuple[tuple[float, float], ...]] = {
    "div": ((1e-300, 1e-200), (-1e-300, 1e-200), (1e300, 1e-10), (1.0, 1e-150)),
    "mul": ((1e-300, 1e-200), (1e200, 1e100)),
}
_SWEEP_CONSTS = (2.0, -1.0, 0.5, 0.0, 1e-3, 1e3, -10.0)

_STATS = {"graphs": 0, "nodes": 0, "repaired": 0, "skipped": 0, "discarded": 0,
          "op_inputs": 0, "op_inputs_fallback": 0, "chains": 0, "chains_fallback": 0}
# Counters of what the strategies did (drawn, repaired, discarded); read by the tests.


# ---------------------------------------------------------------------------
# Leaves and constants.


def _signed_powers(lo: float, hi: float) -> SearchStrategy[float]:
    return st.tuples(st.booleans(), st.floats(lo, hi)).map(
        lambda t: (-1.0 if t[0] else 1.0) * 10.0 ** t[1])


_REALISTIC = st.one_of(
    st.sampled_from(_REALISTIC_EDGES),
    st.integers(-5, 5).map(float),
    st.floats(-3.0, 3.0),
    st.floats(-1e-3, 1e-3),  # near 0
    st.floats(-1e-6, 1e-6).map(lambda d: 1.0 + d),  # near 1
)
_NASTY = st.one_of(
    st.sampled_from(_NASTY_EDGES),
    _signed_powers(-300.0, 300.0),  # huge and tiny magnitudes
    st.floats(-1e6, 1e6),  # long mantissas, negatives
)


@st.composite
def _mixed(draw: Any) -> float:
    nasty = draw(st.integers(0, 4)) == 4  # one leaf in five is nasty; shrinks to realistic
    return float(draw(_NASTY if nasty else _REALISTIC))


_MIXED = _mixed()


def leaves(kind: str = "realistic") -> SearchStrategy[float]:
    """Finite float64 leaf values of a kind, shrinking towards ``1.0``.

    - ``"realistic"``: small integers, values near 0 and near 1, floats in
      [-3, 3], the usual suspects (0, 1, -1, 0.5, ...).
    - ``"nasty"``: magnitudes from 1e-300 to 1e300 of either sign, the
      smallest normal, 1 +- 1 ulp, integers beyond 2**53, long mantissas.
    - ``"mixed"``: realistic, with one value in five nasty.

    >>> from hypothesis import find, settings
    >>> find(leaves("nasty"), lambda x: abs(x) > 1e200,
    ...      settings=settings(database=None, derandomize=True))
    1e+300
    """
    if kind == "realistic":
        return _REALISTIC
    if kind == "nasty":
        return _NASTY
    if kind == "mixed":
        return _MIXED
    raise ValueError(f"leaves: unknown kind {kind!r} (known: {', '.join(KINDS)})")


_leaves_of_kind = leaves  # graphs() has an argument of the same name

_GENERAL_CONSTS = st.one_of(st.sampled_from(_CONSTS), st.floats(-10.0, 10.0))


def _constants(op: str) -> SearchStrategy[float]:
    """The row's constants, or the general ones; never one outside the op's domain at a
    tame operand (a zero divisor)."""
    got = _CONSTANTS.get(op)
    if got is None:
        row = OPS[op]
        tame = (1.0,) * row.arity
        got = _GENERAL_CONSTS if row.consts is None else st.sampled_from(row.consts)
        if any(row.domain(*tame, c) for c in row.consts or _CONSTS):
            got = got.filter(lambda c: row.domain(*tame, c) is None)
        _CONSTANTS[op] = got
    return got


_CONSTANTS: dict[str, SearchStrategy[float]] = {}


# ---------------------------------------------------------------------------
# One node, checked.


def _node_value(op: str, xs: Sequence[float], const: float | None, sens: Sequence[float], *,
                bounded: bool = True, sens_limit: float = _SENSITIVITY,
                ) -> tuple[float, float] | None:
    """The node's float64 value and sensitivity, or None if it must not be made.

    ``sens`` holds each operand's sensitivity: an upper bound on the absolute
    derivative of that operand with respect to any earlier node, leaves
    included. The node's is the sum of |partial| times the operand's, and at
    least 1 (its derivative with respect to itself); so it bounds every sum
    over paths of |products of partials| that ends at the node, and bounding
    it keeps every gradient finite, and every adjoint and every term of a
    float64 reverse sweep too (``x / y`` with y = 1e-302 has a partial of
    1e302 even when x is as tiny, and its adjoint would overflow).
    """
    row = OPS[op]
    operands: tuple[Any, ...] = (*xs, const) if row.has_const else tuple(xs)
    if row.domain(*operands) is not None:
        return None
    if row.switch is not None and row.switch(*xs) == 0:
        return None  # exactly at a kink
    try:
        v, partials = row.eval(math, *operands)
    except (OverflowError, ZeroDivisionError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    if bounded and abs(v) > _BIG and abs(v) > max(abs(x) for x in operands):
        return None
    if bounded and row.kind == "smooth" and v and any(
            abs(p * x) > _NOISE * abs(v) for p, x in zip(partials, xs, strict=False)):
        return None  # a relative condition number past 2**53: float64's value is noise
    s = 0.0
    for p, si in zip(partials, sens, strict=True):
        s += abs(p) * si
    if not s <= sens_limit:  # also rejects nan and inf
        return None
    return float(v), max(s, 1.0)


# ---------------------------------------------------------------------------
# Graphs.


def _allowed(ops: Iterable[str] | None) -> tuple[str, ...]:
    if ops is None:
        return tuple(OPS)
    if isinstance(ops, str):
        raise TypeError(f"graphs: ops must be a collection of op names, not the string {ops!r}")
    names = set(ops)
    unknown = sorted(n for n in names if n not in OPS)
    if unknown:
        raise ValueError(f"graphs: unknown op(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(OPS)})")
    if not names:
        raise ValueError("graphs: ops is empty; a graph needs at least one op to use")
    return tuple(n for n in OPS if n in names)  # table order: simple ops first


class _Builder:
    """The graph under construction: nodes, their float64 values and sensitivities."""

    def __init__(self, allowed: tuple[str, ...], max_nodes: int, max_leaves: int) -> None:
        self.allowed = allowed
        self.max_nodes = max_nodes
        self.max_leaves = max_leaves
        self.nodes: list[Node] = []
        self.values: list[float] = []
        self.sens: list[float] = []
        self.n_leaves = 0

    def room_for_leaf(self) -> bool:
        return self.n_leaves < self.max_leaves and len(self.nodes) + 2 <= self.max_nodes

    def push_leaf(self, x: float) -> int:
        self.nodes.append(Node.leaf(x))
        self.values.append(x)
        self.sens.append(1.0)
        self.n_leaves += 1
        return len(self.nodes) - 1

    def pop_leaf(self) -> None:
        self.nodes.pop()
        self.values.pop()
        self.sens.pop()
        self.n_leaves -= 1

    def attempt(self, op: str, args: tuple[int, ...], const: float | None) -> bool:
        if not OPS[op].has_const:
            const = None
        r = _node_value(op, [self.values[a] for a in args], const,
                        [self.sens[a] for a in args])
        if r is None:
            return False
        self.nodes.append(Node(op, args, const))
        self.values.append(r[0])
        self.sens.append(r[1])
        return True

    def place(self, op: str, args: tuple[int, ...], const: float | None) -> bool:
        """Make the node, repairing it locally if needed; False if nothing fits."""
        if self.attempt(op, args, const):
            return True
        _STATS["repaired"] += 1
        i = len(self.nodes)
        near = range(i - 1, max(-1, i - 65), -1)  # other arguments, most recent first
        if len(args) == 1:
            if any(self.attempt(op, (j,), const) for j in near if j != args[0]):
                return True
        else:
            a, b = args
            if any(self.attempt(op, (a, j), const) for j in near if j != b):
                return True
            if any(self.attempt(op, (j, b), const) for j in near if j != a):
                return True
        for other in self.allowed:  # another allowed op on the same arguments
            if other == op:
                continue
            o_args = args[:1] if OPS[other].arity == 1 else (args[0], args[-1])
            if self.attempt(other, o_args, 2.0 if const is None else const):
                return True
        if self.room_for_leaf():  # last resort: the op on a fresh, tame leaf
            leaf = self.push_leaf(2.0)
            if self.attempt(op, (leaf,) if len(args) == 1 else (args[0], leaf), const):
                return True
            self.pop_leaf()
        if len(self.nodes) == self.n_leaves:  # no op uses the leaves yet: tame the last one
            last = len(self.nodes) - 1
            self.nodes[last] = Node.leaf(2.0)
            self.values[last] = 2.0
            return self.attempt(op, (last,) * len(args), const)
        return False


_R10 = st.integers(0, 9)
_MORE = st.integers(0, 99)


@st.composite
def _graphs(draw: Any, allowed: tuple[str, ...], min_nodes: int, max_nodes: int,
            min_leaves: int, max_leaves: int, leaf: SearchStrategy[float],
            stop_cut: int) -> Graph:
    weighted = list(allowed) + [op for op in allowed if OPS[op].arity == 2]
    op_choice = st.sampled_from(weighted)
    g = _Builder(allowed, max_nodes, max_leaves)
    for _ in range(min_leaves):
        g.push_leaf(draw(leaf))
    skips = 0
    while len(g.nodes) < max_nodes and skips <= max(8, max_nodes // 4):
        first = len(g.nodes) == min_leaves  # stopping before any op is made rarer
        if len(g.nodes) >= min_nodes and draw(_MORE) < (stop_cut // 3 if first else stop_cut):
            break
        op = draw(op_choice)
        i = len(g.nodes)
        r = draw(_R10)
        if r < 7:
            a = i - 1  # a chain on the most recent node
        elif r < 9:
            a = max(0, i - 1 - draw(st.integers(1, 3)))
        else:
            a = draw(st.integers(0, i - 1))  # fan-out from far back
        const = draw(_constants(op)) if OPS[op].has_const else None
        fresh = False
        args: tuple[int, ...] = (a,)
        if OPS[op].arity == 2:
            r2 = draw(_R10)
            if r2 < 2:
                b = a  # the same node twice: x * x
            elif r2 < 6 and g.room_for_leaf():
                b, fresh = g.push_leaf(draw(leaf)), True
            elif r2 < 8:
                b = max(0, i - 1 - draw(st.integers(0, 3)))
            else:
                b = draw(st.integers(0, i - 1))
            swap = draw(st.booleans())
            args = (b, a) if swap else (a, b)
        if g.place(op, args, const):
            _STATS["nodes"] += 1
        else:
            if fresh:
                g.pop_leaf()
            skips += 1
            _STATS["skipped"] += 1
    if len(g.nodes) < min_nodes:
        _STATS["discarded"] += 1
        assume(False)
    _STATS["graphs"] += 1
    return Graph(tuple(g.nodes))


def graphs(ops: Iterable[str] | None = None, *, min_nodes: int = 1, max_nodes: int = 30,
           min_leaves: int = 1, max_leaves: int = 4,
           leaves: str | SearchStrategy[float] | None = None) -> SearchStrategy[Graph]:
    """Expression graphs over the op names ``ops`` (default: the whole op table).

    Sizes count every node, leaves included. Each node's op and arguments are
    drawn together: mostly a chain on the most recent node, sometimes a node
    further back (fan-out), the same node twice (``x * x``), or a fresh leaf.
    Every node is in its op's domain, float64-finite, and of bounded
    sensitivity, so gradients are finite as well; a node that would not be is
    repaired locally. ``leaves`` is a kind for :func:`leaves` or a float
    strategy; the default mixes realistic and nasty values.

    Shrinks towards fewer nodes, chains on the most recent node, the same
    node twice, ops early in the table (``add`` first), constant ``2.0``
    and leaves ``1.0``.

    >>> from hypothesis import find, settings
    >>> from gradcert.graph import to_python
    >>> g = find(graphs(ops={"add", "mul"}), lambda g: "mul" in g.ops_used(),
    ...          settings=settings(database=None, derandomize=True))
    >>> print(to_python(g), end="")
    def build(Value):
        x0 = Value(1.0)
        v1 = x0 * x0
        return [x0], v1
    """
    allowed = _allowed(ops)
    for name, v in (("min_nodes", min_nodes), ("max_nodes", max_nodes),
                    ("min_leaves", min_leaves), ("max_leaves", max_leaves)):
        if type(v) is not int or v < 1:
            raise ValueError(f"graphs: {name} must be a positive int, got {v!r}")
    if min_nodes > max_nodes:
        raise ValueError(f"graphs: min_nodes={min_nodes} > max_nodes={max_nodes}")
    if min_leaves > max_leaves:
        raise ValueError(f"graphs: min_leaves={min_leaves} > max_leaves={max_leaves}")
    if min_leaves > max_nodes:
        raise ValueError(f"graphs: min_leaves={min_leaves} > max_nodes={max_nodes}")
    if leaves is None:
        leaf = _MIXED
    elif isinstance(leaves, str):
        leaf = _leaves_of_kind(leaves)
    elif isinstance(leaves, SearchStrategy):
        leaf = leaves
    else:
        raise TypeError(f"graphs: leaves must be a kind ({', '.join(KINDS)}) or a "
                        f"strategy of floats, got {type(leaves).__name__}")
    extra = max(1.0, (max_nodes - min_nodes) / 3)  # mean number of nodes beyond min_nodes
    stop_cut = max(1, round(100 / (extra + 1)))
    return _graphs(allowed, min_nodes, max_nodes, min_leaves, max_leaves, leaf, stop_cut)


# ---------------------------------------------------------------------------
# Chains and wide sums.

def _chain(op: str, length: int, x: float, c: float | None) -> Graph | None:
    row = OPS[op]
    nodes = [Node.leaf(x)]
    v, s = x, 1.0
    tie = row.kind == "kink" and row.arity == 2  # max(x, x) would be a tie: start at -x
    for k in range(length):
        name = "neg" if tie and k == 0 else row.partner if row.partner and k % 2 else op
        step = OPS[name]
        prev = len(nodes) - 1
        const = c if row.has_const and name == op else step.tame_const
        if step.arity == 2:
            r = _node_value(name, (v, x), None, (s, 1.0), bounded=False)
            node = Node(name, (prev, 0))
        else:
            r = _node_value(name, (v,), const, (s,), bounded=False)
            node = Node(name, (prev,), const)
        if r is None:
            return None
        v, s = r
        nodes.append(node)
    return Graph(tuple(nodes))


def _chain_leaf(row: Any, kind: str, length: int) -> SearchStrategy[float]:
    span = min(2.0, 300 / length) / math.log(10)
    near_one = _signed_powers(-span, span)  # x ** length stays in range
    draw = {"near_one": near_one, "positive_near_one": near_one.map(abs)}.get(row.chain_leaf)
    if draw is not None:
        return draw
    draw = leaves(kind)
    if row.chain_leaf == "positive":
        return draw.map(abs)  # log's domain; relu of a negative is 0 for ever after
    if row.chain_leaf == "negative":
        return draw.map(lambda t: -abs(t))
    return draw


@st.composite
def _chains(draw: Any, op: str, length: int, kind: str) -> Graph:
    row = OPS[op]
    x = draw(_chain_leaf(row, kind, length))
    c: float | None = None
    if row.chain_consts == "near_one":
        span = min(2.0, 300 / length) / math.log(10)
        c = draw(_signed_powers(-span, span))
    elif isinstance(row.chain_consts, tuple) and length > 4:
        c = draw(st.sampled_from(row.chain_consts))  # constants the op can repeat for long
    elif row.has_const:
        c = draw(_constants(op))
    _STATS["chains"] += 1
    g = _chain(op, length, x, c)
    if g is None:
        _STATS["chains_fallback"] += 1
        x, c = row.safe_chain
        g = _chain(op, length, x, c if row.has_const else None)
    if g is None:  # pragma: no cover - every op's safe chain is tested at length 10**4
        raise RuntimeError(f"chains: no chain of {op} of length {length} stays in range")
    return g


def chains(op: str, length: int, *, kind: str = "realistic") -> SearchStrategy[Graph]:
    """Deep chains: one leaf ``x`` and ``length`` nodes, each applying ``op`` to the last.

    Binary ops take the leaf as their second operand (``((x * x) * x) * x``,
    fan-out of the leaf at every level). An op that cannot be iterated for
    long alternates with its row's partner (``exp(log(exp(x)))``); a binary
    kink starts from ``-x`` (``max(-x, x)``), since ``max(x, x)`` is a tie.
    Leaves and constants are chosen so every node stays in range (e.g. ``x``
    near 1 for ``mul``); shrinks towards leaf ``1.0`` and the simplest constant.

    >>> from hypothesis import find, settings
    >>> g = find(chains("tanh", 100), lambda g: True,
    ...          settings=settings(database=None, derandomize=True))
    >>> len(g), g.ops_used() == {"tanh"}
    (101, True)
    """
    if op not in OPS:
        raise ValueError(f"chains: unknown op {op!r} (known: {', '.join(OPS)})")
    if type(length) is not int or length < 1:
        raise ValueError(f"chains: length must be a positive int, got {length!r}")
    leaves(kind)  # validates kind
    return _chains(op, length, kind)


def wide_sums(n: int, *, kind: str = "realistic") -> SearchStrategy[Graph]:
    """Wide fan-in: ``sum()`` over ``n`` leaves, as Python's ``sum`` builds it.

    That is ``0 + x0`` (a ``raddc``), then ``n - 1`` adds: a chain ``n`` deep
    whose output depends on every leaf. Shrinks towards all leaves ``1.0``.

    >>> from hypothesis import find, settings
    >>> g = find(wide_sums(3), lambda g: True,
    ...          settings=settings(database=None, derandomize=True))
    >>> [n.op for n in g.nodes], g.inputs
    (['leaf', 'leaf', 'leaf', 'raddc', 'add', 'add'], (1.0, 1.0, 1.0))
    """
    if type(n) is not int or n < 1:
        raise ValueError(f"wide_sums: n must be a positive int, got {n!r}")
    return st.lists(leaves(kind), min_size=n, max_size=n).map(
        lambda xs: trace(lambda *vs: sum(vs), xs))


# ---------------------------------------------------------------------------
# Fixed graphs the robustness properties build, and the guard of drawn ones.


def sum_chain(n: int, seed: int = 0) -> Graph:
    """What ``sum(xs)`` builds over ``n`` leaves: ``0 + x0``, then ``n - 1`` adds.

    >>> [n.op for n in sum_chain(3).nodes]
    ['leaf', 'leaf', 'leaf', 'raddc', 'add', 'add']
    """
    rng = random.Random(seed)
    nodes = [Node.leaf(rng.choice((0.5, 1.0, 1.5, 2.0, 0.25))) for _ in range(n)]
    nodes.append(Node("raddc", (0,), 0.0))
    for i in range(1, n):
        nodes.append(Node("add", (len(nodes) - 1, i)))
    return Graph(tuple(nodes))


_INVERSE = {"exp": "log", "log": "exp"}


def random_dag(n: int, ops: Iterable[str], seed: int) -> Graph:
    """A seeded random DAG of ``n`` op nodes over ``ops`` (plus ~n/10 leaves), with heavy
    fan-out, values kept in 1e-3 <= |v| <= 10 and derivative sums kept small, so it
    stays finite.

    >>> g = random_dag(50, {"add", "mul", "tanh"}, 1)
    >>> len(g) - len(g.leaves), g.ops_used() <= {"add", "mul", "tanh"}
    (50, True)
    """
    ops = frozenset(ops)
    rng = random.Random(seed)
    unary: list[str] = [o for o in ("tanh", "sigmoid", "mulc", "addc", "neg", "relu", "exp",
                                    "log") if o in ops]
    binary: list[str] = [o for o in ("add", "mul", "sub") if o in ops]
    nodes: list[Node] = []
    vals: list[float] = []
    for _ in range(max(2, n // 10)):
        nodes.append(Node.leaf(rng.uniform(-1.0, 1.0)))
        vals.append(nodes[-1].value)  # type: ignore[arg-type]
    leaves_ = len(nodes)
    while len(nodes) < leaves_ + n:
        k = len(nodes)
        a = k - 1 if rng.random() < 0.6 else rng.randrange(k)
        if binary and rng.random() < 0.5:
            op = rng.choice(binary)
            b = rng.randrange(max(0, k - 50), k)
            args: tuple[int, ...] = (a, b)
            const = None
        elif unary:
            op = rng.choice(unary)
            args, const = (a,), {"mulc": 0.5, "addc": 0.25}.get(op)
        else:
            op, args, const = binary[0], (a, rng.randrange(k)), None
        if nodes[a].op == _INVERSE.get(op):
            continue  # exp(log(y)) is exactly y: nothing to test, and hard to certify
        row = OPS[op]
        xs = [vals[i] for i in args] + ([const] if const is not None else [])
        if row.domain(*xs):
            continue
        try:
            v = row.forward(math, *xs)
        except (OverflowError, ValueError, ZeroDivisionError):
            continue
        if not 1e-3 <= abs(v) <= 10.0 or (op == "mul" and max(abs(vals[i]) for i in args) > 1.0):
            continue  # far from 0, so no exact cancellation and no relu kink
        nodes.append(Node(op, args, const))
        vals.append(v)
    return Graph(tuple(nodes))


def tame(graph: Graph, limit: float = 1e150) -> bool:
    """Whether every value and every local derivative of ``graph`` is finite and within
    ``limit`` in float64 (what :func:`graphs` guarantees for its graphs): otherwise a
    correct engine's partials overflow (``x / x`` at 5e-324 has partials +-inf, and
    inf - inf is nan) and there is nothing to judge.

    >>> tame(trace(lambda x: x / x, [5e-324])), tame(trace(lambda x: x * x, [3.0]))
    (False, True)
    """
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


# ---------------------------------------------------------------------------
# Single ops.

OpInputs = tuple[tuple[float, ...], float | None]
_SAFE_OPERAND = st.floats(0.25, 4.0)  # in the domain of every op with every constant


@st.composite
def _op_inputs(draw: Any, op: str, kind: str) -> OpInputs:
    row = OPS[op]
    edges = row.edges
    const = draw(_constants(op)) if row.has_const else None
    xs = []
    for _ in range(row.arity):
        if edges and draw(_R10) >= 5:
            xs.append(draw(st.sampled_from(edges)))
        else:
            xs.append(float(draw(leaves(kind))))
    _STATS["op_inputs"] += 1
    if _node_value(op, xs, const, [1.0] * row.arity, bounded=False,
                   sens_limit=_MAX_FLOAT) is None:
        _STATS["op_inputs_fallback"] += 1
        xs = [draw(_SAFE_OPERAND) for _ in range(row.arity)]
        if _node_value(op, xs, const, [1.0] * row.arity, bounded=False,
                       sens_limit=_MAX_FLOAT) is None:
            if row.has_const:
                const = 2.0  # e.g. a divisor so tiny that 1/c overflows
            else:
                xs[-1] = xs[0] + 1.0  # e.g. max(x, x), a tie
    return tuple(xs), const


def op_inputs(op: str, kind: str = "mixed") -> SearchStrategy[OpInputs]:
    """``(operands, const)`` for one application of ``op``, inside its domain.

    ``const`` is None for ops without a constant. Value and partial
    derivatives are finite in float64. Edge-heavy: tanh and sigmoid at 20, 35,
    400; exp up to 709.78; log near 0 and near the largest float; powc of
    negative bases with integer exponents; tiny divisors. Inputs that would
    leave the domain are replaced by tame ones in [0.25, 4]; no kink is drawn
    exactly (relu of 0). Shrinks towards ``1.0`` and the simplest constant.

    >>> from hypothesis import find, settings
    >>> find(op_inputs("log"), lambda t: t[0][0] > 1e200,
    ...      settings=settings(database=None, derandomize=True))
    ((1e+300,), None)
    """
    if op not in OPS:
        raise ValueError(f"op_inputs: unknown op {op!r} (known: {', '.join(OPS)})")
    leaves(kind)  # validates kind
    return _op_inputs(op, kind)


def edge_cases(op: str) -> list[OpInputs]:
    """Every ``(operands, const)`` the deterministic sweep runs ``op`` on, in a fixed order:
    each entry of the op's edge list (with the inputs every op meets: 0, +-1, 2, +-1e-300,
    1e300, ...), each against every constant (each pow constant at every edge, ``0.0 **
    0`` included), binary ops in both operand orders against a few partners and on the
    pairs whose derivatives reach float64's extremes (``x / y`` at 1e-300, 1e-200: d/dy
    is -1e100). Inputs outside the op's domain are kept where the op is total on the reals
    otherwise (``(-1.0) ** 0.5``: an engine must raise or give nan, never a number or
    complex data); every other case has a finite float64 value.

    >>> ((0.0,), 0.0) in edge_cases("powc"), ((-1.0,), 0.5) in edge_cases("powc")
    (True, True)
    >>> ((1e-300, 1e-200), None) in edge_cases("div"), ((-2.0, 1e-100), None) in edge_cases("div")
    (True, True)
    """
    if op not in OPS:
        raise ValueError(f"edge_cases: unknown op {op!r} (known: {', '.join(OPS)})")
    row = OPS[op]
    xs = row.edges + tuple(x for x in _SWEEP_COMMON if x not in row.edges)
    consts: tuple[float | None, ...] = (None,)
    if row.has_const:  # the row's own constants (every pow constant), else a spread
        consts = row.consts if row.consts is not None else _SWEEP_CONSTS
    operands: list[tuple[float, ...]]
    if row.arity == 1:
        operands = [(x,) for x in xs]
    else:
        operands = list(_SWEEP_PAIRS.get(op, ()))
        for x in xs:
            for p in _SWEEP_PARTNERS:
                operands += [(x, p), (p, x)]
    out: list[OpInputs] = []
    seen: set[tuple[Any, ...]] = set()
    for c in consts:
        for ops_ in operands:
            key = (*ops_, c)
            if key in seen:
                continue
            seen.add(key)
            args = (*ops_, c) if row.has_const else ops_
            if row.switch is not None and op != "relu" and row.switch(*ops_) == 0:
                continue  # abs(0), max(x, x): a convention (docs/conventions.md), not an edge
            if row.domain(*args) is not None:
                if op == "powc" and ops_[0] < 0:  # real input, no real power: raise or nan
                    out.append((ops_, c))
                continue
            try:
                v = row.forward(math, *args)
            except (OverflowError, ZeroDivisionError, ValueError):
                continue
            if isinstance(v, float) and math.isfinite(v):
                out.append((ops_, c))
    return out


def in_domain(op: str, xs: Sequence[float], const: float | None) -> bool:
    """Whether ``op`` at ``xs`` (and ``const``) is inside its domain.

    >>> in_domain("powc", (-1.0,), 0.5), in_domain("log", (2.0,), None)
    (False, True)
    """
    row = OPS[op]
    return row.domain(*((*xs, const) if row.has_const else tuple(xs))) is None


def add_chain(n: int, seed: int = 0) -> Graph:
    """``x0 + x1 + ... + x(n-1)`` as left-to-right adds of Values: a chain ``n - 1`` deep
    that needs no ``__radd__`` (:func:`sum_chain` starts with ``0 + x0``).

    >>> [n.op for n in add_chain(3).nodes]
    ['leaf', 'leaf', 'leaf', 'add', 'add']
    """
    rng = random.Random(seed)
    nodes = [Node.leaf(rng.choice((0.5, 1.0, 1.5, 2.0, 0.25))) for _ in range(n)]
    if n > 1:
        nodes.append(Node("add", (0, 1)))
    for i in range(2, n):
        nodes.append(Node("add", (len(nodes) - 1, i)))
    return Graph(tuple(nodes))


def _check_graph(g: Graph) -> None:
    """Raise GraphError if ``g`` breaks what :func:`graphs` promises (used by tests)."""
    values: list[float] = []
    sens: list[float] = []
    for i, n in enumerate(g.nodes):
        if n.op == "leaf":
            values.append(n.value)  # type: ignore[arg-type]
            sens.append(1.0)
            continue
        r = _node_value(n.op, [values[a] for a in n.args], n.const, [sens[a] for a in n.args],
                        bounded=False)
        if r is None:
            raise GraphError(i, f"{n.op} out of domain, range, or sensitivity bound")
        values.append(r[0])
        sens.append(r[1])
