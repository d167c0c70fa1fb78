//===- LoweringErrorsTest.cpp - what code generation refuses, and how -----===//
//
// Ops without inference code are errors at the op, never a silent identity
// (a training-mode dropout once lowered to one).
//
//===----------------------------------------------------------------------===//
#include "TestContext.h"
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Driver.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser.h"

#include <gtest/gtest.h>

#include <memory>

namespace {

/// The test context, parsing IR text in it.
struct Context : kiln::test::Context {
  mlir::OwningOpRef<mlir::ModuleOp> parse(const std::string &text) {
    return mlir::parseSourceString(text, &context);
  }
};

/// Lowers `text` (one @forward); the diagnostics it reported, or "" if it
/// lowered.
std::string loweringErrors(const std::string &text) {
  Context c;
  std::string &diagnostics = c.diagnostics;
  mlir::OwningOpRef<mlir::ModuleOp> module = c.parse(text);
  EXPECT_TRUE(module) << diagnostics;
  if (!module)
    return diagnostics;
  if (succeeded(kiln::codegen::lowerToHalide(*module)))
    return "";
  return diagnostics.empty() ? "failed without a diagnostic" : diagnostics;
}

TEST(LoweringErrors, TrainingModeDropoutHasNoInferenceCode) {
  EXPECT_EQ(loweringErrors(R"mlir(
    func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
      %y = nn.dropout %x {p = 5.000000e-01 : f64, training} : (tensor<?x8xf32>) -> tensor<?x8xf32>
      return %y : tensor<?x8xf32>
    })mlir"),
            "a training-mode dropout has no inference code\n");
  // In eval mode it is the identity.
  EXPECT_EQ(loweringErrors(R"mlir(
    func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
      %y = nn.dropout %x {p = 5.000000e-01 : f64} : (tensor<?x8xf32>) -> tensor<?x8xf32>
      return %y : tensor<?x8xf32>
    })mlir"),
            "");
}

TEST(LoweringErrors, AnEntryPointNeedsABatchedFirstArgument) {
  EXPECT_EQ(loweringErrors(R"mlir(
    func @forward(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
      return %x : tensor<4x8xf32>
    })mlir"),
            "the entry point's first argument must be a batch (tensor<?x...>)\n");
}

TEST(LoweringErrors, AMissingEntryPointIsNamed) {
  Context c;
  mlir::OwningOpRef<mlir::ModuleOp> module = c.parse("module {}");
  ASSERT_TRUE(module);
  EXPECT_TRUE(failed(kiln::codegen::lowerToHalide(*module, {}, "train_step")));
  EXPECT_EQ(c.diagnostics, "module has no function 'train_step'\n");
}

// An entry point with several inputs and outputs, and state passed in as
// arguments (as a training step's parameters are): one pipeline whose
// arguments are the inputs in order and whose outputs are the results.
TEST(EntryPoints, SeveralInputsOutputsAndStateArguments) {
  Context c;
  std::string &diagnostics = c.diagnostics;
  mlir::OwningOpRef<mlir::ModuleOp> module = c.parse(R"mlir(
    func @step(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>, %b: tensor<3xf32>)
        -> (tensor<?x3xf32>, tensor<?x3xf32>) {
      %y = nn.linear %x, %w, %b : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x3xf32>
      %z = nn.relu %y : tensor<?x3xf32>
      return %y, %z : tensor<?x3xf32>, tensor<?x3xf32>
    })mlir");
  ASSERT_TRUE(module) << diagnostics;
  for (bool schedule : {false, true}) {
    kiln::codegen::LoweringOptions options;
    options.schedule = schedule;
    mlir::FailureOr<kiln::codegen::LoweredModel> lowered =
        kiln::codegen::lowerToHalide(*module, options, "step");
    ASSERT_TRUE(succeeded(lowered)) << diagnostics;
    kiln::codegen::LoweredModel &model = *lowered;
    EXPECT_EQ(model.entry, "step");
    ASSERT_EQ(model.inputs.size(), 3u);
    ASSERT_EQ(model.outputs.size(), 2u);
    EXPECT_TRUE(model.inputs[0].batched);
    EXPECT_FALSE(model.inputs[1].batched);
    EXPECT_FALSE(model.inputs[2].batched);
    ASSERT_EQ(model.stages.size(), 1u);
    EXPECT_EQ(model.stages[0].arguments().size(), 3u); // nothing packed: no weights are bound
    const int batch = 5;
    float x[batch][4], w[3][4], b[3];
    for (int n = 0; n < batch; ++n)
      for (int k = 0; k < 4; ++k)
        x[n][k] = static_cast<float>(n - 2 * k) * 0.5f;
    for (int o = 0; o < 3; ++o) {
      b[o] = 0.25f * o - 0.5f;
      for (int k = 0; k < 4; ++k)
        w[o][k] = static_cast<float>((o + 1) * (k % 2 ? -1 : 1));
    }
    Halide::Buffer<float> xb(&x[0][0], 4, batch), wb(&w[0][0], 4, 3), bb(b, 3);
    model.inputs[0].param.set(xb);
    model.inputs[1].param.set(wb);
    model.inputs[2].param.set(bb);
    Halide::Buffer<float> y(3, batch), z(3, batch);
    model.realize({y, z}, kiln::codegen::jitTarget());
    for (int n = 0; n < batch; ++n)
      for (int o = 0; o < 3; ++o) {
        double want = b[o];
        for (int k = 0; k < 4; ++k)
          want += static_cast<double>(w[o][k]) * x[n][k];
        EXPECT_NEAR(y(o, n), want, 1e-5) << "n " << n << " o " << o;
        EXPECT_NEAR(z(o, n), want > 0 ? want : 0.0, 1e-5) << "n " << n << " o " << o;
      }
  }
}

} // namespace
