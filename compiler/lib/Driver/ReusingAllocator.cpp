//===- ReusingAllocator.cpp - a JIT pipeline's memory, kept across calls --===//
#include "kiln/Driver/ReusingAllocator.h"

#include <cstdlib>

namespace kiln {

namespace {
/// Halide's own halide_malloc aligns to 128 bytes (its vector loads of
/// aligned buffers assume at least the widest vector's alignment).
constexpr size_t kAlignment = 128;
} // namespace

ReusingAllocator::ReusingAllocator() {
  context_.owner = this;
  context_.halide.handlers.custom_malloc = allocate;
  context_.halide.handlers.custom_free = release;
}

ReusingAllocator::~ReusingAllocator() {
  for (auto &[block, size] : sizes_)
    std::free(block);
}

size_t ReusingAllocator::systemAllocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return systemAllocations_;
}

void *ReusingAllocator::allocate(Halide::JITUserContext *context, size_t size) {
  ReusingAllocator &self = *reinterpret_cast<Context *>(context)->owner;
  std::lock_guard<std::mutex> lock(self.mutex_);
  auto reused = self.free_.find(size);
  if (reused != self.free_.end()) {
    void *block = reused->second;
    self.free_.erase(reused);
    return block;
  }
  size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void *block = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (!block)
    return nullptr; // Halide reports the failed allocation
  self.sizes_[block] = size;
  ++self.systemAllocations_;
  return block;
}

void ReusingAllocator::release(Halide::JITUserContext *context, void *block) {
  if (!block)
    return;
  ReusingAllocator &self = *reinterpret_cast<Context *>(context)->owner;
  std::lock_guard<std::mutex> lock(self.mutex_);
  auto known = self.sizes_.find(block);
  if (known != self.sizes_.end())
    self.free_.emplace(known->second, block);
}

} // namespace kiln
