"""Level ``robustness``: depth, size, domain edges and precision."""

from __future__ import annotations

import math
import struct
from typing import Any

from gradcert.graph import Graph, Node, trace
from gradcert.properties import strategies as gs
from gradcert.properties.assertions import compare, fmt, oracle, reverse_mode
from gradcert.properties.engine import op_graph
from gradcert.properties.runner import (
    EngineCrashed,
    EngineRaised,
    EngineTimeout,
    Finding,
    TimedOut,
)

DEFAULT_RECURSION_LIMIT = 1000  # CPython's default


def _chain_ok(value: float, grads: tuple[float, ...], g: Graph) -> str | None:
    """Why the sum chain's result is wrong (None if right): all gradients exactly 1, the
    value within (n - 1) unit roundoffs of sum |x| (the leaves are exact in binary)."""
    xs = g.inputs
    exact = math.fsum(xs)
    if not abs(value - exact) <= len(xs) * 2.0**-53 * math.fsum(map(abs, xs)):
        return f"the value is {fmt(value)}, the sum is {fmt(exact)}"
    bad = [i for i, d in enumerate(grads) if d != 1.0]
    if bad:
        return f"{len(bad)} leaf gradients are not 1.0 (leaf {bad[0]}: {fmt(grads[bad[0]])})"
    return None


def _chain(check: Any, g: Graph, limit: int | None = None) -> tuple[str, str | None]:
    """Run the sum chain ``g`` under recursion ``limit`` on the host's large stack, or
    without a limit as a plain script runs it (Python's default recursion limit, an 8 MiB
    stack): ("ok", None), ("wrong", why), ("raised", why), ("timeout", why) or
    ("crashed", why)."""
    plain = limit is None
    try:
        r = check.engine.run(g, what=f"a sum() chain {len(g.leaves):,} deep"
                             + (" (default settings)" if plain else ""),
                             cpu=check.profile.chain_cpu,
                             recursion_limit=DEFAULT_RECURSION_LIMIT if plain else limit,
                             default_stack=plain)
    except EngineRaised as e:
        return "raised", e.error.message.removeprefix("the engine raised ")[:200]
    except EngineTimeout as e:
        return "timeout", e.message[:300]
    except EngineCrashed as e:
        return "crashed", e.message[:300]
    why = _chain_ok(r.value, r.grads, g)
    return ("ok", None) if why is None else ("wrong", why)


def _fail(check: Any, status: str, summary: str, graph: Graph | None, **kw: Any) -> None:
    """Report a chain's failure with the outcome its status calls for."""
    f = (TimedOut if status == "timeout" else Finding)(summary, graph, **kw)
    check.fail(f, outcome={"timeout": "timeout", "crashed": "crashed"}.get(status, "failed"))


def _chains(check: Any) -> Any:
    """What builds a chain of ``n`` adds on this engine: ``sum()`` (``0 + x0``, then
    adds), or ``x0 + x1 + ...`` for an engine without ``__radd__``; and its reproducer's
    flag."""
    check.require("add")
    if "raddc" in check.caps.ops:
        return gs.sum_chain, False
    check.record.notes["chain"] = "x0 + x1 + ... (the engine has no __radd__ for sum())"
    return gs.add_chain, True


def test_chain_10k(gradcert_check: Any) -> None:
    """sum() over 10,000 Values (x0 + x1 + ... without __radd__), under Python's default
    settings: its recursion limit, and the 8 MiB stack of a plain script."""
    check = gradcert_check
    chain, adds = _chains(check)
    g = chain(10_000, check.seed)
    status, why = _chain(check, g)
    check.record.checked()
    if status == "ok":
        return
    repro = {"kind": "chain", "n": 10_000, "raised": False, "adds": adds}
    if status != "raised":
        _fail(check, status, f"sum() over 10,000 Values: {why}", None, repro=repro)
    depth = _failing_depth(check, chain)
    if depth:
        check.record.notes["fails_from_depth"] = depth
    check.report(Finding(
        f"sum() over 10,000 Values does not backpropagate under Python's default settings: "
        f"{why}" + (f"; it first fails at depth ~{depth}" if depth else ""), None,
        expected="value 10000.0, every gradient 1.0", actual=why, repro=repro))


