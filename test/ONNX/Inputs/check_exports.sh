#!/usr/bin/env bash
# Builds every PyTorch export in FIXTURES/onnx/ (make_onnx_fixtures.py) and
# compares its outputs with PyTorch's (FIXTURES/<model>/output_b*.npy, 1e-4)
# at batch 1, 7 and 64; an export with a fixed batch of 1 at batch 1.
# Prints one line per file and batch; exits non-zero on the first failure.
set -euo pipefail
fixtures=$1 out=$2
mkdir -p "$out"
for model in "$fixtures"/onnx/*.onnx; do
  name=$(basename "$model" .onnx)
  base=${name%%.*}
  kilnc build "$model" -o "$out/$name"
  batches="1 7 64"
  [[ $name == *.fixed1 ]] && batches=1
  for n in $batches; do
    "$out/$name" --input "$fixtures/$base/input_b$n.npy" --output "$out/$name.b$n.npy" > /dev/null
    npy-compare "$out/$name.b$n.npy" "$fixtures/$base/output_b$n.npy" > /dev/null
    echo "$name batch $n: matches PyTorch"
  done
done
