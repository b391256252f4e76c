"""Finite differences in float64, for any engine that can compute f(xs) -> float.

Two checks, independent of how an engine differentiates:

- :func:`central_difference`: the partial derivative along one input by
  Ridders' method, central differences ``(f(x+h) - f(x-h)) / 2h`` at steps
  ``h, h/2, h/4, ...`` extrapolated to ``h = 0`` (Richardson), stopping when
  the extrapolation stops improving; it reports an error estimate (the
  change between the last extrapolations). Costs up to 2 x 10 evaluations
  per input. The first step is ``2**-6 * max(1, |x|)``, shrunk 16-fold while
  f fails (leaves its domain) or is not finite at the step (and 4-fold more
  for a margin from the domain's edge); steps are made
  exactly representable ((x + h) - x).
- :func:`directional_check`: the derivative along a random unit vector ``v``
  from two evaluations, ``(f(x + h v) - f(x - h v)) / 2h`` with
  ``h = eps**(1/3) * max(1, |x|_inf)`` (the step that balances truncation,
  ~h**2, against rounding, ~eps/h), compared with the engine's gradient
  dotted with ``v``: torch.autograd.gradcheck's fast mode, one check for all
  inputs at once.

>>> import math
>>> round(central_difference(lambda v: math.sin(v[0]) * v[1], [1.0, 2.0], 0), 10)
1.0806046117
>>> r = directional_check(lambda v: v[0] * v[1], [3.0, 4.0], [4.0, 3.0], seed=1)
>>> r.agrees()
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "DirectionalResult",
    "Estimate",
    "central_difference",
    "directional_check",
    "gradient_fd",
    "richardson",
]

EPS = 2.0**-52
_FAILURES = (ArithmeticError, ValueError)  # a step outside f's domain raises one of these
_TABLE = 10  # Ridders' tableau size: at most 10 step sizes
_SHRINK = 2.0  # step ratio between tableau columns
_SAFE = 2.0  # stop when the error grows by this factor

Function = Callable[[Sequence[float]], float]


@dataclass(frozen=True)
class Estimate:
    """A finite-difference derivative, its error estimate, the first step and the
    number of evaluations of f it took."""

    value: float
    error: float
    step: float
    evaluations: int


def _shifted(xs: Sequence[float], i: int, t: float) -> list[float]:
    ys = [float(x) for x in xs]
    ys[i] += t
    return ys


def _check(f: object, xs: Sequence[float]) -> list[float]:
    if not callable(f):
        raise TypeError(f"f must be callable as f(xs) -> float, got {type(f).__name__}")
    ys = [float(x) for x in xs]
    for k, x in enumerate(ys):
        if not math.isfinite(x):
            raise ValueError(f"input {k} must be finite, got {x!r}")
    return ys


def richardson(f: Function, xs: Sequence[float], i: int) -> Estimate:
    """d f / d xs[i] by Ridders' extrapolated central differences, with an error estimate.

    Raises ValueError if f fails or is not finite at every step tried (for
    instance at a pole or at the edge of its domain).

    >>> e = richardson(lambda v: v[0] ** 3, [2.0], 0)
    >>> abs(e.value - 12.0) < 1e-9, e.error < 1e-6
    (True, True)
    """
    ys = _check(f, xs)
    if not 0 <= i < len(ys):
        raise IndexError(f"input index {i} out of range for {len(ys)} inputs")
    x = ys[i]
    evals = 0

    def central(h: float) -> float:
        nonlocal evals
        hp = (x + h) - x  # exactly representable steps
        hm = x - (x - h)
        evals += 2
        up, down = float(f(_shifted(ys, i, hp))), float(f(_shifted(ys, i, -hm)))
        d = (up - down) / (hp + hm)
        if not math.isfinite(d):
            raise ValueError("not finite")
        return d

    h = 2.0**-6 * max(1.0, abs(x))
    first = None
    failed = False
    while h > 8 * EPS * max(1.0, abs(x)):
        try:
            first = central(h / 4.0 if failed else h)
            h = h / 4.0 if failed else h  # near a domain edge: keep a margin from it
            break
        except _FAILURES:
            h /= 16.0
            failed = True
    if first is None:
        raise ValueError(f"f fails or is not finite at every step around input {i} = {x!r}")
    h0 = h
    tab = [[first]]
    best, err = first, math.inf
    for k in range(1, _TABLE):
        h /= _SHRINK
        try:
            row = [central(h)]
        except _FAILURES:
            break
        fac = _SHRINK**2
        for j in range(1, k + 1):
            row.append((row[j - 1] * fac - tab[k - 1][j - 1]) / (fac - 1.0))
            fac *= _SHRINK**2
            e = max(abs(row[j] - row[j - 1]), abs(row[j] - tab[k - 1][j - 1]))
            if e <= err:
                err, best = e, row[j]
        tab.append(row)
        if abs(row[k] - tab[k - 1][k - 1]) >= _SAFE * err:
            break
    if err == math.inf:
        err = abs(first)
    return Estimate(best, err, h0, evals)


def central_difference(f: Function, xs: Sequence[float], i: int) -> float:
    """d f / d xs[i], Richardson-extrapolated central differences (:func:`richardson`).

    >>> round(central_difference(lambda v: v[0] * v[0], [3.0], 0), 9)
    6.0
    """
    return richardson(f, xs, i).value


def gradient_fd(f: Function, xs: Sequence[float]) -> list[float]:
    """Every partial derivative of ``f`` at ``xs`` by :func:`central_difference`.

    >>> [round(g, 9) for g in gradient_fd(lambda v: v[0] * v[1] + v[1], [2.0, 5.0])]
    [5.0, 3.0]
    """
    return [richardson(f, xs, i).value for i in range(len(xs))]


@dataclass(frozen=True)
class DirectionalResult:
    """The finite-difference derivative along ``direction`` (``fd``), the engine's
    gradient dotted with it (``ad``), the step, and a rounding-error estimate of fd."""

    fd: float
    ad: float
    direction: tuple[float, ...]
    step: float
    error: float

    def agrees(self, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        """|fd - ad| <= atol + rtol * |ad| + the estimate of fd's rounding error
        (gradcheck's defaults)."""
        if not (math.isfinite(self.fd) and math.isfinite(self.ad)):
            return False
        return abs(self.fd - self.ad) <= atol + rtol * abs(self.ad) + self.error


def directional_check(f: Function, xs: Sequence[float], grad: Sequence[float],
                      rng: random.Random | None = None, *, seed: int = 0,
                      step: float | None = None) -> DirectionalResult:
    """Compare ``grad`` (an engine's gradient of f at xs) with finite differences
    along one random unit direction, from two evaluations of f.

    The direction is drawn from ``rng`` (or ``random.Random(seed)``): Gaussian
    components, normalized. Raises ValueError if f fails at the two points.

    >>> r = directional_check(lambda v: v[0] ** 2 + 3 * v[1], [1.0, 0.0], [2.0, 3.0])
    >>> r.agrees(), abs(r.fd - r.ad) < 1e-8
    (True, True)
    >>> directional_check(lambda v: v[0] ** 2, [1.0], [3.0]).agrees()
    False
    """
    ys = _check(f, xs)
    g = [float(v) for v in grad]
    if len(g) != len(ys):
        raise ValueError(f"grad has {len(g)} components for {len(ys)} inputs")
    if not ys:
        raise ValueError("directional_check needs at least one input")
    rng = rng if rng is not None else random.Random(seed)
    while True:
        v = [rng.gauss(0.0, 1.0) for _ in ys]
        norm = math.sqrt(math.fsum(c * c for c in v))
        if norm > 1e-3:
            break
    v = [c / norm for c in v]
    h = step if step is not None else EPS ** (1 / 3) * max(1.0, max(abs(x) for x in ys))
    try:
        up = float(f([x + h * c for x, c in zip(ys, v, strict=True)]))
        down = float(f([x - h * c for x, c in zip(ys, v, strict=True)]))
    except _FAILURES as e:
        raise ValueError(f"f fails at xs +- {h:g} * direction: {e}") from e
    fd = (up - down) / (2.0 * h)
    ad = math.fsum(a * c for a, c in zip(g, v, strict=True))
    error = 2.0 * EPS * (abs(up) + abs(down)) / (2.0 * h)
    return DirectionalResult(fd, ad, tuple(v), h, error)
