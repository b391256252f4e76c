"""Speed and memory of gradcert's reference engine, side by side with micrograd.

One seeded random DAG (add, mul, pow, relu, with shared subexpressions) is
generated once as a plan, then replayed, interleaved within one run, on

- ``gradcert.engine.Value`` (build the graph, then ``backward``),
- ``micrograd.engine.Value`` from PyPI (the same; its recursive topological
  sort needs ``sys.setrecursionlimit`` raised, which this script does),
- bare Python floats: the same op loop with no graph, the CPython floor.

Printed: forward+backward throughput (median of the repeats), the ratios
gradcert/micrograd and gradcert/floor (median of the per-repeat ratios, so
each ratio is taken side by side), with the cyclic garbage collector in its
default state and, as a secondary line, paused around each measurement;
bytes per node (tracemalloc over the graph build); and the time per node of
a chain's build and backward at 10^4, 10^5 and 10^6 ops, which is flat when
backward is linear in the graph.

    python bench/bench_engine.py [--nodes N] [--repeats R] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

# op codes of a plan step (code, i, j, c): operands are node indices
ADD, MUL, ADDC, MULC, POW, RELU = range(6)
OP_NAMES = ("add", "mul", "addc", "mulc", "pow", "relu")
LO, HI = 1e-3, 1e3  # every node's |value| stays in [LO, HI], or is an exact 0 (relu)
RECURSION_LIMIT_MIN = 10_000


@dataclass
class Plan:
    """A seeded DAG as data: leaf inputs, then steps (op code, i, j, const).

    Node k < len(inputs) is leaf k; node len(inputs) + s is step s, whose
    operands i and j (j = -1 if unused) are earlier node indices. The last
    node is the output, and every node is an ancestor of it.
    """

    inputs: list[float]
    steps: list[tuple[int, int, int, float]]
    seed: int

    @property
    def nodes(self) -> int:
        return len(self.inputs) + len(self.steps)


def make_plan(nodes: int, seed: int = 0, leaves: int = 64) -> Plan:
    """Generate a DAG of ``nodes`` nodes whose float64 values stay bounded.

    Each step draws its first operand from the nodes nobody uses yet (so the
    graph stays connected and the final sum reaches every node), its second
    from the last few nodes, from anywhere before, from the unused ones, or
    the first operand again (``x * x``, ``x + x``). The op is drawn, then
    kept only if its float64 result stays in the sane range (pow 0.5 only on
    positives, pow -1 only away from 0); the unused nodes are finally summed
    pairwise into the output.

    >>> plan = make_plan(500, seed=1)
    >>> plan.nodes, len(plan.inputs)
    (500, 64)
    >>> abs(replay_floats(plan)[-1]) < float("inf")
    True
    """
    if nodes < 2 * leaves:
        raise ValueError(f"make_plan: nodes={nodes} must be at least 2 * leaves = {2 * leaves}")
    rng = random.Random(seed)
    rand, choice, randrange = rng.random, rng.choice, rng.randrange
    vals = [rng.uniform(0.5, 2.0) * choice((-1.0, 1.0)) for _ in range(leaves)]
    inputs = list(vals)
    steps: list[tuple[int, int, int, float]] = []
    unused = list(range(leaves))  # nodes no step uses yet

    def take_unused() -> int:
        k = randrange(len(unused))
        unused[k], unused[-1] = unused[-1], unused[k]
        return unused.pop()

    # the final pairwise sum of `unused` costs len(unused) - 1 steps
    while len(vals) + len(unused) - 1 < nodes:
        n = len(vals)
        last = n + len(unused) == nodes  # then consume an unused node, not to overshoot
        i = take_unused() if last or rand() < 0.85 else n - 1 - randrange(min(n, 8))
        x = vals[i]
        for _ in range(8):
            r = rand()
            j, c, k = -1, 0.0, -1
            if r < 0.55:  # a binary op on two nodes
                op = ADD if rand() < 0.55 else MUL
                s = rand()
                if s < 0.1:
                    j = i  # the same node as both operands
                elif s < 0.45:
                    j = n - 1 - randrange(min(n, 16))  # a recent node
                elif s < 0.7 or not unused:
                    j = randrange(n)  # anywhere before
                else:
                    k = randrange(len(unused))  # a node nobody uses yet
                    j = unused[k]
                v = x + vals[j] if op == ADD else x * vals[j]
            elif r < 0.65:
                op, c = ADDC, choice((-1.5, -0.5, 0.25, 1.0, 2.0))
                v = x + c
            elif r < 0.75:
                op, c = MULC, choice((-0.5, 0.25, 0.5, 0.75, -1.25))
                v = x * c
            elif r < 0.9:
                op = POW
                if x > 0.25 and rand() < 0.5:
                    c = 0.5
                elif abs(x) > 1.0 and rand() < 0.5:
                    c = -1.0
                else:
                    c = 2.0
                v = x**c
            else:
                op = RELU
                v = x if x > 0.0 else 0.0
                if x != 0.0:  # relu may give an exact 0, which add and relu then take
                    break
            if LO <= abs(v) <= HI:
                if k >= 0:
                    unused[k] = unused[-1]
                    unused.pop()
                break
        else:  # nothing in range: scale towards 1, which always is
            j = -1
            if x == 0.0:
                op, c = ADDC, 1.0
            else:
                op, c = MULC, 0.5 if abs(x) > 1.0 else 2.0
            v = x + c if op == ADDC else x * c
        steps.append((op, i, j, c))
        vals.append(v)
        unused.append(n)
    while len(unused) > 1:
        i, j = unused.pop(), unused.pop()
        n = len(vals)
        steps.append((ADD, i, j, 0.0))
        vals.append(vals[i] + vals[j])
        unused.insert(0, n)
    return Plan(inputs, steps, seed)


def replay_floats(plan: Plan) -> list[float]:
    """Evaluate the plan on bare floats: the op loop with no graph (the floor).

    >>> replay_floats(Plan([2.0, 3.0], [(MUL, 0, 1, 0.0), (POW, 2, -1, 0.5)], 0))[-1]
    2.449489742783178
    """
    v = list(plan.inputs)
    push = v.append
    for op, i, j, c in plan.steps:
        if op == ADD:
            push(v[i] + v[j])
        elif op == MUL:
            push(v[i] * v[j])
        elif op == POW:
            push(v[i] ** c)
        elif op == ADDC:
            push(v[i] + c)
        elif op == MULC:
            push(v[i] * c)
        else:
            x = v[i]
            push(x if x > 0.0 else 0.0)
    return v


def replay_values(plan: Plan, value: Callable[[float], Any]) -> list[Any]:
    """Build the plan's graph with a micrograd-style ``Value`` class; all nodes.

    The same loop as :func:`replay_floats`, with ``.relu()`` for relu.

    >>> from gradcert.engine import Value
    >>> replay_values(Plan([2.0, 3.0], [(MUL, 0, 1, 0.0), (POW, 2, -1, 0.5)], 0), Value)[-1].data
    2.449489742783178
    """
    v = [value(x) for x in plan.inputs]
    push = v.append
    for op, i, j, c in plan.steps:
        if op == ADD:
            push(v[i] + v[j])
        elif op == MUL:
            push(v[i] * v[j])
        elif op == POW:
            push(v[i] ** c)
        elif op == ADDC:
            push(v[i] + c)
        elif op == MULC:
            push(v[i] * c)
        else:
            push(v[i].relu())
    return v


# -- engines ------------------------------------------------------------------


def _gradcert_value() -> Any:
    from gradcert.engine import Value

    return Value


def _micrograd_value() -> Any:
    try:
        from micrograd.engine import Value
    except ImportError:
        return None
    return Value


def ensure_recursion_limit(nodes: int) -> int:
    """Raise the recursion limit for micrograd's recursive topological sort."""
    need = max(RECURSION_LIMIT_MIN, 2 * nodes + 1000)
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)
    return sys.getrecursionlimit()


