"""The adapter for gradcert's own reference engine, ``gradcert.engine.Value``.

The engine is loaded by name, like any target, so the adapters stay
independent of it; its capabilities are declared, not probed.

>>> a = ReferenceAdapter()
>>> a.import_line, a.capabilities().unsupported
('from gradcert.engine import Value', frozenset())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from gradcert.adapters.base import ALL_OPS, Capabilities
from gradcert.adapters.generic import GenericAdapter

__all__ = ["ReferenceAdapter"]


class ReferenceAdapter(GenericAdapter):
    """gradcert's engine: every op, float64, accumulating leaf grads, relu'(0) = 0."""

    def __init__(self) -> None:
        value = importlib.import_module("gradcert.engine").Value
        caps = Capabilities(ALL_OPS, "float64", has_zero_grad=True, has_adam=True, notes={
            "relu'(0)": "0.0",
            "backward": "leaf grads accumulate; a second backward doubles them",
        })
        super().__init__(value, target="gradcert", import_line="from gradcert.engine import Value",
                         name="gradcert", capabilities=caps)

    def adam(self, leaves: Sequence[Any], *, lr: float = 1e-3,
             betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> Callable[[], None]:
        adam = importlib.import_module("gradcert.engine.optim").Adam
        return adam(leaves, lr=lr, betas=betas, eps=eps).step
