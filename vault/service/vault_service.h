// VaultService: the one place for the vault's rules. Every front end calls
// it: the protocol handlers (rpc/), the command line (cmd/), the DR site's
// puller (replication/), and the REST API and scheduler as they land. None
// of them touches the catalog or the store to change state by itself.
//
// The rules, and where each is enforced:
//   - a snapshot is committed only when every chunk its manifest names is
//     durable and indexed (doc/design.md 6.3): Commit, CommitReplica;
//   - an enrolment token is spent once, before expiry: Enroll;
//   - an agent sees and touches only its own department: every call takes
//     the department from the authenticated Actor, never from the request;
//   - a DR copy refuses backups until it is promoted: BeginSession;
//   - promotion needs a replica, demotion a promoted vault, and both name
//     who decided: Promote, Demote;
//   - a job goes queued -> sent -> done|failed, and only the agent it was
//     sent to may finish it: StartJob, MarkJobSent, ReportJobDone;
//   - revoked certificates are refused at once: RevokeAgent,
//     IsRevokedOrUnknown (the listener asks on every handshake and sweep);
//   - a policy is never weaker than its template, and its lock never
//     shortens: CreatePolicy, EditPolicy (vault/policy/policy.h);
//   - a schedule's slot is queued once, across restarts: ScheduleDue;
//   - a locked snapshot is never forgotten, by anyone: ForgetSnapshots,
//     ApplyRetentionRules (Catalog::ForgetSnapshot checks it again).
//
// Threading: every method may be called from any thread at once; several
// block (fsync, LMDB writes, pack reads), so the network front end calls
// them from its blocking pool, never from an I/O thread. A BackupSession is
// used by one connection at a time.
#ifndef CAIRN_VAULT_SERVICE_VAULT_SERVICE_H_
#define CAIRN_VAULT_SERVICE_VAULT_SERVICE_H_

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/buffer_pool.h"
#include "lib/base/status.h"
#include "lib/crypto/pki.h"
#include "lib/io/file_io.h"
#include "lib/proto/messages.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"
#include "vault/config.h"
#include "vault/policy/policy.h"
#include "vault/service/manifest_buffer.h"
#include "vault/store/gc.h"
#include "vault/store/scrub.h"
#include "vault/vault.h"

namespace cairn::vault {

// What a person may do, by role (doc/design.md section 18). An operator's
// permissions hold only in the departments of its scope.
enum class Permission {
  kReadState,          // departments, agents, snapshots, jobs, replication, alerts
  kManageDepartments,  // create departments
  kEnrol,              // enrolment tokens: they release a department's keys
  kRevoke,             // revoke an agent's certificate
  kRunJobs,            // start backups
  kRestore,            // read a department's data (restores, drills)
  kFailover,           // promote, demote
  kReadAudit,          // the audit trail and the reports
  kReadUsers,          // the list of people
  kManageUsers,        // create and disable people, set others' passwords
  kManagePolicies,     // create and edit protection policies
  kManageSources,      // assign policies to an agent's paths or images
  kForget,             // forget snapshots (never locked ones)
  kMaintainStorage,    // garbage collection, compaction, scrub, repair (vault-wide)
};

// Who asks: the vault's record of the caller for logs (and the audit trail).
struct Actor {
  enum class Kind { kLocal, kUser, kAgent, kReplicator, kAnonymous, kVault };
  Kind kind = Kind::kLocal;
  // People (kUser): the role and an operator's departments.
  std::string role;
  std::vector<std::string> departments;
  // local: the OS user; agent and replicator: the certificate serial.
  std::string name;
  std::string host;         // agents: the host its certificate names
  uint32_t department = 0;  // agents: from the certificate
  std::string address;      // the remote endpoint, or "local"

  // The process's own user on this machine (the command line).
  static Actor Local();
  // The serving vault itself (alerts it raises and resolves).
  static Actor Self();
  // An authenticated agent or replicator connection.
  static Actor FromPeer(const crypto::PeerIdentity& peer, uint32_t department, std::string address);
  std::string Describe() const;  // "agent 3f2a.. (fin-srv-01) at 10.0.0.5:41000"
  // The actor as the audit trail names it: "local:root", "user:alice",
  // "agent:<serial>", "replicator:<serial>", "anonymous", "vault".
  std::string AuditName() const;
};

// One backup session (doc/protocol.md "Backup"): outlives its connection,
// so that an agent whose connection dropped can resume it, and its record
// is durable, so that it survives a vault restart too. Its manifest is held
// in bounded memory (manifest_buffer.h).
struct BackupSession {
  BackupSession(SessionRecord r, io::Env* env, std::string spill_path, size_t memory_ids)
      : record(std::move(r)), manifest(env, std::move(spill_path), memory_ids) {}
  uint64_t id() const { return record.id; }
  bool committed() const { return !record.committed_snapshot.empty(); }

