"""Defect: tanh computed by the textbook formula (e^2x - 1) / (e^2x + 1).

Real engines (micrograd's lecture version among them) write exactly this:
``e^2x - 1`` cancels for small |x| (tanh(1e-9) has a relative error near
1e-7), and ``e^2x`` overflows for x > 354, raising where tanh is 1. The
derivative 1 - t^2 is taken from that t.
"""

import math

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_tanh(x: float) -> tuple[float, float]:
        e = math.exp(2.0 * x)
        t = (e - 1.0) / (e + 1.0)  # DEFECT: should be math.tanh(x)
        return t, 1.0 - t * t
