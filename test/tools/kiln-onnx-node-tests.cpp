//===- kiln-onnx-node-tests.cpp - ONNX's backend node tests through Kiln --===//
//
//   kiln-onnx-node-tests LIST DATA_DIR
//
// Runs the ONNX backend tests named in LIST (test/ONNX/node-tests.txt) from
// DATA_DIR (Debian's libonnx-testdata: /usr/share/libonnx-testdata/data):
// each test's model.onnx is imported, its weight inputs (Conv's W, Gemm's
// B...) bound from input_*.pb as initializers, compiled for the host with
// the schedules AOT builds use, run through Halide's JIT on each
// test_data_set_*/input_*.pb and compared with output_*.pb (1e-4 absolute
// and relative; NaN matches only NaN). A line `name skip` expects the
// importer to refuse the test (an unsupported attribute combination) and
// prints the refusal as the reason; a test listed to run that fails, or one
// listed as skipped that imports, is a failure. Prints one line per test
// and a summary; exits 1 on any failure.
//
//===----------------------------------------------------------------------===//
#include "kiln/CodeGen/Halide/TargetInfo.h"
#include "kiln/Driver/Compile.h"
#include "kiln/Driver/Driver.h"
#include "kiln/Import/ONNXImport.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace {

struct Outcome {
  enum Kind { Pass, Skip, Fail } kind;
  std::string detail;
};

bool fileExists(const std::string &path) { return llvm::sys::fs::exists(path); }

/// The numbered files PREFIX0.pb, PREFIX1.pb, ... of a data set.
std::vector<std::string> numbered(const std::string &dir, const std::string &prefix) {
  std::vector<std::string> files;
  for (int i = 0; fileExists(dir + "/" + prefix + std::to_string(i) + ".pb"); ++i)
    files.push_back(dir + "/" + prefix + std::to_string(i) + ".pb");
  return files;
}

std::string firstDiagnostic(const std::string &text) {
  return text.substr(0, text.find('\n'));
}

