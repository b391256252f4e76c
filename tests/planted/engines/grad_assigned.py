"""Defect: the chain rule assigns a node's gradient instead of adding to it.

Real engines: ``self.grad = out.grad`` (or ``= other.data * out.grad``) in a
``_backward`` closure. Every tree-shaped graph comes out right; a node used
twice (``x * x``, ``y = f(x) + g(x)``) keeps only the last path's share, and
a second ``backward`` does not add to the leaves.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def accumulate(node: Base, g: float) -> None:
        node.grad = g  # DEFECT: should be node.grad += g
