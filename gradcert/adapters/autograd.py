"""The adapter for HIPS autograd, on numpy float64.

autograd differentiates functions: the adapter replays the graph on
``autograd.numpy`` scalars inside ``autograd.value_and_grad``. An op with a
function name (``log``, ``maximum``, ...) is looked up in ``autograd.numpy``,
then ``autograd.scipy.special``. autograd has no relu: it is
``np.where(x > 0, x, 0.0)`` here, so relu'(0) = 0 (``np.maximum(x, 0.0)``
would give 0.5). ``sigmoid`` is ``autograd.scipy.special.expit``; it and
``erf`` need scipy and are unsupported without it.

>>> from gradcert.graph import trace
>>> from gradcert.adapters.base import run_graph
>>> run_graph(AutogradAdapter(), trace(lambda x: x.exp() * x, [0.0])).grads
(1.0,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradcert.adapters._replay import functions, prelude
from gradcert.adapters.base import ALL_OPS, Capabilities, FunctionalAdapter, TargetError

__all__ = ["AutogradAdapter"]
__doctest_requires__ = ("autograd",)  # its doctests skip without it (conftest.py)

_HEADER = '''import autograd.numpy as np
from autograd import value_and_grad

try:
    import autograd.scipy.special as special  # expit and erf need scipy
except ImportError:
    special = None


def relu(x):
    return np.where(x > 0, x, 0.0)


NAMESPACES = (np, {"relu": relu}, *([special, {"sigmoid": special.expit}] if special else []))
'''


def _relu(x: Any) -> Any:
    import autograd.numpy as anp

    return anp.where(x > 0, x, 0.0)


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
            import autograd.scipy.special as special
            extra: tuple[Any, ...] = (special, {"sigmoid": special.expit})
        except ImportError:
            extra = ()
        self.autograd, self.np = autograd, anp
        self._fns = functions(anp, {"relu": _relu}, *extra)

    def capabilities(self) -> Capabilities:
        notes = {
            "relu'(0)": "0.0 (np.where(x > 0, x, 0.0))",
            "backward": "functional: each run differentiates a fresh replay of the graph",
        }
        for name in sorted(ALL_OPS - set(self._fns)):
            notes[name] = "needs autograd.scipy.special (scipy), not installed"
        return Capabilities(frozenset(self._fns), "float64", functional=True, notes=notes)

    def fns(self) -> Mapping[str, Callable[..., Any]]:
        return self._fns

    def value_and_grad(self, f: Callable[[Any], Any],
                       xs: Sequence[float]) -> tuple[float, Sequence[float]]:
        value, grads = self.autograd.value_and_grad(f)(self.np.array(xs, dtype=float))
        return value, list(grads)

    def reproducer_prelude(self) -> str:
        return prelude(_HEADER)
