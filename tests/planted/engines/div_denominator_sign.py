"""Defect: d(a / b)/db has the wrong sign, +a / b^2.

Real engines that write division directly (not as a * b**-1) and drop
the minus of the quotient rule.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_div(a: float, b: float) -> tuple[float, float, float]:
        q = a / b
        return q, 1.0 / b, q / b  # DEFECT: should be -q / b
