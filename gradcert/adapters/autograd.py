"""The adapter for HIPS autograd, on numpy float64.

autograd differentiates functions: the adapter replays the graph on
``autograd.numpy`` scalars inside ``autograd.value_and_grad``. autograd has
no relu: it is ``np.where(x > 0, x, 0.0)`` here, so relu'(0) = 0
(``np.maximum(x, 0.0)`` would give 0.5). ``sigmoid`` is
``autograd.scipy.special.expit`` (needs scipy; unsupported without it).

>>> from gradcert.graph import trace
>>> from gradcert.adapters.base import run_graph
>>> run_graph(AutogradAdapter(), trace(lambda x: x.exp() * x, [0.0])).grads
(1.0,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradcert.adapters._replay import TEMPLATE
from gradcert.adapters.base import ALL_OPS, Capabilities, FunctionalAdapter, TargetError
from gradcert.graph import OPS

__all__ = ["AutogradAdapter"]
__doctest_requires__ = ("autograd",)  # its doctests skip without it (conftest.py)

_HEADER = '''import autograd.numpy as np
from autograd import value_and_grad

try:  # needs scipy; a graph without sigmoid runs without it
    from autograd.scipy.special import expit as sigmoid
except ImportError:
    sigmoid = None


def relu(x):
    return np.where(x > 0, x, 0.0)
'''


class AutogradAdapter(FunctionalAdapter):
    """HIPS autograd in float64; functional (no handles)."""

    name = target = "autograd"
    import_line = "import autograd"

    def __init__(self) -> None:
        try:
            import autograd
            import autograd.numpy as anp
        except ImportError as e:
            raise TargetError(f"autograd: cannot import autograd ({e}); install it with "
                              f"'pip install autograd'") from None
        try:
            from autograd.scipy.special import expit
        except ImportError:
            expit = None
        self.autograd, self.np, self.expit = autograd, anp, expit

    def capabilities(self) -> Capabilities:
        notes = {
            "relu'(0)": "0.0 (np.where(x > 0, x, 0.0))",
            "backward": "functional: each run differentiates a fresh replay of the graph",
        }
        ops = ALL_OPS
        if self.expit is None:
            ops = ALL_OPS - {"sigmoid"}
            notes["sigmoid"] = "autograd.scipy.special.expit needs scipy, not installed"
        return Capabilities(ops, "float64", functional=True, notes=notes)

    def fns(self) -> Mapping[str, Callable[..., Any]]:
        np = self.np
        fns: dict[str, Callable[..., Any]] = {n: op.apply for n, op in OPS.items()}
        fns.update(log=np.log, exp=np.exp, tanh=np.tanh, sigmoid=self.expit,
                   relu=lambda x: np.where(x > 0, x, 0.0))
        return fns

    def value_and_grad(self, f: Callable[[Any], Any],
                       xs: Sequence[float]) -> tuple[float, Sequence[float]]:
        value, grads = self.autograd.value_and_grad(f)(self.np.array(xs, dtype=float))
        return value, list(grads)

    def reproducer_prelude(self) -> str:
        return TEMPLATE.format(header=_HEADER)
