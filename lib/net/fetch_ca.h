// Fetching the vault's CA certificate before enrolment, pinned by the
// fingerprint in the enrolment token.
//
// An agent that is about to enrol has no trust anchor yet: only the
// SHA-256 fingerprint of the vault CA certificate (DER) from its token. It
// opens one TLS 1.3 connection *without* verifying the peer, reads the
// certificate chain the vault sends (the vault's leaf followed by its CA),
// keeps the certificate whose fingerprint equals the pin and closes the
// connection without sending a single frame. Nothing received on this
// connection is trusted except that certificate, and it is trusted only
// because its hash matches the token. The agent then connects again,
// verifying the vault against that CA (net::MakeClientContext).
#ifndef CAIRN_LIB_NET_FETCH_CA_H_
#define CAIRN_LIB_NET_FETCH_CA_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>

#include "lib/base/status.h"

namespace cairn::net {

// Connects to `host_port` ("10.0.0.5:7443", "[::1]:7443", "vault:7443"),
// handshakes TLS 1.3 with peer verification off, and returns the PEM of the
// certificate in the peer's chain whose SHA-256 DER fingerprint equals
// `ca_fingerprint_hex` (64 hex digits, either case). The whole exchange
// runs within `deadline`.
//
// Errors: InvalidArgument (malformed host_port or fingerprint; a peer that
// does not speak TLS 1.3), Unavailable (resolution, connection refused,
// deadline; retryable), PermissionDenied "the vault at H:P does not present
// the CA this token was issued by" when no certificate matches. Never
// throws. Runs on `executor`; thread-safe with respect to other calls.
boost::asio::awaitable<Result<std::string>> FetchPinnedCa(boost::asio::any_io_executor executor,
                                                          std::string host_port,
                                                          std::string ca_fingerprint_hex,
                                                          std::chrono::milliseconds deadline);

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_FETCH_CA_H_
