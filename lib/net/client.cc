#include "lib/net/client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <vector>

#include "lib/net/address.h"
#include "lib/net/asio_error.h"
#include "lib/net/connection_impl.h"

namespace cairn::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

asio::awaitable<Result<std::shared_ptr<Connection>>> ConnectImpl(asio::any_io_executor executor,
                                                                 const std::string& host_port,
                                                                 TlsContext tls,
                                                                 std::chrono::milliseconds deadline,
                                                                 ConnectionOptions options) {
  using Clock = std::chrono::steady_clock;
  if (!tls) co_return Status::InvalidArgument("Connect: no TLS context");
  Result<HostPort> target = ParseHostPort(host_port);
  if (!target.ok()) co_return target.status();
  if (target->host.empty()) co_return Status::InvalidArgument("Connect: host is empty");
  const Clock::time_point until = Clock::now() + deadline;
  auto remaining = [until] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
  };

  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  const asio::ip::address literal = asio::ip::make_address(target->host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, target->port);
  } else {
    // The timer's handler owns the resolver, so it may fire late safely.
    auto resolver = std::make_shared<tcp::resolver>(executor);
    asio::steady_timer timer(executor, remaining());
    timer.async_wait([resolver](error_code timer_ec) {
      if (!timer_ec) resolver->cancel();
    });
    auto [resolve_ec, results] =
        co_await resolver->async_resolve(target->host, std::to_string(target->port), kAwait);
    timer.cancel();
    if (resolve_ec == asio::error::operation_aborted) {
      co_return Status::Unavailable("resolve " + target->host + ": deadline exceeded");
    }
    if (resolve_ec) co_return internal::AsioErrorToStatus(resolve_ec, "resolve " + target->host);
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }

  auto impl = std::make_shared<Connection::Impl>(tcp::socket(executor), tls, options);
  impl->Arm(impl->read_deadline, remaining());
  auto [connect_ec, endpoint] =
      co_await asio::async_connect(impl->stream.lowest_layer(), endpoints, kAwait);
  if (impl->Disarm(impl->read_deadline)) {
    co_return Status::Unavailable("connect to " + host_port + ": deadline exceeded");
  }
  if (connect_ec) co_return internal::AsioErrorToStatus(connect_ec, "connect to " + host_port);
  impl->SetRemote();

  // The server's certificate must name the host we dialled.
  if (Status named = ExpectServerName(impl->stream.native_handle(), target->host); !named.ok()) {
    co_return named;
  }
  Status handshake = co_await impl->Handshake(asio::ssl::stream_base::client, remaining());
  if (!handshake.ok()) co_return handshake.WithContext("connect to " + host_port);
  co_return internal::ConnectionAccess::Wrap(std::move(impl));
}

}  // namespace

asio::awaitable<Result<std::shared_ptr<Connection>>> Connect(asio::any_io_executor executor,
                                                             std::string host_port, TlsContext tls,
                                                             std::chrono::milliseconds deadline,
                                                             ConnectionOptions options) {
  std::string failure;
  try {
    co_return co_await ConnectImpl(std::move(executor), host_port, std::move(tls), deadline,
                                   std::move(options));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  co_return Status::IOError("connect to " + host_port + ": " + failure);
}

}  // namespace cairn::net
