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
from gradcert.check.tensor import T, broadcast_to, contiguous_positions
from gradcert.check.torch_ops import LOWER

__all__ = ["gradcheck_error", "trace"]

_DTYPES = {"torch.float64": "float64", "torch.float32": "float32"}

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
                if _bind(target, args, kwargs).get("accumulate"):
                    raise Untraceable(str(func), "index_put with accumulate=True")
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
    "pixel_unshuffle", "channel_shuffle", "movedim", "repeat_interleave", "unfold",
    "index_put")}




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
