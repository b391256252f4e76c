"""``gradcert.jax.check_grads``: jax.test_util.check_grads' signature, judged exactly.

Replace ``from jax.test_util import check_grads`` with ``from gradcert.jax import
check_grads``: the same call returns None or raises an AssertionError whose
message says which input, which output, exact vs actual vs bound, and where
the reproducer is. It is :func:`gradcert.check_grads` on ``jax.vjp``; a
``custom_jvp`` rule is judged through the vjp JAX derives from it, so
``modes`` other than ``"rev"`` add no separate check. ``atol``, ``rtol``
and ``eps`` are accepted and ignored (a warning says so when given):
the bound comes from the tolerance model. ``order=2`` is not built yet.

Importing this module imports neither jax nor mpmath.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["check_grads"]


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int = 1,
                modes: Sequence[str] = ("fwd", "rev"), atol: Any = None, rtol: Any = None,
                eps: Any = None, *, examples: int | None = None,
                reproducer_dir: Any = "default") -> None:
    """Check ``f``'s reverse-mode derivatives at ``args`` exactly; None, or AssertionError.

    >>> import pytest; jax = pytest.importorskip("jax")
    >>> jax.config.update("jax_enable_x64", True)
    >>> import jax.numpy as jnp
    >>> check_grads(jnp.tanh, (jnp.array([0.5, 2.0]),), order=1, examples=0)
    """
    from gradcert.check.api import REPRODUCERS
    from gradcert.check.api import check_grads as check

    given = [name for name, v in (("atol", atol), ("rtol", rtol), ("eps", eps))
             if v is not None]
    if given:
        warnings.warn(f"gradcert.jax.check_grads ignores {', '.join(given)}: the bound comes "
                      f"from gradcert's tolerance model", stacklevel=2)
    unknown = set(modes) - {"fwd", "rev"}
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}: use 'fwd' and/or 'rev'")
    check(f, list(args), order=order, examples=examples,
          reproducer_dir=REPRODUCERS if reproducer_dir == "default" else reproducer_dir)
