// The vault catalog: departments, enrolment tokens, agents (their
// certificates and revocations), snapshots and jobs, in the vault's LMDB
// environment beside the chunk index and pack catalog.
//
// Every method runs in its own LMDB transaction and is safe to call from
// any thread and from several processes at once (`cairn-vault serve` and an
// administrative command): LMDB serialises writers, and a token is redeemed
// in the same write transaction that checks it, so it can be used once.
#ifndef CAIRN_VAULT_CATALOG_CATALOG_H_
#define CAIRN_VAULT_CATALOG_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/chunk_id.h"
#include "lib/proto/messages.h"
#include "lib/repo/lmdb.h"
#include "vault/policy/policy.h"

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
  uint64_t last_seen_micros = 0;  // its last admitted connection (0: never)
  bool drill_host = false;        // enrolled to run restore drills (section 23)
};

struct SnapshotRecord {
  // 24 hex digits, vault-wide unique: a random 8-digit tag (what people
  // type), then the 16-digit commit counter (SnapshotNumber). Snapshots from
  // before the tag have the counter alone.
  std::string id;
  uint32_t department_id = 0;
  std::string host;
  std::vector<std::string> paths;
  uint8_t kind = 1;  // 1 files, 2 image
  uint64_t time_micros = 0;
  crypto::ChunkId root_tree{};
  uint64_t files = 0, dirs = 0, bytes = 0, new_bytes = 0, new_chunks = 0, warnings = 0;
  uint64_t started_micros = 0, finished_micros = 0;
  uint64_t manifest_count = 0;
  // Retention lock: before this time nobody may forget the snapshot (0:
  // not locked). Set at commit from its source's policy; only ever moved
  // later (doc/design.md section 20).
  uint64_t locked_until_micros = 0;
  // Record bytes the backup session stored (new data, compressed and
  // encrypted); 0 when not known (replicated, or older rows).
  uint64_t stored_bytes = 0;
  // When scrub found a chunk it references damaged and could not repair it
  // (0: sound). Restore and status say so; a later repair clears it.
  uint64_t damaged_micros = 0;
  // How the agent read the data (doc/design.md section 24): the
  // point-in-time method ("btrfs", "reflink", "lvm"; "" = read live) and
  // when its view was taken.
  std::string pit_method;
  uint64_t pit_micros = 0;
};

// A person who logs in to the console and the API (doc/design.md section
// 18): a named account with one role.
struct UserRecord {
  std::string name;
  std::string role;                      // "admin", "operator", "dr" or "auditor"
  std::vector<std::string> departments;  // an operator's scope
  std::string password_hash;             // crypto::HashPassword; "" = no password login
  bool disabled = false;
  uint64_t created_micros = 0;
};

// A token for scripts: "cairn-api-<id>.<secret>", sent as a bearer token.
// Only a hash of the secret is kept.
struct ApiTokenRecord {
  std::string id;  // 16 hex digits
  std::string user;
  std::string label;
  Bytes secret_hash;  // SHA-256
  uint64_t created_micros = 0;
  bool revoked = false;
};

// An alert the vault raised (doc/design.md section 18, "Alerts"): firing
// until its condition clears, then kept as history.
struct AlertRecord {
  uint64_t id = 0;         // from 1, in the order they fired
  std::string key;         // rule and subject: "agent_unseen:<serial>"; one firing per key
  std::string rule;        // "agent_unseen", "job_failed", "job_missed", ...
  std::string severity;    // "warning" or "critical"
  std::string department;  // empty for the vault as a whole
  std::string summary;     // one line for people
  uint64_t fired_micros = 0;
  uint64_t resolved_micros = 0;  // 0 while firing
  bool firing() const { return resolved_micros == 0; }
};

