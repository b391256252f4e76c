"""Correct: a breadth-first (Kahn) topological order instead of depth-first.

Gradients reaching a node along several paths are summed in another order
than the base engine's, so fan-out sums round differently: valid, and a
correct tolerance model accepts it.
"""

from collections import deque

from .base import Value as Base


class Value(Base):
    def topo(self) -> list[Base]:
        parents: dict[int, int] = {id(self): 0}
        seen = {id(self)}
        stack: list[Base] = [self]
        while stack:  # count each node's parents among the reachable nodes
            for c in stack.pop()._prev:
                parents[id(c)] = parents.get(id(c), 0) + 1
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
        order: list[Base] = []
        ready: deque[Base] = deque([self])
        while ready:  # a node is ready once all its parents are listed
            v = ready.popleft()
            order.append(v)
            for c in v._prev:
                parents[id(c)] -= 1
                if parents[id(c)] == 0:
                    ready.append(c)
        return order[::-1]