  SessionRecord record;
  ManifestBuffer manifest;
};

// What an in-place restore's get_delta keeps between requests on one
// connection: the department's record decoder, opened on first use.
struct DeltaContext {
  std::unique_ptr<repo::RecordDecoder> decoder;
};

struct ServiceOptions {
  // The listener's own address, told to agents when no address list was
  // ever set (enrolment and hello_ok advice). Empty outside serve.
  std::string advertised_address;
  // A backup session nobody used for this long is forgotten: its record
  // and its manifest spill go. Default 1 h: far longer than an agent's
  // reconnection backoff (60 s), far shorter than the next nightly run.
  std::chrono::seconds session_idle{3600};
  // Open sessions an agent, and a department, may hold at once. Past the
  // bound, the least recently used idle one is forgotten; when all are in
  // use, a new one is refused. Defaults 4 and 64: an agent runs one backup
  // at a time (a few more cover file and image sessions and resumes).
  size_t max_sessions_per_agent = 4;
  size_t max_sessions_per_department = 64;
  // Manifest IDs a session keeps in memory before it spills the rest to a
  // file (DIR/sessions/). Default 65536: 2 MiB a session.
  size_t manifest_memory_ids = 65536;
  // Early warning of abnormal change (doc/design.md section 20): a backup
  // that departs sharply from its series' recent ones raises an alert and
  // locks the series' last good snapshots this long. 0 turns it off.
  uint64_t anomaly_lock_seconds = 7 * 86400;
};

// What identifies a series of snapshots: department, host, kind and the
// sorted, normal paths. A source and the snapshots it makes share it.
std::string SeriesKeyOf(const SnapshotRecord& s);
std::string SeriesKeyOf(const SourceRecord& s);
// A backup job of `source` with what its policy (null: none found) asks:
// excludes, compression, bandwidth, the point-in-time method and hooks.
JobRecord BackupJobOf(const SourceRecord& source, const Policy* policy);

class VaultService {
 public:
  VaultService(Vault* vault, ServiceOptions options = {});

  Vault* vault() const { return vault_; }
  const ServiceOptions& options() const { return options_; }
  // Before serving: removes the manifest spills of a process that died.
  Status PrepareToServe();
  void set_advertised_address(std::string address) { options_.advertised_address = address; }

  // --- People --------------------------------------------------------------
  // OK when `actor` may do `what` (in `department`, for operators).
  // PermissionDenied names the role and what it may not do; a department
  // outside an operator's scope is NotFound, as if it did not exist.
  Status Authorize(const Actor& actor, Permission what, std::string_view department = {}) const;
  // Whether `department` is in `actor`'s view (every one but an operator's
  // scope is: the others see all).
  bool InScope(const Actor& actor, std::string_view department) const;

  // A named account (admin only). Returns its password: `password` when
  // given, else a generated one, shown once. InvalidArgument for a bad
  // name, role, scope or a short password.
  Result<std::string> CreateUser(const Actor& actor, std::string_view name, std::string_view role,
                                 const std::vector<std::string>& departments,
                                 std::optional<std::string> password);
  Result<std::vector<UserRecord>> ListUsers(const Actor& actor) const;
  // Disables (or enables) an account; its sessions and tokens stop working.
  // The last enabled admin cannot be disabled.
  Status SetUserDisabled(const Actor& actor, std::string_view name, bool disabled);
  // A new password: a person's own, or anyone's for an admin. At least 12
  // characters.
  Status SetPassword(const Actor& actor, std::string_view name, std::string_view password);
  // Checks a login. Unavailable (retryable; the API answers 429) while the
  // account or the address is backing off after failed attempts;
  // PermissionDenied for a wrong name or password, or a disabled account.
  // Every attempt, good or bad, is audited.
  Result<Actor> Login(std::string_view name, std::string_view password, std::string_view address);
  // Records a logout in the audit trail.
  void AuditLogout(const Actor& actor) const { Audit(actor, "user.logout", "", actor.name); }
  // A login with a person's client certificate (verified by the HTTP
  // server): from the vault's CA only with role person; from an imported
  // CA, the CN names the account. Audited either way; PermissionDenied
  // when refused.
  struct PersonCertificate {
    std::string cn, ou, root_fingerprint;
  };
  Result<Actor> CertificateLogin(const PersonCertificate& cert, std::string_view address);
  // A certificate for `user`'s key (its CSR) from the vault's CA, role
  // person (admin). PEM.
  Result<std::string> IssuePersonCertificate(const Actor& actor, std::string_view user,
                                             std::string_view csr_pem, int validity_days);
  // Trusts a CA (the city's) for people's certificates (admin). Takes
  // effect when serve starts next.
  Status ImportPersonCa(const Actor& actor, std::string_view pem);
  // The actor of an account for a request from `address` (a session, a
  // certificate login): PermissionDenied when it is disabled or gone.
  Result<Actor> UserActor(std::string_view name, std::string_view address) const;
  // An API token for `user` (a person's own, or anyone's for an admin):
  // "cairn-api-<id>.<secret>", shown once.
  Result<std::string> CreateApiToken(const Actor& actor, std::string_view user,
                                     std::string_view label);
  Status RevokeApiToken(const Actor& actor, std::string_view id);
  Result<std::vector<ApiTokenRecord>> ListApiTokens(const Actor& actor) const;
  // The actor a bearer token stands for. PermissionDenied for an unknown,
  // revoked or malformed token, or a disabled account.
  Result<Actor> AuthenticateToken(std::string_view token, std::string_view address) const;

