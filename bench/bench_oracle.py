"""Oracle speed against the reference engine's float64 forward+backward.

For seeded random graphs of 10, 100, 1,000 and 10,000 nodes (well-conditioned:
mixed add, sub, mul, div, mulc, powc, log, exp, tanh, sigmoid, relu with heavy
sharing), prints the time of

- the reference engine (gradcert.engine.Value) building the graph and running
  backward, from Python source made by gradcert.graph.to_python;
- the oracle with certification and precision escalation (exact_graph), on
  gmpy2's mpfr numbers (the default when gmpy2 is installed: its fast pass,
  float error bounds, with the general pass behind it) and on mpmath's mpf
  alone (the fallback without gmpy2; mpmath still over gmpy2 here);
- the oracle as one plain reverse-mode pass at 117 bits, no error tracking and
  no escalation (exact_graph(graph, prec=117): the general pass), on mpfr;

each the best of several repeats, and the ratios. Every oracle time includes
planning the graph and certifying every value and leaf gradient; the exact
results are converted to mpf only when first read (Exact.value, .grad,
.values), which the benchmark does not do. Run:

    python bench/bench_oracle.py            # add --sizes 10 100 to choose sizes
    MPMATH_NOGMPY=1 python bench/bench_oracle.py   # the mpf column without gmpy2
"""

from __future__ import annotations

import argparse
import gc
import importlib
import math
import random
import time

import mpmath

from gradcert.engine import Value
from gradcert.graph import Graph, Node, to_python
from gradcert.oracle import exact_graph

oracle_exact = importlib.import_module("gradcert.oracle.exact")


def random_graph(n: int, seed: int = 0) -> Graph:
    """A well-conditioned random DAG of n nodes, 4 leaves, float64-finite everywhere."""
    rng = random.Random(seed)
    nodes = [Node.leaf(rng.uniform(0.5, 2.0)) for _ in range(4)]
    vals = [nd.value for nd in nodes]
    unary = {"tanh": math.tanh, "sigmoid": lambda t: 1 / (1 + math.exp(-t)), "exp": math.exp,
             "log": math.log, "relu": lambda t: max(t, 0.0)}
    while len(nodes) < n:
        k = rng.choice(["add", "mul", "sub", "div", "mulc", "powc"] + sorted(unary))
        a = rng.randrange(max(0, len(nodes) - 20), len(nodes))  # mostly recent: deep graphs
        b = rng.randrange(len(nodes))
        x, y = vals[a], vals[b]
        if k in ("add", "sub", "mul", "div"):
            if (k == "div" and abs(y) < 0.5) or (k == "mul" and abs(x * y) > 10):
                continue
            v = {"add": x + y, "sub": x - y, "mul": x * y, "div": x / y if y else 0.0}[k]
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
            if (k == "log" and x <= 0.1) or (k == "exp" and x > 3):
                continue
            nodes.append(Node(k, (a,)))
            v = unary[k](x)
        vals.append(v)
    return Graph(tuple(nodes))


def reference_runner(graph: Graph):
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    args = parser.parse_args(argv)
    print(f"mpmath {mpmath.__version__}, backend {mpmath.libmp.BACKEND}; "
          "times are the best of several runs, in ms")
    print()
    print("| nodes | reference f64 fwd+bwd | certified, mpfr | certified, mpf "
          "| 1 pass @117 bits, mpfr | certified mpfr / reference | certified mpf / reference "
          "| certified / 1 pass (mpfr) | precisions |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    gc.collect()
    for n in args.sizes:
        g = random_graph(n, seed=n)
        repeats = max(3, min(50, 20000 // n))
        ref = best(reference_runner(g), repeats * 4)
        with oracle_exact._numbers(True):
            ex = exact_graph(g)
            cert = best(lambda g=g: exact_graph(g), repeats)
            plain = best(lambda g=g: exact_graph(g, prec=117), repeats)
        with oracle_exact._numbers(False):
            slow = best(lambda g=g: exact_graph(g), max(3, repeats // 3))
        print(f"| {n:,} | {ref * 1e3:.2f} | {cert * 1e3:.2f} | {slow * 1e3:.2f} "
              f"| {plain * 1e3:.2f} | {cert / ref:.1f}x | {slow / ref:.1f}x "
              f"| {cert / plain:.2f}x | {', '.join(map(str, ex.precisions))} |")


if __name__ == "__main__":
    main()
