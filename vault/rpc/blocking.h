// Running the store's blocking work off the network threads: the awaiting
// coroutine is suspended, `work` runs on `pool`, and the coroutine resumes
// on its own executor (its connection's strand) with the result. Private to
// vault/rpc/.
#ifndef CAIRN_VAULT_RPC_BLOCKING_H_
#define CAIRN_VAULT_RPC_BLOCKING_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <type_traits>
#include <utility>

namespace cairn::vault {

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

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_RPC_BLOCKING_H_