  // --- What a person may see (views.cc): each checks the role, and an
  // operator sees only its departments. -----------------------------------
  Result<std::vector<Department>> ListDepartments(const Actor& actor) const;
  Result<std::vector<AgentRecord>> ListAgents(const Actor& actor) const;
  Result<std::vector<SnapshotRecord>> ListSnapshots(const Actor& actor,
                                                    std::string_view department) const;
  // By ID or unique prefix.
  Result<SnapshotRecord> FindSnapshot(const Actor& actor, std::string_view department,
                                      std::string_view id) const;
  Result<std::vector<JobRecord>> ListJobs(const Actor& actor) const;
  Result<JobRecord> FindJob(const Actor& actor, uint64_t id) const;
  struct ReplicationStatus {
    std::string site;
    bool replica = false, promoted = false;
    std::string replica_of, promoted_line;
    std::vector<std::string> agent_addresses;
    boost::json::object last_pass;  // the DR puller's last pass, when this is a DR vault
  };
  Result<ReplicationStatus> Replication(const Actor& actor) const;
  Result<std::vector<AuditEntry>> AuditTrail(const Actor& actor, const AuditFilter& filter) const;
  Result<AuditVerification> VerifyAudit(const Actor& actor) const;
  // The DR puller records each pass's figures here (lag, pending) for the
  // API, the metrics and the alerts.
  Status RecordReplicationPass(const boost::json::object& pass);

  // --- Alerts (alerts.cc) ------------------------------------------------
  // What the rules look at beside the catalog: the audit entries not yet
  // forwarded to syslog (none when no forwarding is configured).
  struct AlertInputs {
    std::optional<uint64_t> audit_backlog;
  };
  // Evaluates every rule now: fires the alerts whose condition holds and
  // that are not firing, resolves those whose condition cleared. Each
  // change is audited ("alert.fire", "alert.resolve", actor "vault"), so
  // that syslog and the webhook see it. Returns the changes.
  Result<std::vector<AlertRecord>> EvaluateAlerts(const AlertThresholds& thresholds,
                                                  const AlertInputs& inputs);
  // Firing alerts (active_only) or the newest `limit`, scoped like the
  // other views: an operator sees its departments' and the vault's.
  Result<std::vector<AlertRecord>> ListAlerts(const Actor& actor, bool active_only,
                                              size_t limit) const;
  // Records that an agent is connected now: at its handshake, and every
  // few seconds while its connection lasts (the server's sweep). Kept in
  // the catalog to within a minute.
  void NoteAgentSeen(std::string_view serial);
  // The data directory's disk.
  Result<io::FileSystemSpace> Disk() const;
  // At a DR copy (not promoted): how far it is behind its source, in
  // seconds (the last good pass's lag plus the time since that pass).
  // None elsewhere, and before the first pass.
  std::optional<double> ReplicationLagSeconds() const;

  // --- Policies, sources, scheduling, retention, status (policies.cc) ----
  // InvalidArgument naming the rule a policy breaks (CheckPolicy), or
  // "exists". Refusals are audited too.
  Result<Policy> CreatePolicy(const Actor& actor, Policy policy);
  // Applies `edit` to the stored policy. PermissionDenied for a shorter
  // lock, or (operators) a policy that protects sources outside the scope.
  Result<Policy> EditPolicy(const Actor& actor, std::string_view name,
                            const std::function<Status(Policy&)>& edit);
  Result<std::vector<Policy>> ListPolicies(const Actor& actor) const;
  Result<Policy> FindPolicy(const Actor& actor, std::string_view name) const;
  static boost::json::object PolicyToJson(const Policy& p);

  struct SourceSpec {
    std::string department, host, policy;
    std::vector<std::string> paths, excludes;
    std::string image;  // instead of paths
    // How the agent reads it (doc/design.md section 24): "auto" (default),
    // "none", "btrfs" (files), "reflink" or "lvm" (images); the hooks and
    // their timeout in seconds (0: 600).
    std::string pit = "auto";
    std::string pre_command, post_command;
    uint32_t hook_timeout = 0;
  };
  // NotFound for an unknown department, policy or agent host;
  // InvalidArgument for relative paths, paths and an image together, or a
  // series another source protects.
  Result<SourceRecord> AddSource(const Actor& actor, const SourceSpec& spec);
  Status RemoveSource(const Actor& actor, uint64_t id);
  Result<std::vector<SourceRecord>> ListSources(const Actor& actor) const;

