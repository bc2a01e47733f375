#include "lib/net/on_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "lib/base/thread.h"

namespace cairn::net {

BlockingPool::BlockingPool(std::string what, int threads) {
  const int wanted = std::max(1, threads);
  for (int i = 0; i < wanted; ++i) {
    Result<std::thread> t = StartThread(what, [this] { pool_.attach(); });
    if (!t.ok()) {
      if (threads_.empty()) {
        status_ = t.status();
      } else {
        spdlog::warn("{}; running {} of {}", t.status().message(), threads_.size(), wanted);
      }
      break;
    }
    threads_.push_back(std::move(*t));
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
