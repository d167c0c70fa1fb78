//===- TrainLoop.cpp - the trainer: epochs, validation, checkpoints -------===//
//
// kiln_train_run (train_loop.h): what `kilnc train` and the programs of
// `kilnc build --mode=train` run, over the function table of a compiled
// training step (kiln_train_program_t). The pieces, in order: the data
// (TrainDataSet), the order of its rows (Philox-free splitmix64 keyed by
// seed and epoch, so that a resumed run sees the batches an uninterrupted
// one would), batches gathered on a second thread (Prefetcher), evaluation
// in eval mode, checkpoints whose metadata say where the run stands, and
// the epoch loop that ties them together.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/train_loop.h"

#include "kiln/runtime/idx.h"
#include "kiln/runtime/output.h"
#include "kiln/runtime/metrics.h"
#include "kiln/runtime/plot.h"
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/train_data.h"
#include "kiln/runtime/trainer.h"

#include "CSupport.h"
#include "Support.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string safe(const std::string &text) { return kiln::runtime::escaped(text); }

const char *errorPrefix = "error: ";

int fail(const std::string &message, int code = 1) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s%s\n", errorPrefix, safe(message).c_str());
  return code;
}

/// A runtime status as a message (freed); empty for success.
std::string take(kiln_status_t status) {
  if (!status)
    return {};
  std::string text = kiln_status_message(status);
  kiln_status_free(status);
  return text;
}

std::string number(double value, const char *format = "%.17g") {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// ---- Data ------------------------------------------------------------------

/// Rows of samples and their labels: IDX pixels (transformed as they are
/// gathered) or NPY floats (already transformed).
struct DataSet {
  std::string name; // the images' (or inputs') file, for messages
  int64_t rows = 0, sampleSize = 0;
  const uint8_t *pixels = nullptr;
  const float *floats = nullptr;
  std::vector<int64_t> labels;
  std::unique_ptr<kiln_array_t, void (*)(kiln_array_t *)> idx{nullptr, kiln_array_free};
  std::unique_ptr<kiln_train_data_t, void (*)(kiln_train_data_t *)> npy{nullptr,
                                                                       kiln_train_data_free};
};


/// The sample shape the program's input has, after the batch.
int64_t sampleSizeOf(const kiln_train_program_t &program) {
  int64_t size = 1;
  for (size_t d = 1; d < program.input_rank; ++d)
    size *= program.input_shape[d];
  return size;
}

std::string findIdx(const std::string &dir, const char *base, std::string &error) {
  for (const char *suffix : {"", ".gz"}) {
    std::string path = dir + "/" + base + suffix;
    struct stat info;
    if (::stat(path.c_str(), &info) == 0)
      return path;
  }
  error = dir + ": no " + base + " or " + base +
          ".gz (a data directory holds MNIST's four IDX files: train-images-idx3-ubyte, "
          "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, plain or "
          ".gz)";
  return {};
}

/// IDX images and labels, checked against the program's input and classes.
bool readIdx(const std::string &images, const std::string &labels,
             const kiln_train_program_t &program, DataSet &data, std::string &error) {
  kiln_array_t *raw = nullptr;
  if ((error = take(kiln_idx_read(images.c_str(), &raw))).size())
    return false;
  data.idx.reset(raw);
  data.name = images;
  const int64_t *shape = kiln_array_shape(raw);
  size_t rank = kiln_array_rank(raw);
  int64_t perImage = 1;
  for (size_t d = 1; d < rank; ++d)
    perImage *= shape[d];
  data.sampleSize = sampleSizeOf(program);
  if (rank < 2 || perImage != data.sampleSize) {
    error = images + ": images of " + std::to_string(perImage) +
            " pixels, but the model's input has " + std::to_string(data.sampleSize) +
            " values per sample";
    return false;
  }
  data.rows = shape[0];
  if (data.rows == 0) {
    error = images + ": no images";
    return false;
  }
  data.pixels = static_cast<const uint8_t *>(kiln_array_const_data(raw));
  kiln_array_t *rawLabels = nullptr;
  if ((error = take(kiln_idx_read(labels.c_str(), &rawLabels))).size())
    return false;
  std::unique_ptr<kiln_array_t, void (*)(kiln_array_t *)> owner(rawLabels, kiln_array_free);
  if (kiln_array_rank(rawLabels) != 1 || kiln_array_shape(rawLabels)[0] != data.rows) {
    error = labels + ": " + std::to_string(data.rows) + " labels expected (one per image in " +
            images + ")";
    return false;
  }
  const uint8_t *values = static_cast<const uint8_t *>(kiln_array_const_data(rawLabels));
  data.labels.resize(static_cast<size_t>(data.rows));
  for (int64_t i = 0; i < data.rows; ++i) {
    if (values[i] >= program.classes) {
      error = labels + ": label " + std::to_string(i) + " is " + std::to_string(values[i]) +
              ", but the model has " + std::to_string(program.classes) + " classes (0 to " +
              std::to_string(program.classes - 1) + ")";
      return false;
    }
    data.labels[static_cast<size_t>(i)] = values[i];
  }
  return true;
}

bool readNpy(const char *inputs, const char *labels, const kiln_train_program_t &program,
             DataSet &data, std::string &error) {
  kiln_train_data_t *raw = nullptr;
  if ((error = take(kiln_train_data_read(inputs, labels, program.input_rank, program.input_shape,
                                         program.classes, &raw)))
          .size())
    return false;
  data.npy.reset(raw);
  data.name = inputs;
  data.rows = kiln_train_data_rows(raw);
  data.sampleSize = kiln_train_data_sample_size(raw);
  data.floats = kiln_train_data_inputs(raw);
  const int64_t *values = kiln_train_data_labels(raw);
  data.labels.assign(values, values + data.rows);
  return true;
}

/// splitmix64 (Steele, Lea and Flood): a 64-bit generator whose whole state
/// is one number, so an order is a function of its key alone.
struct SplitMix {
  uint64_t state;
  explicit SplitMix(uint64_t key) : state(key) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, bound), without modulo bias (rejection).
  uint64_t below(uint64_t bound) {
    uint64_t limit = std::numeric_limits<uint64_t>::max() -
                     std::numeric_limits<uint64_t>::max() % bound;
    uint64_t x;
    do
      x = next();
    while (x >= limit);
    return x % bound;
  }
};

