"""The tolerance model's passes as first written, one node at a time: the reference.

gradcert/oracle/tolerance.py runs the same model over a flat form of the graph,
with facts per op looked up once and the Monte Carlo runs drawn from the same
stream; tests/test_tolerance_passes.py checks that both give the same floats,
bit for bit, on random graphs. This copy is frozen: it changes only when the
model itself does (then both change, and the test says they agree).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Sequence
from typing import Any

from gradcert.graph import DomainError, Graph, canonical, node_operands
from gradcert.ops import OPS, Op

UNDERFLOW = {"float64": 2.0**-1074, "float32": 2.0**-149}
_TINY = {"float64": 2.0**-1022, "float32": 2.0**-126}
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}
MCA_RUNS = 4
CHAIN_ROUNDINGS = 2


def _times(f: float, k: float) -> float:
    """f * k for an error bound f, with 0 * inf = 0 (no error stays no error)."""
    return f * k if f else 0.0


def _uncertain(op: Op, xs: Sequence[float], fx: Sequence[float]) -> bool:
    """Whether a kink's branch may differ between the inputs and the exact ones."""
    spread = sum(fx[:op.arity])
    return bool(spread > 0.0 and abs(op.switch(*xs[:op.arity])) <= spread)  # type: ignore[misc]


def _variation(op: Op, xs: Sequence[float], c: Any, out: float, fx: Sequence[float],
               ps: Sequence[float]) -> tuple[float, ...]:
    """Per local derivative, how far it moves over its inputs' error intervals."""
    if op.kind == "kink":
        return (op.jump if _uncertain(op, xs, fx) else 0.0,) * op.arity
    if not any(fx):
        return (0.0,) * op.arity
    return op.variation(math, xs[:op.arity], fx, c, out, ps)


def _clean(x: float) -> float:
    return math.inf if x != x else x  # an undefined bound is no bound


def _to_dtype_error(x: float, dtype: str, u: float) -> float:
    """The error of converting the float64 ``x`` to ``dtype`` (an input or a constant)."""
    if dtype == "float64":
        return 0.0
    try:
        if struct.unpack("<f", struct.pack("<f", x))[0] == x:
            return 0.0
    except OverflowError:
        return math.inf
    return u * abs(x) + UNDERFLOW[dtype]


def _exact_copy(node: Any, same: list[int]) -> bool:
    """``a - a`` and ``max(a, a)``: the same float in every engine, exactly.
    (``a / a`` is not exactly 1 in an engine that divides as ``a * (1/a)``.)"""
    return (OPS[node.op].same in ("zero", "first")
            and same[node.args[0]] == same[node.args[-1]])


def _linear(graph: Graph, u: float, dtype: str,
            same: list[int]) -> tuple[float, list[float]]:
    """First-order running error bounds of the value and the leaves' gradients."""
    eta, tiny = UNDERFLOW[dtype], _TINY[dtype]

    def floor(x: float, factors: Sequence[float], errors: Sequence[float]) -> float:
        """The underflow error of a product or function value x, unless a factor
        is exactly 0 (its value 0 and its error bound 0)."""
        if abs(x) >= tiny:
            return 0.0
        exact_zero = any(not v and not e for v, e in zip(factors, errors, strict=False))
        return 0.0 if exact_zero else eta

    nodes = graph.nodes
    n = len(nodes)
    vals: list[float] = [0.0] * n
    fwd = [0.0] * n  # bound on |engine value - exact value|, per node
    parts: list[tuple[float, ...]] = [()] * n
    derr: list[tuple[float, ...]] = [()] * n
    for i, node in enumerate(nodes):
        c = same[i]
        if c != i:
            vals[i], fwd[i], parts[i], derr[i] = vals[c], fwd[c], parts[c], derr[c]
            continue
        if node.op == "leaf":
            vals[i] = node.value  # type: ignore[assignment]
            fwd[i] = _to_dtype_error(vals[i], dtype, u)
            continue
        op = OPS[node.op]
        xs = node_operands(node, vals)
        reason = op.domain(*xs)
        if reason:
            raise DomainError(i, node.op, xs, reason)
        try:
            out, p = op.eval(math, *xs)
        except OverflowError:
            out, p = math.inf, (math.inf,) * op.arity
        vals[i] = out
        parts[i] = p
        fx = [fwd[a] for a in node.args]
        rv, rd = op.rounding_counts(xs, exact=False)
        f = rv * u * abs(out)
        if not op.copies:
            f += rv * floor(out, xs, (*fx, 0.0))
        try:
            var = _variation(op, xs, node.const, out, fx, p)
        except (OverflowError, ZeroDivisionError):
            var = (math.inf,) * op.arity
        if _exact_copy(node, same):  # a - a is 0; max(a, a) is a, with a's error
            f = 0.0 if op.same == "zero" else fwd[node.args[0]]
            if op.kind == "kink":  # max(a, a): whichever branch, the partials sum to 1,
                var = (0.0,) * op.arity  # exactly, into a's one adjoint
        elif op.kind == "kink" and _uncertain(op, xs, fx):
            f += sum(fx)  # 1-Lipschitz on either side of the kink
        else:
            # each operand's error moves the value by at most the largest |partial|
            # over the error intervals: |partial here| + how far it moves
            for pk, vk, fk in zip(p, var, fx, strict=True):
                if fk:
                    f += (abs(pk) + vk) * fk
        fc = _to_dtype_error(node.const, dtype, u) if node.const is not None else 0.0
        if fc:
            assert op.const_effect is not None  # every op with a constant has one
            cv, cd = op.const_effect(xs[0], node.const, out)  # type: ignore[arg-type]
            f += _times(fc, cv)
        fwd[i] = f = _clean(f)
        d = var
        if op.output_form is not None and op.output_error is not None:
            try:
                d = tuple(max(a, b) for a, b in zip(
                    d, op.output_error(math, xs[:op.arity], fx, node.const, out, f, u),
                    strict=True))
            except (OverflowError, ZeroDivisionError):
                d = (math.inf,) * op.arity
        if fc:
            d = (d[0] + _times(fc, cd),)
        derr[i] = tuple(dk + rd * (u * abs(pk) + floor(pk, xs, (*fx, 0.0))) if rd else dk
                        for dk, pk in zip(d, p, strict=True))
    adj = [0.0] * n  # float adjoints
    err = [0.0] * n  # bound on their error
    tsum = [0.0] * n  # sum of |terms| added into each adjoint
    count = [0] * n
    adj[-1] = 1.0
    for i in range(n - 1, -1, -1):
        node = nodes[i]
        if count[i] > 1:
            err[i] += (count[i] - 1) * u * tsum[i]
        a = adj[i]
        if node.op == "leaf" or (a == 0.0 and err[i] == 0.0):
            continue
        e = err[i]
        for j, pj, dj in zip(node.args, parts[i], derr[i], strict=True):
            term = a * pj
            adj[j] += term
            t = abs(term)
            err[j] = _clean(err[j] + _times(e, abs(pj)) + _times(abs(a), dj) + _times(e, dj)
                            + CHAIN_ROUNDINGS * (u * t + floor(term, (a, pj), (e, dj))))
            tsum[j] += t
            count[j] += 1
    return fwd[-1], [_clean(err[i]) for i in graph.leaves]


