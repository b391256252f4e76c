"""Defect: sigmoid' = s(1 - s) with s rounded to float32 first.

Real engines keep a float32 copy of the activation for backward (or read
it back from a float32 buffer): the value is float64, the gradient has a
relative error near 1e-8.
"""

import struct

from .base import Value as Base


class Value(Base):
    @staticmethod
    def rule_sigmoid(x: float) -> tuple[float, float]:
        s, _ = Base.rule_sigmoid(x)
        s32 = struct.unpack("f", struct.pack("f", s))[0]  # DEFECT: should use s
        return s, s32 * (1.0 - s32)