/// 0..n-1 shuffled by Fisher-Yates from `key`.
std::vector<int64_t> permutation(int64_t n, uint64_t key) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    order[static_cast<size_t>(i)] = i;
  SplitMix rng(key);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)],
              order[static_cast<size_t>(rng.below(static_cast<uint64_t>(i) + 1))]);
  return order;
}

// Keys of the two orders a run draws: the split, once, and each epoch's.
uint64_t splitKey(int64_t seed) { return static_cast<uint64_t>(seed) * 2654435761u ^ 0x5EED5EEDull; }
uint64_t epochKey(int64_t seed, int64_t epoch) {
  return SplitMix(static_cast<uint64_t>(seed)).next() ^
         (static_cast<uint64_t>(epoch + 1) * 0xD1B54A32D192ED03ull);
}

/// A batch in the step's layout.
struct Batch {
  std::vector<float> inputs;
  std::vector<int64_t> labels;
  int64_t size = 0;
};

/// Gathers rows `rows[first, first + count)` of `data` into `batch`.
void gather(const DataSet &data, const kiln::runtime::PixelTransform &transform,
            const std::vector<int64_t> &rows, size_t first, int64_t count, Batch &batch) {
  batch.size = count;
  batch.inputs.resize(static_cast<size_t>(count * data.sampleSize));
  batch.labels.resize(static_cast<size_t>(count));
  for (int64_t r = 0; r < count; ++r) {
    int64_t row = rows[first + static_cast<size_t>(r)];
    float *out = batch.inputs.data() + r * data.sampleSize;
    if (data.pixels) {
      const uint8_t *in = data.pixels + row * data.sampleSize;
      for (int64_t i = 0; i < data.sampleSize; ++i)
        out[i] = transform(in[i]);
    } else {
      std::memcpy(out, data.floats + row * data.sampleSize,
                  static_cast<size_t>(data.sampleSize) * sizeof(float));
    }
    batch.labels[static_cast<size_t>(r)] = data.labels[static_cast<size_t>(row)];
  }
}

/// Prepares batch k + 1 on its own thread while the step runs on batch k:
/// two slots, one request outstanding at a time.
class Prefetcher {
public:
  using Fill = std::function<void(int64_t index, Batch &batch)>;
  explicit Prefetcher(Fill fill) : fill(std::move(fill)), worker([this] { run(); }) {}
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    worker.join();
  }
  void request(int64_t index) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      requested = index;
    }
    wake.notify_all();
  }
  /// The batch `index`, once ready (requested before). `waited` gets the
  /// seconds spent waiting.
  Batch &wait(int64_t index, double &waited) {
    Clock::time_point start = Clock::now();
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return ready == index; });
    waited += secondsSince(start);
    return slots[index % 2];
  }

private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      wake.wait(lock, [&] { return stopping || requested != ready; });
      if (stopping)
        return;
      int64_t index = requested;
      lock.unlock();
      fill(index, slots[index % 2]);
      lock.lock();
      ready = index;
      done.notify_all();
    }
  }

  Fill fill;
  Batch slots[2];
  std::mutex mutex;
  std::condition_variable wake, done;
  int64_t requested = -1, ready = -1;
  bool stopping = false;
  std::thread worker;
};

// ---- Evaluation -------------------------------------------------------------

struct Evaluation {
  double loss = 0; // mean cross-entropy
  int64_t correct = 0, count = 0;
  std::vector<int64_t> confusion; // [label][prediction], classes^2
  double accuracy() const { return count ? static_cast<double>(correct) / count : NAN; }
};

/// torch.argmax's choice: the first maximum, and NaN above every number.
int64_t argmax(const float *row, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 0; c < classes; ++c) {
    if (std::isnan(row[c]))
      return c;
    if (row[c] > row[best])
      best = c;
  }
  return best;
}

/// Cross-entropy of one row of logits, in double (log-sum-exp).
double crossEntropy(const float *row, int64_t classes, int64_t label) {
  double top = -INFINITY;
  for (int64_t c = 0; c < classes; ++c)
    top = std::max(top, static_cast<double>(row[c]));
  if (!std::isfinite(top))
    return std::isnan(top) || top > 0 ? NAN : INFINITY;
  double sum = 0;
  for (int64_t c = 0; c < classes; ++c)
    sum += std::exp(static_cast<double>(row[c]) - top);
  return top + std::log(sum) - static_cast<double>(row[label]);
}

// ---- The run ----------------------------------------------------------------

volatile std::sig_atomic_t interrupted = 0;
extern "C" void onInterrupt(int) {
  interrupted = 1;
  // A second Ctrl-C ends the program at once.
  std::signal(SIGINT, SIG_DFL);
}

/// Where a run stands, as a checkpoint's metadata records it.
struct Position {
  int64_t epoch = 0;   // the epoch in progress (from 0)
  int64_t batch = 0;   // batches of it done
  int64_t steps = 0;   // steps since the run began
  // The epoch in progress so far.
  double lossSum = 0;
  int64_t correct = 0, samples = 0;
  double seconds = 0, stepSeconds = 0;
  // Early stopping.
  double bestLoss = INFINITY;
  int64_t bestEpoch = 0, badEpochs = 0;
  std::string stopped; // "", "epochs", "early", "steps"
  std::vector<kiln_metrics_row_t> history;
};

// The metrics so far, in a checkpoint: losses and accuracies only, so that
// the same run writes the same bytes however fast it ran (the times are the
// metrics file's alone).
std::string historyText(const std::vector<kiln_metrics_row_t> &rows) {
  std::string text;
  for (const kiln_metrics_row_t &row : rows) {
    text += text.empty() ? "" : ";";
    text += std::to_string(row.epoch);
    for (double value : {row.train_loss, row.train_accuracy, row.val_loss, row.val_accuracy})
      text += "," + number(value);
  }
  return text;
}

