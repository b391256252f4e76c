"""The adapter for gradcert's own reference engine, ``gradcert.engine.Value``.

The engine is loaded by name, like any target, so the adapters stay
independent of it; its capabilities are declared, not probed.

>>> a = ReferenceAdapter()
>>> a.import_line, a.capabilities().unsupported
('from gradcert.engine import Value', frozenset())
"""

from __future__ import annotations

import importlib

from gradcert.adapters.base import ALL_OPS, Capabilities
from gradcert.adapters.generic import GenericAdapter

__all__ = ["ReferenceAdapter"]


class ReferenceAdapter(GenericAdapter):
    """gradcert's engine: every op, float64, accumulating leaf grads, relu'(0) = 0."""

    def __init__(self) -> None:
        value = importlib.import_module("gradcert.engine").Value
        caps = Capabilities(ALL_OPS, "float64", has_zero_grad=True, notes={
            "relu'(0)": "0.0",
            "backward": "leaf grads accumulate; a second backward doubles them",
        })
        super().__init__(value, target="gradcert", import_line="from gradcert.engine import Value",
                         name="gradcert", capabilities=caps)
