// The vault catalog: departments, enrolment tokens, agents (their
// certificates and revocations) and snapshots, in the vault's LMDB
// environment beside the chunk index and pack catalog.
//
// Every method runs in its own LMDB transaction and is safe to call from
// any thread and from several processes at once (`cairn-vault serve` and an
// administrative command): LMDB serialises writers, and a token is redeemed
// in the same write transaction that checks it, so it can be used once.
#ifndef CAIRN_VAULT_CATALOG_H_
#define CAIRN_VAULT_CATALOG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/chunk_id.h"
#include "lib/repo/lmdb.h"

namespace cairn::vault {

struct Department {
  uint32_t id = 0;
  std::string name;
  uint64_t created_micros = 0;
  Bytes wrapped_keys;  // DepartmentKeys, wrapped by the vault master key
};

struct AgentRecord {
  std::string serial;  // certificate serial, lower-case hex
  uint32_t department_id = 0;
  std::string host;
  uint64_t enrolled_micros = 0;
  bool revoked = false;
  uint64_t revoked_micros = 0;
};

struct SnapshotRecord {
  std::string id;  // 16 hex digits, vault-wide unique
  uint32_t department_id = 0;
  std::string host;
  std::vector<std::string> paths;
  uint8_t kind = 1;  // 1 files, 2 image
  uint64_t time_micros = 0;
  crypto::ChunkId root_tree{};
  uint64_t files = 0, dirs = 0, bytes = 0, new_bytes = 0, new_chunks = 0, warnings = 0;
  uint64_t started_micros = 0, finished_micros = 0;
  uint64_t manifest_count = 0;
};

// Department names: 1 to 64 of [a-z0-9-], starting with a letter or digit.
Status ValidateDepartmentName(std::string_view name);

class Catalog {
 public:
  static Result<std::unique_ptr<Catalog>> Open(repo::LmdbEnv* env);

  // InvalidArgument if the name is malformed or taken.
  Result<Department> CreateDepartment(std::string_view name, ByteView wrapped_keys,
                                      uint64_t now_micros);
  Result<Department> FindDepartment(std::string_view name) const;
  Result<Department> FindDepartment(uint32_t id) const;
  Result<std::vector<Department>> ListDepartments() const;

  // A one-time enrolment token for `department`, valid for ttl_micros.
  // Returns "<token id>.<secret>" (hex); only a hash of the secret is kept.
  Result<std::string> CreateToken(uint32_t department, uint64_t now_micros, uint64_t ttl_micros);
  // Checks and spends a token in one transaction. PermissionDenied, with
  // the reason, for an unknown, malformed, reused or expired token.
  Result<uint32_t> RedeemToken(std::string_view token, uint64_t now_micros);

  Status AddAgent(const AgentRecord& agent);
  Result<AgentRecord> FindAgent(std::string_view serial) const;
  Result<std::vector<AgentRecord>> ListAgents() const;
  // Marks the agent's certificate revoked. NotFound for an unknown serial.
  Status RevokeAgent(std::string_view serial, uint64_t now_micros);
  // True for revoked serials and for serials the vault never issued.
  bool IsRevokedOrUnknown(std::string_view serial) const;

  // People who log in to the console and API (admin, operator, dr, auditor).
  // The password is stored as an scrypt hash (crypto::HashPassword).
  Status PutUser(std::string_view name, std::string_view role, std::string_view password_hash);
  // Role and password hash; NotFound for an unknown user.
  Result<std::pair<std::string, std::string>> FindUser(std::string_view name) const;

  // Records a committed snapshot and its manifest (the plain chunk IDs it
  // references). The caller has checked that every manifest chunk is
  // durable (doc/design.md 6.3). Assigns the snapshot ID.
  Result<SnapshotRecord> CommitSnapshot(SnapshotRecord snapshot,
                                        const std::vector<crypto::ChunkId>& manifest);
  // Newest first; at most `limit` (0: all).
  Result<std::vector<SnapshotRecord>> ListSnapshots(uint32_t department, size_t limit) const;
  Result<SnapshotRecord> FindSnapshot(uint32_t department, std::string_view id) const;
  Result<std::vector<crypto::ChunkId>> Manifest(uint32_t department, std::string_view id) const;

 private:
  explicit Catalog(repo::LmdbEnv* env) : env_(env) {}
  repo::LmdbEnv* env_;
  repo::LmdbDb departments_, department_names_, tokens_, agents_, snapshots_, manifests_, meta_,
      users_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_CATALOG_H_
