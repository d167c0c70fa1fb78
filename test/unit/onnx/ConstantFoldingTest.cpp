//===- ConstantFoldingTest.cpp - shape operators evaluated at import ------===//
//
// Each operator against values worked by hand from ONNX's Operators.md, and
// the chain torch.onnx.export (1.13) makes of nn.ZeroPad2d((1, 2, 0, 1)),
// which must give Pad's pads [0, 0, 0, 1, 0, 0, 1, 2].
//
//===----------------------------------------------------------------------===//
#include "ONNXConstantFolding.h"

#include <gtest/gtest.h>

#include <cmath>

#include <string>
#include <vector>

namespace {

using kiln::onnximport::foldConstantOp;
using kiln::onnximport::HostTensor;

HostTensor ints(std::vector<int64_t> dims, std::vector<int64_t> values) {
  HostTensor t;
  t.isFloat = false;
  t.dims = std::move(dims);
  t.ints = std::move(values);
  return t;
}

HostTensor floats(std::vector<int64_t> dims, std::vector<float> values) {
  HostTensor t;
  t.dims = std::move(dims);
  t.floats = std::move(values);
  return t;
}

onnx::NodeProto node(const std::string &op) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(op + "_0");
  n.add_output("out");
  return n;
}

void setInt(onnx::NodeProto &n, const std::string &name, int64_t value) {
  onnx::AttributeProto *a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void setInts(onnx::NodeProto &n, const std::string &name, const std::vector<int64_t> &values) {
  onnx::AttributeProto *a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values)
    a->add_ints(v);
}

HostTensor fold(const onnx::NodeProto &n, std::vector<const HostTensor *> in, int64_t opset = 13) {
  HostTensor out;
  std::string error;
  EXPECT_TRUE(foldConstantOp(n, opset, "", in, out, error)) << n.op_type() << ": " << error;
  return out;
}

std::string failure(const onnx::NodeProto &n, std::vector<const HostTensor *> in) {
  HostTensor out;
  std::string error;
  EXPECT_FALSE(foldConstantOp(n, 13, "", in, out, error)) << n.op_type();
  return error;
}

