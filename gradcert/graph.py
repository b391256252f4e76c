"""The engine-neutral expression graph.

Everything in gradcert passes through one data structure: a :class:`Graph`,
a DAG of :class:`Node` in topological order. Leaves hold float64 inputs;
every other node names an op of the op table (:data:`gradcert.ops.OPS`), its
argument node ids, and the constant the op takes, if any. The output is the
last node. A node may be used any number of times, also as both operands of
one op (``x * x``).

>>> g = trace(lambda x, y: (x * y).log() + 2.0 / x, [3.0, 4.0])
>>> [n.op for n in g.nodes]
['leaf', 'leaf', 'mul', 'log', 'rdivc', 'add']
>>> round(evaluate(g)[-1], 12)
3.151573316455
>>> Graph.from_json(g.to_json()) == g
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from gradcert.ops import OPS, dispatch

__all__ = [
    "DomainError",
    "Graph",
    "GraphError",
    "Node",
    "canonical",
    "evaluate",
    "node_operands",
    "to_python",
    "trace",
]

FORMAT = "gradcert.graph"
VERSION = 1


class GraphError(ValueError):
    """A malformed graph: unknown op, wrong arity, forward reference, bad leaf."""

    def __init__(self, node: int | None, problem: str) -> None:
        self.node = node
        self.problem = problem
        where = "graph" if node is None else f"node {node}"
        super().__init__(f"{where}: {problem}")


class DomainError(ValueError):
    """An op applied outside its mathematical domain (log of 0, 0 ** -1, ...)."""

    def __init__(self, node: int, op: str, inputs: Sequence[Any], reason: str) -> None:
        self.node = node
        self.op = op
        self.inputs = tuple(inputs)
        self.reason = reason
        shown = ", ".join(_num(x) for x in self.inputs)
        super().__init__(f"node {node}: {op}({shown}): {reason}")


def _num(x: Any) -> str:
    try:
        return repr(float(x))
    except (TypeError, ValueError, OverflowError):
        return repr(x)


# ---------------------------------------------------------------------------
# The graph.


@dataclass(frozen=True, slots=True)
class Node:
    """One node: ``op`` is an op name or ``"leaf"``; leaves carry ``value``."""

    op: str
    args: tuple[int, ...] = ()
    const: float | None = None
    value: float | None = None

    @staticmethod
    def leaf(value: float) -> Node:
        return Node("leaf", value=value)


@dataclass(frozen=True)
class Graph:
    """A validated DAG of nodes in topological order; the last node is the output.

    Construction checks every node and raises :class:`GraphError` naming the
    first one that is malformed.
    """

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        object.__setattr__(self, "nodes", nodes)
        if not nodes:
            raise GraphError(None, "a graph needs at least one node")
        for i, n in enumerate(nodes):
            _check_node(i, n)

    @property
    def output(self) -> int:
        return len(self.nodes) - 1

    @cached_property
    def leaves(self) -> tuple[int, ...]:
        """Ids of the leaf nodes, in order (found once per graph)."""
        return tuple(i for i, n in enumerate(self.nodes) if n.op == "leaf")

    @property
    def inputs(self) -> tuple[float, ...]:
        """The leaves' float64 values, in the order of :attr:`leaves`."""
        return tuple(n.value for n in self.nodes if n.op == "leaf")  # type: ignore[misc]

    def with_inputs(self, values: Sequence[float]) -> Graph:
        """The same graph with new leaf values (in the order of :attr:`leaves`)."""
        values = list(values)
        if len(values) != len(self.leaves):
            raise GraphError(None, f"{len(values)} inputs for {len(self.leaves)} leaves")
        it = iter(values)
        return Graph(tuple(Node.leaf(float(next(it))) if n.op == "leaf" else n
                           for n in self.nodes))

    def ops_used(self) -> frozenset[str]:
        return frozenset(n.op for n in self.nodes if n.op != "leaf")

    def __len__(self) -> int:
        return len(self.nodes)

    # -- serialization -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = []
        for n in self.nodes:
            if n.op == "leaf":
                nodes.append({"op": "leaf", "value": n.value})
                continue
            d: dict[str, Any] = {"op": n.op, "args": list(n.args)}
            if n.const is not None:
                d["const"] = n.const
            nodes.append(d)
        return {"format": FORMAT, "version": VERSION, "nodes": nodes}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> Graph:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GraphError(None, f"not a {FORMAT} document")
        if data.get("version") != VERSION:
            raise GraphError(None, f"unsupported version {data.get('version')!r} "
                                   f"(this gradcert reads version {VERSION})")
        raw = data.get("nodes")
        if not isinstance(raw, list):
            raise GraphError(None, "'nodes' must be a list")
        nodes = []
        for i, d in enumerate(raw):
            if not isinstance(d, dict) or not isinstance(d.get("op"), str):
                raise GraphError(i, "each node must be an object with a string 'op'")
            args = d.get("args", [])
            if not isinstance(args, list):
                raise GraphError(i, "'args' must be a list of node ids")
            nodes.append(Node(d["op"], tuple(args), d.get("const"), d.get("value")))
        return cls(tuple(nodes))

    @classmethod
    def from_json(cls, text: str) -> Graph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GraphError(None, f"invalid JSON: {e}") from None
        return cls.from_dict(data)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_node(i: int, n: Node) -> None:
    if not isinstance(n, Node):
        raise GraphError(i, f"expected a Node, got {type(n).__name__}")
    if n.op == "leaf":
        if n.args or n.const is not None:
            raise GraphError(i, "a leaf takes no arguments and no constant")
        if not _is_real(n.value) or not math.isfinite(n.value):  # type: ignore[arg-type]
            raise GraphError(i, f"leaf value must be a finite number, got {n.value!r}")
        return
    op = OPS.get(n.op)
    if op is None:
        raise GraphError(i, f"unknown op {n.op!r} (known: {', '.join(OPS)})")
    if n.value is not None:
        raise GraphError(i, f"only leaves carry a value, not {n.op}")
    if len(n.args) != op.arity:
        raise GraphError(i, f"{n.op} takes {op.arity} argument(s), got {len(n.args)}")
    for a in n.args:
        if type(a) is not int or a < 0:
            raise GraphError(i, f"argument {a!r} is not a node id")
        if a >= i:
            raise GraphError(i, f"argument {a} is not an earlier node (forward reference)")
    if op.has_const:
        if not _is_real(n.const) or not math.isfinite(n.const):  # type: ignore[arg-type]
            raise GraphError(i, f"{n.op} needs a finite constant, got {n.const!r}")
    elif n.const is not None:
        raise GraphError(i, f"{n.op} takes no constant")


