//===- TrainRunner.cpp - the main() of generated training programs --------===//
#include "kiln/runtime/train_runner.h"

#include "kiln/runtime/output.h"
#include "kiln/runtime/train_data.h"

#include "CSupport.h"
#include "Support.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Options {
  const char *init = nullptr, *inputs = nullptr, *labels = nullptr, *output = nullptr;
  long long steps = 0, batch = 0, printEvery = 1, threads = 0;
  bool noShuffle = false, eval = false, variant = false, help = false;
  bool stepsGiven = false;
};

void usage(const kiln_train_program_t *program, FILE *out) {
  std::fprintf(out,
               "usage: %s --init W.safetensors --inputs X.npy --labels Y.npy --steps K --batch B\n"
               "          --no-shuffle -o OUT.safetensors [--print-every N] [--threads N] "
               "[--eval]\n"
               "       %s --init W.safetensors --inputs X.npy --labels Y.npy --batch B --eval\n"
               "       %s --variant   (the target of the code that runs on this CPU)\n"
               "Runs exactly K training steps, batches of B rows in order, wrapping around to\n"
               "row 0 when the data ends; the last batch of each pass holds the rows left\n"
               "(rows mod B) and runs as a smaller batch. Then writes the checkpoint\n"
               "(parameters, buffers, optimizer state, step), replaced whole. --eval prints\n"
               "the eval forward's accuracy over the rows, after the steps if any.\n"
               "Compiled in: %s.\n"
               "Model '%s': input [N",
               program->name, program->name, program->name, program->hyper_parameters,
               program->name);
  for (size_t i = 1; i < program->input_rank; ++i)
    std::fprintf(out, ", %lld", static_cast<long long>(program->input_shape[i]));
  std::fprintf(out, "] float32, labels [N] int64 in [0, %lld).\n",
               static_cast<long long>(program->classes));
}

/// `text` with its control characters escaped: paths and messages go to a
/// terminal.
std::string safe(const char *text) {
  std::string out(kiln_escape_controls(text, nullptr, 0), '\0');
  kiln_escape_controls(text, out.data(), out.size() + 1);
  return out;
}

int fail(const std::string &message, int code = 1) {
  std::fprintf(stderr, "error: %s\n", safe(message.c_str()).c_str());
  return code;
}

/// Prints a runtime status as an error and frees it; true if it failed.
bool failed(kiln_status_t status) {
  if (!status)
    return false;
  fail(kiln_status_message(status));
  kiln_status_free(status);
  return true;
}

bool takesValue(const std::string &flag) {
  for (const char *known : {"--init", "--inputs", "--labels", "-o", "--output", "--steps",
                            "--batch", "--print-every", "--threads"})
    if (flag == known)
      return true;
  return false;
}

bool isHyperParameter(const std::string &flag) {
  for (const char *known : {"--optimizer", "--lr", "--momentum", "--weight-decay", "--seed"})
    if (flag == known)
      return true;
  return false;
}

/// Parses "--flag value" (or "--flag=value"); false (with a message) on a
/// bad command line.
bool parse(int argc, char **argv, const kiln_train_program_t *program, Options &options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return true;
    }
    bool *flag = arg == "--no-shuffle" ? &options.noShuffle
                 : arg == "--eval"     ? &options.eval
                 : arg == "--variant"  ? &options.variant
                                       : nullptr;
    if (flag) {
      *flag = true;
      continue;
    }
    const char *value = kiln::runtime::splitInlineValue(arg, argv[i]);
    if (isHyperParameter(arg)) {
      fail(arg + ": the hyper-parameters are compiled in (" + program->hyper_parameters +
           "); give " + arg + " to kilnc build --mode=train instead");
      return false;
    }
    if (!takesValue(arg)) {
      bool option = arg.size() > 1 && arg[0] == '-';
      fail(std::string(option ? "unknown option" : "unexpected argument") + " '" + argv[i] +
           "' (see --help)");
      return false;
    }
    if (!value && i + 1 >= argc) {
      fail("'" + arg + "' needs a value (see --help)");
      return false;
    }
    if (!value)
      value = argv[++i];
    if (arg == "--init")
      options.init = value;
    else if (arg == "--inputs")
      options.inputs = value;
    else if (arg == "--labels")
      options.labels = value;
    else if (arg == "-o" || arg == "--output")
      options.output = value;
    else {
      char *end = nullptr;
      long long number = std::strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0') {
        fail("bad value '" + std::string(value) + "' for " + arg);
        return false;
      }
      if (arg == "--steps") {
        options.steps = number;
        options.stepsGiven = true;
      } else if (arg == "--batch") {
        options.batch = number;
      } else if (arg == "--print-every") {
        options.printEvery = number;
      } else {
        options.threads = number;
      }
    }
  }
  return true;
}

/// The checks of `kilnc train`'s flags, in its order and with its messages.
bool checkFlags(const Options &options) {
  bool train = options.stepsGiven || !options.eval;
  if (train && !options.noShuffle)
    return !fail("shuffling is not implemented yet; pass --no-shuffle", 2);
  if (train && options.steps < 1)
    return !fail("--steps must be at least 1, not " + std::to_string(options.steps), 2);
  if (options.batch < 1)
    return !fail("--batch must be at least 1, not " + std::to_string(options.batch), 2);
  if (options.threads < 0)
    return !fail("--threads must be >= 0, not " + std::to_string(options.threads), 2);
  if (options.printEvery < 0)
    return !fail("--print-every must be >= 0, not " + std::to_string(options.printEvery), 2);
  for (auto [flag, value] : {std::pair{"--init", options.init}, {"--inputs", options.inputs},
                             {"--labels", options.labels}})
    if (!value)
      return !fail(std::string(flag) + " is required", 2);
  if (train && !options.output)
    return !fail("-o is required: the checkpoint written after the last step", 2);
  if (!train && options.output)
    return !fail("-o without --steps: there is nothing to write", 2);
  return true;
}

