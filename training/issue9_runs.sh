#!/bin/bash
# Issue 9 training runs, one after the other (the machine has 2 shared cores): ResNet18 and
# ResNet50 from scratch, then EfficientNet-Lite0 from its packaged ImageNet weights, all on the
# same recipe (RGB input, domain-randomised synthesis, OOD validation picks best.pt) and the
# same training-time budget. Idempotent: rerun it to resume whichever run is unfinished
# (fit resumes from <run>/last.pt; a finished run returns after loading its data).
#   RUNS=/work/runs nohup nice -n 10 bash training/issue9_runs.sh > /work/runs/issue9.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-/work/runs}
C=${CATALOG:-../shared/data/covers}
BUDGET=${BUDGET_MINUTES:-150}
PY=${PY:-.venv/bin/python}
export CRATEWATCH_SHARED_DATA=${CRATEWATCH_SHARED_DATA:-../shared/data}
export PYTHONPATH=$PWD
# Semi-hard mining throughout: the first queue (runs r18-wide) switched to batch-hard after 2
# epochs and collapsed (every clean cover at cosine 1.000 to every other, loss stuck at the
# margin), see docs/training-plan.md.
COMMON=(--catalog "$C" --channels 3 --input-size 128 --synth wide --extra-factor 1.0
        --generated-factor 0.5 --p 16 --k 4 --lr 1e-3 --epochs 200 --budget-minutes "$BUDGET"
        --semi-hard-epochs 200 --threads 2 --bf16 --seed 0)
run() {  # name, extra args...
    local name=$1; shift
    mkdir -p "$RUNS/$name"
    echo "== $(date -u +%FT%TZ) $name: $*" | tee -a "$RUNS/$name/train.log"
    "$PY" -m training.cli fit --out "$RUNS/$name" "${COMMON[@]}" "$@" >> "$RUNS/$name/train.log" 2>&1
    local rc=$?
    echo "== $(date -u +%FT%TZ) $name exited $rc" | tee -a "$RUNS/$name/train.log"
    return $rc
}
# Each finished run is evaluated (`run ... && evaluate ...`) before the next starts, so no
# evaluation shares the 2 cores with a run's training budget (finished steps are skipped).
evaluate() {  # name [precisions]
    echo "== $(date -u +%FT%TZ) final_eval $1 (${2:-fp32 int8})"
    PRECISIONS=${2:-fp32 int8} RUN=$1 RUNS=$RUNS CATALOG=$C PY=$PY bash training/final_eval.sh \
        >> "$RUNS/final-eval.log" 2>&1
    echo "== $(date -u +%FT%TZ) final_eval $1 exited $?"
}
# The pretrained Lite0 goes first (session 4): it is the run most likely to beat the bundled
# model; r18-wide-sh resumes where it stopped (epoch 18) after it. Same 150-minute budget as
# the others (it started at 90 and was raised to 150 after epoch 4, when helpers' benchmarks
# on the same 2 cores had slowed its epochs 4x), at a third of the peak LR so fine-tuning does
# not wash out the ImageNet features.
run lite0-pre-wide-sh --arch lite0 --pretrained --budget-minutes "${LITE0_BUDGET:-150}" --lr 3e-4

# Continuation of the pretrained Lite0 (session 5; it runs before the rest of r18-wide-sh,
# stopped at epoch 23, because it is the candidate closest to shipping): its OOD-validation
# score was flat over its last 19 epochs and its in-distribution medium P@1 ended at 0.76
# (bundled 0.92) with the classic levels in only 30 % of its views. 45 more minutes from its
# best.pt, half of the views classic, at a third of its peak LR (new optimiser and schedule:
# --init-from).
run lite0-cont-sh --arch lite0 --init-from "$RUNS/lite0-pre-wide-sh/best.pt" --wide-share 0.5 \
    --lr 1e-4 --budget-minutes "${CONT_BUDGET:-45}"
run r18-wide-sh --arch resnet18
run r50-wide-sh --arch resnet50 && evaluate r50-wide-sh

# Ablation of the domain randomisation (issue 9 asks for a table, "even if small"): the
# pretrained Lite0 recipe at a short equal budget, one factor group off per run, against the
# same recipe with everything on and against the classic synthesis. Compare best.pt's
# ood_p1 / ood_loose_p1 in log.csv and the OOD-test evaluation (docs/training-plan.md).
# 15 minutes each (planned 40): five runs of 40 minutes, each with its evaluation, did not fit
# one 3-hour session after the rest of r50-wide-sh, and a table split over sessions mixes
# machines and code versions. At 15 minutes the pretrained Lite0 is about 7 epochs in (its LR
# annealed over those 15 minutes; lite0-pre-wide-sh, on the 150-minute schedule: selection
# score 0.48 at epoch 7, 0.60 at its best, epoch 21), so the table compares factors early in
# training.
ABL=(--arch lite0 --pretrained --lr 3e-4 --budget-minutes "${ABL_BUDGET:-15}")
run abl-lite0-wide "${ABL[@]}" && evaluate abl-lite0-wide fp32
run abl-lite0-classic "${ABL[@]}" --synth classic && evaluate abl-lite0-classic fp32
run abl-lite0-no-framing "${ABL[@]}" --synth-off framing && evaluate abl-lite0-no-framing fp32
run abl-lite0-no-occluders "${ABL[@]}" --synth-off occluders && evaluate abl-lite0-no-occluders fp32
run abl-lite0-no-colour "${ABL[@]}" --synth-off colour && evaluate abl-lite0-no-colour fp32

# After the ablation (session 7): at 15 minutes every wide factor but colour cost OOD-test
# medium P@1, occluders the most (0.491 with everything on, 0.638 without the wide
# occluders, which also made 29 % more steps in the same time; model card, "Ablation of the
# randomisation factors"). The full-budget candidate that table points to: the pretrained
# Lite0 without the wide occluders (the classic 30 % of views keep their hands and stickers).
run lite0-pre-noocc-sh --arch lite0 --pretrained --lr 3e-4 --synth-off occluders \
    --budget-minutes "${LITE0_BUDGET:-150}" && evaluate lite0-pre-noocc-sh
