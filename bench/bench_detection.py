"""Detection of small gradient errors: gradcert's tolerance model against gradcheck's defaults.

On the same random graphs (the suite's own strategy, derandomized), an engine
with one planted defect: one local partial derivative of one node, drawn by a
seeded generator among the nodes that reach the output, is off by a relative
``r`` (1e-12 ... 1e-6), and the error flows through the rest of the backward
pass as a real bug's would. Each graph is judged twice:

- gradcert: the engine's value and leaf gradients against the oracle's exact ones
  within the tolerance model's bounds (``Tolerance.check``);
- ``torch.autograd.gradcheck`` with its defaults (``eps=1e-6, atol=1e-5,
  rtol=1e-3``), the graph as a float64 PyTorch function whose backward returns
  the engine's gradients.

A correct engine (float64 reverse mode over the op table, no plant) gives each
tool's false-positive rate on the same graphs; a graph the oracle refuses is
left out of both. Prints a Markdown table::

    python bench/bench_detection.py                    # 2,000 graphs, a few minutes
    python bench/bench_detection.py --graphs 200       # a quick look
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from gradcert.graph import Graph, evaluate  # noqa: E402
from gradcert.ops import OPS  # noqa: E402
from gradcert.oracle import Unresolved, exact_graph  # noqa: E402
from gradcert.oracle.tolerance import Refused, tolerance  # noqa: E402
from gradcert.properties import strategies as gs  # noqa: E402
from gradcert.properties.assertions import reverse_mode  # noqa: E402

ERRORS = (1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6)


def draw_graphs(n: int, max_nodes: int = 12) -> list[Graph]:
    """``n`` graphs of the suite's strategy, the same on every run."""
    out: list[Graph] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(gs.graphs(max_nodes=max_nodes))
    def collect(g: Graph) -> None:
        if len(g.nodes) > len(g.leaves) and gs.tame(g):
            out.append(g)

    collect()
    return out


def backward(graph: Graph, plant: tuple[int, float] | None = None) -> tuple[float, list[float]]:
    """Value and leaf gradients in float64 reverse mode over the op table; ``plant``
    ``(node, r)`` multiplies that node's first partial by ``1 + r``."""
    return reverse_mode(graph, plant)


def plant_site(graph: Graph, seed: int) -> int | None:
    """A node whose first partial reaches a leaf gradient (a nonzero adjoint and partial)."""
    vals = evaluate(graph)
    _, base = backward(graph)
    sites = []
    for i, n in enumerate(graph.nodes):
        if n.op == "leaf":
            continue
        xs = [vals[a] for a in n.args] + ([n.const] if n.const is not None else [])
        if OPS[n.op].partials(math, *xs, vals[i])[0] != 0:
            _, moved = backward(graph, (i, 1e-3))
            if moved != base:
                sites.append(i)
    return random.Random(seed).choice(sites) if sites else None


def gradcheck_passes(graph: Graph, grads: list[float]) -> bool:
    """torch.autograd.gradcheck's verdict, with its defaults, on ``graph`` as a float64
    function whose backward returns ``grads``."""
    import torch

    class Engine(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *xs: Any) -> Any:
            vals: list[Any] = []
            for n in graph.nodes:
                if n.op == "leaf":
                    vals.append(xs[graph.leaves.index(len(vals))])
                else:
                    args = [vals[a] for a in n.args]
                    vals.append(OPS[n.op].apply(*args, *([n.const] if n.const is not None
                                                         else [])))
            return vals[-1].clone()

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return tuple(g * torch.tensor(d, dtype=torch.float64) for d in grads)

    inputs = tuple(torch.tensor(x, dtype=torch.float64, requires_grad=True)
                   for x in graph.inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(torch.autograd.gradcheck(Engine.apply, inputs, raise_exception=False))
        except Exception:  # an input perturbed out of the op's domain: gradcheck fails
            return False


def gradcert_passes(graph: Graph, ex: Any, tol: Any, value: float, grads: list[float]) -> bool:
    return not tol.check(value, grads, ex)


def measure(n_graphs: int, errors: tuple[float, ...] = ERRORS,
            with_gradcheck: bool = True) -> dict[str, Any]:
    """Flag rates of each tool at each planted error, and on the correct engine."""
    judged = refused = 0
    flagged = {r: [0, 0] for r in errors}  # r -> [gradcert, gradcheck]
    false = [0, 0]
    for k, g in enumerate(draw_graphs(n_graphs)):
        site = plant_site(g, seed=k)
        if site is None:
            continue
        try:
            ex = exact_graph(g)
            tol = tolerance(g, ex)
            value, grads = backward(g)
            ok = gradcert_passes(g, ex, tol, value, grads)
        except (Unresolved, Refused):
            refused += 1
            continue
        judged += 1
        false[0] += not ok
        false[1] += with_gradcheck and not gradcheck_passes(g, grads)
        for r in errors:
            value, bad = backward(g, (site, r))
            flagged[r][0] += not gradcert_passes(g, ex, tol, value, bad)
            flagged[r][1] += with_gradcheck and not gradcheck_passes(g, bad)
    return {"judged": judged, "refused": refused, "flagged": flagged, "false": false}


def table(m: dict[str, Any], with_gradcheck: bool = True) -> str:
    n = m["judged"]
    pct = (lambda c: f"{100 * c / n:.1f}%") if n else (lambda c: "-")
    rows = ["| planted relative error | gradcert flags | gradcheck (defaults) flags |",
            "|---|---|---|"]
    for r, (a, b) in m["flagged"].items():
        rows.append(f"| {r:.0e} | {pct(a)} | {pct(b) if with_gradcheck else '-'} |")
    a, b = m["false"]
    rows.append(f"| none (correct engine): false positives | {pct(a)} | "
                f"{pct(b) if with_gradcheck else '-'} |")
    return "\n".join(rows) + (f"\n\n{n:,} graphs judged; {m['refused']} refused by the oracle "
                              "(left out of both columns).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graphs", type=int, default=2000, help="graphs drawn (default 2000)")
    ap.add_argument("--no-gradcheck", action="store_true", help="gradcert's column only")
    args = ap.parse_args(argv)
    with_gc = not args.no_gradcheck
    if with_gc:
        try:
            import torch
        except ImportError:
            print("bench_detection: PyTorch is not installed (or pass --no-gradcheck)",
                  file=sys.stderr)
            return 2
        torch.set_num_threads(1)
    start = time.process_time()
    m = measure(args.graphs, with_gradcheck=with_gc)
    print(table(m, with_gc))
    print(f"\n({time.process_time() - start:.0f} s of CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