bool parseHistory(const std::string &text, std::vector<kiln_metrics_row_t> &rows) {
  rows.clear();
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(';', at);
    std::string entry = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    kiln_metrics_row_t row;
    row.seconds = row.step_seconds = row.eval_seconds = row.samples_per_second = NAN;
    double *fields[] = {&row.train_loss, &row.train_accuracy, &row.val_loss, &row.val_accuracy};
    const char *cursor = entry.c_str();
    char *next = nullptr;
    row.epoch = std::strtoll(cursor, &next, 10);
    if (next == cursor)
      return false;
    for (double *field : fields) {
      if (*next != ',')
        return false;
      cursor = next + 1;
      *field = std::strtod(cursor, &next);
      if (next == cursor)
        return false;
    }
    if (*next != '\0')
      return false;
    rows.push_back(row);
    if (end == std::string::npos)
      break;
    at = end + 1;
  }
  return true;
}

/// The settings a resumed run must share with the run it resumes.
struct Settings {
  int64_t batch, seed, epochs, patience;
  double valSplit, delta;
  bool shuffle, dropLast;
};

class Run {
public:
  Run(const kiln_train_program_t &program, const kiln_train_options_t &options)
      : program(program), options(options),
        transform(program.train->scale, program.train->mean, program.train->std) {}
  int main();
  /// The options, outputs and data checked; nothing run.
  int prepare() {
    if (int code = configure())
      return code;
    if (int code = checkOutputs())
      return code;
    return loadData();
  }

private:
  int configure();
  int checkOutputs();
  int loadData();
  int createTrainer();
  int setHyperParameters(const std::string &saved, const char *path);
  std::string hyperParameterText();
  int resumeFrom(const char *path);
  void recoverTimes();
  int train();
  bool trainEpoch(bool &stop, int &code);
  bool evaluate(const DataSet &data, const std::vector<int64_t> &rows, Evaluation &out,
                bool confusion, std::string &error);
  std::string writeCheckpoint(const char *path, bool finished);
  int endOfEpoch(double evalSeconds, const Evaluation *validation, bool &stop);
  void progress(int64_t batches, bool force);
  int finish();
  std::string bestPath() const;

  const kiln_train_program_t &program;
  const kiln_train_options_t &options;
  Settings settings{};
  kiln::runtime::PixelTransform transform;
  DataSet trainData, testData;
  bool haveTest = false;
  std::vector<int64_t> trainRows, valRows;
  std::unique_ptr<kiln_trainer_s, void (*)(kiln_trainer_s *)> trainer{nullptr, nullptr};
  Position at;
  bool progressBar = false;
  Clock::time_point epochStart, lastProgress;
  float lastLoss = 0;
  int64_t printEvery = 1;
  std::vector<std::string> inputs; // files no output may be
};

std::string Run::bestPath() const {
  std::string out = options.output;
  const std::string suffix = ".safetensors";
  if (out.size() > suffix.size() && out.compare(out.size() - suffix.size(), suffix.size(), suffix) == 0)
    out.resize(out.size() - suffix.size());
  return out + ".best.safetensors";
}

/// The options over the train section's defaults, checked.
int Run::configure() {
  const kiln_train_section_t &train = *program.train;
  settings.batch = options.batch >= 0 ? options.batch : train.batch;
  settings.seed = options.seed >= 0 ? options.seed : train.seed;
  settings.epochs = options.epochs >= 0 ? options.epochs : train.epochs;
  settings.valSplit = options.val_split >= 0 ? options.val_split : train.validation;
  settings.patience = options.patience >= 0 ? options.patience : train.patience;
  settings.delta = options.delta >= 0 ? options.delta : train.delta;
  settings.shuffle = options.shuffle != 0;
  settings.dropLast = options.drop_last > 0;
  if (settings.batch < 1)
    return fail("--batch must be at least 1, not " + std::to_string(settings.batch), 2);
  if (!(settings.valSplit >= 0 && settings.valSplit < 1))
    return fail("--val-split must be in [0, 1), not " + number(settings.valSplit, "%g"), 2);
  if (options.steps < 0)
    return fail("--steps must be at least 1, not " + std::to_string(options.steps), 2);
  if (settings.epochs < 0)
    return fail("--epochs must be >= 0, not " + std::to_string(settings.epochs), 2);
  if (settings.patience < 0)
    return fail("--patience must be >= 0, not " + std::to_string(settings.patience), 2);
  if (!(settings.delta >= 0))
    return fail("--delta must be >= 0, not " + number(settings.delta, "%g"), 2);
  if (options.threads < 0)
    return fail("--threads must be >= 0, not " + std::to_string(options.threads), 2);
  printEvery = options.print_every < 0 ? 1 : options.print_every;
  if (options.checkpoint_every < 0)
    return fail("--checkpoint-every must be >= 0, not " +
                    std::to_string(options.checkpoint_every), 2);
  if (!options.evaluate_only && !options.output)
    return fail("-o is required: the checkpoint written after every epoch and at the end", 2);
  if (!options.init && !options.resume && (options.evaluate_only || !program.initialise))
    return fail(options.evaluate_only ? "--weights is required" : "--init is required", 2);
  if (options.init && options.resume)
    return fail("--init and --resume exclude each other: a resumed run has its state", 2);
  bool npy = options.inputs || options.labels;
  if (npy && !(options.inputs && options.labels))
    return fail(std::string(options.inputs ? "--labels" : "--inputs") +
                    " is required with " + (options.inputs ? "--inputs" : "--labels"), 2);
  if (npy && options.data_dir)
    return fail("--data and --inputs/--labels exclude each other", 2);
  if ((options.test_inputs != nullptr) != (options.test_labels != nullptr))
    return fail("--test-inputs and --test-labels go together", 2);
  for (const char *path : {options.init, options.resume, options.inputs, options.labels,
                           options.test_inputs, options.test_labels, options.data_dir})
    if (path)
      inputs.push_back(path);
  for (size_t i = 0; i < options.input_file_count; ++i)
    inputs.push_back(options.input_files[i]);
  progressBar = options.progress > 0 || (options.progress < 0 && ::isatty(STDOUT_FILENO));
  if (options.steps > 0)
    progressBar = false;
  return 0;
}

