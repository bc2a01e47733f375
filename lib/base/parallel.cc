#include "lib/base/parallel.h"

#include <algorithm>

#include "lib/base/thread.h"

namespace cairn {

ParallelRunner::ParallelRunner(unsigned threads) {
  // A helper that cannot be started only means fewer of them: the loop
  // still runs, on the threads there are.
  helpers_ = StartThreads("a helper thread", std::max(1u, threads) - 1,
                          [this](size_t i) { Help(static_cast<unsigned>(i) + 1); });
}

ParallelRunner::~ParallelRunner() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : helpers_) t.join();
}

void ParallelRunner::For(size_t n, const std::function<void(unsigned, size_t)>& fn) {
  if (n == 0) return;
  if (helpers_.empty() || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(0, i);
    return;
  }
  {
    std::lock_guard lock(mu_);
    fn_ = &fn;
    n_ = n;
    next_ = 0;
    ++generation_;
  }
  start_cv_.notify_all();
  Work(0);
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return busy_ == 0; });
  fn_ = nullptr;
}

void ParallelRunner::Help(unsigned slot) {
  uint64_t seen = 0;
  std::unique_lock lock(mu_);
  while (true) {
    start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (fn_ == nullptr || next_ >= n_) continue;  // that loop is over already
    ++busy_;
    lock.unlock();
    Work(slot);
    lock.lock();
    if (--busy_ == 0) done_cv_.notify_all();
  }
}

void ParallelRunner::Work(unsigned slot) {
  while (true) {
    size_t i;
    const std::function<void(unsigned, size_t)>* fn;
    {
      std::lock_guard lock(mu_);
      if (fn_ == nullptr || next_ >= n_) return;
      i = next_++;
      fn = fn_;
    }
    (*fn)(slot, i);
  }
}

}  // namespace cairn
