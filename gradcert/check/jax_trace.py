"""Tracing a JAX function from its jaxpr, and running its own ``jax.vjp``.

``jax.make_jaxpr`` gives the function's primitives; the tracer evaluates
them one by one on the concrete inputs (each primitive's own
implementation, so every branch is decided on real values) and lowers each
to gradcert's graph beside it. Calls are followed into their jaxprs:
``jit``, ``closed_call``, ``remat``, ``cond`` (the branch taken), ``while``
and ``scan`` (unrolled), and ``custom_jvp_call`` / ``custom_vjp_call`` by
their primal, so a custom rule is judged against the exact derivative of
the function it claims to differentiate. Data movement (``broadcast_in_dim``,
``reshape``, ``gather``, ``select_n``, ``pad``, ``concatenate``...) is
lowered by running the primitive on element positions; ``stop_gradient``
makes constants. Tie conventions are JAX's: ``max`` and ``reduce_max``
split a tie evenly, ``abs'(0) = 1``, ``relu'(0) = 0``, ``clamp`` stops the
gradient at its bounds.

Floating arrays (JAX or numpy) among the arguments are differentiated;
everything else is held fixed. A Python branch on a traced value cannot be
traced (``make_jaxpr`` refuses it): use ``jnp.where`` or ``lax.cond``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

try:  # optional: this module is imported only for JAX arrays, and by doctest collection
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.extend.core import ClosedJaxpr, DropVar, Literal
except ImportError:  # pragma: no cover - without jax, trace() says so
    jax = None  # type: ignore[assignment]

from gradcert.check.builder import Builder, Ref
from gradcert.check.judge import Traced
from gradcert.check.result import CheckError, OutsideDomain, Untraceable
from gradcert.check.tensor import (
    T,
    broadcast_shapes,
    broadcast_to,
    concat,
    map1,
    map2,
    matmul,
    permute,
    reduce,
    reduce_max,
    reduce_sum,
    take,
)

__all__ = ["LOWER", "trace"]

Val = tuple[Any, T | None]  # a concrete array, and its refs (None: a constant)
LOWER: dict[str, Callable[..., Any]] = {}
"""Primitive name -> lowering ``(tracer, eqn, ins: list[Val], outs: list) -> list[T | None]``."""


def _floating(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _vals(x: Any) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64).reshape(-1).tolist()]


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(x))


class _Tracer:
    def __init__(self, builder: Builder) -> None:
        self.b = builder

    def t(self, v: Val) -> T:
        """An operand as refs (a constant's refs are its values)."""
        x, sym = v
        if sym is not None:
            if sym.vals is None:
                sym.vals = _vals(x)
            return sym
        vals = _vals(x)
        return T(_shape(x), list(vals), vals)

    # -- evaluation -----------------------------------------------------------

    def run(self, jaxpr: Any, consts: Sequence[Any], args: Sequence[Val]) -> list[Val]:
        if isinstance(jaxpr, ClosedJaxpr):
            consts, jaxpr = list(jaxpr.consts), jaxpr.jaxpr
        env: dict[Any, Val] = {}

        def read(v: Any) -> Val:
            return (v.val, None) if isinstance(v, Literal) else env[v]

        for v, c in zip(jaxpr.constvars, consts, strict=True):
            env[v] = (c, None)
        for v, a in zip(jaxpr.invars, args, strict=True):
            env[v] = a
        for eqn in jaxpr.eqns:
            outs = self.eqn(eqn, [read(v) for v in eqn.invars])
            for v, o in zip(eqn.outvars, outs, strict=True):
                if not isinstance(v, DropVar):
                    env[v] = o
        return [read(v) for v in jaxpr.outvars]

    def eqn(self, eqn: Any, ins: list[Val]) -> list[Val]:
        prim = eqn.primitive
        name = prim.name
        call = _CALLS.get(name)
        symbolic = any(s is not None and s.symbolic() for _, s in ins)
        if call is not None:
            return call(self, eqn, ins)
        concrete = [x for x, _ in ins]
        out = prim.bind(*concrete, **eqn.params)
        outs = list(out) if prim.multiple_results else [out]
        if not symbolic or name in _CONSTANT:
            return [(o, None) for o in outs]
        lower = LOWER.get(name)
        if lower is None:
            if name in _MOVES:
                syms = self.moved(eqn, ins, outs)
            elif not any(_floating(o) for o in outs):
                syms = [None] * len(outs)
            else:
                raise Untraceable(f"jax primitive {name}", "no lowering")
        else:
            try:
                syms = lower(self, eqn, ins, outs)
            except Untraceable as e:
                raise Untraceable(f"jax primitive {name}", e.reason, e.row) from None
        result: list[Val] = []
        for o, s in zip(outs, syms, strict=True):
            if s is not None and _floating(o):
                s = broadcast_to(s, _shape(o)) if s.shape != _shape(o) else s
                result.append((o, s if s.symbolic() else None))
            else:
                result.append((o, None))
        return result

    def moved(self, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T | None]:
        """A primitive that only moves data: bound on element positions, twice."""
        flat: list[Ref] = []
        starts: list[int | None] = []
        low = 53
        for x, s in ins:
            if _floating(x):
                starts.append(len(flat))
                flat.extend(self.t((x, s)).refs)
                low = min(low, jnp.finfo(jnp.result_type(x)).nmant + 1)
            else:
                starts.append(None)
        shift = 2.0 ** (low - 13)
        if len(flat) + 1 >= shift:
            raise Untraceable(f"jax primitive {eqn.primitive.name}",
                              "too many elements to track in this dtype")

        def bind(extra: float) -> list[Any]:
            args = [x if k is None else
                    (jnp.arange(np.size(x), dtype=jnp.result_type(x)) + (k + 1.0 + extra)
                     ).reshape(np.shape(x))
                    for (x, _), k in zip(ins, starts, strict=True)]
            out = eqn.primitive.bind(*args, **eqn.params)
            return list(out) if eqn.primitive.multiple_results else [out]

        syms: list[T | None] = []
        for p1, p2 in zip(bind(0.0), bind(shift), strict=True):
            if not _floating(p1):
                syms.append(None)
                continue
            v1, v2 = _vals(p1), _vals(p2)
            syms.append(T(_shape(p1), [flat[int(a) - 1] if b - a == shift else float(a)
                                       for a, b in zip(v1, v2, strict=True)]))
        return syms


# ---------------------------------------------------------------------------
# Calls: followed into their jaxprs.


def _call(key: str) -> Callable[..., list[Val]]:
    def call(tr: _Tracer, eqn: Any, ins: list[Val]) -> list[Val]:
        inner = eqn.params[key]
        if eqn.primitive.name == "custom_jvp_call" and _name(inner) == "relu" and \
                ins[0][1] is not None:
            (x, s), = ins
            (out, _), = tr.run(inner, [], [(x, None)])
            return [(out, _relu(tr, tr.t((x, s))))]
        return tr.run(inner, [], ins)
    return call


def _name(closed: Any) -> str | None:
    info = getattr(getattr(closed, "jaxpr", closed), "debug_info", None)
    return getattr(info, "func_name", None)


def _cond(tr: _Tracer, eqn: Any, ins: list[Val]) -> list[Val]:
    index = int(np.asarray(ins[0][0]))
    branches = eqn.params["branches"]
    return tr.run(branches[min(max(index, 0), len(branches) - 1)], [], ins[1:])


def _while(tr: _Tracer, eqn: Any, ins: list[Val]) -> list[Val]:
    p = eqn.params
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    cconsts, bconsts, carry = ins[:nc], ins[nc:nc + nb], ins[nc + nb:]
    for _ in range(1_000_000):
        (go, _), = tr.run(p["cond_jaxpr"], [], cconsts + carry)
        if not bool(np.asarray(go)):
            return carry
        carry = tr.run(p["body_jaxpr"], [], bconsts + carry)
    raise Untraceable("jax primitive while", "more than a million iterations")


def _slice0(v: Val, i: int) -> Val:
    x, s = v
    xi = x[i]
    if s is None:
        return (xi, None)
    n = math.prod(s.shape[1:])
    return (xi, take(s, range(i * n, (i + 1) * n), s.shape[1:]))


def _stack(vals: list[Val], example: Any) -> Val:
    arr = jnp.stack([x for x, _ in vals]) if vals else example
    if all(s is None for _, s in vals):
        return (arr, None)
    ts = [T((1, *_shape(x)), (s or T(_shape(x), _vals(x), _vals(x))).refs)
          for x, s in vals]
    return (arr, concat(ts, 0))


def _scan(tr: _Tracer, eqn: Any, ins: list[Val]) -> list[Val]:
    p = eqn.params
    nconst, ncarry, length = p["num_consts"], p["num_carry"], p["length"]
    consts, carry, xs = ins[:nconst], ins[nconst:nconst + ncarry], ins[nconst + ncarry:]
    ys: list[list[Val]] = []
    order = range(length - 1, -1, -1) if p["reverse"] else range(length)
    for i in order:
        out = tr.run(p["jaxpr"], [], consts + carry + [_slice0(x, i) for x in xs])
        carry, y = out[:ncarry], out[ncarry:]
        ys.append(y)
    if p["reverse"]:
        ys.reverse()
    n_y = len(eqn.outvars) - ncarry
    stacked = [_stack([y[k] for y in ys], None) for k in range(n_y)]
    return carry + stacked


_CALLS: dict[str, Callable[..., list[Val]]] = {
    "jit": _call("jaxpr"), "pjit": _call("jaxpr"), "closed_call": _call("call_jaxpr"),
    "core_call": _call("call_jaxpr"), "remat": _call("jaxpr"), "checkpoint": _call("jaxpr"),
    "custom_jvp_call": _call("call_jaxpr"), "custom_vjp_call": _call("call_jaxpr"),
    "custom_vjp_call_jaxpr": _call("fun_jaxpr"), "cond": _cond, "while": _while,
    "scan": _scan,
}

_CONSTANT = {"stop_gradient", "sign", "floor", "ceil", "round", "is_finite", "argmax",
             "argmin", "iota", "random_bits", "random_seed", "random_wrap", "random_unwrap",
             "nextafter", "eq", "ne", "and", "or", "not", "xor", "population_count"}
_MOVES = {"broadcast_in_dim", "reshape", "transpose", "squeeze", "expand_dims", "slice",
          "dynamic_slice", "dynamic_update_slice", "gather", "concatenate", "pad", "rev",
          "select_n", "copy", "copy_p", "scatter", "split", "device_put", "sharding_constraint",
          "optimization_barrier", "tile", "repeat"}


# ---------------------------------------------------------------------------
# Lowerings.


def _lower(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            LOWER[n] = fn
        return fn
    return register


def _binary(op: str) -> Callable[..., Any]:
    def lower(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
        return [map2(tr.t(ins[0]), tr.t(ins[1]), getattr(tr.b, op))]
    return lower


def _unary(op: str) -> Callable[..., Any]:
    def lower(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
        return [map1(tr.t(ins[0]), getattr(tr.b, op))]
    return lower


for _op in ("add", "sub", "mul", "div"):
    LOWER[_op] = _binary(_op)
LOWER["add_any"] = _binary("add")
for _op in ("neg", "exp", "log", "log1p", "expm1", "tanh", "sqrt", "rsqrt", "sin", "cos",
            "erf"):
    LOWER[_op] = _unary(_op)
LOWER["logistic"] = _unary("sigmoid")


@_lower("convert_element_type", "reduce_precision", "copy", "copy_p",
        "optimization_barrier")
def _identity(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T | None]:
    return [tr.t(v) if _floating(o) else None for v, o in zip(ins, outs, strict=False)]


@_lower("erfc")
def _erfc(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    return [map1(tr.t(ins[0]), lambda r: tr.b.sub(1.0, tr.b.erf(r)))]


@_lower("integer_pow")
def _integer_pow(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    y = float(eqn.params["y"])
    return [map1(tr.t(ins[0]), lambda r: tr.b.powc(r, y))]


@_lower("square")
def _square(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    return [map1(tr.t(ins[0]), lambda r: tr.b.mul(r, r))]


@_lower("tan")
def _tan(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    return [map1(tr.t(ins[0]), lambda r: tr.b.div(tr.b.sin(r), tr.b.cos(r)))]


@_lower("pow")
def _pow(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    x, y = tr.t(ins[0]), tr.t(ins[1])
    shape = broadcast_shapes(x.shape, y.shape)
    x, y = broadcast_to(x, shape), broadcast_to(y, shape)
    b = tr.b
    return [T(shape, [b.pow(r, e, x.val(k) > 0) if type(e) is int else b.powc(r, e)
                      for k, (r, e) in enumerate(zip(x.refs, y.refs, strict=True))])]


def _relu(tr: _Tracer, x: T) -> T:
    b = tr.b
    return T(x.shape, [r if b.split(r, 0.0, x.val(k) > 0, "relu", x.val(k) == 0) else 0.0
                       for k, r in enumerate(x.refs)])


@_lower("abs")
def _abs(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    x = tr.t(ins[0])
    b = tr.b
    refs: list[Ref] = []
    for k, r in enumerate(x.refs):
        v = x.val(k)
        b.split(r, 0.0, v > 0, "abs", v == 0)
        refs.append(r if v == 0 else b.abs(r))  # JAX: abs'(0) = 1, the row's is 0
    return [T(x.shape, refs)]


def _pick(tr: _Tracer, ins: list[Val], largest: bool, what: str) -> list[T]:
    x, y = tr.t(ins[0]), tr.t(ins[1])
    shape = broadcast_shapes(x.shape, y.shape)
    x, y = broadcast_to(x, shape), broadcast_to(y, shape)
    b = tr.b
    refs: list[Ref] = []
    for k, (r, s) in enumerate(zip(x.refs, y.refs, strict=True)):
        u, v = x.val(k), y.val(k)
        if u != u or v != v:
            refs.append(r if u != u else s)
            continue
        b.split(r, s, u > v, what + (" (a tie)" if u == v else ""), u == v)
        refs.append(b.pick(r, s, largest))  # JAX splits a tie evenly, as the row does
    return [T(shape, refs)]


LOWER["max"] = lambda tr, eqn, ins, outs: _pick(tr, ins, True, "max")
LOWER["min"] = lambda tr, eqn, ins, outs: _pick(tr, ins, False, "min")


@_lower("clamp")
def _clamp(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    lo, x, hi = (tr.t(v) for v in ins)
    shape = broadcast_shapes(lo.shape, x.shape, hi.shape)
    lo, x, hi = broadcast_to(lo, shape), broadcast_to(x, shape), broadcast_to(hi, shape)
    b = tr.b
    refs: list[Ref] = []
    for k, r in enumerate(x.refs):
        v = x.val(k)
        low, high = lo.val(k), hi.val(k)
        if not b.split(r, lo.refs[k], v > low, "clamp", v == low):
            refs.append(lo.refs[k])  # JAX: no gradient at a bound
        elif not b.split(hi.refs[k], r, high > v, "clamp", v == high):
            refs.append(hi.refs[k])
        else:
            refs.append(r)
    return [T(shape, refs)]


def _compare(first: bool, what: str) -> Callable[..., Any]:
    def lower(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[None]:
        x, y = tr.t(ins[0]), tr.t(ins[1])
        shape = broadcast_shapes(x.shape, y.shape)
        x, y = broadcast_to(x, shape), broadcast_to(y, shape)
        res = np.asarray(outs[0]).reshape(-1).tolist()
        for k, (r, s) in enumerate(zip(x.refs, y.refs, strict=True)):
            tie = x.val(k) == y.val(k)
            if first:
                tr.b.split(r, s, bool(res[k]), what, tie)
            else:
                tr.b.split(s, r, bool(res[k]), what, tie)
        return [None]
    return lower


LOWER.update({"gt": _compare(True, "x > y"), "ge": _compare(True, "x >= y"),
              "lt": _compare(False, "x < y"), "le": _compare(False, "x <= y")})


@_lower("reduce_sum")
def _reduce_sum(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    return [reduce_sum(tr.b, tr.t(ins[0]), eqn.params["axes"], False)]


@_lower("reduce_max", "reduce_min")
def _reduce_max(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    largest = eqn.primitive.name == "reduce_max"
    return [reduce_max(tr.b, tr.t(ins[0]), eqn.params["axes"], False, largest, "mean",
                       "max" if largest else "min")]


@_lower("reduce_prod")
def _reduce_prod(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    b = tr.b

    def product(refs: list[Ref], vals: Any) -> Ref:
        acc: Ref = 1.0
        for r in refs:
            acc = b.mul(acc, r)
        return acc

    return [reduce(tr.t(ins[0]), eqn.params["axes"], False, product)]


@_lower("cumsum")
def _cumsum(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    x = tr.t(ins[0])
    axis = eqn.params["axis"] % len(x.shape)
    perm = [d for d in range(len(x.shape)) if d != axis] + [axis]
    xp = permute(x, perm)
    n = x.shape[axis]
    refs: list[Ref] = []
    for i in range(0, xp.size, n):
        row = xp.refs[i:i + n]
        if eqn.params.get("reverse"):
            row = row[::-1]
        acc: Ref = 0.0
        sums = []
        for r in row:
            acc = tr.b.add(acc, r)
            sums.append(acc)
        refs.extend(sums[::-1] if eqn.params.get("reverse") else sums)
    return [permute(T(xp.shape, refs), [perm.index(d) for d in range(len(x.shape))])]


@_lower("dot_general")
def _dot_general(tr: _Tracer, eqn: Any, ins: list[Val], outs: list[Any]) -> list[T]:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    x, y = tr.t(ins[0]), tr.t(ins[1])
    lf = [d for d in range(len(x.shape)) if d not in lc and d not in lb]
    rf = [d for d in range(len(y.shape)) if d not in rc and d not in rb]
    xp = permute(x, [*lb, *lf, *lc])
    yp = permute(y, [*rb, *rc, *rf])
    nb = math.prod(x.shape[d] for d in lb)
    n, k = math.prod(x.shape[d] for d in lf), math.prod(x.shape[d] for d in lc)
    m = math.prod(y.shape[d] for d in rf)
    prod = matmul(tr.b, xp.reshape((nb, n, k)), yp.reshape((nb, k, m)))
    shape = (*(x.shape[d] for d in lb), *(x.shape[d] for d in lf), *(y.shape[d] for d in rf))
    return [prod.reshape(shape)]


# ---------------------------------------------------------------------------
# The trace.


_DTYPES = {"float64": "float64", "float32": "float32"}


def trace(f: Callable[..., Any], args: Sequence[Any], symbolic: bool = True) -> Traced:
    """Trace ``f(*args)`` from its jaxpr; pair the trace with ``jax.vjp``."""
    if jax is None:
        raise CheckError("JAX is not installed")
    diff = [i for i, a in enumerate(args)
            if isinstance(a, (jax.Array, np.ndarray)) and _floating(a)]
    if not diff:
        raise CheckError("no floating-point array among the inputs: nothing to differentiate")
    xs = [jnp.asarray(args[i]) for i in diff]
    names = {str(x.dtype) for x in xs}
    if not names <= set(_DTYPES):
        raise CheckError(f"arrays of {sorted(names - set(_DTYPES))} are not modelled: "
                         f"use float64 (jax_enable_x64) or float32")
    for i, x in zip(diff, xs, strict=True):
        if not bool(jnp.isfinite(x).all()):
            raise CheckError(f"input {i} has a non-finite element")

    def g(*ys: Any) -> Any:
        call = list(args)
        for i, y in zip(diff, ys, strict=True):
            call[i] = y
        return f(*call)

    try:
        out, pullback = jax.vjp(g, *xs)
    except (TypeError, ValueError, ArithmeticError) as e:
        raise OutsideDomain(f"the function raised {type(e).__name__} under jax.vjp: {e}") from e
    leaves, tree = jax.tree_util.tree_flatten(out)
    if not leaves or not all(_floating(o) for o in leaves):
        raise CheckError("the function must return floating-point arrays (or a tree of them)")
    b = Builder()
    results: list[T] = []
    if symbolic:
        try:
            closed = jax.make_jaxpr(g)(*xs)
        except jax.errors.ConcretizationTypeError as e:
            raise Untraceable("a Python branch on a traced value",
                              "make_jaxpr cannot follow it; use jnp.where or lax.cond") from e
        tr = _Tracer(b)
        ins: list[Val] = []
        for x in xs:
            vals = _vals(x)
            ins.append((x, T(_shape(x), [b.input(v) for v in vals], vals)))
        got = tr.run(closed, [], ins)
        for (c, s), o in zip(got, leaves, strict=True):
            t = tr.t((c, s))
            results.append(T(t.shape, t.refs, _vals(o)))
    else:
        results = [T(_shape(o), [0.0] * int(np.size(o)), _vals(o)) for o in leaves]
    dtype = "float32" if "float32" in names | {str(o.dtype) for o in leaves} else "float64"

    def vjp(cts: list[list[float]]) -> list[list[float]]:
        arrays = [jnp.asarray(np.array(c, dtype=np.float64).reshape(np.shape(o)),
                              dtype=o.dtype) for c, o in zip(cts, leaves, strict=True)]
        try:
            grads = pullback(jax.tree_util.tree_unflatten(tree, arrays))
        except (TypeError, ValueError) as e:
            raise CheckError(f"the function's backward (jax.vjp) raised {type(e).__name__}: "
                             f"{e}") from e
        return [_vals(gr) for gr in grads]

    def evaluate(flat: list[float]) -> list[float]:
        ys, at = [], 0
        for x in xs:
            n = int(np.size(x))
            ys.append(jnp.asarray(np.array(flat[at:at + n]).reshape(x.shape), dtype=x.dtype))
            at += n
        return [v for o in jax.tree_util.tree_leaves(g(*ys)) for v in _vals(o)]

    x0 = [v for x in xs for v in _vals(x)]
    return Traced(b, results, [_shape(x) for x in xs], diff, dtype, vjp,
                  f"jax {jax.__version__}", evaluate=evaluate, x0=x0, flushes=True)
