"""Tracing a PyTorch function at the ATen level, and running its own backward.

The function runs once, as it is, under a ``TorchDispatchMode`` that sees
every ATen op below autograd (a custom ``autograd.Function``'s forward
included) and runs each op's real kernel, so the function computes what it
always computes and its autograd graph is the usual one. Beside it the
tracer keeps a *shadow* of memory: for every storage an input reaches, one
ref per element. Views (``view``, ``transpose``, ``select``, slicing, ...)
then need no work, since they read the same storage through their strides,
and in-place ops write the shadow as they write memory.

Each op with an input that depends on the function's inputs is lowered to
gradcert's graph: elementwise ops, reductions and products through
:mod:`gradcert.check.tensor`; ops that only move data (indexing,
``cat``, ``flip``, padding, ``index_put``...) by running the op on tensors
of element positions; everything else through PyTorch's own decomposition
table (``torch._decomp``) into ops that are lowered. An op with none of
these raises :class:`~gradcert.check.result.Untraceable` naming it.
Branches (``relu``, ``maximum``, ``clamp``, ``abs``, ``where``, ``max``)
are fixed where the function took them, with PyTorch's conventions at a
tie or a kink (``relu'(0) = 0``, ``abs'(0) = 0``, ``clamp`` passes its
bounds, a tie of ``maximum`` splits evenly). ``detach()`` makes a constant;
``torch.no_grad()`` regions and ``.data`` are traced as math.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

try:  # optional: this module is imported only for torch tensors, and by doctest collection
    import torch
    from torch._decomp import decomposition_table
    from torch.utils._python_dispatch import TorchDispatchMode
except ImportError:  # pragma: no cover - without torch, trace() says so
    torch = None  # type: ignore[assignment]
    TorchDispatchMode = object  # type: ignore[assignment, misc]

from gradcert.check.builder import Builder, Ref
from gradcert.check.judge import Traced
from gradcert.check.result import CheckError, OutsideDomain, Untraceable
from gradcert.check.tensor import (
    T,
    argmax_of,
    broadcast_to,
    contiguous_positions,
    map1,
    map2,
    matmul,
    reduce,
    reduce_max,
    reduce_sum,
)

__all__ = ["LOWER", "trace"]

_DTYPES = {"torch.float64": "float64", "torch.float32": "float32"}

Lowering = Callable[["_Tracer", dict[str, Any], Any], Any]
LOWER: dict[str, Lowering] = {}
"""ATen op (``aten.add.Tensor``, or a whole packet ``aten.add``) -> its lowering."""


def _lower(*names: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for n in names:
            LOWER[n] = fn
        return fn
    return register


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for y in x for t in _tensors(y)]
    return []


def _bind(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The op's arguments by their schema names, defaults filled in."""
    out: dict[str, Any] = {}
    for i, a in enumerate(func._schema.arguments):
        if i < len(args) and not a.kwarg_only:
            out[a.name] = args[i]
        elif a.name in kwargs:
            out[a.name] = kwargs[a.name]
        else:
            out[a.name] = a.default_value if a.has_default_value() else None
    return out


def _written(func: Any) -> list[str]:
    """Names of the arguments the op writes (``self`` of ``add_``, ``out``)."""
    return [a.name for a in func._schema.arguments
            if a.alias_info is not None and a.alias_info.is_write]


def _functional(func: Any) -> Any:
    """``aten.add.Tensor`` for ``aten.add_.Tensor``; None when there is none."""
    name = func._schema.name.split("::")[-1]
    if not name.endswith("_"):
        return None
    packet = getattr(torch.ops.aten, name[:-1], None)
    return getattr(packet, func._overloadname, None) if packet is not None else None


class _Mode(TorchDispatchMode):
    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        return self.tracer.dispatch(self, func, args, kwargs or {})


