// The messages of the agent/replicator/restore <-> vault protocol: the
// payload of the frame of the same MessageType (frame.h). doc/protocol.md is
// normative for the byte layouts and the order of messages; this file
// implements it.
//
// Encoding: little-endian fixed-width integers; strings and byte blobs as a
// u32 length and the bytes; lists as a u32 count and the items; bools as one
// byte 0 or 1; enums as one byte. There is no padding and no optional field,
// so every value has exactly one encoding: Encode(Decode(p)) == p.
//
// Decode() takes untrusted bytes. It never reads past the input, bounds every
// length and count by the caps below (and by the bytes that remain) before
// allocating, refuses a payload above MaxPayloadFor(type), unknown enum
// values, bools other than 0/1 and trailing bytes, and reports every
// violation as InvalidArgument("<message>: <what>"). It has no side effects.
//
// Encode() does not check the caps: callers build messages within them (for
// example, a manifest is split into parts of at most kMaxManifestIdsPerPart),
// and the peer's Decode() refuses one that is not.
//
// Pure functions and value types, no I/O; safe on any thread.
#ifndef CAIRN_LIB_PROTO_MESSAGES_H_
#define CAIRN_LIB_PROTO_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lib/base/buffer_pool.h"
#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/chunk_id.h"
#include "lib/proto/frame.h"

namespace cairn::proto {

// The protocol versions this build speaks (Hello/HelloOk negotiate the
// highest both ends do). Version 2 adds get_replica_order (39) and
// replica_order (40); nothing else differs.
inline constexpr uint16_t kMinProtocolVersion = 1;
inline constexpr uint16_t kProtocolVersion = 2;

// Per-field caps. Each is far above what a well-behaved peer sends and low
// enough that a hostile one cannot make the reader allocate much.
//
// Error messages, PEM certificates and job error texts.
inline constexpr size_t kMaxStringLen = 64u << 10;
// Host names, software versions, site and department names, snapshot IDs,
// enrolment tokens and vault addresses.
inline constexpr size_t kMaxNameLen = 1024;
// One path of a backup set (Linux PATH_MAX).
inline constexpr size_t kMaxPathLen = 4096;
// Paths in one backup set.
inline constexpr size_t kMaxPaths = 1024;
// Chunk IDs in one HaveChunks (and flags in its reply): as many as fit in a
// control frame with the request ID and the count (32768 would not).
inline constexpr size_t kMaxIdsPerMessage = (kMaxControlPayload - 8) / crypto::kChunkIdSize;
// Chunk IDs in one ManifestPart (16 MB of IDs, within kMaxFramePayload).
inline constexpr size_t kMaxManifestIdsPerPart = 500000;
// Records in one Records message, and IDs in one GetRecords.
inline constexpr size_t kMaxRecordsPerMessage = 64;
// Largest record (doc/design.md section 2): 16 MiB of payload + 104 bytes.
inline constexpr size_t kMaxRecordBytes = (16u << 20) + 104;
// The department key blob carried by EnrollResponse (112 bytes today).
inline constexpr size_t kMaxDepartmentKeysLen = 4096;
// Vault addresses an enrolled agent may try, in order.
inline constexpr size_t kMaxVaultAddresses = 16;
// Snapshots in one SnapshotList (and the largest ListSnapshots limit).
inline constexpr size_t kMaxSnapshotsPerList = 4096;
// Frame limit a vault passes to ParseFrameHeader until the handshake is
// done: only Hello is accepted then, and the largest Hello fits.
inline constexpr uint32_t kMaxHelloPayload = 4096;

static_assert(2 + 2 + 1 + 2 * (4 + kMaxNameLen) <= kMaxHelloPayload);
static_assert(8 + kMaxIdsPerMessage * crypto::kChunkIdSize <= kMaxControlPayload);
static_assert(12 + kMaxManifestIdsPerPart * crypto::kChunkIdSize <= kMaxFramePayload);
static_assert(8 + kMaxRecordBytes <= kMaxFramePayload);

enum class Role : uint8_t { kAgent = 1, kReplicator = 2, kRestore = 3, kEnroll = 4 };
enum class SessionKind : uint8_t { kFiles = 1, kImage = 2 };
// kDrill: a restore drill of `snapshot_id` (doc/design.md section 23), sent
// only to an agent enrolled as a drill host. kRestore: `snapshot_id`
// restored into `target`, a new or empty directory on the agent's host.
enum class JobKind : uint8_t { kBackupNow = 1, kDrill = 2, kRestore = 3 };

// Vault or client -> peer: the request failed. `code` is never kOk; its wire
// value is the StatusCode value (doc/protocol.md lists them with names).
struct Error {
  StatusCode code = StatusCode::kInvalidArgument;
  bool retryable = false;
  std::string message;

