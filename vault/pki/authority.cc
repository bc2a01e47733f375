#include "vault/pki/authority.h"

#include <sys/stat.h>

#include <cerrno>

#include "lib/base/errno.h"

namespace cairn::vault {
namespace {

constexpr int kCaValidityDays = 3650;

struct Paths {
  explicit Paths(const std::string& dir) : d(dir) {}
  std::string ca_dir() const { return d + "/ca"; }
  std::string tls_dir() const { return d + "/tls"; }
  std::string ca_cert() const { return d + "/ca/ca.pem"; }
  std::string ca_key() const { return d + "/ca/ca.key"; }
  std::string tls_cert() const { return d + "/tls/vault.pem"; }
  std::string tls_key() const { return d + "/tls/vault.key"; }
  std::string replica_dir() const { return d + "/replica"; }
  std::string source_ca() const { return d + "/replica/source-ca.pem"; }
  std::string replica_server_cert() const { return d + "/replica/server.pem"; }
  std::string city_ca() const { return d + "/ca/city.pem"; }
  std::string d;
};

Result<std::string> ReadText(io::Env* env, const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(Bytes b, io::ReadFileToBytes(env, path));
  return std::string(AsString(b));
}

// Secrets are written 0600 whatever the umask (the files go through `env`,
// which creates them with the process umask; the vault's is 077).
Status WriteSecret(io::Env* env, const std::string& path, std::string_view pem) {
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, path, AsBytes(pem)));
  if (::chmod(path.c_str(), 0600) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "chmod " + path);
  }
  return Status::OK();
}

}  // namespace

Status CertificateAuthority::Create(io::Env* env, const std::string& data_dir,
                                    std::string_view site, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return Status::InvalidArgument("the vault needs at least one host name");
  Paths p(data_dir);
  CAIRN_RETURN_IF_ERROR(env->CreateDir(p.ca_dir()));
  CAIRN_RETURN_IF_ERROR(env->CreateDir(p.tls_dir()));
  CAIRN_ASSIGN_OR_RETURN(
      crypto::CaMaterial ca,
      crypto::CreateCa("Cairn vault CA (" + std::string(site) + ")", kCaValidityDays));
  CAIRN_ASSIGN_OR_RETURN(crypto::KeyPairPem tls_key, crypto::GenerateKeyPair());
  CAIRN_ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(tls_key.private_key_pem, hosts[0]));
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleVault);
  id.department = std::string(site);
  id.host = hosts[0];
  CAIRN_ASSIGN_OR_RETURN(
      std::string tls_cert,
      crypto::IssueCertificate(ca, csr, id, kIssuedCertValidityDays,
                               std::vector<std::string>(hosts.begin() + 1, hosts.end())));
  CAIRN_RETURN_IF_ERROR(WriteSecret(env, p.ca_key(), ca.private_key_pem));
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.ca_cert(), AsBytes(ca.certificate_pem)));
  CAIRN_RETURN_IF_ERROR(WriteSecret(env, p.tls_key(), tls_key.private_key_pem));
  return io::WriteFileAtomically(env, p.tls_cert(), AsBytes(tls_cert));
}

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::Load(
    io::Env* env, const std::string& data_dir) {
  Paths p(data_dir);
  std::unique_ptr<CertificateAuthority> a(new CertificateAuthority());
  a->env_ = env;
  a->data_dir_ = data_dir;
  CAIRN_ASSIGN_OR_RETURN(a->ca_.certificate_pem, ReadText(env, p.ca_cert()));
  CAIRN_ASSIGN_OR_RETURN(a->ca_.private_key_pem, ReadText(env, p.ca_key()));
  CAIRN_ASSIGN_OR_RETURN(a->ca_fingerprint_,
                         crypto::CertificateFingerprint(a->ca_.certificate_pem));
  a->pinned_fingerprint_ = a->ca_fingerprint_;
  CAIRN_ASSIGN_OR_RETURN(std::string tls_cert, ReadText(env, p.tls_cert()));
  CAIRN_ASSIGN_OR_RETURN(a->tls_key_pem_, ReadText(env, p.tls_key()));
  a->trusted_ca_pem_ = a->ca_.certificate_pem;
  a->served_chain_pem_ = tls_cert + a->ca_.certificate_pem;
  a->served_ca_pem_ = a->ca_.certificate_pem;
  if (env->FileExists(p.city_ca())) {
    CAIRN_ASSIGN_OR_RETURN(a->imported_ca_pem_, ReadText(env, p.city_ca()));
  }
  if (env->FileExists(p.source_ca()) && env->FileExists(p.replica_server_cert())) {
    CAIRN_ASSIGN_OR_RETURN(std::string source_ca, ReadText(env, p.source_ca()));
    CAIRN_ASSIGN_OR_RETURN(std::string server, ReadText(env, p.replica_server_cert()));
    a->trusted_ca_pem_ += source_ca;
    a->served_chain_pem_ = server + source_ca;
    a->served_ca_pem_ = source_ca;
    CAIRN_ASSIGN_OR_RETURN(a->pinned_fingerprint_, crypto::CertificateFingerprint(source_ca));
  }
  return a;
}

