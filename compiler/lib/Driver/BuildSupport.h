//===- BuildSupport.h - what inference and training builds share -*- C++ -*-===//
//
// Internal to the Driver: the pieces of Build.cpp that the training build
// (TrainBuild.cpp) uses too. Each build describes its product (the
// pipelines to compile, the header, the generated C, the API's symbols) and
// assembleProduct makes it the one way: objects without Halide's runtime
// and one runtime for them, the C compiled, merged into one relocatable
// object whose only global symbols are the API's, then the executable,
// object or library, moved into place with its header only once all of it
// succeeded.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_DRIVER_BUILDSUPPORT_H
#define KILN_LIB_DRIVER_BUILDSUPPORT_H

#include "kiln/Driver/Build.h"

#include "mlir/IR/Location.h"

#include <Halide.h>

#include <string>
#include <vector>

namespace kiln::build {

/// One object to compile: a pipeline under its name (the work directory's
/// <name>.o, set by compilePipelines).
struct CompileJob {
  Halide::Pipeline pipeline;
  std::vector<Halide::Argument> arguments;
  std::string name;
  Halide::Target target;
  std::string object;
};

/// What one build makes.
struct Product {
  std::string api;
  /// Every variant's lowered entry point that sets the targets (the
  /// toolchain's, Halide's runtime's): most specific first.
  std::vector<codegen::LoweredModel *> models;
  std::vector<CompileJob> jobs;
  std::string header; // OUT.h
  std::string modelC; // the description and entry points (OUT_model.c)
  std::string mainC;  // the executable's main()
  /// The API's functions: the only global symbols of the merged object
  /// besides the runtime's shared pool and arena.
  std::vector<std::string> symbols;
  /// The merged object holds C++ parts of Kiln's runtime (the checkpoint
  /// writer): they are merged from kiln_runtime, and libraries and programs
  /// link libstdc++.
  bool cxxRuntime = false;
};

/// Makes `product` as the options say (the comment above).
mlir::LogicalResult assembleProduct(mlir::Location loc, const BuildOptions &options,
                                    Product &product);

/// The inference pipelines (and load pipelines) of every variant of
/// `models`, named after `api`, variant and stage.
std::vector<CompileJob> pipelineJobs(const std::string &api,
                                     const std::vector<codegen::LoweredModel *> &models);
/// The target an object of `model` is compiled for: its own, with a
/// user_context and without Halide's runtime.
Halide::Target objectTarget(const codegen::LoweredModel &model);
/// Reports a tensor of a rank the model runtime cannot describe.
mlir::LogicalResult checkRanks(mlir::Location loc,
                               const std::vector<codegen::LoweredModel *> &models);

/// The description of an inference model as kiln/runtime/model.h reads it
/// (static `<api>_model`, its variants and layouts), the pipelines'
/// declarations, and the per-thread message buffer `<api>_error`.
std::string modelDataText(const std::string &api, const std::vector<codegen::LoweredModel *> &models,
                          mlir::ModuleOp module, bool allowExtraKeys, bool allowNonfinite);

/// API_NAME for api_name (header guards and macros).
/// How IDX pixels become input: the model's train transform (scale, then
/// normalize), else 1/255.
void pixelTransform(mlir::ModuleOp module, float &scale, float &mean, float &stddev);

std::string macroPrefix(const std::string &api);
/// {-1, 3, 28, 28}: a shape with its batch as -1.
std::string shapeList(const std::vector<int64_t> &shape);
/// The product of a shape's extents after the batch.
int64_t perSample(const std::vector<int64_t> &shape);
/// A C string literal of `text`, control characters escaped.
std::string cString(llvm::StringRef text);

/// `{a, b, ...}`.
template <typename T>
std::string braced(const std::vector<T> &values) {
  std::string text = "{";
  for (size_t i = 0; i < values.size(); ++i)
    text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "}";
}

/// A static array of `type` for an initializer, or NULL when empty (C has
/// no empty arrays): a compound literal at file scope has static storage.
template <typename T>
std::string arrayOf(const char *type, const std::vector<T> &values) {
  if (values.empty())
    return "NULL";
  return std::string("(const ") + type + "[])" + braced(values);
}

/// The names of the compiled pipelines of one stage of a variant.
struct StageNames {
  std::string infer, load;
};
StageNames stageNames(const std::string &api, size_t variant, size_t stage);

} // namespace kiln::build

#endif // KILN_LIB_DRIVER_BUILDSUPPORT_H
