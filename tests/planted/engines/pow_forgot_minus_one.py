"""Defect: d(x ** c)/dx computed as c * x ** c (the exponent is not lowered).

Real engines: ``self.grad += other * self.data ** other * out.grad``.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_pow(x: float, c: float) -> tuple[float, float]:
        y = math.pow(x, c)
        return y, c * y  # DEFECT: should be c * x ** (c - 1)
