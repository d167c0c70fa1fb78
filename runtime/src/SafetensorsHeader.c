/*===- SafetensorsHeader.c - Parsing and checking a safetensors header ----===*
 *
 * The header is read event by event (Json.h) rather than into a tree: a tree
 * would have to choose between two duplicate keys, and a hostile 100 MB
 * header could expand to gigabytes of nodes. The handler below is a small
 * state machine that accepts exactly the schema
 *   header := '{' (name ':' entry | '"__metadata__"' ':' metadata)* '}'
 *   entry  := '{' "dtype": string, "shape": [uint*], "data_offsets": [uint, uint] '}'
 *   metadata := '{' (string ':' string)* '}'
 * and builds the tensor list as it goes, stopping at the first value that
 * does not fit (so no container nests deeper than three levels).
 *
 *===----------------------------------------------------------------------===*/
#include "SafetensorsHeader.h"

#include "CSupport.h"
#include "Json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*===-- Arena: the strings and shapes a reader hands out -----------------===*/

struct kiln_arena_block_s {
  kiln_arena_block_t *next;
  size_t used, size;
  _Alignas(8) unsigned char bytes[];
};

/* `n` bytes, 8-aligned, that live until the arena is freed; NULL if memory
 * runs out. */
static void *arenaAllocate(kiln_arena_block_t **arena, size_t n) {
  enum { kBlockSize = 64 * 1024 };
  size_t rounded;
  if (__builtin_add_overflow(n, 7, &rounded))
    return NULL;
  rounded &= ~(size_t)7;
  kiln_arena_block_t *block = *arena;
  if (!block || block->size - block->used < rounded) {
    size_t size = rounded > kBlockSize ? rounded : kBlockSize, total;
    if (__builtin_add_overflow(size, sizeof(kiln_arena_block_t), &total) ||
        !(block = malloc(total)))
      return NULL;
    block->used = 0;
    block->size = size;
    block->next = *arena;
    *arena = block;
  }
  void *bytes = block->bytes + block->used;
  block->used += rounded;
  return bytes;
}

static void arenaFree(kiln_arena_block_t *arena) {
  while (arena) {
    kiln_arena_block_t *next = arena->next;
    free(arena);
    arena = next;
  }
}

/* A NUL-terminated copy of `length` bytes. */
static char *arenaCopy(kiln_arena_block_t **arena, const char *text, size_t length) {
  char *copy = length < SIZE_MAX ? arenaAllocate(arena, length + 1) : NULL;
  if (copy) {
    memcpy(copy, text, length);
    copy[length] = '\0';
  }
  return copy;
}

/*===-- A set of C strings, for duplicate keys ---------------------------===*/

typedef struct StringSet {
  const char **slots; /* open addressing, linear probing; NULL is empty */
  size_t capacity, count;
  uint64_t seed;
} StringSet;

/* FNV-1a, seeded per set from the address of its slots (which ASLR varies),
 * so that a file cannot be crafted once to make every key collide. */
static uint64_t hashString(const char *s, uint64_t seed) {
  uint64_t hash = 0xcbf29ce484222325u ^ seed;
  for (; *s; ++s)
    hash = (hash ^ (unsigned char)*s) * 0x100000001b3u;
  return hash ^ hash >> 29;
}

static void setPut(StringSet *set, const char *s) {
  size_t i = hashString(s, set->seed) & (set->capacity - 1);
  while (set->slots[i])
    i = (i + 1) & (set->capacity - 1);
  set->slots[i] = s;
  ++set->count;
}

/* Adds `s` (which must outlive the set): 1 if it was new, 0 if it was
 * already there, -1 if memory ran out. */