  // The scheduler (serve calls these every second).
  struct Due {
    uint64_t slot_micros = 0;  // the schedule's slot
    uint64_t run_micros = 0;   // slot + the source's fixed jitter
  };
  // The slot to run next: after the last one queued; when several have
  // passed (the vault was down), the latest of them, once.
  std::optional<Due> NextDue(const SourceRecord& source, const Policy& policy,
                             const SchedulerOptions& options, uint64_t now_micros) const;
  static uint64_t SourceJitterMicros(const SourceRecord& source, uint64_t gap_seconds,
                                     const SchedulerOptions& options);
  // Queues a job for every source whose slot has come. Returns their IDs.
  Result<std::vector<uint64_t>> ScheduleDue(const SchedulerOptions& options);
  // queued -> missed when the agent stays away, sent -> failed past the
  // deadline or when the agent disappeared; audited with the reason.
  Result<size_t> ExpireJobs(const SchedulerOptions& options);
  // Queues a restore drill for every source whose policy's drill is due
  // (doc/design.md section 23.3): of the series' newest good snapshot, on a
  // drill host of the department that is not the source's host, reading
  // from the DR site when there is one. With no such drill host the drill
  // is recorded as missed, with the reason. Returns the queued drills' job
  // IDs.
  Result<std::vector<uint64_t>> ScheduleDrills(const SchedulerOptions& options);
  // The DR site's addresses, as it named them when it was set up (empty:
  // no DR site).
  std::vector<std::string> DrAddresses() const;

  // One series (department, host, kind, paths) and what retention does.
  struct SeriesPlan {
    std::string department, host;
    std::vector<std::string> paths;
    bool image = false;
    uint64_t source_id = 0;  // 0: no source protects it (nothing is forgotten)
    std::string policy;
    std::vector<SnapshotRecord> snapshots;     // newest first
    std::vector<RetentionDecision> decisions;  // the same order
  };
  // Applies every source's policy to its series (all departments when
  // `department` is empty); dry_run only tells. Locked snapshots stay.
  Result<std::vector<SeriesPlan>> ApplyRetentionRules(const Actor& actor,
                                                      std::string_view department, bool dry_run);
  struct ForgetResult {
    SnapshotRecord snapshot;
    bool forgotten = false;
    std::string refusal;  // why not (a lock)
  };
  // Forgets snapshots by ID (or unique prefix). A locked one is refused,
  // admin or not, and the attempt audited.
  Result<std::vector<ForgetResult>> ForgetSnapshots(const Actor& actor, std::string_view department,
                                                    const std::vector<std::string>& ids,
                                                    bool dry_run);
  struct SourceStatus {
    SourceRecord source;
    std::string department;
    Policy policy;
    std::string last_good_snapshot;
    uint64_t last_good_micros = 0, age_seconds = 0, snapshots = 0;
    // How the last good snapshot was read: its point-in-time method, ""
    // when it was read live (not point-in-time).
    std::string last_good_pit;
    uint64_t damaged_snapshots = 0;        // scrub found them damaged (not "good")
    std::string rpo = "no RPO";            // "met", "pending", "at risk", "breached", "no RPO"
    std::string offsite = "not required";  // "replicated", "lagging", ...
    uint64_t next_run_micros = 0;
    uint64_t last_failure_job = 0, last_failure_micros = 0;
    std::string last_failure;  // "failed: reason", "missed: reason"
    uint64_t running_job = 0;  // a queued or sent job
  };
  struct ProtectionReport {
    uint64_t time_micros = 0;
    std::vector<SourceStatus> sources;
    std::vector<std::string> unprotected_series;     // snapshots no source covers
    std::vector<std::string> agents_without_source;  // "department/host"
    std::vector<std::string> agents_unseen;          // not seen for a day
  };
  // As the vault stands now, or as it stood at `as_of_micros` (non-zero, in
  // the past): then only snapshots taken and jobs created by then count.
  // Snapshots forgotten since are not seen, and the off-site state is
  // today's.
  Result<ProtectionReport> ProtectionStatus(const Actor& actor, std::string_view department,
                                            const SchedulerOptions& options,
                                            uint64_t as_of_micros = 0) const;

