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

} // namespace kiln
