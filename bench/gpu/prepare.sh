#!/usr/bin/env bash
# Builds, on this machine, the bundle that bench/gpu/run.sh runs on a GPU
# machine (bench/gpu/README.md): Kiln's CUDA programs (inference with the
# fixtures' weights embedded, the training program of each model, the
# training-parity cases), the fixtures they are checked against,
# Fashion-MNIST, and the Python scripts. Well under 64 MiB.
#   bench/gpu/prepare.sh [--device cuda|opencl] [--build-dir build] [--out DIR]
# --device opencl makes a bundle that runs here on PoCL, for a dry run of
# run.sh (with --torch-device cpu).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
device=cuda build=$root/build out=$root/bench/gpu/bundle
while [[ $# -gt 0 ]]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--device cuda|opencl] [--build-dir DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
kilnc=$build/bin/kilnc
[[ -x $kilnc ]] || { echo "$0: no $kilnc: run make build first" >&2; exit 1; }
# H100 and H200 are sm_90: Halide 14's highest capability, sm_86, runs there
# through the driver's PTX JIT.
case $device in
  cuda) target=(--target=host-cuda-cuda_capability_86) ;;
  opencl) target=(--device=opencl) ;;
  *) echo "$0: --device must be cuda or opencl" >&2; exit 2 ;;
esac
models=(batchnorm_net mlp_bn lenet_bn)
cases=(mlp_bn/sgd_momentum lenet_bn/sgd_momentum conv_pools/adamw bn_cumulative/adam_wd)
rm -rf "$out" && mkdir -p "$out"/kiln/cases "$out"/test/fixtures/train "$out"/data \
  "$out"/tools "$out"/bench/gpu
for m in "${models[@]}"; do
  echo "building $m" >&2
  "$kilnc" build "$root/models/$m.kiln" --weights "$root/test/fixtures/$m/weights.safetensors" \
    "${target[@]}" -o "$out/kiln/${m}_infer"
  "$kilnc" build "$root/models/$m.kiln" --mode=train "${target[@]}" -o "$out/kiln/${m}_train"
  /usr/bin/python3 - "$root" "$m" > "$out/kiln/${m}_train.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1] + "/bench")
import epoch
print(json.dumps(epoch.train_spec(sys.argv[2])))
PY
  mkdir -p "$out/test/fixtures/$m"
  cp "$root/test/fixtures/$m"/{weights.safetensors,input_b1.npy,input_b64.npy,output_b1.npy,output_b64.npy} \
    "$out/test/fixtures/$m/"
done
export PATH=$build/bin:$PATH
for c in "${cases[@]}"; do
  echo "building training case $c" >&2
  /usr/bin/python3 "$root/test/EndToEnd/Inputs/train_fixture_case.py" --build-only \
    "$root/test/fixtures" "$out/work" "$c" -- "${target[@]}" > /dev/null
  name=${c//\//_}
  cp "$out/work/$name" "$out/kiln/cases/$name"
  model=${c%%/*}
  mkdir -p "$out/test/fixtures/train/$model"
  cp -r "$root/test/fixtures/train/$c" "$out/test/fixtures/train/$model/"
  cp "$root/test/fixtures/train/$model/initial.safetensors" "$out/test/fixtures/train/$model/"
done
rm -rf "$out/work"
cp "$root/test/fixtures/train/manifest.json" "$out/test/fixtures/train/"
cp -r "$root/test/fixtures/train/data" "$out/test/fixtures/train/"
cp "$root/test/fixtures/kiln_models.py" "$out/test/fixtures/"
cp "$root/tools/safetensors_io.py" "$out/tools/"
cp "$root/bench/torch_worker.py" "$out/bench/"
cp "$root/bench/gpu/gpu_bench.py" "$root/bench/gpu/run.sh" "$out/bench/gpu/"
cp /usr/share/datasets/fashion-mnist/*.gz "$out/data/"
echo "bundle: $out ($(du -sh "$out" | cut -f1))"
