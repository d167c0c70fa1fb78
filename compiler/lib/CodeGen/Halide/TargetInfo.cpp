//===- TargetInfo.cpp - what layouts and schedules know of a target -------===//
//
// The register block of a linear layer is P panels of L output channels ×
// R rows: P·R accumulators, plus P weight vectors and one broadcast input
// per k step, must fit the register file or the block spills; each row of
// the block reuses the weight vectors it loads, so taller blocks read the
// weights from L2 less often. Measured with Halide 14, float32, 1 thread:
//   AVX-512, Intel Xeon (KVM, family 6 model 167, AVX-512 + AMX, two 512-bit
//   FMA units: peak 204-211 GFLOP/s per thread), 2026-12-01, mlp_bn at batch
//   64 (the whole model, AOT, min of the runner's --bench): 16 lanes ×
//   3 panels × 8 rows (24 zmm) 166-184 µs (80-88% of peak); 4 × 6 (24 zmm)
//   181-190 µs, but 6-row tiles split 64 rows unevenly over 2 threads;
//   2 × 8 (16 zmm) 188; 4 × 4 (16 zmm) 194-207 (about 72%); 2 × 12 (24 zmm)
//   202; 1 × 8 225-232. Batch 1024: 3 × 8 3.2-3.4 ms, 4 × 4 3.5-3.7 ms. At
//   batch 1 a block is one row, so its panels are its independent FMA
//   chains: 3 panels 6.7-6.9 µs against 4 panels' 6.0-6.1 µs.
//   AVX-512, AMD EPYC Zen 4 (one 512-bit FMA unit, peak 116 GFLOP/s per
//   thread), 2026-11-22/24, JIT: 4 panels × 4 rows (16 zmm) ran mlp_bn at
//   92-97% of the 1-thread peak (with a single FMA unit 16 chains already
//   hide the latency); 64 channels × 8 rows (32 accumulators) spilled and
//   was 5-13% slower. The 3 × 8 block was not measured there; it keeps 4
//   zmm registers free, so it does not spill.
//   AVX2 (AMD EPYC Zen 2, 2026-12-01, peak 85 GFLOP/s per thread):
//     8 lanes × 3 panels × 4 rows (12 ymm): 61-73 GFLOP/s (72-86% of peak);
//     8 × 2 × 6 (12 ymm, rows not dividing 64): 58-60; 8 × 4 × 4 (16 ymm)
//     and 8 × 2 × 8 spill: 30-31; the AVX-512 block compiled for AVX2 (32
//     ymm accumulators, about 750 spills in mlp_bn's object): 44% of peak.
// Below 4 rows a block is one row, and its panels are its only independent
// FMA chains: with two FMA units of 4 cycles' latency, 8 chains keep both
// busy. mlp_bn at batch 1, 1 thread, on the Intel Xeon (2026-12-01): AVX2
// build, 3 panels 10.3-10.6 µs, 6 panels 7.1-7.2 µs, 9 panels 7.1 µs;
// AVX-512 build, 3 panels 6.5-6.9 µs, 6 panels 6.0 µs. A fixed group of 6
// padded batchnorm_net's 128 channels (8 panels of 16) to 12 panels, 50%
// more weights to read, and left one group, so no parallel loop: each layer
// takes the largest group that divides its panels instead.
//   SSE4.1: 16 xmm registers like AVX2, so the AVX2 block (not measured:
//     speed is not a goal on the baseline target, correctness is).
//   NEON (AArch64): 32 q registers like AVX-512's zmm, so its 4 × 4 block
//     (16 accumulators, 4 weight vectors, 1 broadcast). Not measured: no
//     ARM machine was available; the ARM builds are checked for correctness
//     under qemu-aarch64.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/TargetInfo.h"

#include <algorithm>
#include <cstdlib>
#include <sched.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace kiln::codegen {

namespace {

int hostThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    return CPU_COUNT(&set);
  return 1;
}

/// Whether the CPU has AVX-VNNI (the VEX-encoded vpdpwssd family): CPUID
/// leaf 7, subleaf 1, EAX bit 4.
bool cpuHasAvxVnni() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx))
    return false;
  return (eax >> 4) & 1;