/// Every output resolved (and its directory writable) before anything is
/// read or trained: a run of an hour must not fail at its first checkpoint.
int Run::checkOutputs() {
  std::vector<const char *> in;
  for (const std::string &path : inputs)
    in.push_back(path.c_str());
  std::vector<std::string> outs;
  if (options.output)
    outs.push_back(options.output);
  if (options.output && !options.evaluate_only)
    outs.push_back(bestPath());
  if (options.metrics)
    outs.push_back(options.metrics);
  if (options.plot)
    outs.push_back(options.plot);
  for (size_t i = 0; i < outs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (outs[i] == outs[j])
        return fail("'" + outs[i] + "' is named for two outputs", 2);
  for (const std::string &path : outs) {
    // The resumed checkpoint is read first and then replaced: allowed.
    std::vector<const char *> others;
    for (const char *p : in)
      if (!(options.resume && std::strcmp(p, options.resume) == 0 && path == options.output))
        others.push_back(p);
    kiln_output_t output;
    std::string error =
        take(kiln_output_resolve(path.c_str(), 0, others.data(), others.size(), &output));
    if (error.empty() && output.kind == KILN_OUTPUT_FILE) {
      // A file is replaced by a rename in its directory: probe it.
      std::string dir = output.path;
      size_t slash = dir.rfind('/');
      dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
      std::string probe = dir + "/.kiln-probe-XXXXXX";
      int fd = ::mkstemp(probe.data());
      if (fd < 0)
        error = "'" + path + "': cannot write in " + dir + ": " + std::strerror(errno);
      else {
        ::close(fd);
        ::unlink(probe.c_str());
      }
    }
    kiln_output_release(&output);
    if (!error.empty())
      return fail(error);
  }
  return 0;
}

int Run::loadData() {
  std::string error;
  if (options.inputs) {
    if (!readNpy(options.inputs, options.labels, program, trainData, error))
      return fail(error);
  } else {
    std::string dir = options.data_dir ? options.data_dir : "";
    if (dir.empty()) {
      if (std::strcmp(program.train->data, "fashion_mnist") != 0)
        return fail("the model's train section names no data set: give --data DIR or "
                    "--inputs/--labels", 2);
      dir = "/usr/share/datasets/fashion-mnist";
    }
    std::string files[4];
    const char *bases[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; ++i)
      if ((files[i] = findIdx(dir, bases[i], error)).empty())
        return fail(error + (options.data_dir ? "" : " (Debian's dataset-fashion-mnist)"));
    if (!options.evaluate_only && !readIdx(files[0], files[1], program, trainData, error))
      return fail(error);
    if (!readIdx(files[2], files[3], program, testData, error))
      return fail(error);
    haveTest = true;
  }
  if (options.test_inputs) {
    if (!readNpy(options.test_inputs, options.test_labels, program, testData, error))
      return fail(error);
    haveTest = true;
  }
  if (options.evaluate_only) {
    if (options.inputs) { // NPY rows to evaluate
      testData = std::move(trainData);
      haveTest = true;
    }
    return 0;
  }
  // The split, once from the seed; the rest is trained on.
  int64_t held = static_cast<int64_t>(std::floor(settings.valSplit * trainData.rows));
  std::vector<int64_t> order = held > 0 ? permutation(trainData.rows, splitKey(settings.seed))
                                        : permutation(0, 0);
  if (held == 0)
    for (int64_t i = 0; i < trainData.rows; ++i)
      order.push_back(i);
  trainRows.assign(order.begin(), order.end() - held);
  valRows.assign(order.end() - held, order.end());
  int64_t rows = static_cast<int64_t>(trainRows.size());
  if (settings.batch > rows)
    return fail("--batch " + std::to_string(settings.batch) + " is larger than the data: " +
                    trainData.name + " has " + std::to_string(rows) + " training samples" +
                    (held ? " after " + std::to_string(held) + " held out for validation" : ""),
                2);
  int64_t last = rows % settings.batch;
  if (last != 0 && last < program.smallest_batch && !settings.dropLast)
    return fail("the last batch of each epoch would hold " + std::to_string(last) +
                    " sample (" + std::to_string(rows) + " training samples in batches of " +
                    std::to_string(settings.batch) +
                    "), and train-mode BatchNorm needs more than one value per channel: give "
                    "--drop-last or another --batch",
                2);
  if (options.steps == 0 && settings.epochs == 0 && !options.resume)
    return fail("--epochs 0: there is nothing to train", 2);
  return 0;
}

/// Sets the options' hyper-parameters; before them, on resume, those of
/// `saved` (a checkpoint's "name=value,..." at `path`) that the options do
/// not give.
int Run::setHyperParameters(const std::string &saved, const char *path) {
  if (!program.set_hyper_parameter)
    return options.hyper_count ? fail("this program takes no hyper-parameters", 2) : 0;
  auto given = [&](const std::string &name) {
    for (size_t i = 0; i < options.hyper_count; ++i)
      if (name == options.hyper_names[i])
        return true;
    return false;
  };
  size_t at = 0;
  while (at < saved.size()) {
    size_t end = saved.find(',', at);
    std::string entry = saved.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? saved.size() : end + 1;
    size_t equals = entry.find('=');
    char *last = nullptr;
    double value = equals == std::string::npos ? NAN : std::strtod(entry.c_str() + equals + 1, &last);
    if (equals == std::string::npos || *last != '\0')
      return fail(std::string(path) + ": bad kiln.hyper_parameters entry '" + entry + "'");
    std::string name = entry.substr(0, equals);
    if (!given(name) && program.set_hyper_parameter(trainer.get(), name.c_str(), value) != 0)
      return fail(std::string(path) + " was trained with " + name + " " + number(value, "%g") +
                      ", which this program cannot take: " + program.last_error(),
                  2);
  }
  for (size_t i = 0; i < options.hyper_count; ++i)
    if (program.set_hyper_parameter(trainer.get(), options.hyper_names[i],
                                    options.hyper_values[i]) != 0)
      return fail(program.last_error(), 2);
  return 0;
}

/// The hyper-parameters now, as a checkpoint records them.
std::string Run::hyperParameterText() {
  std::string text;
  for (size_t i = 0; program.hyper_parameter && i < program.hyper_count; ++i) {
    double value = 0;
    if (program.hyper_parameter(trainer.get(), program.hyper_names[i], &value) == 0)
      text += (text.empty() ? "" : ",") + std::string(program.hyper_names[i]) + "=" +
              number(value);
  }
  return text;
}

int Run::createTrainer() {
  if (options.threads > 0)
    program.set_num_threads(options.threads);
  kiln_trainer_s *raw = nullptr;
  if (program.create(&raw) != 0)
    return fail(program.last_error());
  trainer = {raw, program.destroy};
  if (int code = setHyperParameters("", nullptr))
    return code;
  if (options.init && program.load_state(raw, options.init) != 0)
    return fail(program.last_error());
  if (!options.init && !options.resume) {
    if (program.initialise(raw, static_cast<uint64_t>(settings.seed)) != 0)
      return fail(program.last_error());
    std::printf("initial state: PyTorch's default initialisation from seed %lld\n",
                static_cast<long long>(settings.seed));
  }
  return 0;
}

std::string metadata(const kiln_safetensors_t *file, const char *key) {
  const char *value = nullptr;
  if (kiln_status_t status = kiln_safetensors_metadata_get(file, key, &value)) {
    kiln_status_free(status);
    return {};
  }
  return value;
}

/// The state and position of an interrupted run; its settings must be
/// these.
int Run::resumeFrom(const char *path) {
  kiln_safetensors_t *raw = nullptr;
  if (std::string error = take(kiln_safetensors_open(path, &raw)); !error.empty())
    return fail(error);
  std::unique_ptr<kiln_safetensors_t, void (*)(kiln_safetensors_t *)> file(
      raw, kiln_safetensors_close);
  auto integer = [&](const char *key, int64_t &out) {
    std::string text = metadata(raw, key);
    char *end = nullptr;
    out = std::strtoll(text.c_str(), &end, 10);
    return !text.empty() && *end == '\0';
  };
  auto real = [&](const char *key, double &out) {
    std::string text = metadata(raw, key);
    char *end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return !text.empty() && *end == '\0';
  };
  Settings saved{};
  int64_t shuffle = 0, dropLast = 0;
  bool ok = integer("kiln.epoch", at.epoch) && integer("kiln.batch", at.batch) &&
            integer("steps", at.steps) && integer("kiln.batch_size", saved.batch) &&
            integer("kiln.seed", saved.seed) && real("kiln.val_split", saved.valSplit) &&
            integer("kiln.shuffle", shuffle) && integer("kiln.drop_last", dropLast) &&
            real("kiln.loss_sum", at.lossSum) && integer("kiln.correct", at.correct) &&
            integer("kiln.samples", at.samples) && real("kiln.best_loss", at.bestLoss) &&
            integer("kiln.best_epoch", at.bestEpoch) && integer("kiln.bad_epochs", at.badEpochs) &&
            parseHistory(metadata(raw, "kiln.metrics"), at.history);
  if (!ok)
    return fail(std::string(path) +
                ": not a checkpoint of a Kiln training run (its metadata say nothing of where "
                "the run stood: kiln.epoch, kiln.batch, ...)");
  at.stopped = metadata(raw, "kiln.stopped");
  saved.shuffle = shuffle != 0;
  saved.dropLast = dropLast != 0;
  auto differs = [&](const char *flag, const std::string &was, const std::string &now) {
    return fail(std::string(path) + " was trained with " + flag + " " + was + ", not " + now +
                    ": a resumed run keeps its data order",
                2);
  };
  if (saved.batch != settings.batch)
    return differs("--batch", std::to_string(saved.batch), std::to_string(settings.batch));
  if (saved.seed != settings.seed)
    return differs("--seed", std::to_string(saved.seed), std::to_string(settings.seed));
  if (number(saved.valSplit) != number(settings.valSplit))
    return differs("--val-split", number(saved.valSplit, "%g"), number(settings.valSplit, "%g"));
  if (saved.shuffle != settings.shuffle)
    return differs("shuffling", saved.shuffle ? "on" : "off", settings.shuffle ? "on" : "off");
  if (saved.dropLast != settings.dropLast)
    return differs("--drop-last", saved.dropLast ? "on" : "off", settings.dropLast ? "on" : "off");
  if (at.stopped == "early")
    return fail(std::string(path) + ": that run stopped early at epoch " +
                std::to_string(at.epoch) + ": there is nothing to resume");
  if (at.stopped == "epochs" && at.epoch >= settings.epochs)
    return fail(std::string(path) + ": that run finished its " + std::to_string(at.epoch) +
                " epochs: give --epochs above " + std::to_string(at.epoch) + " to train on");
  std::string hyper = metadata(raw, "kiln.hyper_parameters");
  file.reset();
  if (int code = setHyperParameters(hyper, path))
    return code;
  if (program.load_state(trainer.get(), path) != 0)
    return fail(program.last_error());
  at.stopped.clear();
  recoverTimes();
  std::printf("resumed %s: epoch %lld, batch %lld (%lld steps)\n", safe(path).c_str(),
              static_cast<long long>(at.epoch + 1), static_cast<long long>(at.batch),
              static_cast<long long>(at.steps));
  return 0;
}

/// The times of the epochs before a resume are the metrics file's (the
/// checkpoint keeps losses and accuracies only): taken from it where it
/// holds the same epochs with the same numbers, else left absent.
void Run::recoverTimes() {
  if (!options.metrics)
    return;
  kiln_metrics_row_t *rows = nullptr;
  size_t count = 0;
  if (kiln_status_t status = kiln_metrics_read_csv(options.metrics, &rows, &count)) {
    kiln_status_free(status);
    return;
  }
  for (kiln_metrics_row_t &row : at.history)
    for (size_t i = 0; i < count; ++i)
      if (rows[i].epoch == row.epoch && number(rows[i].train_loss, "%.6g") ==
                                            number(row.train_loss, "%.6g")) {
        row.seconds = rows[i].seconds;
        row.step_seconds = rows[i].step_seconds;
        row.eval_seconds = rows[i].eval_seconds;
        row.samples_per_second = rows[i].samples_per_second;
      }
  kiln_metrics_free(rows);
}

std::string Run::writeCheckpoint(const char *path, bool finished) {
  kiln_safetensors_writer_t *raw = nullptr;
  if (std::string error = take(kiln_safetensors_writer_create(&raw)); !error.empty())
    return error;
  std::unique_ptr<kiln_safetensors_writer_t, void (*)(kiln_safetensors_writer_t *)> writer(
      raw, kiln_safetensors_writer_free);
  for (size_t i = 0; i < program.state_count; ++i) {
    const char *name = nullptr;
    int integer = 0;
    size_t rank = 0;
    const int64_t *shape = nullptr;
    if (program.state_info(i, &name, &integer, &rank, &shape) != 0)
      return program.last_error();
    std::string error = take(kiln_safetensors_writer_add(
        raw, name, integer ? KILN_DTYPE_I64 : KILN_DTYPE_F32, rank, shape,
        program.state_data(trainer.get(), i)));
    if (!error.empty())
      return error;
  }
  std::vector<std::pair<std::string, std::string>> entries = {
      {"format", "pt"},
      {"generator", KILN_CHECKPOINT_GENERATOR},
      {"steps", std::to_string(at.steps)},
      {"kiln.epoch", std::to_string(at.epoch)},
      {"kiln.batch", std::to_string(at.batch)},
      {"kiln.batch_size", std::to_string(settings.batch)},
      {"kiln.seed", std::to_string(settings.seed)},
      {"kiln.hyper_parameters", hyperParameterText()},
      {"kiln.val_split", number(settings.valSplit)},
      {"kiln.shuffle", settings.shuffle ? "1" : "0"},
      {"kiln.drop_last", settings.dropLast ? "1" : "0"},
      {"kiln.loss_sum", number(at.lossSum)},
      {"kiln.correct", std::to_string(at.correct)},
      {"kiln.samples", std::to_string(at.samples)},
      {"kiln.best_loss", number(at.bestLoss)},
      {"kiln.best_epoch", std::to_string(at.bestEpoch)},
      {"kiln.bad_epochs", std::to_string(at.badEpochs)},
      {"kiln.metrics", historyText(at.history)},
      {"kiln.stopped", finished ? at.stopped : ""},
  };
  for (const auto &[key, value] : entries)
    if (std::string error =
            take(kiln_safetensors_writer_set_metadata(raw, key.c_str(), value.c_str()));
        !error.empty())
      return error;
  return take(kiln_safetensors_writer_write(raw, path));
}

bool Run::evaluate(const DataSet &data, const std::vector<int64_t> &rows, Evaluation &out,
                   bool confusion, std::string &error) {
  // 500 rows a call: large enough that the call costs nothing, small enough
  // that the eval forward's activations stay in the cache.
  const int64_t chunk = 500;
  int64_t classes = program.classes;
  std::vector<float> logits(static_cast<size_t>(chunk * classes));
  if (confusion)
    out.confusion.assign(static_cast<size_t>(classes * classes), 0);
  Batch batch;
  double lossSum = 0;
  for (size_t first = 0; first < rows.size(); first += chunk) {
    int64_t count = std::min<int64_t>(chunk, static_cast<int64_t>(rows.size() - first));
    gather(data, transform, rows, first, count, batch);
    if (program.eval(trainer.get(), batch.inputs.data(), count, logits.data()) != 0) {
      error = program.last_error();
      return false;
    }
    for (int64_t r = 0; r < count; ++r) {
      const float *row = logits.data() + r * classes;
      int64_t label = batch.labels[static_cast<size_t>(r)];
      int64_t predicted = argmax(row, classes);
      lossSum += crossEntropy(row, classes, label);
      out.correct += predicted == label;
      if (confusion)
        ++out.confusion[static_cast<size_t>(label * classes + predicted)];
    }
  }
  out.count = static_cast<int64_t>(rows.size());
  out.loss = out.count ? lossSum / static_cast<double>(out.count) : NAN;
  return true;
}

std::string duration(double seconds) {
  char text[32];
  if (seconds < 60)
    std::snprintf(text, sizeof text, "%.0fs", seconds);
  else
    std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(seconds / 60),
                  static_cast<int>(seconds) % 60);
  return text;
}

