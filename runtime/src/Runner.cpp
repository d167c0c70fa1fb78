//===- Runner.cpp - the main() of generated executables -------------------===//
#include "kiln/runtime/runner.h"

#include "kiln/runtime/array.h"
#include "kiln/runtime/idx.h"
#include "kiln/runtime/npy.h"
#include "kiln/runtime/output.h"

#include "CSupport.h"
#include "Support.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct ArrayDeleter {
  void operator()(kiln_array_t *array) const { kiln_array_free(array); }
};
using Array = std::unique_ptr<kiln_array_t, ArrayDeleter>;

struct Options {
  const char *input = nullptr, *output = nullptr;
  const char *images = nullptr, *labels = nullptr;
  const char *weights = nullptr;
  bool bench = false;
  bool variant = false;
  int64_t batch = 256;
  int64_t iterations = 0; // bench: 0 picks a count that runs about a second
  int threads = 0;
};

void usage(const kiln_model_desc_t *model, FILE *out) {
  std::fprintf(out,
               "usage: %s --input X.npy --output Y.npy\n"
               "       %s --images IMAGES.idx[.gz] --labels LABELS.idx[.gz] [--batch B]\n"
               "       %s --bench [--batch B] [--iterations K]\n"
               "       %s --variant   (the target of the code that runs on this CPU)\n"
               "options: --threads N (default: all cores), --help\n"
               "Y.npy is replaced whole (through a symbolic link: the file it points to),\n"
               "or written in place if it is /dev/stdout, a FIFO or a character device\n"
               "such as /dev/null; it may not be a directory or one of the inputs.\n",
               model->name, model->name, model->name, model->name);
  if (model->load_weights)
    std::fprintf(out, "         --weights W.safetensors (required: this program loads its\n"
                      "         weights at run time; PyTorch state_dict keys)\n");
  std::fprintf(out, "Model '%s': input [N", model->name);
  for (size_t i = 1; i < model->input_rank; ++i)
    std::fprintf(out, ", %lld", static_cast<long long>(model->input_shape[i]));
  std::fprintf(out, "] float32 (NCHW), output [N");
  for (size_t i = 1; i < model->output_rank; ++i)
    std::fprintf(out, ", %lld", static_cast<long long>(model->output_shape[i]));
  std::fprintf(out, "] float32.\n");
}

/// What the runner prints of a path, an argument or a message, escaped.
std::string safe(const std::string &text) { return kiln::runtime::escaped(text); }

/// Prints a runtime status as an error and frees it; true if it failed.
bool failed(kiln_status_t status) {
  if (!status)
    return false;
  std::fprintf(stderr, "error: %s\n", safe(kiln_status_message(status)).c_str());
  kiln_status_free(status);
  return true;
}

/// Refuses --output before anything is read or computed, if it is one of
/// the inputs or a kind of file that is never written (output.h).
bool outputRefused(const Options &options) {
  const char *inputs[] = {options.input, options.weights, options.images, options.labels};
  kiln_output_t output;
  bool refused = failed(kiln_output_resolve(options.output, 0, inputs, 4, &output));
  kiln_output_release(&output);
  return refused;
}

/// A [rows, columns] float32 array, or null after printing why not.
Array floatMatrix(int64_t rows, int64_t columns) {
  int64_t shape[2] = {rows, columns};
  kiln_array_t *raw = nullptr;
  if (failed(kiln_array_create(KILN_DTYPE_F32, 2, shape, &raw)))
    return nullptr;
  return Array(raw);
}

int64_t sampleSize(size_t rank, const int64_t *shape) {
  int64_t size = 1;
  for (size_t i = 1; i < rank; ++i)
    size *= shape[i];
  return size;
}

int runNpy(const Options &options, const kiln_model_desc_t *model) {
  kiln_array_t *raw = nullptr;
  if (failed(kiln_npy_read_f32(options.input, &raw)))
    return 1;
  Array input(raw);
  size_t rank = kiln_array_rank(input.get());
  const int64_t *shape = kiln_array_shape(input.get());
  bool matches = rank == model->input_rank && rank > 0;
  for (size_t i = 1; matches && i < rank; ++i)
    matches = shape[i] == model->input_shape[i];
  if (!matches) {
    std::fprintf(stderr, "error: %s: shape [", safe(options.input).c_str());
    for (size_t i = 0; i < rank; ++i)
      std::fprintf(stderr, "%s%lld", i ? ", " : "", static_cast<long long>(shape[i]));
    std::fprintf(stderr, "] does not match the model's input [N");
    for (size_t i = 1; i < model->input_rank; ++i)
      std::fprintf(stderr, ", %lld", static_cast<long long>(model->input_shape[i]));
    std::fprintf(stderr, "]\n");
    return 1;
  }
  int64_t batch = shape[0];
  std::vector<int64_t> outShape(model->output_shape, model->output_shape + model->output_rank);
  outShape[0] = batch;
  if (failed(kiln_array_create(KILN_DTYPE_F32, outShape.size(), outShape.data(), &raw)))
    return 1;
  Array output(raw);
  if (batch > 0 &&
      model->infer(static_cast<const float *>(kiln_array_const_data(input.get())), batch,
                   static_cast<float *>(kiln_array_data(output.get()))) != 0) {
    std::fprintf(stderr, "error: inference failed: %s\n", safe(model->last_error()).c_str());
    return 1;
  }
  if (failed(kiln_npy_write_f32(options.output,
                                static_cast<const float *>(kiln_array_const_data(output.get())),
                                outShape.size(), outShape.data())))
    return 1;
  return 0;
}

