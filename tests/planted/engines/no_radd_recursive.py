"""Defect: a recursive topological sort, in an engine without ``__radd__``.

smallgrad has no ``__radd__``, so ``sum()`` (``0 + x0``) fails with a
TypeError and a sum() chain never runs; its recursive sort still raises
RecursionError past depth ~1,000, which a chain built as ``x0 + x1 + ...``
shows.
"""

from __future__ import annotations

from typing import Any

from .base import Value as Base


class Value(Base):
    def topo(self) -> list[Base]:
        order: list[Base] = []
        visited: set[Base] = set()

        def build(v: Base) -> None:  # DEFECT: recursion, one frame per node of depth
            if v not in visited:
                visited.add(v)
                for c in v._prev:
                    build(c)
                order.append(v)

        build(self)
        return order

    def __radd__(self, other: Any) -> Any:
        return NotImplemented  # no reflected add: 0 + Value(...) raises TypeError
