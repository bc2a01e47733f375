// One Cairn connection: frames (lib/proto/frame.h) over mutual TLS 1.3 over
// TCP, with Asio C++20 coroutines.
//
// Contract:
//  - Every read and write has a deadline. When it expires the operation
//    fails with Unavailable "<read|write> deadline exceeded" and the
//    connection is unusable (a TLS record may be half sent or half read):
//    the caller closes it.
//  - A protocol violation from the peer (bad magic, unknown type, non-zero
//    flags, a length above the limit) fails ReadFrame with InvalidArgument
//    before anything is allocated for the payload. Reading is then over (the
//    stream is out of step) but writing still works, so the caller may send
//    an Error frame explaining why before it closes.
//  - Errors are values: no exception leaves this class. The first failure is
//    remembered; later calls in that direction return it at once.
//  - Not thread-safe. All calls must come from coroutines running on
//    executor() (a strand for server connections); one ReadFrame and one
//    WriteFrame may be outstanding at the same time (full duplex), never two
//    of the same kind. Cancel() is the exception: any thread, any time.
//  - Ownership: shared. Server hands the handler a shared_ptr; Connect
//    returns one. Destroying the last reference closes the socket abruptly
//    (no TLS close_notify): call Close() for an orderly end.
#ifndef CAIRN_LIB_NET_CONNECTION_H_
#define CAIRN_LIB_NET_CONNECTION_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/pki.h"
#include "lib/proto/frame.h"

namespace cairn::net {

namespace internal {
struct ConnectionAccess;
}  // namespace internal

struct Frame {
  proto::MessageType type = proto::MessageType::kError;
  UninitBytes payload;  // read from the socket into place, never zero-filled first
};

struct ConnectionOptions {
  // Deadline of ReadFrame() without an argument: how long a peer may stay
  // silent when a frame is due. Default 60 s: long enough for an agent
  // hashing a large file between requests, short enough that a dead peer
  // does not hold a session (and its memory) for long.
  std::chrono::milliseconds read_deadline{std::chrono::seconds(60)};
  // Deadline of a whole WriteFrame, 16 MiB included. Default 60 s: a 16 MiB
  // frame over a 10 Mbit/s city WAN link takes ~14 s.
  std::chrono::milliseconds write_deadline{std::chrono::seconds(60)};
  // How long Close() waits for the peer's TLS close_notify before it closes
  // the socket anyway. Default 1 s: a well-behaved peer answers in one round
  // trip; a gone one must not delay shutdown.
  std::chrono::milliseconds close_deadline{std::chrono::seconds(1)};

  // Replaces zero or negative values by the defaults above.
  void Sanitize();
};

class Connection {
 public:
  struct Impl;  // lib/net/connection_impl.h (private to lib/net)

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Reads one frame: the 8-byte header, checked by proto::ParseFrameHeader
  // against `limit` and the type's own limit, then the payload. The whole
  // frame must arrive within `deadline`. Errors: InvalidArgument (protocol
  // violation), Unavailable "read deadline exceeded" / "peer closed" (or a
  // reset), PermissionDenied (the peer refused our certificate: with TLS 1.3
  // a client learns this on its first read), Cancelled (Cancel()).
  boost::asio::awaitable<Result<Frame>> ReadFrame(std::chrono::milliseconds deadline,
                                                  uint32_t limit = proto::kMaxFramePayload);
  // ReadFrame(options().read_deadline, proto::kMaxFramePayload).
  boost::asio::awaitable<Result<Frame>> ReadFrame();

  // Writes header and payload (one gathered write) within `deadline`
  // (default options().write_deadline). `payload` must stay valid until the
  // awaitable completes. InvalidArgument, with nothing sent, for a payload
  // above proto::MaxPayloadFor(type): the peer would refuse it anyway.
  boost::asio::awaitable<Status> WriteFrame(proto::MessageType type, ByteView payload);
  boost::asio::awaitable<Status> WriteFrame(proto::MessageType type, ByteView payload,
                                            std::chrono::milliseconds deadline);

  // Orderly end: TLS close_notify (waiting at most options().close_deadline
  // for the peer's), then the socket is closed. Skips the TLS part after a
  // transport failure. Idempotent; never fails (there is nothing a caller
  // could do about a failed goodbye). Must not overlap a pending
  // ReadFrame/WriteFrame: use Cancel() for that.
  boost::asio::awaitable<void> Close();

  // Aborts pending and future operations, which fail with `reason`, and
  // shuts the socket down (the peer sees the connection end). Thread-safe;
  // returns at once (the work is posted to executor()). Used by Server::Stop
  // after the drain deadline and by Server::Disconnect.
  void Cancel(Status reason = Status::Cancelled("connection cancelled"));

  // The peer's identity, set when the handshake completed and the peer
  // presented a certificate that passed verification and carries a Cairn
  // identity. Empty for an enrolling client (ClientCertificate::kOptional)
  // and, on the client side, for a vault certificate without one.
  const std::optional<crypto::PeerIdentity>& peer() const;
  // "127.0.0.1:41234" or "[::1]:41234".
  const std::string& remote_endpoint() const;
  // remote_endpoint() plus the identity, for logs: "127.0.0.1:41234
  // agent/finance/fin-srv-01".
  std::string Describe() const;
  // The first failure on this connection (read or write), OK if none.
  Status failure() const;
  const ConnectionOptions& options() const;
  boost::asio::any_io_executor executor() const;

 private:
  friend struct internal::ConnectionAccess;
  explicit Connection(std::shared_ptr<Impl> impl);

  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_CONNECTION_H_
