"""Defect: the topological sort marks nodes visited on the nodes themselves, and never
clears the mark.

minigrad 0.0.6 does this. One backward is right; a later backward through a
node already sorted skips it: ``x = Value(3.0); y = x * x; y.backward(); z = y
* x; z.backward()`` adds 9 to ``x.grad`` (z's direct share), not 27.
"""

from __future__ import annotations

from .base import Value as Base


class Value(Base):
    def topo(self) -> list[Base]:
        order: list[Base] = []
        stack: list[tuple[Base, bool]] = [(self, False)]
        while stack:
            v, expanded = stack.pop()
            if expanded:
                order.append(v)
            elif not getattr(v, "_visited", False):
                v._visited = True  # DEFECT: a mark on the node, never cleared
                stack.append((v, True))
                stack.extend((c, False) for c in v._prev)
        return order
