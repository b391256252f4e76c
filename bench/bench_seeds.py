"""Every planted defect on every seed: the catalogue x seeds 1-5, as a Markdown table.

For each engine of tests/planted/catalogue.py and each seed, ``gradcert certify`` runs
(quick profile, in-process judge: ``jobs=0``) the properties its entry expects to fail
(a correct engine: the whole quick profile, unless ``--defective-only``), and the cell
says whether an expected property failed (a defect found), or the engine was certified
(a correct one). One interpreter runs them all, in a subprocess.

    python bench/bench_seeds.py [--seeds 1,2,3,4,5] [--engines a,b] [--defective-only]

Takes about an hour on 2 idle cores for the whole catalogue; the README's table is
its output.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNNER = """
import io, json, sys, tempfile
from tests.planted.catalogue import CATALOGUE
from gradcert.certify import certify

seeds, names, selections = (json.loads(a) for a in sys.argv[1:4])
with tempfile.TemporaryDirectory() as out:
    for e in CATALOGUE:
        if e.name not in names:
            continue
        for seed in seeds:
            r = certify(e.target, profile="quick", seed=seed, out=f"{out}/{e.name}-{seed}",
                        jobs=0, select=selections[e.name], quiet=True, stream=io.StringIO())
            bad = sorted(p.id for p in r.properties if p.outcome in ("failed", "error",
                                                                     "crashed", "timeout"))
            print(json.dumps({"name": e.name, "seed": seed, "verdict": r.verdict,
                              "bad": bad, "seconds": r.duration_s}), flush=True)
"""


def main(argv: list[str] | None = None) -> int:
    from tests.planted.catalogue import CATALOGUE
    from tests.test_catalogue import selection

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--engines", default="", help="comma-separated names (default: all)")
    ap.add_argument("--defective-only", action="store_true")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [e for e in CATALOGUE
              if (not args.engines or e.name in args.engines.split(","))
              and not (args.defective_only and e.correct)]
    selections = {e.name: selection(e) for e in chosen}
    run = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(seeds),
                          json.dumps([e.name for e in chosen]), json.dumps(selections)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    if run.returncode:
        print(run.stderr[-3000:], file=sys.stderr)
        return 2
    rows: dict[str, dict[int, dict]] = {}
    for line in run.stdout.splitlines():
        r = json.loads(line)
        rows.setdefault(r["name"], {})[r["seed"]] = r
    print("| engine | defect | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds))
    missed = 0
    for e in chosen:
        cells = []
        for s in seeds:
            r = rows.get(e.name, {}).get(s)
            if r is None:
                cells.append("not run")
                missed += 1
            elif e.correct:
                ok = r["verdict"] == "certified"
                cells.append("certified" if ok else "FAILED " + ", ".join(r["bad"]))
                missed += not ok
            else:
                hit = sorted(set(r["bad"]) & set(e.expect))
                cells.append(", ".join(hit) if hit else "MISSED")
                missed += not hit
        print(f"| {e.name} | {e.description} | "
              + " | ".join(cells) + " |")
    seconds = sum(r["seconds"] for v in rows.values() for r in v.values())
    print(f"\n{len(chosen)} engines x {len(seeds)} seeds; {missed} cells wrong; "
          f"{seconds:.0f} s of certification")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