# ---------------------------------------------------------------------------
# Evaluation, tracing, and code.


def node_operands(node: Node, values: Sequence[Any],
                  number: Callable[[float], Any] = float) -> tuple[Any, ...]:
    """The operands of ``node`` as passed to its op's functions.

    ``number`` converts the constant into the namespace's numbers
    (``ctx.mpf`` for an mpmath context), so no float arithmetic sneaks in.
    """
    args = tuple(values[a] for a in node.args)
    return args + (number(node.const),) if node.const is not None else args


def evaluate(graph: Graph, ns: Any = math) -> list[Any]:
    """Every node's value, evaluated with the op table in namespace ``ns``.

    With ``ns=math`` (the default) this is a float64 evaluation; a result too
    large for float64 is ``inf``. Raises :class:`DomainError` at the first node
    whose inputs leave its op's domain.

    >>> evaluate(Graph((Node.leaf(2.0), Node("powc", (0,), 10.0))))
    [2.0, 1024.0]
    """
    number = float if ns is math else ns.mpf
    values: list[Any] = []
    for i, n in enumerate(graph.nodes):
        if n.op == "leaf":
            values.append(number(cast(float, n.value)))  # validated: a finite number
            continue
        op = OPS[n.op]
        operands = node_operands(n, values, number)
        reason = op.domain(*operands)
        if reason:
            raise DomainError(i, n.op, operands, reason)
        try:
            values.append(op.forward(ns, *operands))
        except OverflowError:
            values.append(math.copysign(math.inf, op.overflow_sign(*operands)))
    return values


def canonical(graph: Graph) -> list[int]:
    """For each node, the first node that computes the same number, exactly and in
    any engine: equal leaves (of the same sign), and the same op on the same
    canonical operands (in either order when it commutes) with the same
    constant. So ``a - a`` is 0 also when the two ``a`` are separate nodes.

    >>> canonical(trace(lambda x: x.tanh() - x.tanh(), [0.5]))
    [0, 1, 1, 3]

    Found once per graph (the oracle and the tolerance model both ask); each
    call returns a fresh list.
    """
    got = graph.__dict__.get("_canonical")  # a frozen dataclass: kept beside its fields
    if got is None:
        got = graph.__dict__["_canonical"] = tuple(_canonical(graph))
    return list(got)


