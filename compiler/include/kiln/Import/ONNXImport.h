//===- ONNXImport.h - ONNX models to the nn dialect -------------*- C++ -*-===//
//
// The second importer beside the DSL's: an ONNX model (what
// torch.onnx.export writes) read with the ONNX library (protobuf classes,
// onnx::checker, shape inference) and imported into the same nn ops, so an
// imported model folds, compiles to every target and trains like a DSL
// model. docs/onnx.md lists the operators and attributes taken.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IMPORT_ONNXIMPORT_H
#define KILN_IMPORT_ONNXIMPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <map>
#include <string>
#include <vector>

namespace kiln {

/// A tensor given for a graph input, or read from a TensorProto file
/// (ONNX's test data: input_0.pb, output_0.pb): float32 values, or
/// integers (a Reshape's shape, Squeeze's axes) in `ints`.
struct ONNXTensorValue {
  std::string name;
  std::vector<int64_t> dims;
  std::vector<float> data;
  bool isFloat = true;
  std::vector<int64_t> ints;
};

struct ONNXImportOptions {
  /// Values for graph inputs that feed only weight operands (Conv's W and
  /// B, Gemm's B and C, MatMul's B, BatchNormalization's scale, bias, mean
  /// and variance, Reshape's shape...): they are imported as initializers.
  /// Kiln compiles weights into the model; ONNX's node tests pass them as
  /// inputs, and the conformance driver binds them this way.
  std::map<std::string, ONNXTensorValue> weightInputs;
  /// When set, filled with the graph inputs that became the entry point's
  /// arguments, in order.
  std::vector<std::string> *argumentNames = nullptr;
};

/// Files named *.onnx are ONNX models; everything else is DSL source.
bool isONNXModelPath(llvm::StringRef path);

/// Imports the serialized ModelProto `bytes` of the file `path` (external
/// data is read relative to its directory). Errors name the file, and the
/// node where there is one (`model.onnx: node 'Gemm_3' (Gemm): ...`); every
/// unsupported node is reported at once. Returns null on error.
mlir::OwningOpRef<mlir::ModuleOp> importONNXModel(llvm::StringRef bytes, llvm::StringRef path,
                                                  mlir::MLIRContext *context,
                                                  const ONNXImportOptions &options = {});

/// Reads one serialized TensorProto of float32 or INT64/INT32 values (a
/// test's input_0.pb). Errors name the file; returns failure on error.
mlir::FailureOr<ONNXTensorValue> readONNXTensorFile(llvm::StringRef path,
                                                    mlir::MLIRContext *context);

} // namespace kiln

#endif // KILN_IMPORT_ONNXIMPORT_H