  // --- Departments, tokens, agents --------------------------------------
  Result<Department> CreateDepartment(const Actor& actor, std::string_view name);
  Result<std::vector<Department>> ListDepartments() const;
  // "cairn1-<CA fingerprint>-<token id>.<secret>": one-time, expiring
  // (1 s to 30 days), bound to the department. `drill_host`: the agent it
  // enrols is a drill host (section 23).
  Result<std::string> CreateEnrollmentToken(const Actor& actor, std::string_view department,
                                            uint64_t ttl_seconds, bool drill_host = false);
  // The same for a DR site's replicator (it reads every department).
  Result<std::string> CreateReplicatorToken(const Actor& actor, uint64_t ttl_seconds);
  Result<std::vector<AgentRecord>> ListAgents() const;
  // Revokes at once: the listener refuses the certificate from the next
  // handshake and cuts its live connections within a sweep.
  Status RevokeAgent(const Actor& actor, std::string_view serial);
  bool IsRevokedOrUnknown(std::string_view serial) const;

  // --- Enrolment and admission -------------------------------------------
  // Spends the token and issues the certificate (agent or replicator, as
  // the token says); the response carries the department's keys for an
  // agent. PermissionDenied for a bad token.
  Result<proto::EnrollResponse> Enroll(const Actor& actor, const proto::EnrollRequest& request);
  // The department of an authenticated agent certificate.
  Result<Department> AdmitAgent(const crypto::PeerIdentity& peer) const;
  // Where agents should reach their vaults, in order (never empty in
  // serve: the listener's address when none was ever set).
  std::vector<std::string> AgentAddresses() const;
  Status SetAgentAddresses(const std::vector<std::string>& addresses);

  // --- Backup sessions (an agent's own department) ----------------------
  // A new session, or the agent's earlier one when `begin` asks to resume
  // it (its manifest is then re-sent). PermissionDenied on an unpromoted DR
  // copy, with what to do.
  Result<std::shared_ptr<BackupSession>> BeginSession(const Actor& agent,
                                                      const proto::SessionBegin& begin,
                                                      bool* resumed);
  Result<std::vector<bool>> HaveChunks(const Actor& agent, std::span<const crypto::ChunkId> ids);
  // Stores one record (nothing durable until Flush). Corruption for a
  // record that does not parse (a protocol violation); NoSpace or IOError
  // when the store failed, after which nothing since the last flush stays.
  // A delta record names its base (put_delta_record), which the vault then
  // keeps while it keeps the delta; InvalidArgument when the record is not
  // a delta.
  Status PutRecord(const Actor& agent, ByteView record,
                   const crypto::ChunkId* delta_base = nullptr);
  // The durability barrier. InvalidArgument for a sequence not above the
  // last one.
  Result<proto::Flushed> Flush(BackupSession& session, uint64_t sequence);
  // InvalidArgument for another session's part or a manifest past the cap.
  Status AddManifestPart(BackupSession& session, const proto::ManifestPart& part);
  // Rule 6.3, then the catalog. Idempotent: a repeated commit answers as
  // the first. A refusal (NotFound: chunks missing; InvalidArgument: counts
  // disagree, root tree not in the manifest) clears the manifest.
  // Memory stays bounded whatever the manifest's size: it is streamed.
  Result<proto::CommitOk> Commit(const Actor& agent, BackupSession& session,
                                 const proto::Commit& commit);

  // Seals every open pack (shutdown of a serving vault).
  Status SealOpenPacks();
  // Seals the audit trail written so far with a signed checkpoint (the
  // server does it every few minutes).
  Status CheckpointAudit();
  // Forgets the sessions idle past session_idle that no connection holds.
  // Returns how many went. Called periodically by the server.
  size_t ExpireSessions();
  // Frees the buffers kept for replies of records when no reply took one
  // since the last call. Called periodically by the server, as above.
  size_t ReleaseIdleBuffers() { return reply_buffers_.ReleaseIdle(); }
  // Sessions held in memory (for tests and metrics).
  size_t open_sessions();
  // Record bytes made durable by flushes since the process started.
  uint64_t ingested_bytes() const { return ingested_bytes_.load(); }

  // --- Reads (agents and restores of a department) -----------------------
  // A restore announces itself before it reads (restore_begin): checks the
  // snapshot is the agent's department's and audits who restores what to
  // where ("restore.restore", "restore.verify", "restore.browse"; not for a
  // continuation). InvalidArgument for an unknown purpose; NotFound for a
  // snapshot the department does not hold.
  Status BeginRestore(const Actor& agent, const proto::RestoreBegin& begin) const;
  Result<proto::SnapshotList> ListSnapshots(const Actor& agent, uint32_t limit) const;
  // Records of a prefix of `ids` that fits one frame (at least one), or the
  // error of the first ID. The message names the chunk, never a file.
  // `whole_packs`: ChunkStore::ReadPrefix's read-ahead of whole packs.
  Result<proto::RecordsPayload> ReadRecords(uint32_t department,
                                            std::span<const crypto::ChunkId> ids,
                                            bool whole_packs = false,
                                            size_t max_bytes = SIZE_MAX) const;
  // The in-place restore's delta: opens the chunk with the department's
  // keys (the only time the vault decrypts data) and answers an rsync delta.
  Result<proto::DeltaReply> ComputeDelta(const Actor& agent, const proto::GetDelta& ask,
                                         DeltaContext* context) const;
  // A department's snapshots, newest first (the command line).
  Result<std::vector<SnapshotRecord>> ListSnapshots(std::string_view department) const;