Outcome runTest(const std::string &dir, bool expectSkip) {
  mlir::MLIRContext context;
  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &diag) {
    if (diag.getSeverity() == mlir::DiagnosticSeverity::Error)
      diagnostics += diag.str() + "\n";
    return mlir::success();
  });
  std::string modelPath = dir + "/model.onnx";
  auto bytes = llvm::MemoryBuffer::getFile(modelPath, false, false);
  if (!bytes)
    return {Outcome::Fail, "cannot read " + modelPath};
  std::string setDir = dir + "/test_data_set_0";
  std::vector<kiln::ONNXTensorValue> inputs;
  for (const std::string &file : numbered(setDir, "input_")) {
    mlir::FailureOr<kiln::ONNXTensorValue> value = kiln::readONNXTensorFile(file, &context);
    if (failed(value))
      return {expectSkip ? Outcome::Skip : Outcome::Fail,
              "test data: " + firstDiagnostic(diagnostics)};
    inputs.push_back(std::move(*value));
  }
  kiln::ONNXImportOptions options;
  std::vector<std::string> arguments;
  options.argumentNames = &arguments;
  for (const kiln::ONNXTensorValue &input : inputs)
    options.weightInputs[input.name] = input;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      kiln::importONNXModel((*bytes)->getBuffer(), modelPath, &context, options);
  mlir::FailureOr<std::vector<kiln::TargetVariant>> variants = mlir::failure();
  if (module) {
    kiln::CompileOptions compile;
    variants = kiln::compileModel(*module, compile);
  }
  if (!module || failed(variants))
    return {expectSkip ? Outcome::Skip : Outcome::Fail, firstDiagnostic(diagnostics)};
  if (expectSkip)
    return {Outcome::Fail, "listed as skipped, but it imports and compiles"};

  kiln::codegen::LoweredModel &lowered = (*variants)[0].entries[0];
  lowered.compileJit(kiln::codegen::jitTarget());
  int set = 0;
  for (; fileExists(dir + "/test_data_set_" + std::to_string(set)); ++set) {
    std::string data = dir + "/test_data_set_" + std::to_string(set);
    std::vector<kiln::ONNXTensorValue> values;
    for (const std::string &file : numbered(data, "input_"))
      values.push_back(*kiln::readONNXTensorFile(file, &context));
    std::vector<Halide::Buffer<float>> inBuffers;
    for (size_t a = 0; a < arguments.size(); ++a) {
      // By name; the pytorch-converted tests leave their data unnamed,
      // in the order of the graph's inputs, as ONNX's runner reads them.
      auto it = std::find_if(values.begin(), values.end(),
                             [&](const kiln::ONNXTensorValue &v) { return v.name == arguments[a]; });
      if (it == values.end() && a < values.size() && values[a].name.empty())
        it = values.begin() + a;
      if (it == values.end() || !it->isFloat)
        return {Outcome::Fail, "no float test data for input '" + arguments[a] + "'"};
      std::vector<int> dims(it->dims.rbegin(), it->dims.rend());
      inBuffers.emplace_back(it->data.data(), dims);
      lowered.inputs[a].param.set(inBuffers.back());
    }
    std::vector<kiln::ONNXTensorValue> expected;
    for (const std::string &file : numbered(data, "output_")) {
      mlir::FailureOr<kiln::ONNXTensorValue> value = kiln::readONNXTensorFile(file, &context);
      if (failed(value))
        return {Outcome::Fail, "expected output: " + firstDiagnostic(diagnostics)};
      expected.push_back(std::move(*value));
    }
    if (expected.size() != lowered.outputs.size())
      return {Outcome::Fail, "the model has " + std::to_string(lowered.outputs.size()) +
                                 " outputs, the test data " + std::to_string(expected.size())};
    std::vector<Halide::Buffer<float>> outBuffers;
    for (const kiln::ONNXTensorValue &want : expected)
      outBuffers.emplace_back(std::vector<int>(want.dims.rbegin(), want.dims.rend()));
    std::vector<Halide::Buffer<>> realization(outBuffers.begin(), outBuffers.end());
    lowered.realize(Halide::Realization(realization));
    for (size_t o = 0; o < expected.size(); ++o)
      for (size_t i = 0; i < expected[o].data.size(); ++i) {
        double got = outBuffers[o].data()[i], want = expected[o].data[i];
        double err = std::fabs(got - want);
        bool ok = (std::isnan(got) && std::isnan(want)) || got == want ||
                  (err <= 1e-4 && err / std::max(1.0, std::fabs(want)) <= 1e-4);
        if (!ok) {
          std::ostringstream os;
          os << "data set " << set << ", output " << o << "[" << i << "]: " << got
             << ", expected " << want;
          return {Outcome::Fail, os.str()};
        }
      }
  }
  return {Outcome::Pass, std::to_string(set) + " data set" + (set == 1 ? "" : "s")};
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    llvm::errs() << "usage: kiln-onnx-node-tests LIST DATA_DIR\n";
    return 2;
  }
  std::ifstream list(argv[1]);
  if (!list) {
    llvm::errs() << "kiln-onnx-node-tests: cannot read '" << argv[1] << "'\n";
    return 2;
  }
  int counts[3] = {0, 0, 0};
  std::string line;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    std::istringstream words(line);
    std::string name, mode;
    words >> name >> mode;
    bool expectSkip = mode == "skip";
    Outcome outcome;
    try {
      outcome = runTest(std::string(argv[2]) + "/" + name, expectSkip);
    } catch (const std::exception &e) {
      outcome = {Outcome::Fail, std::string("exception: ") + e.what()};
    }
    static const char *labels[] = {"PASS", "SKIP", "FAIL"};
    llvm::outs() << labels[outcome.kind] << " " << name << ": " << outcome.detail << "\n";
    llvm::outs().flush();
    ++counts[outcome.kind];
  }
  llvm::outs() << counts[0] << " passed, " << counts[1] << " skipped, " << counts[2]
               << " failed\n";
  return counts[2] ? 1 : 0;
}