def _paused(gc_paused: bool) -> AbstractContextManager[None]:
    from gradcert.engine.value import no_gc

    return no_gc() if gc_paused else nullcontext()


def time_graph(plan: Plan, value: Any, gc_paused: bool) -> tuple[float, float, Any]:
    """Seconds to build the graph and to run backward; and the graph's nodes."""
    gc.collect()
    with _paused(gc_paused):
        t0 = time.perf_counter()
        v = replay_values(plan, value)
        t1 = time.perf_counter()
        v[-1].backward()
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, v


def time_floats(plan: Plan, gc_paused: bool) -> float:
    """Seconds for the plain-float forward."""
    gc.collect()
    with _paused(gc_paused):
        t0 = time.perf_counter()
        replay_floats(plan)
        t1 = time.perf_counter()
    return t1 - t0


def check_agreement(plan: Plan, floats: Sequence[float], nodes: Sequence[Any], name: str,
                    reference: Sequence[Any] | None = None, rtol: float = 1e-9) -> None:
    """Forward values equal to the floor's exactly; leaf grads close to the reference's."""
    for k, (x, v) in enumerate(zip(floats, nodes, strict=True)):
        if x != v.data:
            raise AssertionError(f"{name}: node {k} value {v.data!r} != plain float {x!r}")
    if reference is None:
        return
    leaves = range(len(plan.inputs))
    scale = max(abs(reference[k].grad) for k in leaves) or 1.0
    for k in leaves:
        a, b = nodes[k].grad, reference[k].grad
        if not abs(a - b) <= rtol * scale:
            raise AssertionError(f"{name}: leaf {k} grad {a!r} != reference {b!r} (rtol {rtol})")


