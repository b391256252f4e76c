"""How each ATen op is lowered to tensors of refs, for the PyTorch tracer.

``LOWER`` maps an op (``aten.add.Tensor``, or a whole packet ``aten.add``) to
its lowering: a function of the tracer (``tr.b`` its builder, ``tr.t(x)`` an
operand as a :class:`~gradcert.check.tensor.T`), the op's arguments by
their schema names, and its real output (None for an in-place op), which
returns the output(s) as T. Branches are fixed at the values PyTorch
computed, with PyTorch's conventions at a tie (see ``torch_trace``). This
module imports no torch: it reads tensors through their methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gradcert.check.builder import Ref
from gradcert.check.tensor import (
    T,
    argmax_of,
    broadcast_shapes,
    broadcast_to,
    contiguous_positions,
    dot,
    map1,
    map2,
    matmul,
    permute,
    reduce,
    reduce_max,
    reduce_sum,
    strides,
)

__all__ = ["LOWER"]

Lowering = Callable[[Any, dict[str, Any], Any], Any]
LOWER: dict[str, Lowering] = {}
"""ATen op (``aten.add.Tensor``, or a whole packet ``aten.add``) -> its lowering."""


def _lower(*names: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        for n in names:
            LOWER[n] = fn
        return fn
    return register



def _alpha(tr: Any, x: T, alpha: Any) -> T:
    if alpha is None or alpha == 1:
        return x
    return map1(x, lambda r: tr.b.mul(r, float(alpha)))


@_lower("aten.add")
def _add(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), _alpha(tr, tr.t(a["other"]), a.get("alpha")), tr.b.add)


@_lower("aten.sub")
def _sub(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), _alpha(tr, tr.t(a["other"]), a.get("alpha")), tr.b.sub)


@_lower("aten.rsub")
def _rsub(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["other"]), _alpha(tr, tr.t(a["self"]), a.get("alpha")), tr.b.sub)


@_lower("aten.mul")
def _mul(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), tr.t(a["other"]), tr.b.mul)


@_lower("aten.div.Tensor", "aten.div.Scalar")
def _div(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map2(tr.t(a["self"]), tr.t(a["other"]), tr.b.div)


@_lower("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def _div_mode(tr: Any, a: dict[str, Any], out: Any) -> T | None:
    if a.get("rounding_mode") is None:
        return _div(tr, a, out)
    return None  # floor or trunc division: piecewise constant


@_lower("aten.pow.Tensor_Scalar")
def _pow_scalar(tr: Any, a: dict[str, Any], out: Any) -> T:
    c = float(a["exponent"])
    return map1(tr.t(a["self"]), lambda r: tr.b.powc(r, c))


@_lower("aten.pow.Tensor_Tensor", "aten.pow.Scalar")
def _pow(tr: Any, a: dict[str, Any], out: Any) -> T:
    x, y = tr.t(a["self"]), tr.t(a["exponent"])
    shape = tuple(out.shape) if out is not None else None
    xb = broadcast_to(x, shape or x.shape)
    yb = broadcast_to(y, shape or y.shape)
    b = tr.b
    return T(xb.shape, [b.pow(r, e, xb.val(k) > 0) if type(e) is int else b.powc(r, e)
                        for k, (r, e) in enumerate(zip(xb.refs, yb.refs, strict=True))])


def _unary(name: str) -> Lowering:
    def lower(tr: Any, a: dict[str, Any], out: Any) -> T:
        return map1(tr.t(a["self"]), getattr(tr.b, name))
    return lower


for _name in ("neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "tanh", "sigmoid",
              "sin", "cos", "erf"):
    LOWER[f"aten.{_name}"] = _unary(_name)


@_lower("aten.erfc")
def _erfc(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map1(tr.t(a["self"]), lambda r: tr.b.sub(1.0, tr.b.erf(r)))


@_lower("aten.reciprocal")
def _reciprocal(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map1(tr.t(a["self"]), lambda r: tr.b.div(1.0, r))


@_lower("aten.log_sigmoid", "aten.log_sigmoid_forward")
def _log_sigmoid(tr: Any, a: dict[str, Any], out: Any) -> Any:
    """log(sigmoid(x)) = x - log1p(exp(x)) = -log1p(exp(-x)): exact either way; the
    form that keeps exp in range is picked by the sign."""
    x = tr.t(a["self"])
    b = tr.b
    y = T(x.shape, [b.sub(r, b.log1p(b.exp(r))) if x.val(k) < 0 else
                    b.neg(b.log1p(b.exp(b.neg(r)))) for k, r in enumerate(x.refs)])
    return [y, None] if isinstance(out, (tuple, list)) else y


@_lower("aten.relu")
def _relu(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b
    return T(x.shape, [r if b.split(r, 0.0, x.val(k) > 0, "relu", x.val(k) == 0) else 0.0
                       for k, r in enumerate(x.refs)])


@_lower("aten.abs")
def _abs(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b
    refs: list[Ref] = []
    for k, r in enumerate(x.refs):
        v = x.val(k)
        b.split(r, 0.0, v > 0, "abs", v == 0)
        refs.append(b.abs(r))  # the row's abs'(0) = 0 is PyTorch's
    return T(x.shape, refs)


def _pick(tr: Any, x: T, y: T, largest: bool, what: str) -> T:
    """Elementwise max (min) of x and y as the max (min) row; a tie splits evenly."""
    shape = tuple(broadcast_to(x, _shape2(x, y)).shape)
    x, y = broadcast_to(x, shape), broadcast_to(y, shape)
    b = tr.b
    refs: list[Ref] = []
    for k, (r, s) in enumerate(zip(x.refs, y.refs, strict=True)):
        u, v = x.val(k), y.val(k)
        if u != u or v != v:  # NaN wins, as in PyTorch
            refs.append(r if u != u else s)
            continue
        b.split(r, s, u > v, what + (" (a tie)" if u == v else ""), u == v)
        refs.append(b.pick(r, s, largest))  # a tie splits evenly: PyTorch's rule, the row's
    return T(shape, refs)


def _shape2(x: T, y: T) -> tuple[int, ...]:
    return broadcast_shapes(x.shape, y.shape)


@_lower("aten.maximum")
def _maximum(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _pick(tr, tr.t(a["self"]), tr.t(a["other"]), True, "maximum")


@_lower("aten.minimum")
def _minimum(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _pick(tr, tr.t(a["self"]), tr.t(a["other"]), False, "minimum")


def _clamp(tr: Any, x: T, lo: T | None, hi: T | None) -> T:
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


def _opt(tr: Any, x: Any) -> T | None:
    return None if x is None else tr.t(x)


@_lower("aten.clamp")
def _clamp_op(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _clamp(tr, tr.t(a["self"]), _opt(tr, a.get("min")), _opt(tr, a.get("max")))


@_lower("aten.clamp_min")
def _clamp_min(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _clamp(tr, tr.t(a["self"]), tr.t(a["min"]), None)


@_lower("aten.clamp_max")
def _clamp_max(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _clamp(tr, tr.t(a["self"]), None, tr.t(a["max"]))


def _where(cond: T, x: T, y: T) -> T:
    shape = broadcast_shapes(cond.shape, x.shape, y.shape)
    c, x, y = broadcast_to(cond, shape), broadcast_to(x, shape), broadcast_to(y, shape)
    return T(shape, [xr if c.val(k) else yr
                     for k, (xr, yr) in enumerate(zip(x.refs, y.refs, strict=True))])


@_lower("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther",
        "aten.where.Scalar")
def _where_op(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _where(tr.t(a["condition"]), tr.t(a["self"]), tr.t(a["other"]))


@_lower("aten.masked_fill")
def _masked_fill(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _where(tr.t(a["mask"]), tr.t(a["value"]), tr.t(a["self"]))


def _compare(first: bool, what: str) -> Lowering:
    """gt/ge/lt/le: no float output, but each element's branch is recorded."""
    def lower(tr: Any, a: dict[str, Any], out: Any) -> None:
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
def _identity(tr: Any, a: dict[str, Any], out: Any) -> T:
    return tr.t(a.get("self", a.get("a")))