  static Error FromStatus(const Status& status);  // status must not be OK
  Status ToStatus() const;

  Bytes Encode() const;
  static Result<Error> Decode(ByteView payload);
  friend bool operator==(const Error&, const Error&) = default;
};

// Client -> vault, first frame on every connection.
struct Hello {
  uint16_t min_version = kMinProtocolVersion;  // 1 <= min_version <= max_version
  uint16_t max_version = kProtocolVersion;
  Role role = Role::kAgent;
  std::string software;  // "cairn-agent 0.1.0", for logs
  std::string hostname;  // as the client sees itself, for logs only

  Bytes Encode() const;
  static Result<Hello> Decode(ByteView payload);
  friend bool operator==(const Hello&, const Hello&) = default;
};

// Vault -> client: the handshake succeeded at `version`.
struct HelloOk {
  uint16_t version = kProtocolVersion;  // >= 1
  std::string site;
  uint64_t server_time_micros = 0;  // vault clock, Unix epoch
  std::string department;           // from the peer certificate; empty for enroll
  // Where agents should reach this department's vaults, in order (the
  // primary, then DR sites set up by replication); an agent with another
  // list adopts this one. Empty: no advice (enroll, replicator, restore).
  std::vector<std::string> vault_addresses;  // at most kMaxVaultAddresses

  Bytes Encode() const;
  static Result<HelloOk> Decode(ByteView payload);
  friend bool operator==(const HelloOk&, const HelloOk&) = default;
};

struct EnrollRequest {
  std::string token;    // the one-time enrolment token
  std::string csr_pem;  // PKCS#10, key pair generated on the host
  std::string hostname;

  Bytes Encode() const;
  static Result<EnrollRequest> Decode(ByteView payload);
  friend bool operator==(const EnrollRequest&, const EnrollRequest&) = default;
};

// Carries the department's raw keys (lib/crypto SerializeDepartmentKeys):
// never log it, and SecureZero department_keys once stored.
struct EnrollResponse {
  std::string certificate_pem;
  std::string ca_pem;
  std::string department;
  uint32_t department_id = 0;
  Bytes department_keys;
  std::vector<std::string> vault_addresses;  // "host:port", at most kMaxVaultAddresses

  Bytes Encode() const;
  static Result<EnrollResponse> Decode(ByteView payload);
  friend bool operator==(const EnrollResponse&, const EnrollResponse&) = default;
};

struct SessionBegin {
  SessionKind kind = SessionKind::kFiles;
  std::vector<std::string> paths;  // each 1..kMaxPathLen bytes, no NUL
  uint64_t resume_session_id = 0;  // 0 = a new session

  Bytes Encode() const;
  static Result<SessionBegin> Decode(ByteView payload);
  friend bool operator==(const SessionBegin&, const SessionBegin&) = default;
};

struct SessionBegun {
  uint64_t session_id = 0;
  bool resumed = false;

  Bytes Encode() const;
  static Result<SessionBegun> Decode(ByteView payload);
  friend bool operator==(const SessionBegun&, const SessionBegun&) = default;
};

struct HaveChunks {
  uint32_t request_id = 0;
  std::vector<crypto::ChunkId> ids;  // at most kMaxIdsPerMessage

