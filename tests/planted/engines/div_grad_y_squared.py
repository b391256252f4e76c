"""Defect: d(a/b)/db = -a / b**2, with b**2 computed first.

The textbook form, in micrograd clones as ``-other ** -2``: b * b underflows
to 0 for |b| below 1e-162 while the exact derivative is finite (a = 1e-300,
b = 1e-200: exactly -1e100), and the division by it raises. A range finding:
the derivative is right wherever no intermediate leaves float64's range.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_div(a: float, b: float) -> tuple[float, float, float]:
        return a / b, 1.0 / b, -a / (b * b)  # DEFECT: b * b underflows before the division
