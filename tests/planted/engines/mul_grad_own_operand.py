"""Defect: d(a * b)/da taken as a (its own value) instead of b.

Real engines: ``self.grad += self.data * out.grad`` where ``other.data`` was
meant. x * x still comes out right, which is why it survives casual tests.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_mul(a: float, b: float) -> tuple[float, float, float]:
        return a * b, a, a  # DEFECT: d/da should be b