// A backup session's resumable state (doc/protocol.md "Backup"): durable,
// so that an agent can resume it after a vault restart and a repeated
// commit answers as the first. The manifest is not kept here: an agent
// sends it again before it commits.
struct SessionRecord {
  uint64_t id = 0;
  uint32_t department_id = 0;
  std::string agent_serial;
  std::string host;
  uint8_t kind = 1;  // proto::SessionKind
  std::vector<std::string> paths;
  uint64_t last_flush = 0, records_stored = 0, bytes_stored = 0;
  uint64_t created_micros = 0, active_micros = 0;
  std::string committed_snapshot;  // set once committed
  uint64_t committed_micros = 0;
};

// A job for an agent (doc/protocol.md section 7, "Jobs"): queued by an
// operator, sent by `cairn-vault serve` to a connected agent in run mode,
// then done or failed with the agent's job_done.
enum class JobState : uint8_t { kQueued = 1, kSent = 2, kDone = 3, kFailed = 4, kMissed = 5 };

// "queued", "sent", "done", "failed", "missed".
std::string_view JobStateName(JobState state);

struct JobRecord {
  uint64_t id = 0;  // assigned by EnqueueJob, from 1, never reused
  // Target: the agent with this certificate serial, or (serial empty) any
  // agent of department_id enrolled as `host`. department_id is always set.
  uint32_t department_id = 0;
  std::string agent_serial;
  std::string host;
  uint8_t kind = 1;                // proto::JobKind: 1 backup now
  std::vector<std::string> paths;  // empty = the agent's configured backup set
  bool image = false;
  JobState state = JobState::kQueued;
  uint64_t created_micros = 0;
  uint64_t sent_micros = 0;      // 0 until sent
  uint64_t finished_micros = 0;  // 0 until done or failed
  std::string sent_to;           // serial of the agent it was sent to
  std::string snapshot_id;       // when done
  std::string error;             // when failed or missed: the reason
  // A scheduled job: its source (0: started by hand), and what the
  // source's policy asks of the backup.
  uint64_t source_id = 0;
  std::vector<std::string> excludes;
  uint8_t zstd_level = 0;  // 0: the agent's default
  uint64_t bandwidth = 0;  // bytes per second; 0: unlimited
  // A drill (kind 2) or a restore (kind 3): the snapshot it reads.
  std::string read_snapshot;
  // A drill: the policy's check command, its timeout, the RTO, and the
  // vault addresses to restore from (the DR site's, when there is one).
  std::string drill_check;
  uint32_t drill_check_timeout = 0;
  uint64_t drill_rto = 0;
  std::vector<std::string> read_from;
  // A restore: the directory on the agent's host it restores into.
  std::string restore_target;
  // A backup, from its source (doc/design.md section 24): the point-in-time
  // method, the hooks, their timeout (0: 600 s), whether a failed
  // pre-command goes on crash-consistent (its policy). And once it ended,
  // what the agent said made it consistent or not (the view, the hooks'
  // exit status and output).
  std::string pit;
  std::string pre_command, post_command;
  uint32_t hook_timeout = 0;
  bool hook_continue = false;
  std::string log;
};

// What a policy protects: an agent's paths (with excludes) or one image
// (doc/design.md section 20).
struct SourceRecord {
  uint64_t id = 0;  // from 1, never reused
  uint32_t department_id = 0;
  std::string host;  // the agent's host, within the department
  std::string policy;
  std::vector<std::string> paths;  // absolute, normal, sorted; the image when `image`
  std::vector<std::string> excludes;
  bool image = false;
  uint64_t created_micros = 0;
  // The scheduler's: the last slot a job was queued for (created_micros
  // until then), and that job.
  uint64_t last_slot_micros = 0;
  uint64_t last_job = 0;
  // Likewise for restore drills: the last drill slot queued (0: none).
  uint64_t last_drill_slot_micros = 0;
  // How the agent reads it (doc/design.md section 24): the point-in-time
  // method ("auto", "none", "btrfs", "reflink", "lvm"), and the
  // application's hooks with their timeout (0: 600 s).
  std::string pit = "auto";
  std::string pre_command, post_command;
  uint32_t hook_timeout = 0;
};

