// Private to lib/net: the state behind a Connection, shared with Server and
// Connect, which create connections and drive their handshakes.
#ifndef CAIRN_LIB_NET_CONNECTION_IMPL_H_
#define CAIRN_LIB_NET_CONNECTION_IMPL_H_

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "lib/net/connection.h"
#include "lib/net/tls.h"

namespace cairn::net {

// A deadline for one direction of I/O: a timer that, when it fires while
// its operation is still pending, cancels the socket's operations. The
// generation number keeps a timer that fired just as its operation
// completed from cancelling the next operation.
struct Deadline {
  explicit Deadline(const boost::asio::any_io_executor& executor) : timer(executor) {}
  boost::asio::steady_timer timer;
  uint64_t generation = 0;
  bool armed = false;
  bool expired = false;
};

struct Connection::Impl : std::enable_shared_from_this<Connection::Impl> {
  using Socket = boost::asio::ip::tcp::socket;
  using Stream = boost::asio::ssl::stream<Socket>;

  // `socket` may be connected (server) or not yet (client). Its executor
  // becomes the connection's executor.
  Impl(Socket socket, TlsContext tls, const ConnectionOptions& options);

  // Starts `deadline` for `timeout`.
  void Arm(Deadline& deadline, std::chrono::milliseconds timeout);
  // Stops it; true if it expired (the operation was cancelled by it).
  bool Disarm(Deadline& deadline);

  // The TLS handshake within `timeout`; on success reads the peer identity.
  boost::asio::awaitable<Status> Handshake(boost::asio::ssl::stream_base::handshake_type type,
                                           std::chrono::milliseconds timeout);

  // Records a transport failure: both directions are over.
  Status FailTransport(Status status);
  // Called on executor(): aborts everything with `reason`.
  void CancelNow(Status reason);
  // After accept or connect: remembers the remote address and turns
  // Nagle's algorithm off (frames are written whole).
  void SetRemote();

  TlsContext tls;  // keeps the SSL_CTX alive as long as the stream
  Stream stream;
  ConnectionOptions options;
  std::string remote;
  std::optional<crypto::PeerIdentity> peer;
  Deadline read_deadline;
  Deadline write_deadline;
  Status read_failure;
  Status write_failure;
  Status cancel_reason;  // set by Cancel(): what aborted operations report
  bool handshake_done = false;
  bool broken = false;  // transport or TLS state unusable: no close_notify
  bool closed = false;
};

namespace internal {

struct ConnectionAccess {
  static std::shared_ptr<Connection> Wrap(std::shared_ptr<Connection::Impl> impl) {
    return std::shared_ptr<Connection>(new Connection(std::move(impl)));
  }
  static Connection::Impl& Get(Connection& c) { return *c.impl_; }
};

}  // namespace internal
}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_CONNECTION_IMPL_H_