  // --- Jobs --------------------------------------------------------------
  // The job target named by `agent`: a certificate serial, or a host name
  // (within `department` when given). NotFound when nothing matches;
  // InvalidArgument when a host has agents in several departments.
  Result<JobRecord> ResolveJobTarget(std::string_view agent, std::string_view department) const;
  // A backup of source `source_id` now: its agent, paths and policy
  // (excludes, zstd level, bandwidth), counted with the source's series
  // (locks and retention follow, as after a scheduled run). NotFound outside
  // an operator's departments. Audited (job.start).
  Result<uint64_t> StartSourceJob(const Actor& actor, uint64_t source_id);
  Result<uint64_t> StartJob(const Actor& actor, std::string_view agent, std::string_view department,
                            std::vector<std::string> paths, bool image);
  Result<JobRecord> FindJob(uint64_t id) const;
  Result<std::vector<JobRecord>> ListJobs() const;
  Result<std::vector<JobRecord>> QueuedJobs() const;
  Status MarkJobSent(uint64_t id, std::string_view serial);
  Status RequeueJob(uint64_t id);
  // An agent's job_done. InvalidArgument (a violation) for a job not sent
  // to this agent; OK, changing nothing, for a repeated report.
  Status ReportJobDone(const Actor& agent, const proto::JobDone& done);
  // A running job's latest progress, as its agent reported it on the job
  // link (in memory; the API shows it). Forgotten when the job ends.
  struct JobProgressNote {
    proto::JobProgress progress;
    uint64_t at_micros = 0;
  };
  void NoteJobProgress(const proto::JobProgress& progress);
  std::optional<JobProgressNote> JobProgressOf(uint64_t job_id) const;

  // --- Disaster recovery -------------------------------------------------
  bool IsReplica() const;
  bool IsPromoted() const;
  // Failover: a DR copy starts accepting backups. InvalidArgument when this
  // vault is not a DR copy; `by` is required. Recorded in the catalog and,
  // fsynced first, in DIR/promotions.log. Returns the recorded line, or the
  // earlier one (with *already set) when already promoted.
  Result<std::string> Promote(const Actor& actor, std::string_view by, std::string_view reason,
                              bool* already);
  // --- Restore drills (drills.cc; doc/design.md section 23) --------------
  // A drill's measurements from the drill host (drill_report): the vault
  // checks the snapshot is the agent's department's, adds what it knows
  // (the manifest's digest, the snapshot's host and time, the RTO of the
  // policy whose series it is, or the one the drill asked for), decides
  // whether the drill passed, signs the report with its evidence key,
  // keeps it and audits it ("drill.report"). InvalidArgument for a
  // malformed report.
  Result<boost::json::object> RecordDrill(const Actor& agent, std::string_view measured_json);
  // A drill of one snapshot now (the console's "drill"): queued on a drill
  // host of the department that is not the snapshot's host, reading from
  // the DR site when there is one; with the policy's check and RTO.
  // InvalidArgument (saying how to enrol one) when there is no drill host.
  // Audited (drill.start). Roles that may restore.
  Result<uint64_t> StartDrill(const Actor& actor, std::string_view department,
                              std::string_view snapshot_id);
  // A restore of one snapshot into `target` (an absolute path, a new or
  // empty directory) on `agent` (a serial or host of the department): the
  // console's "restore". The agent refuses a target that is not empty;
  // nothing is ever restored in place this way. Roles that may restore;
  // audited (restore.start).
  Result<uint64_t> StartRestore(const Actor& actor, std::string_view department,
                                std::string_view snapshot_id, std::string_view agent,
                                std::string_view target);
  // One directory of a snapshot (`path` from its root, "" or "/" for the
  // root), decrypted here with the department's keys: at most `limit`
  // entries (*truncated says whether more were left out). NotFound for a
  // path that is not a directory. Roles that may restore; audited
  // (snapshot.browse), since names are the department's data.
  Result<std::vector<repo::TreeEntry>> BrowseSnapshot(const Actor& actor,
                                                      std::string_view department,
                                                      std::string_view snapshot_id,
                                                      std::string_view path, size_t limit,
                                                      bool* truncated);
  // Signed reports, newest first (any role; an operator: its departments).
  Result<std::vector<boost::json::object>> ListDrills(const Actor& actor, size_t limit) const;
  // Recovery objectives against what was achieved, per source, for
  // auditors (doc/design.md section 23): the RPO against the age of the
  // newest good snapshot and the off-site copy, the RTO against the last
  // drill, drill freshness, backup success over [from, to), storage.
  Result<boost::json::object> Compliance(const Actor& actor, std::string_view department,
                                         uint64_t from_micros, uint64_t to_micros,
                                         const SchedulerOptions& scheduler) const;
  // The printable monthly evidence report of `department` over [from, to)
  // (vault/drill/monthly.h): compliance at the end of the window and the
  // window's drills, as one HTML file signed with the evidence key.
  // Audited (report.monthly).
  Result<std::string> MonthlyReport(const Actor& actor, std::string_view department,
                                    std::string_view month, uint64_t from_micros,
                                    uint64_t to_micros, const SchedulerOptions& scheduler);

