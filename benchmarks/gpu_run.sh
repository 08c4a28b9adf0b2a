#!/usr/bin/env bash
# The one prepared GPU measurement (issues 3 and 6), run through the device tool:
#   carry .gpu (cifar10-jpeg.zip + the torchattacks wheel), command: bash benchmarks/gpu_run.sh
# Run from the repository root (the scripts are modules of the benchmarks package). Stages are
# each under `timeout`, and every stage writes its numbers as it finishes, so a run cut short
# still reports what it measured. Results land in $OUT (default: runs/gpu).
set -u
OUT=${OUT:-runs/gpu}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl || echo "torchattacks wheel missing"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
# 1. the fast profile end to end: source models (time-to-accuracy per epoch), construction, training, PGD eval
timeout "${FAST_S:-330}" python3 -m benchmarks.fast_pipeline --profile fast --cifar .gpu/cifar10-jpeg.zip \
    --run-dir /tmp/fast 2>&1 | grep -v '%|' | tail -25
cp /tmp/fast/pipeline.json "$OUT/fast_pipeline.json" 2>/dev/null
# 2. PGD throughput and strength vs torchattacks; 3. the in-memory loader vs DataLoader
timeout 75 python3 -m benchmarks.bench_pgd --device cuda --arch resnet18 --batch 512 --repeats 3 2>&1 | tail -6
timeout 75 python3 -m benchmarks.bench_loader --device cuda --n 50000 --arch airbench 2>&1 | tail -8
cp benchmarks/results/*cuda*.json "$OUT/" 2>/dev/null
ls -la "$OUT"