def bytes_per_node(plan: Plan, value: Any | None) -> float:
    """tracemalloc's net allocation for building the graph (float list if None), per node.

    Only the output is kept (it holds every node); the list used to build is
    dropped before measuring.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        if value is None:
            kept: Any = replay_floats(plan)
        else:
            kept = replay_values(plan, value)[-1]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    gc.collect()
    return (after - before) / plan.nodes


def chain(n: int, value: Any) -> Any:
    """A chain of n ops on one leaf: alternately ``v * 0.5`` and ``v + x``."""
    x = value(1.0)
    v = x
    for k in range(n):
        v = v * 0.5 if k & 1 else v + x
    return v


def time_chain(n: int, value: Any, gc_paused: bool = False) -> tuple[float, float]:
    """Seconds per node for building a chain of n ops and for its backward."""
    gc.collect()
    with _paused(gc_paused):
        t0 = time.perf_counter()
        v = chain(n, value)
        t1 = time.perf_counter()
        v.backward()
        t2 = time.perf_counter()
    del v
    gc.collect()
    return (t1 - t0) / n, (t2 - t1) / n


# -- the run ------------------------------------------------------------------


def run(nodes: int, repeats: int, seed: int, chains: Sequence[int],
        out: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything; return the figures as a JSON-ready dict."""
    limit = ensure_recursion_limit(nodes)
    t = time.perf_counter()
    plan = make_plan(nodes, seed)
    gen_s = time.perf_counter() - t
    gc.collect()  # untracks the plan's tuples, so GC passes do not scan them
    engines = {"gradcert": _gradcert_value(), "micrograd": _micrograd_value()}
    engines = {k: v for k, v in engines.items() if v is not None}
    floats = replay_floats(plan)
    ref = None
    for name, value in engines.items():  # like with like, before timing
        v = replay_values(plan, value)
        v[-1].backward()
        check_agreement(plan, floats, v, name, ref)
        ref = ref or v
    assert ref is not None
    zero = sum(1 for x in ref if x.grad == 0.0) / plan.nodes
    del ref, v
    gc.collect()

    runs: dict[str, dict[str, list[float]]] = {}
    for mode in ("gc_on", "gc_paused"):
        rec = runs[mode] = {f"{e}_{p}": [] for e in engines for p in ("build", "backward")}
        rec["floor"] = []
        order = [*engines, "floor"]
        for r in range(repeats):
            for name in order[r % len(order):] + order[:r % len(order)]:
                if name == "floor":
                    rec["floor"].append(time_floats(plan, mode == "gc_paused"))
                    continue
                b, w, g = time_graph(plan, engines[name], mode == "gc_paused")
                del g
                rec[f"{name}_build"].append(b)
                rec[f"{name}_backward"].append(w)
    mem = {name: bytes_per_node(plan, value) for name, value in engines.items()}
    mem["floor"] = bytes_per_node(plan, None)

    chain_rows = []
    gv = engines["gradcert"]
    for n in chains:
        k = 3 if n <= 100_000 else 1
        on = [time_chain(n, gv) for _ in range(k)]
        off = [time_chain(n, gv, gc_paused=True) for _ in range(k)]
        chain_rows.append({
            "ops": n,
            "build_ns_per_node": 1e9 * statistics.median(b for b, _ in on),
            "backward_ns_per_node": 1e9 * statistics.median(w for _, w in on),
            "build_gc_paused_ns_per_node": 1e9 * statistics.median(b for b, _ in off),
            "backward_gc_paused_ns_per_node": 1e9 * statistics.median(w for _, w in off),
        })

    result: dict[str, Any] = {
        "nodes": plan.nodes, "leaves": len(plan.inputs), "seed": seed, "repeats": repeats,
        "ops": {name: sum(1 for s in plan.steps if s[0] == code) for code, name in
                enumerate(OP_NAMES)},
        "zero_grad_share": zero, "generate_s": gen_s, "recursion_limit": limit,
        "python": platform.python_version(), "machine": platform.machine(),
        "gc_threshold": gc.get_threshold(), "raw_s": runs,
        "bytes_per_node": mem, "chain": chain_rows, "modes": {},
    }
    for mode, rec in runs.items():
        fl = rec["floor"]
        row: dict[str, Any] = {"floor_nodes_per_s": plan.nodes / statistics.median(fl)}
        for name in engines:
            tot = [b + w for b, w in zip(rec[f"{name}_build"], rec[f"{name}_backward"],
                                         strict=True)]
            row[name] = {
                "nodes_per_s": plan.nodes / statistics.median(tot),
                "build_nodes_per_s": plan.nodes / statistics.median(rec[f"{name}_build"]),
                "backward_nodes_per_s": plan.nodes / statistics.median(rec[f"{name}_backward"]),
                "x_floor": statistics.median(t / f for t, f in zip(tot, fl, strict=True)),
                "total_s": tot,
            }
        if "micrograd" in engines:
            row["gradcert_over_micrograd"] = statistics.median(
                m / g for m, g in zip(row["micrograd"]["total_s"], row["gradcert"]["total_s"],
                                      strict=True))
        result["modes"][mode] = row
    return result