  Bytes Encode() const;
  static Result<HaveChunks> Decode(ByteView payload);
  friend bool operator==(const HaveChunks&, const HaveChunks&) = default;
};

// present[i] answers ids[i] of the HaveChunks with the same request_id. On
// the wire: u32 count, then ceil(count / 8) bytes, bit i in byte i / 8 at
// bit position i % 8 (least significant first); unused bits are zero.
struct HaveChunksReply {
  uint32_t request_id = 0;
  std::vector<bool> present;

  Bytes Encode() const;
  static Result<HaveChunksReply> Decode(ByteView payload);
  friend bool operator==(const HaveChunksReply&, const HaveChunksReply&) = default;
};

// PutRecord has no fields: its payload is one record, exactly as stored
// (doc/design.md section 2). OK for 1..kMaxRecordBytes bytes; the record's
// own format is checked by lib/repo, not here.
Status CheckPutRecord(ByteView payload);

// PutDeltaRecord: a delta record (type 3) and the chunk ID of its base, so
// that the vault, which cannot read a delta, keeps the base while it keeps
// the delta (doc/design.md 22.2). Payload: base (32) then the record.
struct PutDeltaRecord {
  crypto::ChunkId base{};
  ByteView record;  // into the decoded payload

  static Bytes Encode(const crypto::ChunkId& base, ByteView record);
  static Result<PutDeltaRecord> Decode(ByteView payload);
};

struct Flush {
  uint64_t sequence = 0;

  Bytes Encode() const;
  static Result<Flush> Decode(ByteView payload);
  friend bool operator==(const Flush&, const Flush&) = default;
};

// Every record received before the Flush of the same sequence is durable
// and indexed at the vault.
struct Flushed {
  uint64_t sequence = 0;
  uint64_t records_stored = 0;  // by this session so far
  uint64_t bytes_stored = 0;

  Bytes Encode() const;
  static Result<Flushed> Decode(ByteView payload);
  friend bool operator==(const Flushed&, const Flushed&) = default;
};

struct ManifestPart {
  uint64_t session_id = 0;
  std::vector<crypto::ChunkId> ids;  // at most kMaxManifestIdsPerPart

  Bytes Encode() const;
  static Result<ManifestPart> Decode(ByteView payload);
  friend bool operator==(const ManifestPart&, const ManifestPart&) = default;
};

// Eight u64 in this order on the wire, then how the data was read: the
// point-in-time method (doc/design.md section 24: "btrfs", "reflink",
// "lvm"; "" when read live) and when its view was taken (0: none).
struct SnapshotStats {
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t bytes = 0;
  uint64_t new_bytes = 0;
  uint64_t new_chunks = 0;
  uint64_t warnings = 0;
  uint64_t started_micros = 0;
  uint64_t finished_micros = 0;
  std::string pit_method;
  uint64_t pit_micros = 0;

  friend bool operator==(const SnapshotStats&, const SnapshotStats&) = default;
};

struct Commit {
  uint64_t session_id = 0;
  crypto::ChunkId root_tree{};
  uint64_t manifest_count = 0;  // IDs over all ManifestParts of the session
  SnapshotStats stats;

  Bytes Encode() const;
  static Result<Commit> Decode(ByteView payload);
  friend bool operator==(const Commit&, const Commit&) = default;
};

struct CommitOk {
  std::string snapshot_id;
  uint64_t committed_micros = 0;

