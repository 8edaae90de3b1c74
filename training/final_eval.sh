#!/bin/bash
# Final evaluation of a finished issue-9 run (docs/model-card.md, "ResNet50 vs ResNet18"):
# export its best.pt (fp32), quantize it (int8; --max-drop 1 so the file is made even where the
# 1-point gate would refuse it - the drop on OOD-validation is in quantize.log), then evaluate
# both, embedding only, on id-test, ood-test and ood-test-loose against the 990 covers + 1,000
# distractors (benchmarks/ood_eval.sh). Idempotent: finished steps are skipped.
#   RUN=r18-wide-sh bash training/final_eval.sh      # -> $RUNS/final/$RUN/
#   PRECISIONS=fp32 RUN=abl-lite0-wide bash ...       # fp32 only (the ablation table)
set -eu
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD CRATEWATCH_SHARED_DATA=${CRATEWATCH_SHARED_DATA:-../shared/data}
PY=${PY:-.venv/bin/python}
C=${CATALOG:-$CRATEWATCH_SHARED_DATA/covers}
RUNS=${RUNS:-/work/runs}
R=${R:-$RUNS/ood}
O=$RUNS/final/$RUN
PRECISIONS=${PRECISIONS:-fp32 int8}
mkdir -p "$O"
cp "$RUNS/$RUN/best.pt" "$RUNS/$RUN/split.json" "$O/"
[ -f "$O/fp32/m.onnx" ] || "$PY" -m training.cli export --checkpoint "$O/best.pt" \
    --out "$O/fp32/m.onnx" --version "$RUN"
[[ " $PRECISIONS " != *" int8 "* || -f "$O/int8/m.onnx" ]] || "$PY" -m training.cli quantize --model "$O/fp32/m.onnx" \
    --out "$O/int8/m.onnx" --catalog "$C" --split "$O/split.json" --queries "$R/ood-val" \
    --max-drop 1 2>&1 | tee "$O/quantize.log"
# The evaluation itself is benchmarks/ood_eval.sh's (same sets, distractors, eval; its last
# set, ood-test-loose, marks a finished evaluation).
for m in $PRECISIONS; do
  [ -f "$O/eval-$m/ood-test-loose/report.md" ] || R=$R CATALOG=$C PY=$PY \
      bash benchmarks/ood_eval.sh "$O/$m/m.onnx" "$O/eval-$m"
done
echo "final_eval $RUN done: $O"
