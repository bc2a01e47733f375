// The vault's certificate authority and the TLS material of its listener
// (doc/design.md section 8): what the vault signs, and whom it trusts.
//
//   DIR/ca/ca.pem, ca.key          the vault CA (key 0600)
//   DIR/tls/vault.pem, vault.key   the listener's certificate, from that CA
//   DIR/replica/source-ca.pem      a DR vault's source CA: the source's
//   DIR/replica/server.pem         agents chain to it, and this vault's key
//                                  is certified by it (written by the
//                                  replication set-up; read at Load)
//
// Issuing is pure (a CSR in, a certificate out): recording the certificate
// in the catalog, and revocation, are the service's. Thread-safe after
// Load (const methods only, on immutable material).
#ifndef CAIRN_VAULT_PKI_AUTHORITY_H_
#define CAIRN_VAULT_PKI_AUTHORITY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"
#include "lib/crypto/pki.h"
#include "lib/io/env.h"

namespace cairn::vault {

// Validity of the certificates the vault issues (agents, replicators, its
// own listener): 825 days, the CA/Browser Forum's former ceiling, so a
// forgotten certificate ends by itself within a budget cycle.
inline constexpr int kIssuedCertValidityDays = 825;

class CertificateAuthority {
 public:
  // Creates the CA and the listener's certificate under `data_dir` (init).
  // `hosts` are the names and addresses agents use (the first is the
  // certificate's CN); `site` names the vault in the certificate.
  static Status Create(io::Env* env, const std::string& data_dir, std::string_view site,
                       const std::vector<std::string>& hosts);
  // Loads it back, with the replica trust when present.
  static Result<std::unique_ptr<CertificateAuthority>> Load(io::Env* env,
                                                            const std::string& data_dir);

  const crypto::CaMaterial& ca() const { return ca_; }
  // SHA-256 of the CA that clients must pin: this vault's own, or, on a DR
  // vault, the source's (enrolment tokens carry it).
  const std::string& pinned_fingerprint() const { return pinned_fingerprint_; }
  // CA certificates the listener accepts client certificates from: its
  // own, plus the source's once replicating.
  const std::string& trusted_ca_pem() const { return trusted_ca_pem_; }
  // The chain the listener presents (leaf first).
  const std::string& served_chain_pem() const { return served_chain_pem_; }
  // The CA that chain ends in: what clients must trust to reach this vault.
  const std::string& served_ca_pem() const { return served_ca_pem_; }
  const std::string& tls_private_key_pem() const { return tls_key_pem_; }
  // CAs whose certificates people may log in to the console with: the
  // vault's own, plus the city's when imported (`cairn-vault ca import`).
  std::string person_ca_pem() const { return ca_.certificate_pem + imported_ca_pem_; }
  // Imports the city's CA for people's certificates (DIR/ca/city.pem).
  // InvalidArgument when `pem` holds no certificate.
  Status ImportPersonCa(std::string_view pem);

  // SHA-256 of this vault's own CA certificate.
  const std::string& ca_fingerprint() const { return ca_fingerprint_; }
  // A person's certificate for the console: role person, CN the account.
  Result<std::string> IssuePerson(std::string_view csr_pem, std::string_view user,
                                  int validity_days) const;
  // An agent's certificate: role agent, the department and host named.
  Result<std::string> IssueAgent(std::string_view csr_pem, std::string_view department,
                                 std::string_view host) const;
  // A DR site's replicator: role replicator, no department.
  Result<std::string> IssueReplicator(std::string_view csr_pem, std::string_view host) const;
  // A DR vault's listener, so that this vault's agents accept it when they
  // fail over: role vault, valid for `hosts` (the first is the CN).
  Result<std::string> IssueReplicaServer(std::string_view csr_pem, std::string_view site,
                                         const std::vector<std::string>& hosts) const;

  // Stores the source's CA and this vault's certificate from it (a DR
  // vault's set-up). Takes effect at the next Load.
  Status SaveReplicaTrust(std::string_view source_ca_pem, std::string_view server_cert_pem) const;

 private:
  CertificateAuthority() = default;
  io::Env* env_ = nullptr;
  std::string data_dir_;
  crypto::CaMaterial ca_;
  std::string pinned_fingerprint_;
  std::string tls_key_pem_;
  std::string trusted_ca_pem_, served_chain_pem_, served_ca_pem_;
  std::string imported_ca_pem_;
  std::string ca_fingerprint_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_PKI_AUTHORITY_H_
