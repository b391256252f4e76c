"""Measure the tolerance model's false-positive and detection rates (docs/tolerance.md).

Runs tests/test_tolerance.py's evidence on seeded random graphs: ten correct
float64 engines must stay inside the bound, and an engine with a relative
error of 1e-9 planted in one local derivative must fall outside it.

    python docs/measure_tolerance.py                # 10,000 graphs of <= 20 ops
    python docs/measure_tolerance.py --graphs 2000 --max-ops 60 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_tolerance as evidence_module  # noqa: E402

from gradcert.graph import DomainError  # noqa: E402
from gradcert.oracle import Unresolved, exact_graph  # noqa: E402
from gradcert.oracle.tolerance import MCA_RUNS, SAFETY, Refused, tolerance, verdict  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-ops", type=int, default=20)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    ev = evidence_module.evidence(args.graphs, seed=args.seed, max_ops=args.max_ops)
    elapsed = time.perf_counter() - t0

    skipped = ", ".join(f"{k} {v}" for k, v in sorted(ev.skipped.items())) or "none"
    print(f"graphs: {ev.graphs} (<= {args.max_ops} ops, seed {args.seed}); "
          f"refused by the oracle and skipped: {skipped}")
    print(f"model: SAFETY {SAFETY:g}, {MCA_RUNS} Monte Carlo runs; "
          f"{elapsed:.1f} s in all (oracle, model, engines)")
    for name in (*evidence_module.ENGINES, "faithful"):
        fp = ev.false_positives[name]
        print(f"false positives, {name} engine: {fp} / {ev.graphs} graphs "
              f"({100 * fp / ev.graphs:.2f}%)")
    refused = ", ".join(f"{k} {v}" for k, v in sorted(ev.refused.items())) or "none"
    print(f"checks refused (an infinite bound judges nothing), by engine: {refused}")
    print(f"largest |correct engine - exact| / bound: {ev.margin:.3g}")
    print(f"bounds set by the Monte Carlo spread rather than the running error bound: "
          f"{ev.mca_larger} / {ev.bounds}")
    caught_all = sum(c for c, _, _ in ev.plants)
    print(f"planted 1e-9 errors caught, every plant: {caught_all} / {len(ev.plants)} "
          f"({100 * caught_all / len(ev.plants):.2f}%)")
    for drowned in (0.0, 1.0, 10.0, 100.0, 1000.0):
        caught, counted = ev.detection(drowned)
        mark = "  <- the reported rate" if drowned == evidence_module.DROWNED else ""
        print(f"  reaching the output, effect > {drowned:g}x the correct engines' error: "
              f"{caught} / {counted} ({100 * caught / max(counted, 1):.2f}%){mark}")
    whole, first = cost(args.seed)
    print(f"cost of tolerance(): {whole:.1f} float64 forward+backward passes "
          f"(the variant engine's time, on 100 graphs of <= 200 ops); of verdict() on "
          f"results inside the first-order bound (no Monte Carlo runs): {first:.1f}")
    return 1 if ev.false_positives else 0


def cost(seed: int) -> tuple[float, float]:
    """The time of tolerance(), and of verdict() on the exact results, over a plain
    float64 engine's forward and backward, on the same graphs."""
    rng = random.Random(seed)
    graphs = []
    while len(graphs) < 100:
        g = evidence_module.random_graph(rng, 200)
        try:
            ex = exact_graph(g)
            verdict(g, ex, ex.value_f64, ex.grad_f64)  # a graph the model refuses: another
        except (DomainError, Unresolved, Refused):
            continue
        graphs.append((g, ex))
    t0 = time.process_time()
    for g, _ in graphs:
        tolerance(g)
    t1 = time.process_time()
    for g, ex in graphs:
        verdict(g, ex, ex.value_f64, ex.grad_f64)
    t2 = time.process_time()
    for g, _ in graphs:
        evidence_module.variant_engine(g)
    t3 = time.process_time()
    return (t1 - t0) / (t3 - t2), (t2 - t1) / (t3 - t2)


if __name__ == "__main__":
    raise SystemExit(main())
