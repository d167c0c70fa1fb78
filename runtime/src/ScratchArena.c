/*===- ScratchArena.c - the per-thread scratch arena ---------------------===*
 *
 * The arena's state is two thread-local globals, never statics: kilnc makes
 * every kiln_scratch_arena_* symbol weak in each model's object so that the
 * models of one program share them (scratch_arena.h).
 *
 *===----------------------------------------------------------------------===*/
#include "kiln/runtime/scratch_arena.h"

#include <stdlib.h>

_Thread_local char *kiln_scratch_arena_memory;
_Thread_local size_t kiln_scratch_arena_size;

void *kiln_scratch_arena_data(void) { return kiln_scratch_arena_memory; }

size_t kiln_scratch_arena_capacity(void) { return kiln_scratch_arena_size; }

bool kiln_scratch_arena_reserve(size_t size) {
  if (size <= kiln_scratch_arena_size)
    return true;
  size_t rounded = (size + KILN_SCRATCH_ARENA_ALIGNMENT - 1) / KILN_SCRATCH_ARENA_ALIGNMENT *
                   KILN_SCRATCH_ARENA_ALIGNMENT;
  if (rounded < size) /* wrapped around: no such allocation is possible */
    return false;
  char *bigger = (char *)aligned_alloc(KILN_SCRATCH_ARENA_ALIGNMENT, rounded);
  if (!bigger)
    return false;
  free(kiln_scratch_arena_memory);
  kiln_scratch_arena_memory = bigger;
  kiln_scratch_arena_size = rounded;
  return true;
}

void kiln_scratch_arena_release(void) {
  free(kiln_scratch_arena_memory);
  kiln_scratch_arena_memory = NULL;
  kiln_scratch_arena_size = 0;
}
