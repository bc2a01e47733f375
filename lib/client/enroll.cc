#include "lib/client/enroll.h"

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <string>
#include <utility>

#include "lib/base/names.h"
#include "lib/client/dial.h"
#include "lib/client/wire.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/pki.h"
#include "lib/net/fetch_ca.h"
#include "lib/net/run_sync.h"
#include "lib/net/tls.h"
#include "lib/proto/messages.h"
#include "lib/proto/token.h"

namespace cairn::client {
namespace {

namespace asio = boost::asio;

struct Exchange {
  std::string ca_pem;  // pinned
  proto::EnrollResponse response;
};

asio::awaitable<Result<Exchange>> Talk(asio::any_io_executor executor, const EnrollOptions& o,
                                       const proto::EnrollmentToken& token, const std::string& host,
                                       const std::string& csr_pem) {
  Exchange out;
  Result<std::string> ca =
      co_await net::FetchPinnedCa(executor, o.vault, token.ca_fingerprint, o.deadline);
  if (!ca.ok()) co_return ca.status();
  out.ca_pem = *ca;
  net::TlsOptions tls_options;
  tls_options.ca_pem = out.ca_pem;
  Result<net::TlsContext> tls = net::MakeClientContext(tls_options);
  if (!tls.ok()) co_return tls.status();
  DialOptions dial;
  dial.role = proto::Role::kEnroll;
  dial.software = o.software;
  dial.hostname = host;
  dial.deadline = o.deadline;
  std::vector<std::string> addresses = {o.vault};
  Result<Dialed> dialed = co_await Dial(executor, *tls, std::move(addresses), dial);
  if (!dialed.ok()) co_return dialed.status();
  net::Connection& c = *dialed->conn;
  proto::EnrollRequest request{token.catalog_token, csr_pem, host};
  Bytes request_bytes = request.Encode();
  Status s = co_await c.WriteFrame(proto::MessageType::kEnrollRequest, request_bytes);
  Result<UninitBytes> reply = UninitBytes();
  if (s.ok()) {
    reply = co_await ReadExpected(c, proto::MessageType::kEnrollResponse, o.deadline);
    if (!reply.ok()) s = reply.status();
  }
  if (s.ok()) {
    Result<proto::EnrollResponse> response = proto::EnrollResponse::Decode(*reply);
    SecureZero(reply->data(), reply->size());
    if (!response.ok()) {
      s = response.status();
    } else {
      out.response = std::move(response).value();
    }
  }
  co_await c.Close();
  if (!s.ok()) co_return s;
  co_return out;
}

}  // namespace

Result<EnrollResult> Enroll(const EnrollOptions& o) {
  if (o.vault.empty()) return Status::InvalidArgument("--vault is required");
  if (o.state_dir.empty()) return Status::InvalidArgument("--state is required");
  CAIRN_ASSIGN_OR_RETURN(proto::EnrollmentToken token, proto::ParseEnrollmentToken(o.token));
  if (HoldsEnrollment(o.state_dir) && !o.force) {
    return Status::InvalidArgument(o.state_dir +
                                   " already holds an enrolment; use --force to replace it");
  }
  const std::string host = o.host.empty() ? LocalHostName() : o.host;
  CAIRN_RETURN_IF_ERROR(ValidateName("host", host));

  CAIRN_ASSIGN_OR_RETURN(crypto::KeyPairPem key_pair, crypto::GenerateKeyPair());
  CAIRN_ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key_pair.private_key_pem, host));

  asio::io_context io;
  Result<Exchange> exchange = net::RunSync(io, Talk(io.get_executor(), o, token, host, csr));
  if (!exchange.ok()) {
    Status s = exchange.status();
    if (s.code() == StatusCode::kPermissionDenied && s.message().rfind("vault: ", 0) == 0) {
      return Status::PermissionDenied("the vault refused the enrolment: " + s.message().substr(7));
    }
    return s;
  }
  proto::EnrollResponse& r = exchange->response;

  // The answer must hold together before anything is stored.
  Result<crypto::DepartmentKeys> keys =
      o.replicator ? Result<crypto::DepartmentKeys>(crypto::DepartmentKeys{})
                   : crypto::ParseDepartmentKeys(r.department_keys);
  if (!keys.ok()) {
    SecureZero(r.department_keys.data(), r.department_keys.size());
    return Status::Corruption("vault sent unusable department keys: " + keys.status().message());
  }
  net::TlsOptions check;
  check.ca_pem = exchange->ca_pem;
  check.certificate_pem = r.certificate_pem;
  check.private_key_pem = key_pair.private_key_pem;
  Result<net::TlsContext> usable = net::MakeClientContext(check);
  if (!usable.ok()) {
    SecureZero(r.department_keys.data(), r.department_keys.size());
    return Status::Corruption("vault issued a certificate that does not match our key: " +
                              usable.status().message());
  }
  Result<crypto::PeerIdentity> identity = crypto::ParseIdentity(r.certificate_pem);
  const std::string_view want_role = o.replicator ? crypto::kRoleReplicator : crypto::kRoleAgent;
  if (!identity.ok() || identity->role != want_role) {
    SecureZero(r.department_keys.data(), r.department_keys.size());
    return Status::Corruption("vault issued a certificate that is not a" +
                              std::string(o.replicator ? " replicator" : "n agent") +
                              " certificate (was the token made for the other role?)");
  }

  EnrollResult result;
  result.config.vault_addresses = r.vault_addresses;
  if (result.config.vault_addresses.empty()) result.config.vault_addresses.push_back(o.vault);
  result.config.department = r.department;
  result.config.department_id = r.department_id;
  result.config.host = host;
  result.ca_fingerprint = token.ca_fingerprint;
  result.certificate_serial = identity->serial_hex;

  Status s = CreateStateDir(o.state_dir);
  if (s.ok()) {
    // A file cache of another enrolment names chunk IDs under another
    // department's ID key: it must not survive.
    std::error_code ec;
    std::filesystem::remove_all(IdentityPaths(o.state_dir).lmdb(), ec);
    if (ec) s = Status::IOError("remove old file cache: " + ec.message());
  }
  if (s.ok()) {
    s = WriteEnrollment(o.state_dir, result.config, r.certificate_pem, key_pair.private_key_pem,
                        exchange->ca_pem, r.department_keys);
  }
  SecureZero(r.department_keys.data(), r.department_keys.size());
  SecureZero(key_pair.private_key_pem.data(), key_pair.private_key_pem.size());
  if (!s.ok()) return s.WithContext("store enrolment");
  return result;
}

}  // namespace cairn::client