// The wire form of a snapshot (doc/protocol.md snapshot_list) and back.
proto::SnapshotInfo ToSnapshotInfo(const SnapshotRecord& s);
// Everything but the department and the manifest count.
SnapshotRecord FromSnapshotInfo(const proto::SnapshotInfo& info);
// Copies the eight statistics of a commit into `s`.
void SetStats(SnapshotRecord* s, const proto::SnapshotStats& stats);

// A manifest read in batches: calls `sink` with every chunk ID, in order,
// and stops at the first error `sink` returns (which it returns too). Lets
// a commit stream a manifest that does not fit in memory.
using ManifestReader =
    std::function<Status(const std::function<Status(std::span<const crypto::ChunkId>)>& sink)>;
// The reader of a manifest in memory (it must outlive the reader).
ManifestReader ManifestOf(const std::vector<crypto::ChunkId>& ids);

// Redeeming this "department" enrols a replicator (no department: it
// reads every department's snapshots).
inline constexpr uint32_t kReplicatorToken = 0;

// The commit counter of a snapshot ID; 0 if it is not one.
uint64_t SnapshotNumber(std::string_view id);

class Catalog {
 public:
  static Result<std::unique_ptr<Catalog>> Open(repo::LmdbEnv* env);

  // InvalidArgument if the name is malformed or taken.
  Result<Department> CreateDepartment(std::string_view name, ByteView wrapped_keys,
                                      uint64_t now_micros);
  Result<Department> FindDepartment(std::string_view name) const;
  Result<Department> FindDepartment(uint32_t id) const;
  Result<std::vector<Department>> ListDepartments() const;

  // A one-time enrolment token for `department`, valid for ttl_micros;
  // kReplicatorToken instead of a department makes a replicator's token.
  // Returns "<token id>.<secret>" (hex); only a hash of the secret is kept.
  // `drill_host`: the agent it enrols may be sent restore drills
  // (section 23).
  Result<std::string> CreateToken(uint32_t department, uint64_t now_micros, uint64_t ttl_micros,
                                  bool drill_host = false);
  // Checks and spends a token in one transaction. PermissionDenied, with
  // the reason, for an unknown, malformed, reused or expired token.
  struct TokenGrant {
    uint32_t department = 0;
    bool drill_host = false;
  };
  Result<TokenGrant> RedeemToken(std::string_view token, uint64_t now_micros);

  Status AddAgent(const AgentRecord& agent);
  Result<AgentRecord> FindAgent(std::string_view serial) const;
  Result<std::vector<AgentRecord>> ListAgents() const;
  // Records that the agent connected at `now_micros`. NotFound for an
  // unknown serial.
  Status NoteAgentSeen(std::string_view serial, uint64_t now_micros);
  // Marks the agent's certificate revoked. NotFound for an unknown serial.
  Status RevokeAgent(std::string_view serial, uint64_t now_micros);
  // True for revoked serials and for serials the vault never issued.
  bool IsRevokedOrUnknown(std::string_view serial) const;

  // People who log in to the console and API (admin, operator, dr, auditor).
  // The password is stored as an scrypt hash (crypto::HashPassword).
  Status PutUser(std::string_view name, std::string_view role, std::string_view password_hash);
  // Creates or replaces a user.
  Status PutUser(const UserRecord& user);
  // InvalidArgument "user NAME exists" when taken.
  Status CreateUser(const UserRecord& user);
  // NotFound for an unknown user.
  Result<UserRecord> FindUser(std::string_view name) const;
  Result<std::vector<UserRecord>> ListUsers() const;

  Status PutApiToken(const ApiTokenRecord& token);
  Result<ApiTokenRecord> FindApiToken(std::string_view id) const;
  Result<std::vector<ApiTokenRecord>> ListApiTokens() const;