/// The progress bar: batch, loss, accuracy, samples/s, ETA; at most ten
/// redraws a second.
void Run::progress(int64_t batches, bool force) {
  if (!progressBar)
    return;
  Clock::time_point now = Clock::now();
  if (!force && std::chrono::duration<double>(now - lastProgress).count() < 0.1)
    return;
  lastProgress = now;
  double elapsed = at.seconds + secondsSince(epochStart);
  double rate = elapsed > 0 ? at.samples / elapsed : 0;
  double left = at.batch > 0 ? elapsed / at.batch * (batches - at.batch) : 0;
  const int width = 24;
  int filled = static_cast<int>(width * at.batch / std::max<int64_t>(batches, 1));
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width)
    bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  std::printf("\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.2f%% %.0f samples/s ETA %s",
              static_cast<long long>(at.epoch + 1), static_cast<long long>(settings.epochs),
              bar.c_str(), static_cast<long long>(at.batch), static_cast<long long>(batches),
              at.samples ? at.lossSum / at.samples : 0.0,
              at.samples ? 100.0 * at.correct / at.samples : 0.0, rate, duration(left).c_str());
  std::fflush(stdout);
}

/// One epoch's remaining batches; false on a failure (`code` set). `stop`
/// when the steps run out or SIGINT came.
bool Run::trainEpoch(bool &stop, int &code) {
  int64_t rows = static_cast<int64_t>(trainRows.size());
  int64_t batches = settings.dropLast ? rows / settings.batch
                                      : (rows + settings.batch - 1) / settings.batch;
  std::vector<int64_t> order = trainRows;
  if (settings.shuffle) {
    std::vector<int64_t> perm = permutation(rows, epochKey(settings.seed, at.epoch));
    for (int64_t i = 0; i < rows; ++i)
      order[static_cast<size_t>(i)] = trainRows[static_cast<size_t>(perm[static_cast<size_t>(i)])];
  }
  Prefetcher prefetcher([&](int64_t index, Batch &batch) {
    size_t first = static_cast<size_t>(index * settings.batch);
    gather(trainData, transform, order, first,
           std::min<int64_t>(settings.batch, rows - static_cast<int64_t>(first)), batch);
  });
  epochStart = lastProgress = Clock::now();
  double waited = 0;
  if (at.batch < batches)
    prefetcher.request(at.batch);
  while (at.batch < batches) {
    Batch &batch = prefetcher.wait(at.batch, waited);
    if (at.batch + 1 < batches)
      prefetcher.request(at.batch + 1);
    float loss = 0;
    int64_t correct = 0;
    Clock::time_point stepStart = Clock::now();
    if (program.train_step(trainer.get(), batch.inputs.data(), batch.labels.data(), batch.size,
                           &loss, &correct) != 0) {
      code = fail("epoch " + std::to_string(at.epoch + 1) + ", step " +
                  std::to_string(at.steps + 1) + ": " + program.last_error());
      return false;
    }
    at.stepSeconds += secondsSince(stepStart);
    if (!std::isfinite(loss)) {
      if (progressBar)
        std::printf("\n");
      code = fail("epoch " + std::to_string(at.epoch + 1) + ", step " +
                  std::to_string(at.steps + 1) + " (batch " + std::to_string(at.batch + 1) +
                  " of " + std::to_string(batches) + "): the loss is " + number(loss, "%g") +
                  "; training stopped" +
                  (at.history.empty() && at.steps == 0
                       ? ""
                       : "; the last good checkpoint is " + std::string(options.output)));
      return false;
    }
    lastLoss = loss;
    ++at.batch;
    ++at.steps;
    at.lossSum += static_cast<double>(loss) * static_cast<double>(batch.size);
    at.correct += correct;
    at.samples += batch.size;
    if (printEvery > 0 && options.steps > 0 &&
        (at.steps % printEvery == 0 || at.steps == options.steps))
      std::printf("step %lld/%lld: loss %.6f, correct %lld/%lld\n",
                  static_cast<long long>(at.steps), static_cast<long long>(options.steps),
                  static_cast<double>(loss), static_cast<long long>(correct),
                  static_cast<long long>(batch.size));
    progress(batches, false);
    bool last = options.steps > 0 && at.steps >= options.steps;
    if (interrupted || last) {
      at.seconds += secondsSince(epochStart);
      stop = true;
      return true;
    }
    if (options.checkpoint_every > 0 && at.steps % options.checkpoint_every == 0) {
      std::string error = writeCheckpoint(options.output, false);
      if (!error.empty()) {
        code = fail(error);
        return false;
      }
    }
  }
  at.seconds += secondsSince(epochStart);
  (void)waited;
  return true;
}