static int setInsert(StringSet *set, const char *s) {
  if (set->capacity) {
    size_t i = hashString(s, set->seed) & (set->capacity - 1);
    for (; set->slots[i]; i = (i + 1) & (set->capacity - 1))
      if (strcmp(set->slots[i], s) == 0)
        return 0;
  }
  if (2 * (set->count + 1) > set->capacity) { /* keep it at most half full */
    size_t capacity = set->capacity ? 2 * set->capacity : 16;
    const char **slots = calloc(capacity, sizeof *slots);
    if (!slots)
      return -1;
    StringSet grown = {slots, capacity, 0, (uint64_t)(uintptr_t)slots};
    for (size_t i = 0; i < set->capacity; ++i)
      if (set->slots[i])
        setPut(&grown, set->slots[i]);
    free(set->slots);
    *set = grown;
  }
  setPut(set, s);
  return 1;
}

/*===-- The handler ------------------------------------------------------===*/

typedef enum Where { Start, Root, Entry, Shape, Offsets, Metadata, Done } Where;
typedef enum Field { Dtype, ShapeField, DataOffsets, kFieldCount } Field;
static const char *const kFieldNames[kFieldCount] = {"dtype", "shape", "data_offsets"};

typedef struct Handler {
  const char *path;
  kiln_status_t status; /* the first failure */
  kiln_arena_block_t *arena;
  kiln_tensor_entry_t *tensors;
  size_t tensorCount, tensorCapacity;
  kiln_metadata_entry_t *metadata;
  size_t metadataCount, metadataCapacity;
  StringSet names, metadataKeys;

  Where where;
  const char *key;  /* latest key of the root or metadata object (arena) */
  Field field;      /* latest key inside a tensor entry */
  unsigned fields;  /* bit per Field seen in the current entry */
  kiln_tensor_entry_t entry; /* the entry being read */
  int64_t shape[KILN_MAX_RANK];
  char *dtypeName; /* malloc'ed; may hold a NUL */
  size_t dtypeLength;
  uint64_t offsets[2];
  size_t offsetCount;
} Handler;

/* Records the failure `text` (malloc'ed; NULL means memory ran out) with the
 * path in front, unless one is recorded already. Returns false, to stop. */
static bool failWith(Handler *h, kiln_status_code_t code, char *text) {
  if (!h->status)
    h->status = text ? kiln_status_make(code, "%s: %s", h->path, text)
                     : kiln_status_out_of_memory();
  free(text);
  return false;
}

static bool outOfMemory(Handler *h) { return failWith(h, KILN_OUT_OF_MEMORY, NULL); }

/* How messages name the root key `key`: "tensor 'w'" or "'__metadata__'";
 * malloc'ed, NULL if memory ran out. */
static char *describeRootKey(const char *key) {
  return strcmp(key, "__metadata__") == 0 ? kiln_format("'__metadata__'")
                                          : kiln_format("tensor '%s'", key);
}

/* Where we are, for messages: "tensor 'fc1.weight': field 'dtype'";
 * malloc'ed, NULL if memory ran out. */
static char *subject(const Handler *h) {
  switch (h->where) {
  case Root: return describeRootKey(h->key);
  case Entry:
    return kiln_format("tensor '%s': field '%s'", h->entry.name, kFieldNames[h->field]);
  case Shape: return kiln_format("tensor '%s': shape", h->entry.name);
  case Offsets: return kiln_format("tensor '%s': data_offsets", h->entry.name);
  case Metadata: return kiln_format("__metadata__: value of '%s'", h->key);
  case Start:
  case Done: break;
  }
  return kiln_format("header");
}

static const char *expected(const Handler *h) {
  switch (h->where) {
  case Start: return "a JSON object";
  case Root: return "an object";
  case Entry: return h->field == Dtype ? "a string" : "an array";
  case Shape:
  case Offsets: return "a non-negative integer";
  case Metadata: return "a string";
  case Done: break;
  }
  return "nothing";
}

