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
#include <type_traits>
#include <utility>

namespace cairn::net {

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
