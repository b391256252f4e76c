"""The adapter for PyTorch: 0-dim float64 CPU tensors with ``requires_grad``.

Ops are applied with the same Python operators and methods a user writes
(``c / x`` is ``Tensor.__rtruediv__``, ``x.relu()`` is ``torch.relu``);
backward is ``out.backward(retain_graph=True)``, so a second backward
accumulates into the leaves as PyTorch documents, instead of raising. A leaf
that the output does not depend on has ``.grad`` None: read as 0.0.

>>> from gradcert.graph import trace
>>> from gradcert.adapters.base import run_graph
>>> run = run_graph(TorchAdapter(), trace(lambda x: x * x + 1.0, [3.0]))
>>> run.value, run.grads
(10.0, (6.0,))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gradcert.adapters.base import ALL_OPS, Adapter, Capabilities, TargetError
from gradcert.ops import OPS

__all__ = ["TorchAdapter"]
__doctest_requires__ = ("torch",)  # its doctests skip without it (conftest.py)

_PRELUDE = '''import torch


def Value(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def backward(out):
    out.backward(retain_graph=True)


def value(v):
    return float(v.detach())


def grad(x):
    return 0.0 if x.grad is None else float(x.grad)
'''


class TorchAdapter(Adapter):
    """PyTorch on the CPU in float64; every op of the table."""

    name = target = "torch"
    import_line = "import torch"

    def __init__(self) -> None:
        try:
            import torch
        except ImportError as e:
            raise TargetError(f"torch: cannot import torch ({e}); install PyTorch "
                              f"(CPU build) first") from None
        self.torch = torch

    def capabilities(self) -> Capabilities:
        return Capabilities(ALL_OPS, "float64", has_zero_grad=True, has_adam=True, notes={
            "relu'(0)": "0.0",
            "rdivc": "c / x is x.reciprocal() * c (Tensor.__rtruediv__): two roundings",
            "backward": "retain_graph=True: leaf grads accumulate across backward calls",
            "version": self.torch.__version__,
        })

    def leaf(self, x: float) -> Any:
        return self.torch.tensor(x, dtype=self.torch.float64, requires_grad=True)

    def apply(self, op: str, operands: Sequence[Any], const: float | None) -> Any:
        row = OPS[op]
        return row.apply(*operands, const) if row.has_const else row.apply(*operands)

    def backward(self, out: Any) -> None:
        out.backward(retain_graph=True)

    def value(self, handle: Any) -> float:
        return float(handle.detach())

    def grad(self, leaf: Any) -> float:
        return 0.0 if leaf.grad is None else float(leaf.grad)

    def zero_grad(self, leaves: Sequence[Any]) -> None:
        for x in leaves:
            if x.grad is not None:
                x.grad.zero_()

    def adam(self, leaves: Sequence[Any], *, lr: float = 1e-3,
             betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> Callable[[], None]:
        opt = self.torch.optim.Adam(list(leaves), lr=lr, betas=betas, eps=eps)
        return lambda: opt.step() and None

    def reproducer_prelude(self) -> str:
        return _PRELUDE
