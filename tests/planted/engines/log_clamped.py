"""Defect: the log input is clamped, log(max(x, 1e-10)).

Real engines clamp "for numerical stability", so log(0) and log(-1) return
-23.03 silently instead of raising, and log of a positive x below 1e-10 is
wrong too.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_log(x: float) -> tuple[float, float]:
        x = max(x, 1e-10)  # DEFECT: should raise for x <= 0
        return math.log(x), 1.0 / x
