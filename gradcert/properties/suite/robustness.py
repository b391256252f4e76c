"""Level ``robustness``: depth, size, domain edges and precision."""

from __future__ import annotations

import math
import random
import sys
import threading
import time
from typing import Any

from gradcert.graph import Graph, Node, evaluate
from gradcert.ops import OPS
from gradcert.properties.assertions import compare, fmt, oracle
from gradcert.properties.runner import EngineRaised, Finding, TimedOut
from gradcert.properties.suite.ops import op_graph, raise_finding

DEFAULT_RECURSION_LIMIT = 1000  # CPython's default


def sum_chain(n: int, seed: int = 0) -> Graph:
    """What ``sum(xs)`` builds over ``n`` leaves: ``0 + x0``, then ``n - 1`` adds."""
    rng = random.Random(seed)
    nodes = [Node.leaf(rng.choice((0.5, 1.0, 1.5, 2.0, 0.25))) for _ in range(n)]
    nodes.append(Node("raddc", (0,), 0.0))
    for i in range(1, n):
        nodes.append(Node("add", (len(nodes) - 1, i)))
    return Graph(tuple(nodes))


def _chain_ok(run: Any, g: Graph) -> str | None:
    """Why the sum chain's result is wrong (None if right): all gradients exactly 1, the
    value within (n - 1) unit roundoffs of sum |x| (the leaves are exact in binary)."""
    xs = g.inputs
    exact = math.fsum(xs)
    if not abs(float(run.value) - exact) <= len(xs) * 2.0**-53 * math.fsum(map(abs, xs)):
        return f"the value is {fmt(run.value)}, the sum is {fmt(exact)}"
    bad = [i for i, d in enumerate(run.grads) if float(d) != 1.0]
    if bad:
        return f"{len(bad)} leaf gradients are not 1.0 (leaf {bad[0]}: {fmt(run.grads[bad[0]])})"
    return None


def _chain_body(check: Any, n: int, raised: bool) -> str:
    setup = ("    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * N + 1000))\n"
             "    threading.stack_size(512 * 2**20)\n" if raised else "")
    return ("import threading\n\n"
            f"N = {n}\n\n\n"
            "def run(result):\n"
            "    try:\n"
            f"        xs = [{check.adapter.make_value}(1.0) for _ in range(N)]\n"
            "        out = sum(xs)\n"
            "        backward(out)\n"
            "        gs = [grad(x) for x in xs]\n"
            "        result.extend([value(out), min(gs), max(gs)])\n"
            "    except BaseException as e:\n"
            "        result.append(e)\n\n\n"
            "def main():\n" + setup +
            "    result = []\n"
            "    t = threading.Thread(target=run, args=(result,))\n"
            "    t.start()\n    t.join()\n"
            "    if len(result) != 3:\n"
            "        print(f'sum() over {N} Values: backward raised {result[-1]!r}')\n"
            "        return 1\n"
            "    print(f'sum() over {N} Values: value {result[0]!r}, gradients from '\n"
            "          f'{result[1]!r} to {result[2]!r}')\n"
            "    return 0 if result == [float(N), 1.0, 1.0] else 1\n")


def _run_in_thread(check: Any, g: Graph, *, stack: int | None, limit: int | None,
                   timeout: float) -> Any:
    """``run_graph`` in a fresh thread (with ``stack`` bytes and recursion ``limit`` if
    given); the Run, or the exception it raised; None if it did not finish in time."""
    from gradcert.adapters.base import run_graph

    box: list[Any] = []

    def work() -> None:
        try:
            box.append(run_graph(check.adapter, g))
        except BaseException as e:  # RecursionError, MemoryError, anything the engine does
            box.append(e)

    old_stack = threading.stack_size()
    old_limit = sys.getrecursionlimit()
    try:
        if stack:
            threading.stack_size(stack)
        if limit:
            sys.setrecursionlimit(limit)
        t = threading.Thread(target=work, name="gradcert-deep", daemon=True)
        t.start()
    finally:
        threading.stack_size(old_stack)
    t.join(timeout)
    sys.setrecursionlimit(old_limit)
    return box[0] if box else None


