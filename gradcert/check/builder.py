"""A traced function's scalars as nodes of gradcert's graph, by the op table's names only.

Every tracer (PyTorch, JAX, gradcert's own Values) lowers the function it
traces to scalar operations on *refs*: a ref is a node id (an ``int``), or a
``float`` constant that depends on no input. The :class:`Builder` turns
those operations into graph nodes, emitting a node only for an op the table
has (:data:`OPS`: ``sqrt``, ``log1p``, ``erf``, ``x ** y``, ... have rows),
and otherwise using an exact decomposition into ops it has (``rsqrt(x) = x
** -0.5``): exact in the real numbers the oracle computes in, only the
tolerance model sees them as the rounded operations they spell. An op with
neither raises :class:`~gradcert.check.result.Untraceable` naming the row.

Constants are folded only when the result is exact (``x * 1``, ``x + 0``,
``x * 0``, ``2.0 + 3.0``); any other operation on constants keeps them as
leaves of their own, so the oracle computes them exactly too. Non-finite
constants follow IEEE arithmetic (``exp(-inf) = 0``, which masked attention
relies on); a NaN is poison and only matters if it reaches an output.

Branches are fixed by the tracer at the values the function computed
(``relu``, ``max``, ``where``, ``clamp``, ``abs``); :meth:`Builder.split`
records each decision so the judge can say when the exact value would have
gone the other way.

>>> b = Builder()
>>> x = b.input(3.0)
>>> y = b.add(b.mul(x, x), 1.0)
>>> g, _ = b.graph([(y, 1.0)])
>>> [n.op for n in g.nodes], g.nodes[-1].const
(['leaf', 'mul', 'addc'], 1.0)
>>> b.mul(x, 1.0) == x, b.mul(x, 0.0), b.add(2.0, 3.0)
(True, 0.0, 5.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from gradcert.check.result import Untraceable
from gradcert.graph import Graph, Node

try:  # the op table moves to gradcert.ops; read it wherever it lives
    from gradcert.ops import OPS  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - before the move
    from gradcert.ops import OPS

__all__ = ["OPS", "Builder", "Ref", "Split", "is_node"]

Ref = int | float
"""A node id, or a constant (a float that depends on no input)."""

_isfinite = math.isfinite


def is_node(r: Ref) -> bool:
    """Whether ``r`` is a node (depends on an input) rather than a constant."""
    return type(r) is int


@dataclass(frozen=True)
class Split:
    """A branch fixed at the traced point: ``a > b`` (or ``a >= b``) came out ``taken``.

    ``what`` names the op that branched (``relu``, ``max``, ``where``, ...);
    ``tie`` says the traced values sat exactly on the kink (``relu(0)``, a tie
    of ``max``), where the derivative is the framework's convention.
    """

    a: Ref
    b: Ref
    taken: bool
    what: str
    tie: bool = False


class Builder:
    """Collects the nodes of one trace; :meth:`graph` assembles a judged graph from them."""

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.args: list[tuple[int, ...]] = []
        self.consts: list[float | None] = []
        self.values: dict[int, float] = {}  # leaf id -> value
        self.inputs: list[int] = []  # the leaves that are the function's inputs
        self.splits: list[Split] = []
        self._constants: dict[float, int] = {}

    def __len__(self) -> int:
        return len(self.ops)

    # -- leaves -------------------------------------------------------------

    def input(self, value: float) -> int:
        """A new input leaf."""
        i = self._leaf(value)
        self.inputs.append(i)
        return i

    def _leaf(self, value: float) -> int:
        value = float(value)
        if not _isfinite(value):
            raise ValueError(f"an input must be finite, got {value!r}")
        self.ops.append("leaf")
        self.args.append(())
        self.consts.append(None)
        i = len(self.ops) - 1
        self.values[i] = value
        return i

    def node(self, r: Ref) -> int:
        """``r`` as a node: a constant becomes a leaf of its own (made once per value)."""
        if type(r) is int:
            return r
        c = float(r)
        got = self._constants.get(c)
        if got is None or math.copysign(1.0, c) != math.copysign(1.0, self.values[got]):
            got = self._constants[c] = self._leaf(c)
        return got

    # -- emitting -----------------------------------------------------------

    def emit(self, op: str, args: tuple[int, ...], const: float | None = None) -> int:
        """A node of op ``op``; :class:`Untraceable` if the table has no such row."""
        if op not in OPS:
            raise Untraceable(op, f"gradcert's op table has no {op!r} row", row=op)
        self.ops.append(op)
        self.args.append(args)
        self.consts.append(None if const is None else float(const))
        return len(self.ops) - 1

    def has(self, op: str) -> bool:
        return op in OPS

    # -- arithmetic on refs ---------------------------------------------------

    def add(self, a: Ref, b: Ref) -> Ref:
        if type(a) is int:
            if type(b) is int:
                return self.emit("add", (a, b))
            if b == 0.0:
                return a
            return self.emit("addc", (a,), b) if _isfinite(b) else b
        if type(b) is int:
            if a == 0.0:
                return b
            return self.emit("raddc", (b,), a) if _isfinite(a) else a
        return self._fold2("add", a, b)

    def sub(self, a: Ref, b: Ref) -> Ref:
        if type(a) is int:
            if type(b) is int:
                return self.emit("sub", (a, b))
            if b == 0.0:
                return a
            return self.emit("subc", (a,), b) if _isfinite(b) else -b
        if type(b) is int:
            if a == 0.0:
                return self.emit("neg", (b,))
            return self.emit("rsubc", (b,), a) if _isfinite(a) else a
        return self._fold2("sub", a, b)

    def mul(self, a: Ref, b: Ref) -> Ref:
        if type(a) is int:
            if type(b) is int:
                return self.emit("mul", (a, b))
            return self._mulc(a, b)
        if type(b) is int:
            return self._mulc(b, a)
        return self._fold2("mul", a, b)

    def _mulc(self, x: int, c: float) -> Ref:
        if c == 1.0:
            return x
        if c == 0.0:
            return 0.0  # x is finite: x * 0 is exactly 0
        if c == -1.0:
            return self.emit("neg", (x,))
        return self.emit("mulc", (x,), c) if _isfinite(c) else math.nan

    def div(self, a: Ref, b: Ref) -> Ref:
        if type(a) is int:
            if type(b) is int:
                return self.emit("div", (a, b))
            if b == 1.0:
                return a
            if b == 0.0 or not _isfinite(b):
                return math.nan if b == 0.0 else 0.0
            return self.emit("divc", (a,), b)
        if type(b) is int:
            if a == 0.0:
                return 0.0
            return self.emit("rdivc", (b,), a) if _isfinite(a) else math.nan
        return self._fold2("div", a, b)

    def neg(self, a: Ref) -> Ref:
        return self.emit("neg", (a,)) if type(a) is int else -a

    def powc(self, a: Ref, c: float) -> Ref:
        """``a ** c`` for a constant exponent."""
        c = float(c)
        if c == 1.0:
            return a
        if c == 0.0:
            return 1.0
        if type(a) is int:
            return self.emit("powc", (a,), c)
        if c.is_integer() and abs(c) <= 64 and _isfinite(a) and a != 0.0:
            exact = Fraction(a) ** int(c)
            try:
                if Fraction(float(exact)) == exact:
                    return float(exact)
            except OverflowError:
                pass
        return self._unary_const("powc", a, c)

    def pow(self, a: Ref, b: Ref, base_positive: bool) -> Ref:
        """``a ** b`` for a node exponent: the ``pow`` row, else ``exp(b * log(a))``,
        exact for a positive base (``base_positive``: the traced base was > 0)."""
        if type(b) is not int:
            return self.powc(a, b)
        if self.has("pow"):
            return self.emit("pow", (self.node(a), b))
        if not base_positive:
            raise Untraceable("pow", "x ** y with a node exponent and a base <= 0 needs "
                                     "the 'pow' op row", row="pow")
        return self.exp(self.mul(b, self.log(a)))

    def exp(self, a: Ref) -> Ref:
        return self._unary("exp", a)

    def log(self, a: Ref) -> Ref:
        return self._unary("log", a)

    def tanh(self, a: Ref) -> Ref:
        return self._unary("tanh", a)

    def sigmoid(self, a: Ref) -> Ref:
        return self._unary("sigmoid", a)

    def sqrt(self, a: Ref) -> Ref:
        return self._unary("sqrt", a) if self.has("sqrt") else self.powc(a, 0.5)

    def rsqrt(self, a: Ref) -> Ref:
        return self.powc(a, -0.5)

    def log1p(self, a: Ref) -> Ref:
        return self._unary("log1p", a) if self.has("log1p") else self.log(self.add(a, 1.0))

    def expm1(self, a: Ref) -> Ref:
        return self._unary("expm1", a) if self.has("expm1") else self.sub(self.exp(a), 1.0)

    def erf(self, a: Ref) -> Ref:
        return self._unary("erf", a)

    def sin(self, a: Ref) -> Ref:
        return self._unary("sin", a)

    def cos(self, a: Ref) -> Ref:
        return self._unary("cos", a)

    def abs(self, a: Ref) -> Ref:
        """|a| as the ``abs`` row (abs'(0) = 0: the oracle decides the branch exactly)."""
        return self.emit("abs", (a,)) if type(a) is int else abs(a)

    def pick(self, a: Ref, b: Ref, largest: bool) -> Ref:
        """max (min) of a and b as the ``max`` (``min``) row: the branch decided on the
        exact values, a tie split evenly (PyTorch's and JAX's rule, and the row's)."""
        if type(a) is not int and type(b) is not int:
            return max(a, b) if largest else min(a, b)
        for c, other in ((a, b), (b, a)):
            if type(c) is not int and not _isfinite(c):  # an infinite (NaN) constant
                if c != c:
                    return c
                return other if (c < 0) == largest else c  # max(x, -inf) is x
        return self.emit("max" if largest else "min", (self.node(a), self.node(b)))

    def sum(self, refs: Iterable[Ref]) -> Ref:
        """Left-to-right sum (the order with the largest rounding bound)."""
        acc: Ref = 0.0
        for r in refs:
            acc = self.add(acc, r)
        return acc

    # -- branches -------------------------------------------------------------

    def split(self, a: Ref, b: Ref, taken: bool, what: str, tie: bool = False) -> bool:
        """Record that ``a > b`` (or ``>=``) was ``taken`` at the traced point (``tie``:
        on the kink itself); return ``taken``."""
        if type(a) is int or type(b) is int:
            self.splits.append(Split(a, b, bool(taken), what, bool(tie)))
        return bool(taken)

    def at_kink(self) -> bool:
        """Whether some branch was taken exactly on its kink."""
        return any(s.tie for s in self.splits)

    # -- constants ------------------------------------------------------------

    def _unary(self, op: str, a: Ref) -> Ref:
        if type(a) is int:
            return self.emit(op, (a,))
        if not _isfinite(a):
            return _limit(op, a)
        return self._unary_const(op, a, None)

    def _unary_const(self, op: str, a: float, c: float | None) -> Ref:
        if not _isfinite(a):
            return math.nan
        return self.emit(op, (self.node(a),), c)

    def _fold2(self, op: str, a: float, b: float) -> Ref:
        """A binary op on two constants: folded when exact, else kept as nodes."""
        try:
            r = {"add": a + b, "sub": a - b, "mul": a * b}[op] if op != "div" else a / b
        except ZeroDivisionError:
            return math.nan if a == 0.0 or not _isfinite(a) else math.copysign(math.inf, a)
        if not (_isfinite(a) and _isfinite(b)):
            return r  # IEEE arithmetic with an infinity is exact
        if _isfinite(r):
            fa, fb = Fraction(a), Fraction(b)
            exact = {"add": fa + fb, "sub": fa - fb, "mul": fa * fb}[op] if op != "div" \
                else fa / fb
            if Fraction(r) == exact:
                return r
        return self.emit(op, (self.node(a), self.node(b)))

    # -- the judged graph -------------------------------------------------------

    def graph(self, targets: Sequence[tuple[Ref, float]],
              extra: Iterable[int] = ()) -> tuple[Graph, dict[int, int]]:
        """The graph of ``sum(ct * ref)`` over ``targets`` (a ref and its cotangent).

        Its leaves start with every input (so ``grad[:len(inputs)]`` is the
        vector-Jacobian product, zero for an input no target reads), followed
        by the nodes the targets (and ``extra`` nodes) depend on, in trace
        order. Returns the graph and the map from trace ids to graph ids.
        Raises ValueError when no target depends on an input.
        """
        n_in = len(self.inputs)
        if self.inputs != list(range(n_in)):
            raise RuntimeError("inputs must be the first leaves of a trace")
        keep = bytearray(len(self.ops))
        stack = [r for r, ct in targets if type(r) is int and ct != 0.0]
        if not stack:
            raise ValueError("no output depends on an input")
        stack.extend(extra)
        args = self.args
        while stack:
            i = stack.pop()
            if not keep[i]:
                keep[i] = 1
                stack.extend(args[i])
        at = [-1] * len(self.ops)  # trace id -> graph id
        nodes: list[Node] = []
        ops, consts, values = self.ops, self.consts, self.values
        for i in range(len(ops)):
            if i < n_in or keep[i]:
                at[i] = len(nodes)
                op = ops[i]
                if op == "leaf":
                    nodes.append(Node("leaf", value=values[i]))
                    continue
                a = args[i]
                nodes.append(Node(op, (at[a[0]],) if len(a) == 1 else (at[a[0]], at[a[1]])
                                  if len(a) == 2 else tuple(at[k] for k in a), consts[i]))
        new = {i: k for i, k in enumerate(at) if k >= 0}
        terms: list[int] = []
        for r, ct in targets:
            if type(r) is not int or ct == 0.0:
                continue
            k = at[r]
            if ct != 1.0:
                nodes.append(Node("mulc", (k,), float(ct)))
                k = len(nodes) - 1
            terms.append(k)
        acc = terms[0]
        for k in terms[1:]:
            nodes.append(Node("add", (acc, k)))
            acc = len(nodes) - 1
        if acc != len(nodes) - 1:  # the output must be the last node
            nodes.append(Node("addc", (acc,), 0.0))
        return Graph(tuple(nodes)), new


def _limit(op: str, a: float) -> float:
    """An op at an infinite (or NaN) constant: its IEEE limit."""
    if a != a:
        return a
    pos = a > 0
    limits = {"exp": (math.inf, 0.0), "log": (math.inf, math.nan), "tanh": (1.0, -1.0),
              "sigmoid": (1.0, 0.0), "sqrt": (math.inf, math.nan),
              "log1p": (math.inf, math.nan), "expm1": (math.inf, -1.0), "erf": (1.0, -1.0)}
    got = limits.get(op)
    return math.nan if got is None else got[0 if pos else 1]


def referenced(refs: Iterable[Any]) -> list[int]:
    """The node ids among ``refs``."""
    return [r for r in refs if type(r) is int]
