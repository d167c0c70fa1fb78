//===- TrainRunner.cpp - the main() of generated training programs --------===//
#include "kiln/runtime/train_runner.h"

#include "kiln/runtime/output.h"
#include "kiln/runtime/train_loop.h"

#include "CSupport.h"
#include "Support.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

/// A hyper-parameter's flag: torch.optim's name with dashes; betas is one
/// flag for beta1 and beta2.
struct HyperFlag {
  const char *flag, *name, *second;
};
const HyperFlag kHyperFlags[] = {{"--lr", "lr", nullptr},
                                 {"--momentum", "momentum", nullptr},
                                 {"--dampening", "dampening", nullptr},
                                 {"--weight-decay", "weight_decay", nullptr},
                                 {"--betas", "beta1", "beta2"},
                                 {"--eps", "eps", nullptr}};

bool hasHyper(const kiln_train_program_t *program, const char *name) {
  for (size_t i = 0; i < program->hyper_count; ++i)
    if (std::strcmp(program->hyper_names[i], name) == 0)
      return true;
  return false;
}

/// " --lr X, --betas B1,B2, ...": the flags this program's optimizer takes.
std::string hyperFlags(const kiln_train_program_t *program) {
  std::string text;
  for (const HyperFlag &f : kHyperFlags)
    if (hasHyper(program, f.name))
      text += std::string(text.empty() ? " " : ", ") + f.flag + (f.second ? " B1,B2" : " X");
  return text.empty() ? " none" : text;
}

void usage(const kiln_train_program_t *program, FILE *out) {
  const kiln_train_section_t &train = *program->train;
  std::fprintf(out,
               "usage: %s --init W.safetensors -o CKPT.safetensors [--data DIR] [--epochs N]\n"
               "          [--batch B] [--val-split X] [--patience N] [--delta X] [--threads T]\n"
               "          [--metrics M.csv] [--plot P.svg] [--no-progress] [--no-shuffle]\n"
               "          [--drop-last] [--checkpoint-every N]\n"
               "       %s --resume CKPT.safetensors -o CKPT.safetensors [...]\n"
               "       %s --init W.safetensors --inputs X.npy --labels Y.npy [--test-inputs X.npy\n"
               "          --test-labels Y.npy] [--steps K --print-every N] -o CKPT.safetensors\n"
               "       %s --eval --init W.safetensors [--data DIR | --inputs X.npy --labels Y.npy]\n"
               "       %s --variant   (the target of the code that runs on this CPU)\n"
               "Trains for epochs over the data (the four MNIST-style IDX files of --data, by\n"
               "default the train section's data set; or NPY inputs and int64 labels), with\n"
               "a validation share held out, early stopping, a checkpoint after every epoch\n"
               "(and the best one beside it), then evaluates the test set. --steps K runs\n"
               "exactly K steps instead. --eval only evaluates. Ctrl-C writes a checkpoint;\n"
               "--resume continues from it, bit for bit.\n"
               "Defaults (the train section): %lld epochs, batch %lld, validation %g,\n"
               "early stopping patience %lld delta %g, seed %lld, data '%s'.\n"
               "Optimizer (its defaults): %s.\n"
               "The optimizer's hyper-parameters:%s (a resumed run keeps its own unless\n"
               "given); the optimizer, nesterov and dropout's seed are compiled in.\n"
               "Model '%s': input [N",
               program->name, program->name, program->name, program->name, program->name,
               static_cast<long long>(train.epochs), static_cast<long long>(train.batch),
               train.validation, static_cast<long long>(train.patience), train.delta,
               static_cast<long long>(train.seed), train.data, program->hyper_parameters,
               hyperFlags(program).c_str(), program->name);
  for (size_t i = 1; i < program->input_rank; ++i)
    std::fprintf(out, ", %lld", static_cast<long long>(program->input_shape[i]));
  std::fprintf(out, "] float32, labels [N] int64 in [0, %lld).\n",
               static_cast<long long>(program->classes));
}

std::string safe(const std::string &text) { return kiln::runtime::escaped(text); }

int fail(const std::string &message, int code = 1) {
  std::fprintf(stderr, "error: %s\n", safe(message.c_str()).c_str());
  return code;
}

bool isCompiledIn(const std::string &flag) { return flag == "--optimizer" || flag == "--seed"; }

struct Parsed {
  kiln_train_options_t options = kiln_train_options_default();
  bool variant = false, help = false;
  std::vector<const char *> hyperNames;
  std::vector<double> hyperValues;
};

bool parseInteger(const std::string &flag, const char *value, int64_t &out) {
  char *end = nullptr;
  errno = 0;
  long long number = std::strtoll(value, &end, 10);
  if (*value == '\0' || *end != '\0' || errno == ERANGE) {
    fail("bad value '" + std::string(value) + "' for " + flag + ": expected a whole number");
    return false;
  }
  out = number;
  return true;
}

bool parseReal(const std::string &flag, const char *value, double &out) {
  char *end = nullptr;
  double number = std::strtod(value, &end);
  if (*value == '\0' || *end != '\0' || !std::isfinite(number)) {
    fail("bad value '" + std::string(value) + "' for " + flag + ": expected a number");
    return false;
  }
  out = number;
  return true;
}