  // Records a committed snapshot and its manifest (the plain chunk IDs it
  // references). The caller has checked that every manifest chunk is
  // durable (doc/design.md 6.3). Assigns the snapshot ID.
  Result<SnapshotRecord> CommitSnapshot(SnapshotRecord snapshot,
                                        const std::vector<crypto::ChunkId>& manifest);
  Result<SnapshotRecord> CommitSnapshot(SnapshotRecord snapshot, const ManifestReader& manifest);
  // Newest first; at most `limit` (0: all).
  Result<std::vector<SnapshotRecord>> ListSnapshots(uint32_t department, size_t limit) const;
  Result<SnapshotRecord> FindSnapshot(uint32_t department, std::string_view id) const;
  // Removes a snapshot and its manifest (GC reclaims the chunks).
  // PermissionDenied while it is locked, checked in the deleting
  // transaction; NotFound when it is not there.
  Status ForgetSnapshot(uint32_t department, std::string_view id, uint64_t now_micros);
  // Moves a snapshot's lock to `until_micros` unless it is already later.
  // Returns the lock in force.
  Result<uint64_t> LockSnapshot(uint32_t department, std::string_view id, uint64_t until_micros);
  // Drill reports (drills.cc): `make` turns the new drill's ID into its
  // signed report (JSON), stored under that ID in the same transaction.
  Result<uint64_t> AddDrill(const std::function<Result<std::string>(uint64_t id)>& make);
  // Signed reports, newest first, at most `limit` (0: all): (ID, JSON).
  Result<std::vector<std::pair<uint64_t, std::string>>> ListDrills(size_t limit) const;
  // Marks a snapshot damaged since `micros` (0: sound again).
  Status MarkSnapshotDamaged(uint32_t department, std::string_view id, uint64_t micros);

  // Policies (by name) and sources (policies.cc).
  // InvalidArgument "policy NAME exists" (create) or NotFound (edit).
  Status PutPolicy(const Policy& policy, bool create);
  Result<Policy> FindPolicy(std::string_view name) const;
  Result<std::vector<Policy>> ListPolicies() const;
  // Assigns the ID. NotFound for an unknown policy.
  Result<SourceRecord> AddSource(SourceRecord source);
  Result<SourceRecord> FindSource(uint64_t id) const;
  Result<std::vector<SourceRecord>> ListSources() const;
  Status RemoveSource(uint64_t id);
  // Queues `job` for `source_id`'s slot and records the slot, in one
  // transaction: returns 0 (queuing nothing) when that slot or a later one
  // was queued already. So a slot runs once, across restarts and races.
  // A drill job (job.kind 2) uses the source's drill slot instead.
  Result<uint64_t> QueueScheduledJob(uint64_t source_id, uint64_t slot_micros, const JobRecord& job,
                                     uint64_t now_micros);
  Status SetSourceSlot(uint64_t source_id, uint64_t slot_micros);
  Result<std::vector<crypto::ChunkId>> Manifest(uint32_t department, std::string_view id) const;
  // The same streamed, a part (up to 16384 IDs) at a time, in one read
  // transaction; Corruption when the count differs from the snapshot's.
  Status ForEachManifestPart(
      const SnapshotRecord& snapshot,
      const std::function<Status(std::span<const crypto::ChunkId>)>& sink) const;

  // --- Replication (doc/design.md section 13) ---------------------------

  // A department replicated from another vault, with its ID and keys
  // (wrapped by this vault's master key). Idempotent for the same ID and
  // name; InvalidArgument when the ID or the name is taken by another.
  Result<Department> ImportDepartment(uint32_t id, std::string_view name, ByteView wrapped_keys,
                                      uint64_t created_micros);
  // Records a snapshot replicated from another vault under its own ID, and
  // raises this vault's counter past it so that later local snapshots sort
  // after it. Returns false (and changes nothing) when the department
  // already holds a snapshot with that ID.
  Result<bool> CommitReplica(const SnapshotRecord& snapshot,
                             const std::vector<crypto::ChunkId>& manifest);
  // Snapshots of every department whose ID (as a number) is above `after`,
  // oldest first, at most `limit` (0: all).
  Result<std::vector<SnapshotRecord>> ListSnapshotsAfter(uint64_t after, size_t limit) const;
  // The number of the newest snapshot (0 when there is none).
  Result<uint64_t> LatestSnapshotNumber() const;
  // Small named values (replication cursors, promotion state); NotFound if
  // unset.
  Result<std::string> GetSetting(std::string_view name) const;
  Status PutSetting(std::string_view name, std::string_view value);
  Status DeleteSetting(std::string_view name);
  // Settings whose names start with `prefix`: (name, value), by name.
  Result<std::vector<std::pair<std::string, std::string>>> ListSettings(
      std::string_view prefix) const;