Result<std::string> CertificateAuthority::IssueAgent(std::string_view csr_pem,
                                                     std::string_view department,
                                                     std::string_view host) const {
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleAgent);
  id.department = std::string(department);
  id.host = std::string(host);
  return crypto::IssueCertificate(ca_, csr_pem, id, kIssuedCertValidityDays);
}

Result<std::string> CertificateAuthority::IssuePerson(std::string_view csr_pem,
                                                      std::string_view user,
                                                      int validity_days) const {
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRolePerson);
  id.department = "people";
  id.host = std::string(user);
  return crypto::IssueCertificate(ca_, csr_pem, id, validity_days);
}

Result<std::string> CertificateAuthority::IssueReplicator(std::string_view csr_pem,
                                                          std::string_view host) const {
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleReplicator);
  id.department = "replication";
  id.host = std::string(host);
  return crypto::IssueCertificate(ca_, csr_pem, id, kIssuedCertValidityDays);
}

Result<std::string> CertificateAuthority::IssueReplicaServer(
    std::string_view csr_pem, std::string_view site, const std::vector<std::string>& hosts) const {
  if (hosts.empty()) return Status::InvalidArgument("a DR vault certificate needs a host");
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleVault);
  id.department = site.empty() ? std::string("dr") : std::string(site);
  id.host = hosts.front();
  return crypto::IssueCertificate(ca_, csr_pem, id, kIssuedCertValidityDays,
                                  std::vector<std::string>(hosts.begin() + 1, hosts.end()));
}

Status CertificateAuthority::ImportPersonCa(std::string_view pem) {
  CAIRN_RETURN_IF_ERROR(crypto::CertificateFingerprint(pem).status());
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env_, Paths(data_dir_).city_ca(), AsBytes(pem)));
  imported_ca_pem_ = std::string(pem);
  return Status::OK();
}

Status CertificateAuthority::SaveReplicaTrust(std::string_view source_ca_pem,
                                              std::string_view server_cert_pem) const {
  Paths p(data_dir_);
  CAIRN_RETURN_IF_ERROR(crypto::CertificateFingerprint(source_ca_pem).status());
  CAIRN_RETURN_IF_ERROR(crypto::ParseIdentity(server_cert_pem).status());
  if (!env_->FileExists(p.replica_dir())) CAIRN_RETURN_IF_ERROR(env_->CreateDir(p.replica_dir()));
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env_, p.source_ca(), AsBytes(source_ca_pem)));
  return io::WriteFileAtomically(env_, p.replica_server_cert(), AsBytes(server_cert_pem));
}

}  // namespace cairn::vault
