"""Adam over a list of Values, with PyTorch's bias-corrected update.

The per-parameter update is the pure function :func:`adam_update`, so the
same arithmetic can be compared against an exact Adam written elsewhere.

>>> from gradcert.engine.value import Value
>>> p = Value(1.0)
>>> opt = Adam([p], lr=0.1)
>>> (p * p).backward()
>>> opt.step()
>>> round(p.data, 9)
0.9
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gradcert.engine.value import Value

__all__ = ["Adam", "adam_update"]


def adam_update(p: float, g: float, m: float, v: float, t: int, lr: float = 1e-3,
                betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                weight_decay: float = 0.0) -> tuple[float, float, float]:
    """One Adam step of one parameter at step ``t`` (from 1): ``(p, m, v)`` after it.

    With ``weight_decay`` the gradient is PyTorch's L2 form ``g + wd * p``.

    >>> adam_update(1.0, 2.0, 0.0, 0.0, 1, lr=0.1)  # step 1 moves by ~lr
    (0.9000000005, 0.19999999999999996, 0.0040000000000000036)
    """
    b1, b2 = betas
    if weight_decay:
        g = g + weight_decay * p
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    mhat = m / (1.0 - b1**t)
    vhat = v / (1.0 - b2**t)
    return p - lr * mhat / (math.sqrt(vhat) + eps), m, v


class Adam:
    """Adam over ``params`` (Values); ``step()`` uses each one's ``.grad``.

    >>> from gradcert.engine.value import Value
    >>> x = Value(3.0)
    >>> opt = Adam([x], lr=0.5)
    >>> for _ in range(50):
    ...     opt.zero_grad()
    ...     ((x - 1.0) ** 2).backward()
    ...     opt.step()
    >>> abs(x.data - 1.0) < 0.1
    True
    """

    def __init__(self, params: Iterable[Value], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.params = list(params)
        for i, p in enumerate(self.params):
            if not isinstance(p, Value):
                raise TypeError(f"Adam: parameter {i} is a {type(p).__name__}, not a Value")
        if not lr >= 0.0:
            raise ValueError(f"Adam: lr must be >= 0, got {lr!r}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        if not eps >= 0.0 or not weight_decay >= 0.0:
            raise ValueError(f"Adam: eps and weight_decay must be >= 0, "
                             f"got {eps!r} and {weight_decay!r}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.m = [0.0] * len(self.params)  # first moments
        self.v = [0.0] * len(self.params)  # second moments
        self.t = 0  # steps taken

    def step(self) -> None:
        """Update every parameter from its current gradient."""
        self.t += 1
        for i, p in enumerate(self.params):
            p.data, self.m[i], self.v[i] = adam_update(
                p.data, p.grad, self.m[i], self.v[i], self.t, self.lr, self.betas,  # type: ignore[arg-type]
                self.eps, self.weight_decay)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0."""
        for p in self.params:
            p.grad = 0.0
