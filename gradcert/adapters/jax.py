"""The adapter for JAX, in float64 on the CPU.

JAX differentiates functions: the adapter replays the graph on ``jnp``
scalars inside ``jax.value_and_grad``, without ``jit``. It turns on
``jax_enable_x64`` when it is created (a process-wide JAX setting).
``relu`` is ``jax.nn.relu`` and ``sigmoid`` is ``jax.nn.sigmoid``.

>>> from gradcert.graph import trace
>>> from gradcert.adapters.base import run_graph
>>> run_graph(JaxAdapter(), trace(lambda x: x.log() * x, [2.0])).grads
(1.6931471805599454,)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradcert.adapters._replay import TEMPLATE
from gradcert.adapters.base import ALL_OPS, Capabilities, FunctionalAdapter, TargetError
from gradcert.graph import OPS

__all__ = ["JaxAdapter"]
__doctest_requires__ = ("jax",)  # its doctests skip without it (conftest.py)

_HEADER = '''import jax
import jax.numpy as np

jax.config.update("jax_enable_x64", True)
relu, sigmoid, value_and_grad = jax.nn.relu, jax.nn.sigmoid, jax.value_and_grad
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
        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp

    def capabilities(self) -> Capabilities:
        return Capabilities(ALL_OPS, "float64", functional=True, notes={
            "relu'(0)": "0.0 (jax.nn.relu)",
            "backward": "functional: each run differentiates a fresh replay of the graph",
            "version": self.jax.__version__,
        })

    def fns(self) -> Mapping[str, Callable[..., Any]]:
        jnp, nn = self.jnp, self.jax.nn
        fns: dict[str, Callable[..., Any]] = {n: op.apply for n, op in OPS.items()}
        fns.update(log=jnp.log, exp=jnp.exp, tanh=jnp.tanh, relu=nn.relu, sigmoid=nn.sigmoid)
        return fns

    def value_and_grad(self, f: Callable[[Any], Any],
                       xs: Sequence[float]) -> tuple[float, Sequence[float]]:
        # A list of scalars, not one array: indexing an array would make every leaf's
        # cotangent a scatter into all of them, quadratic in the number of leaves.
        leaves = [self.jnp.asarray(x, dtype=self.jnp.float64) for x in xs]
        value, grads = self.jax.value_and_grad(f)(leaves)
        return value, list(grads)

    def reproducer_prelude(self) -> str:
        return TEMPLATE.format(header=_HEADER)
