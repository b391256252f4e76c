"""Defect: relu leaks, 0.01 * x below 0, under the name relu.

Real engines implement leaky relu and call it relu: value and slope are
wrong for every negative input.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_relu(x: float) -> tuple[float, float]:
        return (x, 1.0) if x > 0.0 else (0.01 * x, 0.01)  # DEFECT: should be (0, 0)
