//===- SemaTest.cpp - defaults, pairs and semantic errors -----------------===//
#include "FrontendTestUtil.h"

#include <cstdlib>

namespace kiln::test {
namespace {

using ast::AttrValue;

class SemaTest : public FrontendTest {
protected:
  /// A valid model around `layers` (declarations of a layer named `l`, used
  /// in forward) and an optional train section body.
  std::unique_ptr<ast::Model> checkLayer(const std::string &decl,
                                         const std::string &train = "") {
    std::string text = "model M {\n  input x: f32[N, 1, 28, 28]\n  l = " +
                       decl + "\n  forward { return l(x) }\n";
    if (!train.empty())
      text += "  train {\n" + train + "\n  }\n";
    text += "}\n";
    return check(text);
  }
};

TEST_F(SemaTest, LinearBiasDefaultsToTrue) {
  auto model = checkLayer("linear(784, 10)");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const ast::LayerDecl &layer = model->layers[0];
  EXPECT_EQ(layer.intAttr("in_features"), 784);
  EXPECT_EQ(layer.intAttr("out_features"), 10);
  EXPECT_EQ(layer.attr("bias").kind, AttrValue::Kind::Bool);
  EXPECT_TRUE(layer.boolAttr("bias"));
}

TEST_F(SemaTest, BatchNormDefaults) {
  auto model = checkLayer("batchnorm2d(1)");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const ast::LayerDecl &layer = model->layers[0];
  EXPECT_EQ(layer.intAttr("num_features"), 1);
  EXPECT_DOUBLE_EQ(layer.floatAttr("eps"), 1e-5);
  EXPECT_DOUBLE_EQ(layer.floatAttr("momentum"), 0.1);
  EXPECT_TRUE(layer.boolAttr("affine"));
  EXPECT_TRUE(layer.boolAttr("track_running_stats"));
}

TEST_F(SemaTest, AvgPoolStrideDefaultsToKernelSize) {
  // PyTorch: stride=None means stride=kernel_size.
  auto model = checkLayer("avgpool2d(kernel_size=(3, 2))");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const AttrValue &stride = model->layers[0].attr("stride");
  EXPECT_EQ(stride.kind, AttrValue::Kind::IntPair);
  EXPECT_EQ(stride.ints[0], 3);
  EXPECT_EQ(stride.ints[1], 2);
}

TEST_F(SemaTest, ExplicitPoolStrideIsKept) {
  auto model = checkLayer("maxpool2d(2, stride=1)");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  EXPECT_EQ(model->layers[0].attr("stride").ints[0], 1);
  EXPECT_EQ(model->layers[0].attr("stride").ints[1], 1);
}

TEST_F(SemaTest, IntegerKernelSizeBecomesAPair) {
  auto model = checkLayer("conv2d(1, 6, kernel_size=5)");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const ast::LayerDecl &layer = model->layers[0];
  const AttrValue &kernel = layer.attr("kernel_size");
  EXPECT_EQ(kernel.kind, AttrValue::Kind::IntPair);
  EXPECT_EQ(kernel.ints[0], 5);
  EXPECT_EQ(kernel.ints[1], 5);
  EXPECT_EQ(layer.attr("stride").ints[0], 1);
  EXPECT_EQ(layer.attr("stride").ints[1], 1);
  EXPECT_EQ(layer.attr("padding").ints[0], 0);
  EXPECT_EQ(layer.attr("padding").ints[1], 0);
  EXPECT_TRUE(layer.boolAttr("bias"));
}

TEST_F(SemaTest, ConvDilationDefaultsToOneAndTakesAPair) {
  auto model = checkLayer("conv2d(1, 6, 3, 1, 0, (2, 3))");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const AttrValue &dilation = model->layers[0].attr("dilation");
  EXPECT_EQ(dilation.kind, AttrValue::Kind::IntPair);
  EXPECT_EQ(dilation.ints[0], 2);
  EXPECT_EQ(dilation.ints[1], 3);
  // bias is still a keyword away; positionally it follows dilation.
  EXPECT_TRUE(model->layers[0].boolAttr("bias"));
  auto plain = checkLayer("conv2d(1, 6, 3)");
  ASSERT_TRUE(plain) << ::testing::PrintToString(errors());
  EXPECT_EQ(plain->layers[0].attr("dilation").ints[0], 1);
  EXPECT_EQ(plain->layers[0].attr("dilation").ints[1], 1);
}

TEST_F(SemaTest, PoolOptionsDefaultAsInPyTorch) {
  auto avg = checkLayer("avgpool2d(2)");
  ASSERT_TRUE(avg) << ::testing::PrintToString(errors());
  const ast::LayerDecl &a = avg->layers[0];
  EXPECT_EQ(a.attr("padding").ints[0], 0);
  EXPECT_FALSE(a.boolAttr("ceil_mode"));
  // nn.AvgPool2d(count_include_pad=True) by default.
  EXPECT_TRUE(a.boolAttr("count_include_pad"));
  auto max = checkLayer("maxpool2d(3)");
  ASSERT_TRUE(max) << ::testing::PrintToString(errors());
  const ast::LayerDecl &m = max->layers[0];
  EXPECT_EQ(m.attr("padding").ints[1], 0);
  EXPECT_EQ(m.attr("dilation").ints[0], 1);
  EXPECT_FALSE(m.boolAttr("ceil_mode"));
  EXPECT_FALSE(m.boolAttr("return_indices"));
  EXPECT_EQ(m.attr("stride").ints[0], 3);
}

TEST_F(SemaTest, PoolArgumentsKeepPyTorchsPositions) {
  // AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad).
  auto avg = checkLayer("avgpool2d(3, 2, 1, true, false)");
  ASSERT_TRUE(avg) << ::testing::PrintToString(errors());
  EXPECT_EQ(avg->layers[0].attr("padding").ints[0], 1);
  EXPECT_TRUE(avg->layers[0].boolAttr("ceil_mode"));
  EXPECT_FALSE(avg->layers[0].boolAttr("count_include_pad"));
  // MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode).
  auto max = checkLayer("maxpool2d(3, 2, 1, 2, false, true)");
  ASSERT_TRUE(max) << ::testing::PrintToString(errors());
  EXPECT_EQ(max->layers[0].attr("dilation").ints[1], 2);
  EXPECT_TRUE(max->layers[0].boolAttr("ceil_mode"));
}

TEST_F(SemaTest, PythonBooleansAreBooleans) {
  auto model = checkLayer("avgpool2d(2, ceil_mode=True, count_include_pad=False)");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  EXPECT_TRUE(model->layers[0].boolAttr("ceil_mode"));
  EXPECT_FALSE(model->layers[0].boolAttr("count_include_pad"));
  EXPECT_FALSE(checkLayer("avgpool2d(2, ceil_mode=TRUE)"));
}

TEST_F(SemaTest, SoftmaxLayerKeepsANegativeDim) {
  // The importer normalizes the dim against the input's rank.
  auto model = checkLayer("log_softmax(dim=-1)");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  EXPECT_EQ(model->layers[0].intAttr("dim"), -1);
}

TEST_F(SemaTest, SequentialMembersGetDefaults) {
  auto model = checkLayer("sequential {\n    flatten\n    linear(784, 10)\n  }");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const ast::LayerDecl &seq = model->layers[0];
  ASSERT_EQ(seq.members.size(), 2u);
  EXPECT_EQ(seq.members[0].intAttr("start_dim"), 1);
  EXPECT_EQ(seq.members[0].intAttr("end_dim"), -1);
  EXPECT_TRUE(seq.members[1].boolAttr("bias"));
}

TEST_F(SemaTest, AdamDefaults) {
  auto model = checkLayer("flatten", "    optimizer = adam");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const ast::ResolvedCall &adam = model->trainConfig.optimizer;
  EXPECT_EQ(adam.name, "adam");
  const AttrValue &betas = adam.args.at("betas");
  EXPECT_EQ(betas.kind, AttrValue::Kind::FloatPair);
  EXPECT_DOUBLE_EQ(betas.floats[0], 0.9);
  EXPECT_DOUBLE_EQ(betas.floats[1], 0.999);
  EXPECT_DOUBLE_EQ(adam.args.at("lr").floats[0], 1e-3);
  EXPECT_DOUBLE_EQ(adam.args.at("eps").floats[0], 1e-8);
  EXPECT_DOUBLE_EQ(adam.args.at("weight_decay").floats[0], 0);
}

TEST_F(SemaTest, TrainSettingsAreResolved) {
  auto model = checkLayer(
      "flatten",
      "    optimizer = sgd(lr=0.01, momentum=0.9)\n    batch = 32\n"
      "    epochs = 3\n    validation = 0.1\n"
      "    early_stopping(patience=2)\n"
      "    transform = [scale(1/255), normalize(0.5, 0.5)]");
  ASSERT_TRUE(model) << ::testing::PrintToString(errors());
  const ast::TrainConfig &config = model->trainConfig;
  EXPECT_EQ(config.optimizer.name, "sgd");
  EXPECT_DOUBLE_EQ(config.optimizer.args.at("momentum").floats[0], 0.9);
  EXPECT_FALSE(config.optimizer.args.at("nesterov").boolValue);
  EXPECT_EQ(config.batchSize, 32);
  EXPECT_EQ(config.epochs, 3);
  EXPECT_DOUBLE_EQ(config.validation, 0.1);
  ASSERT_TRUE(config.earlyStopping.hasValue());
  EXPECT_EQ(config.earlyStopping->args.at("patience").ints[0], 2);
  EXPECT_DOUBLE_EQ(config.earlyStopping->args.at("delta").floats[0], 0);
  ASSERT_EQ(config.transforms.size(), 2u);
  EXPECT_DOUBLE_EQ(config.transforms[0].args.at("factor").floats[0],
                   1.0 / 255);
  EXPECT_DOUBLE_EQ(config.transforms[1].args.at("std").floats[0], 0.5);
}

TEST_F(SemaTest, UnknownLayerKindSuggestsANearMiss) {
  EXPECT_FALSE(checkLayer("lienar(784, 10)"));
  EXPECT_ONE_ERROR("unknown layer kind 'lienar'; did you mean 'linear'?", 3, 7);
}

TEST_F(SemaTest, MissingRequiredArgument) {
  EXPECT_FALSE(checkLayer("linear(784)"));
  EXPECT_ONE_ERROR("linear needs 'out_features'", 3, 7);
}

TEST_F(SemaTest, FloatWhereAnIntegerIsNeeded) {
  EXPECT_FALSE(checkLayer("linear(784.5, 10)"));
  EXPECT_ONE_ERROR("'in_features' must be an integer, got '784.5'", 3, 14);
}

TEST_F(SemaTest, MomentumOutOfRange) {
  EXPECT_FALSE(checkLayer("batchnorm2d(1, momentum=1.5)"));
  EXPECT_ONE_ERROR("batchnorm2d momentum must be in [0, 1], got 1.5", 3, 31);
}

TEST_F(SemaTest, OneIntegerTupleIsNotAKernelSize) {
  EXPECT_FALSE(checkLayer("conv2d(1, 6, kernel_size=(5,))"));
  std::vector<RecordedDiag> errs = errors();
  ASSERT_EQ(errs.size(), 1u) << ::testing::PrintToString(errs);
  EXPECT_EQ(errs[0].line, 3u);
  EXPECT_EQ(errs[0].column, 32u);
}

// Regression test: printTerm prints the 1-tuple (5,) as
// "(5)", which reads as the valid integer 5, so the message contradicts
// itself: "must be an integer or a pair of integers, got '(5)'".
TEST_F(SemaTest, OneIntegerTupleIsQuotedWithItsComma) {
  EXPECT_FALSE(checkLayer("conv2d(1, 6, kernel_size=(5,))"));
  EXPECT_ONE_ERROR(
      "'kernel_size' must be an integer or a pair of integers, got '(5,)'", 3,
      32);
}

TEST_F(SemaTest, UndefinedValueInForward) {
  EXPECT_FALSE(check("model M {\n  input x: f32[N, 3]\n  forward { return y "
                     "}\n}\n"));
  EXPECT_ONE_ERROR("use of undefined value 'y'", 3, 20);
}

TEST_F(SemaTest, UnusedLayerIsAWarningNotAnError) {
  auto model = check("model M {\n  input x: f32[N, 3]\n  fc = linear(3, 3)\n"
                     "  forward { return x }\n}\n");
  ASSERT_TRUE(model);
  ASSERT_EQ(recorded().size(), 1u);
  EXPECT_EQ(recorded()[0].severity, mlir::DiagnosticSeverity::Warning);
  EXPECT_EQ(recorded()[0].line, 3u);
}

// Regression test: `return x + x + ... + x` with 100 000
// terms (a 400 KB file) parses, but Checker::checkExpr recurses once per '+'
// and overflows an 8 MB stack. EXPECT_EXIT runs the body in a child process
// so the crash fails this test alone.
// Sums up to the nesting limit are checked (recursively, but never deeper
// than the limit); longer ones are refused by the parser.
TEST_F(SemaTest, LongSumIsCheckedWithoutStackOverflow) {
  std::string text = "model M {\n  input x: f32[N, 3]\n  forward { return x";
  // Two levels are taken by the model and forward blocks.
  for (unsigned i = 0; i + 3 < Parser::kMaxNesting; ++i)
    text += " + x";
  text += " }\n}\n";
  EXPECT_EXIT(
      {
        std::unique_ptr<ast::Model> model = parse(text);
        bool ok = model && mlir::succeeded(checkModel(*model, diags));
        // Leak rather than free: freeing is ParserTest's case.
        (void)model.release();
        std::exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

} // namespace
} // namespace kiln::test
