//===- InitialState.h - PyTorch's default initialisation, from a seed -*- C++ -*-===//
//
// The state a training run starts from without a checkpoint: what PyTorch's
// reset_parameters() gives each layer (torch.nn 1.13),
//   Linear, Conv2d weight  kaiming_uniform_(a = √5), which is U(−b, b) with
//                          b = gain·√3/√fan_in = √(2/(1 + 5))·√3/√fan_in = 1/√fan_in
//   Linear, Conv2d bias    U(−b, b), b = 1/√fan_in of the layer's weight
//   BatchNorm              weight 1, bias 0, running_mean 0, running_var 1,
//                          num_batches_tracked 0
// with fan_in = weight.size(1) · (the product of the sizes after it):
// in_features for Linear, in_channels / groups · kh · kw for Conv2d
// (torch.nn.init._calculate_fan_in_and_fan_out). Optimizer state and the
// step count start at 0, a fresh torch.optim's.
//
// The uniform values come from Kiln's own counter-based stream, so a seed
// gives the same bits on every machine, thread count and run; the runtime
// implements it (kiln/runtime/initial_state.h), for training programs too,
// and the functions below call it. Element k
// (row-major) of the tensor under state_dict key K is
//   h = FNV-1a-64(the bytes of K)
//   w = philox4x32_10(counter = (k mod 2^32, k >> 32, (h mod 2^32) | 2^31, h >> 32),
//                     key = (seed mod 2^32, seed >> 32))[0]        (Philox.h)
//   u = (w >> 8) · 2^−24 ∈ [0, 1)
//   value = f32(b · (2u − 1)), the double product rounded to nearest,
// so every value lies in [−f32(b), f32(b)]. Bit 31 of the third counter
// word keeps these counters apart from nn.dropout_mask's, whose third word
// is a dropout layer's index. PyTorch's own stream (MT19937 through
// uniform_) is not reproduced: the same seed gives other weights than
// torch.manual_seed, from the same distributions.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_INITIALSTATE_H
#define KILN_DRIVER_INITIALSTATE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

class TrainStep;

/// How one parameter or buffer starts.
struct InitialTensor {
  enum class Kind { Uniform, Fill };
  std::string key;   // the state_dict key
  Kind kind = Kind::Fill;
  double bound = 0;  // Uniform: values in [−bound, bound]
  double value = 0;  // Fill: every element
};

/// Every parameter and buffer of `module`'s @forward, in order, with what
/// PyTorch's reset_parameters() gives it. State that no Linear, Conv2d or
/// BatchNorm reads has no default: an error at its op.
mlir::FailureOr<std::vector<InitialTensor>> defaultInitialisation(mlir::ModuleOp module);

/// h of the header: the stream of the tensor under `key`.
uint64_t initialStream(llvm::StringRef key);

/// Element `k` of a Uniform tensor, as the header defines it.
float initialUniform(uint64_t seed, uint64_t stream, uint64_t k, double bound);

/// `count` elements of `tensor` from `seed`, into `data` (row-major).
void fillInitial(const InitialTensor &tensor, uint64_t seed, float *data, int64_t count);
void fillInitial(const InitialTensor &tensor, int64_t *data, int64_t count);

/// Sets every state tensor of `step`: the parameters and buffers of
/// `tensors` (defaultInitialisation of the module the step was compiled
/// from) from `seed`, the rest (optimizer state, "step") to 0. Nothing is
/// changed on failure (a tensor the step lacks or cannot hold); `error`
/// says why.
bool initialiseState(const std::vector<InitialTensor> &tensors, uint64_t seed, TrainStep &step,
                     std::string &error);

} // namespace kiln

#endif // KILN_DRIVER_INITIALSTATE_H
