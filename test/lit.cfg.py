# lit configuration of Kiln's compiler tests (see test/README.md).
import os
import lit.formats

config.name = "Kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".kiln", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "Inputs", "fixtures", "fuzz", "unit", "CMakeLists.txt", "README.md"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

# Kiln's tools first, then LLVM's FileCheck, not, count, split-file (only the
# -14 suffixed names are on Debian's PATH).
config.environment["PATH"] = os.pathsep.join(
    [config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])])
# kilnc train keeps the training libraries it builds in a cache (keyed by
# the compiled module and the kilnc binary, docs/training.md): the tests'
# is in the build tree, never the user's home, and shared by the tests, so
# a model compiled by one test is loaded by the next.
config.environment["KILN_CACHE_DIR"] = os.path.join(config.kiln_obj_root, "test", "kiln-cache")
config.substitutions.append(("%models", os.path.join(config.kiln_src_root, "models")))
config.substitutions.append(("%fixtures", os.path.join(config.kiln_src_root, "test", "fixtures")))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("%kiln_src", config.kiln_src_root))
config.substitutions.append(("%kiln_obj", config.kiln_obj_root))

# The CPUs lit may run on: kilnc's schedules split batch-1 layers among the
# threads it sees (its CPU affinity), so tests of that pin it with taskset
# to one CPU (%one_cpu) or two (%two_cpus, feature two-cpus).
cpus = sorted(os.sched_getaffinity(0))
config.substitutions.append(("%one_cpu", str(cpus[0])))
if len(cpus) >= 2:
    config.available_features.add("two-cpus")
    config.substitutions.append(("%two_cpus", "%d,%d" % (cpus[0], cpus[1])))

# Targets other than the host's (docs/targets.md). Each feature is set only
# when this machine can run the tests that need it; otherwise those tests
# are UNSUPPORTED, each saying why in its header.
import shutil


def have_programs(*names):
    return all(shutil.which(n, path=config.environment["PATH"]) for n in names)


# aarch64-cross: Debian's cross toolchain and Kiln's aarch64 runtime (built
# when the toolchain and the arm64 zlib were found at configure time).
aarch64_runtime = os.path.join(config.kiln_obj_root, "lib", "kiln", "aarch64-linux-gnu")
if have_programs("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld", "aarch64-linux-gnu-ar",
                 "aarch64-linux-gnu-objcopy") and os.path.exists(
                     os.path.join(aarch64_runtime, "libkiln_runtime_model.a")):
    config.available_features.add("aarch64-cross")
# qemu-aarch64: runs ARM programs with the cross toolchain's libraries
# (/usr/aarch64-linux-gnu, libc6-arm64-cross). LD_LIBRARY_PATH keeps its libc
# with its loader: with Debian multiarch's libc6:arm64 installed (a
# dependency of zlib1g-dev:arm64) the loader would otherwise find that libc
# first in /lib/aarch64-linux-gnu, a different build of glibc 2.36 than the
# cross loader's, and threaded programs hang in pthread_create. zlib itself
# comes from /usr/lib/aarch64-linux-gnu (multiarch).
# (The substitution is defined either way: install-relocated.test passes it
# on and skips its ARM step where qemu is missing.)
config.substitutions.append(
    ("%run-aarch64",
     "qemu-aarch64-static -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib"))
if have_programs("qemu-aarch64-static") and os.path.isdir("/usr/aarch64-linux-gnu/lib"):
    config.available_features.add("qemu-aarch64")

# x86 schedule families this CPU runs natively: avx2 (AVX2 + FMA, the
# x86-64-linux-avx2-fma target) and avx512 (avx512f and the other four
# extensions Halide's avx512_skylake target uses: CD, BW, DQ, VL).
try:
    with open("/proc/cpuinfo") as cpuinfo:
        cpu_flags = set(next((l.split(":", 1)[1].split() for l in cpuinfo if l.startswith("flags")), []))
except OSError:
    cpu_flags = set()
if {"avx2", "fma"} <= cpu_flags:
    config.available_features.add("avx2")
if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= cpu_flags:
    config.available_features.add("avx512")

# opencl: an OpenCL platform to run the GPU schedules on (docs/gpu.md): the
# unversioned libOpenCL.so that Halide's runtime loads (ocl-icd-opencl-dev)
# and an installable client driver, PoCL on the CPU (pocl-opencl-icd). PoCL
# compiles each kernel with its own LLVM on first use and caches it; the
# cache is kept in the build tree, not in the home directory.
config.environment["POCL_CACHE_DIR"] = os.path.join(config.kiln_obj_root, "test", "pocl-cache")
opencl_library = any(os.path.exists(os.path.join(d, "libOpenCL.so"))
                     for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"))
opencl_vendors = os.path.isdir("/etc/OpenCL/vendors") and any(
    name.endswith(".icd") for name in os.listdir("/etc/OpenCL/vendors"))
if opencl_library and opencl_vendors:
    config.available_features.add("opencl")
# ptxas: CUDA's PTX assembler (this machine kind has the CUDA toolkit at
# /usr/local/cuda/bin, no GPU), which checks the PTX a CUDA build embeds.
ptxas = shutil.which("ptxas", path=config.environment["PATH"] + os.pathsep + "/usr/local/cuda/bin")
if ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
# cuda-gpu: a CUDA driver and a GPU (libcuda.so.1 loads and reports a
# device); never on the build machines. The CUDA run tests need it.
try:
    import ctypes
    libcuda = ctypes.CDLL("libcuda.so.1")
    count = ctypes.c_int(0)
    if libcuda.cuInit(0) == 0 and libcuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0:
        config.available_features.add("cuda-gpu")
except OSError:
    pass

# strace: the relocated-install test watches which files kilnc, CMake and
# the compilers open.
if have_programs("strace"):
    config.available_features.add("strace")

# torch: Debian's PyTorch (/usr/bin/python3), for the few tests of the tools
# that talk to PyTorch (tools/kiln_checkpoint.py). CI does not install it:
# those tests are UNSUPPORTED there, the fixture-based tests cover Kiln's side.
import subprocess
try:
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True,
                      timeout=60).returncode == 0:
        config.available_features.add("torch")
except (OSError, subprocess.TimeoutExpired):
    pass

# chromium: Debian's browser, headless, lays out the SVG that `kilnc plot`
# writes (test/Tools/kilnc-plot-chromium.test). %chromium-dom loads a page
# and prints its DOM once its scripts are done (virtual time runs until the
# page is idle, at most 5 s of it); file:// pages may read files beside them.
if have_programs("chromium"):
    config.available_features.add("chromium")
config.substitutions.append(
    ("%chromium-dom",
     "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
     "--allow-file-access-from-files --virtual-time-budget=5000 --dump-dom"))
