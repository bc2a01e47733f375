#include "lib/base/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <vector>

#include "lib/base/thread.h"

namespace cairn {
namespace {

TEST(ParallelRunnerTest, RunsEveryIterationOnceWithDistinctSlots) {
  for (unsigned threads : {1u, 2u, 4u}) {
    ParallelRunner runner(threads);
    EXPECT_EQ(runner.threads(), threads);
    for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{1000}}) {
      std::vector<std::atomic<int>> runs(n);
      std::vector<std::atomic<int>> in_slot(threads);
      std::atomic<bool> shared_slot{false};
      runner.For(n, [&](unsigned slot, size_t i) {
        ASSERT_LT(slot, threads);
        if (in_slot[slot].fetch_add(1) != 0) shared_slot = true;
        runs[i]++;
        in_slot[slot].fetch_sub(1);
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(runs[i].load(), 1) << i;
      EXPECT_FALSE(shared_slot.load());
    }
  }
}

TEST(ParallelRunnerTest, UsesTheHelpersForSlowIterations) {
  ParallelRunner runner(2);
  std::mutex mu;
  std::set<unsigned> slots;
  for (int round = 0; round < 20 && slots.size() < 2; ++round) {
    runner.For(4, [&](unsigned slot, size_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::lock_guard lock(mu);
      slots.insert(slot);
    });
  }
  EXPECT_EQ(slots.size(), 2u);
}

TEST(ParallelRunnerTest, RunsOnTheThreadsThereAreWhenHelpersCannotStart) {
  internal::FailThreadStartsForTest(1);
  ParallelRunner runner(4);
  internal::FailThreadStartsForTest(0);
  EXPECT_EQ(runner.threads(), 1u);
  std::vector<std::atomic<int>> runs(100);
  runner.For(runs.size(), [&](unsigned slot, size_t i) {
    EXPECT_EQ(slot, 0u);
    runs[i]++;
  });
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].load(), 1) << i;
}

TEST(StartThreadTest, ReportsAThreadThatCannotStart) {
  internal::FailThreadStartsForTest(1);
  bool ran = false;
  Result<std::thread> failed = StartThread("the test's thread", [&] { ran = true; });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kIOError);
  EXPECT_NE(failed.status().message().find("cannot start the test's thread: Resource temporarily "
                                           "unavailable"),
            std::string::npos)
      << failed.status().ToString();
  Result<std::thread> started = StartThread("the test's thread", [&] { ran = true; });
  ASSERT_TRUE(started.ok());
  started->join();
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace cairn
