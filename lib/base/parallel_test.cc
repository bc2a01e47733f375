#include "lib/base/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <vector>

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

}  // namespace
}  // namespace cairn
