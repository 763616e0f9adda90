#!/usr/bin/env bash
# The fast and arbitrary engines' GPU measurements in one go, for a machine with a CUDA GPU:
# the GPU checks, inference timings (docs/benchmarks.md) and training throughput / plateau.
#   DATA=../shared/data OUT=docs bash benchmarks/gpu_fast.sh
set -euo pipefail
DATA="${DATA:-../shared/data}"
OUT="${OUT:-docs}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider || echo "GPU tests failed"
python benchmarks/fast_inference.py --device cuda --json "$OUT/benchmarks-fast-gpu.json"
python benchmarks/fast_training.py --device cuda --data "$DATA/photos" \
    --painting "$DATA/styles/the_scream.jpg" --eval-photos "$DATA/eval/photos" \
    --checkpoints 250,500,1000,2000,3000 --json "$OUT/benchmarks-fast-training-gpu.json"
python benchmarks/arbitrary_speed.py --device cuda --json "$OUT/benchmarks-arbitrary-gpu.json"