  // --- Storage maintenance (maintenance.cc; doc/design.md section 22) ----
  struct GcRequest {
    bool dry_run = false;
    double compact_below = 0.5;
    // How long the run waits for backup sessions and commits that began
    // before it (the fence); past it the run stops, having removed nothing.
    std::chrono::seconds fence_timeout{6 * 3600};
    std::function<bool()> cancelled;
    std::function<void(const std::string&)> progress;
    std::function<void(const char*)> step_for_test;
  };
  // Garbage collection and compaction beside live backups (admin, the
  // vault itself, the local shell). Unavailable while another
  // maintenance run holds the store. Audited ("storage.gc"); the report is
  // kept for status and the API (setting gc_last).
  Result<GcReport> CollectGarbage(const Actor& actor, const GcRequest& request);
  static boost::json::object GcReportToJson(const GcReport& report,
                                            const std::vector<Department>& departments);

  // Fetches records of a department from the peer vault (the DR copy for
  // a primary, the source for a DR copy), as ciphertext: a prefix of
  // `ids`, in order. Each is checked before it is used.
  using RecordFetcher =
      std::function<Result<std::vector<Bytes>>(uint32_t, std::span<const crypto::ChunkId>)>;
  struct ScrubRequest {
    std::string department;  // empty: all
    uint64_t rate_bytes = 0;
    // Repair: sound records of a pack whose header or footer broke move to
    // a new pack; damaged records come from the peer (`fetch`).
    bool repair = true;
    RecordFetcher fetch;     // empty: no peer to repair from
    std::string fetch_from;  // the peer, for the report
    std::function<bool()> cancelled;
    std::function<void(const std::string&)> progress;
  };
  struct ScrubReport {
    ScrubResult result;
    std::string repair_source;  // "" when there was none
    uint64_t repaired = 0;
    uint64_t packs_rebuilt = 0;           // broken packs whose records moved
    std::vector<std::string> unrepaired;  // "department chunk: why"
    struct SnapshotDamage {
      std::string department, snapshot, host;
      uint64_t chunks = 0;  // damaged chunks it references
    };
    std::vector<SnapshotDamage> damaged_snapshots;
    std::vector<std::string> cleared_snapshots;  // sound again after repair
  };
  // Re-reads every pack (of one department), repairs damaged records from
  // the peer where `fetch` is given, marks the snapshots that reference
  // what stays damaged (restore and status then say so; the
  // storage_damaged alert fires), and clears the mark of snapshots sound
  // again. Admin, the vault itself, the local shell. Audited.
  Result<ScrubReport> Scrub(const Actor& actor, const ScrubRequest& request);
  static boost::json::object ScrubReportToJson(const ScrubReport& report,
                                               const std::vector<Department>& departments);

  // A run for the serving vault's storage clock (vault/maintenance.h):
  // `task` "gc" (`dry_run`) or "scrub" (`department`, `repair`,
  // `rate_bytes`). Admin. Returns the request's ID; audited.
  Result<std::string> RequestMaintenance(const Actor& actor, boost::json::object request);
  // A request's state: "queued", "running", or "done" with its result
  // ({"ok", "report"|"error"}). NotFound for an unknown ID.
  Result<boost::json::object> MaintenanceState(const Actor& actor, std::string_view id) const;
  // Space per department (packs and their bytes now) and the last GC, dry
  // run and scrub reports (null before the first).
  Result<boost::json::object> StorageReport(const Actor& actor) const;

  // After failback: refuse backups again. InvalidArgument when not promoted.
  Status Demote(const Actor& actor, std::string_view by, std::string_view reason);

  // The serving half of replication (a replicator pulling from here).
  Result<proto::ReplicaSetupOk> ReplicaSetup(const Actor& replicator,
                                             const proto::ReplicaSetup& request);
  Result<proto::ReplicaSnapshots> ReplicaList(const proto::ReplicaList& request) const;
  Result<proto::Manifest> GetManifest(const proto::GetManifest& request) const;
  Result<proto::RecordsPayload> ReadReplicaRecords(const proto::GetReplicaRecords& request) const;
  Result<proto::ReplicaOrder> ReadReplicaOrder(const proto::GetReplicaOrder& request) const;

