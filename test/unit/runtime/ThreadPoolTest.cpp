//===- ThreadPoolTest.cpp - the parallel loops of generated code ----------===//
#include "kiln/runtime/thread_pool.h"

#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

/// Counts, per index, how often a task ran; the closure is the Loop.
struct Loop {
  int min = 0;
  std::vector<std::atomic<int>> runs;
  explicit Loop(int size, int min = 0) : min(min), runs(size) {}
  uint8_t *closure() { return reinterpret_cast<uint8_t *>(this); }
  bool eachOnce() const {
    for (const std::atomic<int> &count : runs)
      if (count.load() != 1)
        return false;
    return true;
  }
};

int countTask(void *, int index, uint8_t *closure) {
  Loop *loop = reinterpret_cast<Loop *>(closure);
  loop->runs[index - loop->min].fetch_add(1);
  return 0;
}

int runLoop(Loop &loop) {
  return kiln_thread_pool_run(nullptr, countTask, loop.min, static_cast<int>(loop.runs.size()),
                              loop.closure());
}

TEST(ThreadPoolTest, ParallelLoopRunsEveryTaskOnce) {
  kiln_thread_pool_set_threads(3);
  for (int size : {1, 2, 3, 7, 64, 1000}) {
    Loop loop(size, /*min=*/-5);
    EXPECT_EQ(runLoop(loop), 0);
    EXPECT_TRUE(loop.eachOnce()) << "size " << size;
  }
}

TEST(ThreadPoolTest, EmptyLoopRunsNothing) {
  Loop loop(1);
  EXPECT_EQ(kiln_thread_pool_run(nullptr, countTask, 0, 0, loop.closure()), 0);
  EXPECT_EQ(kiln_thread_pool_run(nullptr, countTask, 0, -3, loop.closure()), 0);
  EXPECT_EQ(loop.runs[0].load(), 0);
}

/// Each outer task runs an inner loop and checks that every inner task ran
/// on the outer task's own thread.
struct Nested {
  std::atomic<int> innerTasks{0}, elsewhere{0};
};

struct Inner {
  Nested *nested;
  pthread_t thread;
};

int innerTask(void *, int, uint8_t *closure) {
  Inner *inner = reinterpret_cast<Inner *>(closure);
  if (!pthread_equal(inner->thread, pthread_self()))
    inner->nested->elsewhere.fetch_add(1);
  inner->nested->innerTasks.fetch_add(1);
  return 0;
}

int outerTask(void *, int, uint8_t *closure) {
  Inner inner{reinterpret_cast<Nested *>(closure), pthread_self()};
  return kiln_thread_pool_run(nullptr, innerTask, 0, 16, reinterpret_cast<uint8_t *>(&inner));
}

TEST(ThreadPoolTest, NestedLoopsRunOnTheCaller) {
  kiln_thread_pool_set_threads(4);
  Nested nested;
  EXPECT_EQ(kiln_thread_pool_run(nullptr, outerTask, 0, 8, reinterpret_cast<uint8_t *>(&nested)),
            0);
  EXPECT_EQ(nested.innerTasks.load(), 8 * 16);
  EXPECT_EQ(nested.elsewhere.load(), 0);
}

TEST(ThreadPoolTest, ThreadCountChanges) {
  for (int threads : {1, 4, 2, 1, 3}) {
    kiln_thread_pool_set_threads(threads);
    EXPECT_EQ(kiln_thread_pool_threads(), threads);
    Loop loop(257);
    EXPECT_EQ(runLoop(loop), 0);
    EXPECT_TRUE(loop.eachOnce()) << threads << " threads";
  }
  // 0: the cores this process may run on.
  kiln_thread_pool_set_threads(0);
  unsigned cores = std::thread::hardware_concurrency();
  EXPECT_GE(kiln_thread_pool_threads(), 1);
  if (cores > 0) {
    EXPECT_LE(kiln_thread_pool_threads(), static_cast<int>(cores));
  }
}

int failingTask(void *, int index, uint8_t *closure) {
  Loop *loop = reinterpret_cast<Loop *>(closure);
  loop->runs[index].fetch_add(1);
  return index == 13 ? -7 : 0;
}

TEST(ThreadPoolTest, ErrorsFromTasksPropagate) {
  for (int threads : {1, 3}) {
    kiln_thread_pool_set_threads(threads);
    Loop loop(100);
    EXPECT_EQ(kiln_thread_pool_run(nullptr, failingTask, 0, 100, loop.closure()), -7);
    // As in Halide's pool, the other tasks still ran.
    EXPECT_TRUE(loop.eachOnce());
    // The next loop starts clean.
    Loop next(100);
    EXPECT_EQ(runLoop(next), 0);
  }
}

int contextTask(void *user_context, int index, uint8_t *closure) {
  std::atomic<int> *seen = reinterpret_cast<std::atomic<int> *>(closure);
  if (user_context == &seen[0])
    seen[1 + index].fetch_add(1);
  return 0;
}

TEST(ThreadPoolTest, TasksGetTheUserContext) {
  kiln_thread_pool_set_threads(2);
  std::vector<std::atomic<int>> seen(1 + 32);
  EXPECT_EQ(kiln_thread_pool_run(&seen[0], contextTask, 0, 32,
                                 reinterpret_cast<uint8_t *>(seen.data())),
            0);
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(seen[1 + i].load(), 1) << i;
}

TEST(ThreadPoolTest, LoopsFromSeveralThreadsAtOnce) {
  kiln_thread_pool_set_threads(3);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Loop loop(1 + (i * 7 + t) % 50);
        if (runLoop(loop) != 0 || !loop.eachOnce())
          wrong.fetch_add(1);
      }
    });
  for (std::thread &caller : callers)
    caller.join();
  EXPECT_EQ(wrong.load(), 0);
}

} // namespace
