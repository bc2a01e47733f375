// Dialling a Cairn peer (agent, replicator or restore to the vault).
#ifndef CAIRN_LIB_NET_CLIENT_H_
#define CAIRN_LIB_NET_CLIENT_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "lib/net/connection.h"
#include "lib/net/tls.h"

namespace cairn::net {

// Resolves `host_port` ("10.0.0.5:7443", "[::1]:7443", "vault.city:7443"),
// connects (trying each address in turn) and does the TLS 1.3 handshake,
// all within `deadline`. The server's certificate must chain to the
// context's ca_pem and name `host` in its subjectAltName (an IP SAN for an
// IP literal, else a DNS SAN); `tls` comes from MakeClientContext.
//
// With TLS 1.3 the client finishes its handshake before the server has
// judged the client certificate: a refused client (unknown CA, revoked,
// missing) gets its connection here and a PermissionDenied on its first
// ReadFrame.
//
// The connection lives on `executor`; await its operations only from
// coroutines running there (pass a strand if the io_context runs on several
// threads). Errors: InvalidArgument (malformed host_port, TLS version),
// Unavailable (resolution, refused, deadline; retryable), PermissionDenied
// (the server's certificate failed verification).
boost::asio::awaitable<Result<std::shared_ptr<Connection>>> Connect(
    boost::asio::any_io_executor executor, std::string host_port, TlsContext tls,
    std::chrono::milliseconds deadline, ConnectionOptions options = {});

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_CLIENT_H_
