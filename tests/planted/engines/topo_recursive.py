"""Defect: micrograd's recursive topological sort: right, but depth-limited.

Real engines copy ``build_topo`` as it is: past about 1,000 nested nodes
(``sum()`` over 1,000 Values is enough) ``backward`` raises RecursionError.
"""

from .base import Value as Base


class Value(Base):
    def topo(self) -> list[Base]:
        order: list[Base] = []
        visited = set()

        def build(v: Base) -> None:  # DEFECT: recursion, depth-limited
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                order.append(v)

        build(self)
        return order
