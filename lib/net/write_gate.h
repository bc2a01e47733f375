// WriteGate: serialises the writers of one Connection. Connection allows one
// WriteFrame at a time, while a vault job link is written both by its own
// coroutine (pongs, replies) and by the job dispatcher, and an agent's
// persistent link by its reader, its pinger and its job reports.
//
// Lock() and Unlock() must run on one executor (the connection's strand or
// a single-threaded io_context); waiters are woken in the order they came.
// Unlock() hands the gate straight to the next waiter.
#ifndef CAIRN_LIB_NET_WRITE_GATE_H_
#define CAIRN_LIB_NET_WRITE_GATE_H_

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <memory>

namespace cairn::net {

class WriteGate {
 public:
  boost::asio::awaitable<void> Lock() {
    if (!busy_) {
      busy_ = true;
      co_return;
    }
    auto timer = std::make_shared<boost::asio::steady_timer>(
        co_await boost::asio::this_coro::executor, boost::asio::steady_timer::time_point::max());
    waiters_.push_back(timer);
    boost::system::error_code ec;
    co_await timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    // Woken by Unlock(), which handed the gate over (busy_ stays true).
  }

  void Unlock() {
    if (waiters_.empty()) {
      busy_ = false;
      return;
    }
    auto next = std::move(waiters_.front());
    waiters_.pop_front();
    next->cancel();
  }

 private:
  bool busy_ = false;
  std::deque<std::shared_ptr<boost::asio::steady_timer>> waiters_;
};

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_WRITE_GATE_H_