  Bytes Encode() const;
  static Result<CommitOk> Decode(ByteView payload);
  friend bool operator==(const CommitOk&, const CommitOk&) = default;
};

// Vault -> agent on the persistent connection.
struct Job {
  uint64_t job_id = 0;
  JobKind kind = JobKind::kBackupNow;
  std::vector<std::string> paths;  // as SessionBegin; empty = the agent's configured set
  bool image = false;
  // From the source's policy (doc/design.md section 20).
  std::vector<std::string> excludes;  // fnmatch patterns (files only)
  uint8_t zstd_level = 0;             // 0: the agent's default
  uint64_t bandwidth = 0;             // bytes per second; 0: unlimited
  // kDrill: the snapshot, the check command run in the sandbox (empty:
  // none), its timeout (0: 600 s), the RTO (0: none), and the vault
  // addresses to restore from (empty: the agent's own).
  std::string snapshot_id;
  std::string check;
  uint32_t check_timeout_seconds = 0;
  uint64_t rto_seconds = 0;
  std::vector<std::string> read_from;
  // kRestore: where (an absolute path on the agent's host).
  std::string target;
  // kBackupNow, from the source (doc/design.md section 24): the
  // point-in-time method ("" or "none": read live; "auto", "btrfs",
  // "reflink", "lvm"), the hooks, their timeout (0: 600 s), and whether a
  // failed pre-command lets the backup go on crash-consistent.
  std::string pit;
  std::string pre_command;
  std::string post_command;
  uint32_t hook_timeout_seconds = 0;
  bool hook_failure_continue = false;

  Bytes Encode() const;
  static Result<Job> Decode(ByteView payload);
  friend bool operator==(const Job&, const Job&) = default;
};

struct JobDone {
  uint64_t job_id = 0;
  bool ok = false;
  std::string snapshot_id;  // when ok
  std::string error;        // when !ok, for people
  // What made the backup consistent, or not: the point-in-time view and
  // the hooks' exit status and output (agent/consistency.h), for the job's
  // record. Empty for other jobs.
  std::string log;

  Bytes Encode() const;
  static Result<JobDone> Decode(ByteView payload);
  friend bool operator==(const JobDone&, const JobDone&) = default;
};

// Ping and Pong share a layout; Pong echoes the nonce.
struct Ping {
  uint64_t nonce = 0;

  Bytes Encode() const;
  static Result<Ping> Decode(ByteView payload);
  friend bool operator==(const Ping&, const Ping&) = default;
};

struct Pong {
  uint64_t nonce = 0;

  Bytes Encode() const;
  static Result<Pong> Decode(ByteView payload);
  friend bool operator==(const Pong&, const Pong&) = default;
};

struct ListSnapshots {
  uint32_t limit = 0;  // newest first; 0 = up to kMaxSnapshotsPerList

  Bytes Encode() const;
  static Result<ListSnapshots> Decode(ByteView payload);
  friend bool operator==(const ListSnapshots&, const ListSnapshots&) = default;
};

// One entry of SnapshotList (not a message of its own).
struct SnapshotInfo {
  std::string id;
  std::string hostname;
  std::vector<std::string> paths;
  SessionKind kind = SessionKind::kFiles;
  uint64_t time_micros = 0;
  crypto::ChunkId root_tree{};
  SnapshotStats stats;

  friend bool operator==(const SnapshotInfo&, const SnapshotInfo&) = default;
};

struct SnapshotList {
  std::vector<SnapshotInfo> snapshots;  // at most kMaxSnapshotsPerList

  Bytes Encode() const;
  static Result<SnapshotList> Decode(ByteView payload);
  friend bool operator==(const SnapshotList&, const SnapshotList&) = default;
};

struct GetRecords {
  std::vector<crypto::ChunkId> ids;  // at most kMaxRecordsPerMessage

  Bytes Encode() const;
  static Result<GetRecords> Decode(ByteView payload);
  friend bool operator==(const GetRecords&, const GetRecords&) = default;
};

// Records for a prefix of a GetRecords' ids, in order; each 1..kMaxRecordBytes.
struct Records {
  std::vector<Bytes> records;  // at most kMaxRecordsPerMessage

  Bytes Encode() const;
  static Result<Records> Decode(ByteView payload);
  friend bool operator==(const Records&, const Records&) = default;
};

// Records, decoded in place: each view points into the payload, which must
// outlive it. A restore reads megabytes of records per reply; copying each
// out of the frame cost it 2% of its CPU. Same checks as Records::Decode.
struct RecordViews {
  std::vector<ByteView> records;