int runIdx(const Options &options, const kiln_model_desc_t *model) {
  kiln_array_t *raw = nullptr;
  if (failed(kiln_idx_read(options.images, &raw)))
    return 1;
  Array images(raw);
  if (failed(kiln_idx_read(options.labels, &raw)))
    return 1;
  Array labels(raw);
  const int64_t *imageShape = kiln_array_shape(images.get());
  size_t imageRank = kiln_array_rank(images.get());
  int64_t count = imageRank > 0 ? imageShape[0] : 0;
  int64_t pixels = sampleSize(imageRank, imageShape);
  int64_t inSize = sampleSize(model->input_rank, model->input_shape);
  int64_t classes = sampleSize(model->output_rank, model->output_shape);
  if (imageRank != 3 || pixels != inSize) {
    std::fprintf(stderr, "error: %s: images of %lld pixels do not fit the model's input of %lld values per sample\n",
                 safe(options.images).c_str(), static_cast<long long>(pixels), static_cast<long long>(inSize));
    return 1;
  }
  // An accuracy over no images would be a number that means nothing.
  if (count == 0) {
    std::fprintf(stderr, "error: %s: the file holds no images\n", safe(options.images).c_str());
    return 1;
  }
  if (kiln_array_rank(labels.get()) != 1 || kiln_array_shape(labels.get())[0] != count) {
    std::fprintf(stderr, "error: %s: %lld labels expected (one per image in %s)\n",
                 safe(options.labels).c_str(), static_cast<long long>(count),
                 safe(options.images).c_str());
    return 1;
  }
  const uint8_t *pixelData = static_cast<const uint8_t *>(kiln_array_const_data(images.get()));
  const uint8_t *labelData = static_cast<const uint8_t *>(kiln_array_const_data(labels.get()));
  // A label the model has no class for would silently count as a miss
  // (labels of another data set, or a damaged file).
  for (int64_t i = 0; i < count; ++i)
    if (labelData[i] >= classes) {
      std::fprintf(stderr,
                   "error: %s: label %lld is %d, but the model has %lld classes (0 to %lld)\n",
                   safe(options.labels).c_str(), static_cast<long long>(i), labelData[i],
                   static_cast<long long>(classes), static_cast<long long>(classes - 1));
      return 1;
    }
  int64_t batch = options.batch;
  Array input = floatMatrix(batch, inSize), output = floatMatrix(batch, classes);
  if (!input || !output)
    return 1;
  float *in = static_cast<float *>(kiln_array_data(input.get()));
  float *out = static_cast<float *>(kiln_array_data(output.get()));
  kiln::runtime::PixelTransform transform(model->pixel_scale, model->normalize_mean,
                                          model->normalize_std);
  int64_t correct = 0;
  double seconds = 0;
  for (int64_t start = 0; start < count; start += batch) {
    int64_t n = std::min(batch, count - start);
    for (int64_t i = 0; i < n * inSize; ++i)
      in[i] = transform(pixelData[start * inSize + i]);
    auto begin = std::chrono::steady_clock::now();
    if (model->infer(in, n, out) != 0) {
      std::fprintf(stderr, "error: inference failed: %s\n", safe(model->last_error()).c_str());
      return 1;
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    for (int64_t i = 0; i < n; ++i) {
      const float *row = out + i * classes;
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (row[c] > row[best])
          best = c;
      correct += best == labelData[start + i];
    }
  }
  std::printf("accuracy: %.2f%% (%lld/%lld)\n", count ? 100.0 * correct / count : 0.0,
              static_cast<long long>(correct), static_cast<long long>(count));
  std::printf("throughput: %.0f images/s (batch %lld, inference only)\n",
              seconds > 0 ? count / seconds : 0.0, static_cast<long long>(batch));
  return 0;
}

/// Times `infer` on a fixed random batch: the median and minimum of K calls
/// after warm-up, and the process's peak RSS.
int runBench(const Options &options, const kiln_model_desc_t *model) {
  int64_t batch = options.batch;
  int64_t inSize = sampleSize(model->input_rank, model->input_shape);
  int64_t outSize = sampleSize(model->output_rank, model->output_shape);
  Array input = floatMatrix(batch, inSize), output = floatMatrix(batch, outSize);
  if (!input || !output)
    return 1;
  float *in = static_cast<float *>(kiln_array_data(input.get()));
  uint32_t state = 12345;
  for (int64_t i = 0; i < batch * inSize; ++i) {
    state = state * 1664525u + 1013904223u;
    in[i] = static_cast<float>(state >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
  float *out = static_cast<float *>(kiln_array_data(output.get()));
  auto call = [&] {
    auto begin = std::chrono::steady_clock::now();
    if (model->infer(in, batch, out) != 0)
      return -1.0;
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count();
  };
  double first = call();
  if (first < 0) {
    std::fprintf(stderr, "error: inference failed: %s\n", safe(model->last_error()).c_str());
    return 1;
  }
  for (int i = 0; i < 20; ++i)
    call();
  int64_t iterations = options.iterations;
  if (iterations == 0)
    iterations = std::max<int64_t>(20, std::min<int64_t>(20000, static_cast<int64_t>(1e6 / std::max(first, 1.0))));
  std::vector<double> times;
  for (int64_t i = 0; i < iterations; ++i)
    times.push_back(call());
  std::sort(times.begin(), times.end());
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  std::printf("bench: model %s batch %lld iterations %lld median_us %.2f min_us %.2f peak_rss_kb %ld\n",
              model->name, static_cast<long long>(batch), static_cast<long long>(iterations),
              times[times.size() / 2], times.front(), usage.ru_maxrss);
  return 0;
}

/// Whether `flag` is one of the options that take a value.
bool takesValue(const std::string &flag) {
  for (const char *known : {"--input", "--output", "--images", "--labels", "--weights",
                            "--batch", "--threads", "--iterations"})
    if (flag == known)
      return true;
  return false;
}

/// Parses "--flag value" (or "--flag=value"); false (with a message) on a
/// bad command line.
bool parse(int argc, char **argv, Options &options, bool &help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return true;
    }
    if (arg == "--bench") {
      options.bench = true;
      continue;
    }
    if (arg == "--variant") {
      options.variant = true;
      continue;
    }
    const char *value = kiln::runtime::splitInlineValue(arg, argv[i]);
    if (!takesValue(arg)) {
      bool option = arg.size() > 1 && arg[0] == '-';
      std::fprintf(stderr, "error: %s '%s' (see --help)\n",
                   option ? "unknown option" : "unexpected argument", safe(argv[i]).c_str());
      return false;
    }
    if (!value && i + 1 >= argc) {
      std::fprintf(stderr, "error: '%s' needs a value (see --help)\n", arg.c_str());
      return false;
    }
    if (!value)
      value = argv[++i];
    if (arg == "--input") {
      options.input = value;
    } else if (arg == "--output") {
      options.output = value;
    } else if (arg == "--images") {
      options.images = value;
    } else if (arg == "--labels") {
      options.labels = value;
    } else if (arg == "--weights") {
      options.weights = value;
    } else if (arg == "--batch" || arg == "--threads" || arg == "--iterations") {
      char *end = nullptr;
      long long number = std::strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0' || number < (arg == "--batch" ? 1 : 0) ||
          number > (1 << 20)) {
        std::fprintf(stderr, "error: bad value '%s' for %s\n", safe(value).c_str(), arg.c_str());
        return false;
      }
      if (arg == "--batch")
        options.batch = number;
      else if (arg == "--iterations")
        options.iterations = number;
      else
        options.threads = static_cast<int>(number);
    }
  }
  return true;
}

} // namespace

