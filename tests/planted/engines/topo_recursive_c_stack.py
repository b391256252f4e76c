"""Defect: a recursive topological sort that goes through C at every level.

The engine raises Python's recursion limit itself (as many micrograd forks do),
and its sort recurses through ``map()``, a C function, so each level also takes
C stack: a plain script (an 8 MiB stack) segfaults past about 20,000 nested
nodes, while on a large stack 100,000 work. As a recursive sort in a C++
extension does, which no recursion limit sees.
"""

import sys

from .base import Value as Base


class Value(Base):
    def topo(self) -> list[Base]:
        order: list[Base] = []
        visited = set()

        def build(v: Base) -> None:  # DEFECT: recursion through C, stack-limited
            if v not in visited:
                visited.add(v)
                list(map(build, v._prev))
                order.append(v)

        sys.setrecursionlimit(1_000_000)  # as many engines do, to go deep
        build(self)
        return order