#else
  return false;
#endif
}

/// Drops the features Halide 14 infers for the host that the CPU lacks.
/// Halide sets avx512_sapphirerapids from AVX512-BF16 alone, and with it
/// LLVM may emit AVX-VNNI: on an AMD EPYC Zen 4 (avx512_bf16 and
/// avx512_vnni, no avx_vnni; 2026-12-03) a 5×5 average pool padded by 2
/// compiled for the host died of SIGILL on `{vex} vpdpwssd`, while the same
/// kernel built for avx512_cannonlake ran and matched PyTorch.
Halide::Target withoutMissingHostFeatures(Halide::Target target) {
  if (target.arch == Halide::Target::X86 &&
      target.has_feature(Halide::Target::AVX512_SapphireRapids) && !cpuHasAvxVnni())
    target = target.without_feature(Halide::Target::AVX512_SapphireRapids);
  return target;
}

} // namespace

Halide::Target hostTarget() { return withoutMissingHostFeatures(Halide::get_host_target()); }

Halide::Target jitTarget() {
  // An explicit HL_JIT_TARGET is the user's choice, kept as given.
  const char *fromEnvironment = std::getenv("HL_JIT_TARGET");
  Halide::Target target = Halide::get_jit_target_from_environment();
  if (fromEnvironment && *fromEnvironment)
    return target;
  return withoutMissingHostFeatures(target);
}

std::string TargetInfo::gpuApi() const {
  if (target.has_feature(Halide::Target::CUDA))
    return "CUDA";
  if (target.has_feature(Halide::Target::OpenCL))
    return "OpenCL";
  return "";
}

std::string TargetInfo::isaName() const {
  switch (family) {
  case ScheduleFamily::Gpu: {
    std::string name = gpuApi();
    if (target.has_feature(Halide::Target::CUDA))
      name += " sm_" + std::to_string(target.get_cuda_capability_lower_bound());
    return name;
  }
  case ScheduleFamily::X86Avx512:
    return "x86-64 AVX-512";
  case ScheduleFamily::X86Avx2:
    return fma ? "x86-64 AVX2+FMA" : "x86-64 AVX2";
  case ScheduleFamily::X86Sse41:
    return "x86-64 SSE4.1";
  case ScheduleFamily::Arm64:
    return "AArch64 NEON";
  }
  return "unknown";
}

bool describeTarget(const Halide::Target &target, TargetInfo &out, std::string &error) {
  using T = Halide::Target;
  bool cuda = target.has_feature(T::CUDA), opencl = target.has_feature(T::OpenCL);
  if (target.has_gpu_feature() && !(cuda || opencl)) {
    error = "Kiln's GPU targets are CUDA and OpenCL, not '" + target.to_string() + "'";
    return false;
  }
  if (cuda && opencl) {
    error = "a target runs on one GPU API, not both CUDA and OpenCL ('" + target.to_string() +
            "'); list them as two targets to pick one at run time";
    return false;
  }
  if (target.bits != 64 || (target.arch != T::X86 && target.arch != T::ARM)) {
    error = "Kiln builds for 64-bit x86 and ARM CPUs, not '" + target.to_string() + "'";
    return false;
  }
  if (target.os != T::Linux) {
    error = "Kiln builds for Linux, not '" + target.to_string() + "'";
    return false;
  }
  TargetInfo info;
  info.target = target;
  info.lanes = target.natural_vector_size<float>();
  if (target.arch == T::ARM) {
    if (target.has_feature(T::NoNEON)) {
      error = "ARM targets need NEON ('" + target.to_string() + "' has no_neon)";
      return false;
    }
    info.family = ScheduleFamily::Arm64;
    info.vectorRegisters = 32;
    info.fma = true;
    info.linearPanels = 4;
    info.linearRows = 4;
  } else if (target.features_any_of({T::AVX512, T::AVX512_KNL, T::AVX512_Skylake,
                                      T::AVX512_Cannonlake, T::AVX512_SapphireRapids})) {
    info.family = ScheduleFamily::X86Avx512;
    info.vectorRegisters = 32;
    info.fma = true;
    info.linearPanels = 3;
    info.linearRows = 8;
  } else if (target.has_feature(T::AVX2) || target.has_feature(T::AVX)) {
    info.family = ScheduleFamily::X86Avx2;
    info.vectorRegisters = 16;
    info.fma = target.has_feature(T::FMA);
    info.linearPanels = 3;
    info.linearRows = 4;
  } else {
    info.family = ScheduleFamily::X86Sse41;
    info.vectorRegisters = 16;
    info.fma = false;
    info.linearPanels = 3;
    info.linearRows = 4;
  }
  if (cuda || opencl) {
    // ScheduleGpu.cpp: weights in panels of a warp's 32 channels, one
    // accumulator per thread.
    info.family = ScheduleFamily::Gpu;
    info.lanes = 32;
    info.linearPanels = 1;
    info.linearRows = 4;
    if (cuda && target.get_cuda_capability_lower_bound() < 30)
      info.target = target.with_feature(kDefaultCudaCapability);
    // The training step computes a few scalars in double, as PyTorch does
    // (Python floats: the optimizers' bias corrections); OpenCL kernels may
    // use doubles only with cl_khr_fp64, which PoCL and NVIDIA's and AMD's
    // drivers have.
    if (opencl)
      info.target = info.target.with_feature(T::CLDoubles);
  }
  // 12 accumulators fit AVX2's and SSE's 16 registers beside the broadcast
  // (the FMAs read the weights from memory), and 8 chains already hide the
  // latency of two FMA units.
  info.linearChainPanels = 12;
  Halide::Target host = Halide::get_host_target();
  info.threads = target.arch == host.arch && target.os == host.os ? hostThreads() : 0;
  out = info;
  return true;
}