def _canonical(graph: Graph) -> list[int]:
    first: dict[tuple[Any, ...], int] = {}
    same: list[int] = []
    commutes = {name for name, op in OPS.items() if op.commutative}
    for i, node in enumerate(graph.nodes):
        op, args, c = node.op, node.args, node.const
        if op == "leaf":
            v = cast(float, node.value)
            key: tuple[Any, ...] = (v, math.copysign(1.0, v)) if not v else (v,)
        elif len(args) == 1:
            key = (op, same[args[0]], c, c is not None and not c and math.copysign(1.0, c))
        else:
            a, b = same[args[0]], same[args[1]]
            key = (op, b, a) if b < a and op in commutes else (op, a, b)
        same.append(first.setdefault(key, i))
    return same


class _Var:
    """A traced operand: records each operator applied to it as a graph node.

    Its operators and methods are made from the op table's spellings
    (:func:`gradcert.ops.dispatch`): ``x + y``, ``x + 2.0`` and ``2.0 + x``
    record ``add``, ``addc`` and ``raddc``.
    """

    __slots__ = ("_tape", "_id")

    def __init__(self, tape: list[Node], i: int) -> None:
        self._tape, self._id = tape, i

    def _emit(self, op: str, args: tuple[int, ...], const: float | None = None) -> _Var:
        self._tape.append(Node(op, args, None if const is None else float(const)))
        return _Var(self._tape, len(self._tape) - 1)

    def __rpow__(self, other: Any) -> _Var:
        raise TypeError(f"{other!r} ** x is not traced (no op takes a constant base): "
                        "write (x * log(c)).exp()")


def _traced(method: str, forms: tuple[tuple[str, str], ...]) -> Callable[..., Any]:
    """The tracer's ``method``: which op it records depends on its other operand."""
    ops = dict(forms)

    def op(self: _Var, *other: Any) -> Any:
        if not other:
            return self._emit(ops["none"], (self._id,))
        (o,) = other
        if isinstance(o, _Var):
            if o._tape is not self._tape:
                raise GraphError(None, "operands come from different traces")
            if "node" in ops:
                return self._emit(ops["node"], (self._id, o._id))
        elif _is_real(o) and "const" in ops:
            return self._emit(ops["const"], (self._id,), o)
        if method.startswith("__"):
            return NotImplemented
        raise TypeError(f"{method}: expected "
                        f"{'a traced value' if 'node' in ops else 'a number'}, "
                        f"got {type(o).__name__}")

    op.__name__ = method
    return op


for _method, _forms in dispatch().items():
    setattr(_Var, _method, _traced(_method, _forms))


def trace(f: Callable[..., Any], xs: Sequence[float]) -> Graph:
    """The graph of ``f(*xs)``, written with the reference engine's operators.

    ``f`` takes one argument per input and returns one scalar. The leaves are
    the inputs in order; the output is what ``f`` returns.

    >>> [n.op for n in trace(lambda x: 1.0 - x * x, [0.5]).nodes]
    ['leaf', 'mul', 'rsubc']
    """
    tape: list[Node] = []
    for i, x in enumerate(xs):
        if not _is_real(x) or not math.isfinite(x):
            raise GraphError(i, f"input must be a finite number, got {x!r}")
        tape.append(Node.leaf(float(x)))
    out = f(*[_Var(tape, i) for i in range(len(tape))])
    if not isinstance(out, _Var) or out._tape is not tape:
        raise GraphError(None, "the function must return a value computed from its inputs")
    if out._id != len(tape) - 1:
        tape.append(Node("addc", (out._id,), 0.0))  # the output must be the last node
    return Graph(tuple(tape))


def to_python(graph: Graph, func: str = "build") -> str:
    """Python source of ``func(Value)``, which rebuilds the graph with ``Value``.

    The function returns ``(leaves, output)``. Floats are written with
    ``repr``, so the rebuilt graph's inputs are bit-for-bit the graph's.

    >>> print(to_python(trace(lambda x: (2.0 - x).log(), [0.5])), end="")
    def build(Value):
        x0 = Value(0.5)
        v1 = 2.0 - x0
        v2 = v1.log()
        return [x0], v2
    """
    names: list[str] = []
    lines = [f"def {func}(Value):"]
    for i, n in enumerate(graph.nodes):
        if n.op == "leaf":
            names.append(f"x{i}")
            lines.append(f"    x{i} = Value({n.value!r})")
            continue
        names.append(f"v{i}")
        const = "" if n.const is None else repr(n.const)
        expr = OPS[n.op].template.format(*(names[a] for a in n.args), c=const)
        lines.append(f"    v{i} = {expr}")
    leaves = ", ".join(names[i] for i in graph.leaves)
    lines.append(f"    return [{leaves}], {names[-1]}")
    return "\n".join(lines) + "\n"