/// Refuses -o before anything is read, if it is one of the inputs or a
/// kind of file that is never written (output.h).
bool outputRefused(const Options &options) {
  const char *inputs[] = {options.init, options.inputs, options.labels};
  kiln_output_t output;
  bool refused = failed(kiln_output_resolve(options.output, 0, inputs, 3, &output));
  kiln_output_release(&output);
  return refused;
}

struct Run {
  const kiln_train_program_t *program;
  const Options &options;
  kiln_train_data_t *data;
  struct kiln_trainer_s *trainer;

  int apiError() const { return fail(program->last_error()); }

  int train() {
    int64_t rows = kiln_train_data_rows(data), sampleSize = kiln_train_data_sample_size(data);
    const float *inputs = kiln_train_data_inputs(data);
    const int64_t *labels = kiln_train_data_labels(data);
    float loss = 0;
    int64_t correct = 0;
    for (long long i = 0; i < options.steps; ++i) {
      int64_t first, size;
      kiln_train_batch(i, rows, options.batch, &first, &size);
      if (program->train_step(trainer, inputs + first * sampleSize, labels + first, size, &loss,
                               &correct) != 0)
        return fail("step " + std::to_string(i + 1) + " (samples " + std::to_string(first) +
                    " to " + std::to_string(first + size - 1) + "): " + program->last_error());
      if (options.printEvery > 0 &&
          ((i + 1) % options.printEvery == 0 || i + 1 == options.steps))
        std::printf("step %lld/%lld: loss %.6f, correct %lld/%lld\n", i + 1, options.steps,
                    static_cast<double>(loss), static_cast<long long>(correct),
                    static_cast<long long>(size));
    }
    // Resolved again: training takes a while, and the path may have changed.
    if (outputRefused(options))
      return 1;
    if (program->save_state(trainer, options.output) != 0)
      return apiError();
    int64_t perPass = (rows + options.batch - 1) / options.batch;
    int64_t passes = (options.steps + perPass - 1) / perPass;
    std::printf("trained %lld steps of batch %lld over %lld samples (%lld %s); last loss %.6f; "
                "wrote %zu tensors to %s\n",
                options.steps, options.batch, static_cast<long long>(rows),
                static_cast<long long>(passes), passes == 1 ? "pass" : "passes",
                static_cast<double>(loss), program->state_count,
                safe(options.output).c_str());
    return 0;
  }

  /// The eval forward over every row once; argmax is torch.argmax's (the
  /// first maximum).
  int eval() {
    int64_t rows = kiln_train_data_rows(data), sampleSize = kiln_train_data_sample_size(data);
    const float *inputs = kiln_train_data_inputs(data);
    const int64_t *labels = kiln_train_data_labels(data);
    std::vector<float> logits(static_cast<size_t>(options.batch * program->classes));
    int64_t correct = 0;
    for (int64_t first = 0; first < rows; first += options.batch) {
      int64_t size = std::min<int64_t>(options.batch, rows - first);
      if (program->eval(trainer, inputs + first * sampleSize, size, logits.data()) != 0)
        return apiError();
      for (int64_t r = 0; r < size; ++r) {
        const float *row = logits.data() + r * program->classes;
        int64_t best = 0;
        for (int64_t c = 1; c < program->classes; ++c)
          if (row[c] > row[best])
            best = c;
        correct += best == labels[first + r];
      }
    }
    std::printf("eval: %lld/%lld correct (%.2f%%)\n", static_cast<long long>(correct),
                static_cast<long long>(rows), 100.0 * static_cast<double>(correct) /
                                                  static_cast<double>(rows));
    return 0;
  }
};

int run(const kiln_train_program_t *program, const Options &options) {
  bool train = options.stepsGiven || !options.eval;
  if (train && outputRefused(options))
    return 1;
  kiln_train_data_t *raw = nullptr;
  if (failed(kiln_train_data_read(options.inputs, options.labels, program->input_rank,
                                  program->input_shape, program->classes, &raw)))
    return 1;
  std::unique_ptr<kiln_train_data_t, void (*)(kiln_train_data_t *)> data(raw,
                                                                          kiln_train_data_free);
  int64_t rows = kiln_train_data_rows(raw);
  if (failed(kiln_train_check_batch(rows, options.batch, train ? options.steps : 0,
                                    program->smallest_batch, options.inputs)))
    return 1;
  if (options.threads > 0)
    program->set_num_threads(static_cast<int>(options.threads));
  struct kiln_trainer_s *trainer = nullptr;
  if (program->create(&trainer) != 0)
    return fail(program->last_error());
  std::unique_ptr<kiln_trainer_s, void (*)(kiln_trainer_s *)> owner(trainer, program->destroy);
  if (program->load_state(trainer, options.init) != 0)
    return fail(program->last_error());
  Run session{program, options, raw, trainer};
  int result = train ? session.train() : 0;
  if (result == 0 && options.eval)
    result = session.eval();
  return result;
}

} // namespace

extern "C" int kiln_train_runner_main(int argc, char **argv, const kiln_train_program_t *program) {
  Options options;
  if (!parse(argc, argv, program, options))
    return 2;
  if (options.help) {
    usage(program, stdout);
    return 0;
  }
  if (options.variant) {
    const char *target = program->variant();
    if (!target)
      return fail(std::string("this CPU supports none of the targets ") + program->name +
                  " was built for");
    std::printf("%s\n", target);
    return 0;
  }
  if (!checkFlags(options))
    return 2;
  return run(program, options);
}
