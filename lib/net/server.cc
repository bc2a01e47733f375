#include "lib/net/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lib/net/address.h"
#include "lib/net/asio_error.h"
#include "lib/net/connection_impl.h"

namespace cairn::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Pause after a failed accept (EMFILE, ENOBUFS) so that the loop does not
// spin while the condition lasts.
constexpr milliseconds kAcceptBackoff{100};
// Granularity of Stop()'s wait for connections to finish.
constexpr milliseconds kDrainPoll{20};

// A refused handshake (a revoked or foreign certificate, a client that is
// not Cairn) is a warning: someone tried and was turned away.
void LogClose(const Connection& connection, const std::string& reason, bool quiet, bool refused) {
  if (reason.empty()) {
    spdlog::debug("closed {}", connection.Describe());
  } else if (refused) {
    spdlog::warn("refused {}: {}", connection.Describe(), reason);
  } else if (quiet) {
    spdlog::debug("closing {}: {}", connection.Describe(), reason);
  } else {
    spdlog::info("closing {}: {}", connection.Describe(), reason);
  }
}

}  // namespace

void ServerOptions::Sanitize() {
  const ServerOptions defaults;
  if (handshake_deadline.count() <= 0) handshake_deadline = defaults.handshake_deadline;
  if (max_connections == 0) max_connections = defaults.max_connections;
  connection.Sanitize();
}

struct Server::State : std::enable_shared_from_this<Server::State> {
  struct Entry {
    std::shared_ptr<Connection> connection;
    std::optional<crypto::PeerIdentity> peer;  // copied after the handshake
  };

  State(asio::io_context& io_context, TlsContext tls_context, Handler handler_fn,
        ServerOptions server_options)
      : io(io_context),
        accept_strand(asio::make_strand(io_context)),
        tls(std::move(tls_context)),
        handler(std::move(handler_fn)),
        options(std::move(server_options)) {
    options.Sanitize();
  }

  size_t Count() const {
    std::lock_guard<std::mutex> lock(mu);
    return live.size();
  }

  // Closes the listening sockets on their strand; pending accepts end.
  void CloseAcceptors() {
    asio::post(accept_strand, [self = shared_from_this()] {
      for (auto& acceptor : self->acceptors) {
        error_code ignored;
        acceptor->close(ignored);
      }
    });
  }

  void CancelAll(const Status& reason) {
    std::vector<std::shared_ptr<Connection>> victims;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [id, entry] : live) victims.push_back(entry.connection);
    }
    for (auto& connection : victims) connection->Cancel(reason);
  }

  // One accepted connection: handshake, handler, close, log.
  static asio::awaitable<void> Serve(std::shared_ptr<State> state, uint64_t id,
                                     std::shared_ptr<Connection> connection);
  // Accepts until the acceptor closes or the server stops.
  static asio::awaitable<void> AcceptLoop(std::shared_ptr<State> state,
                                          std::shared_ptr<tcp::acceptor> acceptor);

  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> accept_strand;
  TlsContext tls;
  Handler handler;
  ServerOptions options;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;  // on accept_strand once started
  bool started = false;

  mutable std::mutex mu;
  std::unordered_map<uint64_t, Entry> live;  // guarded by mu
  uint64_t next_id = 0;                      // guarded by mu
  bool stopping = false;                     // guarded by mu
};

asio::awaitable<void> Server::State::Serve(std::shared_ptr<State> state, uint64_t id,
                                           std::shared_ptr<Connection> connection) {
  Connection::Impl& impl = internal::ConnectionAccess::Get(*connection);
  std::string reason;
  bool quiet = false, refused = false;
  try {
    Status handshake =
        co_await impl.Handshake(asio::ssl::stream_base::server, state->options.handshake_deadline);
    if (!handshake.ok()) {
      reason = "handshake: " + handshake.ToString();
      refused = true;
    } else {
      {
        std::lock_guard<std::mutex> lock(state->mu);
        auto it = state->live.find(id);
        if (it != state->live.end()) it->second.peer = impl.peer;
      }
      try {
        co_await state->handler(connection);
      } catch (const std::exception& e) {
        reason = std::string("handler threw: ") + e.what();
      } catch (...) {
        reason = "handler threw a non-standard exception";
      }
      if (reason.empty()) {
        Status failure = connection->failure();
        if (!failure.ok()) {
          reason = failure.ToString();
          // An ordinary goodbye is not news.
          quiet = failure.code() == StatusCode::kUnavailable && failure.message() == "peer closed";
        }
      }
    }
    co_await connection->Close();
  } catch (const std::exception& e) {
    reason += std::string(reason.empty() ? "" : "; ") + "close failed: " + e.what();
  } catch (...) {
    reason += std::string(reason.empty() ? "" : "; ") + "close failed";
  }
  LogClose(*connection, reason, quiet, refused);
  std::lock_guard<std::mutex> lock(state->mu);
  state->live.erase(id);
}

