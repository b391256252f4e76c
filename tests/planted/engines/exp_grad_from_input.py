"""Defect: d(exp x)/dx taken from the input, x, instead of the output exp(x).

Real engines: ``self.grad += self.data * out.grad`` where ``out.data`` was meant.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_exp(x: float) -> tuple[float, float]:
        return math.exp(x), x  # DEFECT: should be exp(x)
