#!/usr/bin/env bash
# Kiln vs PyTorch benchmark (bench/README.md). Installs nothing: checks the
# prerequisites, says what is missing, then runs bench/bench.py.
#   bench/run.sh [--quick] [--build-dir DIR] [--models a,b] [--batches 1,64] [--threads 1,2] ...
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "bench: $*" >&2; exit 1; }

build_dir=build
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[i]}" in
    --build-dir) build_dir="${args[i + 1]:-}" ;;
    --build-dir=*) build_dir="${args[i]#--build-dir=}" ;;
    -h|--help) exec /usr/bin/python3 bench/bench.py --help ;;
  esac
done

[[ -x /usr/bin/python3 ]] || fail "/usr/bin/python3 not found (Debian's python3 with python3-torch is the peer)"
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null ||
  fail "/usr/bin/python3 cannot import torch and numpy; install them with
  sudo apt-get install -y python3-torch python3-numpy libopenblas0-pthread   (or: scripts/install-deps.sh bench)"

if [[ "$(dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null || true)" != "install ok installed" ]]; then
  fail "libopenblas0-pthread is not installed: PyTorch would use the reference BLAS (15-30x slower Linear
layers) and the ratios would be meaningless. Install it with
  sudo apt-get install -y libopenblas0-pthread   (or: scripts/install-deps.sh bench)"
fi
current=$(update-alternatives --display libblas.so.3-x86_64-linux-gnu 2>/dev/null |
  sed -n 's/.*link currently points to //p')
case "$current" in
  *openblas*) ;;
  "") fail "cannot tell which BLAS libblas.so.3 is (update-alternatives --display libblas.so.3-x86_64-linux-gnu)" ;;
  *) fail "libblas.so.3 points to the reference BLAS ($current); PyTorch ratios would be meaningless.
Install libopenblas0-pthread, or select it:
  sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3" ;;
esac

command -v cc >/dev/null || fail "no C compiler 'cc' (needed for bench/peak.c): sudo apt-get install -y gcc"
# bench/peak.c measures the widest FMA the CPU has: AVX-512 (zmm) where avx512f
# is listed, else AVX2 + FMA (ymm). On AVX-512 machines bench.py also builds
# every model for AVX2 and times that build against the AVX2 peak.
if ! grep -qw avx512f /proc/cpuinfo && ! { grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; }; then
  fail "this CPU has neither AVX-512F nor AVX2 with FMA: bench/peak.c has no FMA peak kernel for it"
fi
command -v c++ >/dev/null ||
  echo "bench: no 'c++': the Halide host target will be approximated from /proc/cpuinfo (sudo apt-get install -y g++)" >&2
[[ -x "$build_dir/bin/kilnc" ]] || fail "$build_dir/bin/kilnc not found: build Kiln first (make build), or pass --build-dir DIR"
command -v lscpu >/dev/null || fail "lscpu not found (util-linux)"

export KILN_BENCH_COMMAND="bench/run.sh${*:+ $*}"
exec /usr/bin/python3 bench/bench.py "$@"
