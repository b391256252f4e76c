#!/usr/bin/env bash
# Certify gradcert's engine, the PyPI micrograd and PyTorch with one profile
# and seed, then put them side by side: the comparison the README shows.
#   bash docs/compare_engines.sh [OUT_DIR] [PROFILE] [SEED]
# Needs: pip install micrograd torch==2.13.0 (an engine that is missing is skipped).
set -u
out=${1:-gradcert-compare}
profile=${2:-ci}
seed=${3:-2026}
results=()
for target in gradcert micrograd torch; do
  gradcert certify "$target" --profile "$profile" --seed "$seed" --out "$out/$target"
  code=$?
  if [ "$code" -le 1 ]; then           # 0 certified, 1 failed: both are results
    results+=("$out/$target/results.json")
  else
    echo "skipping $target (exit $code)" >&2
  fi
done
gradcert compare "${results[@]}" --format md -o "$out/comparison.md"
gradcert compare "${results[@]}" --format html -o "$out/comparison.html"
gradcert compare "${results[@]}"
