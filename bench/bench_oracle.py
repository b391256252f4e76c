"""Oracle speed against the reference engine's float64 forward+backward.

For seeded random graphs of 10, 100, 1,000 and 10,000 nodes (well-conditioned:
mixed add, sub, mul, div, mulc, powc, log, exp, tanh, sigmoid, relu with heavy
sharing; their output depends on a third of their nodes or less), a random
graph of 1,000 nodes whose output depends on every node (the others summed
into it), the same of every op of the table (also sqrt, abs, max, min, log1p,
expm1, erf, sin, cos, pow), and a deep chain of ``(acc * u + (u * u).exp().log())
* 0.5`` steps (1,000 nodes, transcendental-heavy, its gradient shrinking along
the chain), prints the share of nodes the output depends on and the time of

- the reference engine (gradcert.engine.Value) building the graph and running
  backward, from Python source made by gradcert.graph.to_python;
- the certified oracle (exact_graph): error bounds, certification and
  precision escalation, its float-bound screen first;
- the oracle as one plain reverse-mode pass at 117 bits, no error bounds and
  no escalation (exact_graph(graph, prec=117));

each the best of several repeats, and the ratios. Every oracle time includes
planning the graph (on a new Graph object each time, so nothing the graph
keeps from an earlier run is reused) and certifying the value and every leaf
gradient; each node's value is certified (Exact.values_f64), and the exact
results converted to mpf (Exact.value, .grad, .values), only when first read,
which the benchmark does not do.

``--against REV`` also times the oracle of the git revision REV (the
repository's, extracted with ``git archive`` to a temporary directory) in a
child process, on the same graphs, with the reference engine timed again in
that process: its ratio to the reference sits beside this tree's, and "this /
REV" is the quotient of the two ratios ("-" where REV lacks an op of the
graph). Measurements run in ``--rounds`` rounds (3), this tree and REV
alternating, and each time is the best over the rounds. Run:

    python bench/bench_oracle.py                  # add --sizes 10 100 to choose sizes
    python bench/bench_oracle.py --against c931e6d
    python bench/bench_oracle.py --sizes 100000   # one 100,000-node graph, certified
    python bench/bench_oracle.py --refusals 3000  # how many of the strategies' graphs
                                                  # the oracle refuses (Unresolved), and
                                                  # how many of each node's values
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def random_graph(n: int, seed: int = 0, every_op: bool = False, live: bool = False):
    """A well-conditioned random DAG of n nodes, 4 leaves, float64-finite everywhere: of
    add, sub, mul, div, mulc, powc, log, exp, tanh, sigmoid and relu, and with
    ``every_op`` also the rest of the op table (sqrt, abs, max, min, log1p, expm1,
    erf, sin, cos and pow). Its operands are mostly recent nodes, so the output
    depends on a part of it only (a third at 1,000 nodes); ``live`` sums every
    node nothing uses into the output (a chain of adds), so it depends on all."""
    from gradcert.graph import Graph, Node

    rng = random.Random(seed)
    nodes = [Node.leaf(rng.uniform(0.5, 2.0)) for _ in range(4)]
    vals = [nd.value for nd in nodes]
    unary = {"tanh": math.tanh, "sigmoid": lambda t: 1 / (1 + math.exp(-t)), "exp": math.exp,
             "log": math.log, "relu": lambda t: max(t, 0.0)}
    more = {"sqrt": math.sqrt, "abs": abs, "log1p": math.log1p, "expm1": math.expm1,
            "erf": math.erf, "sin": math.sin, "cos": math.cos}
    binary = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
              "div": lambda x, y: x / y if y else 0.0}
    kinds = ["add", "mul", "sub", "div", "mulc", "powc"] + sorted(unary)
    if every_op:
        unary.update(more)
        binary.update(max=max, min=min, pow=lambda x, y: x**y)
        kinds += sorted(more) + ["max", "min", "pow"]
    while len(nodes) < n:
        k = rng.choice(kinds)
        a = rng.randrange(max(0, len(nodes) - 20), len(nodes))  # mostly recent: deep graphs
        b = rng.randrange(len(nodes))
        x, y = vals[a], vals[b]
        if k in binary:
            if ((k == "div" and abs(y) < 0.5) or (k == "mul" and abs(x * y) > 10)
                    or (k == "pow" and not (0.1 < x < 3 and abs(y) < 2))):
                continue
            v = binary[k](x, y)
            if abs(v) > 1e3:
                continue
            nodes.append(Node(k, (a, b)))
        elif k == "mulc":
            nodes.append(Node(k, (a,), 0.7))
            v = x * 0.7
        elif k == "powc":
            if not 0.1 < x < 3:
                continue
            nodes.append(Node(k, (a,), 1.5))
            v = x**1.5
        else:
            if ((k == "log" and x <= 0.1) or (k in ("exp", "expm1") and x > 3)
                    or (k == "sqrt" and x <= 0.1) or (k == "log1p" and x <= -0.5)):
                continue
            nodes.append(Node(k, (a,)))
            v = unary[k](x)
        vals.append(v)
    if live:
        used = {a for nd in nodes for a in nd.args}
        sinks = [i for i, nd in enumerate(nodes) if i not in used and nd.op != "leaf"]
        acc = sinks[0]
        for s in sinks[1:]:
            nodes.append(Node("add", (acc, s)))
            acc = len(nodes) - 1
    return Graph(tuple(nodes))


def live_share(graph) -> float:
    """The share of the graph's nodes its output depends on."""
    live = [False] * len(graph.nodes)
    live[-1] = True
    for i in range(len(live) - 1, -1, -1):
        if live[i]:
            for a in graph.nodes[i].args:
                live[a] = True
    return sum(live) / len(live)


