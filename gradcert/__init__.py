"""gradcert: certifies autograd engines, and users' own functions, against an exact oracle.

The public names load on first use (PEP 562), so ``import gradcert`` imports
none of mpmath, hypothesis, torch or jax:

- :func:`check_grads` judges the gradients of your own PyTorch, JAX or
  gradcert-engine function exactly (``gradcert.torch.gradcheck`` and
  ``gradcert.jax.check_grads`` are drop-ins with the usual signatures);
- :func:`certify` runs the conformance suite on an engine;
- :func:`exact`, :func:`tolerance`, :func:`trace`, :class:`Graph`,
  :func:`graphs` and :func:`load_target` are the pieces both are built from.

>>> import gradcert
>>> gradcert.exact(lambda x: (x + 1e16) - 1e16, [1.0]).value_f64
1.0
>>> gradcert.trace(lambda x: x * x, [3.0]).inputs
(3.0,)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_WHERE = {  # public name -> the module that defines it
    "Graph": "gradcert.graph",
    "certify": "gradcert.certify",
    "check_grads": "gradcert.check",
    "exact": "gradcert.oracle",
    "graphs": "gradcert.properties.strategies",
    "load_target": "gradcert.adapters",
    "tolerance": "gradcert.oracle",
    "trace": "gradcert.graph",
}

__all__ = [
    "Graph",
    "certify",
    "check_grads",
    "exact",
    "graphs",
    "load_target",
    "tolerance",
    "trace",
]


def _check_exports() -> None:
    """Every name in ``__all__`` has a home and every home is exported (Hypothesis
    checks its own ``__all__`` the same way, at import)."""
    if sorted(__all__) != sorted(_WHERE):
        missing = sorted(set(_WHERE) ^ set(__all__))
        raise ImportError(f"gradcert.__all__ and its lazy names disagree on {missing}")


_check_exports()


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps the module ``gradcert.certify``, once imported, from shadowing the
    function of the same name (the import system sets the package attribute)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