/// A hyper-parameter flag's value (--betas: two, comma-separated) into
/// `parsed`; the trainer checks the values (train_loop.h).
bool parseHyper(const std::string &flag, const char *text, const HyperFlag &h, Parsed &parsed) {
  std::string value = text;
  size_t comma = value.find(',');
  if ((comma != std::string::npos) != (h.second != nullptr)) {
    fail("bad value '" + value + "' for " + flag +
         (h.second ? ": expected two numbers, B1,B2" : ": expected a number"));
    return false;
  }
  std::string first = h.second ? value.substr(0, comma) : value;
  double number = 0;
  if (!parseReal(flag, first.c_str(), number))
    return false;
  parsed.hyperNames.push_back(h.name);
  parsed.hyperValues.push_back(number);
  if (h.second) {
    if (!parseReal(flag, value.c_str() + comma + 1, number))
      return false;
    parsed.hyperNames.push_back(h.second);
    parsed.hyperValues.push_back(number);
  }
  return true;
}

/// Parses "--flag value" (or "--flag=value"); false (with a message) on a
/// bad command line.
bool parse(int argc, char **argv, const kiln_train_program_t *program, Parsed &parsed) {
  kiln_train_options_t &o = parsed.options;
  struct Switch {
    const char *flag;
    int *field;
    int value;
  };
  Switch switches[] = {{"--no-shuffle", &o.shuffle, 0}, {"--drop-last", &o.drop_last, 1},
                       {"--no-progress", &o.progress, 0}, {"--progress", &o.progress, 1},
                       {"--eval", &o.evaluate_only, 1}, {"--confusion", &o.confusion, 1}};
  struct Path {
    const char *flag;
    const char **field;
  };
  Path paths[] = {{"--init", &o.init},         {"--resume", &o.resume},
                  {"--data", &o.data_dir},     {"--inputs", &o.inputs},
                  {"--labels", &o.labels},     {"--test-inputs", &o.test_inputs},
                  {"--test-labels", &o.test_labels}, {"-o", &o.output},
                  {"--output", &o.output},     {"--metrics", &o.metrics},
                  {"--plot", &o.plot}};
  struct Integer {
    const char *flag;
    int64_t *field;
  };
  int64_t threads = 0;
  Integer integers[] = {{"--epochs", &o.epochs},         {"--steps", &o.steps},
                        {"--batch", &o.batch},           {"--patience", &o.patience},
                        {"--print-every", &o.print_every}, {"--checkpoint-every", &o.checkpoint_every},
                        {"--threads", &threads}};
  struct Real {
    const char *flag;
    double *field;
  };
  Real reals[] = {{"--val-split", &o.val_split}, {"--delta", &o.delta}};
  bool stepsGiven = false, printEveryGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
      return true;
    }
    if (arg == "--variant") {
      parsed.variant = true;
      continue;
    }
    bool matched = false;
    for (Switch &s : switches)
      if (arg == s.flag) {
        *s.field = s.value;
        matched = true;
      }
    if (matched)
      continue;
    const char *value = kiln::runtime::splitInlineValue(arg, argv[i]);
    if (isCompiledIn(arg)) {
      fail(arg + " is compiled in (" + program->hyper_parameters + "); give " + arg +
           " to kilnc build --mode=train instead");
      return false;
    }
    auto takeValue = [&]() -> const char * {
      if (value)
        return value;
      if (i + 1 >= argc) {
        fail("'" + arg + "' needs a value (see --help)");
        return nullptr;
      }
      return argv[++i];
    };
    for (Path &p : paths)
      if (arg == p.flag) {
        if (!(*p.field = takeValue()))
          return false;
        matched = true;
      }
    for (Integer &n : integers)
      if (arg == n.flag) {
        const char *text = takeValue();
        if (!text || !parseInteger(arg, text, *n.field))
          return false;
        stepsGiven |= n.field == &o.steps;
        printEveryGiven |= n.field == &o.print_every;
        matched = true;
      }
    for (Real &r : reals)
      if (arg == r.flag) {
        const char *text = takeValue();
        if (!text || !parseReal(arg, text, *r.field))
          return false;
        matched = true;
      }
    for (const HyperFlag &h : kHyperFlags)
      if (arg == h.flag) {
        if (!hasHyper(program, h.name)) {
          fail(std::string(program->name) + "'s optimizer has no " + h.flag + " (" +
               program->hyper_parameters + "; its flags:" + hyperFlags(program) + ")");
          return false;
        }
        const char *text = takeValue();
        if (!text || !parseHyper(arg, text, h, parsed))
          return false;
        matched = true;
      }
    if (!matched) {
      bool option = arg.size() > 1 && arg[0] == '-';
      fail(std::string(option ? "unknown option" : "unexpected argument") + " '" + argv[i] +
           "' (see --help)");
      return false;
    }
  }
  if (o.print_every < -1 || (o.print_every == -1 && printEveryGiven)) {
    fail("--print-every must be >= 0, not " + std::to_string(o.print_every));
    return false;
  }
  for (const Integer &n : integers)
    if (n.field == &o.steps && o.steps < 1 && stepsGiven) {
      fail("--steps must be at least 1, not " + std::to_string(o.steps));
      return false;
    }
  if (threads < 0 || threads > 1024) {
    fail("--threads must be in [0, 1024], not " + std::to_string(threads));
    return false;
  }
  o.threads = static_cast<int>(threads);
  o.hyper_count = parsed.hyperNames.size();
  o.hyper_names = parsed.hyperNames.data();
  o.hyper_values = parsed.hyperValues.data();
  return true;
}

} // namespace

extern "C" int kiln_train_runner_main(int argc, char **argv, const kiln_train_program_t *program) {
  Parsed parsed;
  if (!parse(argc, argv, program, parsed))
    return 2;
  if (parsed.help) {
    usage(program, stdout);
    return 0;
  }
  if (parsed.variant) {
    const char *target = program->variant();
    if (!target)
      return fail(std::string("this CPU supports none of the targets ") + program->name +
                  " was built for");
    std::printf("%s\n", target);
    return 0;
  }
  return kiln_train_run(program, &parsed.options);
}
