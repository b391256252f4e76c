"""A scalar autograd Value: each op stores its children and local derivatives.

The chain rule is written once, in :meth:`Value.backward`; every op only says
what it computes and its local derivatives (microgpt's idea). Nodes are made
with ``object.__new__`` and slot stores, as this is the hot path.

Semantics:

- Leaf gradients accumulate across ``backward`` calls (PyTorch with
  ``retain_graph=True``); ``zero_grad`` resets them.
- Every ``backward`` recomputes the gradients of intermediate nodes from zero,
  so none is ever stale, and sums each leaf's new gradient apart before adding
  it to the old one: a second ``backward`` on the same output exactly doubles
  every leaf gradient, also for leaves used many times.
- Distinct nodes are distinct even when their values are equal.
- ``relu'(0) = abs'(0) = 0``; ``max`` and ``min`` of two equal values give
  each half the gradient.
- Inputs outside an op's domain raise, naming the op and its input:
  ``ValueError`` for ``log`` or ``sqrt`` of a non-positive number, ``log1p``
  at or below -1, a non-integer power of a non-positive number or any
  Value power of one, ``ZeroDivisionError`` for ``0 ** -1`` and ``x / 0``,
  ``OverflowError`` when ``exp``, ``expm1`` or ``**`` leaves float64. ``+``, ``-`` and
  ``*`` follow Python floats (they overflow to ``inf``). No result is ever
  silently clamped.

>>> x = Value(3.0)
>>> y = (x * x).log() + 1 / x
>>> y.backward()
>>> round(y.data, 6), round(x.grad, 6)
(2.530558, 0.555556)
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from operator import attrgetter
from typing import Any

__all__ = ["Value", "no_gc"]

_exp, _log, _tanh, _sqrt = math.exp, math.log, math.tanh, math.sqrt
_log1p, _expm1, _erf, _sin, _cos = math.log1p, math.expm1, math.erf, math.sin, math.cos
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_new = object.__new__
_ids = count()
_index = attrgetter("_i")
_DENSE_SLACK = 1 << 20  # backward places nodes by index in a list this long, at least


class Value:
    """A float64 scalar that remembers how it was computed, for ``backward``."""

    __slots__ = (
        "data",  # the float64 value
        "grad",  # d(output)/d(self) after backward
        "_a",  # first child, or None for a leaf
        "_b",  # second child, or None
        "_da",  # d(self)/d(_a)
        "_db",  # d(self)/d(_b)
        "_i",  # creation index: children are always older than their parents
    )

    def __init__(self, data: float) -> None:
        if type(data) is not float:
            if not isinstance(data, (int, float)) or isinstance(data, bool):
                raise TypeError(f"Value needs a real number, got {type(data).__name__}")
            data = float(data)
        self.data = data
        self.grad = 0.0
        self._a: Value | None = None
        self._b: Value | None = None
        self._da = self._db = 0.0
        self._i = next(_ids)

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"

    # -- binary ops: other is a Value or a Python number --------------------

    def __add__(self, other: Any) -> Value:
        out = _new(Value)
        if type(other) is Value:
            out.data = self.data + other.data
            out._b, out._db = other, 1.0
        else:
            out.data = self.data + _number(other, "+")
            out._b = None
        out.grad, out._a, out._da, out._i = 0.0, self, 1.0, next(_ids)
        return out

    __radd__ = __add__

    def __sub__(self, other: Any) -> Value:
        out = _new(Value)
        if type(other) is Value:
            out.data = self.data - other.data
            out._b, out._db = other, -1.0
        else:
            out.data = self.data - _number(other, "-")
            out._b = None
        out.grad, out._a, out._da, out._i = 0.0, self, 1.0, next(_ids)
        return out

    def __rsub__(self, other: Any) -> Value:  # other - self
        out = _new(Value)
        out.data = _number(other, "-") - self.data
        out.grad, out._a, out._da, out._b, out._i = 0.0, self, -1.0, None, next(_ids)
        return out

    def __mul__(self, other: Any) -> Value:
        out = _new(Value)
        if type(other) is Value:
            out.data = self.data * other.data
            out._da, out._b, out._db = other.data, other, self.data
        else:
            c = _number(other, "*")
            out.data = self.data * c
            out._da, out._b = c, None
        out.grad, out._a, out._i = 0.0, self, next(_ids)
        return out

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Value:
        out = _new(Value)
        if type(other) is Value:
            y = other.data
            if y == 0.0:
                raise ZeroDivisionError(f"Value division: {self.data!r} / 0.0")
            out.data = q = self.data / y
            out._da, out._b, out._db = 1.0 / y, other, -q / y
        else:
            c = _number(other, "/")
            if c == 0.0:
                raise ZeroDivisionError(f"Value division: {self.data!r} / 0.0")
            out.data = self.data / c
            out._da, out._b = 1.0 / c, None
        out.grad, out._a, out._i = 0.0, self, next(_ids)
        return out

    def __rtruediv__(self, other: Any) -> Value:  # other / self
        x, c = self.data, _number(other, "/")
        if x == 0.0:
            raise ZeroDivisionError(f"Value division: {c!r} / 0.0")
        out = _new(Value)
        out.data = q = c / x
        out.grad, out._a, out._da, out._b, out._i = 0.0, self, -q / x, None, next(_ids)
        return out

    def __pow__(self, c: Any) -> Value:
        if type(c) is Value:
            return self._pow(c)
        if type(c) is not float:
            c = _number(c, "**")
        x = self.data
        if not x > 0.0 and not c.is_integer():  # as the op table: 0 ** 0.5 too
            raise ValueError(f"pow: {x!r} ** {c!r}: a non-integer power needs a positive base")
        try:
            y = x**c
            d = _dpow(x, c, y) if c != 0.0 else 0.0
        except ZeroDivisionError:
            raise ZeroDivisionError(f"pow: {x!r} ** {c!r}: 0 to a negative power") from None
        except OverflowError:
            raise OverflowError(f"pow: {x!r} ** {c!r} overflows float64") from None
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = y, 0.0, self, d, None, next(_ids)
        return out

    def __rpow__(self, other: Any) -> Value:
        raise TypeError("number ** Value is not supported: the exponent must be a number")

    def _pow(self, other: Value) -> Value:  # x ** y, both Values
        x, y = self.data, other.data
        if not x > 0.0:
            raise ValueError(f"pow: {x!r} ** {y!r}: a Value exponent needs a positive base")
        try:
            z = x**y
            dx = _dpow(x, y, z)
        except OverflowError:
            raise OverflowError(f"pow: {x!r} ** {y!r} overflows float64") from None
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._db, out._i = (
            z, 0.0, self, dx, other, z * _log(x), next(_ids))
        return out

    def __abs__(self) -> Value:
        x = self.data
        out = _new(Value)
        out.data, out.grad, out._a, out._b, out._i = abs(x), 0.0, self, None, next(_ids)
        out._da = 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0  # abs'(0) = 0
        return out

    def max(self, other: Value) -> Value:
        """The larger of two Values; at a tie each gets half the gradient."""
        x, y = self.data, _other(other, "max").data
        out = _new(Value)
        out.data = x if x >= y else y
        out._da, out._db = (1.0, 0.0) if x > y else (0.0, 1.0) if y > x else (0.5, 0.5)
        out.grad, out._a, out._b, out._i = 0.0, self, other, next(_ids)
        return out

    def min(self, other: Value) -> Value:
        """The smaller of two Values; at a tie each gets half the gradient."""
        x, y = self.data, _other(other, "min").data
        out = _new(Value)
        out.data = x if x <= y else y
        out._da, out._db = (1.0, 0.0) if x < y else (0.0, 1.0) if y < x else (0.5, 0.5)
        out.grad, out._a, out._b, out._i = 0.0, self, other, next(_ids)
        return out

    def __neg__(self) -> Value:
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            -self.data, 0.0, self, -1.0, None, next(_ids))
        return out

    # -- unary functions ------------------------------------------------------

    def log(self) -> Value:
        x = self.data
        if not x > 0.0:
            raise ValueError(f"log({x!r}): log needs a positive input")
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            _log(x), 0.0, self, 1.0 / x, None, next(_ids))
        return out

    def exp(self) -> Value:
        try:
            y = _exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp({self.data!r}) overflows float64") from None
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = y, 0.0, self, y, None, next(_ids)
        return out

    def relu(self) -> Value:
        out = _new(Value)
        if self.data > 0.0:
            out.data, out._da = self.data, 1.0
        else:
            out.data, out._da = 0.0, 0.0
        out.grad, out._a, out._b, out._i = 0.0, self, None, next(_ids)
        return out

    def tanh(self) -> Value:
        x = self.data
        e = _exp(-2.0 * abs(x))  # tanh' = sech^2 = 4e / (1 + e)^2: no cancellation
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            _tanh(x), 0.0, self, 4.0 * e / ((1.0 + e) * (1.0 + e)), None, next(_ids))
        return out

    def sigmoid(self) -> Value:
        x = self.data
        e = _exp(-abs(x))
        s = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            s, 0.0, self, e / ((1.0 + e) * (1.0 + e)), None, next(_ids))
        return out

    def sqrt(self) -> Value:
        x = self.data
        if not x > 0.0:
            raise ValueError(f"sqrt({x!r}): sqrt needs a positive input (its derivative "
                             f"is infinite at 0)")
        y = _sqrt(x)
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            y, 0.0, self, 0.5 / y, None, next(_ids))
        return out

    def log1p(self) -> Value:
        x = self.data
        if not x > -1.0:
            raise ValueError(f"log1p({x!r}): log1p needs an input above -1")
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            _log1p(x), 0.0, self, 1.0 / (1.0 + x), None, next(_ids))
        return out

    def expm1(self) -> Value:
        try:
            y, d = _expm1(self.data), _exp(self.data)
        except OverflowError:
            raise OverflowError(f"expm1({self.data!r}) overflows float64") from None
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = y, 0.0, self, d, None, next(_ids)
        return out

    def erf(self) -> Value:
        x = self.data
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            _erf(x), 0.0, self, _TWO_OVER_SQRT_PI * _exp(-x * x), None, next(_ids))
        return out

    def sin(self) -> Value:
        x = self.data
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            _sin(x), 0.0, self, _cos(x), None, next(_ids))
        return out

    def cos(self) -> Value:
        x = self.data
        out = _new(Value)
        out.data, out.grad, out._a, out._da, out._b, out._i = (
            _cos(x), 0.0, self, -_sin(x), None, next(_ids))
        return out

    # -- the chain rule -------------------------------------------------------

    def backward(self) -> None:
        """Add d(self)/d(leaf) to every leaf's ``grad``; set every inner node's.

        Iterative, so graph depth is unlimited. The inner nodes reachable from
        ``self`` are visited by descending creation index (a topological
        order: children are older than their parents), placed by index rather
        than sorted, so the cost is linear in the graph; nodes whose gradient
        is zero pass nothing on.
        """
        if self._a is None:
            self.grad += 1.0
            return
        leaves: dict[int, Value] = {}
        order = _by_creation(self, leaves)
        saved = [(v, v.grad) for v in leaves.values()]
        for v, _ in saved:
            v.grad = 0.0
        self.grad = 1.0
        for v in order:
            if v is None:
                continue
            g = v.grad
            if g:
                v._a.grad += v._da * g
                b = v._b
                if b is not None:
                    b.grad += v._db * g
        for v, g in saved:  # leaves: this call's gradient, summed apart, then added
            v.grad += g

    def zero_grad(self) -> None:
        """Reset this node's gradient (a leaf's accumulates otherwise)."""
        self.grad = 0.0


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector inside the block (opt-in).

    Building a large scalar graph spends most of its time in the collector,
    which scans the new nodes again and again although a graph of Values has
    no reference cycles. The collector is process-wide, so gradcert never
    pauses it on its own: wrap a large forward and backward in this block to
    do so. On exit it is re-enabled only if it was enabled on entry.
    Reference counting still frees garbage inside the block; only cycles
    wait for the collector.

    >>> import gc
    >>> with no_gc():
    ...     y = (Value(2.0) * 3.0).relu()
    ...     gc.isenabled()
    False
    >>> y.backward(); gc.isenabled()
    True
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _dpow(x: float, c: float, y: float) -> float:
    """c * x ** (c - 1), the derivative of y = x ** c; as c * y / x where x ** (c - 1)
    alone overflows but the derivative does not (a subnormal x, c in (0, 1))."""
    try:
        return c * x ** (c - 1.0)
    except OverflowError:
        d = c * y / x
        if math.isinf(d):
            raise
        return d


def _number(x: Any, op: str) -> float:
    if type(x) is float:
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"unsupported operand for Value {op}: {type(x).__name__}")


def _other(x: Any, op: str) -> Value:
    if type(x) is not Value:
        raise TypeError(f"Value.{op} takes a Value, got {type(x).__name__}")
    return x


def _by_creation(root: Value, leaves: dict[int, Value]) -> list[Any]:
    """The inner nodes reachable from ``root``, newest first, their grads set to 0.

    The leaves reachable from ``root`` are collected into ``leaves``.

    Node ``v`` sits at ``order[root._i - v._i]``, so the list comes out in
    topological order without a sort; indices no reachable inner node has
    stay ``None``. If the indices are sparse (a few nodes much older than the
    rest), falls back to sorting, which gives the same order.
    """
    top = root._i
    order: list[Any] = [None] * 1024
    v: Any
    order[0] = root
    root.grad = 0.0
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:
        v = pop()
        a = v._a
        if a._a is None:
            leaves[id(a)] = a
        else:
            k = top - a._i
            if k >= len(order) and not _grow(order, k):
                return _sorted(root, leaves)
            if order[k] is None:
                order[k] = a
                a.grad = 0.0
                push(a)
        b = v._b
        if b is None:
            continue
        if b._a is None:
            leaves[id(b)] = b
        else:
            k = top - b._i
            if k >= len(order) and not _grow(order, k):
                return _sorted(root, leaves)
            if order[k] is None:
                order[k] = b
                b.grad = 0.0
                push(b)
    return order


def _grow(order: list[Any], k: int) -> bool:
    """Extend ``order`` to hold index ``k``; False if it would be mostly empty."""
    size = max(2 * len(order), k + 1)
    if size > 32 * (len(order) - order.count(None)) + _DENSE_SLACK:
        return False
    order.extend([None] * (size - len(order)))
    return True


def _sorted(root: Value, leaves: dict[int, Value]) -> list[Any]:
    """:func:`_by_creation` by a search and a sort, for sparse creation indices."""
    nodes: list[Any] = [root]
    seen = {id(root)}
    stack = [root]
    push, add = stack.append, seen.add
    while stack:
        v = stack.pop()
        for c in (v._a, v._b):
            if c is not None and c._a is None:
                leaves[id(c)] = c
            elif c is not None and id(c) not in seen:
                add(id(c))
                push(c)
                nodes.append(c)
    nodes.sort(key=_index, reverse=True)
    for v in nodes:
        v.grad = 0.0
    return nodes