def _failing_depth(check: Any, chain: Any, lo: int = 10, hi: int = 10_000) -> int | None:
    """The smallest depth (to ~5%) at which the chain fails under the default settings."""
    if _chain(check, chain(lo))[0] != "ok":
        return lo
    while hi - lo > max(1, lo // 20):
        mid = (lo + hi) // 2
        if _chain(check, chain(mid))[0] == "ok":
            lo = mid
        else:
            hi = mid
    return hi


def test_deep_chain(gradcert_check: Any) -> None:
    """sum() chains up to 100,000 deep, in the host's main thread (a 512 MiB stack) with a
    recursion limit of 20 frames per node; reports the deepest that works and the first
    that fails, and the CPU seconds each took. Apart, as a note: the deepest that works
    under Python's default settings (its recursion limit, a plain script's 8 MiB stack),
    where a recursive sort in C overflows long before it does on the large stack."""
    check = gradcert_check
    chain, adds = _chains(check)
    ok = 0
    default_ok: int | None = 0  # the deepest that works under the default settings
    for n in check.profile.deep_depths:
        g = chain(n, check.seed)
        if default_ok is not None:
            status, why = _chain(check, g)
            if status == "ok":
                default_ok = n
            else:
                check.record.notes["default_settings"] = {"max_ok_depth": default_ok,
                                                          "failed_depth": n, "error": why}
                default_ok = None
        status, why = _chain(check, g, 20 * n + 1000)
        check.record.checked()
        if status != "ok":
            check.record.notes.update(max_ok_depth=ok, failed_depth=n, error=why)
            _fail(check, status,
                  f"a chain {n:,} deep fails even with a large stack and recursion limit: "
                  f"{why} (deepest that worked: {ok:,})", None,
                  expected="value and every gradient 1.0", actual=why,
                  repro={"kind": "chain", "n": n, "raised": True, "adds": adds})
        ok = n
        check.record.notes[f"cpu_seconds_at_{n}"] = round(check.engine.last_cpu, 3)
    check.record.notes["max_ok_depth"] = ok
    if default_ok is not None:
        check.record.notes["default_settings"] = {"max_ok_depth": default_ok}


LARGE_RTOL = 1e-9  # relative to the largest |gradient| (1e-3 in float32): structure, not rounding


def test_large_graph(gradcert_check: Any) -> None:
    """A seeded 100,000-node random DAG with heavy fan-out: forward and backward within
    the profile's CPU bound, value and gradients within 1e-9 (relative to the largest)
    of a float64 reverse-mode reference (accuracy itself is graphs.oracle's business)."""
    check = gradcert_check
    ops = check.sound_ops
    if not ops & {"add", "mul", "sub"} or not ops & {"tanh", "sigmoid", "mulc", "addc", "neg",
                                                      "exp", "log", "relu"}:
        check.unsupported("the random graph needs a binary and a unary op")
    g = gs.random_dag(check.profile.large_nodes, ops, check.seed)
    bound = check.profile.large_cpu
    res = check.call(lambda: check.engine.run(
        g, what=f"a {len(g):,}-node graph", cpu=bound, recursion_limit=20 * len(g) + 1000))
    seconds = check.engine.last_cpu
    check.record.checked()
    check.record.notes.update(nodes=len(g), cpu_seconds=round(seconds, 3),
                              nodes_per_cpu_s=round(len(g) / max(seconds, 1e-3)))
    value, grads = reverse_mode(g)
    rtol = LARGE_RTOL if check.caps.dtype == "float64" else 1e-3
    scale = max(1.0, max(map(abs, grads)))
    got = list(res.grads)
    bad = [i for i, (a, e) in enumerate(zip(got, grads, strict=True))
           if not abs(a - e) <= rtol * scale]
    if not abs(res.value - value) <= rtol * max(1.0, abs(value)) or bad:
        i = bad[0] if bad else 0
        check.report(Finding(
            f"on a {len(g):,}-node graph (seed {check.seed}) "
            + (f"{len(bad)} leaf gradients are off, e.g. leaf {i}: engine {fmt(got[i])}, "
               f"reference {fmt(grads[i])}" if bad else
               f"the value is {fmt(res.value)}, the reference {fmt(value)}"),
            None, expected={"value": fmt(value)}, actual={"value": fmt(res.value)}))


_EDGES = [  # (case, op, operands, const)
    ("log(0)", "log", (0.0,), None),
    ("log(-1)", "log", (-1.0,), None),
    ("exp(1000)", "exp", (1000.0,), None),
    ("0 ** -1", "powc", (0.0,), -1.0),
    ("1 / 0", "div", (1.0, 0.0), None),
    ("1 / x at x = 0", "rdivc", (0.0,), 1.0),
]


def test_domain_edges(gradcert_check: Any) -> None:
    """Each edge is classified: a clear exception, inf/nan, or a silent finite number (a
    finding: the engine clamps or adds an epsilon without saying so)."""
    check = gradcert_check
    cases = [c for c in _EDGES if c[1] in check.caps.ops]
    if not cases:
        check.unsupported("the engine has none of log, exp, powc, div, rdivc")
    seen: dict[str, str] = {}
    silent = []
    for case, op, xs, const in cases:
        g = op_graph(op, xs, const)
        try:
            v = check.call(lambda g=g, case=case: _edge(check, g, case))
        finally:
            check.record.checked()
        if isinstance(v, str):
            seen[case] = v
        elif math.isfinite(v):
            seen[case] = f"silently finite: {v!r}"
            silent.append((case, op, xs, const, v))
        else:
            seen[case] = f"inf/nan: {v!r}"
    check.record.notes["domain_edges"] = seen
    if silent:
        case, op, xs, const, v = silent[0]
        check.report(Finding(
            "at the domain's edge the engine returns a finite number without complaint: "
            + "; ".join(f"{c} = {fmt(val)}" for c, _, _, _, val in silent),
            op_graph(op, xs, const) if op != "div" else None,
            [f"{c}: {seen[c]}" for c, *_ in cases],
            expected="an exception, inf or nan", actual={c: fmt(val) for c, *_r, val in silent},
            repro={"kind": "domain", "cases": [s[:4] for s in silent]}))


def _edge(check: Any, g: Graph, case: str) -> float | str:
    """The value of edge ``g`` (no backward), or what the engine raised, in words."""
    try:
        return check.engine.forward(g, what=case)
    except EngineRaised as e:
        return "exception: " + e.error.message.removeprefix("the engine raised ")[:120]


def test_dtype(gradcert_check: Any) -> None:
    """Inputs with long mantissas: a float64 engine keeps them exactly and computes
    x * y + x within float64's tolerance; a float32 one within float32's. A Value class
    takes Python floats, so it makes the float64 claim even where it is found to store
    float32 (it is judged as float32 by the other properties)."""
    check = gradcert_check
    check.require("mul", "add")
    x, y = 1.0 + 2.0**-40, 3.0 - 2.0**-38
    g = trace(lambda a, b: a * b + a, [x, y])
    run = check.call(lambda: check.engine.run(g))
    truth = oracle(check, g)
    assert truth is not None
    dtype = check.caps.dtype
    check.record.notes["declared"] = dtype
    # A Value class takes Python floats: that is a float64 claim, whatever it does inside.
    takes_floats = check.engine.info.value_class
    if dtype == "float64" or takes_floats:
        # read a leaf back through x * 1.0 (a functional engine has no leaf to read)
        one = Graph((Node.leaf(x),)) if not check.caps.functional else \
            Graph((Node.leaf(x), Node("mulc", (0,), 1.0)))
        leaf = check.call(lambda: check.engine.forward(one, what="reading a leaf"))
        if leaf != x:
            f32 = _f32(x)
            check.report(Finding(
                ("the engine takes Python floats" if takes_floats else
                 "the adapter declares float64") + f", but a leaf holding {x!r} reads back as "
                f"{leaf!r} (float32 rounds it to {f32!r}): it silently computes "
                f"in lower precision", g,
                expected=repr(x), actual=repr(leaf), repro={"kind": "dtype", "x": x, "f32": f32}))
    check.record.checked()
    check.guard(lambda: compare(check, g, run.value, run.grads, *truth))


def _f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])