  // Alerts. FireAlert records `alert` (its id is assigned) unless one with
  // the same key is firing: then it returns false and changes nothing.
  Result<bool> FireAlert(AlertRecord* alert);
  // Resolves the firing alert of `key`; NotFound when none fires.
  Result<AlertRecord> ResolveAlert(std::string_view key, uint64_t now_micros);
  // Firing alerts, oldest first.
  Result<std::vector<AlertRecord>> FiringAlerts() const;
  // The newest `limit` alerts, firing or not, newest first.
  Result<std::vector<AlertRecord>> RecentAlerts(size_t limit) const;

  // Backup sessions (their resumable state).
  Status PutSession(const SessionRecord& session);
  Result<SessionRecord> FindSession(uint64_t id) const;
  Status DeleteSession(uint64_t id);  // OK when absent
  Result<std::vector<SessionRecord>> ListSessions() const;

  // Queues a job; only the target fields (department_id, agent_serial,
  // host), kind, paths and image of `job` are used. Returns its ID.
  // InvalidArgument for an unknown kind, an empty or over-long path, more
  // than 1024 paths, or a target without serial and host; NotFound for an
  // unknown department or serial; PermissionDenied for a revoked serial or
  // a serial of another department.
  Result<uint64_t> EnqueueJob(const JobRecord& job, uint64_t now_micros);
  Result<JobRecord> FindJob(uint64_t id) const;
  // Every job, oldest first; at most the `limit` newest (0: all).
  Result<std::vector<JobRecord>> ListJobs(size_t limit = 0) const;
  // Only queued jobs, oldest first (the dispatcher's poll; cheap: an index
  // of queued IDs is kept beside the jobs).
  Result<std::vector<JobRecord>> ListQueuedJobs() const;
  // queued -> sent to the agent with certificate `serial`. InvalidArgument
  // if the job is not queued (another dispatcher took it, or it was
  // finished); NotFound for an unknown ID.
  Status MarkJobSent(uint64_t id, std::string_view serial, uint64_t now_micros);
  // sent -> queued, when sending failed before the agent could see it.
  Status RequeueJob(uint64_t id);
  // sent -> done (ok, with snapshot_id) or failed (with error).
  // InvalidArgument if the job is not in state sent.
  Status FinishJob(uint64_t id, bool ok, std::string_view snapshot_id, std::string_view error,
                   uint64_t now_micros, std::string_view log = "");
  // from -> to (queued -> missed, sent -> failed) with the reason.
  // InvalidArgument when the job is no longer in state `from`.
  Status ExpireJob(uint64_t id, JobState from, JobState to, std::string_view reason,
                   uint64_t now_micros);

 private:
  explicit Catalog(repo::LmdbEnv* env) : env_(env) {}
  // Reads a snapshot's row, lets `change` edit it, and writes it back in
  // the same transaction when `change` returns true.
  Status UpdateSnapshot(uint32_t department, std::string_view id,
                        const std::function<bool(SnapshotRecord&)>& change);
  // A job to queue, checked (EnqueueJob's rules).
  Result<JobRecord> PrepareJob(const JobRecord& spec, uint64_t now_micros) const;
  repo::LmdbEnv* env_;
  repo::LmdbDb departments_, department_names_, tokens_, agents_, snapshots_, manifests_, meta_,
      users_, jobs_, jobs_queued_, sessions_, api_tokens_, alerts_, policies_, sources_, drills_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_CATALOG_CATALOG_H_
