//===- ONNXConstantFolding.cpp - shape operators evaluated at import ------===//
//
// ONNX's semantics (Operators.md, opsets 9 to 17) on HostTensors, for the
// small integer tensors exporters compute shapes and pads with. Every size
// is checked before anything is allocated: a fuzzed ConstantOfShape may ask
// for 2^60 elements.
//
//===----------------------------------------------------------------------===//
#include "ONNXConstantFolding.h"

#include "llvm/ADT/StringSwitch.h"

#include <algorithm>
#include <numeric>

namespace kiln::onnximport {

namespace {

const onnx::AttributeProto *attribute(const onnx::NodeProto &node, llvm::StringRef name) {
  for (const onnx::AttributeProto &attr : node.attribute())
    if (attr.name() == name)
      return &attr;
  return nullptr;
}

int64_t intAttribute(const onnx::NodeProto &node, llvm::StringRef name, int64_t otherwise) {
  const onnx::AttributeProto *attr = attribute(node, name);
  return attr ? attr->i() : otherwise;
}

std::vector<int64_t> intsAttribute(const onnx::NodeProto &node, llvm::StringRef name) {
  const onnx::AttributeProto *attr = attribute(node, name);
  if (!attr)
    return {};
  return {attr->ints().begin(), attr->ints().end()};
}

/// The most elements ConstantOfShape and Concat may make, whose results
/// can be far larger than their inputs: exporters compute shapes and pads
/// of a few elements, and a fuzzed ConstantOfShape asked for billions (8
/// bytes each), which exhausted memory. Transpose, Slice, Reshape and Cast
/// make no more than they read (a weight, at most kMaxElements).
constexpr int64_t kMaxFoldedElements = int64_t(1) << 20;

/// The product of `dims`, or -1 past `limit` (or for a negative dim).
int64_t countElements(llvm::ArrayRef<int64_t> dims, int64_t limit = kMaxElements) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d > 0 && n > limit / d))
      return -1;
    n *= d;
  }
  return n;
}

std::vector<int64_t> stridesOf(llvm::ArrayRef<int64_t> dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;)
    strides[d - 1] = strides[d] * dims[d];
  return strides;
}

/// `out` (of `outDims`, same type as `in`) element i = in element source(i).
template <typename Source>
void gather(const HostTensor &in, const std::vector<int64_t> &outDims, HostTensor &out,
            Source source) {
  out.dims = outDims;
  out.isFloat = in.isFloat;
  int64_t n = countElements(outDims);
  if (in.isFloat)
    out.floats.resize(n);
  else
    out.ints.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t j = source(i);
    if (in.isFloat)
      out.floats[i] = in.floats[j];
    else
      out.ints[i] = in.ints[j];
  }
}

/// The index of flat (row-major) element `i` of a tensor of `dims`, into
/// `index` (reused: weights of millions of elements are transposed).
void unflatten(int64_t i, llvm::ArrayRef<int64_t> dims, std::vector<int64_t> &index) {
  index.resize(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    index[d] = dims[d] ? i % dims[d] : 0;
    i = dims[d] ? i / dims[d] : 0;
  }
}

bool needInts(const HostTensor *t, llvm::StringRef role, std::string &error) {
  if (t && !t->isFloat && t->dims.size() <= 1)
    return true;
  error = "its " + role.str() + " must be a constant 1-D integer tensor";
  return false;
}

bool constantOfShape(const onnx::NodeProto &node, llvm::StringRef modelDir,
                     llvm::ArrayRef<const HostTensor *> in, HostTensor &out, std::string &error) {
  if (!needInts(in[0], "shape", error))
    return false;
  int64_t n = countElements(in[0]->ints, kMaxFoldedElements);
  if (n < 0) {
    error = "would make a tensor of more than " + std::to_string(kMaxFoldedElements) +
            " elements (or a negative dimension); Kiln evaluates only small constants";
    return false;
  }
  HostTensor value;
  value.floats = {0.0f};
  if (const onnx::AttributeProto *attr = attribute(node, "value")) {
    if (!decodeTensor(attr->t(), modelDir, value, error) || value.elements() != 1) {
      error = "its value must be a tensor of one element";
      return false;
    }
  }
  out.dims = in[0]->ints;
  out.isFloat = value.isFloat;
  if (value.isFloat)
    out.floats.assign(n, value.floats[0]);
  else
    out.ints.assign(n, value.ints[0]);
  return true;
}

