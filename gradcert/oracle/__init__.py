"""The oracle: exact values and gradients, finite differences, error metrics, tolerances.

Names load on first use (PEP 562), so ``import gradcert.oracle`` does not
import mpmath. ``exact`` and ``tolerance`` are both functions and the
modules defining them: the package attribute is always the function (import
the modules with ``from gradcert.oracle.exact import ...``).

>>> from gradcert.oracle import exact, ulp_distance
>>> e = exact(lambda x: x * x, [3.0])
>>> e.value_f64, e.grad_f64, ulp_distance(e.value_f64, 9.0)
(9.0, (6.0,), 0.0)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_WHERE = {
    "Exact": "exact",
    "MAX_PREC": "exact",
    "START_PREC": "exact",
    "Unresolved": "exact",
    "exact": "exact",
    "exact_graph": "exact",
    "round_to": "exact",
    "DirectionalResult": "fd",
    "Estimate": "fd",
    "central_difference": "fd",
    "directional_check": "fd",
    "gradient_fd": "fd",
    "richardson": "fd",
    "bits_of_error": "metrics",
    "ordinal": "metrics",
    "rel_error": "metrics",
    "ulp_distance": "metrics",
    "Tolerance": "tolerance",
    "Violation": "tolerance",
    "tolerance": "tolerance",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcert.oracle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gradcert.oracle.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps a submodule from shadowing the function of the same name once imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