std::string deviceTarget(const std::string &device) {
  Halide::Target host = hostTarget();
  if (device == "cuda")
    return host.with_feature(Halide::Target::CUDA).with_feature(kDefaultCudaCapability).to_string();
  if (device == "opencl")
    return host.with_feature(Halide::Target::OpenCL).to_string();
  if (device == "cpu")
    return host.to_string();
  return "";
}

bool parseTargets(const std::string &spec, std::vector<TargetInfo> &out, std::string &error) {
  out.clear();
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string entry = spec.substr(start, comma == std::string::npos ? std::string::npos
                                                                       : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (entry.empty()) {
      error = "empty target in '" + spec + "'";
      return false;
    }
    std::string name = entry == "host" ? hostTarget().to_string() : entry;
    if (!Halide::Target::validate_target_string(name)) {
      error = "'" + entry + "' is not a Halide target string (for example host, "
              "x86-64-linux-avx2-fma, arm-64-linux)";
      return false;
    }
    TargetInfo info;
    if (!describeTarget(Halide::Target(name), info, error))
      return false;
    if (!out.empty() && (info.target.arch != out[0].target.arch))
      {
        error = "the targets of one build must share an architecture ('" + spec + "')";
        return false;
      }
    out.push_back(info);
  }
  return true;
}

int TargetInfo::smallBatchGroup(int panels, int paddedPanels, bool parallel) const {
  // Split over threads only into groups of at least the block's panels:
  // one-panel groups would be latency-bound single FMA chains. A batch-1
  // call reads each weight once, so the threads are balanced when each
  // reads as many panels: a multiple of the threads' count of groups.
  if (parallel && threads > 1)
    for (int groups = threads; groups <= panels; groups += threads) {
      int group = (panels + groups - 1) / groups;
      if (group < linearPanels)
        break;
      bool fits = (panels + group - 1) / group * group <= paddedPanels;
      if (group <= linearChainPanels && fits)
        return group;
    }
  if (parallel)
    for (int group = std::min(linearChainPanels, paddedPanels / 2); group >= linearPanels; --group)
      if (paddedPanels % group == 0)
        return group;
  for (int group = std::min(linearChainPanels, paddedPanels); group >= 1; --group)
    if (paddedPanels % group == 0)
      return group;
  return 1;
}

TargetInfo hostTargetInfo() {
  TargetInfo info;
  std::string error;
  describeTarget(hostTarget(), info, error);
  return info;
}

} // namespace kiln::codegen
