"""Defect: the exp input is clamped to 88, a bound copied from float32 code.

Real engines write ``math.exp(min(x, 88.0))`` so that exp "never overflows":
exp(100) comes out as exp(88), and exp(1000) as a finite number instead of
an overflow.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_exp(x: float) -> tuple[float, float]:
        y = math.exp(min(x, 88.0))  # DEFECT: should be exp(x), raising on overflow
        return y, y