def test_chain_10k(gradcert_check: Any) -> None:
    """sum() over 10,000 Values, under Python's default recursion limit and thread stack."""
    check = gradcert_check
    check.require("add", "raddc")
    g = sum_chain(10_000, check.seed)
    res = _run_in_thread(check, g, stack=None, limit=DEFAULT_RECURSION_LIMIT,
                         timeout=check.profile.test_timeout / 3)
    check.record.checked()
    why = _why(res, g)
    if why is None:
        return
    if res is not None and not isinstance(res, BaseException):
        raise_finding(check, Finding(f"sum() over 10,000 Values: {why}", None,
                                     repro={"kind": "chain", "body": _chain_body(check, 10_000,
                                                                                  False)}))
    if res is None:
        raise_finding(check, TimedOut(
            f"sum() over 10,000 Values did not finish within "
            f"{check.profile.test_timeout / 3:g} s", None,
            repro={"kind": "chain", "body": _chain_body(check, 10_000, False)}))
    depth = _failing_depth(check)
    if depth:
        check.record.notes["fails_from_depth"] = depth
    raise_finding(check, Finding(
        f"sum() over 10,000 Values does not backpropagate under Python's default settings: "
        f"{why}" + (f"; it first fails at depth ~{depth}" if depth else ""), None,
        expected="value 10000.0, every gradient 1.0", actual=why,
        repro={"kind": "chain", "body": _chain_body(check, 10_000, False)}))


def _why(res: Any, g: Graph) -> str | None:
    if res is None:
        return "it did not finish in time"
    if isinstance(res, BaseException):
        original = getattr(res, "original", None) or res
        return f"{type(original).__name__}: {str(original)[:200]}"
    return _chain_ok(res, g)


