"""Correct: division as multiplication by the reciprocal, a * (1 / b).

Two roundings instead of one (up to about 1.5 ulps), and d/db = -(a/b) / b
taken from that quotient: how engines that build ``a / b`` as
``a * b ** -1`` round. A correct tolerance model accepts this engine.
"""

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_div(a: float, b: float) -> tuple[float, float, float]:
        r = 1.0 / b
        q = a * r
        return q, r, -q * r
