//===- TargetInfo.h - what layouts and schedules know of a target -*- C++ -*-===//
//
// One description per Halide target, made once by the Driver and read by
// lowering (weight panel widths) and scheduling (register blocks, vector
// widths). Nothing in code generation assumes one ISA: every number that
// depends on the machine comes from here, and each register block carries
// the measurement behind it (TargetInfo.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_HALIDE_TARGETINFO_H
#define KILN_CODEGEN_HALIDE_TARGETINFO_H

#include <Halide.h>

#include <string>
#include <vector>

namespace kiln::codegen {

/// Which family of hand schedules serves a target.
enum class ScheduleFamily {
  X86Avx512, // 16 f32 lanes, 32 zmm registers, FMA
  X86Avx2,   // 8 lanes, 16 ymm registers, FMA
  X86Sse41,  // 4 lanes, 16 xmm registers, no FMA (correct; speed not a goal)
  Arm64,     // NEON: 4 lanes, 32 q registers, FMA
  Gpu,       // CUDA or OpenCL: kernels of 256 threads (ScheduleGpu.cpp)
};

struct TargetInfo {
  Halide::Target target;
  ScheduleFamily family = ScheduleFamily::X86Avx2;
  /// f32 lanes of one vector register (Target::natural_vector_size<float>).
  int lanes = 8;
  /// Architectural vector registers the register blocks must fit in.
  int vectorRegisters = 16;
  bool fma = true;
  /// Threads of the machine the code is built on, where that is the
  /// target's machine (host builds); 0 when cross-compiling. Schedules still
  /// emit parallel loops when it is 1: the thread count is chosen at run time.
  int threads = 0;
  /// A linear layer's register block: `linearPanels` panels of `lanes`
  /// output channels × `linearRows` rows, one accumulator register each.
  /// Weights are packed in panels of `lanes` channels, padded to whole
  /// groups of `linearPanels` panels.
  int linearPanels = 3;
  int linearRows = 4;
  /// Below `smallBatch()` rows a block is one row of up to
  /// `linearChainPanels` panels: its panels are the independent FMA chains
  /// that hide the FMA latency (TargetInfo.cpp); each layer takes the
  /// largest group that divides its padded panels (smallBatchGroup).
  int linearChainPanels = 12;

  /// The smallest batch that gets row tiles (4 rows, or the block's rows
  /// if fewer).
  int smallBatch() const { return linearRows < 4 ? linearRows : 4; }
  /// A linear layer's panel group below smallBatch() rows, for a layer of
  /// `panels` panels padded to `paddedPanels` (whole linearPanels groups).
  /// With `parallel` and a known thread count: the smallest group of at
  /// least linearPanels that splits the panels into a multiple of the
  /// threads' count of groups, reading no padding past `paddedPanels`
  /// (batchnorm_net's first layer on AVX-512: 8 panels in 2 groups of 4,
  /// where 3 groups of 3 of the 9 padded ones left one thread two groups
  /// and read a panel of zeros). Otherwise the largest divisor of the
  /// padded panels up to linearChainPanels (with `parallel`, of at least
  /// linearPanels and leaving two or more groups, where there are such).
  int smallBatchGroup(int panels, int paddedPanels, bool parallel) const;

  /// Accumulator registers a convolution's register block may use: 24 of
  /// AVX-512's 32 measured best for LeNet's first layer (6 channels × 3
  /// vectors of its 24-wide rows: 18, unrolled, against 24 × 6 = 144 in
  /// memory; AMD EPYC Zen 4, 2026-11-24); the rest hold weights and inputs.
  int convAccumulators() const { return vectorRegisters * 3 / 4; }
  /// Whether the pipelines run on a GPU (CUDA or OpenCL); the host part of
  /// the target (x86-64 or ARM) runs what calls them.
  bool gpu() const { return family == ScheduleFamily::Gpu; }
  /// The GPU API in words ("CUDA", "OpenCL"), empty for CPU targets.
  std::string gpuApi() const;
  /// The ISA in words, for reports and headers ("x86-64 AVX-512").
  std::string isaName() const;
  /// Halide's string of the target.
  std::string str() const { return target.to_string(); }
};

/// Describes `target`. Fails with a message for targets Kiln has no
/// schedules for (32-bit, WebAssembly, GPU APIs other than CUDA and OpenCL).
/// A CUDA target without a cuda_capability_* feature gets
/// kDefaultCudaCapability.
bool describeTarget(const Halide::Target &target, TargetInfo &out, std::string &error);

/// The compute capability of CUDA targets that name none: sm_75, the oldest
/// CUDA 13's ptxas assembles (Halide 14 defaults to sm_20, which no current
/// toolkit or driver takes); newer GPUs run its PTX through the driver's JIT.
constexpr Halide::Target::Feature kDefaultCudaCapability = Halide::Target::CUDACapability75;

/// The Halide target of `kilnc --device`: cuda, opencl or cpu (the host
/// with that GPU API, or the host alone). Empty for any other name.
std::string deviceTarget(const std::string &device);

/// Parses a `--target` value: one Halide target string, `host`, or a
/// comma-separated list of them (a multi-target build, most specific first).
/// Each gets a description; errors name the bad entry.
bool parseTargets(const std::string &spec, std::vector<TargetInfo> &out, std::string &error);

/// The host's Halide target: Halide::get_host_target() without the
/// features Halide 14 infers that the CPU lacks (avx512_sapphirerapids on
/// CPUs with AVX512-BF16 but no AVX-VNNI, such as AMD Zen 4). Use it, never
/// get_host_target(), for code that runs here.
Halide::Target hostTarget();
/// The JIT's target: HL_JIT_TARGET where set, else hostTarget() with JIT.
Halide::Target jitTarget();

/// The host's description (tests, JIT).
TargetInfo hostTargetInfo();

} // namespace kiln::codegen

#endif // KILN_CODEGEN_HALIDE_TARGETINFO_H
