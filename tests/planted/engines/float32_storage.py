"""Defect: values and gradients are stored in float32.

Real engines back Value with ``numpy.float32`` (numpy's default in many
tutorials) or a float32 array: every number is rounded to 24 bits, a
relative error near 6e-8 on every op, while the engine presents itself as
a Python-float engine.
"""

import math
import struct

from .base import Value as Base


def _f32(x: float) -> float:
    try:
        return float(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


class Value(Base):
    @staticmethod
    def store(x: float) -> float:
        return _f32(float(x))  # DEFECT: should keep the float64

    @staticmethod
    def accumulate(node: Base, g: float) -> None:
        node.grad = _f32(node.grad + g)  # DEFECT: gradients in float32 too
