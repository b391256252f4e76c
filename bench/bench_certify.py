"""What certifying costs: ``gradcert certify`` of this tree against another commit's, side
by side.

The other commit (``--baseline``, default ``main``) is exported with ``git archive``
into a temporary directory; then the two are run in alternation, ``--runs`` times
each, as a user runs them (``python -m gradcert certify --profile P -j J --seed S``
in an empty directory, each tree first on ``PYTHONPATH``), and the wall time of
each run is taken around the whole command. Alternating runs see the same load,
so the ratio (the median of the per-pair ratios) is what to read; the absolute
times move with the machine. Every run must certify the reference engine.

    python bench/bench_certify.py                      # main vs this tree, quick, 5 pairs
    python bench/bench_certify.py --baseline c931e6d --runs 7 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(ref: str, into: Path) -> Path:
    """The tree of commit ``ref`` in ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def certify(tree: Path, work: Path, args: argparse.Namespace) -> tuple[float, dict]:
    """Wall seconds of one certification with ``tree``'s gradcert, and its results."""
    out = work / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCERT_")}
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, "-m", "gradcert", "certify", "--profile", args.profile,
           "-j", str(args.jobs), "--seed", str(args.seed), "--out", str(out)]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{tree}: certify exited {run.returncode}:\n{run.stdout[-2000:]}"
                         f"{run.stderr[-2000:]}")
    return seconds, json.loads((out / "results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default="main", help="the commit to compare with (main)")
    p.add_argument("--runs", type=int, default=5, help="runs of each, alternating (5)")
    p.add_argument("--profile", default="quick")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gradcert-bench-") as tmp:
        base = export(args.baseline, Path(tmp) / "baseline")
        trees = {"baseline": base, "this tree": ROOT}
        times: dict[str, list[float]] = {k: [] for k in trees}
        graphs: dict[str, int] = {}
        for i in range(args.runs):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                work = Path(tmp) / f"run-{name.replace(' ', '-')}-{i}"
                work.mkdir()
                seconds, doc = certify(trees[name], work, args)
                times[name].append(seconds)
                graphs[name] = doc["graphs_checked"]
                print(f"run {i + 1}: {name:<9} {seconds:6.2f} s  {doc['verdict']}", flush=True)
    ratios = [b / a for a, b in zip(times["baseline"], times["this tree"], strict=True)]
    print(f"\ngradcert certify --profile {args.profile} -j {args.jobs} --seed {args.seed}, "
          f"{args.runs} alternating runs each (wall time of the whole command)")
    for name, ts in times.items():
        print(f"  {name:<9} median {statistics.median(ts):6.2f} s  (min {min(ts):.2f}, "
              f"max {max(ts):.2f}; {graphs[name]} graphs)")
    print(f"  ratio this tree / baseline: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