/* `found` where the schema wants something else. */
static bool wrongType(Handler *h, const char *found) {
  char *what = subject(h);
  if (!what)
    return outOfMemory(h);
  char *text;
  if (h->where == Shape || h->where == Offsets)
    text = kiln_format("%s must contain only non-negative integers, not %s", what, found);
  else
    text = kiln_format("%s must be %s, not %s", what, expected(h), found);
  free(what);
  return failWith(h, KILN_DATA_LOSS, text);
}

static bool onNumber(void *context, const kiln_json_number_t *number) {
  Handler *h = context;
  if (h->where != Shape && h->where != Offsets)
    return wrongType(h, "a number");
  char *what = subject(h);
  if (!what)
    return outOfMemory(h);
  char *text = NULL;
  if (number->kind == KILN_JSON_NEGATIVE) /* "-0" included: not a count */
    text = kiln_format("%s has a negative entry %.*s", what, (int)number->length,
                       number->text);
  else if (number->kind == KILN_JSON_FLOAT)
    text = kiln_format("%s has a non-integer entry %.*s%s", what,
                       number->length > 64 ? 64 : (int)number->length, number->text,
                       number->length > 64 ? "..." : "");
  else if (h->where == Shape && number->unsigned_value > (uint64_t)INT64_MAX)
    text = kiln_format("%s has an entry %" PRIu64 " above 2^63-1", what,
                       number->unsigned_value);
  else if (h->where == Shape && h->entry.rank == KILN_MAX_RANK)
    text = kiln_format("%s has more than %d dimensions", what, KILN_MAX_RANK);
  else if (h->where == Offsets && h->offsetCount == 2)
    text = kiln_format("%s must have exactly 2 entries", what);
  else if (h->where == Shape) {
    h->shape[h->entry.rank++] = (int64_t)number->unsigned_value;
    free(what);
    return true;
  } else {
    h->offsets[h->offsetCount++] = number->unsigned_value;
    free(what);
    return true;
  }
  free(what);
  return failWith(h, KILN_DATA_LOSS, text);
}

static bool onNull(void *context) { return wrongType(context, "null"); }
static bool onBoolean(void *context, bool value) {
  (void)value;
  return wrongType(context, "a boolean");
}

/* Room for one more element in a growing array of `size`-byte elements:
 * the array itself, or a copy with `*capacity` doubled (from `initial`) when
 * `count` reached it. NULL when out of memory (or the size would overflow);
 * the array is then unchanged. */
static void *reserve(void *array, size_t *capacity, size_t count, size_t size,
                     size_t initial) {
  if (count < *capacity)
    return array;
  size_t grown = *capacity ? 2 * *capacity : initial;
  void *p = grown < SIZE_MAX / size ? realloc(array, grown * size) : NULL;
  if (p)
    *capacity = grown;
  return p;
}

static bool onString(void *context, const char *text, size_t length) {
  Handler *h = context;
  if (h->where == Metadata) {
    kiln_metadata_entry_t *metadata = reserve(h->metadata, &h->metadataCapacity,
                                              h->metadataCount, sizeof *metadata, 8);
    if (!metadata)
      return outOfMemory(h);
    h->metadata = metadata;
    const char *value = arenaCopy(&h->arena, text, length);
    if (!value)
      return outOfMemory(h);
    h->metadata[h->metadataCount++] = (kiln_metadata_entry_t){h->key, value};
    return true;
  }
  if (h->where == Entry && h->field == Dtype) {
    char *copy = malloc(length + 1);
    if (!copy)
      return outOfMemory(h);
    memcpy(copy, text, length + 1);
    free(h->dtypeName);
    h->dtypeName = copy;
    h->dtypeLength = length;
    return true;
  }
  return wrongType(h, "a string");
}

static bool onStartObject(void *context) {
  Handler *h = context;
  if (h->where == Start) {
    h->where = Root;
    return true;
  }
  if (h->where != Root)
    return wrongType(h, "an object");
  if (strcmp(h->key, "__metadata__") == 0) {
    h->where = Metadata;
    return true;
  }
  h->entry = (kiln_tensor_entry_t){.name = h->key};
  h->fields = 0;
  h->where = Entry;
  return true;
}