bool concat(const onnx::NodeProto &node, llvm::ArrayRef<const HostTensor *> in, HostTensor &out,
            std::string &error) {
  if (in.empty() || !in[0]) {
    error = "has no inputs";
    return false;
  }
  int64_t rank = static_cast<int64_t>(in[0]->dims.size());
  int64_t axis = intAttribute(node, "axis", 0);
  if (axis < -rank || axis >= rank) {
    error = "has axis " + std::to_string(axis) + " for inputs of rank " + std::to_string(rank);
    return false;
  }
  if (axis < 0)
    axis += rank;
  std::vector<int64_t> dims = in[0]->dims;
  dims[axis] = 0;
  for (const HostTensor *t : in) {
    if (!t || t->isFloat != in[0]->isFloat || static_cast<int64_t>(t->dims.size()) != rank) {
      error = "concatenates tensors of different types or ranks";
      return false;
    }
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && t->dims[d] != in[0]->dims[d]) {
        error = "concatenates tensors whose dimensions other than the axis differ";
        return false;
      }
    dims[axis] += t->dims[axis];
  }
  if (countElements(dims, kMaxFoldedElements) < 0) {
    error = "would make a tensor of more than " + std::to_string(kMaxFoldedElements) +
            " elements; Kiln evaluates only small constants";
    return false;
  }
  int64_t outer = countElements(llvm::ArrayRef<int64_t>(dims).take_front(axis));
  out.dims = dims;
  out.isFloat = in[0]->isFloat;
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor *t : in) {
      int64_t chunk = countElements(llvm::ArrayRef<int64_t>(t->dims).drop_front(axis));
      if (t->isFloat)
        out.floats.insert(out.floats.end(), t->floats.begin() + o * chunk,
                          t->floats.begin() + (o + 1) * chunk);
      else
        out.ints.insert(out.ints.end(), t->ints.begin() + o * chunk,
                        t->ints.begin() + (o + 1) * chunk);
    }
  return true;
}

bool reshape(const onnx::NodeProto &node, llvm::ArrayRef<const HostTensor *> in,
             HostTensor &out, std::string &error) {
  if (!in[0] || !needInts(in.size() > 1 ? in[1] : nullptr, "shape", error))
    return false;
  bool allowZero = intAttribute(node, "allowzero", 0) != 0;
  std::vector<int64_t> dims = in[1]->ints;
  int64_t known = 1, inferred = -1, total = in[0]->elements();
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0 && !allowZero) {
      if (d >= in[0]->dims.size()) {
        error = "copies dimension " + std::to_string(d) + ", which its input does not have";
        return false;
      }
      dims[d] = in[0]->dims[d];
    }
    if (dims[d] == -1) {
      if (inferred >= 0) {
        error = "has two dimensions of -1";
        return false;
      }
      inferred = static_cast<int64_t>(d);
    } else if (dims[d] < 0 || (dims[d] > 0 && known > kMaxElements / dims[d])) {
      error = "has an invalid dimension " + std::to_string(dims[d]);
      return false;
    } else {
      known *= dims[d];
    }
  }
  if (inferred >= 0 && known > 0 && total % known == 0)
    dims[inferred] = total / known;
  if (countElements(dims) != total) {
    error = "cannot reshape " + std::to_string(total) + " elements to that shape";
    return false;
  }
  out = *in[0];
  out.dims = dims;
  return true;
}

bool transpose(const onnx::NodeProto &node, llvm::ArrayRef<const HostTensor *> in,
               HostTensor &out, std::string &error) {
  const HostTensor &x = *in[0];
  size_t rank = x.dims.size();
  std::vector<int64_t> perm = intsAttribute(node, "perm");
  if (perm.empty())
    for (size_t d = rank; d-- > 0;)
      perm.push_back(static_cast<int64_t>(d));
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(rank);
  std::iota(identity.begin(), identity.end(), 0);
  if (sorted != identity) {
    error = "has a perm that is not a permutation of its input's dimensions";
    return false;
  }
  std::vector<int64_t> dims(rank), strides = stridesOf(x.dims);
  for (size_t d = 0; d < rank; ++d)
    dims[d] = x.dims[perm[d]];
  std::vector<int64_t> index;
  gather(x, dims, out, [&](int64_t i) {
    unflatten(i, dims, index);
    int64_t j = 0;
    for (size_t d = 0; d < rank; ++d)
      j += index[d] * strides[perm[d]];
    return j;
  });
  return true;
}

