"""``gradcert.torch.gradcheck``: torch.autograd.gradcheck's signature, judged exactly.

Replace ``from torch.autograd import gradcheck`` with ``from gradcert.torch import
gradcheck``: the same call returns True or raises ``GradcheckError`` (a
``torch.autograd.gradcheck.GradcheckError``, so existing ``except`` clauses
still catch it, and an AssertionError). Instead of comparing with finite
differences at ``eps`` within ``atol``/``rtol``, it is
:func:`gradcert.check_grads`: the exact derivative of the traced forward,
within the bound the tolerance model derives, at the given inputs and at
inputs drawn around them. ``eps``, ``atol``, ``rtol``, ``nondet_tol`` and
``fast_mode`` are accepted and ignored (a warning says so when they differ
from the defaults); the forward-mode and batched checks are not made.

Importing this module imports neither torch nor mpmath.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["gradcheck"]

_IGNORED = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3, "nondet_tol": 0.0, "fast_mode": False,
            "check_forward_ad": False, "check_batched_grad": False,
            "check_batched_forward_grad": False, "masked": None,
            "check_undefined_grad": True, "check_grad_dtypes": False}


def gradcheck(func: Callable[..., Any], inputs: Any, *, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
              nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              check_grad_dtypes: bool = False, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, check_forward_ad: bool = False,
              check_backward_ad: bool = True, fast_mode: bool = False,
              masked: bool | None = None, examples: int | None = None,
              reproducer_dir: Any = "default") -> bool:
    """Check ``func``'s gradients with respect to the ``inputs`` that require grad, exactly.

    Returns True, or raises ``GradcheckError`` (False with
    ``raise_exception=False``) with check_grads' message: which input,
    which output, exact vs actual vs bound, and the reproducer.
    ``examples`` and ``reproducer_dir`` are check_grads' (16 inputs
    searched; ``gradcert-report/reproducers``).

    >>> import pytest; torch = pytest.importorskip("torch")
    >>> x = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    >>> gradcheck(torch.tanh, (x,), examples=0)
    True
    """
    from gradcert.check.api import REPRODUCERS, check_grads
    from gradcert.check.result import GradientMismatch
    from gradcert.check.torch_trace import gradcheck_error

    given = {"eps": eps, "atol": atol, "rtol": rtol, "nondet_tol": nondet_tol,
             "fast_mode": fast_mode, "check_forward_ad": check_forward_ad,
             "check_batched_grad": check_batched_grad,
             "check_batched_forward_grad": check_batched_forward_grad, "masked": masked,
             "check_undefined_grad": check_undefined_grad,
             "check_grad_dtypes": check_grad_dtypes}
    changed = sorted(k for k, v in given.items() if v != _IGNORED[k])
    if changed:
        warnings.warn(f"gradcert.torch.gradcheck ignores {', '.join(changed)}: the bound "
                      f"comes from gradcert's tolerance model, and only reverse mode is "
                      f"checked", stacklevel=2)
    if not check_backward_ad:
        return True
    args = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not any(getattr(a, "requires_grad", False) for a in args):
        raise ValueError("gradcheck expects at least one input tensor to require gradient")
    try:
        check_grads(func, args, examples=examples,
                    reproducer_dir=REPRODUCERS if reproducer_dir == "default"
                    else reproducer_dir)
    except GradientMismatch as e:
        if not raise_exception:
            return False
        raise gradcheck_error()(e.result) from None
    return True
