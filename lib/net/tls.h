// TLS contexts for Cairn connections: TLS 1.3 only, mutual authentication
// against the vault's CA and nothing else.
//
// Policy, the same on both sides:
//  - TLS 1.3 is the only protocol version (minimum and maximum).
//  - Peers are verified against `ca_pem` only; the system trust store is
//    never loaded, so a certificate from a public CA proves nothing here.
//  - The leaf certificate's identity (crypto::PeerIdentity) is read during
//    the handshake and `is_revoked` is asked about it there, so a revoked
//    serial never completes a handshake.
//  - The server issues no session tickets and keeps no session cache: a
//    resumed session would skip certificate verification and with it the
//    revocation check.
//  - An encrypted private key is refused rather than prompting on a terminal.
//
// A context is immutable once made and may be shared by any number of
// connections on any threads (OpenSSL's SSL_CTX is thread-safe for that use);
// `is_revoked` is therefore called concurrently from handshakes on different
// threads and must be thread-safe itself.
#ifndef CAIRN_LIB_NET_TLS_H_
#define CAIRN_LIB_NET_TLS_H_

#include <functional>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "lib/crypto/pki.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl
struct ssl_st;

namespace cairn::net {

using TlsContext = std::shared_ptr<boost::asio::ssl::context>;

// Whether a server demands a client certificate.
enum class ClientCertificate {
  // No certificate, no connection. Agents, replicators and restore clients.
  kRequired,
  // A client may connect without one (enrolment: it has no certificate yet);
  // one that presents a certificate must still pass verification and the
  // revocation check, or the handshake fails. The handler tells the cases
  // apart by Connection::peer(), which is set only for a verified one.
  kOptional,
};

struct TlsOptions {
  // PEM of the trust anchor(s) peers must chain to: the vault CA (or the
  // city's CA that signed it). Required. May hold several certificates.
  std::string ca_pem;
  // This side's certificate chain (leaf first) and its private key, PEM.
  // Required for a server. A client leaves both empty only to enrol; it then
  // can reach only a listener with ClientCertificate::kOptional.
  std::string certificate_pem;
  std::string private_key_pem;
  // Server only (a client always requires and verifies the server's
  // certificate). Default kRequired: fail closed; enrolment listeners opt in.
  ClientCertificate client_certificate = ClientCertificate::kRequired;
  // Asked during the handshake about the verified leaf certificate of the
  // peer; returning true refuses the handshake at once (the peer sees a
  // "certificate revoked" alert). Empty: nothing is revoked. Called on the
  // I/O thread doing the handshake, so it must be fast (an in-memory set
  // lookup) and thread-safe; an exception from it refuses the peer.
  std::function<bool(const crypto::PeerIdentity&)> is_revoked;
};

// InvalidArgument when a PEM input is missing or malformed, or when the key
// does not match the certificate. On the server, a client certificate that
// carries no Cairn identity (O, OU, CN) is refused.
Result<TlsContext> MakeServerContext(const TlsOptions& options);
// Same checks; certificate and key are optional. The client additionally
// verifies that the server's certificate names the host it dialled (see
// Connect), and accepts a server certificate without a Cairn identity (a
// city-issued vault certificate), in which case Connection::peer() is empty.
Result<TlsContext> MakeClientContext(const TlsOptions& options);

// Makes a client's handshake on `ssl` require a server certificate that
// names `host` (an IP SAN for an IP literal, else a DNS SAN), and sends the
// name as SNI. InvalidArgument when `host` cannot be set.
Status ExpectServerName(ssl_st* ssl, const std::string& host);

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_TLS_H_
