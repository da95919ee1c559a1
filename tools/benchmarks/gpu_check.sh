#!/usr/bin/env bash
# The loss on a CUDA machine, in one go: the loss tests on CUDA (eager and compiled kernels), the loss
# benchmark against MMPretrain's formula, MMDetection's Python focal loss and torchvision's
# sigmoid_focal_loss, and the FCOS iteration ASL/focal ratio. Everything is written under OUT_DIR
# (default work_dirs/gpu_check), with a summary table in OUT_DIR/summary.md.
#
#   bash tools/benchmarks/gpu_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-work_dirs/gpu_check}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
mkdir -p "$OUT"
"$PY" - <<'PY' || { echo "gpu_check: torch sees no CUDA device" >&2; exit 1; }
import torch
assert torch.cuda.is_available()
print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__, '| CUDA', torch.version.cuda)
PY
"$PY" -c "import torch; print(torch.cuda.get_device_name())" > "$OUT/device.txt"

status=0
# 1. Loss tests with tensors on CUDA: both kernels against the reference, mixed precision.
MMDET_ASL_TEST_DEVICE=cuda "$PY" -m pytest tests/test_loss_paths.py tests/test_loss_amp.py -q -p no:cacheprovider \
    > "$OUT/tests.txt" 2>&1 || status=1
# 2. Loss benchmark on CUDA at the three sizes (forward + backward, peak memory from the CUDA allocator).
"$PY" tools/benchmarks/benchmark_loss.py --devices cuda --repeats 20 --warmup 3 > "$OUT/benchmark_loss.txt" 2>&1 \
    || status=1
# 3. One FCOS training iteration, ASL against FocalLoss (Python path), both ASL kernels; and the loss alone
#    on FCOS's (N, C) for two 800 x 1344 COCO images.
for impl in eager compiled; do
    "$PY" tools/benchmarks/benchmark_fcos_iteration.py --device cuda --impl "$impl" --synthetic --reps 20 \
        --warmup 3 > "$OUT/fcos_iteration_$impl.txt" 2>&1 || status=1
    "$PY" tools/benchmarks/benchmark_fcos_iteration.py --device cuda --impl "$impl" --loss-only 44788 80 \
        --reps 50 --warmup 5 > "$OUT/fcos_loss_only_$impl.txt" 2>&1 || status=1
done

{
    echo "# GPU check: $(cat "$OUT/device.txt"), $(date -u +%Y-%m-%d)"
    echo
    echo "## Loss tests on CUDA"
    echo '```'; tail -n 3 "$OUT/tests.txt"; echo '```'
    echo
    echo "## Loss benchmark (tools/benchmarks/benchmark_loss.py --devices cuda)"
    grep -E '^\(N, C\)|^\| |time = ' "$OUT/benchmark_loss.txt"
    echo
    echo "## FCOS iteration (tools/benchmarks/benchmark_fcos_iteration.py --device cuda)"
    echo '```'
    for impl in eager compiled; do
        echo "impl=$impl"; grep -E 'median|ratio|loss_cls' "$OUT/fcos_iteration_$impl.txt" "$OUT/fcos_loss_only_$impl.txt"
    done
    echo '```'
} > "$OUT/summary.md"
cat "$OUT/summary.md"
exit $status