extern "C" int kiln_runner_main(int argc, char **argv, const kiln_model_desc_t *model) {
  Options options;
  bool help = false;
  if (!parse(argc, argv, options, help))
    return 2;
  if (help) {
    usage(model, stdout);
    return 0;
  }
  if (options.variant) {
    const char *target = model->variant ? model->variant() : nullptr;
    if (!target) {
      std::fprintf(stderr, "error: this CPU supports none of the targets %s was built for\n",
                   model->name);
      return 1;
    }
    std::printf("%s\n", target);
    return 0;
  }
  if (options.threads > 0)
    model->set_num_threads(options.threads);
  if (!model->load_weights && options.weights) {
    std::fprintf(stderr, "error: --weights: this program's weights are compiled in "
                         "(kilnc build --weights=external makes a program that loads them)\n");
    return 2;
  }
  if (options.output && outputRefused(options))
    return 1;
  if (model->load_weights) {
    if (!options.weights) {
      std::fprintf(stderr, "error: this program loads its weights at run time: give --weights FILE\n");
      return 2;
    }
    if (model->load_weights(options.weights) != 0) {
      std::fprintf(stderr, "error: %s\n", safe(model->last_error()).c_str());
      return 1;
    }
  }
  if (options.bench)
    return runBench(options, model);
  bool npy = options.input || options.output;
  bool idx = options.images || options.labels;
  if (npy == idx || (npy && !(options.input && options.output)) ||
      (idx && !(options.images && options.labels))) {
    std::fprintf(stderr, "error: give --input and --output, or --images and --labels\n");
    usage(model, stderr);
    return 2;
  }
  return npy ? runNpy(options, model) : runIdx(options, model);
}
