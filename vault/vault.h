// A vault's data directory, opened: the resources every part of the vault
// shares. The rules that act on them live in service/ (VaultService).
//
//   DIR/vault.toml     site name, format version, and where the packs are
//                      ([pack_store]; config.h)
//   DIR/master.key     the master key (0600): wraps every department's keys
//   DIR/ca/, DIR/tls/, DIR/replica/   the certificate authority (pki/)
//   DIR/lmdb/          chunk index, pack catalog, catalog (LMDB)
//   DIR/packs/         pack files, one directory per department (store/),
//                      or objects in a Ceph pool (store/rados_pack_store.h)
//   DIR/promotions.log failovers and failbacks, appended and fsynced
//   DIR/audit/         the audit trail and its signing key (audit/audit_log.h)
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
#include "lib/io/env.h"
#include "lib/repo/lmdb.h"
#include "vault/audit/audit_log.h"
#include "vault/catalog/catalog.h"
#include "vault/pki/authority.h"
#include "vault/store/chunk_store.h"
#include "vault/store/pack_store.h"
#include "vault/store/rados_pack_store.h"

namespace cairn::vault {

// The format of a data directory this build writes and reads (vault.toml's
// `format`). A directory of a newer format is refused with a message saying
// which version wrote it.
inline constexpr int kVaultFormatVersion = 1;

struct InitOptions {
  std::string data_dir;
  // Site name shown to peers ("primary", "dr"). Default "primary".
  std::string site = "primary";
  // Names and addresses the vault's TLS certificate is valid for. Agents
  // connect to one of these. Default: 127.0.0.1, ::1 and localhost.
  std::vector<std::string> hosts;
  // Where the directory's small files go (keys, certificates, config).
  // Default: the POSIX Env.
  io::Env* env = nullptr;
  // Who initialises it, for the audit trail's first entry ("local:root").
  std::string actor = "local";
  // Packs in a Ceph pool instead of DIR/packs when `rados.pool` is set
  // (its `prefix` is chosen here). The cluster is reached before anything
  // is written.
  RadosStoreOptions rados;
};

struct InitResult {
  std::string admin_user;      // "admin"
  std::string admin_password;  // shown once; only its scrypt hash is stored
  std::string ca_fingerprint;  // SHA-256 of the CA certificate
  std::string pack_store;      // "local:DIR/packs" or "rados:POOL/PREFIX"
};

// Creates a new vault in `data_dir` (created if missing; an existing
// directory must be empty). InvalidArgument "already holds a vault" if it
// has one; PermissionDenied/NotFound with the path for an unusable path. On
// failure nothing partial is left that a second init would trip over.
Result<InitResult> InitVault(const InitOptions& options);

struct OpenOptions {
  // Open the chunk store (recovering open packs) and take the serve lock.
  // Only `serve` (and a DR vault's replicator) do. Default false.
  bool serve = false;
  // Pack target size for the chunk store; 0 for the default.
  uint64_t pack_target_size = 0;
  // Files of the directory and the clock. Default: the POSIX Env.
  io::Env* env = nullptr;
  // Where pack I/O goes for a local store. Default: the process-wide
  // io_uring Env (it falls back to pread/pwrite where the kernel has no
  // io_uring). A vault whose packs are in RADOS ignores it.
  io::Env* pack_env = nullptr;
};

class Vault {
 public:
  static Result<std::unique_ptr<Vault>> Open(const std::string& data_dir,
                                             const OpenOptions& options);
  ~Vault();

  const std::string& data_dir() const { return data_dir_; }
  const std::string& site() const { return site_; }
  io::Env* env() const { return env_; }
  Catalog* catalog() { return catalog_.get(); }
  const Catalog* catalog() const { return catalog_.get(); }
  ChunkStore* store() { return store_.get(); }  // null unless opened to serve
  const CertificateAuthority& pki() const { return *pki_; }
  // For what changes the CA's files (importing a person CA): the command
  // line, not a serving process.
  CertificateAuthority* mutable_pki() { return pki_.get(); }
  AuditLog* audit() const { return audit_.get(); }
  std::string promotions_log() const { return data_dir_ + "/promotions.log"; }

  // New department keys, wrapped under the master key (for the catalog).
  Result<Bytes> NewWrappedDepartmentKeys() const;
  // A department's keys, unwrapped. The caller zeroes them when done.
  Result<crypto::DepartmentKeys> DepartmentKeys(uint32_t department_id) const;
  // Wraps raw department keys under this vault's master key (key escrow).
  Result<Bytes> WrapDepartmentKeys(ByteView raw_keys) const;

  // Reloads the certificate authority (after a DR set-up saved new trust).
  Status ReloadPki();

 private:
  Vault() = default;
  std::string data_dir_;
  std::string site_;
  io::Env* env_ = nullptr;
  crypto::SecretKey master_key_;
  std::unique_ptr<CertificateAuthority> pki_;
  std::unique_ptr<repo::LmdbEnv> lmdb_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<PackStore> packs_;
  std::unique_ptr<ChunkStore> store_;
  int lock_fd_ = -1;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_VAULT_H_
