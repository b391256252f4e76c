"""A wrong exp' (1e-6 off) that patches gradcert's tolerance check to pass everything."""
import importlib

from ...planted.engines.base import Value as Base

_tolerance = importlib.import_module("gradcert.oracle.tolerance")
_tolerance.Tolerance.check = lambda self, *args, **kwargs: []


class Value(Base):
    @staticmethod
    def rule_exp(x):
        y, d = Base.rule_exp(x)
        return y, d * (1.0 + 1e-6)
