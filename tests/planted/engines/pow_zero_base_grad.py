"""Defect: d(x**c)/dx = c * x ** (c - 1) with Python's ``**``, no case for c = 0.

micrograd's own rule. At x = 0 and c = 0 the derivative is exactly 0, but
``0.0 ** -1.0`` raises ZeroDivisionError in backward (NaN in engines built on
numpy). Random inputs rarely put 0.0 and the constant 0 together; the sweep
does on every seed.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_pow(x: float, c: float) -> tuple[float, float]:
        return x ** c, c * x ** (c - 1.0)  # DEFECT: 0.0 ** -1.0 when c == 0 and x == 0