  // The pulling half (this vault is the DR copy): applies a source's
  // set-up (key escrow, agents and revocations, trust, agents' addresses).
  Status ApplyReplicaSetup(proto::ReplicaSetupOk& setup);
  // Commits a replicated snapshot under its source ID, after rule 6.3.
  // False when it is already here.
  Result<bool> CommitReplica(const SnapshotRecord& snapshot,
                             const std::vector<crypto::ChunkId>& manifest);

 private:
  // Rule 6.3: NotFound naming how many of `manifest` are not durable.
  Status CheckDurable(uint32_t department, const ManifestReader& manifest) const;
  // Appends to the audit trail; a failure is logged as an error (the
  // change it records has happened).
  void Audit(const Actor& actor, std::string action, std::string department, std::string object,
             boost::json::object details = {}) const;
  std::string DepartmentName(uint32_t id) const;
  std::string SpillPath(uint64_t session_id) const;
  // Retention plans of every series (of one department, or one series).
  Result<std::vector<SeriesPlan>> PlanRetention(std::string_view department,
                                                const std::optional<std::string>& series) const;
  Status ForgetPlanned(const Actor& actor, SeriesPlan& plan);
  // The lock a new snapshot gets from its source's policy (0: none).
  uint64_t LockFor(const SnapshotRecord& snapshot, uint64_t source_id) const;
  // The policy of the source whose series `snapshot` is (or `source_id`).
  std::optional<Policy> PolicyOf(const SnapshotRecord& snapshot, uint64_t source_id) const;
  // The newest of `signed_reports` (drill reports as kept) per series
  // (SeriesKeyOf) among those finished by `as_of_micros`: the reports'
  // bodies.
  std::map<std::string, boost::json::object> NewestDrills(
      const std::vector<boost::json::object>& signed_reports, uint64_t as_of_micros) const;
  // The anomaly rule, after a commit: compares `snapshot` with its series'
  // recent ones; on a sharp departure fires an alert and locks the last
  // good ones.
  void CheckForAnomaly(const SnapshotRecord& snapshot);
  // After a scheduled job's snapshot: its lock, then its series' retention.
  Status AfterJobSnapshot(const JobRecord& job, std::string_view snapshot_id);
  // The newest snapshot number the DR site has asked past (it holds
  // everything up to it).
  uint64_t ReplicatedUpTo() const;
  // Makes room for one more session of `agent` (sessions_mu_ held).
  Status MakeRoomFor(const Actor& agent);
  std::shared_ptr<BackupSession> Adopt(SessionRecord record);  // sessions_mu_ held
  ChunkStore* store() const;
  uint64_t Now() const { return vault_->env()->NowMicros(); }

  // The GC fence: commits in progress by ticket (Commit, CommitReplica),
  // and waiting until those that began before a ticket have ended.
  class CommitTicket;
  Status WaitForEarlierWork(uint64_t since_micros, std::chrono::seconds timeout,
                            const std::function<bool()>& cancelled,
                            const std::function<void(const std::string&)>& progress);
  std::mutex commits_mu_;
  uint64_t next_commit_ticket_ = 1;
  std::set<uint64_t> commits_in_flight_;
  // One maintenance run (GC, scrub's repair) at a time over the store.
  std::mutex maintenance_mu_;

  Vault* const vault_;
  ServiceOptions options_;
  // Failed logins, per account and per address (Login's back-off).
  struct Failures {
    int count = 0;
    uint64_t next_allowed_micros = 0;
  };
  Status CheckThrottle(std::string_view account, std::string_view address) const;
  void NoteLoginFailure(const std::string& account, const std::string& address);
  mutable std::mutex login_mu_;
  std::map<std::string, Failures> login_failures_;  // "user:<name>", "addr:<address>"

  std::atomic<uint64_t> ingested_bytes_{0};
  std::mutex policy_mu_;  // EditPolicy's read-check-write
  mutable std::mutex progress_mu_;
  std::map<uint64_t, JobProgressNote> progress_;  // by job ID
  mutable std::atomic<uint64_t> replica_served_after_{0}, replica_served_micros_{0};
  // Replies of records are built in these (a restore or a replication pass
  // takes one per reply): touched once, not faulted in for every reply.
  // At most four kept, up to 64 MiB, while replies are being read.
  mutable BufferPool reply_buffers_{{.buffer_bytes = proto::kMaxFramePayload, .max_kept = 4}};
  // Agents' last-seen times: in memory at once, in the catalog at most once
  // a minute per agent.
  struct Seen {
    uint64_t seen_micros = 0, written_micros = 0;
  };
  uint64_t LastSeen(const AgentRecord& agent) const;
  mutable std::mutex seen_mu_;
  std::map<std::string, Seen, std::less<>> seen_;  // by certificate serial
  std::mutex sessions_mu_;
  std::map<uint64_t, std::shared_ptr<BackupSession>> sessions_;
  uint64_t last_row_sweep_micros_ = 0;  // sessions_mu_
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_SERVICE_VAULT_SERVICE_H_
