"""Defect: an epsilon guard in division, a / (b + 1e-12).

Real engines add it "to avoid division by zero": every quotient is off by a
relative 1e-12 / b, x / 0 returns 1e12 * x instead of failing, and
x / -1e-12 divides by zero.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_div(a: float, b: float) -> tuple[float, float, float]:
        b = b + 1e-12  # DEFECT: should divide by b
        q = a / b
        return q, 1.0 / b, -q / b
