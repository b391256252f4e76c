"""Defect: tanh' computed as 1 - tanh(x), the square forgotten.

Real engines: ``self.grad += (1 - t) * out.grad`` for ``(1 - t**2)``.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_tanh(x: float) -> tuple[float, float]:
        t = math.tanh(x)
        return t, 1.0 - t  # DEFECT: should be 1 - t * t