static bool finishEntry(Handler *h) {
  kiln_tensor_entry_t *e = &h->entry;
  for (int f = 0; f < kFieldCount; ++f)
    if (!(h->fields & 1u << f))
      return failWith(h, KILN_DATA_LOSS, kiln_format("tensor '%s': missing field '%s'",
                                                     e->name, kFieldNames[f]));
  if (!kiln_dtype_from_name(h->dtypeName, h->dtypeLength, &e->dtype)) {
    /* Float8 is a real safetensors dtype that Kiln cannot compute with yet;
     * anything else is not safetensors at all. */
    bool known = h->dtypeLength == 7 && (memcmp(h->dtypeName, "F8_E4M3", 7) == 0 ||
                                         memcmp(h->dtypeName, "F8_E5M2", 7) == 0);
    return failWith(h, known ? KILN_UNIMPLEMENTED : KILN_DATA_LOSS,
                    kiln_format("tensor '%s': %s dtype '%s'", e->name,
                                known ? "unsupported" : "unknown", h->dtypeName));
  }
  int64_t *shape = arenaAllocate(&h->arena, e->rank * sizeof *shape);
  if (!shape)
    return outOfMemory(h);
  memcpy(shape, h->shape, e->rank * sizeof *shape);
  e->shape = shape;
  e->begin = h->offsets[0];
  e->end = h->offsets[1];
  kiln_tensor_entry_t *tensors =
      reserve(h->tensors, &h->tensorCapacity, h->tensorCount, sizeof *tensors, 16);
  if (!tensors)
    return outOfMemory(h);
  h->tensors = tensors;
  h->tensors[h->tensorCount++] = *e;
  return true;
}

static bool onEndObject(void *context) {
  Handler *h = context;
  switch (h->where) {
  case Metadata:
    h->where = Root;
    return true;
  case Entry:
    h->where = Root;
    return finishEntry(h);
  default: /* Root: the parser itself rejects anything after the last '}' */
    h->where = Done;
    return true;
  }
}

static bool onStartArray(void *context) {
  Handler *h = context;
  if (h->where == Entry && h->field == ShapeField) {
    h->where = Shape;
    return true;
  }
  if (h->where == Entry && h->field == DataOffsets) {
    h->where = Offsets;
    h->offsetCount = 0;
    return true;
  }
  return wrongType(h, "an array");
}

static bool onEndArray(void *context) {
  Handler *h = context;
  if (h->where == Offsets && h->offsetCount != 2)
    return failWith(h, KILN_DATA_LOSS,
                    kiln_format("tensor '%s': data_offsets must have exactly 2 entries",
                                h->entry.name));
  h->where = Entry;
  return true;
}

/* Adds the arena copy `key` to `set`; false (with the failure recorded) if
 * it was there already or memory ran out. */
static bool addKey(Handler *h, StringSet *set, const char *key, char *duplicateText) {
  int added = setInsert(set, key);
  if (added == 1) {
    free(duplicateText);
    return true;
  }
  if (added < 0) {
    free(duplicateText);
    return outOfMemory(h);
  }
  return failWith(h, KILN_DATA_LOSS, duplicateText);
}