def _run(graph: Graph, same: list[int], rng: random.Random | None, u: float,
         output_form: bool, inputs_round: bool = False) -> tuple[float, list[float]] | None:
    """One float evaluation of value and gradients, each result moved by <= 2u.

    None when the moves carry an operand out of its op's domain (the log of a
    difference whose sign flips): that run is no valid evaluation. With
    ``inputs_round`` the leaves and constants are moved too (a float32
    engine rounds them).
    """
    nodes = graph.nodes
    n = len(nodes)
    s = 2.0 * u
    uni = rng.uniform if rng is not None else None

    def jiggle(x: float) -> float:
        return x + x * s * uni(-1.0, 1.0) if uni is not None else x

    vals: list[float] = [0.0] * n
    parts: list[tuple[float, ...]] = [()] * n
    for i, node in enumerate(nodes):
        c = same[i]
        if c != i:
            vals[i], parts[i] = vals[c], parts[c]
            continue
        if node.op == "leaf":
            vals[i] = jiggle(node.value) if inputs_round else node.value  # type: ignore[assignment,arg-type]
            continue
        op = OPS[node.op]
        xs = node_operands(node, vals)
        if inputs_round and node.const is not None:
            xs = (*xs[:-1], jiggle(xs[-1]))
        if op.domain(*xs):
            return None
        try:
            out, p = op.eval(math, *xs)
            if not _exact_copy(node, same):
                out = jiggle(out)
        except OverflowError:
            out, p = math.inf, (math.inf,) * op.arity
        except (ValueError, ZeroDivisionError):
            return None
        vals[i] = out
        try:
            if output_form and op.output_form is not None:
                p = op.output_form(math, *xs, out) or p
        except (OverflowError, ZeroDivisionError):
            p = (math.inf,) * op.arity
        parts[i] = tuple(jiggle(float(q)) for q in p)
    adj = [0.0] * n
    adj[-1] = 1.0
    for i in range(n - 1, -1, -1):
        a = adj[i]
        if a == 0.0 or nodes[i].op == "leaf":
            continue
        for j, pj in zip(nodes[i].args, parts[i], strict=True):
            adj[j] = jiggle(adj[j] + jiggle(a * pj))
    return vals[-1], [adj[i] for i in graph.leaves]


def _deviation(run: float, ref: float) -> float:
    if run == ref:
        return 0.0
    return _clean(abs(run - ref)) if math.isfinite(ref) else math.inf


def reference(graph: Graph, exact: Any = None, dtype: str = "float64",
              seed: int = 0) -> tuple[float, list[float], float, list[float], int]:
    """(linear value, linear grads, mca value, mca grads, runs kept), as the model
    computed them before its passes were made flat."""
    u = UNIT_ROUNDOFF[dtype]
    same = canonical(graph)
    lin_v, lin_g = _linear(graph, u, dtype, same)
    if exact is not None:
        ref_v = float(exact.value_f64)
        ref_g = [float(g) for g in exact.grad_f64]
    else:
        ref = _run(graph, same, None, u, output_form=False)
        assert ref is not None
        ref_v, ref_g = ref
    rng = random.Random(seed)
    mca_v = 0.0
    mca_g = [0.0] * len(lin_g)
    runs = 0
    for k in range(MCA_RUNS):
        run = _run(graph, same, rng, u, output_form=bool(k % 2),
                   inputs_round=dtype != "float64")
        if run is None:
            continue
        runs += 1
        v, g = run
        mca_v = max(mca_v, _deviation(v, ref_v))
        mca_g = [max(m, _deviation(x, r)) for m, x, r in zip(mca_g, g, ref_g, strict=True)]
    return lin_v, lin_g, mca_v, mca_g, runs
