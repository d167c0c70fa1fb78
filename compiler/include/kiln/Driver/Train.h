//===- Train.h - kilnc train and kilnc eval: the trainer on a built step -*- C++ -*-===//
//
// `kilnc train` runs the trainer of the runtime (kiln/runtime/train_loop.h:
// epochs, validation, early stopping, checkpoints, resume) on the model's
// training step built ahead of time: the model is compiled as `kilnc build
// --mode=train --emit=shared` would (the same schedules, the same code),
// into a temporary directory, and the library is loaded into kilnc. So
// `kilnc train` and a program of `kilnc build --mode=train` run the same
// trainer on the same code, and give the same checkpoints, bit for bit.
//
// Without --init or --resume the state starts from PyTorch's default
// initialisation from the run's seed (InitialState.h), which the library
// draws itself (kiln_trainer_initialise), as a training program does.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_TRAIN_H
#define KILN_DRIVER_TRAIN_H

#include "kiln/Dialect/NN/Transforms/Passes.h"
#include "kiln/runtime/train_loop.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace kiln {

struct TrainRunOptions {
  /// The trainer's options; `init` null (and `resume` null) for the default
  /// initialisation from `seed`.
  kiln_train_options_t loop = kiln_train_options_default();
  /// --seed; -1: the train section's, else 0 (nn::trainingSeed).
  int64_t seed = -1;
  /// --cc: the C compiler the library is linked with (default: the host's).
  std::string cc;
  /// The library's API name (a C identifier): what messages, the plot's
  /// title and its label call the model.
  std::string apiName = "model";
};

/// Compiles `module`'s training step (nn-autodiff with `autodiff`) for the
/// host, loads it and runs the trainer of `options`. Returns the process's
/// exit code; compile errors are reported through the module's context,
/// the trainer's on stdout/stderr.
int runTraining(mlir::ModuleOp module, const nn::AutodiffOptions &autodiff,
                TrainRunOptions options);

} // namespace kiln

#endif // KILN_DRIVER_TRAIN_H
