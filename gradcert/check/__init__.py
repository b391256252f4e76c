"""check_grads: a user's own PyTorch, JAX or gradcert-engine function, judged exactly.

Names load on first use (PEP 562): ``import gradcert.check`` imports
neither torch, jax, mpmath nor hypothesis.

>>> from gradcert.check import check_grads
>>> check_grads(lambda x, y: (x * y).log() + 2.0 / x, [3.0, 4.0], examples=0).passed
True
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CheckError": "result",
    "CheckResult": "result",
    "GradientMismatch": "result",
    "Mismatch": "result",
    "NotYetSupported": "result",
    "OutsideDomain": "result",
    "Untraceable": "result",
    "check_grads": "api",
    "around": "search",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcert.check' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gradcert.check.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
