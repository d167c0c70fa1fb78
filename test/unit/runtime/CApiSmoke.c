/* Compiled as C: proves the public headers are valid C and callable from it.
 * Writes one tensor, reads it back and returns 0, or the failing step. */
#include "kiln/runtime/array.h"
#include "kiln/runtime/idx.h"
#include "kiln/runtime/npy.h"
#include "kiln/runtime/output.h"
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/status.h"

static kiln_status_t roundTrip(const char *path, float *out_value) {
  kiln_safetensors_writer_t *writer = NULL;
  kiln_safetensors_t *file = NULL;
  const float value = 42.0f;
  const int64_t shape[1] = {1};
  KILN_RETURN_IF_ERROR(kiln_safetensors_writer_create(&writer));
  kiln_status_t status =
      kiln_safetensors_writer_add(writer, "w", KILN_DTYPE_F32, 1, shape, &value);
  if (!status)
    status = kiln_safetensors_writer_write(writer, path);
  kiln_safetensors_writer_free(writer);
  KILN_RETURN_IF_ERROR(status);
  KILN_RETURN_IF_ERROR(kiln_safetensors_open(path, &file));
  status = kiln_safetensors_read_f32(file, "w", 1, out_value);
  kiln_safetensors_close(file);
  return status;
}

int kiln_test_c_api_smoke(const char *path) {
  float value = 0.0f;
  kiln_status_t status = roundTrip(path, &value);
  int failed = status != NULL;
  kiln_status_free(status);
  if (failed)
    return 1;
  return value == 42.0f ? 0 : 2;
}