  static Result<RecordViews> Decode(ByteView payload);
};

// A Records payload built in place, for the records' lengths: the count
// and each length are written, and record(i) is where record i's bytes go.
// The vault reads each record from its pack straight into place; the
// records' bytes are not initialised until the caller fills them. Filled,
// payload() is exactly Records{...}.Encode() of the same records.
class RecordsPayload {
 public:
  // At most kMaxRecordsPerMessage lengths, each 1..kMaxRecordBytes (the
  // caller's promise, as for any encoder). The buffer comes from `pool`
  // when given (it then holds a former user's bytes until overwritten).
  explicit RecordsPayload(std::span<const uint32_t> lengths, BufferPool* pool = nullptr);

  size_t count() const { return offsets_.size(); }
  MutableByteView record(size_t i);
  // record(i) for every i: the places a reader fills.
  std::vector<MutableByteView> records();
  // Keeps the first `n` records (n <= count()): the others could not be read.
  void KeepFirst(size_t n);
  ByteView payload() const { return ByteView(data_.data(), size_); }

 private:
  BufferPool::Buffer data_;
  size_t size_ = 0;
  std::vector<size_t> offsets_;  // where each record's bytes begin
};

// Restore -> vault: the content of chunk `id` as an rsync delta against the
// client's current bytes for it, described by `signature` (a librsync
// signature, lib/chunk/rsync_delta.h). For the in-place restore (failback):
// only what differs crosses the network. The vault, which holds the
// department's keys, opens the chunk (resolving delta chains), computes the
// delta, and answers with Delta. The client applies it and checks the result
// against `id` with its own ID key, so it trusts the vault for nothing.
//
// `have`, when not zero, is the chunk ID of the client's current bytes (the
// HMAC under the department's ID key, which the client computed anyway to
// see whether they are already right). When `id` is stored as deltas whose
// chain leads back to `have` (the target holds an earlier version of that
// extent: the failback case), the vault answers kDeltas with the stored
// deltas themselves, and computes nothing. Otherwise it computes a delta
// against `signature`, or, when there is none, answers kNoChain and the
// client asks again with one.
struct GetDelta {
  uint32_t request_id = 0;
  crypto::ChunkId id{};
  Bytes signature;         // 0..kMaxSignatureLen bytes; empty only with `have`
  crypto::ChunkId have{};  // zero: not given

  Bytes Encode() const;
  static Result<GetDelta> Decode(ByteView payload);
  friend bool operator==(const GetDelta&, const GetDelta&) = default;
};
// A signature of a 16 MiB chunk at 256-byte blocks is 1.3 MiB; at the 4 KiB
// blocks restore uses, 80 KiB. The cap keeps GetDelta a control frame.
inline constexpr size_t kMaxSignatureLen = kMaxControlPayload - 128;

enum class DeltaKind : uint8_t {
  kDelta = 1,    // `data` is a librsync delta against the client's bytes
  kWhole = 2,    // `data` is the whole content (a delta would not be smaller)
  kDeltas = 3,   // `deltas`, applied one after the other to the bytes `have` names
  kNoChain = 4,  // no chain from `have`, and no signature to compute a delta against
};

struct DeltaReply {
  uint32_t request_id = 0;
  DeltaKind kind = DeltaKind::kDelta;
  Bytes data;  // at most kMaxDeltaReplyLen bytes
  // kDeltas: librsync deltas, oldest first, at most kMaxDeltasPerReply.
  std::vector<Bytes> deltas;

