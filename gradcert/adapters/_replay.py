"""Functional engines (JAX, HIPS autograd): each op as a function of their numbers,
and the reproducer prelude that records a graph and replays it.

Both come from the op table: an op spelled with Python operators applies as
spelled; an op with a ``function`` name (``log``, ``maximum``, ``sigmoid``)
is looked up in the engine's namespaces in turn (``jax.numpy``, ``jax.nn``,
...). An op whose function no namespace has is unsupported by that engine.

>>> import math
>>> fns = functions(math, {"relu": lambda x: max(x, 0.0)})
>>> fns["log"](1.0), fns["powc"](2.0, 3.0), "sigmoid" in fns
(0.0, 8.0, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gradcert.ops import OPS, dispatch, interpreter_source

__all__ = ["functions", "prelude"]


def _find(name: str, namespaces: tuple[Any, ...]) -> Callable[..., Any] | None:
    for ns in namespaces:
        f = ns.get(name) if isinstance(ns, Mapping) else getattr(ns, name, None)
        if f is not None:
            return f
    return None


def functions(*namespaces: Any) -> dict[str, Callable[..., Any]]:
    """Each op the namespaces (modules or dicts) can compute, as a function of an
    engine's numbers: its operands, then the constant if it has one."""
    out: dict[str, Callable[..., Any]] = {}
    for name, op in OPS.items():
        if op.function is None:
            out[name] = op.apply
        elif (f := _find(op.function, namespaces)) is not None:
            out[name] = f
    return out


_METHOD = '''
    def {method}(self, *other):
        return self._record({forms!r}, other)
'''

_TEMPLATE = '''{header}
import itertools

_count = itertools.count()


def F(name):
    """The engine's function called ``name``, from the first namespace that has it."""
    for ns in NAMESPACES:
        f = ns.get(name) if isinstance(ns, dict) else getattr(ns, name, None)
        if f is not None:
            return f
    raise NotImplementedError(f"the engine has no function {{name!r}}")


{functions}

class Value:
    """A recorded scalar: data now, gradients when backward() replays it."""

    def __init__(self, data, fn=None, args=()):
        self.fn, self.args, self.i = fn, args, next(_count)
        self.data = np.float64(data) if fn is None else fn(*[a.data for a in args])
        self.grad = 0.0

    def _record(self, forms, other):
        if not other:
            return Value(None, _FNS[forms["none"]], (self,))
        (o,) = other
        if isinstance(o, Value) and "node" in forms:
            return Value(None, _FNS[forms["node"]], (self, o))
        if isinstance(o, (int, float)) and "const" in forms:
            f = _FNS[forms["const"]]
            return Value(None, lambda a: f(a, o), (self,))
        return NotImplemented
{methods}

def backward(out):
    """Replay out's graph under value_and_grad; add the gradients to the leaves."""
    nodes, seen, stack = [], {{id(out)}}, [out]
    while stack:
        v = stack.pop()
        nodes.append(v)
        for a in v.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    nodes.sort(key=lambda v: v.i)
    leaves = [v for v in nodes if v.fn is None]

    def f(xs):
        vals = {{}}
        for k, v in enumerate(leaves):
            vals[id(v)] = xs[k]
        for v in nodes:
            if v.fn is not None:
                vals[id(v)] = v.fn(*[vals[id(a)] for a in v.args])
        return vals[id(out)]

    _, grads = value_and_grad(f)(np.array([float(v.data) for v in leaves]))
    for v, g in zip(leaves, grads):
        v.grad += float(g)


def value(v):
    return float(v.data)


def grad(x):
    return float(x.grad)
'''


def prelude(header: str) -> str:
    """A reproducer prelude for a functional engine. ``header`` imports the engine and
    defines ``np`` (its numpy), ``value_and_grad`` and ``NAMESPACES`` (where op
    functions are looked up); the prelude adds a recording ``Value`` with every
    operator and method of the op table, and ``backward``, ``value``, ``grad``."""
    methods = "".join(_METHOD.format(method=m, forms=dict((k, v) for k, v in forms))
                      for m, forms in dispatch().items())
    fns = interpreter_source(name="_FNS", lookup="F", uniform=False)
    return _TEMPLATE.format(header=header.strip(), functions=fns, methods=methods)