class _Tracer:
    """The shadow memory and the dispatch of one trace."""

    def __init__(self, builder: Builder) -> None:
        self.b = builder
        self.shadow: dict[int, list[Ref | None]] = {}  # storage address -> refs
        self.keep: list[torch.Tensor] = []  # alive, so no address is reused mid-trace
        self.detached: set[int] = set()  # ids of tensors made by detach() (constants)
        self.pre: dict[int, T] = {}  # this op's inputs, read before it ran

    # -- the shadow ---------------------------------------------------------

    def _key(self, t: torch.Tensor) -> int:
        return t.untyped_storage().data_ptr()

    def symbolic(self, t: torch.Tensor) -> bool:
        return (t.is_floating_point() and id(t) not in self.detached
                and self._key(t) in self.shadow and t.numel() > 0)

    def read(self, t: torch.Tensor) -> T:
        """The refs of ``t``'s elements (constants where no input reaches)."""
        got = self.pre.get(id(t))
        if got is not None:
            return got
        vals = t.detach().reshape(-1).tolist() if t.numel() else []
        if not isinstance(vals, list):
            vals = [vals]
        vals = [float(v) for v in vals]
        shape = tuple(t.shape)
        sh = self.shadow.get(self._key(t)) if self.symbolic(t) else None
        if sh is None:
            return T(shape, list(vals), vals)
        pos = contiguous_positions(shape, t.stride(), int(t.storage_offset()))
        refs: list[Ref] = [v if (r := sh[p]) is None else r
                           for p, v in zip(pos, vals, strict=True)]
        return T(shape, refs, vals)

    def write(self, t: torch.Tensor, value: T) -> None:
        """Store ``value`` (broadcast to ``t``'s shape) as ``t``'s elements."""
        if not t.is_floating_point() or t.numel() == 0:
            return
        shape = tuple(t.shape)
        value = broadcast_to(value, shape)
        key = self._key(t)
        sh = self.shadow.get(key)
        if sh is None:
            if not value.symbolic():
                return
            sh = self.shadow[key] = [None] * (t.untyped_storage().nbytes() // t.element_size())
        self.keep.append(t)
        pos = contiguous_positions(shape, t.stride(), int(t.storage_offset()))
        for p, r in zip(pos, value.refs, strict=True):
            sh[p] = r if type(r) is int else None

    def t(self, x: Any) -> T:
        """An operand as a tensor of refs: a tensor, or a Python number."""
        if isinstance(x, torch.Tensor):
            return self.read(x)
        if isinstance(x, (bool, int, float)):
            return T((), [float(x)], [float(x)])
        raise Untraceable(type(x).__name__, f"an operand of type {type(x).__name__}")

    # -- dispatch -----------------------------------------------------------

    def dispatch(self, mode: _Mode, func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        ins = _tensors(args) + _tensors(list(kwargs.values()))
        if func.is_view or str(func) in _ALIASES:
            out = func(*args, **kwargs)
            if str(func) == "aten.detach.default" or any(id(t) in self.detached for t in ins):
                for o in _tensors(out):
                    self.detached.add(id(o))
                    self.keep.append(o)
            return out
        symbolic = [t for t in ins if self.symbolic(t)]
        if not symbolic:
            written = _written(func)
            out = func(*args, **kwargs)
            if written:  # constants written over traced elements
                bound = _bind(func, args, kwargs)
                for name in written:
                    for t in _tensors(bound.get(name)):
                        if self._key(t) in self.shadow:
                            self.write(t, T(tuple(t.shape), [0.0] * t.numel()))
            return out
        try:
            return self._lowered(mode, func, args, kwargs, ins)
        except Untraceable as e:
            if e.op == str(func):
                raise
            if e.op.startswith(("aten.", "prims.")):  # an op inside the decomposition
                raise Untraceable(str(func), f"its decomposition uses {e.op}, which cannot be "
                                             f"traced: {e.reason}", e.row) from None
            raise Untraceable(str(func), e.reason, e.row) from None

    def _lowered(self, mode: _Mode, func: Any, args: Any, kwargs: dict[str, Any],
                 ins: list[torch.Tensor]) -> Any:
        written = _written(func)
        target = func
        if written:
            target = _functional(func)
            if target is None or "out" in written:
                raise Untraceable(str(func), "an in-place or out= op without a functional "
                                             "twin")
        key = str(target)
        lower = LOWER.get(key) or LOWER.get(key.rsplit(".", 1)[0])
        saved = self.pre
        self.pre = {id(t): self.read(t) for t in ins if t.is_floating_point()}
        try:
            if lower is not None:
                if written:
                    result = lower(self, _bind(target, args, kwargs), None)
                    out = func(*args, **kwargs)
                else:
                    out = func(*args, **kwargs)
                    result = lower(self, _bind(target, args, kwargs), out)
            elif str(target.overloadpacket) in _MOVES:
                result = self._moved(target, args, kwargs)
                out = func(*args, **kwargs)
            else:
                if not written:
                    out = func(*args, **kwargs)
                    if not any(t.is_floating_point() for t in _tensors(out)):
                        return out  # an index, a mask, a Python number: nothing to trace
                if str(target.overloadpacket) in _CONSTANT_PACKETS:
                    result = None  # piecewise constant, or a fill
                else:
                    decomp = decomposition_table.get(target)
                    if decomp is None:
                        raise Untraceable(str(func), "no lowering and no decomposition")
                    self.pre = saved
                    with mode:
                        dres = decomp(*args, **kwargs)
                    result = [self.read(t) if isinstance(t, torch.Tensor) else None
                              for t in (dres if isinstance(dres, (list, tuple)) else [dres])]
                if written:
                    out = func(*args, **kwargs)
        finally:
            self.pre = saved
        if written:
            dest = _bind(func, args, kwargs)[written[0]]
            self.write(dest, _first(result) if result is not None else
                       T(tuple(dest.shape), [0.0] * dest.numel()))  # a constant fill
            return out
        outs = out if isinstance(out, (list, tuple)) else [out]
        results = result if isinstance(result, (list, tuple)) else [result]
        in_keys = {self._key(t) for t in ins}
        for o, r in zip(outs, results, strict=False):
            if isinstance(o, torch.Tensor) and r is not None and o.is_floating_point():
                if self._key(o) in in_keys and o.numel():
                    continue  # an alias of an input (_unsafe_view): nothing new
                self.write(o, r)
        return out

    def _moved(self, func: Any, args: Any, kwargs: dict[str, Any]) -> list[T | None]:
        """An op that only moves data: run it on element positions to see what went
        where (twice, the second time shifted, to tell moved elements from fills)."""
        sources: list[torch.Tensor] = [t for t in _tensors(args) + _tensors(list(kwargs.values()))
                                       if t.is_floating_point()]
        offsets: dict[int, int] = {}
        flat: list[Ref] = []
        for t in sources:
            if id(t) not in offsets:
                offsets[id(t)] = len(flat)
                flat.extend(self.read(t).refs)

        def positions(x: Any, shift: float) -> Any:
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                first = offsets[id(x)] + 1.0 + shift
                return (torch.arange(x.numel(), dtype=torch.float64) + first).reshape(x.shape)
            if isinstance(x, (list, tuple)):
                return type(x)(positions(y, shift) for y in x)
            return x

        big = 2.0**40
        o1 = func(*positions(list(args), 0.0), **{k: positions(v, 0.0) for k, v in kwargs.items()})
        o2 = func(*positions(list(args), big), **{k: positions(v, big) for k, v in kwargs.items()})
        out: list[T | None] = []
        for p1, p2 in zip(_tensors(o1), _tensors(o2), strict=True):
            if not p1.is_floating_point():
                out.append(None)
                continue
            v1, v2 = p1.reshape(-1).tolist(), p2.reshape(-1).tolist()
            refs: list[Ref] = [flat[int(x) - 1] if y - x == big else float(x)
                               for x, y in zip(v1, v2, strict=True)]
            out.append(T(tuple(p1.shape), refs))
        return out


def _first(result: Any) -> T:
    if isinstance(result, (list, tuple)):
        result = result[0]
    if not isinstance(result, T):
        raise Untraceable("an in-place op", "its lowering gave no tensor")
    return result


_ALIASES = {"aten._unsafe_view.default", "aten.lift_fresh.default"}
_CONSTANT_PACKETS = {f"aten.{n}" for n in (
    "sign", "floor", "ceil", "round", "trunc", "zeros_like", "ones_like", "full_like",
    "empty_like", "rand_like", "randn_like", "bernoulli", "fill", "zero", "new_zeros",
    "new_ones", "new_full", "new_empty", "new_empty_strided", "empty_strided", "heaviside",
    "sgn", "randint_like", "uniform", "normal", "exponential")}
_MOVES = {f"aten.{n}" for n in (
    "index", "index_select", "gather", "take", "flip", "roll", "repeat", "cat", "stack",
    "constant_pad_nd", "tril", "triu", "embedding", "narrow_copy", "slice_scatter",
    "select_scatter", "diagonal_scatter", "masked_scatter", "clone", "copy", "expand_copy",
    "permute_copy", "view_copy", "t_copy", "transpose_copy", "alias_copy", "squeeze_copy",
    "unsqueeze_copy", "select_copy", "slice_copy", "diagonal_copy", "lift_fresh_copy",
    "unfold_copy", "split_copy", "split_with_sizes_copy", "unbind_copy", "reflection_pad1d",
    "reflection_pad2d", "replication_pad1d", "replication_pad2d", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "movedim", "repeat_interleave", "unfold")}


def _index_put_moves(tr: _Tracer, a: dict[str, Any], out: Any) -> Any:
    if a.get("accumulate"):
        raise Untraceable("aten.index_put", "index_put with accumulate=True")
    return tr._moved(torch.ops.aten.index_put.default,
                     [a["self"], a["indices"], a["values"], False], {})


LOWER["aten.index_put"] = _index_put_moves


# ---------------------------------------------------------------------------
# Lowerings. Each takes the tracer, the op's arguments by schema name, and its
# real output (None for an in-place op), and returns the output(s) as T.


def _alpha(tr: _Tracer, x: T, alpha: Any) -> T:
    if alpha is None or alpha == 1:
        return x
    return map1(x, lambda r: tr.b.mul(r, float(alpha)))


@_lower("aten.add")
def _add(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), _alpha(tr, tr.t(a["other"]), a.get("alpha")), tr.b.add)


@_lower("aten.sub")
def _sub(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), _alpha(tr, tr.t(a["other"]), a.get("alpha")), tr.b.sub)