asio::awaitable<void> Server::State::AcceptLoop(std::shared_ptr<State> state,
                                                std::shared_ptr<tcp::acceptor> acceptor) {
  asio::steady_timer backoff(state->accept_strand);
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::make_strand(state->io), kAwait);
    if (ec) {
      {
        std::lock_guard<std::mutex> lock(state->mu);
        if (state->stopping) co_return;
      }
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      spdlog::warn("accept: {}", ec.message());
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(kAwait);
      continue;
    }
    auto impl = std::make_shared<Connection::Impl>(std::move(socket), state->tls,
                                                   state->options.connection);
    impl->SetRemote();
    std::shared_ptr<Connection> connection = internal::ConnectionAccess::Wrap(std::move(impl));
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (state->stopping) continue;  // the Connection's destructor closes it
      if (state->live.size() >= state->options.max_connections) {
        spdlog::warn("refusing {}: {} connections already", connection->remote_endpoint(),
                     state->live.size());
        continue;
      }
      id = ++state->next_id;
      state->live.emplace(id, State::Entry{connection, std::nullopt});
    }
    asio::co_spawn(connection->executor(), Serve(state, id, connection), asio::detached);
  }
}

Server::Server(asio::io_context& io, TlsContext tls, Handler handler, ServerOptions options)
    : state_(std::make_shared<State>(io, std::move(tls), std::move(handler), std::move(options))) {}

Server::~Server() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
  }
  state_->CloseAcceptors();
  state_->CancelAll(Status::Cancelled("server destroyed"));
}

Result<uint16_t> Server::Listen(std::string_view host_port) {
  Result<HostPort> target = ParseHostPort(host_port);
  if (!target.ok()) return target.status();
  const std::string host = target->host.empty() ? "0.0.0.0" : target->host;
  error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument("listen address \"" + host + "\" is not a numeric IP address");
  }
  const std::string context = "listen on " + std::string(host_port);
  auto acceptor = std::make_shared<tcp::acceptor>(state_->accept_strand);
  const tcp::endpoint endpoint(address, target->port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint bound;
  if (!ec) bound = acceptor->local_endpoint(ec);
  if (ec) return internal::AsioErrorToStatus(ec, context);
  state_->acceptors.push_back(std::move(acceptor));
  return bound.port();
}

void Server::Start() {
  if (state_->started) return;
  state_->started = true;
  for (auto& acceptor : state_->acceptors) {
    asio::co_spawn(state_->accept_strand, State::AcceptLoop(state_, acceptor), asio::detached);
  }
}

asio::awaitable<void> Server::Stop(milliseconds drain) {
  std::shared_ptr<State> state = state_;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->stopping = true;
  }
  state->CloseAcceptors();

  using Clock = std::chrono::steady_clock;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto wait_until = [&](Clock::time_point until) -> asio::awaitable<void> {
    while (state->Count() > 0 && Clock::now() < until) {
      timer.expires_after(std::min<Clock::duration>(kDrainPoll, until - Clock::now()));
      co_await timer.async_wait(kAwait);
    }
  };
  co_await wait_until(Clock::now() + drain);
  if (size_t left = state->Count(); left > 0) {
    spdlog::info("stopping: cancelling {} connection(s) still open after the {} ms drain", left,
                 drain.count());
    state->CancelAll(Status::Cancelled("server stopping"));
    // Cancelled handlers only have to unwind and close their sockets.
    co_await wait_until(Clock::now() + 2 * state->options.connection.close_deadline +
                        milliseconds(100));
    if (size_t stuck = state->Count(); stuck > 0) {
      spdlog::warn("stopping: {} handler(s) ignore cancellation and are still running", stuck);
    }
  }
}

size_t Server::Disconnect(const std::function<bool(const crypto::PeerIdentity&)>& match) {
  std::vector<State::Entry> entries;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    for (auto& [id, entry] : state_->live) entries.push_back(entry);
  }
  size_t count = 0;
  for (auto& entry : entries) {
    if (entry.peer && match(*entry.peer)) {
      entry.connection->Cancel(Status::PermissionDenied("disconnected by the server"));
      ++count;
    }
  }
  return count;
}

size_t Server::active_connections() const { return state_->Count(); }

}  // namespace cairn::net
