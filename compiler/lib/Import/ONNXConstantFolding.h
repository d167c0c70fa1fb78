//===- ONNXConstantFolding.h - shape operators evaluated at import -*- C++ -*-===//
//
// Internal to the ONNX importer. PyTorch's exporter computes some
// constants with operators rather than storing them: nn.ZeroPad2d's pads
// come out as Constant -> ConstantOfShape -> Concat -> Reshape -> Slice ->
// Transpose -> Reshape -> Cast -> Pad (torch 1.13, opset 13 and 17). Where
// every input of such a node is a constant, the importer evaluates it here,
// so the Pad after them reads a constant like any other.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_IMPORT_ONNXCONSTANTFOLDING_H
#define KILN_LIB_IMPORT_ONNXCONSTANTFOLDING_H

#include "ONNXTensor.h"

#include "llvm/ADT/ArrayRef.h"

namespace kiln::onnximport {

/// Whether Kiln evaluates `opType` at import time over constant inputs
/// (ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast).
bool isFoldableOp(llvm::StringRef opType);

/// Evaluates `node` of opset `opset` over `inputs` (one per node input;
/// null for an absent optional one) into `out`; tensors in its attributes
/// are decoded as the model's (`modelDir`). On error returns false and sets
/// `error` to a sentence (the caller names the node).
bool foldConstantOp(const onnx::NodeProto &node, int64_t opset, llvm::StringRef modelDir,
                    llvm::ArrayRef<const HostTensor *> inputs, HostTensor &out,
                    std::string &error);

} // namespace kiln::onnximport

#endif // KILN_LIB_IMPORT_ONNXCONSTANTFOLDING_H