@_lower("aten.copy")
def _copy(tr: Any, a: dict[str, Any], out: Any) -> T:
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
def _sum(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    return reduce_sum(tr.b, x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")))


@_lower("aten.mean")
def _mean(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    dims = _dims(a.get("dim"), len(x.shape))
    n = float(math.prod(x.shape[d] for d in dims))
    s = reduce_sum(tr.b, x, dims, bool(a.get("keepdim")))
    return map1(s, lambda r: tr.b.div(r, n))


@_lower("aten.amax", "aten.max.default")
def _amax(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    return reduce_max(tr.b, x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")),
                      True, "mean", "max")


@_lower("aten.amin", "aten.min.default")
def _amin(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    return reduce_max(tr.b, x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")),
                      False, "mean", "min")


def _by_index(largest: bool | None, what: str) -> Lowering:
    """max.dim, min.dim, sort, topk...: values are the input at the indices PyTorch chose."""
    def lower(tr: Any, a: dict[str, Any], out: Any) -> list[T | None]:
        values, indices = out[0], out[1]
        x = tr.t(a["self"])
        ndim = len(x.shape)
        if not ndim:
            return [T((), [x.refs[0]]), None]
        given = a.get("dim")
        dim = (-1 if given is None else int(given)) % ndim
        full = list(values.shape)
        if len(full) < ndim:  # the reduced dimension, dropped without keepdim
            full.insert(dim, 1)
        st = strides(x.shape)
        base = contiguous_positions(full, [0 if k == dim else s for k, s in enumerate(st)], 0)
        chosen = [b + int(i) * st[dim] for b, i in zip(base, indices.reshape(-1).tolist(),
                                                       strict=True)]
        if largest is not None:
            _record_rank(tr, x, dim, chosen, largest, what)
        return [T(tuple(values.shape), [x.refs[p] for p in chosen]), None]
    return lower


def _record_rank(tr: Any, x: T, dim: int, chosen: list[int], largest: bool,
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


def _shifted_exp_sum(tr: Any, refs: list[Ref], vals: list[float] | None,
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
    def lower(tr: Any, a: dict[str, Any], out: Any) -> T:
        x = tr.t(a["self"])
        ndim = len(x.shape)
        dim = a["dim"] % max(ndim, 1)
        b = tr.b
        perm = [d for d in range(ndim) if d != dim] + [dim]
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
def _logsumexp(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b

    def lse(refs: list[Ref], vals: list[float] | None) -> Ref:
        m, es = _shifted_exp_sum(tr, refs, vals)
        return b.add(m, b.log(b.sum(es)))

    return reduce(x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")), lse)


def _var(tr: Any, a: dict[str, Any]) -> tuple[T, T]:
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
def _var_op(tr: Any, a: dict[str, Any], out: Any) -> T:
    return _var(tr, a)[0]


@_lower("aten.std")
def _std(tr: Any, a: dict[str, Any], out: Any) -> T:
    return map1(_var(tr, a)[0], tr.b.sqrt)


@_lower("aten.var_mean")
def _var_mean(tr: Any, a: dict[str, Any], out: Any) -> list[T]:
    return list(_var(tr, a))


@_lower("aten.std_mean")
def _std_mean(tr: Any, a: dict[str, Any], out: Any) -> list[T]:
    var, mean = _var(tr, a)
    return [map1(var, tr.b.sqrt), mean]


@_lower("aten.prod")
def _prod(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    b = tr.b

    def product(refs: list[Ref], vals: list[float] | None) -> Ref:
        acc: Ref = 1.0
        for r in refs:
            acc = b.mul(acc, r)
        return acc

    return reduce(x, _dims(a.get("dim"), len(x.shape)), bool(a.get("keepdim")), product)


@_lower("aten.cumsum")
def _cumsum(tr: Any, a: dict[str, Any], out: Any) -> T:
    x = tr.t(a["self"])
    ndim = len(x.shape)
    if not ndim:
        return x
    dim = a["dim"] % ndim
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
def _layer_norm(tr: Any, a: dict[str, Any], out: Any) -> list[T]:
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
def _mm(tr: Any, a: dict[str, Any], out: Any) -> T:
    return matmul(tr.b, tr.t(a["self"]), tr.t(a.get("mat2", a.get("other"))))


@_lower("aten.mv")
def _mv(tr: Any, a: dict[str, Any], out: Any) -> T:
    v = tr.t(a["vec"])
    y = matmul(tr.b, tr.t(a["self"]), v.reshape(v.shape + (1,)))
    return y.reshape(y.shape[:-1])


@_lower("aten.dot", "aten.vdot")
def _dot(tr: Any, a: dict[str, Any], out: Any) -> T:
    x, y = tr.t(a["self"]), tr.t(a["tensor"])
    return T((), [dot(tr.b, x.refs, y.refs)])


def _scaled(tr: Any, x: T, c: Any) -> T:
    return x if c is None or c == 1 else map1(x, lambda r: tr.b.mul(r, float(c)))


@_lower("aten.addmm", "aten.baddbmm")
def _addmm(tr: Any, a: dict[str, Any], out: Any) -> T:
    m1 = a.get("mat1", a.get("batch1"))
    m2 = a.get("mat2", a.get("batch2"))
    prod = _scaled(tr, matmul(tr.b, tr.t(m1), tr.t(m2)), a.get("alpha"))
    if a.get("beta") == 0:
        return prod
    return map2(_scaled(tr, tr.t(a["self"]), a.get("beta")), prod, tr.b.add)
