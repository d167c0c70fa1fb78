/* A C program linked against kiln_runtime_c alone, by the C compiler: proves
 * that the safetensors reader and status values need no C++ runtime (the
 * link fails if anything in the archive refers to libstdc++). Writes a small
 * checkpoint by hand into the directory argv[1], reads it back and exits 0,
 * or prints what went wrong and exits 1. */
#include "kiln/runtime/safetensors.h"
#include "kiln/runtime/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"__metadata__":{"format":"pt"},"bn.num_batches_tracked":{...I64 []...},
 *  "fc.weight":{...F32 [2, 2]...}}, its length and data: 8 + 16 bytes. */
static const char kHeader[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
    "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}";

static int writeCheckpoint(const char *path) {
  FILE *out = fopen(path, "wb");
  if (!out)
    return 0;
  unsigned char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = (unsigned char)((sizeof kHeader - 1) >> (8 * i));
  long long tracked = 938;
  float weight[4] = {1.5f, -2.0f, 0.25f, 4.0f};
  int ok = fwrite(length, 1, 8, out) == 8 &&
           fwrite(kHeader, 1, sizeof kHeader - 1, out) == sizeof kHeader - 1 &&
           fwrite(&tracked, 8, 1, out) == 1 && fwrite(weight, 4, 4, out) == 4;
  return fclose(out) == 0 && ok;
}

/* Prints `status` as a failure of `step` and returns 1; 0 if it is OK. */
static int failed(const char *step, kiln_status_t status) {
  if (!status)
    return 0;
  fprintf(stderr, "%s: %s: %s\n", step, kiln_status_code_name(kiln_status_code(status)),
          kiln_status_message(status));
  kiln_status_free(status);
  return 1;
}

static int check(const kiln_safetensors_t *file) {
  kiln_tensor_info_t info;
  float weight[4];
  int64_t tracked = 0;
  const char *format = NULL;
  if (failed("find", kiln_safetensors_find(file, "fc.weight", &info)) ||
      failed("read_f32", kiln_safetensors_read_f32(file, "fc.weight", 4, weight)) ||
      failed("read_i64",
             kiln_safetensors_read_i64(file, "bn.num_batches_tracked", 1, &tracked)) ||
      failed("metadata_get", kiln_safetensors_metadata_get(file, "format", &format)))
    return 1;
  if (kiln_safetensors_count(file) != 2 || info.rank != 2 || info.shape[0] != 2 ||
      info.shape[1] != 2 || info.dtype != KILN_DTYPE_F32 || weight[0] != 1.5f ||
      weight[1] != -2.0f || weight[2] != 0.25f || weight[3] != 4.0f ||
      tracked != 938 || strcmp(format, "pt") != 0) {
    fprintf(stderr, "read back the wrong values\n");
    return 1;
  }
  /* And a failure: a status from C, freed from C. */
  kiln_status_t missing = kiln_safetensors_find(file, "fc.bias", &info);
  int ok = kiln_status_code(missing) == KILN_NOT_FOUND &&
           strstr(kiln_status_message(missing), "'fc.bias'") != NULL;
  kiln_status_free(missing);
  if (!ok)
    fprintf(stderr, "a missing tensor was not reported as NOT_FOUND\n");
  return !ok;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 1;
  }
  size_t size = strlen(argv[1]) + sizeof "/c-reader-only.safetensors";
  char *path = malloc(size);
  if (!path)
    return 1;
  snprintf(path, size, "%s/c-reader-only.safetensors", argv[1]);
  kiln_safetensors_t *file = NULL;
  int result = 1;
  if (!writeCheckpoint(path))
    fprintf(stderr, "%s: cannot write\n", path);
  else if (!failed("open", kiln_safetensors_open(path, &file)))
    result = check(file);
  kiln_safetensors_close(file);
  remove(path);
  free(path);
  return result;
}
