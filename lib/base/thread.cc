#include "lib/base/thread.h"

#include <atomic>
#include <string>

namespace cairn::internal {
namespace {
std::atomic<int> failures_for_test{0};
}  // namespace

Status ThreadStartError(std::string_view what, std::string_view reason) {
  return Status::IOError("cannot start " + std::string(what) + ": " + std::string(reason) +
                         " (a limit on threads or processes, or no memory)");
}

void FailThreadStartsForTest(int n) { failures_for_test.store(n); }

bool TakeThreadStartFailureForTest() {
  int n = failures_for_test.load(std::memory_order_relaxed);
  while (n > 0) {
    if (failures_for_test.compare_exchange_weak(n, n - 1)) return true;
  }
  return false;
}

}  // namespace cairn::internal
