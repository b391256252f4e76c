"""Defect: the reflected division is reversed: c / x computes x / c.

Real engines: ``def __rtruediv__(self, other): return self / other``.
"""

from typing import Any

from .base import Value as Base


class Value(Base):
    def __rtruediv__(self, other: Any) -> Base:
        return self / other  # DEFECT: should be other / self