def deep_chain(n: int):
    """About n nodes of ``acc = (acc * u + (u * u).exp().log()) * 0.5`` (6 per step)."""
    from gradcert.graph import trace

    def f(x, u):
        acc = x
        for _ in range(max(1, (n - 2) // 6)):
            acc = (acc * u + (u * u).exp().log()) * 0.5
        return acc

    return trace(f, [0.7, 1.3])


def reference_runner(graph):
    from gradcert.engine import Value
    from gradcert.graph import to_python

    namespace: dict = {}
    exec(to_python(graph), namespace)
    build = namespace["build"]

    def run() -> None:
        _, out = build(Value)
        out.backward()

    return run


def best(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def _repeats(n: int) -> int:
    return max(3, min(50, 20000 // n))


def uncached(graph):
    """The same graph as a new object, with nothing found about it yet (a Graph keeps
    what it has computed once, such as its canonical nodes): each timed run of the
    oracle pays for all its work on the graph."""
    fresh = object.__new__(type(graph))
    fresh.__dict__.update(nodes=graph.nodes)
    return fresh


def measure(graph, *, plain: bool = True) -> dict:
    """Times (seconds) of the reference engine, the certified oracle and one plain pass."""
    from gradcert.oracle import exact_graph

    repeats = _repeats(len(graph))
    gc.collect()
    got = {"reference": best(reference_runner(graph), repeats * 4)}
    ex = exact_graph(graph)
    got["certified"] = best(lambda: exact_graph(uncached(graph)), repeats)
    if plain:
        got["plain"] = best(lambda: exact_graph(uncached(graph), prec=117), repeats)
    got["precisions"] = list(ex.precisions)
    return got


def _worker(path: str) -> None:
    """Child process of --against: time the revision's oracle on the graphs in ``path``."""
    from gradcert.graph import Graph

    out = []
    for text in json.loads(Path(path).read_text()):
        try:
            out.append(measure(Graph.from_json(text), plain=False))
        except Exception:  # an op this revision does not have
            out.append(None)
    print(json.dumps(out))


def against(rev: str, graphs: list) -> list[dict]:
    """Times of the oracle of git revision ``rev`` on ``graphs``, in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", rev],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        data = Path(tmp) / "graphs.json"
        data.write_text(json.dumps([g.to_json() for g in graphs]))
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run([sys.executable, str(HERE / "bench_oracle.py"), "--worker",
                               str(data)], check=True, capture_output=True, text=True,
                              env=env, cwd=tmp)
    return json.loads(done.stdout)


def refusals(count: int) -> None:
    """Print how many of ``count`` graphs of the suite's strategies (derandomized) the
    oracle refuses, and how many leave an op's domain in exact arithmetic."""
    from hypothesis import HealthCheck, given, settings

    from gradcert.graph import DomainError
    from gradcert.oracle import Unresolved, exact_graph
    from gradcert.properties import strategies as gs

    graphs: list = []

    @settings(database=None, derandomize=True, max_examples=count, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(gs.graphs())
    def collect(g) -> None:
        graphs.append(g)

    collect()
    refused = domain = later = 0
    t = time.perf_counter()
    for g in graphs:
        try:
            ex = exact_graph(g)
        except Unresolved as e:
            refused += 1
            print(f"refused: {e}\n  {g.to_json()}")
            continue
        except DomainError:
            domain += 1
            continue
        try:
            _ = ex.values_f64
        except Unresolved as e:
            later += 1
            print(f"each node's value refused: {e}\n  {g.to_json()}")
    print(f"{len(graphs):,} graphs of gradcert.properties.strategies.graphs(): "
          f"{refused} refused ({refused / len(graphs):.3%}), {domain} out of an op's domain "
          f"in exact arithmetic; of those certified, {later} refused each node's value "
          f"(Exact.values_f64); {time.perf_counter() - t:.1f} s")


def _best(runs) -> dict | None:
    """The fastest of each time over rounds (None where the graph could not run)."""
    runs = [r for r in runs if r is not None]
    if not runs:
        return None
    return {key: min(r[key] for r in runs) if key != "precisions" else runs[0][key]
            for key in runs[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--chain", type=int, default=1000,
                        help="nodes of the deep chain (0: none)")
    parser.add_argument("--live", type=int, default=1000, metavar="N",
                        help="nodes of a random graph whose output depends on every node, "
                             "before the adds that sum it up (0: none)")
    parser.add_argument("--every-op", type=int, default=1000, metavar="N",
                        help="the same of every op of the table (0: none)")
    parser.add_argument("--against", metavar="REV", default=None,
                        help="also time the oracle of this git revision")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of measurement, alternating with REV (the best counts)")
    parser.add_argument("--refusals", type=int, metavar="N", default=0,
                        help="count the oracle's refusals on N of the strategies' graphs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return
    if args.refusals:
        refusals(args.refusals)
        return
    import mpmath

    cases = [(f"random {n:,}", random_graph(n, seed=n)) for n in args.sizes]
    if args.live:
        g = random_graph(args.live, seed=args.live, live=True)
        cases.append((f"random {args.live:,} + {len(g) - args.live} adds, all live", g))
    if args.every_op:
        g = random_graph(args.every_op, seed=args.every_op, every_op=True, live=True)
        cases.append((f"every op {args.every_op:,} + {len(g) - args.every_op} adds, all live",
                      g))
    if args.chain:
        cases.append((f"deep chain {len(deep_chain(args.chain)):,}", deep_chain(args.chain)))
    print(f"mpmath {mpmath.__version__}, backend {mpmath.libmp.BACKEND}; "
          "times are the best of several runs, in ms")
    print()
    head = ("| graph | the output depends on | reference f64 fwd+bwd | certified oracle "
            "| certified / reference | certified / 1 plain pass @117 bits | precisions |")
    rule = "|---|---:|---:|---:|---:|---:|---|"
    if args.against:
        head += f" {args.against}: certified / reference | this / {args.against} |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    graphs = [g for _, g in cases]
    olds: list[list[dict]] = []
    news: list[list[dict]] = []
    for _ in range(args.rounds):  # this tree and REV alternate: both see the same load
        if args.against:
            olds.append(against(args.against, graphs))
        news.append([measure(g) for g in graphs])
    old = [_best(r[k] for r in olds) for k in range(len(graphs))] if olds else None
    for k, (name, graph) in enumerate(cases):
        got = _best(r[k] for r in news)
        ratio = got["certified"] / got["reference"]
        line = (f"| {name} | {live_share(graph):.0%} | {got['reference'] * 1e3:.2f} "
                f"| {got['certified'] * 1e3:.2f} "
                f"| {ratio:.1f}x | {got['certified'] / got['plain']:.2f}x "
                f"| {', '.join(map(str, got['precisions']))} |")
        if old is not None and old[k] is None:
            line += " - | - |"  # an op that revision does not have
        elif old is not None:
            o = old[k]["certified"] / old[k]["reference"]
            line += f" {o:.1f}x | {ratio / o:.2f} |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