TEST(ConstantFolding, ConstantOfShapeDefaultsToFloatZero) {
  HostTensor shape = ints({2}, {2, 3});
  HostTensor out = fold(node("ConstantOfShape"), {&shape});
  EXPECT_TRUE(out.isFloat);
  EXPECT_EQ(out.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(out.floats, std::vector<float>(6, 0.0f));
  EXPECT_EQ(out.name, "out");
}

TEST(ConstantFolding, ConstantOfShapeTakesItsValue) {
  onnx::NodeProto n = node("ConstantOfShape");
  onnx::AttributeProto *a = n.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
  a->mutable_t()->add_dims(1);
  a->mutable_t()->add_int64_data(7);
  HostTensor shape = ints({1}, {3});
  HostTensor out = fold(n, {&shape});
  EXPECT_FALSE(out.isFloat);
  EXPECT_EQ(out.ints, (std::vector<int64_t>{7, 7, 7}));
}

TEST(ConstantFolding, ConstantOfShapeRefusesHugeShapes) {
  HostTensor shape = ints({3}, {1 << 20, 1 << 20, 1 << 20});
  EXPECT_NE(failure(node("ConstantOfShape"), {&shape}).find("more than"), std::string::npos);
  HostTensor negative = ints({1}, {-2});
  failure(node("ConstantOfShape"), {&negative});
}

TEST(ConstantFolding, ConcatAlongAnAxis) {
  onnx::NodeProto n = node("Concat");
  setInt(n, "axis", 1);
  HostTensor a = ints({2, 1}, {1, 2}), b = ints({2, 2}, {3, 4, 5, 6});
  HostTensor out = fold(n, {&a, &b});
  EXPECT_EQ(out.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(out.ints, (std::vector<int64_t>{1, 3, 4, 2, 5, 6}));
  onnx::NodeProto negative = node("Concat");
  setInt(negative, "axis", -2);
  HostTensor c = ints({1, 2}, {9, 9});
  EXPECT_EQ(fold(negative, {&b, &c}).ints, (std::vector<int64_t>{3, 4, 5, 6, 9, 9}));
  HostTensor f = floats({2, 2}, {1, 2, 3, 4});
  failure(n, {&a, &f});
}

TEST(ConstantFolding, ReshapeCopiesZerosAndInfersMinusOne) {
  HostTensor x = ints({2, 3}, {0, 1, 2, 3, 4, 5});
  HostTensor shape = ints({2}, {0, -1});
  HostTensor out = fold(node("Reshape"), {&x, &shape});
  EXPECT_EQ(out.dims, (std::vector<int64_t>{2, 3}));
  HostTensor flat = ints({1}, {-1});
  EXPECT_EQ(fold(node("Reshape"), {&x, &flat}).dims, (std::vector<int64_t>{6}));
  HostTensor bad = ints({1}, {4});
  failure(node("Reshape"), {&x, &bad});
  HostTensor twoInferred = ints({2}, {-1, -1});
  failure(node("Reshape"), {&x, &twoInferred});
}

TEST(ConstantFolding, TransposeByPermAndByDefault) {
  HostTensor x = ints({2, 3}, {0, 1, 2, 3, 4, 5});
  onnx::NodeProto n = node("Transpose");
  setInts(n, "perm", {1, 0});
  HostTensor out = fold(n, {&x});
  EXPECT_EQ(out.dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(out.ints, (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(fold(node("Transpose"), {&x}).ints, out.ints);
  HostTensor cube = ints({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  onnx::NodeProto rotate = node("Transpose");
  setInts(rotate, "perm", {2, 0, 1});
  // out[i][j][k] = x[j][k][i].
  EXPECT_EQ(fold(rotate, {&cube}).ints, (std::vector<int64_t>{0, 2, 4, 6, 1, 3, 5, 7}));
  onnx::NodeProto bad = node("Transpose");
  setInts(bad, "perm", {0, 0});
  failure(bad, {&x});
}

TEST(ConstantFolding, SliceWithNegativeStepsAndClampedEnds) {
  HostTensor x = ints({4, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  // Rows from the last to the first (end INT64_MIN + 1 clamps to -1).
  HostTensor starts = ints({1}, {-1}), ends = ints({1}, {-9223372036854775807LL}),
             axes = ints({1}, {0}), steps = ints({1}, {-1});
  HostTensor out = fold(node("Slice"), {&x, &starts, &ends, &axes, &steps});
  EXPECT_EQ(out.dims, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(out.ints, (std::vector<int64_t>{6, 7, 4, 5, 2, 3, 0, 1}));
  // Every other row from 1, an end past the extent.
  HostTensor s1 = ints({1}, {1}), e1 = ints({1}, {100}), st2 = ints({1}, {2});
  EXPECT_EQ(fold(node("Slice"), {&x, &s1, &e1, &axes, &st2}).ints,
            (std::vector<int64_t>{2, 3, 6, 7}));
  // Axes default to 0..; the second column.
  HostTensor s2 = ints({2}, {0, 1}), e2 = ints({2}, {4, 2});
  EXPECT_EQ(fold(node("Slice"), {&x, &s2, &e2}).ints, (std::vector<int64_t>{1, 3, 5, 7}));
  // Before opset 10 the ranges are attributes.
  onnx::NodeProto old = node("Slice");
  setInts(old, "starts", {2});
  setInts(old, "ends", {3});
  setInts(old, "axes", {0});
  EXPECT_EQ(fold(old, {&x}, 9).ints, (std::vector<int64_t>{4, 5}));
  HostTensor zero = ints({1}, {0});
  failure(node("Slice"), {&x, &s1, &e1, &axes, &zero});
}

TEST(ConstantFolding, CastBetweenIntegersAndFloats) {
  onnx::NodeProto toInt = node("Cast");
  setInt(toInt, "to", onnx::TensorProto::INT64);
  HostTensor f = floats({3}, {1.9f, -1.9f, 0.0f});
  EXPECT_EQ(fold(toInt, {&f}).ints, (std::vector<int64_t>{1, -1, 0}));
  onnx::NodeProto toFloat = node("Cast");
  setInt(toFloat, "to", onnx::TensorProto::FLOAT);
  HostTensor i = ints({2}, {3, -4});
  EXPECT_EQ(fold(toFloat, {&i}).floats, (std::vector<float>{3.0f, -4.0f}));
  HostTensor nan = floats({1}, {NAN});
  failure(toInt, {&nan});
  onnx::NodeProto toHalf = node("Cast");
  setInt(toHalf, "to", onnx::TensorProto::FLOAT16);
  EXPECT_NE(failure(toHalf, {&i}).find("FLOAT16"), std::string::npos);
}

// torch.onnx.export of nn.ZeroPad2d((left 1, right 2, top 0, bottom 1)).
TEST(ConstantFolding, ZeroPad2dExportGivesThePadsOfPad) {
  // The exporter's ConstantOfShape([4]) of INT64 zeros (ConstantOfShape
  // has its own tests above).
  HostTensor given = ints({4}, {1, 2, 0, 1}), zeros = ints({4}, {0, 0, 0, 0});
  onnx::NodeProto concat = node("Concat");
  setInt(concat, "axis", 0);
  HostTensor all = fold(concat, {&given, &zeros});
  HostTensor pairs = ints({2}, {-1, 2});
  HostTensor matrix = fold(node("Reshape"), {&all, &pairs});
  HostTensor starts = ints({1}, {-1}), ends = ints({1}, {-9223372036854775807LL}),
             axes = ints({1}, {0}), steps = ints({1}, {-1});
  HostTensor reversed = fold(node("Slice"), {&matrix, &starts, &ends, &axes, &steps});
  onnx::NodeProto transpose = node("Transpose");
  setInts(transpose, "perm", {1, 0});
  HostTensor columns = fold(transpose, {&reversed});
  HostTensor flat = ints({1}, {-1});
  HostTensor pads = fold(node("Reshape"), {&columns, &flat});
  onnx::NodeProto cast = node("Cast");
  setInt(cast, "to", onnx::TensorProto::INT64);
  EXPECT_EQ(fold(cast, {&pads}).ints, (std::vector<int64_t>{0, 0, 0, 1, 0, 0, 1, 2}));
}

} // namespace
