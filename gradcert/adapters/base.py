"""The adapter protocol: how gradcert drives an autograd engine.

An :class:`Adapter` makes leaves, applies op-table ops to engine objects
("handles"), runs backward from an output, and reads values and gradients
back as Python floats. :func:`run_graph` replays a :class:`~gradcert.graph.Graph`
on an engine that way, fresh every time, and returns a :class:`Run`.

Functional engines (JAX, HIPS autograd) have no op-by-op handles with a
``backward``: they subclass :class:`FunctionalAdapter`, which receives the
whole graph in :meth:`Adapter.run` and differentiates a function that replays
it.

>>> from gradcert.graph import trace
>>> run = run_graph(load_target("gradcert"), trace(lambda x, y: x * y + x, [3.0, 4.0]))
>>> run.value, run.grads
(15.0, (5.0, 3.0))
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gradcert.graph import Graph, to_python
from gradcert.ops import OPS

__all__ = [
    "ALL_OPS",
    "Adapter",
    "Capabilities",
    "EngineError",
    "FunctionalAdapter",
    "Run",
    "TargetError",
    "Unsupported",
    "load_target",
    "run_graph",
]

ALL_OPS: frozenset[str] = frozenset(OPS)
"""Every op of the op table."""


class Unsupported(Exception):
    """The engine lacks what was asked for: an op, zero_grad, Adam, op-by-op handles."""

    def __init__(self, problem: str, op: str | None = None) -> None:
        self.problem = problem
        self.op = op
        super().__init__(problem)


class EngineError(Exception):
    """The engine raised, or handed back something that is not a number.

    ``node`` is the graph node being built (None if unknown), ``op`` its op
    (``"backward"`` during backward, ``"read"`` while reading a result),
    ``original`` the engine's exception, if any.
    """

    def __init__(self, node: int | None, op: str | None,
                 original: BaseException | None = None, problem: str | None = None) -> None:
        self.node = node
        self.op = op
        self.original = original
        self.problem = problem
        super().__init__(node, op, original, problem)

    def __str__(self) -> str:
        where = "engine" if self.node is None else f"node {self.node}"
        if self.op is not None:
            where += f" ({self.op})"
        what = self.problem
        if what is None and self.original is not None:
            what = f"the engine raised {type(self.original).__name__}: {self.original}"
        return f"{where}: {what or 'engine error'}"


class TargetError(Exception):
    """A target that cannot be used: not importable, not found, or not an engine."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine supports, as found or declared.

    ``ops``: the op-table names it supports; ``dtype``: ``"float64"`` or
    ``"float32"``; ``notes``: op or topic -> one line (why an op is
    unsupported, a convention such as ``relu'(0)``); ``functional``: no
    op-by-op handles, only whole-graph runs.

    >>> c = Capabilities(frozenset({"add", "mul"}))
    >>> sorted(c.unsupported)[:3], c.missing({"add", "log"})
    (['abs', 'addc', 'cos'], frozenset({'log'}))
    """

    ops: frozenset[str]
    dtype: str = "float64"
    has_zero_grad: bool = False
    has_adam: bool = False
    notes: Mapping[str, str] = field(default_factory=dict)
    functional: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", frozenset(self.ops))
        unknown = self.ops - ALL_OPS
        if unknown:
            raise ValueError(f"unknown ops {sorted(unknown)} (known: {', '.join(OPS)})")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")

    @property
    def unsupported(self) -> frozenset[str]:
        """The op-table ops the engine does not support."""
        return ALL_OPS - self.ops

    def missing(self, ops: Any) -> frozenset[str]:
        """Which of ``ops`` (names, or a Graph) the engine does not support."""
        used = ops.ops_used() if isinstance(ops, Graph) else frozenset(ops)
        return frozenset(used) - self.ops


@dataclass(frozen=True)
class Run:
    """One forward and backward of a graph on an engine.

    ``value``: the output; ``grads``: d output / d leaf in ``graph.leaves``
    order; ``handles``: the engine objects, one per node (empty for
    functional engines); ``leaves``: the leaf handles, in order.
    """

    value: float
    grads: tuple[float, ...]
    handles: tuple[Any, ...] = ()
    leaves: tuple[Any, ...] = ()


class Adapter:
    """Drives one engine. Subclasses implement the op-by-op methods.

    ``name``: short name for reports; ``target``: how the user named it;
    ``import_line``: Python a standalone reproducer runs to get the engine;
    ``make_value``: the name, in the reproducer, of the leaf constructor.
    """

    name: str = "adapter"
    target: str = ""
    import_line: str = ""
    make_value: str = "Value"

    def capabilities(self) -> Capabilities:
        raise NotImplementedError

    def leaf(self, x: float) -> Any:
        """A fresh leaf holding ``x``, that gradients are taken with respect to."""
        raise NotImplementedError

    def apply(self, op: str, operands: Sequence[Any], const: float | None) -> Any:
        """The engine's result of op-table op ``op`` on ``operands`` (and ``const``)."""
        raise NotImplementedError

    def backward(self, out: Any) -> None:
        raise NotImplementedError

    def value(self, handle: Any) -> float:
        raise NotImplementedError

    def grad(self, leaf: Any) -> float:
        raise NotImplementedError

    def zero_grad(self, leaves: Sequence[Any]) -> None:
        raise Unsupported(f"{self.name} has no zero_grad")

    def adam(self, leaves: Sequence[Any], *, lr: float = 1e-3,
             betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> Callable[[], None]:
        """The engine's Adam over ``leaves``: a function doing one step from their grads.

        Leaf values after a step are read with :meth:`value`.
        """
        raise Unsupported(f"{self.name} has no Adam optimizer")

    def adam_step(self, leaves: Sequence[Any], *, step: int, lr: float = 1e-3,
                  betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        """Adam step number ``step`` (from 1) on ``leaves``, from their current grads.

        Step 1, or other leaves, start a new optimizer from :meth:`adam`; later
        steps on the same leaves continue it (its moments and step count).
        """
        key = tuple(map(id, leaves))
        state = getattr(self, "_adam_state", None)
        if step == 1 or state is None or state[0] != key:
            state = (key, self.adam(leaves, lr=lr, betas=betas, eps=eps), list(leaves))
            self._adam_state = state
        state[1]()

    def build(self, graph: Graph, leaves: Sequence[Any] | None = None) -> list[Any]:
        """``graph`` built op by op: one handle per node. Its leaves are fresh, or the
        given leaf handles (a new forward from the same parameters)."""
        given = None if leaves is None else iter(leaves)
        handles: list[Any] = []
        for i, n in enumerate(graph.nodes):
            with _at(i, n.op):
                if n.op != "leaf":
                    handles.append(self.apply(n.op, [handles[a] for a in n.args], n.const))
                elif given is not None:
                    handles.append(next(given))
                else:
                    handles.append(self.leaf(n.value))  # type: ignore[arg-type]
        return handles

    def run(self, graph: Graph) -> Run:
        """Build ``graph`` fresh, op by op, read its value, backward, read the gradients."""
        handles = self.build(graph)
        out = handles[-1]
        with _at(graph.output, "read"):
            value = self.value(out)
        with _at(graph.output, "backward"):
            self.backward(out)
        leaves = tuple(handles[i] for i in graph.leaves)
        grads = []
        for i, h in zip(graph.leaves, leaves, strict=True):
            with _at(i, "read"):
                grads.append(self.grad(h))
        return Run(value, tuple(grads), tuple(handles), leaves)

    def reproducer_prelude(self) -> str:
        """Standalone Python defining ``Value``, ``backward``, ``value`` and ``grad``.

        A reproducer is this prelude, ``gradcert.graph.to_python(graph)``, and
        a few lines calling ``build(Value)`` (see :meth:`reproducer`).
        """
        return (f"{self.import_line}\n\n\n"
                "def backward(out):\n    out.backward()\n\n\n"
                "def value(v):\n    return float(v.data)\n\n\n"
                "def grad(x):\n    return 0.0 if x.grad is None else float(x.grad)\n")

    def reproducer(self, graph: Graph) -> str:
        """A standalone script that rebuilds ``graph`` on the engine and prints a JSON
        line ``{"value": ..., "grads": [...]}``; it uses only the engine under test."""
        return (self.reproducer_prelude() + "\n\n" + to_python(graph) + "\n\n"
                "if __name__ == '__main__':\n"
                "    import json\n"
                f"    leaves, out = build({self.make_value})\n"
                "    backward(out)\n"
                "    print(json.dumps({'value': value(out), "
                "'grads': [grad(x) for x in leaves]}))\n")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.target or self.name!r}>"


class FunctionalAdapter(Adapter):
    """An engine that differentiates functions (JAX, HIPS autograd), not handles.

    Subclasses give ``fns`` (op name -> function of the engine's numbers and
    the constant) and :meth:`value_and_grad`; :meth:`run` replays the graph
    inside it. The op-by-op methods raise :class:`Unsupported`.
    """

    def fns(self) -> Mapping[str, Callable[..., Any]]:
        raise NotImplementedError

    def value_and_grad(self, f: Callable[[Any], Any],
                       xs: Sequence[float]) -> tuple[float, Sequence[float]]:
        """``f(xs)`` and its gradient, ``f`` taking an array of the leaf values."""
        raise NotImplementedError

    def leaf(self, x: float) -> Any:
        raise Unsupported(f"{self.name} is functional: it has no op-by-op handles")

    apply = backward = value = grad = leaf  # type: ignore[assignment]

    def run(self, graph: Graph) -> Run:
        fns = self.fns()
        nodes = graph.nodes
        at = [0]

        def f(xs: Any) -> Any:
            vals: list[Any] = []
            k = 0
            for i, n in enumerate(nodes):
                at[0] = i
                if n.op == "leaf":
                    vals.append(xs[k])
                    k += 1
                elif n.const is None:
                    vals.append(fns[n.op](*[vals[a] for a in n.args]))
                else:
                    vals.append(fns[n.op](vals[n.args[0]], n.const))
            return vals[-1]

        try:
            value, grads = self.value_and_grad(f, graph.inputs)
        except (EngineError, Unsupported):
            raise
        except Exception as e:
            raise EngineError(at[0], nodes[at[0]].op, e) from e
        with _at(graph.output, "read"):
            out = (_number(value, "value"), tuple(_number(g, "gradient") for g in grads))
        return Run(out[0], out[1])


class _at:
    """Context: wrap anything an engine raises in EngineError(node, op)."""

    def __init__(self, node: int | None, op: str) -> None:
        self.node, self.op = node, op

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, e: Any, tb: Any) -> Literal[False]:
        if e is not None and not isinstance(e, Exception):
            # KeyboardInterrupt, SystemExit...: not ours to catch, but say where (the host reads it)
            if getattr(e, "gradcert_at", None) is None:
                with contextlib.suppress(Exception):
                    e.gradcert_at = (self.node, self.op)
            return False
        if e is None or isinstance(e, Unsupported):
            return False
        if isinstance(e, EngineError):
            if e.node is None:
                e.node, e.op = self.node, e.op or self.op
            return False
        raise EngineError(self.node, self.op, e) from e


def _number(x: Any, what: str) -> float:
    """``float(x)``, or EngineError saying what the engine gave instead of a number."""
    try:
        return float(x)
    except Exception as e:
        raise EngineError(None, None, e, f"the engine's {what} is not a number: "
                          f"{_show(x)} ({type(x).__name__})") from e


def _show(x: Any) -> str:
    try:
        s = repr(x)
    except Exception:
        s = f"<unprintable {type(x).__name__}>"
    return s if len(s) <= 80 else s[:77] + "..."


def run_graph(adapter: Adapter, graph: Graph) -> Run:
    """Build ``graph`` fresh on the engine, forward and backward; values and gradients.

    Raises :class:`Unsupported` (before touching the engine) if the graph uses
    an op the engine lacks, and :class:`EngineError` naming the node if the
    engine raises or returns something that is not a number.

    >>> from gradcert.graph import trace
    >>> run_graph(load_target("gradcert"), trace(lambda x: (x * x).log(), [2.0])).grads
    (1.0,)
    """
    missing = adapter.capabilities().missing(graph)
    if missing:
        op = sorted(missing)[0]
        raise Unsupported(f"{adapter.name} does not support {', '.join(sorted(missing))}", op)
    return adapter.run(graph)


def load_target(target: Any = None) -> Adapter:
    """The adapter for ``target`` (see :func:`gradcert.adapters.registry.load_target`)."""
    from gradcert.adapters.registry import load_target as load

    return load(target)
