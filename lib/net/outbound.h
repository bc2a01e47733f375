// A byte stream to a third-party service the vault reports to (a syslog
// collector, a webhook): plain TCP, or TLS 1.3 verifying the service
// against a CA the operator names. Unlike Connect (peers of the Cairn
// protocol, coroutines), calls here block the calling thread, each within
// the stream's deadline: the forwarders that use it run on threads of
// their own.
#ifndef CAIRN_LIB_NET_OUTBOUND_H_
#define CAIRN_LIB_NET_OUTBOUND_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace cairn::net {

struct OutboundOptions {
  std::string host_port;  // "collector.city:6514", "[::1]:514"
  bool tls = false;
  // TLS: PEM of the CA the service's certificate must chain to (the system
  // store is never used); the certificate must name the host.
  std::string ca_pem;
  // Every call (connect and handshake, a write, a read) ends within this.
  std::chrono::milliseconds deadline{std::chrono::seconds(10)};
};

class OutboundStream {
 public:
  // Unavailable (retryable) when the service cannot be reached in time;
  // PermissionDenied when its certificate does not verify; InvalidArgument
  // for a malformed address or CA.
  static Result<std::unique_ptr<OutboundStream>> Connect(const OutboundOptions& options);
  ~OutboundStream();
  OutboundStream(const OutboundStream&) = delete;
  OutboundStream& operator=(const OutboundStream&) = delete;

  // Writes all of `data`. Unavailable when the peer is gone or the deadline
  // passes.
  Status Write(std::string_view data);
  // Whether the peer has closed or reset the connection (a FIN or RST has
  // arrived), without waiting. Checked before writing, so that nothing is
  // written into a connection the peer already left.
  bool PeerClosed();
  // Waits until the peer's TCP has acknowledged every byte written
  // (SIOCOUTQ is 0): the bytes reached the peer's machine. Unavailable when
  // the connection fails first (a reset) or the deadline passes; then
  // `*unacknowledged` holds the bytes last seen unacknowledged (of those on
  // the wire: with TLS, record framing included).
  Status WaitAcknowledged(uint64_t* unacknowledged);
  bool tls() const;
  // Reads until `complete(everything read so far)` is true, the peer closes
  // (then it returns what came), or `max` bytes (InvalidArgument).
  Result<std::string> ReadUntil(const std::function<bool(std::string_view)>& complete, size_t max);

 private:
  struct Impl;
  explicit OutboundStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_OUTBOUND_H_