static bool onKey(void *context, const char *text, size_t length) {
  Handler *h = context;
  /* Names reach C callers as C strings; an embedded NUL would make two
   * distinct names look alike there. */
  if (strlen(text) != length)
    return failWith(h, KILN_DATA_LOSS,
                    kiln_format("key '%s\\u0000...' contains a NUL character", text));
  if (h->where == Entry) {
    Field field = kFieldCount;
    for (int f = 0; f < kFieldCount; ++f)
      if (strcmp(text, kFieldNames[f]) == 0)
        field = (Field)f;
    if (field == kFieldCount)
      return failWith(h, KILN_DATA_LOSS,
                      kiln_format("tensor '%s': unexpected field '%s' (allowed: "
                                  "dtype, shape, data_offsets)", h->entry.name, text));
    if (h->fields & 1u << field)
      return failWith(h, KILN_DATA_LOSS,
                      kiln_format("tensor '%s': field '%s' appears twice",
                                  h->entry.name, text));
    h->fields |= 1u << field;
    h->field = field;
    return true;
  }
  const char *key = arenaCopy(&h->arena, text, length);
  if (!key)
    return outOfMemory(h);
  if (h->where == Root) {
    if (length == 0)
      return failWith(h, KILN_DATA_LOSS, kiln_format("a tensor has an empty name"));
    char *who = describeRootKey(key);
    char *duplicate = who ? kiln_format("%s appears twice", who) : NULL;
    free(who);
    if (!duplicate)
      return outOfMemory(h);
    if (!addKey(h, &h->names, key, duplicate))
      return false;
  } else { /* Metadata */
    char *duplicate = kiln_format("__metadata__: key '%s' appears twice", key);
    if (!duplicate)
      return outOfMemory(h);
    if (!addKey(h, &h->metadataKeys, key, duplicate))
      return false;
  }
  h->key = key;
  return true;
}

/*===-- Checks of the whole --------------------------------------------===*/

/* Checks one entry's byte range against its shape and the buffer size;
 * NULL if it is fine, else the failure. */
static kiln_status_t checkEntry(const char *path, kiln_tensor_entry_t *t,
                                uint64_t dataSize) {
  if (t->begin > t->end)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] begin after they end", path, t->name, t->begin, t->end);
  if (t->end > dataSize)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] run past the end of the data buffer (%" PRIu64
                            " bytes; is the file truncated?)",
                            path, t->name, t->begin, t->end, dataSize);
  uint64_t count = 1, bytes = 0;
  bool overflows = false;
  for (size_t i = 0; i < t->rank; ++i) /* extents are >= 0 (parsed unsigned) */
    overflows = overflows || __builtin_mul_overflow(count, (uint64_t)t->shape[i], &count);
  overflows = overflows || __builtin_mul_overflow(count, kiln_dtype_size(t->dtype), &bytes);
  char shape[KILN_SHAPE_TEXT_SIZE];
  if (overflows)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: tensor '%s': shape %s of %s overflows a 64-bit byte count",
                            path, t->name, kiln_format_shape(t->shape, t->rank, shape),
                            kiln_dtype_name(t->dtype));
  if (bytes != t->end - t->begin)
    return kiln_status_make(KILN_DATA_LOSS,
                            "%s: tensor '%s': shape %s of %s needs %" PRIu64
                            " bytes but data_offsets span %" PRIu64,
                            path, t->name, kiln_format_shape(t->shape, t->rank, shape),
                            kiln_dtype_name(t->dtype), bytes, t->end - t->begin);
  t->count = count;
  return NULL;
}

/* By byte range, then by name, so that equal ranges report the same way on
 * every run. */