  Bytes Encode() const;
  static Result<DeltaReply> Decode(ByteView payload);
  friend bool operator==(const DeltaReply&, const DeltaReply&) = default;
};
// The largest chunk (16 MiB) plus room for the fields.
inline constexpr size_t kMaxDeltaReplyLen = 16u << 20;
// The record format's longest delta chain (repo::kMaxDeltaChain).
inline constexpr size_t kMaxDeltasPerReply = 8;
static_assert(16 + kMaxDeltaReplyLen <= kMaxFramePayload);

// --- Replication (doc/protocol.md "Replication"): a replicator pulls from a
// vault with a certificate of role "replicator", across departments.

// Snapshots committed after `after` (the numeric value of a snapshot ID,
// which the vault assigns from one counter in commit order), oldest first.
struct ReplicaList {
  uint64_t after = 0;
  uint32_t limit = 0;  // <= kMaxSnapshotsPerList; 0 = kMaxSnapshotsPerList

  Bytes Encode() const;
  static Result<ReplicaList> Decode(ByteView payload);
  friend bool operator==(const ReplicaList&, const ReplicaList&) = default;
};

struct ReplicaSnapshot {
  uint32_t department_id = 0;
  std::string department;
  SnapshotInfo info;
  uint64_t manifest_count = 0;
  friend bool operator==(const ReplicaSnapshot&, const ReplicaSnapshot&) = default;
};

struct ReplicaSnapshots {
  std::vector<ReplicaSnapshot> snapshots;  // at most kMaxSnapshotsPerList
  uint64_t latest = 0;                     // the newest snapshot counter at the vault (for lag)

  Bytes Encode() const;
  static Result<ReplicaSnapshots> Decode(ByteView payload);
  friend bool operator==(const ReplicaSnapshots&, const ReplicaSnapshots&) = default;
};

// Part of a snapshot's manifest, from `offset` on.
struct GetManifest {
  uint32_t department_id = 0;
  std::string snapshot_id;
  uint64_t offset = 0;

  Bytes Encode() const;
  static Result<GetManifest> Decode(ByteView payload);
  friend bool operator==(const GetManifest&, const GetManifest&) = default;
};

struct Manifest {
  uint64_t total = 0;                // IDs in the whole manifest
  uint64_t offset = 0;               // of ids[0]
  std::vector<crypto::ChunkId> ids;  // at most kMaxManifestIdsPerPart

  Bytes Encode() const;
  static Result<Manifest> Decode(ByteView payload);
  friend bool operator==(const Manifest&, const Manifest&) = default;
};

// Records of one department, as stored (ciphertext); answered by Records.
struct GetReplicaRecords {
  uint32_t department_id = 0;
  std::vector<crypto::ChunkId> ids;  // at most kMaxRecordsPerMessage

  Bytes Encode() const;
  static Result<GetReplicaRecords> Decode(ByteView payload);
  friend bool operator==(const GetReplicaRecords&, const GetReplicaRecords&) = default;
};

// Where the source keeps the records of `ids`, as an order to ask for them
// in: a pass asks in ascending key order, so that the source reads each pack
// front to back (doc/design.md section 13). Answered by ReplicaOrder.
struct GetReplicaOrder {
  uint32_t department_id = 0;
  std::vector<crypto::ChunkId> ids;  // at most kMaxIdsPerMessage

  Bytes Encode() const;
  static Result<GetReplicaOrder> Decode(ByteView payload);
  friend bool operator==(const GetReplicaOrder&, const GetReplicaOrder&) = default;
};

// keys[i] places ids[i] of the GetReplicaOrder; it means nothing but an
// order. kNotHeld for an ID the source does not hold.
struct ReplicaOrder {
  static constexpr uint64_t kNotHeld = ~uint64_t{0};
  std::vector<uint64_t> keys;  // at most kMaxIdsPerMessage

  Bytes Encode() const;
  static Result<ReplicaOrder> Decode(ByteView payload);
  friend bool operator==(const ReplicaOrder&, const ReplicaOrder&) = default;
};

// The replicator's set-up, sent at the start of every pass: who the DR site
// is, and which departments it already holds keys for.
struct ReplicaSetup {
  std::string site;                         // the DR vault's site name
  std::vector<std::string> addresses;       // where agents reach it, in order
  std::string server_csr_pem;               // CSR of the DR vault's TLS key
  std::vector<uint32_t> known_departments;  // keys already escrowed

