#!/bin/bash
# Whole-pipeline trial of a candidate embedder before shipping it (docs/model-card.md, "Lite0
# through the whole service pipeline"): copy its export, calibrate the copy's sidecar on the
# stress set's calibration half (the README's calibrate command), then run the stress
# evaluation on the report half with it. Compare the report with benchmarks/reports/stress.md
# (the shipped model). Needs the stress set (benchmarks/stress_data.py) and a final_eval.sh
# export in $RUNS/final/$RUN/$PREC/.
#   RUN=lite0-cont-sh PREC=fp32 bash training/ship_trial.sh      # -> $RUNS/ship/$RUN-$PREC/
set -eu
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-/work/runs}
PREC=${PREC:-fp32}
S=${STRESS:-runs/stress}
O=$RUNS/ship/$RUN-$PREC
mkdir -p "$O"
cp "$RUNS/final/$RUN/$PREC/m.onnx" "$O/cratewatch-embedder.onnx"
cp "$RUNS/final/$RUN/$PREC/m.json" "$O/cratewatch-embedder.json"
"$PY" -m service.cli calibrate --catalog "$S/catalog" --data "$S/data" \
    --model "$O/cratewatch-embedder.onnx" --known "$S/queries/calib/tight" \
    "$S/queries/calib/loose" --unknown "$S/queries/calib/unknown" --target-far 0 --target-wrong 0.01 \
    --write \
    | tee "$O/calibrate.log"
"$PY" benchmarks/stress.py --model "$O/cratewatch-embedder.onnx" --out "$O/stress.md" \
    | tee "$O/stress.log"
echo "ship_trial $RUN $PREC done: $O/stress.md"