@_lower("aten.rsub")
def _rsub(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["other"]), _alpha(tr, tr.t(a["self"]), a.get("alpha")), tr.b.sub)


@_lower("aten.mul")
def _mul(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), tr.t(a["other"]), tr.b.mul)


@_lower("aten.div.Tensor", "aten.div.Scalar")
def _div(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), tr.t(a["other"]), tr.b.div)


@_lower("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def _div_mode(tr: _Tracer, a: dict[str, Any], out: Any) -> T | None:
    if a.get("rounding_mode") is None:
        return _div(tr, a, out)
    return None  # floor or trunc division: piecewise constant


@_lower("aten.pow.Tensor_Scalar")
def _pow_scalar(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    c = float(a["exponent"])
    return map1(tr.t(a["self"]), lambda r: tr.b.powc(r, c))


@_lower("aten.pow.Tensor_Tensor", "aten.pow.Scalar")
def _pow(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x, y = tr.t(a["self"]), tr.t(a["exponent"])
    shape = tuple(out.shape) if out is not None else None
    xb = broadcast_to(x, shape or x.shape)
    yb = broadcast_to(y, shape or y.shape)
    b = tr.b
    return T(xb.shape, [b.pow(r, e, xb.val(k) > 0) if type(e) is int else b.powc(r, e)
                        for k, (r, e) in enumerate(zip(xb.refs, yb.refs, strict=True))])


def _unary(name: str) -> Lowering:
    def lower(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
        return map1(tr.t(a["self"]), getattr(tr.b, name))
    return lower


for _name in ("neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "tanh", "sigmoid",
              "sin", "cos", "erf"):
    LOWER[f"aten.{_name}"] = _unary(_name)


@_lower("aten.erfc")
def _erfc(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map1(tr.t(a["self"]), lambda r: tr.b.sub(1.0, tr.b.erf(r)))


@_lower("aten.reciprocal")
def _reciprocal(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map1(tr.t(a["self"]), lambda r: tr.b.div(1.0, r))


@_lower("aten.log_sigmoid", "aten.log_sigmoid_forward")
def _log_sigmoid(tr: _Tracer, a: dict[str, Any], out: Any) -> Any:
    """log(sigmoid(x)) = x - log1p(exp(x)) = -log1p(exp(-x)): exact either way; the
    form that keeps exp in range is picked by the sign."""
    x = tr.t(a["self"])
    b = tr.b
    y = T(x.shape, [b.sub(r, b.log1p(b.exp(r))) if x.val(k) < 0 else
                    b.neg(b.log1p(b.exp(b.neg(r)))) for k, r in enumerate(x.refs)])
    return [y, None] if isinstance(out, (tuple, list)) else y


@_lower("aten.relu")
def _relu(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b
    return T(x.shape, [r if b.split(r, 0.0, x.val(k) > 0, "relu", x.val(k) == 0) else 0.0
                       for k, r in enumerate(x.refs)])


@_lower("aten.abs")
def _abs(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b
    refs: list[Ref] = []
    for k, r in enumerate(x.refs):
        v = x.val(k)
        b.split(r, 0.0, v > 0, "abs", v == 0)
        refs.append(r if v > 0 else b.neg(r) if v < 0 else 0.0)  # abs'(0) = 0
    return T(x.shape, refs)


def _pick(tr: _Tracer, x: T, y: T, largest: bool, what: str) -> T:
    """Elementwise max (min) of x and y, branch fixed; a tie averages (PyTorch's rule)."""
    shape = tuple(broadcast_to(x, _shape2(x, y)).shape)
    x, y = broadcast_to(x, shape), broadcast_to(y, shape)
    b = tr.b
    refs: list[Ref] = []
    for k, (r, s) in enumerate(zip(x.refs, y.refs, strict=True)):
        u, v = x.val(k), y.val(k)
        if u == v:
            b.split(r, s, False, what + " (a tie)", True)
            refs.append(b.div(b.add(r, s), 2.0))
            continue
        first = u != u or (v == v and (u > v) == largest)  # NaN wins, as in PyTorch
        b.split(r, s, u > v, what)
        refs.append(r if first else s)
    return T(shape, refs)


def _shape2(x: T, y: T) -> tuple[int, ...]:
    from gradcert.check.tensor import broadcast_shapes

    return broadcast_shapes(x.shape, y.shape)


@_lower("aten.maximum")
def _maximum(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _pick(tr, tr.t(a["self"]), tr.t(a["other"]), True, "maximum")


@_lower("aten.minimum")
def _minimum(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _pick(tr, tr.t(a["self"]), tr.t(a["other"]), False, "minimum")


def _clamp(tr: _Tracer, x: T, lo: T | None, hi: T | None) -> T:
    """clamp with PyTorch's gradient rule: x passes where lo <= x <= hi (bounds included)."""
    shape = x.shape
    for bound in (lo, hi):
        if bound is not None:
            shape = _shape2(T(shape, [0.0] * math.prod(shape)), bound)
    x = broadcast_to(x, shape)
    lo = broadcast_to(lo, shape) if lo is not None else None
    hi = broadcast_to(hi, shape) if hi is not None else None
    b = tr.b
    refs: list[Ref] = []
    for k, r in enumerate(x.refs):
        v = x.val(k)
        if lo is not None and not b.split(r, lo.refs[k], v >= lo.val(k), "clamp",
                                          v == lo.val(k)):
            refs.append(lo.refs[k])
        elif hi is not None and not b.split(hi.refs[k], r, hi.val(k) >= v, "clamp",
                                            v == hi.val(k)):
            refs.append(hi.refs[k])
        else:
            refs.append(r)
    return T(shape, refs)


def _opt(tr: _Tracer, x: Any) -> T | None:
    return None if x is None else tr.t(x)


@_lower("aten.clamp")
def _clamp_op(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _clamp(tr, tr.t(a["self"]), _opt(tr, a.get("min")), _opt(tr, a.get("max")))


@_lower("aten.clamp_min")
def _clamp_min(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _clamp(tr, tr.t(a["self"]), tr.t(a["min"]), None)


@_lower("aten.clamp_max")
def _clamp_max(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _clamp(tr, tr.t(a["self"]), None, tr.t(a["max"]))


def _where(cond: T, x: T, y: T) -> T:
    from gradcert.check.tensor import broadcast_shapes

    shape = broadcast_shapes(cond.shape, x.shape, y.shape)
    c, x, y = broadcast_to(cond, shape), broadcast_to(x, shape), broadcast_to(y, shape)
    return T(shape, [xr if c.val(k) else yr
                     for k, (xr, yr) in enumerate(zip(x.refs, y.refs, strict=True))])


@_lower("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther",
        "aten.where.Scalar")
def _where_op(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _where(tr.t(a["condition"]), tr.t(a["self"]), tr.t(a["other"]))


@_lower("aten.masked_fill")
def _masked_fill(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _where(tr.t(a["mask"]), tr.t(a["value"]), tr.t(a["self"]))


def _compare(first: bool, what: str) -> Lowering:
    """gt/ge/lt/le: no float output, but each element's branch is recorded."""
    def lower(tr: _Tracer, a: dict[str, Any], out: Any) -> None:
        x, y = tr.t(a["self"]), tr.t(a["other"])
        shape = _shape2(x, y)
        x, y = broadcast_to(x, shape), broadcast_to(y, shape)
        res = out.reshape(-1).tolist() if out is not None else []
        for k, (r, s) in enumerate(zip(x.refs, y.refs, strict=True)):
            tie = x.val(k) == y.val(k)
            if first:
                tr.b.split(r, s, bool(res[k]), what, tie)
            else:
                tr.b.split(s, r, bool(res[k]), what, tie)
        return None
    return lower


LOWER.update({"aten.gt": _compare(True, "x > y"), "aten.ge": _compare(True, "x >= y"),
              "aten.lt": _compare(False, "x < y"), "aten.le": _compare(False, "x <= y")})


@_lower("aten._to_copy", "prims.convert_element_type", "aten.lift_fresh_copy",
        "aten.clone", "aten.contiguous", "aten.alias_copy")
def _identity(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return tr.t(a.get("self", a.get("a")))


@_lower("aten.copy")
def _copy(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    dst = tr.t(a["self"])
    return broadcast_to(tr.t(a["src"]), dst.shape)


# -- reductions ---------------------------------------------------------------


def _dims(dim: Any, ndim: int) -> list[int]:
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    if isinstance(dim, int):
        dim = [dim]
    return [d % ndim if ndim else 0 for d in dim]


@_lower("aten.sum")
def _sum(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    return reduce_sum(tr.b, x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")))


@_lower("aten.mean")
def _mean(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    dims = _dims(a.get("dim"), len(x.shape))
    n = float(math.prod(x.shape[d] for d in dims))
    s = reduce_sum(tr.b, x, dims, bool(a.get("keepdim")))
    return map1(s, lambda r: tr.b.div(r, n))


@_lower("aten.amax", "aten.max.default")
def _amax(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    return reduce_max(tr.b, x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")),
                      True, "mean", "max")


@_lower("aten.amin", "aten.min.default")
def _amin(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    return reduce_max(tr.b, x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")),
                      False, "mean", "min")


def _by_index(largest: bool | None, what: str) -> Lowering:
    """max.dim, min.dim, sort, topk...: values are the input at the indices PyTorch chose."""
    def lower(tr: _Tracer, a: dict[str, Any], out: Any) -> list[T | None]:
        values, indices = out[0], out[1]
        x = tr.t(a["self"])
        ndim = len(x.shape)
        given = a.get("dim")
        dim = (-1 if given is None else int(given)) % max(ndim, 1)
        if not ndim:
            return [T((), [x.refs[0]]), None]
        idx = indices if indices.dim() == ndim else indices.unsqueeze(dim)
        pos = torch.arange(x.size, dtype=torch.int64).reshape(x.shape)
        chosen = torch.gather(pos, dim, idx).reshape(-1).tolist()
        if largest is not None:
            _record_rank(tr, x, dim, chosen, largest, what)
        return [T(tuple(values.shape), [x.refs[p] for p in chosen]), None]
    return lower


def _record_rank(tr: _Tracer, x: T, dim: int, chosen: list[int], largest: bool,
                 what: str) -> None:
    """For max.dim/min.dim: the winner against every other element of its row."""
    st = 1
    for d in x.shape[dim + 1:]:
        st *= d
    n = x.shape[dim]
    for p in chosen:
        base = p - ((p // st) % n) * st
        for j in range(n):
            q = base + j * st
            if q != p:
                if x.val(q) == x.val(p):
                    tr.b.split(x.refs[p], x.refs[q], False, what + " (a tie)", True)
                elif largest:
                    tr.b.split(x.refs[p], x.refs[q], True, what)
                else:
                    tr.b.split(x.refs[q], x.refs[p], True, what)


LOWER.update({"aten.max.dim": _by_index(True, "max"), "aten.min.dim": _by_index(False, "min"),
              "aten.sort": _by_index(None, "sort"), "aten.topk": _by_index(None, "topk"),
              "aten.kthvalue": _by_index(None, "kthvalue"),
              "aten.median.dim": _by_index(None, "median")})


def _shifted_exp_sum(tr: _Tracer, refs: list[Ref], vals: list[float] | None,
                     ) -> tuple[Ref, list[Ref]]:
    """The row's max element m (any value is exact; the max keeps exp in range),
    and exp(x - m) for every element."""
    assert vals is not None
    m = refs[argmax_of(vals)[0]] if refs else 0.0
    if type(m) is not int and not math.isfinite(m):
        m = 0.0
    b = tr.b
    return m, [b.exp(b.sub(r, m)) for r in refs]


def _softmax_like(log: bool) -> Lowering:
    def lower(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
        x = tr.t(a["self"])
        ndim = len(x.shape)
        dim = a["dim"] % max(ndim, 1)
        b = tr.b
        perm = [d for d in range(ndim) if d != dim] + [dim]
        from gradcert.check.tensor import permute

        xp = permute(x, perm) if ndim else x
        n = x.shape[dim] if ndim else 1
        refs: list[Ref] = []
        for i in range(0, max(xp.size, 1), n):
            row = xp.refs[i:i + n]
            m, es = _shifted_exp_sum(tr, row, xp.vals[i:i + n] if xp.vals else None)
            s = b.sum(es)
            if log:
                ls = b.log(s)
                refs.extend(b.sub(b.sub(r, m), ls) for r in row)
            else:
                refs.extend(b.div(e, s) for e in es)
        res = T(xp.shape, refs)
        inv = [perm.index(d) for d in range(ndim)]
        return permute(res, inv) if ndim else res
    return lower


LOWER["aten._softmax"] = _softmax_like(False)
LOWER["aten._log_softmax"] = _softmax_like(True)


@_lower("aten.logsumexp")
def _logsumexp(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b

    def lse(refs: list[Ref], vals: list[float] | None) -> Ref:
        m, es = _shifted_exp_sum(tr, refs, vals)
        return b.add(m, b.log(b.sum(es)))

    return reduce(x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")), lse)


def _var(tr: _Tracer, a: dict[str, Any]) -> tuple[T, T]:
    """The variance (with its correction) and the mean."""
    x = tr.t(a["self"])
    b = tr.b
    dims = _dims(a.get("dim"), len(x.shape))
    n = float(math.prod(x.shape[d] for d in dims))
    c = a.get("correction")
    c = (1.0 if a.get("unbiased", True) else 0.0) if c is None else float(c)
    mean = map1(reduce_sum(b, x, dims, True), lambda r: b.div(r, n))
    dev = map2(x, mean, b.sub)
    var = map1(reduce_sum(b, map1(dev, lambda r: b.mul(r, r)), dims, True),
               lambda r: b.div(r, n - c))
    if not a.get("keepdim"):
        kept = tuple(d for k, d in enumerate(x.shape) if k not in dims)
        var, mean = var.reshape(kept), mean.reshape(kept)
    return var, mean


@_lower("aten.var")
def _var_op(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return _var(tr, a)[0]


@_lower("aten.std")
def _std(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return map1(_var(tr, a)[0], tr.b.sqrt)


@_lower("aten.var_mean")
def _var_mean(tr: _Tracer, a: dict[str, Any], out: Any) -> list[T]:
    return list(_var(tr, a))


@_lower("aten.std_mean")
def _std_mean(tr: _Tracer, a: dict[str, Any], out: Any) -> list[T]:
    var, mean = _var(tr, a)
    return [map1(var, tr.b.sqrt), mean]


@_lower("aten.prod")
def _prod(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b

    def product(refs: list[Ref], vals: list[float] | None) -> Ref:
        acc: Ref = 1.0
        for r in refs:
            acc = b.mul(acc, r)
        return acc

    return reduce(x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")), product)


@_lower("aten.cumsum")
def _cumsum(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    ndim = len(x.shape)
    if not ndim:
        return x
    dim = a["dim"] % ndim
    from gradcert.check.tensor import permute

    perm = [d for d in range(ndim) if d != dim] + [dim]
    xp = permute(x, perm)
    n = x.shape[dim]
    refs: list[Ref] = []
    for i in range(0, xp.size, n):
        acc: Ref = 0.0
        for r in xp.refs[i:i + n]:
            acc = tr.b.add(acc, r)
            refs.append(acc)
    return permute(T(xp.shape, refs), [perm.index(d) for d in range(ndim)])


@_lower("aten.native_layer_norm")
def _layer_norm(tr: _Tracer, a: dict[str, Any], out: Any) -> list[T]:
    x = tr.t(a["input"])
    k = len(a["normalized_shape"])
    dims = list(range(len(x.shape) - k, len(x.shape)))
    n = float(math.prod(x.shape[d] for d in dims))
    b = tr.b
    eps = float(a["eps"])
    mean = map1(reduce_sum(b, x, dims, True), lambda r: b.div(r, n))
    centred = map2(x, mean, b.sub)
    var = map1(reduce_sum(b, map1(centred, lambda r: b.mul(r, r)), dims, True),
               lambda r: b.div(r, n))
    rstd = map1(var, lambda r: b.rsqrt(b.add(r, eps)))
    y = map2(centred, rstd, b.mul)
    if a.get("weight") is not None:
        y = map2(y, tr.t(a["weight"]), b.mul)
    if a.get("bias") is not None:
        y = map2(y, tr.t(a["bias"]), b.add)
    return [y, mean, rstd]


# -- products -----------------------------------------------------------------


@_lower("aten.mm", "aten.bmm", "aten.matmul")
def _mm(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    return matmul(tr.b, tr.t(a["self"]), tr.t(a.get("mat2", a.get("other"))))


@_lower("aten.mv")
def _mv(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    v = tr.t(a["vec"])
    y = matmul(tr.b, tr.t(a["self"]), v.reshape(v.shape + (1,)))
    return y.reshape(y.shape[:-1])


@_lower("aten.dot", "aten.vdot")
def _dot(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    x, y = tr.t(a["self"]), tr.t(a["tensor"])
    from gradcert.check.tensor import dot

    return T((), [dot(tr.b, x.refs, y.refs)])


def _scaled(tr: _Tracer, x: T, c: Any) -> T:
    return x if c is None or c == 1 else map1(x, lambda r: tr.b.mul(r, float(c)))


@_lower("aten.addmm", "aten.baddbmm")
def _addmm(tr: _Tracer, a: dict[str, Any], out: Any) -> T:
    m1 = a.get("mat1", a.get("batch1"))
    m2 = a.get("mat2", a.get("batch2"))
    prod = _scaled(tr, matmul(tr.b, tr.t(m1), tr.t(m2)), a.get("alpha"))
    if a.get("beta") == 0:
        return prod
    return map2(_scaled(tr, tr.t(a["self"]), a.get("beta")), prod, tr.b.add)


# ---------------------------------------------------------------------------
# The trace.


def _dtype(ts: Sequence[torch.Tensor]) -> str:
    names = set()
    for t in ts:
        name = _DTYPES.get(str(t.dtype))
        if name is None:
            raise CheckError(f"tensors of {t.dtype} are not modelled: use float64 or float32")
        names.add(name)
    return "float32" if "float32" in names else "float64"


def _outputs(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _outputs(o)]
    if out is None or isinstance(out, (int, float, bool)):
        return []
    raise CheckError(f"the function returned a {type(out).__name__}: return tensors "
                     f"(or a tuple of them)")


def trace(f: Callable[..., Any], args: Sequence[Any], symbolic: bool = True) -> Traced:
    """Run ``f(*args)`` under the tracer; pair the trace with ``torch.autograd.grad``."""
    if torch is None:
        raise CheckError("PyTorch is not installed")
    floats = [(i, a) for i, a in enumerate(args)
              if isinstance(a, torch.Tensor) and a.is_floating_point()]
    if any(a.requires_grad for _, a in floats):
        floats = [(i, a) for i, a in floats if a.requires_grad]
    if not floats:
        raise CheckError("no floating-point tensor among the inputs: nothing to differentiate")
    dtype = _dtype([a for _, a in floats])
    for i, a in floats:
        if not bool(torch.isfinite(a).all()):
            raise CheckError(f"input {i} has a non-finite element")
    b = Builder()
    tracer = _Tracer(b)
    call = list(args)
    xs = []
    for i, a in floats:
        x = a.detach().clone().contiguous().requires_grad_(True)
        call[i] = x
        xs.append(x)
        if symbolic:
            refs: list[Ref] = [b.input(v) for v in x.detach().reshape(-1).tolist()]
            tracer.write(x, T(tuple(x.shape), refs))
    try:
        if symbolic:
            with _Mode(tracer):
                out = f(*call)
        else:
            out = f(*call)
    except (ArithmeticError, RuntimeError, ValueError) as e:
        if isinstance(e, CheckError):
            raise
        raise OutsideDomain(f"the function raised {type(e).__name__}: {e}") from e
    outs = [o for o in _outputs(out) if o.is_floating_point()]
    if not outs:
        raise CheckError("the function returned no floating-point tensor")
    dtype = "float32" if dtype == "float32" or _dtype(outs) == "float32" else "float64"
    results = [tracer.read(o) if symbolic else T(tuple(o.shape), [0.0] * o.numel(),
               [float(v) for v in o.detach().reshape(-1).tolist()]) for o in outs]
    live = [o for o in outs if o.requires_grad]

    def vjp(cts: list[list[float]]) -> list[list[float]]:
        if not live:
            return [[0.0] * x.numel() for x in xs]
        grads_out = [torch.tensor(c, dtype=o.dtype).reshape(o.shape)
                     for c, o in zip(cts, outs, strict=True) if o.requires_grad]
        try:
            gs = torch.autograd.grad(live, xs, grads_out, retain_graph=True, allow_unused=True)
        except RuntimeError as e:
            raise CheckError(f"the backward raised: {e}") from e
        return [[0.0] * x.numel() if g is None else
                [float(v) for v in g.detach().reshape(-1).tolist()] for g, x in zip(gs, xs,
                                                                                  strict=True)]

    def evaluate(flat: list[float]) -> list[float]:
        new = list(args)
        at = 0
        for (i, a), x in zip(floats, xs, strict=True):
            n = x.numel()
            new[i] = torch.tensor(flat[at:at + n], dtype=a.dtype).reshape(a.shape)
            at += n
        with torch.no_grad():
            got = [o for o in _outputs(f(*new)) if o.is_floating_point()]
        return [float(v) for o in got for v in o.reshape(-1).tolist()]

    x0 = [float(v) for x in xs for v in x.detach().reshape(-1).tolist()]
    return Traced(b, results, [tuple(x.shape) for x in xs], [i for i, _ in floats], dtype,
                  vjp, f"torch {torch.__version__}", evaluate=evaluate, x0=x0)


_GRADCHECK_ERROR: list[type] = []


def gradcheck_error() -> type:
    """An exception that is both torch's ``GradcheckError`` and check_grads'
    ``GradientMismatch`` (made once, on first need)."""
    if not _GRADCHECK_ERROR:
        from torch.autograd.gradcheck import GradcheckError

        from gradcert.check.result import GradientMismatch

        class GradcertGradcheckError(GradcheckError, GradientMismatch):
            """gradcert.torch.gradcheck's failure: check_grads' result in ``.result``."""

            def __init__(self, result: Any) -> None:
                GradientMismatch.__init__(self, result)

        _GRADCHECK_ERROR.append(GradcertGradcheckError)
    return _GRADCHECK_ERROR[0]