static int compareByOffset(const void *a, const void *b) {
  const kiln_tensor_entry_t *x = *(const kiln_tensor_entry_t *const *)a;
  const kiln_tensor_entry_t *y = *(const kiln_tensor_entry_t *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* The ranges must tile [0, dataSize) exactly: a hole or trailing bytes would
 * be data no tensor owns, an overlap would let two tensors alias. */
static kiln_status_t checkTiling(const char *path, const kiln_tensor_entry_t *tensors,
                                 size_t n, uint64_t dataSize) {
  const kiln_tensor_entry_t **byOffset =
      n < SIZE_MAX / sizeof *byOffset ? malloc((n ? n : 1) * sizeof *byOffset) : NULL;
  if (!byOffset)
    return kiln_status_out_of_memory();
  for (size_t i = 0; i < n; ++i)
    byOffset[i] = &tensors[i];
  qsort(byOffset, n, sizeof *byOffset, compareByOffset);
  uint64_t covered = 0;
  const kiln_tensor_entry_t *previous = NULL;
  kiln_status_t status = NULL;
  for (size_t i = 0; i < n && !status; ++i) {
    const kiln_tensor_entry_t *t = byOffset[i];
    if (t->begin < covered)
      status = kiln_status_make(
          KILN_DATA_LOSS,
          "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor "
          "'%s' [%" PRIu64 ", %" PRIu64 "]",
          path, t->name, t->begin, t->end, previous->name, previous->begin, previous->end);
    else if (t->begin > covered)
      status = kiln_status_make(
          KILN_DATA_LOSS,
          "%s: tensor '%s': data_offsets begin at %" PRIu64 ", leaving bytes [%" PRIu64
          ", %" PRIu64 ") of the data buffer unused",
          path, t->name, t->begin, covered, t->begin);
    covered = t->end;
    previous = t;
  }
  free(byOffset);
  if (!status && covered != dataSize)
    status = kiln_status_make(KILN_DATA_LOSS,
                              "%s: tensors cover %" PRIu64 " bytes of the data buffer "
                              "but it has %" PRIu64
                              " (trailing bytes after the last tensor)",
                              path, covered, dataSize);
  return status;
}

static int compareByName(const void *a, const void *b) {
  return strcmp(((const kiln_tensor_entry_t *)a)->name,
                ((const kiln_tensor_entry_t *)b)->name);
}

static int compareByKey(const void *a, const void *b) {
  return strcmp(((const kiln_metadata_entry_t *)a)->key,
                ((const kiln_metadata_entry_t *)b)->key);
}

static kiln_status_t parseAndCheck(Handler *h, const char *json, size_t size,
                                   uint64_t dataSize) {
  static const kiln_json_handler_t callbacks = {
      onStartObject, onEndObject, onStartArray, onEndArray, onKey,
      onString,      onNumber,    onBoolean,    onNull};
  char *error = NULL;
  kiln_json_result_t result = kiln_json_parse(json, size, &callbacks, h, &error);
  if (result == KILN_JSON_INVALID)
    failWith(h, KILN_DATA_LOSS, kiln_format("header is not valid JSON: %s", error));
  else if (result == KILN_JSON_OUT_OF_MEMORY)
    outOfMemory(h);
  free(error);
  if (h->status)
    return h->status;
  for (size_t i = 0; i < h->tensorCount; ++i)
    KILN_RETURN_IF_ERROR(checkEntry(h->path, &h->tensors[i], dataSize));
  KILN_RETURN_IF_ERROR(checkTiling(h->path, h->tensors, h->tensorCount, dataSize));
  if (h->tensorCount) /* qsort wants a non-NULL array even when empty */
    qsort(h->tensors, h->tensorCount, sizeof *h->tensors, compareByName);
  if (h->metadataCount)
    qsort(h->metadata, h->metadataCount, sizeof *h->metadata, compareByKey);
  return NULL;
}

kiln_status_t kiln_safetensors_header_parse(const char *path, const char *json,
                                            size_t size, uint64_t data_size,
                                            kiln_safetensors_header_t *out) {
  Handler h = {.path = path, .where = Start};
  kiln_status_t status = parseAndCheck(&h, json, size, data_size);
  free(h.names.slots);
  free(h.metadataKeys.slots);
  free(h.dtypeName);
  if (status) {
    free(h.tensors);
    free(h.metadata);
    arenaFree(h.arena);
    *out = (kiln_safetensors_header_t){0};
    return status;
  }
  *out = (kiln_safetensors_header_t){h.tensors, h.tensorCount, h.metadata,
                                     h.metadataCount, h.arena};
  return NULL;
}

void kiln_safetensors_header_free(kiln_safetensors_header_t *header) {
  free(header->tensors);
  free(header->metadata);
  arenaFree(header->arena);
  *header = (kiln_safetensors_header_t){0};
}
