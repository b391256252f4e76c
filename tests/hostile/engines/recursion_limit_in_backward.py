"""Sets the recursion limit just above the current depth as backward starts."""
import inspect
import sys

from ...planted.engines.base import Value as Base


class Value(Base):
    def backward(self):
        sys.setrecursionlimit(len(inspect.stack()) + 3)
        super().backward()
