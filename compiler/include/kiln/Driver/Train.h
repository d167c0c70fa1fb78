//===- Train.h - kilnc train: K steps over arrays, a checkpoint -*- C++ -*-===//
//
// The training run behind `kilnc train`: a model prepared for training
// (prepareForTraining), its state from a safetensors checkpoint or, without
// one, PyTorch's default initialisation from the run's seed
// (InitialState.h), inputs and
// labels from NPY files, `steps` steps of kiln::TrainStep over the rows in
// order, and the state written as a safetensors checkpoint by the runtime's
// output rules (output.h). Every file and value is checked before the step
// is compiled, and the output is checked before and written only after the
// last step: a failure writes nothing.
//
// Batches: the rows (the arrays' leading dimensions, flattened) are taken in
// order, `batch` at a time; the last batch of a pass over the data holds
// what is left (rows mod batch, when that is not 0) and runs as a smaller
// batch through the same step; then the next pass starts again at row 0.
// With 160 rows and --batch 16, step i (from 0) is rows [16·i, 16·i + 16)
// of pass i / 10; with 50 rows and --batch 16, a pass is 16, 16, 16, 2.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_TRAIN_H
#define KILN_DRIVER_TRAIN_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace kiln {

struct TrainRunOptions {
  std::string initPath;    // safetensors: the state_dict (optimizer state optional);
                           // empty: PyTorch's default initialisation from `seed`
  int64_t seed = -1;       // --seed; -1: the train section's, else 0 (trainingSeed)
  std::string inputsPath;  // NPY f32: [rows..., the model's per-sample shape]
  std::string labelsPath;  // NPY i64: one class index per row
  std::string outputPath;  // the checkpoint written at the end
  int64_t steps = 0;       // > 0
  int64_t batch = 0;       // in [1, rows]
  int64_t printEvery = 1;  // a loss line every this many steps (0: none)
  int threads = 0;         // Halide's JIT threads (0: Halide's default)
  /// The files the output may not be (the model and the three above).
  std::vector<std::string> inputFiles;
};

/// Runs the training of `options` on `module` (with @train_step); prints
/// progress to `log`. On failure `error` says why (naming the file, tensor
/// or flag), or is empty where a diagnostic was emitted at the model.
mlir::LogicalResult runTraining(mlir::ModuleOp module, const TrainRunOptions &options,
                                llvm::raw_ostream &log, std::string &error);

} // namespace kiln

#endif // KILN_DRIVER_TRAIN_H
