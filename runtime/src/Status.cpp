//===- Status.cpp - kiln_status_t -----------------------------------------===//
#include "Support.h"

namespace {
// Returned when a status cannot be allocated, so reporting out-of-memory
// never needs memory. kiln_status_free recognises and keeps it.
kiln_status_s gOutOfMemory{KILN_OUT_OF_MEMORY, std::string()};
} // namespace

namespace kiln::runtime {

kiln_status_t outOfMemory() { return &gOutOfMemory; }

kiln_status_t makeStatus(kiln_status_code_t code, const std::string &message) {
  try {
    return new kiln_status_s{code, message};
  } catch (...) {
    return outOfMemory();
  }
}

} // namespace kiln::runtime

extern "C" {

kiln_status_code_t kiln_status_code(kiln_status_t status) {
  return status ? status->code : KILN_OK;
}

const char *kiln_status_message(kiln_status_t status) {
  if (status == &gOutOfMemory)
    return "out of memory";
  return status ? status->message.c_str() : "";
}

const char *kiln_status_code_name(kiln_status_code_t code) {
  switch (code) {
  case KILN_OK: return "OK";
  case KILN_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case KILN_NOT_FOUND: return "NOT_FOUND";
  case KILN_ALREADY_EXISTS: return "ALREADY_EXISTS";
  case KILN_IO_ERROR: return "IO_ERROR";
  case KILN_DATA_LOSS: return "DATA_LOSS";
  case KILN_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
  case KILN_OUT_OF_RANGE: return "OUT_OF_RANGE";
  case KILN_UNIMPLEMENTED: return "UNIMPLEMENTED";
  case KILN_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

void kiln_status_free(kiln_status_t status) {
  if (status != &gOutOfMemory)
    delete status;
}

} // extern "C"
