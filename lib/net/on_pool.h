// Running blocking work (the vault's store, a REST handler) off the network
// threads: the awaiting coroutine is suspended, `work` runs on `pool`, and
// the coroutine resumes on its own executor (a connection's strand) with
// the result.
#ifndef CAIRN_LIB_NET_ON_POOL_H_
#define CAIRN_LIB_NET_ON_POOL_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "lib/base/status.h"

namespace cairn::net {

// The threads `OnPool` runs work on, started with StartThread: one the
// system will not start means fewer of them. (asio::thread_pool's own
// constructor throws then, and when some of its threads had started it
// waits forever for them; here the pool's threads are attached instead.)
// status() is not OK when not one could be started.
class BlockingPool {
 public:
  // `what` names the threads in errors ("the vault's store threads").
  BlockingPool(std::string what, int threads);
  ~BlockingPool();  // Stop()
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  const Status& status() const { return status_; }
  boost::asio::thread_pool& pool() { return pool_; }
  // Stops the threads (work not started is dropped) and joins them.
  // Idempotent.
  void Stop();

 private:
  boost::asio::thread_pool pool_{0};  // no threads of its own
  std::vector<std::thread> threads_;
  Status status_;
};

template <typename F>
boost::asio::awaitable<std::invoke_result_t<F&>> OnPool(boost::asio::thread_pool& pool, F work) {
  using R = std::invoke_result_t<F&>;
  std::optional<R> out;
  co_await boost::asio::co_spawn(
      pool,
      [&]() -> boost::asio::awaitable<void> {
        out.emplace(work());
        co_return;
      },
      boost::asio::use_awaitable);
  co_return std::move(*out);
}

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_ON_POOL_H_