bool slice(const onnx::NodeProto &node, int64_t opset, llvm::ArrayRef<const HostTensor *> in,
           HostTensor &out, std::string &error) {
  const HostTensor &x = *in[0];
  int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    starts = intsAttribute(node, "starts");
    ends = intsAttribute(node, "ends");
    axes = intsAttribute(node, "axes");
  } else {
    if (!needInts(in.size() > 1 ? in[1] : nullptr, "starts", error) ||
        !needInts(in.size() > 2 ? in[2] : nullptr, "ends", error))
      return false;
    starts = in[1]->ints;
    ends = in[2]->ints;
    if (in.size() > 3 && in[3]) {
      if (!needInts(in[3], "axes", error))
        return false;
      axes = in[3]->ints;
    }
    if (in.size() > 4 && in[4]) {
      if (!needInts(in[4], "steps", error))
        return false;
      steps = in[4]->ints;
    }
  }
  if (axes.empty())
    for (size_t d = 0; d < starts.size(); ++d)
      axes.push_back(static_cast<int64_t>(d));
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    error = "has starts, ends, axes and steps of different lengths";
    return false;
  }
  std::vector<int64_t> first(rank, 0), step(rank, 1), dims = x.dims;
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (axis < 0 || axis >= rank || seen[axis] || steps[i] == 0) {
      error = "has an invalid or repeated axis, or a step of 0";
      return false;
    }
    seen[axis] = true;
    int64_t size = x.dims[axis], s = starts[i], e = ends[i];
    if (s < 0)
      s += size;
    if (e < 0 && e > INT64_MIN + size)
      e += size;
    // Counts written so that no step (up to ±2^63) overflows.
    if (size == 0) {
      s = 0;
      dims[axis] = 0;
    } else if (steps[i] > 0) {
      s = std::clamp<int64_t>(s, 0, size);
      e = std::clamp<int64_t>(e, 0, size);
      dims[axis] = e > s ? 1 + (e - s - 1) / steps[i] : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, size - 1);
      e = std::clamp<int64_t>(e, -1, size - 1);
      dims[axis] = s <= e ? 0 : steps[i] == INT64_MIN ? 1 : 1 + (s - e - 1) / -steps[i];
    }
    first[axis] = s;
    step[axis] = steps[i];
  }
  std::vector<int64_t> strides = stridesOf(x.dims);
  std::vector<int64_t> index;
  gather(x, dims, out, [&](int64_t i) {
    unflatten(i, dims, index);
    int64_t j = 0;
    for (int64_t d = 0; d < rank; ++d)
      j += (first[d] + index[d] * step[d]) * strides[d];
    return j;
  });
  return true;
}

bool cast(const onnx::NodeProto &node, llvm::ArrayRef<const HostTensor *> in, HostTensor &out,
          std::string &error) {
  int64_t to = intAttribute(node, "to", 0);
  const HostTensor &x = *in[0];
  out.dims = x.dims;
  if (to == onnx::TensorProto::FLOAT) {
    out.isFloat = true;
    out.floats = x.isFloat ? x.floats : std::vector<float>(x.ints.begin(), x.ints.end());
    return true;
  }
  if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32) {
    out.isFloat = false;
    if (!x.isFloat) {
      out.ints = x.ints;
      return true;
    }
    for (float f : x.floats) {
      if (!(f > -9.2e18f && f < 9.2e18f)) {
        error = "casts a value outside INT64's range (or NaN) to an integer";
        return false;
      }
      out.ints.push_back(static_cast<int64_t>(f));
    }
    return true;
  }
  error = "casts to " + dataTypeName(static_cast<int32_t>(to)) +
          "; Kiln folds casts to FLOAT, INT64 and INT32";
  return false;
}

} // namespace

bool isFoldableOp(llvm::StringRef opType) {
  return llvm::StringSwitch<bool>(opType)
      .Cases("ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", true)
      .Default(false);
}

bool foldConstantOp(const onnx::NodeProto &node, int64_t opset, llvm::StringRef modelDir,
                    llvm::ArrayRef<const HostTensor *> inputs, HostTensor &out,
                    std::string &error) {
  llvm::StringRef op = node.op_type();
  if (inputs.empty() || (!inputs[0] && op != "Concat")) {
    error = "has no input";
    return false;
  }
  out = HostTensor();
  out.name = node.output_size() ? node.output(0) : "";
  bool ok = op == "ConstantOfShape" ? constantOfShape(node, modelDir, inputs, out, error)
            : op == "Concat"        ? concat(node, inputs, out, error)
            : op == "Reshape"       ? reshape(node, inputs, out, error)
            : op == "Slice"         ? slice(node, opset, inputs, out, error)
            : op == "Transpose"     ? transpose(node, inputs, out, error)
                                    : cast(node, inputs, out, error);
  out.name = node.output_size() ? node.output(0) : "";
  return ok;
}

} // namespace kiln::onnximport
