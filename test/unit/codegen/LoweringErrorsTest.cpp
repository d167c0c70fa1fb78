//===- LoweringErrorsTest.cpp - what code generation refuses, and how -----===//
//
// Ops without inference code are errors at the op, never a silent identity
// (a training-mode dropout once lowered to one).
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/Lowering.h"
#include "kiln/Driver/Driver.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser.h"

#include <gtest/gtest.h>

namespace {

/// Lowers `text` (one @forward); the diagnostics it reported, or "" if it
/// lowered.
std::string loweringErrors(const std::string &text) {
  mlir::MLIRContext context;
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &diag) {
    diagnostics += diag.str() + "\n";
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString(text, &context);
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
  mlir::MLIRContext context;
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &diag) {
    diagnostics += diag.str();
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceString("module {}", &context);
  ASSERT_TRUE(module);
  EXPECT_TRUE(failed(kiln::codegen::lowerToHalide(*module, {}, "train_step")));
  EXPECT_EQ(diagnostics, "module has no function 'train_step'");
}

} // namespace
