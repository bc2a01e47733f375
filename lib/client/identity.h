// A client's identity: the state directory an enrolment writes and every
// later connection to a vault reads (`--state DIR` of cairn-agent and
// cairn-restore; DIR/replicator of a DR vault's cairn-replicator).
//
//   DIR/agent.toml       format version, vault addresses, department, host
//                        (and the agent's own settings, such as `paths`,
//                        which this file keeps when it rewrites the rest)
//   DIR/cert.pem         the client's certificate (issued at enrolment)
//   DIR/key.pem          its private key (0600; generated on this host)
//   DIR/ca.pem           the vault CA, pinned by the enrolment token
//   DIR/department.keys  the department's keys (crypto::SerializeDepartmentKeys,
//                        0600; empty for a replicator, which has none)
//   DIR/lmdb/            the agent's file cache (agent/file_cache.h)
//
// The directory is created 0700 and every file in it 0600 whatever the
// umask. Files are written atomically (temporary name, fsync, rename, fsync
// of the directory), cert and keys first and agent.toml last, so a
// directory holds an enrolment exactly when agent.toml exists.
#ifndef CAIRN_LIB_CLIENT_IDENTITY_H_
#define CAIRN_LIB_CLIENT_IDENTITY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/keys.h"

namespace cairn::client {

inline constexpr int kIdentityFormatVersion = 1;

// agent.toml.
struct IdentityConfig {
  int format_version = kIdentityFormatVersion;
  std::vector<std::string> vault_addresses;  // "host:port", in order of preference
  std::string department;
  uint32_t department_id = 0;
  std::string host;  // the name the certificate was issued for
};

// Everything an enrolled client needs to talk to its vault.
struct Identity {
  std::string dir;
  IdentityConfig config;
  std::string certificate_pem;
  std::string private_key_pem;  // secret
  std::string ca_pem;
  crypto::DepartmentKeys keys;  // secret; empty for a replicator
};

struct IdentityPaths {
  explicit IdentityPaths(std::string dir_in) : dir(std::move(dir_in)) {}
  std::string dir;
  std::string config() const { return dir + "/agent.toml"; }
  std::string certificate() const { return dir + "/cert.pem"; }
  std::string private_key() const { return dir + "/key.pem"; }
  std::string ca() const { return dir + "/ca.pem"; }
  std::string keys() const { return dir + "/department.keys"; }
  std::string lmdb() const { return dir + "/lmdb"; }
  std::string lock() const { return dir + "/run.lock"; }
};

// Whether `dir` already holds an enrolment (its agent.toml exists).
bool HoldsEnrollment(const std::string& dir);

// Creates `dir` (and parents) with mode 0700, or tightens an existing one
// to 0700. InvalidArgument if it exists and is not a directory.
Status CreateStateDir(const std::string& dir);

// Writes a whole enrolment into an existing state directory (see the file
// comment for the order). On failure the directory may hold some of the new
// files but no agent.toml, so it does not count as enrolled.
Status WriteEnrollment(const std::string& dir, const IdentityConfig& config,
                       std::string_view certificate_pem, std::string_view private_key_pem,
                       std::string_view ca_pem, ByteView department_keys);

// Loads an enrolled state directory. NotFound "DIR is not enrolled (run
// cairn-agent enroll)" without agent.toml; Corruption for a damaged file;
// InvalidArgument for a newer format version.
// `need_keys` false: a replicator's identity, which holds no department
// keys (its department.keys is empty).
Result<Identity> LoadIdentity(const std::string& dir, bool need_keys = true);

// A vault's advice on where to reach it (hello_ok's vault_addresses: the
// primary, then DR sites set up by replication): when non-empty and
// different from identity->config's list, agent.toml's vault_addresses are
// rewritten (every other key kept) and *identity updated, so that the agent
// fails over to the DR site when the primary is lost. Returns whether
// anything changed.
Result<bool> AdoptVaultAddresses(Identity* identity, const std::vector<std::string>& advice);

// An exclusive hold on a state directory (DIR/run.lock), so that two agent
// processes never work on one file cache or extent state at once. Released
// when destroyed, or when the process dies.
class IdentityLock {
 public:
  IdentityLock(IdentityLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  IdentityLock& operator=(IdentityLock&&) = delete;
  ~IdentityLock();

 private:
  friend Result<IdentityLock> LockIdentity(const std::string& dir, std::string_view what);
  explicit IdentityLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Takes the lock, recording this process and `what` it does ("run",
// "backup"). InvalidArgument (exit 2) naming the holder ("another
// cairn-agent (pid 4242, run) is using DIR") when another process holds it.
Result<IdentityLock> LockIdentity(const std::string& dir, std::string_view what);

// Writes `data` to `path` atomically with mode 0600.
Status WritePrivateFile(const std::string& path, ByteView data);

// Serialises and parses agent.toml (pure; for tests). `existing` is the
// current file's text: keys this struct does not know (an agent's `paths`)
// are carried over from it.
std::string FormatConfig(const IdentityConfig& config, std::string_view existing = {});
Result<IdentityConfig> ParseConfig(std::string_view text);

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_IDENTITY_H_
