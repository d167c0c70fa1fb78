//===- ScratchArenaTest.cpp - the scratch arena and a call's context ------===//
#include "kiln/runtime/call.h"
#include "kiln/runtime/scratch_arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>

// The Halide runtime's functions that the model runtime replaces.
extern "C" {
void *halide_malloc(void *user_context, size_t size);
void halide_free(void *user_context, void *ptr);
void halide_error(void *user_context, const char *message);
void halide_print(void *user_context, const char *message);
}

namespace {

bool inArena(const void *ptr) {
  const char *data = static_cast<const char *>(kiln_scratch_arena_data());
  const char *p = static_cast<const char *>(ptr);
  return data && p >= data && p < data + kiln_scratch_arena_capacity();
}

bool aligned(const void *ptr) {
  return reinterpret_cast<uintptr_t>(ptr) % KILN_SCRATCH_ARENA_ALIGNMENT == 0;
}

class ScratchArenaTest : public ::testing::Test {
protected:
  void SetUp() override { kiln_scratch_arena_release(); }
  void TearDown() override { kiln_scratch_arena_release(); }

  /// One call allocating blocks of `sizes`; how many came from the arena.
  int call(std::initializer_list<size_t> sizes) {
    kiln_call_t call;
    kiln_call_begin(&call);
    std::vector<void *> blocks;
    int fromArena = 0;
    for (size_t size : sizes) {
      void *block = kiln_call_malloc(&call, size);
      EXPECT_NE(block, nullptr);
      EXPECT_TRUE(aligned(block));
      fromArena += inArena(block);
      blocks.push_back(block);
    }
    for (void *block : blocks)
      kiln_call_free(&call, block);
    kiln_call_end(&call);
    return fromArena;
  }
};

TEST_F(ScratchArenaTest, FirstCallSizesTheArenaNextCallsAllocateNothing) {
  EXPECT_EQ(kiln_scratch_arena_capacity(), 0u);
  EXPECT_EQ(call({1000, 5000, 1}), 0); // no arena yet: all from the heap
  // Blocks are rounded to the alignment: 1024 + 5120 + 128.
  EXPECT_EQ(kiln_scratch_arena_capacity(), 1024u + 5120u + 128u);
  void *data = kiln_scratch_arena_data();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(call({1000, 5000, 1}), 3);
  // Nothing was reallocated.
  EXPECT_EQ(kiln_scratch_arena_data(), data);
}

TEST_F(ScratchArenaTest, SmallerCallsFitWithoutGrowth) {
  call({4096, 4096});
  size_t capacity = kiln_scratch_arena_capacity();
  void *data = kiln_scratch_arena_data();
  EXPECT_EQ(call({100, 200, 300}), 3);
  EXPECT_EQ(kiln_scratch_arena_capacity(), capacity);
  EXPECT_EQ(kiln_scratch_arena_data(), data);
}

TEST_F(ScratchArenaTest, LargerCallGrowsTheArena) {
  call({1024});
  EXPECT_EQ(kiln_scratch_arena_capacity(), 1024u);
  // The first block fits the old arena; the second does not.
  EXPECT_EQ(call({1024, 4096}), 1);
  EXPECT_EQ(kiln_scratch_arena_capacity(), 1024u + 4096u);
  EXPECT_EQ(call({1024, 4096}), 2);
}

TEST_F(ScratchArenaTest, ReleaseFreesTheArena) {
  call({4096});
  EXPECT_NE(kiln_scratch_arena_data(), nullptr);
  kiln_scratch_arena_release();
  EXPECT_EQ(kiln_scratch_arena_data(), nullptr);
  EXPECT_EQ(kiln_scratch_arena_capacity(), 0u);
  EXPECT_EQ(call({4096}), 0);
  EXPECT_EQ(kiln_scratch_arena_capacity(), 4096u);
}

TEST_F(ScratchArenaTest, EachThreadHasItsOwnArena) {
  call({4096});
  size_t other = 1;
  std::thread([&] { other = kiln_scratch_arena_capacity(); }).join();
  EXPECT_EQ(other, 0u);
  EXPECT_EQ(kiln_scratch_arena_capacity(), 4096u);
}

TEST_F(ScratchArenaTest, ReserveRefusesImpossibleSizes) {
  EXPECT_TRUE(kiln_scratch_arena_reserve(100));
  EXPECT_EQ(kiln_scratch_arena_capacity(), 128u);
  EXPECT_FALSE(kiln_scratch_arena_reserve(SIZE_MAX));
  EXPECT_EQ(kiln_scratch_arena_capacity(), 128u);
  EXPECT_TRUE(kiln_scratch_arena_reserve(50)); // already large enough
  EXPECT_EQ(kiln_scratch_arena_capacity(), 128u);
}

TEST_F(ScratchArenaTest, HalideHooksServeKilnCallsFromTheArena) {
  call({2048});
  kiln_call_t call;
  kiln_call_begin(&call);
  void *block = halide_malloc(&call, 2000);
  EXPECT_TRUE(inArena(block));
  halide_free(&call, block);
  kiln_call_end(&call);
}

TEST_F(ScratchArenaTest, OtherContextsAllocateFromTheHeap) {
  call({2048});
  int notACall = 0;
  for (void *context : {static_cast<void *>(nullptr), static_cast<void *>(&notACall)}) {
    void *block = halide_malloc(context, 100);
    ASSERT_NE(block, nullptr);
    EXPECT_FALSE(inArena(block));
    EXPECT_TRUE(aligned(block));
    halide_free(context, block);
  }
}

TEST_F(ScratchArenaTest, FirstErrorOfACallIsKept) {
  kiln_call_t call;
  kiln_call_begin(&call);
  EXPECT_EQ(kiln_call_of(&call), &call);
  EXPECT_STREQ(call.message, "");
  halide_error(&call, "Input buffer input is accessed at -1");
  halide_error(&call, "a later error");
  EXPECT_STREQ(call.message, "Input buffer input is accessed at -1");
  kiln_call_end(&call);
  // A new call starts without an error.
  kiln_call_begin(&call);
  EXPECT_STREQ(call.message, "");
  kiln_call_end(&call);
}

TEST_F(ScratchArenaTest, LongErrorsAreCut) {
  kiln_call_t call;
  kiln_call_begin(&call);
  std::string longMessage(4 * KILN_CALL_MESSAGE_SIZE, 'x');
  kiln_call_error(&call, longMessage.c_str());
  EXPECT_EQ(std::string(call.message), longMessage.substr(0, KILN_CALL_MESSAGE_SIZE - 1));
  kiln_call_end(&call);
}

TEST_F(ScratchArenaTest, ErrorsAndPrintsWithoutACallGoNowhere) {
  int notACall = 0;
  EXPECT_EQ(kiln_call_of(nullptr), nullptr);
  EXPECT_EQ(kiln_call_of(&notACall), nullptr);
  testing::internal::CaptureStderr();
  testing::internal::CaptureStdout();
  halide_error(nullptr, "dropped");
  halide_error(&notACall, "dropped");
  halide_print(nullptr, "not printed");
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

} // namespace
