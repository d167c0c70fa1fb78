//===- TrainData.cpp - the data of a training run, in batches -------------===//
//
// kiln_train_data_* (train_data.h): what `kilnc train` checked in its
// driver, here once for it and the programs of `kilnc build --mode=train`.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime/train_data.h"

#include "kiln/runtime/array.h"
#include "kiln/runtime/npy.h"

#include "CSupport.h"

#include <algorithm>
#include <memory>
#include <new>
#include <string>

struct kiln_train_data_s {
  kiln_array_t *inputs = nullptr, *labels = nullptr;
  int64_t rows = 0, sampleSize = 1;
  ~kiln_train_data_s() {
    kiln_array_free(inputs);
    kiln_array_free(labels);
  }
};

namespace {

std::string shapeText(const int64_t *shape, size_t rank, bool batched = false) {
  std::string text = "[";
  for (size_t d = 0; d < rank; ++d) {
    text += d ? ", " : "";
    text += batched && d == 0 ? "N" : std::to_string(shape[d]);
  }
  return text + "]";
}

kiln_status_t fail(kiln_status_code_t code, const std::string &message) {
  return kiln_status_make(code, "%s", message.c_str());
}

/// The inputs: samples of the model's input after leading dimensions.
kiln_status_t readInputs(const char *path, size_t inputRank, const int64_t *inputShape,
                         kiln_train_data_s &data) {
  KILN_RETURN_IF_ERROR(kiln_npy_read_f32(path, &data.inputs));
  const int64_t *shape = kiln_array_shape(data.inputs);
  size_t rank = kiln_array_rank(data.inputs), sampleRank = inputRank - 1;
  const int64_t *sample = inputShape + 1;
  if (rank <= sampleRank || !std::equal(sample, sample + sampleRank, shape + rank - sampleRank))
    return fail(KILN_INVALID_ARGUMENT,
                std::string(path) + ": inputs of shape " + shapeText(shape, rank) +
                    " are not samples of the model's input " +
                    shapeText(inputShape, inputRank, true) + ": the last dimensions must be " +
                    shapeText(sample, sampleRank) +
                    ", after one or more leading dimensions of samples");
  data.rows = 1;
  for (size_t d = 0; d + sampleRank < rank; ++d)
    data.rows *= shape[d];
  for (size_t d = 0; d < sampleRank; ++d)
    data.sampleSize *= sample[d];
  if (data.rows == 0)
    return fail(KILN_INVALID_ARGUMENT, std::string(path) + ": inputs of shape " +
                                           shapeText(shape, rank) + " hold no samples");
  return nullptr;
}

/// The labels: one class index per row.
kiln_status_t readLabels(const char *path, const char *inputsPath, int64_t classes,
                         kiln_train_data_s &data) {
  if (kiln_status_t status = kiln_npy_read_i64(path, &data.labels)) {
    std::string message = kiln_status_message(status);
    kiln_status_code_t code = kiln_status_code(status);
    kiln_status_free(status);
    if (message.find("is not supported") != std::string::npos)
      message += "; labels must be int64 class indices";
    return fail(code, message);
  }
  int64_t count = static_cast<int64_t>(kiln_array_count(data.labels));
  if (count != data.rows)
    return fail(KILN_INVALID_ARGUMENT, std::string(path) + ": " + std::to_string(count) +
                                           " labels for the " + std::to_string(data.rows) +
                                           " samples of " + inputsPath +
                                           " (one label per sample)");
  const int64_t *labels = static_cast<const int64_t *>(kiln_array_const_data(data.labels));
  for (int64_t i = 0; i < count; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      return fail(KILN_INVALID_ARGUMENT,
                  std::string(path) + ": label " + std::to_string(labels[i]) + " of sample " +
                      std::to_string(i) + " is out of range: the model has " +
                      std::to_string(classes) + " classes (0 to " +
                      std::to_string(classes - 1) + ")");
  return nullptr;
}

} // namespace

extern "C" kiln_status_t kiln_train_data_read(const char *inputs_path, const char *labels_path,
                                              size_t input_rank, const int64_t *input_shape,
                                              int64_t classes, kiln_train_data_t **out_data) {
  if (!inputs_path || !labels_path || !input_shape || input_rank < 1 || !out_data)
    return kiln_status_make(KILN_INVALID_ARGUMENT, "invalid argument to kiln_train_data_read");
  *out_data = nullptr;
  try {
    auto data = std::make_unique<kiln_train_data_s>();
    KILN_RETURN_IF_ERROR(readInputs(inputs_path, input_rank, input_shape, *data));
    KILN_RETURN_IF_ERROR(readLabels(labels_path, inputs_path, classes, *data));
    *out_data = data.release();
    return nullptr;
  } catch (const std::bad_alloc &) {
    return kiln_status_out_of_memory();
  }
}

extern "C" void kiln_train_data_free(kiln_train_data_t *data) { delete data; }

extern "C" int64_t kiln_train_data_rows(const kiln_train_data_t *data) { return data->rows; }

extern "C" int64_t kiln_train_data_sample_size(const kiln_train_data_t *data) {
  return data->sampleSize;
}

extern "C" const float *kiln_train_data_inputs(const kiln_train_data_t *data) {
  return static_cast<const float *>(kiln_array_const_data(data->inputs));
}

extern "C" const int64_t *kiln_train_data_labels(const kiln_train_data_t *data) {
  return static_cast<const int64_t *>(kiln_array_const_data(data->labels));
}

extern "C" void kiln_train_batch(int64_t step, int64_t rows, int64_t batch, int64_t *out_first,
                                 int64_t *out_size) {
  int64_t perPass = (rows + batch - 1) / batch;
  *out_first = (step % perPass) * batch;
  *out_size = std::min(batch, rows - *out_first);
}

extern "C" kiln_status_t kiln_train_check_batch(int64_t rows, int64_t batch, int64_t steps,
                                                int64_t smallest_batch,
                                                const char *inputs_path) {
  try {
    if (batch > rows)
      return fail(KILN_INVALID_ARGUMENT, "--batch " + std::to_string(batch) +
                                             " is larger than the data: " + inputs_path +
                                             " has " + std::to_string(rows) + " samples");
    int64_t last = rows % batch;
    if (last != 0 && last < smallest_batch && steps > rows / batch)
      return fail(KILN_INVALID_ARGUMENT,
                  "--batch " + std::to_string(batch) + " over " + std::to_string(rows) +
                      " samples leaves a last batch of " + std::to_string(last) +
                      ", and train-mode BatchNorm1d needs more than 1 value per channel; pick "
                      "another --batch");
    return nullptr;
  } catch (const std::bad_alloc &) {
    return kiln_status_out_of_memory();
  }
}
