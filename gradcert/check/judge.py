"""Judging a traced function: exact value and vector-Jacobian products against its own.

A tracer hands over a :class:`Traced`: the builder holding the function's
forward as graph nodes, its outputs as tensors of refs with the values the
function computed, and its own ``vjp`` (the framework's backward, so a
custom backward is what gets judged). The judge builds one scalar graph
``sum(ct_i * out_i)`` per cotangent ``ct``, every output element in turn
(one-hot cotangents) when there are at most ``full`` of them, else
``projections`` fixed cotangents of all outputs, asks the oracle for its
exact value and gradient and the tolerance model for their bounds, and
compares the function's own numbers with them.

The cotangents are fixed dyadic numbers (exact in float32) drawn from a
generator seeded by the output count, so a verdict never depends on a seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from gradcert.check.builder import Builder, Ref
from gradcert.check.result import CheckError, CheckResult, Mismatch, OutsideDomain
from gradcert.check.tensor import T
from gradcert.graph import DomainError
from gradcert.oracle.exact import Unresolved, exact_graph
from gradcert.oracle.fd import richardson
from gradcert.oracle.tolerance import Refused, verdict

__all__ = ["FULL", "PROJECTIONS", "Traced", "judge", "judge_fd"]

FULL = 8
"""Outputs up to this many elements are checked one by one (every row of the Jacobian)."""

PROJECTIONS = 2
"""Cotangents drawn for a function with more outputs than :data:`FULL`."""

Shape = tuple[int, ...]


@dataclass
class Traced:
    """One traced call of a function, and its own backward.

    ``vjp(cts)`` takes one flat cotangent list per output and returns one
    flat gradient list per input (``input_shapes``, in the order of
    ``builder.inputs``). ``evaluate(flat_inputs)`` (optional) reruns the
    function on new input values and returns its flat outputs, for the
    finite-difference fallback.
    """

    builder: Builder
    outputs: list[T]
    input_shapes: list[Shape]
    input_args: list[int]
    dtype: str
    vjp: Callable[[list[list[float]]], list[list[float]]]
    framework: str
    notes: list[str] = field(default_factory=list)
    evaluate: Callable[[list[float]], list[float]] | None = None
    x0: list[float] = field(default_factory=list)  # the inputs, flat (for the fallback)
    flushes: bool = False  # the framework flushes subnormal results to zero (JAX, XLA)


def _unravel(k: int, shape: Shape) -> tuple[int, ...]:
    out = []
    for d in reversed(shape):
        out.append(k % d)
        k //= d
    return tuple(reversed(out))


class _Inputs:
    """Flat leaf index -> (argument position, index inside that argument)."""

    def __init__(self, shapes: Sequence[Shape], args: Sequence[int]) -> None:
        self.where: list[tuple[int, tuple[int, ...]]] = []
        for shape, a in zip(shapes, args, strict=True):
            n = math.prod(shape)
            self.where.extend((a, _unravel(k, shape)) for k in range(n))
        self.spans: list[tuple[int, int]] = []
        start = 0
        for shape in shapes:
            n = math.prod(shape)
            self.spans.append((start, start + n))
            start += n

    def __len__(self) -> int:
        return len(self.where)


def _out_name(traced: Traced, o: int, k: int) -> str:
    shape = traced.outputs[o].shape
    base = "output" if len(traced.outputs) == 1 else f"output {o}"
    return base if not shape else f"{base} {list(_unravel(k, shape))}"


def _cotangents(m: int, r: int) -> list[float]:
    rng = random.Random(1000003 * m + r)
    return [rng.choice((-1.0, 1.0)) * rng.randint(8, 31) / 16.0 for _ in range(m)]


_MAX = {"float64": 1.7976931348623157e308, "float32": 3.4028234663852886e38}


def _oracle(graph: Any, dtype: str) -> Any:
    try:
        ex = exact_graph(graph)
    except DomainError as e:
        raise OutsideDomain(f"at these inputs the function leaves an op's domain in exact "
                         f"arithmetic (its float value stayed inside by rounding): {e}") from e
    except Unresolved as e:
        raise OutsideDomain(f"the oracle cannot certify this function's value at these inputs: "
                         f"{e}") from e
    if ex.overflow:
        raise OutsideDomain("the exact value or gradient is beyond float64 at these inputs")
    top = _MAX[dtype]
    try:
        values = ex.values_f64  # (certified when first read)
    except Unresolved as e:
        raise OutsideDomain(f"the oracle cannot certify this function's intermediate values "
                            f"at these inputs: {e}") from e
    for i, v in enumerate(values):
        if abs(v) > top:
            raise OutsideDomain(f"out of range: the exact value of node {i} ({v:.3g}) is beyond "
                             f"{dtype}'s range at these inputs")
    return ex


def judge(traced: Traced, name: str, *, value: bool = True, full: int = FULL,
          projections: int = PROJECTIONS, kinks: bool = True) -> CheckResult:
    """Compare ``traced``'s own value and backward with the oracle (see the module).

    With ``kinks=False`` a point where some branch sits exactly on its kink
    (a derivative that is only a convention there) raises CheckError instead
    of being judged: the search skips such inputs.
    """
    b = traced.builder
    if not kinks and b.at_kink():
        raise OutsideDomain("at a kink: a branch sits exactly on it, where the derivative is "
                         "a convention")
    targets: list[tuple[int, int, Ref]] = []  # (output, element, ref)
    for o, t in enumerate(traced.outputs):
        targets.extend((o, k, r) for k, r in enumerate(t.refs) if type(r) is int)
    if not targets:
        raise OutsideDomain("at these inputs no output of the function depends on its inputs: "
                            "nothing to check")
    inputs = _Inputs(traced.input_shapes, traced.input_args)
    dtype = traced.dtype
    sizes = [t.size for t in traced.outputs]
    mismatches: list[Mismatch] = []
    notes = list(traced.notes)
    checked = 0
    flushed = 0
    of_bound = 0.0
    nodes = 0
    describe = ""
    extra = sorted({r for s in b.splits for r in (s.a, s.b) if type(r) is int})
    Plan = tuple[list[tuple[Ref, float]], dict[tuple[int, int], float], str,
                 tuple[int, int] | None]
    plans: list[Plan]
    if len(targets) <= full:
        plans = [([(r, 1.0)], {(o, k): 1.0}, _out_name(traced, o, k), (o, k))
                 for o, k, r in targets]
        how = "every output element" if len(targets) > 1 else "the one output"
    else:
        plans = []
        for p in range(projections):
            draw = _cotangents(len(targets), p)
            plans.append(([(r, c) for (_o, _k, r), c in zip(targets, draw, strict=True)],
                          {(o, k): c for (o, k, _r), c in zip(targets, draw, strict=True)},
                          f"<ct{p}, outputs>", None))
        how = f"{projections} fixed random projections of {len(targets)} output elements"
    for n, (terms, weights, label, single) in enumerate(plans):
        graph, new = b.graph(terms, extra if n == 0 else ())
        nodes = max(nodes, len(graph))
        ex = _oracle(graph, dtype)
        if n == 0:
            notes.extend(_branch_notes(b, ex, new))
        cts = [[0.0] * s for s in sizes]
        for (o, k), c in weights.items():
            cts[o][k] = c
        grads = traced.vjp(cts)
        flat = [float(g) for gs in grads for g in gs]
        if len(flat) != len(inputs):
            raise CheckError(f"the backward gave {len(flat)} gradients for "
                             f"{len(inputs)} input elements")
        n_leaves = len(graph.leaves)
        all_grads = flat + list(ex.grad_f64[len(flat):n_leaves])
        if single is not None:
            o, k = single
            out_vals = traced.outputs[o].vals
            actual = out_vals[k] if out_vals else math.nan
        else:
            actual = _weighted(traced, weights)
        try:  # the tolerance model's bounds and verdict (its Monte Carlo runs if needed)
            tol, violations = verdict(graph, ex, actual, all_grads, dtype=dtype)
        except Refused as e:
            raise OutsideDomain(f"the tolerance model cannot judge these inputs: {e}") from e
        if n == 0 or (violations and not mismatches):  # the bound of the first failure
            describe = tol.describe().split(";")[0]
        of_bound = max(of_bound, _of_bound(actual if value else None, all_grads, ex, tol))
        checked += len(flat) + (1 if value else 0)
        exact_grads = ex.grad_f64
        if traced.flushes:
            kept = [v for v in violations if not _flushed(v.expected, v.actual, dtype)]
            flushed += len(violations) - len(kept)
            violations = kept
        for v in violations:
            if v.what == "value":
                if not value:
                    continue
                mismatches.append(Mismatch("value", None, None, label, v.expected, v.actual,
                                           v.bound, v.error, abs(v.expected)))
            elif v.leaf is not None and v.leaf < len(flat):
                arg, idx = inputs.where[v.leaf]
                mismatches.append(Mismatch("gradient", arg, idx, label, v.expected, v.actual,
                                           v.bound, v.error,
                                           max(abs(exact_grads[v.leaf]), abs(v.actual))))
    if flushed:
        notes.append(f"{flushed} number(s) below {dtype}'s normal range came out 0 and were "
                     f"accepted: {traced.framework} flushes subnormal results to zero")
    mismatches.sort(key=lambda m: -m.ratio if m.ratio == m.ratio else 0.0)
    return CheckResult(
        outcome="failed" if mismatches else "passed", function=name,
        framework=traced.framework, dtype=dtype, mismatches=tuple(mismatches),
        notes=tuple(notes), nodes=nodes, checked=checked, cotangents=how,
        tolerance=describe, extra={"of_bound": of_bound})


def _of_bound(value: float | None, grads: list[float], ex: Any, tol: Any) -> float:
    """The largest error over its bound among the numbers compared (1 is the edge of
    passing), for the reports; numbers without a finite bound or result count not."""
    pairs = list(zip(grads, ex.grad_f64, tol.grad, strict=False))
    if value is not None:
        pairs.append((value, ex.value_f64, tol.value))
    return max((abs(a - e) / b for a, e, b in pairs
                if 0 < b < math.inf and math.isfinite(a) and math.isfinite(e)), default=0.0)


_TINY = {"float64": 2.0**-1022, "float32": 2.0**-126}


def _flushed(expected: float, actual: float, dtype: str) -> bool:
    """A subnormal exact result given as zero, or a zero given where it is subnormal."""
    tiny = _TINY[dtype]
    return abs(expected) < tiny and (actual == 0.0 or abs(actual) < tiny)


def _weighted(traced: Traced, weights: dict[tuple[int, int], float]) -> float:
    """sum(ct * the function's output), exactly, then rounded once."""
    total = Fraction(0)
    for (o, k), c in weights.items():
        vals = traced.outputs[o].vals
        v = vals[k] if vals else math.nan
        if not math.isfinite(v):
            return v
        total += Fraction(c) * Fraction(v)
    return float(total)


def _branch_notes(b: Builder, ex: Any, new: dict[int, int], limit: int = 3) -> list[str]:
    """Branches the exact values (rounded to float64) would have taken differently, or
    sit on (a tie, a kink)."""
    vals = ex.values_f64

    def exact(r: Ref) -> Any:
        return vals[new[r]] if type(r) is int else r

    close: list[str] = []
    count = 0
    for s in b.splits:
        if (type(s.a) is int and s.a not in new) or (type(s.b) is int and s.b not in new):
            continue
        a, c = exact(s.a), exact(s.b)
        if a == c or (a > c) != s.taken:
            count += 1
            if len(close) < limit:
                close.append(f"{s.what}: exact {float(a)!r} vs {float(c)!r}")
    if not count:
        return []
    return [f"{count} branch(es) were taken where the exact values tie or would go the "
            f"other way (a kink, or within rounding of one): the check follows the branch "
            f"the function took, where its derivative is one-sided; "
            + "; ".join(close)]


def judge_fd(traced: Traced, name: str, reason: str) -> CheckResult:
    """The approximate check: the function's backward against Richardson-extrapolated
    central differences of ``sum(ct * outputs)``, within 8x the extrapolation's own
    error estimate plus sqrt(eps) times the gradient's size. Costs up to 20 evaluations
    of the function per input element; it catches gross bugs (a wrong formula),
    not a float32 leak."""
    if traced.evaluate is None:
        raise CheckError("the finite-difference fallback needs a function it can rerun")
    sizes = [t.size for t in traced.outputs]
    m = sum(sizes)
    cts_flat = _cotangents(m, 0) if m > 1 else [1.0]
    cts, at = [], 0
    for s in sizes:
        cts.append(cts_flat[at:at + s])
        at += s
    grads = [float(g) for gs in traced.vjp(cts) for g in gs]
    x0 = traced.x0
    evaluate = traced.evaluate

    def weighted(xs: Sequence[float]) -> float:
        return math.fsum(c * v for c, v in zip(cts_flat, evaluate(list(xs)), strict=True))

    inputs = _Inputs(traced.input_shapes, traced.input_args)
    eps = 2.0**-52 if traced.dtype == "float64" else 2.0**-23
    mismatches = []
    scale = max((abs(g) for g in grads), default=0.0)
    for i, g in enumerate(grads):
        est = richardson(weighted, x0, i)
        bound = 8.0 * est.error + math.sqrt(eps) * max(scale, abs(est.value))
        err = abs(g - est.value) if math.isfinite(g) else math.inf
        if err > bound:
            arg, idx = inputs.where[i]
            mismatches.append(Mismatch("gradient", arg, idx, "<ct, outputs>", est.value, g,
                                       bound, err, max(abs(est.value), abs(g))))
    mismatches.sort(key=lambda mm: -mm.ratio)
    return CheckResult(
        outcome="failed" if mismatches else "passed", function=name,
        framework=traced.framework, dtype=traced.dtype, mismatches=tuple(mismatches),
        notes=(f"approximate: {reason}; the gradient was compared with Richardson-"
               f"extrapolated central differences, whose error estimate is not a proof",),
        checked=len(grads), cotangents="one fixed random projection",
        tolerance="8 x the extrapolation's error estimate + sqrt(eps) x the gradient's size",
        approximate=True)
