#!/usr/bin/env bash
# Runs on the GPU machine, from inside the bundle bench/gpu/prepare.sh made
# (bench/gpu/README.md): parity first (Kiln's CUDA results against the
# PyTorch fixtures), then inference latency and a training epoch against
# PyTorch eager on the same device. Results under RESULTS (default
# bundle/results): parity.md, infer.md, epoch.md and their .json.
#   bench/gpu/run.sh [--torch-device cuda|cpu] [RESULTS]
set -uo pipefail
bundle=$(cd "$(dirname "$0")/../.." && pwd)
torch_device=cuda
if [[ ${1:-} == --torch-device ]]; then torch_device=$2; shift 2; fi
results=${1:-$bundle/results}
mkdir -p "$results"
python=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
} | tee "$results/device.txt"
status=0
for step in parity infer epoch; do
  echo "== $step" >&2
  "$python" "$bundle/bench/gpu/gpu_bench.py" "$step" "$bundle" --torch-device "$torch_device" \
    --json "$results/$step.json" > "$results/$step.md" || status=1
  cat "$results/$step.md"
done
exit $status
