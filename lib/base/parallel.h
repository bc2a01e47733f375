// ParallelRunner: runs the iterations of a loop on a fixed set of threads
// that live as long as the runner, so a loop of a few heavy iterations
// (hashing 4 MiB extents) is not dominated by starting threads: on a
// virtual machine a new thread takes long enough to start that the caller
// has done most of a short loop alone before it runs.
//
// Thread-safety: For() is called from one thread at a time (the owner).
#ifndef CAIRN_LIB_BASE_PARALLEL_H_
#define CAIRN_LIB_BASE_PARALLEL_H_

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn {

class ParallelRunner {
 public:
  // `threads` >= 1 slots in all: the caller's own and threads - 1 helpers
  // (fewer when the system will not start that many: see threads()).
  explicit ParallelRunner(unsigned threads);
  ~ParallelRunner();
  ParallelRunner(const ParallelRunner&) = delete;
  ParallelRunner& operator=(const ParallelRunner&) = delete;

  unsigned threads() const { return static_cast<unsigned>(helpers_.size()) + 1; }

  // Runs fn(slot, i) for every i in [0, n), each once, and returns when
  // all have returned. `slot` < threads() names the thread running the
  // call (one slot is never used by two calls at once): per-thread state.
  void For(size_t n, const std::function<void(unsigned slot, size_t i)>& fn);

 private:
  void Help(unsigned slot);
  void Work(unsigned slot);

  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(unsigned, size_t)>* fn_ = nullptr;  // guarded by mu_
  size_t n_ = 0, next_ = 0;                                    // guarded by mu_
  unsigned busy_ = 0;        // helpers inside the current loop; guarded by mu_
  uint64_t generation_ = 0;  // loops started; guarded by mu_
  bool stop_ = false;        // guarded by mu_
  std::vector<std::thread> helpers_;
};

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_PARALLEL_H_
