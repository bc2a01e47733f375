// A vault's data directory, and the operations on it that do not need the
// network: init, opening, departments, enrolment tokens, revocation.
//
//   DIR/vault.toml     site name and format version
//   DIR/master.key     the master key (0600): wraps every department's keys
//   DIR/ca/            the vault CA (ca.pem, ca.key 0600)
//   DIR/tls/           the vault's own certificate for its listeners
//   DIR/lmdb/          chunk index, pack catalog, catalog (LMDB)
//   DIR/packs/         pack files, one directory per department
//
// Administrative commands (department create, token create, agent revoke)
// open the vault without its chunk store, so they run safely beside
// `cairn-vault serve` (LMDB is multi-process); only serve opens the store,
// and it holds DIR/serve.lock so that two servers never share a directory.
#ifndef CAIRN_VAULT_VAULT_H_
#define CAIRN_VAULT_VAULT_H_

#include <memory>
#include <string>
#include <vector>

#include "lib/crypto/keys.h"
#include "lib/crypto/pki.h"
#include "lib/repo/lmdb.h"
#include "vault/catalog.h"
#include "vault/chunk_store.h"

namespace cairn::vault {

struct InitOptions {
  std::string data_dir;
  // Site name shown to peers ("primary", "dr"). Default "primary".
  std::string site = "primary";
  // Names and addresses the vault's TLS certificate is valid for. Agents
  // connect to one of these. Default: 127.0.0.1, ::1 and localhost.
  std::vector<std::string> hosts;
};

struct InitResult {
  std::string admin_user;      // "admin"
  std::string admin_password;  // shown once; only its scrypt hash is stored
  std::string ca_fingerprint;  // SHA-256 of the CA certificate
};

// Creates a new vault in `data_dir` (created if missing; an existing
// directory must be empty). InvalidArgument "already holds a vault" if it
// has one; PermissionDenied/NotFound with the path for an unusable path. On
// failure nothing partial is left that a second init would trip over.
Result<InitResult> InitVault(const InitOptions& options);

struct OpenOptions {
  // Open the chunk store (recovering open packs) and take the serve lock.
  // Only `serve` does. Default false.
  bool serve = false;
  // Pack target size for the chunk store; 0 for the default.
  uint64_t pack_target_size = 0;
};

class Vault {
 public:
  static Result<std::unique_ptr<Vault>> Open(const std::string& data_dir,
                                             const OpenOptions& options);
  ~Vault();

  const std::string& data_dir() const { return data_dir_; }
  const std::string& site() const { return site_; }
  Catalog* catalog() { return catalog_.get(); }
  ChunkStore* store() { return store_.get(); }  // null unless opened to serve
  const crypto::CaMaterial& ca() const { return ca_; }
  const std::string& ca_fingerprint() const { return ca_fingerprint_; }
  const std::string& tls_certificate_pem() const { return tls_cert_pem_; }
  const std::string& tls_private_key_pem() const { return tls_key_pem_; }

  // Generates the department's data and ID keys and stores them wrapped.
  Result<Department> CreateDepartment(std::string_view name);
  Result<crypto::DepartmentKeys> DepartmentKeys(uint32_t department_id) const;

  // "cairn1-<CA fingerprint>-<token id>.<secret>": one-time, expiring,
  // bound to the department. The fingerprint lets the agent pin this CA.
  Result<std::string> CreateEnrollmentToken(std::string_view department, uint64_t ttl_seconds);
  // The same for a replicator (cairn-replicator enroll at the DR site).
  Result<std::string> CreateReplicatorToken(uint64_t ttl_seconds);

  // Checks a user's password (constant time). PermissionDenied otherwise.
  Status CheckPassword(std::string_view user, std::string_view password) const;

  // --- Replication and DR (doc/design.md section 13) ---------------------
  //
  // A vault that replicates from a source keeps in DIR/replica/:
  //   source-ca.pem  the source's CA: agents and restores of the source's
  //                  departments chain to it, so this vault trusts it too;
  //   server.pem     this vault's TLS key certified by the source CA, so
  //                  those agents accept this vault without new trust.
  // Both are written by the replicator's set-up and read at Open.

  // CA certificates this vault's listener accepts client certificates from:
  // its own, plus the source's once replicating.
  const std::string& trusted_ca_pem() const { return trusted_ca_pem_; }
  // The chain the listener presents (leaf first).
  const std::string& served_chain_pem() const { return served_chain_pem_; }
  // The CA that chain ends in: what clients must trust to reach this vault
  // (the source's CA once replicating). Enrolment tokens pin it and
  // enrolment responses carry it.
  const std::string& served_ca_pem() const { return served_ca_pem_; }
  // Stores the source's CA and this vault's certificate from it (PEM).
  // Takes effect at the next Open.
  Status SaveReplicaTrust(std::string_view source_ca_pem, std::string_view server_cert_pem);
  // Wraps raw department keys under this vault's master key (key escrow).
  Result<Bytes> WrapDepartmentKeys(ByteView raw_keys) const;

  // Where agents should reach their vaults, in order (hello_ok and
  // enrol_response advice). Empty when never set: the listener's address.
  std::vector<std::string> AgentAddresses() const;
  Status SetAgentAddresses(const std::vector<std::string>& addresses);

  // A replica (it has replicated from a source) refuses backups until it is
  // promoted (failover). Promotion is recorded with who, when and where in
  // the catalog and in DIR/promotions.log.
  bool IsReplica() const;
  bool IsPromoted() const;
  Status Promote(std::string_view by, std::string_view reason);
  // After failback: refuse backups again (recorded like a promotion).
  Status Demote(std::string_view by, std::string_view reason);

 private:
  Vault() = default;
  std::string data_dir_;
  std::string site_;
  crypto::SecretKey master_key_;
  crypto::CaMaterial ca_;
  std::string ca_fingerprint_;
  std::string tls_cert_pem_, tls_key_pem_;
  std::string trusted_ca_pem_, served_chain_pem_, served_ca_pem_;
  std::unique_ptr<repo::LmdbEnv> lmdb_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<ChunkStore> store_;
  int lock_fd_ = -1;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_VAULT_H_
