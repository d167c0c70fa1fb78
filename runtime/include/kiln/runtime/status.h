/* Kiln runtime: status values.
 *
 * Every fallible call in the runtime returns a kiln_status_t. NULL means OK,
 * so `if (status)` tests for failure at no cost; a failure carries a code and
 * a message naming the file and the tensor or field at fault. The library
 * never prints, aborts or exits. A message is one line that holds no control
 * character: any that a path, tensor name or file header brings in is
 * escaped (\x1b, \u009b), so printing a message cannot drive a terminal.
 *
 * Ownership: a non-NULL status belongs to the caller, who must release it
 * with kiln_status_free (freeing NULL is allowed). Message pointers stay
 * valid until the status is freed.
 * Thread safety: a status is a plain value; distinct statuses may be used
 * from distinct threads.
 */
#ifndef KILN_RUNTIME_STATUS_H
#define KILN_RUNTIME_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_status_code_e {
  KILN_OK = 0,
  KILN_INVALID_ARGUMENT = 1, /* the caller passed something wrong */
  KILN_NOT_FOUND = 2,        /* no such file, tensor or key */
  KILN_ALREADY_EXISTS = 3,   /* e.g. a tensor name added twice */
  KILN_IO_ERROR = 4,         /* the OS refused a read, write or rename */
  KILN_DATA_LOSS = 5,        /* the file is malformed or truncated */
  KILN_OUT_OF_MEMORY = 6,
  KILN_OUT_OF_RANGE = 7,     /* a value does not fit the requested type */
  KILN_UNIMPLEMENTED = 8,    /* well-formed, but not supported by Kiln */
  KILN_INTERNAL = 9          /* a bug in Kiln */
} kiln_status_code_t;

typedef struct kiln_status_s *kiln_status_t;

/* The code of `status`; KILN_OK for NULL. */
kiln_status_code_t kiln_status_code(kiln_status_t status);
/* The message of `status`; "" for NULL. */
const char *kiln_status_message(kiln_status_t status);
/* A stable name for `code`, e.g. "DATA_LOSS". */
const char *kiln_status_code_name(kiln_status_code_t code);
/* Releases `status`; NULL is allowed. */
void kiln_status_free(kiln_status_t status);

/* Returns from the enclosing function with the status of `expr` if it fails. */
#define KILN_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    kiln_status_t kiln_status_ = (expr);                                       \
    if (kiln_status_) return kiln_status_;                                     \
  } while (0)

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_RUNTIME_STATUS_H */
