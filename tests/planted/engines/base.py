"""A correct micrograd-style engine: the base every planted engine changes once.

It is written the way most micrograd clones are (a ``Value`` wrapping a float,
``_prev`` children, a ``_backward`` closure per node, a topological sort in
``backward``), with three differences that make it correct:

- the topological sort is iterative, with a visited set, so depth is unlimited
  and a node reached along several paths is visited once;
- every ``backward`` recomputes the gradients of inner nodes from zero, and
  adds into the leaves' ``grad`` (as gradcert's reference engine does);
- inputs outside an op's domain raise (``math`` raises ``ValueError`` for
  ``log(0)``, ``OverflowError`` for ``exp(1000)``), nothing is clamped.

Each op's arithmetic lives in one ``rule_*`` static method returning the value
and the local derivative(s); storage (``store``), the chain-rule update
(``accumulate``) and the sort (``topo``) are methods too. A planted engine is
a subclass that overrides exactly one of these hook points, so its defect is
the few lines it writes.

>>> x = Value(3.0)
>>> y = (x * x).log() + 1 / x
>>> y.backward()
>>> round(y.data, 6), round(x.grad, 6)
(2.530558, 0.555556)
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Value"]


def _nothing() -> None:
    pass


class Value:
    """A float scalar that remembers how it was computed, for ``backward``."""

    def __init__(self, data: Any, _children: tuple[Value, ...] = (), _op: str = "") -> None:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise TypeError(f"Value needs a real number, got {type(data).__name__}")
        self.data = self.store(data)
        self.grad = 0.0
        self._backward = _nothing
        self._prev = _children
        self._op = _op

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"

    # -- hook points: how numbers are held, the chain-rule update, the sort ----

    @staticmethod
    def store(x: float) -> float:
        """The number a node holds for the float ``x`` (``data`` and ``grad``)."""
        return float(x)

    @staticmethod
    def accumulate(node: Value, g: float) -> None:
        """Add one path's contribution ``g`` to ``node.grad``."""
        node.grad += g

    def topo(self) -> list[Value]:
        """The nodes reachable from ``self``, children before parents, each once."""
        order: list[Value] = []
        visited = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            v, expanded = stack.pop()
            if expanded:
                order.append(v)
            elif v not in visited:
                visited.add(v)
                stack.append((v, True))
                stack.extend((c, False) for c in v._prev if c not in visited)
        return order

    def backward(self) -> None:
        """Add d(self)/d(leaf) to every leaf's ``grad``; set every inner node's."""
        topo = self.topo()
        for v in topo:
            if v._prev:
                v.grad = 0.0
        self.grad += 1.0
        for v in reversed(topo):
            if v.grad:  # an unused branch passes nothing on (no 0 * inf)
                v._backward()

    # -- the rules: (value, local derivatives) of each op ---------------------

    @staticmethod
    def rule_add(a: float, b: float) -> tuple[float, float, float]:
        return a + b, 1.0, 1.0

    @staticmethod
    def rule_sub(a: float, b: float) -> tuple[float, float, float]:
        return a - b, 1.0, -1.0

    @staticmethod
    def rule_mul(a: float, b: float) -> tuple[float, float, float]:
        return a * b, b, a

    @staticmethod
    def rule_div(a: float, b: float) -> tuple[float, float, float]:
        q = a / b
        return q, 1.0 / b, -q / b

    @staticmethod
    def rule_pow(x: float, c: float) -> tuple[float, float]:
        return math.pow(x, c), c * math.pow(x, c - 1.0) if c else 0.0

    @staticmethod
    def rule_log(x: float) -> tuple[float, float]:
        return math.log(x), 1.0 / x

    @staticmethod
    def rule_exp(x: float) -> tuple[float, float]:
        y = math.exp(x)
        return y, y

    @staticmethod
    def rule_relu(x: float) -> tuple[float, float]:
        return (x, 1.0) if x > 0.0 else (0.0, 0.0)

    @staticmethod
    def rule_tanh(x: float) -> tuple[float, float]:
        e = math.exp(-2.0 * abs(x))  # tanh' = 4e / (1 + e)^2, no cancellation
        return math.tanh(x), 4.0 * e / ((1.0 + e) * (1.0 + e))

    @staticmethod
    def rule_sigmoid(x: float) -> tuple[float, float]:
        e = math.exp(-abs(x))
        s = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
        return s, e / ((1.0 + e) * (1.0 + e))

    # -- building nodes --------------------------------------------------------

    def _lift(self, other: Any) -> Value:
        if isinstance(other, Value):
            return other
        return type(self)(other)

    def _unary(self, rule: tuple[float, float], op: str) -> Value:
        data, d = rule
        out = type(self)(data, (self,), op)

        def _backward() -> None:
            out.accumulate(self, d * out.grad)

        out._backward = _backward
        return out

    def _binary(self, other: Value, rule: tuple[float, float, float], op: str) -> Value:
        data, da, db = rule
        out = type(self)(data, (self, other), op)

        def _backward() -> None:
            out.accumulate(self, da * out.grad)
            out.accumulate(other, db * out.grad)

        out._backward = _backward
        return out

    # -- operators ------------------------------------------------------------

    def __add__(self, other: Any) -> Value:
        other = self._lift(other)
        return self._binary(other, self.rule_add(self.data, other.data), "+")

    def __sub__(self, other: Any) -> Value:
        other = self._lift(other)
        return self._binary(other, self.rule_sub(self.data, other.data), "-")

    def __mul__(self, other: Any) -> Value:
        other = self._lift(other)
        return self._binary(other, self.rule_mul(self.data, other.data), "*")

    def __truediv__(self, other: Any) -> Value:
        other = self._lift(other)
        return self._binary(other, self.rule_div(self.data, other.data), "/")

    def __pow__(self, c: Any) -> Value:
        if isinstance(c, (Value, bool)) or not isinstance(c, (int, float)):
            raise TypeError(f"the exponent must be a number, got {type(c).__name__}")
        return self._unary(self.rule_pow(self.data, float(c)), f"**{c}")

    def __neg__(self) -> Value:
        return self * -1.0

    def __radd__(self, other: Any) -> Value:  # other + self
        return self + other

    def __rmul__(self, other: Any) -> Value:  # other * self
        return self * other

    def __rsub__(self, other: Any) -> Value:  # other - self
        return self._lift(other) - self

    def __rtruediv__(self, other: Any) -> Value:  # other / self
        return self._lift(other) / self

    def log(self) -> Value:
        return self._unary(self.rule_log(self.data), "log")

    def exp(self) -> Value:
        return self._unary(self.rule_exp(self.data), "exp")

    def relu(self) -> Value:
        return self._unary(self.rule_relu(self.data), "relu")

    def tanh(self) -> Value:
        return self._unary(self.rule_tanh(self.data), "tanh")

    def sigmoid(self) -> Value:
        return self._unary(self.rule_sigmoid(self.data), "sigmoid")
