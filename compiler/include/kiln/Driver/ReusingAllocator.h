//===- ReusingAllocator.h - a JIT pipeline's memory, kept across calls -*- C++ -*-===//
//
// A JIT-compiled Halide pipeline allocates its intermediate buffers on
// every call (halide_malloc) and frees them at its end: a training step of
// mlp_bn made 42 allocations a step. This allocator, installed as the
// pipeline's custom_malloc/custom_free through a JITUserContext, keeps
// every freed block and hands it out again to a request of the same size,
// so a step that repeats the previous one's requests (the same batch
// size) allocates nothing from the system. What it holds is what one
// step used at its peak, per batch size seen; it is freed with the
// allocator. Thread-safe: Halide may allocate from its worker threads.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DRIVER_REUSINGALLOCATOR_H
#define KILN_DRIVER_REUSINGALLOCATOR_H

#include <Halide.h>

#include <cstddef>
#include <map>
#include <mutex>

namespace kiln {

class ReusingAllocator {
public:
  ReusingAllocator();
  ~ReusingAllocator();
  ReusingAllocator(const ReusingAllocator &) = delete;
  ReusingAllocator &operator=(const ReusingAllocator &) = delete;

  /// What to pass to Pipeline::realize (LoweredModel::realize).
  Halide::JITUserContext *context() { return &context_.halide; }
  /// Blocks taken from the system so far.
  size_t systemAllocations() const;

private:
  static void *allocate(Halide::JITUserContext *context, size_t size);
  static void release(Halide::JITUserContext *context, void *block);

  struct Context {
    Halide::JITUserContext halide; // first: the runtime passes its address
    ReusingAllocator *owner;
  } context_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void *> free_;  // by size
  std::map<void *, size_t> sizes_;      // every block, in use or free
  size_t systemAllocations_ = 0;
};

} // namespace kiln

#endif // KILN_DRIVER_REUSINGALLOCATOR_H
