#include "lib/client/dial.h"

#include <utility>

#include "lib/client/wire.h"
#include "lib/net/client.h"

namespace cairn::client {

namespace asio = boost::asio;
using proto::MessageType;

Result<net::TlsContext> ClientTls(const Identity& identity) {
  net::TlsOptions tls;
  tls.ca_pem = identity.ca_pem;
  tls.certificate_pem = identity.certificate_pem;
  tls.private_key_pem = identity.private_key_pem;
  Result<net::TlsContext> context = net::MakeClientContext(tls);
  if (!context.ok() && !identity.dir.empty()) {
    // Name the files: a damaged or mismatched PEM is the usual cause.
    const IdentityPaths paths(identity.dir);
    return context.status().WithContext("the identity in " + identity.dir + " (" +
                                        paths.certificate() + ", " + paths.private_key() + ", " +
                                        paths.ca() + ") cannot be used; enrol again, or put back " +
                                        "the files the enrolment wrote");
  }
  return context;
}

DialOptions IdentityDialOptions(const Identity& identity) {
  DialOptions dial;
  dial.hostname = identity.config.host;
  if (!identity.dir.empty()) dial.ca_file = IdentityPaths(identity.dir).ca();
  return dial;
}

namespace {

asio::awaitable<Result<Dialed>> DialOne(asio::any_io_executor executor, const net::TlsContext& tls,
                                        const std::string& address, const DialOptions& options) {
  auto conn = co_await net::Connect(executor, address, tls, options.deadline, options.connection);
  if (!conn.ok() && conn.status().code() == StatusCode::kPermissionDenied &&
      !options.ca_file.empty()) {
    // Connect refuses only our own check of the vault's certificate.
    co_return Status::PermissionDenied(
        conn.status().message() + "; the vault's certificate does not verify against " +
        options.ca_file + ": this identity was enrolled with another vault, or " + address +
        " is another vault's address");
  }
  if (!conn.ok()) co_return conn.status();
  proto::Hello hello;
  hello.role = options.role;
  hello.software = options.software;
  hello.hostname = options.hostname.empty() ? LocalHostName() : options.hostname;
  Bytes payload = hello.Encode();
  Status s = co_await (*conn)->WriteFrame(MessageType::kHello, payload);
  Result<UninitBytes> reply = s;
  if (s.ok()) reply = co_await ReadExpected(**conn, MessageType::kHelloOk, options.deadline);
  Result<proto::HelloOk> ok = reply.ok() ? proto::HelloOk::Decode(*reply) : reply.status();
  if (ok.ok() && (ok->version < hello.min_version || ok->version > hello.max_version)) {
    ok =
        Status::InvalidArgument("the vault at " + address + " chose protocol version " +
                                std::to_string(ok->version) + ", which this client does not speak");
  }
  if (!ok.ok()) {
    co_await (*conn)->Close();
    co_return ok.status();
  }
  co_return Dialed{*conn, address, std::move(*ok)};
}

}  // namespace

asio::awaitable<Result<Dialed>> Dial(asio::any_io_executor executor, net::TlsContext tls,
                                     std::vector<std::string> addresses, DialOptions options) {
  if (addresses.empty()) co_return Status::InvalidArgument("no vault address to connect to");
  std::string failures;
  for (const std::string& address : addresses) {
    Result<Dialed> dialed = co_await DialOne(executor, tls, address, options);
    if (dialed.ok()) co_return dialed;
    // A refusal is an answer: another vault of the same CA would give the same.
    if (dialed.status().code() == StatusCode::kPermissionDenied) {
      co_return dialed.status().WithContext(address);
    }
    if (!failures.empty()) failures += "; ";
    failures += address + ": " + dialed.status().message();
  }
  co_return Status::Unavailable("no vault reachable (" + failures + ")");
}

}  // namespace cairn::client
