"""Engines that are right under a declared convention, and wrong without it.

Not defects of the catalogue: what they do is a convention gradcert declares
(docs/conventions.md), which ``--strict`` or the default range refuses.

- :class:`FlushValue` flushes every op result and gradient below the smallest
  normal float64 (2**-1022) to 0, as XLA does (exp(-745) is 0): certified by
  default, failed with ``--strict``.
- :class:`IEEEDivValue` computes d(a/b)/db as -a / (b * b) with IEEE division, as
  HIPS autograd, mygrad and JAX do: at a = 1e-300, b = 1e-200, b * b underflows
  to 0 and the derivative is -inf (exactly -1e100). A range finding by default,
  certified with ``--range normal``.

>>> (FlushValue(-745.0).exp()).data, IEEEDivValue.rule_div(1e-300, 1e-200)[2]
(0.0, -inf)
"""

from __future__ import annotations

import math

from .engines.base import Value as Base

TINY = 2.0**-1022


def _ftz(x: float) -> float:
    return math.copysign(0.0, x) if abs(x) < TINY else x


class FlushValue(Base):
    def _unary(self, rule: tuple[float, float], op: str) -> Base:
        data, d = rule
        return super()._unary((_ftz(data), _ftz(d)), op)

    def _binary(self, other: Base, rule: tuple[float, float, float], op: str) -> Base:
        data, da, db = rule
        return super()._binary(other, (_ftz(data), _ftz(da), _ftz(db)), op)

    @staticmethod
    def accumulate(node: Base, g: float) -> None:
        node.grad = _ftz(node.grad + _ftz(g))


def _ieee_div(a: float, b: float) -> float:
    if b != 0.0:
        return a / b
    return math.nan if a == 0.0 or math.isnan(a) else math.copysign(math.inf, a) * \
        math.copysign(1.0, b)


class IEEEDivValue(Base):
    @staticmethod
    def rule_div(a: float, b: float) -> tuple[float, float, float]:
        return a / b, 1.0 / b, _ieee_div(-a, b * b)  # b * b underflows below 1e-162
