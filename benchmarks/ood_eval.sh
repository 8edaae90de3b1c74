#!/bin/bash
# OOD and in-distribution query sets + 1000 distractors (once), then embedding-only evaluation
# of a model on them (docs/model-card.md, "Out-of-distribution evaluation").
#   bash benchmarks/ood_eval.sh [MODEL.onnx] [OUT_DIR] [MULTI_CROP]
# Sets go to $R (default /work/runs/ood), reports to OUT_DIR (default $R/eval-<model stem>).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD CRATEWATCH_SHARED_DATA=${CRATEWATCH_SHARED_DATA:-../shared/data}
PY=${PY:-.venv/bin/python}
C=${CATALOG:-$CRATEWATCH_SHARED_DATA/covers}
R=${R:-/work/runs/ood}
M=${1:-models/cratewatch-embedder.onnx}
OUT=${2:-$R/eval-$(basename "$M" .onnx)}
MC=${3:-none}
mkdir -p "$R"
if [ ! -f "$R/split.json" ]; then
  "$PY" -c "
from pathlib import Path
from training.catalog import load_catalog, save_split
from training.ood.cli import resolve_split
save_split(resolve_split(load_catalog(Path('$C')), None), Path('$R/split.json'))"
fi
make_set() {  # dir, args...
  local d=$1; shift
  [ -f "$R/$d/queries.csv" ] || "$PY" -m training.cli "$@" --catalog "$C" --out "$R/$d"
}
make_set ood-test ood --preset ood-test --split "$R/split.json"
make_set ood-test-loose ood --preset ood-test --framing loose --split "$R/split.json"
make_set ood-val ood --preset ood-val --split "$R/split.json"
make_set ood-val-loose ood --preset ood-val --framing loose --split "$R/split.json"
make_set id-test synth --n 1020 --level all --split "$R/split.json" --subset test --seed 2026
[ -f "$R/distractors/albums.csv" ] || "$PY" -m training.cli ood-distractors --catalog "$C" \
  --out "$R/distractors" --split "$R/split.json" --n 1000
for q in id-test ood-test ood-test-loose; do
  "$PY" -m training.cli eval --model "$M" --catalog "$C" --queries "$R/$q" \
    --distractors "$R/distractors" --multi-crop "$MC" --out "$OUT/$q"
done
