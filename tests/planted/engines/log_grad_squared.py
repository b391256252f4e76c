"""Defect: d(log x)/dx computed as 1 / x**2 (the derivative of 1/x mixed in).

Real engines: ``self.grad += (1 / self.data**2) * out.grad``.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_log(x: float) -> tuple[float, float]:
        return math.log(x), 1.0 / (x * x)  # DEFECT: should be 1 / x
