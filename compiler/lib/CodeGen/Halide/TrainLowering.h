//===- TrainLowering.h - the training-step ops' Halide builders -*- C++ -*-===//
//
// Internal to CodeGen/Halide: what Lowering.cpp's Builder hands the builders
// of NNTrainOps.td's ops (TrainLowering.cpp), and the expressions both share.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_LIB_CODEGEN_HALIDE_TRAINLOWERING_H
#define KILN_LIB_CODEGEN_HALIDE_TRAINLOWERING_H

#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Dialect/NN/IR/ShapeInference.h"

#include "mlir/IR/Operation.h"

#include <functional>

namespace kiln::codegen {

/// NaN tested on the bits (Lowering.cpp says why).
Halide::Expr isNan(Halide::Expr x);
/// relu and sigmoid with PyTorch's results at the edges (Lowering.cpp).
Halide::Expr relu(Halide::Expr x);
Halide::Expr sigmoid(Halide::Expr x);
/// exp(t) for t <= 0 or NaN (softmax's exp(x − max)), with PyTorch's
/// results at the edges (Lowering.cpp).
Halide::Expr expNonPositive(Halide::Expr t);

/// Whether a window of kernel kh × kw placed for an input of shape `in`
/// ([N, C, H, W]) giving `out` reads outside the input: begin padding, or a
/// last tap past the end (end padding, a ceil_mode window that overhangs).
bool readsOutside(const nn::WindowSpec &window, int64_t kh, int64_t kw,
                  const std::vector<int64_t> &in, const std::vector<int64_t> &out);

/// Pool windows of at most this many taps are written out tap by tap (an
/// RDom makes Halide build an inner reduction Func per output element: 19%
/// of LeNet's time at batch 64); larger ones are reductions over an RDom,
/// since the written-out expression grows Halide's compile time faster than
/// the taps: kilnc build of a 2×32×32 max pool (Zen 4, 2026-12-03) took
/// 1.5 s at 4×4 taps, 1.9 s at 8×8, 2.9 s at 12×12, 5.0 s at 16×16, and
/// did not finish in 10 minutes (4.4 GB) for ONNX's 60×80 window.
constexpr int64_t kMaxUnrolledWindowTaps = 64;

/// nn.avg_pool2d's divisor along dimension `d` (0: h, 1: w) for the window
/// at output position `o`, of `kernel` over an input extent `size`.
Halide::Expr poolDivisorExtent(Halide::Expr o, const nn::WindowSpec &window, int d,
                               int64_t kernel, int64_t size, bool countIncludePad);

/// What a training-step op's builder reads and where its Funcs go.
struct TrainContext {
  /// The Func of an operand (any value the Builder has lowered, entry-point
  /// arguments included).
  std::function<Halide::Func(mlir::Value)> funcOf;
  /// A unique Func name for one of the op's Funcs.
  std::function<std::string(llvm::StringRef role)> nameFor;
  /// The step's hyper-parameter `name` (a scalar argument of the pipeline,
  /// LoweredStage::hyperParameters) whose default is `value`; undefined,
  /// with an error at the op, if an earlier op gave it another default.
  std::function<Halide::Expr(llvm::StringRef name, double value)> hyperParameter;
  /// The batch extent of the stage.
  Halide::Expr batch;
  /// Where each Func that the schedule computes whole is recorded.
  std::vector<LayerFuncs> *layers;
  /// The target's f32 lanes (a vector of partial sums).
  int lanes = 8;
  /// The update stage (LoweredStage): each of an update op's results
  /// (inPlaceState) is a Func whose old values are those of the state it
  /// replaces, stored over them; the op reads them from that Func, never
  /// from its operand. SGD, Adam(W) and running statistics are built only
  /// so; an increment also apart from it (dropout's step, in the gradients).
  bool inPlace = false;
};

/// Whether `op` is one of NNTrainOps.td's ops.
bool isTrainOp(mlir::Operation *op);
/// Whether `op` belongs in a training step's update stage (LoweredStage):
/// an optimizer's update, the running statistics', a counter's increment.
bool isUpdateOp(mlir::Operation *op);
/// An update op's results and the state operands each is stored over in
/// the update stage (TrainContext::inPlace): (result index, operand).
std::vector<std::pair<unsigned, mlir::Value>> inPlaceState(mlir::Operation *op);

/// Defines the Funcs of training-step op `op`: one per result, in order.
/// Errors are reported at `op`.
mlir::FailureOr<std::vector<Halide::Func>> buildTrainOp(mlir::Operation *op,
                                                        const TrainContext &context);

} // namespace kiln::codegen

#endif // KILN_LIB_CODEGEN_HALIDE_TRAINLOWERING_H
