#include "lib/net/on_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "lib/base/thread.h"

namespace cairn::net {

BlockingPool::BlockingPool(std::string what, int threads) {
  const size_t wanted = static_cast<size_t>(std::max(1, threads));
  Status failure;
  threads_ = StartThreads(
      what, wanted, [this](size_t) { pool_.attach(); }, &failure);
  if (threads_.empty()) {
    status_ = failure;
  } else if (!failure.ok()) {
    spdlog::warn("{}; running {} of {}", failure.message(), threads_.size(), wanted);
  }
}

BlockingPool::~BlockingPool() { Stop(); }

void BlockingPool::Stop() {
  pool_.stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace cairn::net