/// The epoch's metrics row, its line, its checkpoints, and early stopping.
int Run::endOfEpoch(double evalSeconds, const Evaluation *validation, bool &stop) {
  kiln_metrics_row_t row;
  row.epoch = at.epoch + 1;
  row.train_loss = at.samples ? at.lossSum / at.samples : NAN;
  row.train_accuracy = at.samples ? static_cast<double>(at.correct) / at.samples : NAN;
  row.val_loss = validation ? validation->loss : NAN;
  row.val_accuracy = validation ? validation->accuracy() : NAN;
  row.seconds = at.seconds;
  row.step_seconds = at.stepSeconds;
  row.eval_seconds = evalSeconds;
  row.samples_per_second = at.seconds > 0 ? at.samples / at.seconds : NAN;
  at.history.push_back(row);
  if (progressBar)
    std::printf("\r\033[K");
  if (options.steps == 0) {
    std::printf("epoch %lld/%lld: train loss %.6f, accuracy %.2f%%", static_cast<long long>(row.epoch),
                static_cast<long long>(settings.epochs), row.train_loss, 100 * row.train_accuracy);
    if (validation)
      std::printf("; val loss %.6f, accuracy %.2f%%", row.val_loss, 100 * row.val_accuracy);
    std::printf("; %.2f s, %.0f samples/s, %.1f%% outside the step\n", row.seconds,
                row.samples_per_second,
                row.seconds > 0 ? 100 * (row.seconds - row.step_seconds) / row.seconds : 0.0);
    std::fflush(stdout);
  }
  bool improved = validation && validation->loss < at.bestLoss - settings.delta;
  if (improved) {
    at.bestLoss = validation->loss;
    at.bestEpoch = row.epoch;
    at.badEpochs = 0;
  } else if (validation) {
    ++at.badEpochs;
  }
  ++at.epoch;
  at.batch = 0;
  at.lossSum = 0;
  at.correct = at.samples = 0;
  at.seconds = at.stepSeconds = 0;
  if (settings.patience > 0 && validation && at.badEpochs >= settings.patience) {
    at.stopped = "early";
    stop = true;
  }
  if (improved)
    if (std::string error = writeCheckpoint(bestPath().c_str(), false); !error.empty())
      return fail(error);
  if (std::string error = writeCheckpoint(options.output, false); !error.empty())
    return fail(error);
  if (options.metrics)
    if (std::string error =
            take(kiln_metrics_write_csv(options.metrics, at.history.data(), at.history.size()));
        !error.empty())
      return fail(error);
  if (options.plot) {
    kiln_plot_run_t run = {program.name, at.history.data(), at.history.size()};
    if (std::string error = take(kiln_plot_write_svg(options.plot, program.name, &run, 1));
        !error.empty())
      return fail(error);
  }
  return 0;
}