def _failing_depth(check: Any) -> int | None:
    """The smallest depth (to ~5%) at which sum() fails under the default settings."""
    lo, hi = 10, 10_000
    if _why(_run_in_thread(check, sum_chain(lo), stack=None, limit=DEFAULT_RECURSION_LIMIT,
                           timeout=30), sum_chain(lo)) is not None:
        return lo
    while hi - lo > max(1, lo // 20):
        mid = (lo + hi) // 2
        g = sum_chain(mid)
        if _why(_run_in_thread(check, g, stack=None, limit=DEFAULT_RECURSION_LIMIT,
                               timeout=30), g) is None:
            lo = mid
        else:
            hi = mid
    return hi


def test_deep_chain(gradcert_check: Any) -> None:
    """sum() chains up to 100,000 deep, in a thread with a 512 MiB stack and a recursion
    limit of 20 frames per node; reports the deepest that works and the first that fails."""
    check = gradcert_check
    check.require("add", "raddc")
    ok = 0
    for n in check.profile.deep_depths:
        g = sum_chain(n, check.seed)
        t0 = time.perf_counter()
        res = _run_in_thread(check, g, stack=512 * 2**20, limit=max(sys.getrecursionlimit(),
                                                                   20 * n + 1000),
                             timeout=check.profile.test_timeout / 3)
        check.record.checked()
        why = _why(res, g)
        if why is not None:
            check.record.notes.update(max_ok_depth=ok, failed_depth=n, error=why)
            raise_finding(check, (TimedOut if res is None else Finding)(
                f"a chain {n:,} deep fails even with a large stack and recursion limit: {why} "
                f"(deepest that worked: {ok:,})", None, expected="value and every gradient 1.0",
                actual=why, repro={"kind": "chain", "body": _chain_body(check, n, True)}))
        ok = n
        check.record.notes[f"seconds_at_{n}"] = round(time.perf_counter() - t0, 3)
    check.record.notes["max_ok_depth"] = ok


_INVERSE = {"exp": "log", "log": "exp"}


def random_dag(n: int, ops: frozenset[str], seed: int) -> Graph:
    """A seeded random DAG of ``n`` op nodes over ``ops`` (plus ~n/10 leaves), with heavy
    fan-out, values kept in 1e-3 <= |v| <= 10 and derivative sums kept small, so it stays finite."""
    rng = random.Random(seed)
    unary: list[str] = [o for o in ("tanh", "sigmoid", "mulc", "addc", "neg", "relu", "exp", "log")
             if o in ops]
    binary: list[str] = [o for o in ("add", "mul", "sub") if o in ops]
    nodes: list[Node] = []
    vals: list[float] = []
    for _ in range(max(2, n // 10)):
        nodes.append(Node.leaf(rng.uniform(-1.0, 1.0)))
        vals.append(nodes[-1].value)  # type: ignore[arg-type]
    leaves = len(nodes)
    while len(nodes) < leaves + n:
        k = len(nodes)
        a = k - 1 if rng.random() < 0.6 else rng.randrange(k)
        if binary and rng.random() < 0.5:
            op = rng.choice(binary)
            b = rng.randrange(max(0, k - 50), k)
            args: tuple[int, ...] = (a, b)
            const = None
        elif unary:
            op = rng.choice(unary)
            args, const = (a,), {"mulc": 0.5, "addc": 0.25}.get(op)
        else:
            op, args, const = binary[0], (a, rng.randrange(k)), None
        if nodes[a].op == _INVERSE.get(op):
            continue  # exp(log(y)) is exactly y: nothing to test, and hard to certify
        row = OPS[op]
        xs = [vals[i] for i in args] + ([const] if const is not None else [])
        if row.domain(*xs):
            continue
        try:
            v = row.forward(math, *xs)
        except (OverflowError, ValueError, ZeroDivisionError):
            continue
        if not 1e-3 <= abs(v) <= 10.0 or (op == "mul" and max(abs(vals[i]) for i in args) > 1.0):
            continue  # far from 0, so no exact cancellation and no relu kink
        nodes.append(Node(op, args, const))
        vals.append(v)
    return Graph(tuple(nodes))


def reverse_mode(graph: Graph) -> tuple[float, list[float]]:
    """Value and leaf gradients in plain float64 reverse mode over the op table: the
    reference for the large graph, where the point is scale, not the last ulp."""
    vals = evaluate(graph)
    adj = [0.0] * len(graph)
    adj[-1] = 1.0
    for i in range(len(graph) - 1, -1, -1):
        n = graph.nodes[i]
        if n.op == "leaf" or not adj[i]:
            continue
        xs = [vals[a] for a in n.args] + ([n.const] if n.const is not None else [])
        for a, d in zip(n.args, OPS[n.op].partials(math, *xs, vals[i]), strict=False):
            adj[a] += adj[i] * d
    return vals[-1], [adj[i] for i in graph.leaves]


LARGE_RTOL = 1e-9  # relative to the largest |gradient| (1e-3 in float32): structure, not rounding


def test_large_graph(gradcert_check: Any) -> None:
    """A seeded 100,000-node random DAG with heavy fan-out: forward and backward within
    the time bound, value and gradients within 1e-9 (relative to the largest) of a
    float64 reverse-mode reference (accuracy itself is graphs.oracle's business)."""
    check = gradcert_check
    ops = frozenset(check.caps.ops)
    if not ops & {"add", "mul", "sub"} or not ops & {"tanh", "sigmoid", "mulc", "addc", "neg",
                                                      "exp", "log", "relu"}:
        check.unsupported("the random graph needs a binary and a unary op")
    g = random_dag(check.profile.large_nodes, ops, check.seed)
    bound = check.profile.large_time_bound
    t0 = time.perf_counter()
    res = _run_in_thread(check, g, stack=512 * 2**20, limit=max(sys.getrecursionlimit(),
                                                               20 * len(g) + 1000),
                         timeout=bound)
    seconds = time.perf_counter() - t0
    check.record.checked()
    check.record.notes.update(nodes=len(g), seconds=round(seconds, 3),
                              nodes_per_s=round(len(g) / seconds))
    if res is None:
        raise_finding(check, TimedOut(
            f"forward and backward of a {len(g):,}-node graph took longer than {bound:g} s",
            None, expected=f"<= {bound:g} s", actual="not finished"))
    if isinstance(res, BaseException):
        raise_finding(check, EngineRaised(None, res, f"running a {len(g):,}-node graph"))
    value, grads = reverse_mode(g)
    rtol = LARGE_RTOL if check.caps.dtype == "float64" else 1e-3
    scale = max(1.0, max(map(abs, grads)))
    got = [float(x) for x in res.grads]
    bad = [i for i, (a, e) in enumerate(zip(got, grads, strict=True))
           if not abs(a - e) <= rtol * scale]
    if not abs(float(res.value) - value) <= rtol * max(1.0, abs(value)) or bad:
        i = bad[0] if bad else 0
        raise_finding(check, Finding(
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
        try:
            if check.caps.functional:  # no handles: the value of a whole run
                from gradcert.adapters.base import run_graph

                v = float(run_graph(check.adapter, op_graph(op, xs, const)).value)
            else:
                hs_ = [check.adapter.leaf(x) for x in xs]
                v = float(check.adapter.value(check.adapter.apply(op, hs_, const)))
        except Exception as e:
            original = getattr(e, "original", None) or e
            seen[case] = f"exception: {type(original).__name__}: {str(original)[:120]}"
            continue
        finally:
            check.record.checked()
        if math.isfinite(v):
            seen[case] = f"silently finite: {v!r}"
            silent.append((case, op, xs, const, v))
        else:
            seen[case] = f"inf/nan: {v!r}"
    check.record.notes["domain_edges"] = seen
    if silent:
        case, op, xs, const, v = silent[0]
        raise_finding(check, Finding(
            "at the domain's edge the engine returns a finite number without complaint: "
            + "; ".join(f"{c} = {fmt(val)}" for c, _, _, _, val in silent),
            op_graph(op, xs, const) if op != "div" else None,
            [f"{c}: {seen[c]}" for c, *_ in cases],
            expected="an exception, inf or nan", actual={c: fmt(val) for c, *_r, val in silent},
            repro={"kind": "domain", "body": _domain_body(check, silent)}))


def _domain_body(check: Any, silent: list[Any]) -> str:
    V = check.adapter.make_value
    lines = ["CASES = ["]
    for case, op, xs, const, _v in silent:
        expr = OPS[op].template.format(*(f"{V}({x!r})" for x in xs),
                                       c=repr(const) if const is not None else "")
        lines.append(f"    ({case!r}, lambda: {expr}),")
    lines.append("]")
    return ("\n".join(lines) + "\n\n\n"
            "def main():\n"
            "    bad = 0\n"
            "    for case, f in CASES:\n"
            "        try:\n"
            "            v = value(f())\n"
            "        except Exception as e:\n"
            "            print(f'{case}: raises {type(e).__name__}: {e} (fine)')\n"
            "            continue\n"
            "        ok = not math.isfinite(v)\n"
            "        bad += not ok\n"
            "        print(f'{case}: {v!r}' + ('' if ok else '   <-- silently finite'))\n"
            "    return 1 if bad else 0\n")


def test_dtype(gradcert_check: Any) -> None:
    """Inputs with long mantissas: a float64 engine keeps them exactly and computes
    x * y + x within float64's tolerance; a float32 one within float32's. A Value class
    takes Python floats, so it makes the float64 claim even where it is found to store
    float32 (it is judged as float32 by the other properties)."""
    from gradcert.adapters.base import run_graph
    from gradcert.graph import trace

    check = gradcert_check
    check.require("mul", "add")
    x, y = 1.0 + 2.0**-40, 3.0 - 2.0**-38
    g = trace(lambda a, b: a * b + a, [x, y])
    run = check.call(lambda: run_graph(check.adapter, g), g, "running the graph")
    truth = oracle(check, g)
    assert truth is not None
    from gradcert.adapters.generic import GenericAdapter

    dtype = check.caps.dtype
    check.record.notes["declared"] = dtype
    # A Value class takes Python floats: that is a float64 claim, whatever it does inside.
    takes_floats = isinstance(check.adapter, GenericAdapter)
    if dtype == "float64" or takes_floats:
        if check.caps.functional:  # no handles: read the leaf back through x * 1.0
            one = Graph((Node.leaf(x), Node("mulc", (0,), 1.0)))
            leaf = check.call(lambda: float(run_graph(check.adapter, one).value), one,
                              "reading a leaf")
        else:
            leaf = check.call(lambda: float(check.adapter.value(check.adapter.leaf(x))), g,
                              "reading a leaf")
        if leaf != x:
            raise_finding(check, Finding(
                ("the engine takes Python floats" if takes_floats else
                 "the adapter declares float64") + f", but a leaf holding {x!r} reads back as "
                f"{leaf!r} (float32 rounds it to {float(_f32(x))!r}): it silently computes "
                f"in lower precision", g,
                expected=repr(x), actual=repr(leaf), repro={"kind": "dtype", "body": (
                    f"X = {x!r}  # needs float64: float32 rounds it to {float(_f32(x))!r}\n\n\n"
                    "def main():\n"
                    f"    got = value({check.adapter.make_value}(X))\n"
                    "    print(f'a leaf holding {X!r} reads back as {got!r}')\n"
                    "    return 0 if got == X else 1\n")}))
    check.record.checked()
    check.guard(lambda: compare(check, g, run.value, run.grads, *truth))
    assert evaluate(g)  # the graph is well-formed


def _f32(x: float) -> float:
    import struct

    return float(struct.unpack("f", struct.pack("f", x))[0])
