//===- Compile.cpp - from a model to its Halide pipelines -----------------===//
#include "kiln/Driver/Compile.h"

#include "mlir/IR/Diagnostics.h"

namespace kiln {

mlir::FailureOr<std::vector<TargetVariant>> compileModel(mlir::ModuleOp module,
                                                         const CompileOptions &options) {
  std::vector<codegen::TargetInfo> targets;
  std::string error;
  if (!codegen::parseTargets(options.target, targets, error))
    return mlir::LogicalResult(mlir::emitError(module.getLoc())
                               << "bad --target '" << options.target << "': " << error);
  if (options.stageLayers < 0)
    return mlir::LogicalResult(mlir::emitError(module.getLoc())
                               << "--stage-layers must be 0 (never cut) or more, not "
                               << options.stageLayers);
  if (failed(prepareForInference(module, options.inference)))
    return mlir::failure();
  std::vector<TargetVariant> variants;
  for (const codegen::TargetInfo &target : targets) {
    TargetVariant variant{target, {}};
    for (const std::string &entry : options.entryPoints) {
      codegen::LoweringOptions lowering;
      lowering.target = target;
      lowering.schedule = options.schedule;
      lowering.externalWeights = options.inference.externalWeights;
      lowering.stageLayers = options.stageLayers;
      lowering.unstagedLayers = options.unstagedLayers;
      mlir::FailureOr<codegen::LoweredModel> lowered =
          codegen::lowerToHalide(module, lowering, entry);
      if (failed(lowered))
        return mlir::failure();
      variant.entries.push_back(std::move(*lowered));
    }
    variants.push_back(std::move(variant));
  }
  return variants;
}

mlir::FailureOr<TrainCompilation> compileTraining(mlir::ModuleOp module,
                                                  const CompileOptions &options,
                                                  const nn::AutodiffOptions &autodiff) {
  TrainCompilation result;
  result.evalModule = module.clone();
  if (failed(prepareForTraining(module, autodiff)))
    return mlir::failure();
  CompileOptions eval = options;
  eval.inference = InferenceOptions();
  eval.inference.externalWeights = true;
  eval.entryPoints = {"forward"};
  mlir::FailureOr<std::vector<TargetVariant>> forward = compileModel(*result.evalModule, eval);
  if (failed(forward))
    return mlir::failure();
  for (TargetVariant &variant : *forward) {
    codegen::LoweringOptions lowering;
    lowering.target = variant.target;
    lowering.schedule = options.schedule;
    mlir::FailureOr<codegen::LoweredModel> step =
        codegen::lowerToHalide(module, lowering, nn::kTrainStepFunc);
    if (failed(step))
      return mlir::failure();
    result.variants.push_back(
        {variant.target, std::move(*step), std::move(variant.entries.front())});
  }
  return result;
}

} // namespace kiln
