// A TLS 1.3 listener that runs one handler coroutine per connection.
//
// Lifecycle: construct, Listen() one or more addresses, Start(), and at the
// end co_await Stop(drain): it stops accepting (new connects are refused),
// lets in-flight handlers finish for up to `drain`, then cancels the rest
// and waits for them to unwind.
//
// Isolation: each connection runs on its own strand of the io_context. A
// handler that returns, throws or fails affects only its own connection:
// the server logs "closing <peer>: <reason>" (spdlog) and closes it. A peer
// that stays silent is dropped after ServerOptions::handshake_deadline (TLS)
// or the handler's read deadline.
//
// Thread safety: Listen/Start from one thread before the io_context runs
// handlers concurrently; Stop, Disconnect and active_connections from any
// thread or coroutine. The io_context may run on any number of threads.
// Destroying a Server without Stop cancels every connection at once (no
// drain); handlers still running finish on the io_context safely, since
// they share ownership of the server's state.
#ifndef CAIRN_LIB_NET_SERVER_H_
#define CAIRN_LIB_NET_SERVER_H_

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "lib/base/status.h"
#include "lib/crypto/pki.h"
#include "lib/net/connection.h"
#include "lib/net/tls.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace cairn::net {

struct ServerOptions {
  // Time from accept to a finished TLS handshake. Default 10 s: a real
  // client needs a few round trips; a silent TCP peer must not hold a slot
  // (and a file descriptor) for longer.
  std::chrono::milliseconds handshake_deadline{std::chrono::seconds(10)};
  // Deadlines of accepted connections (ReadFrame() default, writes, close).
  ConnectionOptions connection;
  // Most connections at once, handshakes included; further ones are closed
  // right after accept (and logged). Default 1024: a city's agents with room
  // to spare, while bounding memory (each connection may buffer a 16 MiB
  // frame). Raising it needs LimitNOFILE raised too.
  size_t max_connections = 1024;

  // Replaces zero or negative values by the defaults above.
  void Sanitize();
};

class Server {
 public:
  // Runs once per connection whose handshake succeeded, on the connection's
  // strand. When it returns (or throws), the server closes the connection.
  using Handler = std::function<boost::asio::awaitable<void>(std::shared_ptr<Connection>)>;

  // `tls` comes from MakeServerContext. Nothing happens until Start().
  Server(boost::asio::io_context& io, TlsContext tls, Handler handler, ServerOptions options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Binds and listens on "host:port" (numeric host, "[v6]:port" or ":port"
  // for all IPv4 addresses); port 0 picks a free port. Returns the bound
  // port. InvalidArgument for a malformed or non-numeric address; a bind
  // failure comes from ErrnoToStatus (address in use: IOError, a privileged
  // port: PermissionDenied). Call before Start(), from one thread; may be
  // called several times. A stopped server cannot be restarted.
  Result<uint16_t> Listen(std::string_view host_port);

  // Starts accepting on every listening address. Idempotent.
  void Start();

  // Stops accepting, waits up to `drain` for connections to finish, then
  // cancels the remaining ones (their operations fail with Cancelled
  // "server stopping") and waits for their handlers to unwind. Idempotent.
  boost::asio::awaitable<void> Stop(std::chrono::milliseconds drain);

  // Cancels every connection whose peer identity matches (e.g. a serial just
  // revoked, so that "revoked" also ends sessions already running). Returns
  // how many were cancelled.
  size_t Disconnect(const std::function<bool(const crypto::PeerIdentity&)>& match);

  // Connections accepted and not yet closed (handshaking or served).
  size_t active_connections() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_SERVER_H_
