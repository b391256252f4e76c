"""Defect: the reflected subtraction is reversed: c - x computes x - c.

Real engines: ``def __rsub__(self, other): return self - other``.
"""

from typing import Any

from .base import Value as Base


class Value(Base):
    def __rsub__(self, other: Any) -> Base:
        return self - other  # DEFECT: should be other - self
