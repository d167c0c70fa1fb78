#!/usr/bin/env bash
# How long `kilnc build` takes as a model grows: plain MLPs of n
# linear(64, 64) + relu layers, weights embedded (random, deterministic) and
# external, each timed once; prints a Markdown table (README "Build time").
#   bench/build-time.sh [--build-dir DIR] [--layers 10,25,50,100,300] [-- kilnc flags...]
# Run it on an otherwise idle machine: the stages compile on every core.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
layers=10,25,50,100,300
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "build-time: unknown option '$1'" >&2; exit 2 ;;
  esac
done
kilnc=$build_dir/bin/kilnc
[[ -x $kilnc ]] || { echo "build-time: no $kilnc (make build first)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mlp() { # mlp N > file: N linear+relu layers, 64 wide
  echo "model Deep$1 {"
  echo "  input x: f32[N, 64]"
  for ((i = 1; i <= $1; ++i)); do echo "  fc$i = linear(64, 64)"; done
  echo "  forward {"
  echo "    h = x"
  for ((i = 1; i <= $1; ++i)); do echo "    h = relu(fc$i(h))"; done
  echo "    return h"
  echo "  }"
  echo "}"
}

seconds() { # seconds CMD...: wall time of one run
  local start end
  start=$(date +%s.%N)
  "$@" > "$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; kilnc flags: ${*:-none}"
echo
echo "| layers | embedded weights (s) | per layer (s) | external weights (s) | per layer (s) |"
echo "|---:|---:|---:|---:|---:|"
for n in ${layers//,/ }; do
  mlp "$n" > "$work/deep.kiln"
  "$kilnc" check --params "$work/deep.kiln" > "$work/deep.params"
  /usr/bin/python3 test/EndToEnd/Inputs/random_weights.py "$work/deep.params" "$work/deep.safetensors"
  embedded=$(seconds "$kilnc" build "$work/deep.kiln" --weights "$work/deep.safetensors" -o "$work/embedded" "$@")
  external=$(seconds "$kilnc" build "$work/deep.kiln" --weights=external -o "$work/external" "$@")
  awk -v n="$n" -v e="$embedded" -v x="$external" \
    'BEGIN { printf "| %d | %.1f | %.2f | %.1f | %.2f |\n", n, e, e / n, x, x / n }'
done
