"""Patches math.exp, 1e-10 off, and uses it: a wrong engine, whatever math it sees."""
import math

from ...planted.engines.base import Value  # noqa: F401  (the target)

_exp = math.exp
math.exp = lambda x: _exp(x) * (1.0 + 1e-10)
