#!/usr/bin/env bash
# Train the model zoo's networks from scratch on one GPU, one profile per call of under ten
# minutes (model-zoo/gpu_queue.md, job a):
#   bash model-zoo/gpu/train_zoo.sh 1    # [profile.gpu-standard]: ten styles, Johnson's width
#   bash model-zoo/gpu/train_zoo.sh 2    # [profile.gpu-lite]: the same ten at half the width
# Each style is `python model-zoo/build.py train`'s command for the recipe (recorded in its
# checkpoint), JOBS (5) at a time on the one GPU; a guard interrupts training after
# TRAIN_BUDGET seconds (each run then saves where it got to) so that scoring and packing
# always fit. Reads zoo-runs/gpu-inputs/ (python model-zoo/gpu/stage.py, carried by the call).
# Into $OUT, flat, at most 8 files: train_zoo-N.log (this output), zoo-PROFILE.json (timings,
# distances beside the arbitrary pass, multiply-adds; evaluate_runs.py) and the runs packed by
# model-zoo/pack_runs.py (runs-K.tar, MANIFEST.json; weights in float16).
# TINY=1: the CPU rehearsal (stage.py --tiny; two styles, two steps at 32 px, scored at 64 px).
set -euo pipefail
RUN="${1:?usage: train_zoo.sh 1 (gpu-standard) | 2 (gpu-lite)}"
case "$RUN" in
    1) PROFILE=gpu-standard ;;
    2) PROFILE=gpu-lite ;;
    *) echo "train_zoo.sh: unknown run $RUN (1: gpu-standard, 2: gpu-lite)" >&2; exit 2 ;;
esac
: "${OUT:?set OUT to the folder whose files come back}"
PYTHON="${PYTHON:-python3}"
TINY="${TINY:-0}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/zoo-runs/gpu-inputs/site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TINY

main() {
    local train=() score=() status=0
    if [ "$TINY" != 0 ]; then
        JOBS=2 TRAIN_BUDGET="${TRAIN_BUDGET:-120}"
        train=(--only starry-night the-scream --set steps=2 --set image-size=32
               --set batch-size=2 --set style-size=64 --set workers=0 --set sample-every=0)
        score=(--size 64)
    else
        # 2 x (about 150 s of training for five styles at once + start-up) leaves over three
        # minutes for scoring and packing; the guard only matters if the GPU is far slower.
        JOBS="${JOBS:-5}" TRAIN_BUDGET="${TRAIN_BUDGET:-420}"
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    "$PYTHON" model-zoo/gpu/gpu_common.py  # the staged inputs match the mode; torch sees the GPU
    echo "$PROFILE: $JOBS at a time, training stops after $TRAIN_BUDGET s at the latest"
    local began=$SECONDS
    # -s INT: every training process of the group saves its weights before it stops.
    timeout -s INT -k 30 "$TRAIN_BUDGET" "$PYTHON" model-zoo/build.py train \
        --profile "$PROFILE" --jobs "$JOBS" "${train[@]}" || status=$?
    local trained=$((SECONDS - began))
    echo "training: exit $status after $trained s"
    "$PYTHON" model-zoo/gpu/evaluate_runs.py --profile "$PROFILE" --half "${score[@]}" \
        --train-seconds "$trained" --out "$OUT/zoo-$PROFILE.json" || status=$?
    "$PYTHON" model-zoo/pack_runs.py pack zoo-runs "$OUT" --profile "$PROFILE" || status=$?
    echo "train_zoo.sh $RUN: exit $status after $SECONDS s"
    return "$status"
}

main 2>&1 | tee "$OUT/train_zoo-$RUN.log"
exit "${PIPESTATUS[0]}"
