// Runs a coroutine to completion from synchronous code (CLIs, tests).
#ifndef CAIRN_LIB_NET_RUN_SYNC_H_
#define CAIRN_LIB_NET_RUN_SYNC_H_

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "lib/base/status.h"

namespace cairn::net {

namespace internal {
template <typename T>
struct IsStatusLike : std::false_type {};
template <>
struct IsStatusLike<Status> : std::true_type {};
template <typename U>
struct IsStatusLike<Result<U>> : std::true_type {};
}  // namespace internal

// Spawns `task` on `io` and runs `io` on the calling thread until the task
// completes; other handlers that are ready (a server's connections, say) run
// meanwhile. Safe whether or not other threads also run `io`; never call it
// from inside a handler of `io` (it would wait for itself). Restarts `io` if
// it had been stopped or had run out of work.
//
// An exception escaping `task` becomes IOError "unexpected exception: ..."
// when T is Status or Result<U>, and is rethrown otherwise.
template <typename T>
T RunSync(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  std::atomic<bool> done{false};
  std::exception_ptr error;
  auto on_done = [&](std::exception_ptr e) {
    error = e;
    done = true;
  };
  // Spawned as a void coroutine: co_spawn would need a default-constructible
  // T (Result<T> is not) to report an exception.
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(io, std::move(task), on_done);
  } else {
    boost::asio::co_spawn(
        io,
        [](boost::asio::awaitable<T> inner, decltype(value)* out) -> boost::asio::awaitable<void> {
          out->emplace(co_await std::move(inner));
        }(std::move(task), &value),
        on_done);
  }
  while (!done) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  if (error) {
    if constexpr (internal::IsStatusLike<T>::value) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        return Status::IOError(std::string("unexpected exception: ") + e.what());
      } catch (...) {
        return Status::IOError("unexpected exception");
      }
    } else {
      std::rethrow_exception(error);
    }
  }
  if constexpr (!std::is_void_v<T>) return std::move(*value);
}

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_RUN_SYNC_H_
