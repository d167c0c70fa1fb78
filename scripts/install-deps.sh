#!/usr/bin/env bash
# Installs the Debian packages Kiln needs, or says exactly how to.
#   scripts/install-deps.sh build   what `make test` and `make demo` need
#   scripts/install-deps.sh bench   plus PyTorch and OpenBLAS, for bench/ and the fixture scripts
set -euo pipefail

# libonnx: the ONNX importer (docs/onnx.md) and, with libonnx-testdata, ONNX's
# backend node tests. chromium: headless, it lays out the SVG of `kilnc plot` in
# test/Tools/kilnc-plot-chromium.test. The last two lines: cross-compiling
# to 64-bit ARM and running the result (docs/targets.md): Debian's cross
# toolchain, the arm64 zlib through multiarch, qemu; strace checks that an
# install is relocatable. pocl-opencl-icd and ocl-icd-opencl-dev: the OpenCL
# builds run on the CPU through PoCL (docs/gpu.md); Halide's runtime loads the
# unversioned libOpenCL.so, which only the -dev package provides.
build_pkgs=(cmake ninja-build g++ ccache
  llvm-14-dev libmlir-14-dev mlir-14-tools llvm-14-tools libhalide14-0-dev
  googletest libgtest-dev zlib1g-dev nlohmann-json3-dev dataset-fashion-mnist
  libtsan2 chromium
  libonnx-dev libprotobuf-dev libonnx-testdata
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu
  zlib1g-dev:arm64 qemu-user-static strace
  pocl-opencl-icd ocl-icd-opencl-dev)
bench_pkgs=(python3-torch python3-numpy libopenblas0-pthread python3-onnx)
fuzz_pkgs=(clang-14 libclang-rt-14-dev)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  bench) want+=("${bench_pkgs[@]}") ;;
  fuzz) want+=("${fuzz_pkgs[@]}") ;;
  *) echo "usage: $0 [build|bench|fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  # One status per installed architecture (zlib1g-dev and zlib1g-dev:arm64).
  [[ "$status" == *"install ok installed"* ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

# Packages of another architecture (zlib1g-dev:arm64) need it added to dpkg.
add_arch=""
for p in "${missing[@]}"; do
  if [[ "$p" == *:* ]]; then
    arch=${p##*:}
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then add_arch=$arch; fi
  fi
done

if [[ $(id -u) -ne 0 ]]; then
  echo "Kiln needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  [[ -n "$add_arch" ]] && echo "  sudo dpkg --add-architecture $add_arch" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
[[ -n "$add_arch" ]] && dpkg --add-architecture "$add_arch"
apt-get update -q
apt-get install -y -q "${missing[@]}"