int Run::train() {
  bool stop = false;
  struct sigaction action {}, previous{};
  action.sa_handler = onInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous);
  // A file size limit makes a checkpoint's write fail with EFBIG, as a full
  // disk does with ENOSPC: an error, the previous checkpoint untouched,
  // rather than SIGXFSZ ending the run with the temporary file left behind.
  struct sigaction ignore {}, previousXfsz{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGXFSZ, &ignore, &previousXfsz);
  interrupted = 0;
  int code = 0;
  while (!stop && (options.steps > 0 || at.epoch < settings.epochs)) {
    if (!trainEpoch(stop, code))
      break;
    if (stop && (interrupted || at.batch < static_cast<int64_t>(
                                              settings.dropLast
                                                  ? trainRows.size() / settings.batch
                                                  : (trainRows.size() + settings.batch - 1) /
                                                        settings.batch)))
      break; // mid-epoch: no validation, no end of epoch
    stop = false;
    Clock::time_point evalStart = Clock::now();
    Evaluation validation;
    std::string error;
    if (!valRows.empty() && !evaluate(trainData, valRows, validation, false, error)) {
      code = fail(error);
      break;
    }
    if ((code = endOfEpoch(secondsSince(evalStart), valRows.empty() ? nullptr : &validation,
                           stop)))
      break;
    if (options.steps > 0 && at.steps >= options.steps)
      stop = true;
  }
  sigaction(SIGINT, &previous, nullptr);
  sigaction(SIGXFSZ, &previousXfsz, nullptr);
  if (code)
    return code;
  if (interrupted) {
    if (progressBar)
      std::printf("\n");
    if (std::string error = writeCheckpoint(options.output, false); !error.empty())
      return fail(error);
    std::printf("interrupted at epoch %lld, batch %lld: wrote %s; continue with --resume %s\n",
                static_cast<long long>(at.epoch + 1), static_cast<long long>(at.batch),
                safe(options.output).c_str(), safe(options.output).c_str());
    return 130;
  }
  return finish();
}

