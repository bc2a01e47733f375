// Dialling a vault: the one sequence every client uses (agent backups and
// its job link, restores, enrolment, a DR site's replicator).
//
//   for each address, in order:
//     TCP connect + TLS 1.3 handshake (lib/net/client.h), within `deadline`;
//     Hello{role} -> HelloOk, within `deadline`;
//   the first address that answers wins.
//
// A vault that refuses us (PermissionDenied: a revoked or unknown
// certificate, a role the certificate does not carry) ends the search:
// another vault of the same CA would answer the same. Every other failure
// (unreachable, no TLS, silent, a deadline) moves on to the next address,
// and when none answers the error names each address and why.
#ifndef CAIRN_LIB_CLIENT_DIAL_H_
#define CAIRN_LIB_CLIENT_DIAL_H_

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "lib/net/connection.h"
#include "lib/net/tls.h"
#include "lib/proto/messages.h"

namespace cairn::client {

// The TLS context of an enrolled identity: its certificate and key, and the
// pinned vault CA as the only trust anchor.
Result<net::TlsContext> ClientTls(const Identity& identity);

struct DialOptions {
  // The role named in Hello. Default agent.
  proto::Role role = proto::Role::kAgent;
  // Hello's software string, for the vault's logs ("cairn-agent 0.1.0").
  std::string software = "cairn";
  // Hello's hostname, for the vault's logs. Default: this machine's name.
  std::string hostname;
  // Bound on each step of each address: connect and handshake, then
  // HelloOk. Default 30 s.
  std::chrono::milliseconds deadline{std::chrono::seconds(30)};
  // Deadlines of the established connection's reads and writes.
  net::ConnectionOptions connection;
  // The file the trusted CA came from, named when a vault's certificate
  // does not verify against it. Empty: not named (enrolment).
  std::string ca_file;
};

// The options of a dial as an enrolled identity: its host name in Hello and
// its ca.pem named in a verification failure. The caller sets the role,
// software and deadlines.
DialOptions IdentityDialOptions(const Identity& identity);

struct Dialed {
  std::shared_ptr<net::Connection> conn;
  std::string address;  // the one that answered
  proto::HelloOk hello_ok;
};

// See the file comment. InvalidArgument when `addresses` is empty;
// PermissionDenied "<address>: ..." for a refusal; Unavailable "no vault
// reachable (<address>: <why>; ...)" when no address answers.
boost::asio::awaitable<Result<Dialed>> Dial(boost::asio::any_io_executor executor,
                                            net::TlsContext tls, std::vector<std::string> addresses,
                                            DialOptions options);

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_DIAL_H_
