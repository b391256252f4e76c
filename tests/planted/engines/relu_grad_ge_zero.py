"""Defect: relu' tested on the output with >=, so every input x <= 0 gets slope 1.

Real engines: ``self.grad += (out.data >= 0) * out.grad``: ``out.data`` is 0,
never negative, for x <= 0. (relu'(0) = 1 alone would be a valid convention;
relu'(-3) = 1 is not.)
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_relu(x: float) -> tuple[float, float]:
        out = x if x > 0.0 else 0.0
        return out, 1.0 if out >= 0.0 else 0.0  # DEFECT: should test x > 0