def report(res: dict[str, Any]) -> str:
    """The figures as a small text table."""
    lines = [
        f"DAG: {res['nodes']:,} nodes ({res['leaves']} leaves; "
        + ", ".join(f"{k} {v:,}" for k, v in res["ops"].items())
        + f"), seed {res['seed']}, median of {res['repeats']} interleaved repeats",
        f"Python {res['python']} ({res['machine']}), gc thresholds {res['gc_threshold']}; "
        f"recursion limit raised to {res['recursion_limit']:,} for micrograd's recursive sort",
        f"{res['zero_grad_share']:.1%} of nodes get a zero gradient (relu)",
        "",
        f"{'forward+backward':<26}{'nodes/s':>12}{'build/s':>12}{'backward/s':>12}"
        f"{'x floor':>9}{'vs micrograd':>14}",
    ]
    for mode, label in (("gc_on", "GC on (default)"), ("gc_paused", "GC paused")):
        row = res["modes"][mode]
        ratio = row.get("gradcert_over_micrograd")
        for name in ("gradcert", "micrograd"):
            if name not in row:
                continue
            e = row[name]
            vs = f"{ratio:.2f}x" if (name == "gradcert" and ratio) else ""
            lines.append(f"{name + ', ' + label:<26}{e['nodes_per_s']:>12,.0f}"
                         f"{e['build_nodes_per_s']:>12,.0f}{e['backward_nodes_per_s']:>12,.0f}"
                         f"{e['x_floor']:>8.1f}x{vs:>14}")
        lines.append(f"{'plain floats, ' + label:<26}{row['floor_nodes_per_s']:>12,.0f}"
                     f"{'(forward only: the floor)':>36}")
    mem = res["bytes_per_node"]
    lines += ["", "bytes per node (tracemalloc, graph build): "
              + ", ".join(f"{k} {v:.0f}" for k, v in mem.items())]
    if res["chain"]:
        lines += ["", f"{'gradcert chain, ns/node':<26}{'build':>12}{'build':>12}"
                      f"{'backward':>12}",
                  f"{'':<26}{'(GC on)':>12}{'(GC paused)':>12}{'(GC on)':>12}"]
        for c in res["chain"]:
            lines.append(f"{format(c['ops'], ',') + ' ops':>26}{c['build_ns_per_node']:>12.0f}"
                         f"{c['build_gc_paused_ns_per_node']:>12.0f}"
                         f"{c['backward_ns_per_node']:>12.0f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200_000, help="DAG size (default 200,000)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chain", type=int, default=1_000_000,
                    help="longest chain for the linearity check (0: skip; default 10^6)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")
    chains = [n for n in (10_000, 100_000, 1_000_000) if n <= args.chain]
    if args.chain and args.chain not in chains:
        chains.append(args.chain)
    res = run(args.nodes, args.repeats, args.seed, chains)
    print(json.dumps(res, indent=1) if args.json else report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
