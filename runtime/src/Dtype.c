/*===- Dtype.c - Element types --------------------------------------------===*/
#include "CSupport.h"

#include <string.h>

const char *kiln_dtype_name(kiln_dtype_t dtype) {
  switch (dtype) {
  case KILN_DTYPE_F32: return "F32";
  case KILN_DTYPE_F64: return "F64";
  case KILN_DTYPE_F16: return "F16";
  case KILN_DTYPE_BF16: return "BF16";
  case KILN_DTYPE_I64: return "I64";
  case KILN_DTYPE_I32: return "I32";
  case KILN_DTYPE_I16: return "I16";
  case KILN_DTYPE_I8: return "I8";
  case KILN_DTYPE_U64: return "U64";
  case KILN_DTYPE_U32: return "U32";
  case KILN_DTYPE_U16: return "U16";
  case KILN_DTYPE_U8: return "U8";
  case KILN_DTYPE_BOOL: return "BOOL";
  }
  return "?";
}

size_t kiln_dtype_size(kiln_dtype_t dtype) {
  switch (dtype) {
  case KILN_DTYPE_F64: case KILN_DTYPE_I64: case KILN_DTYPE_U64: return 8;
  case KILN_DTYPE_F32: case KILN_DTYPE_I32: case KILN_DTYPE_U32: return 4;
  case KILN_DTYPE_F16: case KILN_DTYPE_BF16: case KILN_DTYPE_I16:
  case KILN_DTYPE_U16: return 2;
  case KILN_DTYPE_I8: case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: return 1;
  }
  return 0;
}

bool kiln_dtype_from_name(const char *name, size_t length, kiln_dtype_t *out) {
  for (int d = KILN_DTYPE_F32; d <= KILN_DTYPE_BOOL; ++d) {
    const char *known = kiln_dtype_name((kiln_dtype_t)d);
    /* By length as well: a name from JSON may hold a NUL ("F32\u0000x"). */
    if (strlen(known) == length && memcmp(known, name, length) == 0) {
      *out = (kiln_dtype_t)d;
      return true;
    }
  }
  return false;
}
