"""Tensors of refs: the shapes, broadcasting, reductions and products tracers lower to.

A :class:`T` is a shape and its elements in row-major (C) order, each a
:data:`~gradcert.check.builder.Ref` (a node id or a constant), with the
values the framework computed for them (``vals``) where known: branches
(``max``, ``relu``, ``where``) are decided on those, as the function
decided them. Everything here is framework-neutral; the PyTorch and JAX
tracers map their ops onto it.

>>> from gradcert.check.builder import Builder
>>> b = Builder()
>>> x = T((2, 2), [b.input(v) for v in (1.0, 2.0, 3.0, 4.0)], [1.0, 2.0, 3.0, 4.0])
>>> s = reduce_sum(b, x, (1,), keepdim=False)
>>> s.shape, [b.ops[r] for r in s.refs]
((2,), ['add', 'add'])
>>> matmul(b, x, x).shape
(2, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from gradcert.check.builder import Builder, Ref

__all__ = [
    "T",
    "broadcast_shapes",
    "broadcast_to",
    "concat",
    "contiguous_positions",
    "map1",
    "map2",
    "matmul",
    "permute",
    "reduce",
    "reduce_max",
    "reduce_sum",
    "take",
]

Shape = tuple[int, ...]


class T:
    """A tensor of refs: ``shape``, ``refs`` (row-major) and the traced ``vals`` (or None)."""

    __slots__ = ("shape", "refs", "vals")

    def __init__(self, shape: Sequence[int], refs: list[Ref],
                 vals: list[float] | None = None) -> None:
        self.shape: Shape = tuple(int(d) for d in shape)
        self.refs = refs
        self.vals = vals
        if len(refs) != math.prod(self.shape):
            raise ValueError(f"{len(refs)} elements for shape {self.shape}")

    @property
    def size(self) -> int:
        return len(self.refs)

    def symbolic(self) -> bool:
        """Whether any element depends on an input."""
        return any(type(r) is int for r in self.refs)

    def reshape(self, shape: Sequence[int]) -> T:
        return T(shape, self.refs, self.vals)

    def val(self, k: int) -> float:
        """The traced value of element ``k`` (a constant is its own value)."""
        r = self.refs[k]
        if type(r) is not int:
            return float(r)
        if self.vals is None:
            raise RuntimeError("a branch needs the traced values of its operands")
        return self.vals[k]

    def __repr__(self) -> str:
        return f"T{self.shape}"


def constant(shape: Sequence[int], value: float) -> T:
    n = math.prod(shape)
    return T(shape, [float(value)] * n, [float(value)] * n)


def strides(shape: Shape) -> Shape:
    out = []
    s = 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


def contiguous_positions(shape: Sequence[int], stride: Sequence[int], offset: int) -> list[int]:
    """Memory positions of every element of a strided tensor, in row-major order."""
    pos = [offset]
    for d, s in zip(shape, stride, strict=True):
        if d == 1:
            continue
        steps = [i * s for i in range(d)]
        pos = [p + q for p in pos for q in steps]
    if 0 in shape:
        return []
    return pos


def broadcast_shapes(*shapes: Shape) -> Shape:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(ndim):
        dims = {s[k - ndim + len(s)] for s in shapes if k - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcast_to(t: T, shape: Shape) -> T:
    """``t`` broadcast to ``shape`` (numpy's rules)."""
    if t.shape == shape:
        return t
    pad = len(shape) - len(t.shape)
    src = (1,) * pad + t.shape
    st = strides(src)
    eff = [0 if src[k] == 1 and shape[k] != 1 else st[k] for k in range(len(shape))]
    pos = contiguous_positions(shape, eff, 0)
    return take(t, pos, shape)


def take(t: T, positions: Sequence[int], shape: Sequence[int]) -> T:
    """The elements of ``t`` (row-major) at ``positions``, as a tensor of ``shape``."""
    refs = t.refs
    vals = t.vals
    return T(shape, [refs[p] for p in positions],
             None if vals is None else [vals[p] for p in positions])


def permute(t: T, perm: Sequence[int]) -> T:
    st = strides(t.shape)
    shape = tuple(t.shape[p] for p in perm)
    return take(t, contiguous_positions(shape, [st[p] for p in perm], 0), shape)


def concat(ts: Sequence[T], axis: int) -> T:
    base = ts[0].shape
    outer = math.prod(base[:axis])
    refs: list[Ref] = []
    vals: list[float] | None = [] if all(t.vals is not None for t in ts) else None
    blocks = [(t, math.prod(t.shape[axis:])) for t in ts]
    for o in range(outer):
        for t, n in blocks:
            refs.extend(t.refs[o * n:(o + 1) * n])
            if vals is not None:
                vals.extend(t.vals[o * n:(o + 1) * n])  # type: ignore[index]
    shape = base[:axis] + (sum(t.shape[axis] for t in ts),) + base[axis + 1:]
    return T(shape, refs, vals)


def map1(t: T, fn: Callable[[Ref], Ref]) -> T:
    return T(t.shape, [fn(r) for r in t.refs])


def map2(a: T, b: T, fn: Callable[[Ref, Ref], Ref]) -> T:
    shape = broadcast_shapes(a.shape, b.shape)
    a, b = broadcast_to(a, shape), broadcast_to(b, shape)
    return T(shape, [fn(x, y) for x, y in zip(a.refs, b.refs, strict=True)])


def _groups(t: T, axes: Sequence[int]) -> tuple[T, Shape, int]:
    """``t`` permuted so ``axes`` come last, its kept shape, and the group size."""
    axes = sorted({a % len(t.shape) for a in axes}) if t.shape else []
    kept = [k for k in range(len(t.shape)) if k not in axes]
    moved = permute(t, kept + list(axes)) if axes != list(range(len(kept), len(t.shape))) \
        else t
    return moved, tuple(t.shape[k] for k in kept), math.prod(t.shape[a] for a in axes)


def reduce(t: T, axes: Sequence[int], keepdim: bool,
           fn: Callable[[list[Ref], list[float] | None], Ref]) -> T:
    """Each group of elements along ``axes`` reduced by ``fn(refs, vals)``."""
    moved, kept_shape, n = _groups(t, axes)
    refs, vals = moved.refs, moved.vals
    out = [fn(refs[i:i + n], None if vals is None else vals[i:i + n])
           for i in range(0, len(refs), n)] if n else [fn([], []) for _ in
                                                        range(math.prod(kept_shape))]
    shape = kept_shape
    if keepdim:
        axes_n = {a % len(t.shape) for a in axes} if t.shape else set()
        shape = tuple(1 if k in axes_n else d for k, d in enumerate(t.shape))
    return T(shape, out)


def reduce_sum(b: Builder, t: T, axes: Sequence[int], keepdim: bool) -> T:
    return reduce(t, axes, keepdim, lambda refs, vals: b.sum(refs))


def argmax_of(vals: Sequence[float], largest: bool = True) -> list[int]:
    """The positions of the largest (or smallest) value; NaN wins, as in both frameworks."""
    if any(v != v for v in vals):
        return [next(k for k, v in enumerate(vals) if v != v)]
    best = max(vals) if largest else min(vals)
    return [k for k, v in enumerate(vals) if v == best]


def reduce_max(b: Builder, t: T, axes: Sequence[int], keepdim: bool, largest: bool = True,
               ties: str = "mean", what: str = "max") -> T:
    """Max (min) along ``axes`` with the branch fixed at the traced values.

    ``ties="mean"``: tied elements share the result evenly (PyTorch's amax,
    max() and JAX's reduce_max gradients); ``"first"``: the first wins.
    """
    def pick(refs: list[Ref], vals: list[float] | None) -> Ref:
        if vals is None:
            raise RuntimeError("max needs the traced values")
        win = argmax_of(vals, largest)
        k = win[0]
        for j in range(len(refs)):
            if j not in win:  # the winner stood strictly out
                if largest:
                    b.split(refs[k], refs[j], True, what)
                else:
                    b.split(refs[j], refs[k], True, what)
        if ties == "mean" and len(win) > 1:
            for j in win[1:]:
                b.split(refs[k], refs[j], False, what + " (a tie)", True)
            return b.div(b.sum(refs[j] for j in win), float(len(win)))
        return refs[k]

    return reduce(t, axes, keepdim, pick)


def dot(b: Builder, xs: Sequence[Ref], ys: Sequence[Ref]) -> Ref:
    return b.sum(b.mul(x, y) for x, y in zip(xs, ys, strict=True))


def matmul(b: Builder, x: T, y: T) -> T:
    """Batched ``x @ y``: (..., n, k) @ (..., k, m), batch dimensions broadcast."""
    if len(x.shape) < 2 or len(y.shape) < 2:
        raise ValueError("matmul needs two tensors of rank 2 or more")
    n, k = x.shape[-2:]
    k2, m = y.shape[-2:]
    if k != k2:
        raise ValueError(f"matmul: {x.shape} @ {y.shape}")
    batch = broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = broadcast_to(x, batch + (n, k))
    y = broadcast_to(y, batch + (k, m))
    yt = permute(y, list(range(len(batch))) + [len(batch) + 1, len(batch)])
    out: list[Ref] = []
    xr, yr = x.refs, yt.refs
    for s in range(math.prod(batch)):
        xo, yo = s * n * k, s * m * k
        cols = [yr[yo + j * k: yo + (j + 1) * k] for j in range(m)]
        for i in range(n):
            row = xr[xo + i * k: xo + (i + 1) * k]
            out.extend(dot(b, row, col) for col in cols)
    return T(batch + (n, m), out)


def as_list(x: Any) -> list[int]:
    """An int or a sequence of ints as a list."""
    if isinstance(x, int):
        return [x]
    return [int(v) for v in x]
