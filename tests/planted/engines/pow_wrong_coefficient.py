"""Defect: d(x ** c)/dx computed as (c - 1) * x ** (c - 1).

Real engines: the lowered exponent copied into the coefficient,
``(other - 1) * self.data ** (other - 1)``.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_pow(x: float, c: float) -> tuple[float, float]:
        return math.pow(x, c), (c - 1.0) * math.pow(x, c - 1.0)  # DEFECT: coefficient c
