"""The adapter for JAX, in float64 on the CPU.

JAX differentiates functions: the adapter replays the graph on ``jnp``
scalars inside ``jax.value_and_grad``, without ``jit``. It turns on
``jax_enable_x64`` when it is created (a process-wide JAX setting). An op
with a function name (``log``, ``maximum``, ``erf``, ...) is the first of
``jax.numpy``, ``jax.nn`` and ``jax.scipy.special`` to have it, so ``relu``
is ``jax.nn.relu`` and ``sigmoid`` is ``jax.nn.sigmoid``.

>>> from gradcert.graph import trace
>>> from gradcert.adapters.base import run_graph
>>> run_graph(JaxAdapter(), trace(lambda x: x.log() * x, [2.0])).grads
(1.6931471805599454,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradcert.adapters._replay import functions, prelude
from gradcert.adapters.base import Capabilities, FunctionalAdapter, TargetError

__all__ = ["JaxAdapter"]
__doctest_requires__ = ("jax",)  # its doctests skip without it (conftest.py)

_HEADER = '''import jax
import jax.nn
import jax.numpy as np
import jax.scipy.special

jax.config.update("jax_enable_x64", True)
value_and_grad = jax.value_and_grad
NAMESPACES = (np, jax.nn, jax.scipy.special)
'''


class JaxAdapter(FunctionalAdapter):
    """JAX with x64 enabled; every op of the table; functional (no handles)."""

    name = target = "jax"
    import_line = "import jax"

    def __init__(self) -> None:
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as e:
            raise TargetError(f"jax: cannot import jax ({e}); install it with "
                              f"'pip install jax jaxlib'") from None
        import jax.nn
        import jax.scipy.special

        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp
        self._fns = functions(jnp, jax.nn, jax.scipy.special)

    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset(self._fns), "float64", functional=True, notes={
            "relu'(0)": "0.0 (jax.nn.relu)",
            "backward": "functional: each run differentiates a fresh replay of the graph",
            "version": self.jax.__version__,
        })

    def fns(self) -> Mapping[str, Callable[..., Any]]:
        return self._fns

    def value_and_grad(self, f: Callable[[Any], Any],
                       xs: Sequence[float]) -> tuple[float, Sequence[float]]:
        # A list of scalars, not one array: indexing an array would make every leaf's
        # cotangent a scatter into all of them, quadratic in the number of leaves.
        leaves = [self.jnp.asarray(x, dtype=self.jnp.float64) for x in xs]
        value, grads = self.jax.value_and_grad(f)(leaves)
        return value, list(grads)

    def reproducer_prelude(self) -> str:
        return prelude(_HEADER)
