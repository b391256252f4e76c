"""Defect: d(a - b)/db = +1: subtraction's backward copied from addition's.

Real engines: ``other.grad += out.grad`` in ``__sub__``'s closure.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_sub(a: float, b: float) -> tuple[float, float, float]:
        return a - b, 1.0, 1.0  # DEFECT: d/db should be -1
