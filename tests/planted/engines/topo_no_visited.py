"""Defect: a recursive topological sort without a visited set.

Real engines drop micrograd's ``if v not in visited`` check: a node reached
along k paths is listed k times, its ``_backward`` runs k times and passes
its gradient on k times (double counting at fan-out); the sort takes time
exponential in the number of stacked diamonds, and recursion limits depth.
"""

from .base import Value as Base


class Value(Base):
    def topo(self) -> list[Base]:
        order: list[Base] = []

        def build(v: Base) -> None:
            for child in v._prev:  # DEFECT: no visited set
                build(child)
            order.append(v)

        build(self)
        return order