  Bytes Encode() const;
  static Result<ReplicaSetup> Decode(ByteView payload);
  friend bool operator==(const ReplicaSetup&, const ReplicaSetup&) = default;
};

struct ReplicaDepartment {
  uint32_t id = 0;
  std::string name;
  uint64_t created_micros = 0;
  Bytes keys;  // raw DepartmentKeys; empty when the request listed it as known
  friend bool operator==(const ReplicaDepartment&, const ReplicaDepartment&) = default;
};

struct ReplicaAgent {
  std::string serial;
  uint32_t department_id = 0;
  std::string host;
  uint64_t enrolled_micros = 0;
  bool revoked = false;
  uint64_t revoked_micros = 0;
  friend bool operator==(const ReplicaAgent&, const ReplicaAgent&) = default;
};

// Carries department keys (key escrow): never log it, zero it once stored.
struct ReplicaSetupOk {
  std::string site;
  std::string ca_pem;           // the source vault's CA (agents chain to it)
  std::string server_cert_pem;  // for the DR vault's TLS key, issued by that CA
  std::vector<ReplicaDepartment> departments;
  std::vector<ReplicaAgent> agents;
  std::vector<std::string> vault_addresses;  // what agents are told, in order

  Bytes Encode() const;
  static Result<ReplicaSetupOk> Decode(ByteView payload);
  friend bool operator==(const ReplicaSetupOk&, const ReplicaSetupOk&) = default;
};

// A restore client says what it is about to read and where it will go,
// before it may read records (doc/protocol.md "Restore"). The vault audits
// it; a worker's extra connection sets `continuation` and is not audited
// again.
struct RestoreBegin {
  std::string purpose;      // "restore", "verify" or "browse"
  std::string snapshot_id;  // the full ID, of the client's department
  std::string target;       // where it restores to ("" for verify, browse)
  bool in_place = false;
  bool continuation = false;

  Bytes Encode() const;
  static Result<RestoreBegin> Decode(ByteView payload);
  friend bool operator==(const RestoreBegin&, const RestoreBegin&) = default;
};

struct RestoreBegun {
  std::string snapshot_id;

  Bytes Encode() const;
  static Result<RestoreBegun> Decode(ByteView payload);
  friend bool operator==(const RestoreBegun&, const RestoreBegun&) = default;
};

// A running job's progress, about once a second, on the job link.
inline constexpr uint32_t kEtaUnknown = 0xffffffffu;
struct JobProgress {
  uint64_t job_id = 0;
  uint64_t files = 0;
  uint64_t bytes_done = 0;   // of the source, read or found unchanged
  uint64_t bytes_total = 0;  // estimated; 0 = not known yet
  uint64_t new_bytes = 0;    // sent as new records
  uint64_t elapsed_millis = 0;
  uint32_t eta_seconds = kEtaUnknown;

  Bytes Encode() const;
  static Result<JobProgress> Decode(ByteView payload);
  friend bool operator==(const JobProgress&, const JobProgress&) = default;
};
// A restore drill's measurements (drill_report, a restore connection):
// JSON, for the vault to check, sign and keep; drill_signed answers the
// signed report (doc/design.md section 23, doc/protocol.md).
inline constexpr size_t kMaxDrillJson = 256u << 10;
struct DrillReport {
  std::string json;

  Bytes Encode() const;
  static Result<DrillReport> Decode(ByteView payload);
  friend bool operator==(const DrillReport&, const DrillReport&) = default;
};
struct DrillSigned {
  std::string json;

  Bytes Encode() const;
  static Result<DrillSigned> Decode(ByteView payload);
  friend bool operator==(const DrillSigned&, const DrillSigned&) = default;
};
inline constexpr size_t kMaxReplicaDepartments = 4096;
inline constexpr size_t kMaxReplicaAgents = 100000;

}  // namespace cairn::proto

#endif  // CAIRN_LIB_PROTO_MESSAGES_H_