/// The best state restored (early stopping), the test set, the final
/// checkpoint.
int Run::finish() {
  if (at.stopped.empty())
    at.stopped = options.steps > 0 ? "steps" : "epochs";
  bool restore = settings.patience > 0 && at.bestEpoch > 0 && at.bestEpoch != at.epoch &&
                 !valRows.empty();
  if (restore) {
    if (program.load_state(trainer.get(), bestPath().c_str()) != 0)
      return fail(program.last_error());
    std::printf("%s at epoch %lld: restored the best state, epoch %lld (val loss %.6f)\n",
                at.stopped == "early" ? "stopped early" : "finished",
                static_cast<long long>(at.epoch), static_cast<long long>(at.bestEpoch),
                at.bestLoss);
  }
  if (std::string error = writeCheckpoint(options.output, true); !error.empty())
    return fail(error);
  if (options.steps > 0) {
    int64_t rows = static_cast<int64_t>(trainRows.size());
    int64_t perPass = (rows + settings.batch - 1) / settings.batch;
    int64_t passes = (at.steps + perPass - 1) / perPass;
    std::printf("trained %lld steps of batch %lld over %lld samples (%lld %s); last loss %.6f; "
                "wrote %zu tensors to %s\n",
                static_cast<long long>(at.steps), static_cast<long long>(settings.batch),
                static_cast<long long>(rows), static_cast<long long>(passes),
                passes == 1 ? "pass" : "passes", static_cast<double>(lastLoss),
                program.state_count, safe(options.output).c_str());
  } else {
    std::printf("trained %lld epochs (%lld steps of batch %lld over %zu samples); wrote %s\n",
                static_cast<long long>(at.epoch), static_cast<long long>(at.steps),
                static_cast<long long>(settings.batch), trainRows.size(),
                safe(options.output).c_str());
  }
  if (haveTest) {
    std::vector<int64_t> rows(static_cast<size_t>(testData.rows));
    for (int64_t i = 0; i < testData.rows; ++i)
      rows[static_cast<size_t>(i)] = i;
    Evaluation test;
    std::string error;
    if (!evaluate(testData, rows, test, false, error))
      return fail(error);
    std::printf("test: loss %.6f, accuracy %.2f%% (%lld images)\n", test.loss,
                100 * test.accuracy(), static_cast<long long>(test.count));
  }
  return 0;
}

int Run::main() {
  if (int code = prepare())
    return code;
  if (int code = createTrainer())
    return code;
  if (options.evaluate_only) {
    if (!haveTest)
      return fail("nothing to evaluate: give --data DIR or --inputs/--labels", 2);
    std::vector<int64_t> rows(static_cast<size_t>(testData.rows));
    for (int64_t i = 0; i < testData.rows; ++i)
      rows[static_cast<size_t>(i)] = i;
    Evaluation test;
    std::string error;
    if (!evaluate(testData, rows, test, options.confusion != 0, error))
      return fail(error);
    std::printf("%s: loss %.6f, accuracy %.2f%% (%lld/%lld correct)\n",
                safe(testData.name).c_str(), test.loss, 100 * test.accuracy(),
                static_cast<long long>(test.correct), static_cast<long long>(test.count));
    if (options.confusion) {
      int64_t classes = program.classes;
      std::printf("confusion matrix (rows: label, columns: prediction):\n%6s", "");
      for (int64_t c = 0; c < classes; ++c)
        std::printf(" %6lld", static_cast<long long>(c));
      std::printf("\n");
      for (int64_t l = 0; l < classes; ++l) {
        std::printf("%6lld", static_cast<long long>(l));
        for (int64_t c = 0; c < classes; ++c)
          std::printf(" %6lld", static_cast<long long>(test.confusion[static_cast<size_t>(l * classes + c)]));
        std::printf("\n");
      }
    }
    return 0;
  }
  if (options.resume)
    if (int code = resumeFrom(options.resume))
      return code;
  return train();
}

} // namespace

extern "C" kiln_train_options_t kiln_train_options_default(void) {
  kiln_train_options_t options;
  std::memset(&options, 0, sizeof options);
  options.epochs = options.batch = options.patience = options.seed = -1;
  options.val_split = options.delta = -1;
  options.shuffle = -1;
  options.progress = -1;
  options.print_every = -1;
  return options;
}

extern "C" int kiln_train_check(const kiln_train_program_t *program,
                                const kiln_train_options_t *options) {
  errorPrefix = options->error_prefix ? options->error_prefix : "error: ";
  try {
    Run run(*program, *options);
    return run.prepare();
  } catch (const std::bad_alloc &) {
    return fail("out of memory");
  } catch (const std::exception &e) {
    return fail(std::string("unexpected exception: ") + e.what());
  }
}

extern "C" int kiln_train_run(const kiln_train_program_t *program,
                              const kiln_train_options_t *options) {
  errorPrefix = options->error_prefix ? options->error_prefix : "error: ";
  try {
    Run run(*program, *options);
    return run.main();
  } catch (const std::bad_alloc &) {
    return fail("out of memory");
  } catch (const std::exception &e) {
    return fail(std::string("unexpected exception: ") + e.what());
  }
}
