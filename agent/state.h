// The agent's state directory (`--state DIR`):
//
//   DIR/agent.toml       format version, vault addresses, department, host
//   DIR/cert.pem         the agent's certificate (issued at enrolment)
//   DIR/key.pem          its private key (0600; generated on this host)
//   DIR/ca.pem           the vault CA, pinned by the enrolment token
//   DIR/department.keys  the department's keys (crypto::SerializeDepartmentKeys, 0600)
//   DIR/lmdb/            the file cache (file_cache.h)
//
// The directory is created 0700 and every file in it 0600 whatever the
// umask. Files are written atomically (temporary name, fsync, rename, fsync
// of the directory), cert and keys first and agent.toml last, so a
// directory holds an enrolment exactly when agent.toml exists.
#ifndef CAIRN_AGENT_STATE_H_
#define CAIRN_AGENT_STATE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/keys.h"

namespace cairn::agent {

inline constexpr int kStateFormatVersion = 1;

// agent.toml.
struct AgentConfig {
  int format_version = kStateFormatVersion;
  std::vector<std::string> vault_addresses;  // "host:port", in order of preference
  std::string department;
  uint32_t department_id = 0;
  std::string host;  // the name the certificate was issued for
};

// Everything an enrolled agent needs to talk to its vault.
struct AgentState {
  std::string dir;
  AgentConfig config;
  std::string certificate_pem;
  std::string private_key_pem;  // secret
  std::string ca_pem;
  crypto::DepartmentKeys keys;  // secret
};

struct StatePaths {
  explicit StatePaths(std::string dir_in) : dir(std::move(dir_in)) {}
  std::string dir;
  std::string config() const { return dir + "/agent.toml"; }
  std::string certificate() const { return dir + "/cert.pem"; }
  std::string private_key() const { return dir + "/key.pem"; }
  std::string ca() const { return dir + "/ca.pem"; }
  std::string keys() const { return dir + "/department.keys"; }
  std::string lmdb() const { return dir + "/lmdb"; }
};

// Whether `dir` already holds an enrolment (its agent.toml exists).
bool HoldsEnrollment(const std::string& dir);

// Creates `dir` (and parents) with mode 0700, or tightens an existing one
// to 0700. InvalidArgument if it exists and is not a directory.
Status CreateStateDir(const std::string& dir);

// Writes a whole enrolment into an existing state directory (see the file
// comment for the order). On failure the directory may hold some of the new
// files but no agent.toml, so it does not count as enrolled.
Status WriteEnrollment(const std::string& dir, const AgentConfig& config,
                       std::string_view certificate_pem, std::string_view private_key_pem,
                       std::string_view ca_pem, ByteView department_keys);

// Loads an enrolled state directory. NotFound "DIR is not enrolled (run
// cairn-agent enroll)" without agent.toml; Corruption for a damaged file;
// InvalidArgument for a newer format version.
// `need_keys` false: a replicator's identity, which holds no department
// keys (its department.keys is empty).
Result<AgentState> LoadState(const std::string& dir, bool need_keys = true);

// A vault's advice on where to reach it (hello_ok's vault_addresses: the
// primary, then DR sites): when non-empty and different from
// state->config's list, agent.toml is rewritten with it and *state updated,
// so that the agent fails over to the DR site when the primary is lost.
// Returns whether anything changed.
Result<bool> AdoptVaultAddresses(AgentState* state, const std::vector<std::string>& advice);

// Writes `data` to `path` atomically with mode 0600.
Status WritePrivateFile(const std::string& path, ByteView data);

// Serialises and parses agent.toml (pure; for tests).
std::string FormatConfig(const AgentConfig& config);
Result<AgentConfig> ParseConfig(std::string_view text);

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_STATE_H_
