"""Defect: sigmoid(x) = 1 / (1 + exp(-x)), evaluated as written.

For x below about -709.78, exp(-x) overflows and ``math.exp`` raises
OverflowError, though sigmoid(-745) is 4.9e-324 (scalargrad's bug). Found by
random draws on some seeds only; by the sweep on every one.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_sigmoid(x: float) -> tuple[float, float]:
        s = 1.0 / (1.0 + math.exp(-x))  # DEFECT: exp(-x) overflows for x < -709.78
        return s, s * (1.0 - s)
