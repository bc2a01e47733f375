// StartThread: a std::thread whose failure to start is a Status;
// StartThreads: as many of n as the system will start.
//
// std::thread's constructor throws std::system_error when the kernel will
// not create another thread (EAGAIN: a cgroup's pids.max, RLIMIT_NPROC, or
// no memory for a stack). Nothing in Cairn catches exceptions on its data
// paths, so an uncaught one would end the process with std::terminate in
// the middle of a backup or a restore. Every thread is started through
// here, and each caller decides: run with fewer helpers, or stop with a
// clear error.
#ifndef CAIRN_LIB_BASE_THREAD_H_
#define CAIRN_LIB_BASE_THREAD_H_

#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "lib/base/status.h"

namespace cairn {

namespace internal {
// "cannot start <what>: Resource temporarily unavailable", an IOError (not
// Unavailable, which the command lines report as "no vault reachable").
// `reason`: the error's own words ("Resource temporarily unavailable").
Status ThreadStartError(std::string_view what, std::string_view reason);
// Makes the next `n` StartThread calls fail as a full pids cgroup would
// (tests only; process-wide).
void FailThreadStartsForTest(int n);
bool TakeThreadStartFailureForTest();
}  // namespace internal

// Starts `fn` on a new thread. `what` names it in the error ("the restore's
// worker threads").
template <typename F>
Result<std::thread> StartThread(std::string_view what, F&& fn) {
  try {
    if (internal::TakeThreadStartFailureForTest()) {
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
    }
    return std::thread(std::forward<F>(fn));
  } catch (const std::system_error& e) {
    return internal::ThreadStartError(what, e.code().message());
  }
}

// Starts up to `n` threads running fn(0), fn(1), ..., stopping at the first
// that cannot be started: the caller runs with the ones it gets, or, when
// it needs one and got none, reports `*failure` (set when fewer than `n`
// started).
template <typename F>
std::vector<std::thread> StartThreads(std::string_view what, size_t n, F fn,
                                      Status* failure = nullptr) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Result<std::thread> t = StartThread(what, [fn, i] { fn(i); });
    if (!t.ok()) {
      if (failure != nullptr) *failure = t.status();
      break;
    }
    threads.push_back(std::move(*t));
  }
  return threads;
}

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_THREAD_H_
