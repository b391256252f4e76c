"""Defect: an epsilon guard in the log derivative, 1 / (x + 1e-8).

Real engines add it "to avoid division by zero". The value is right; the
gradient is off by a relative 1e-8 / x: invisible to gradcheck's rtol=1e-3
unless x is tiny, plain to an exact oracle.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_log(x: float) -> tuple[float, float]:
        return math.log(x), 1.0 / (x + 1e-8)  # DEFECT: should be 1 / x
