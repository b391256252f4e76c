"""Defect: backward leaves inner nodes' gradients from the last backward.

This is micrograd's own ``backward``: it sets the output's grad to 1 and
never resets inner nodes, so a second ``backward`` on the same output adds
stale inner gradients again: the leaves get neither the doubled nor the
fresh gradient.
"""

from .base import Value as Base


class Value(Base):
    def backward(self) -> None:
        topo = self.topo()
        self.grad = 1.0  # DEFECT: inner nodes' grads are not reset
        for v in reversed(topo):
            v._backward()
