#include "lib/proto/messages.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <string_view>
#include <utility>

namespace cairn::proto {
namespace {

// The wire value of Error.code is the StatusCode value: pin them, so that
// reordering the enum breaks the build instead of the protocol.
static_assert(static_cast<uint8_t>(StatusCode::kNotFound) == 1);
static_assert(static_cast<uint8_t>(StatusCode::kCorruption) == 2);
static_assert(static_cast<uint8_t>(StatusCode::kIOError) == 3);
static_assert(static_cast<uint8_t>(StatusCode::kNoSpace) == 4);
static_assert(static_cast<uint8_t>(StatusCode::kInvalidArgument) == 5);
static_assert(static_cast<uint8_t>(StatusCode::kPermissionDenied) == 6);
static_assert(static_cast<uint8_t>(StatusCode::kUnavailable) == 7);
static_assert(static_cast<uint8_t>(StatusCode::kCancelled) == 8);

constexpr size_t kStatsSize = 8 * 8;
// Smallest encoding of a SnapshotInfo: three empty lists/strings, the kind,
// the time, the root tree and the stats.
constexpr size_t kMinSnapshotInfoSize = 4 + 4 + 4 + 1 + 8 + crypto::kChunkIdSize + kStatsSize;

// Appends fields to a payload. Lengths and counts must fit in a u32 (the
// caps are far below that; asserted).
class Encoder {
 public:
  explicit Encoder(size_t size_hint = 0) : writer_(&out_) { out_.reserve(size_hint); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  void U8(uint8_t v) { writer_.PutU8(v); }
  void U16(uint16_t v) { writer_.PutU16(v); }
  void U32(uint32_t v) { writer_.PutU32(v); }
  void U64(uint64_t v) { writer_.PutU64(v); }
  void Bool(bool v) { writer_.PutU8(v ? 1 : 0); }
  void Count(size_t n) {
    assert(n <= std::numeric_limits<uint32_t>::max());
    writer_.PutU32(static_cast<uint32_t>(n));
  }
  void Raw(ByteView b) { writer_.PutBytes(b); }
  void Blob(ByteView b) {
    Count(b.size());
    Raw(b);
  }
  void String(std::string_view s) { Blob(AsBytes(s)); }
  void Strings(const std::vector<std::string>& v) {
    Count(v.size());
    for (const std::string& s : v) String(s);
  }
  void Id(const crypto::ChunkId& id) { writer_.PutBytes(id); }
  void Ids(const std::vector<crypto::ChunkId>& ids) {
    Count(ids.size());
    for (const crypto::ChunkId& id : ids) Id(id);
  }
  void Snapshot(const SnapshotInfo& s) {
    String(s.id);
    String(s.hostname);
    Strings(s.paths);
    U8(static_cast<uint8_t>(s.kind));
    U64(s.time_micros);
    Id(s.root_tree);
    Stats(s.stats);
  }
  void Stats(const SnapshotStats& s) {
    for (uint64_t v : {s.files, s.dirs, s.bytes, s.new_bytes, s.new_chunks, s.warnings,
                       s.started_micros, s.finished_micros}) {
      U64(v);
    }
  }

  Bytes Take() { return std::move(out_); }

 private:
  Bytes out_;
  ByteWriter writer_;
};

// Reads fields from an untrusted payload. The first violation is kept as
// InvalidArgument("<message>: <what>"); every later call is a no-op, so a
// Decode() reads its fields in order and checks once, in Finish().
class Decoder {
 public:
  Decoder(MessageType type, ByteView payload) : name_(MessageTypeName(type)), reader_(payload) {
    if (payload.size() > MaxPayloadFor(type)) {
      Fail("payload of " + std::to_string(payload.size()) + " bytes exceeds the limit of " +
           std::to_string(MaxPayloadFor(type)));
    }
  }

  bool ok() const { return status_.ok(); }

  void Fail(std::string_view what) {
    if (!ok()) return;
    std::string msg(name_);
    msg += ": ";
    msg += what;
    status_ = Status::InvalidArgument(msg);
  }

  void U8(uint8_t* v, std::string_view field) {
    if (ok() && !reader_.ReadU8(v)) Truncated(field);
  }
  void U16(uint16_t* v, std::string_view field) {
    if (ok() && !reader_.ReadU16(v)) Truncated(field);
  }
  void U32(uint32_t* v, std::string_view field) {
    if (ok() && !reader_.ReadU32(v)) Truncated(field);
  }
  void U64(uint64_t* v, std::string_view field) {
    if (ok() && !reader_.ReadU64(v)) Truncated(field);
  }

  void Bool(bool* v, std::string_view field) {
    uint8_t b = 0;
    U8(&b, field);
    if (!ok()) return;
    if (b > 1) return Fail(std::string(field) + " is " + std::to_string(b) + ", not 0 or 1");
    *v = b == 1;
  }

  // An enum stored as one byte whose valid values are first..last.
  template <typename E>
  void Enum(E* v, E first, E last, std::string_view field) {
    uint8_t b = 0;
    U8(&b, field);
    if (!ok()) return;
    if (b < static_cast<uint8_t>(first) || b > static_cast<uint8_t>(last)) {
      return Fail(std::string(field) + " " + std::to_string(b) + " is unknown");
    }
    *v = static_cast<E>(b);
  }

  // A u32 count of items each at least min_item_size bytes long, checked
  // against `max` and against the bytes left, so that no caller reserves
  // room for items the payload cannot hold. 0 after a failure.
  uint32_t Count(size_t max, size_t min_item_size, std::string_view field) {
    uint32_t n = 0;
    U32(&n, field);
    if (!ok()) return 0;
    if (n > max) {
      Fail(std::string(field) + " count " + std::to_string(n) + " exceeds " + std::to_string(max));
      return 0;
    }
    if (uint64_t{n} * min_item_size > reader_.remaining()) {
      Fail(std::string(field) + " count " + std::to_string(n) + " does not fit in the " +
           std::to_string(reader_.remaining()) + " bytes left");
      return 0;
    }
    return n;
  }

  // A u32 length of at most `max` and the bytes; the view points into the
  // payload. Empty after a failure.
  ByteView BlobView(size_t max, std::string_view field) {
    uint32_t len = 0;
    U32(&len, field);
    if (!ok()) return {};
    if (len > max) {
      Fail(std::string(field) + " length " + std::to_string(len) + " exceeds " +
           std::to_string(max));
      return {};
    }
    ByteView view;
    if (!reader_.ReadView(len, &view)) Truncated(field);
    return view;
  }
  void Blob(Bytes* out, size_t max, std::string_view field) {
    ByteView view = BlobView(max, field);
    if (ok()) out->assign(view.begin(), view.end());
  }
  void String(std::string* out, size_t max, std::string_view field) {
    ByteView view = BlobView(max, field);
    if (ok()) out->assign(AsString(view));
  }

  // A list of paths: each 1..kMaxPathLen bytes without NUL.
  void Paths(std::vector<std::string>* out, std::string_view field) {
    uint32_t n = Count(kMaxPaths, 4, field);
    out->reserve(n);
    for (uint32_t i = 0; i < n && ok(); ++i) {
      ByteView view = BlobView(kMaxPathLen, field);
      if (!ok()) return;
      std::string_view path = AsString(view);
      if (path.empty()) return Fail(std::string(field) + " holds an empty path");
      if (path.find('\0') != std::string_view::npos) {
        return Fail(std::string(field) + " holds a path with a NUL byte");
      }
      out->emplace_back(path);
    }
  }

  void Id(crypto::ChunkId* id, std::string_view field) {
    ByteView view;
    if (!ok()) return;
    if (!reader_.ReadView(id->size(), &view)) return Truncated(field);
    std::copy(view.begin(), view.end(), id->begin());
  }
  void Ids(std::vector<crypto::ChunkId>* out, size_t max, std::string_view field) {
    uint32_t n = Count(max, crypto::kChunkIdSize, field);
    out->resize(n);
    for (crypto::ChunkId& id : *out) Id(&id, field);
  }

  void Snapshot(SnapshotInfo* s) {
    String(&s->id, kMaxNameLen, "snapshot id");
    String(&s->hostname, kMaxNameLen, "snapshot hostname");
    Paths(&s->paths, "snapshot paths");
    Enum(&s->kind, SessionKind::kFiles, SessionKind::kImage, "snapshot kind");
    U64(&s->time_micros, "snapshot time_micros");
    Id(&s->root_tree, "snapshot root_tree");
    Stats(&s->stats);
  }
  void Stats(SnapshotStats* s) {
    U64(&s->files, "stats");
    U64(&s->dirs, "stats");
    U64(&s->bytes, "stats");
    U64(&s->new_bytes, "stats");
    U64(&s->new_chunks, "stats");
    U64(&s->warnings, "stats");
    U64(&s->started_micros, "stats");
    U64(&s->finished_micros, "stats");
  }

  ByteReader& reader() { return reader_; }

  // The message, or the first violation; trailing bytes are one.
  template <typename T>
  Result<T> Finish(T message) {
    if (ok() && reader_.remaining() != 0) {
      Fail(std::to_string(reader_.remaining()) + " trailing bytes");
    }
    if (!ok()) return status_;
    return message;
  }

 private:
  void Truncated(std::string_view field) { Fail(std::string(field) + " truncated"); }

  std::string_view name_;
  ByteReader reader_;
  Status status_;
};

}  // namespace

// --- Error ---

Error Error::FromStatus(const Status& status) {
  assert(!status.ok());
  Error e;
  e.code = status.ok() ? StatusCode::kInvalidArgument : status.code();
  e.retryable = status.retryable();
  e.message = status.message().substr(0, kMaxStringLen);
  return e;
}

Status Error::ToStatus() const { return Status(code, message, retryable); }

Bytes Error::Encode() const {
  Encoder e(6 + message.size());
  e.U8(static_cast<uint8_t>(code));
  e.Bool(retryable);
  e.String(message);
  return e.Take();
}

Result<Error> Error::Decode(ByteView payload) {
  Decoder d(MessageType::kError, payload);
  Error m;
  d.Enum(&m.code, StatusCode::kNotFound, StatusCode::kCancelled, "code");
  d.Bool(&m.retryable, "retryable");
  d.String(&m.message, kMaxStringLen, "message");
  return d.Finish(std::move(m));
}

// --- Hello, HelloOk ---

Bytes Hello::Encode() const {
  Encoder e(13 + software.size() + hostname.size());
  e.U16(min_version);
  e.U16(max_version);
  e.U8(static_cast<uint8_t>(role));
  e.String(software);
  e.String(hostname);
  return e.Take();
}

Result<Hello> Hello::Decode(ByteView payload) {
  Decoder d(MessageType::kHello, payload);
  Hello m;
  d.U16(&m.min_version, "min_version");
  d.U16(&m.max_version, "max_version");
  if (d.ok() && (m.min_version == 0 || m.min_version > m.max_version)) {
    d.Fail("version range " + std::to_string(m.min_version) + ".." + std::to_string(m.max_version) +
           " is invalid");
  }
  d.Enum(&m.role, Role::kAgent, Role::kEnroll, "role");
  d.String(&m.software, kMaxNameLen, "software");
  d.String(&m.hostname, kMaxNameLen, "hostname");
  return d.Finish(std::move(m));
}

Bytes HelloOk::Encode() const {
  Encoder e(18 + site.size() + department.size());
  e.U16(version);
  e.String(site);
  e.U64(server_time_micros);
  e.String(department);
  e.Strings(vault_addresses);
  return e.Take();
}

Result<HelloOk> HelloOk::Decode(ByteView payload) {
  Decoder d(MessageType::kHelloOk, payload);
  HelloOk m;
  d.U16(&m.version, "version");
  if (d.ok() && m.version == 0) d.Fail("version 0 is invalid");
  d.String(&m.site, kMaxNameLen, "site");
  d.U64(&m.server_time_micros, "server_time_micros");
  d.String(&m.department, kMaxNameLen, "department");
  uint32_t n = d.Count(kMaxVaultAddresses, 4, "vault_addresses");
  m.vault_addresses.resize(n);
  for (std::string& a : m.vault_addresses) d.String(&a, kMaxNameLen, "vault_addresses");
  return d.Finish(std::move(m));
}

// --- Enrolment ---

Bytes EnrollRequest::Encode() const {
  Encoder e(12 + token.size() + csr_pem.size() + hostname.size());
  e.String(token);
  e.String(csr_pem);
  e.String(hostname);
  return e.Take();
}

Result<EnrollRequest> EnrollRequest::Decode(ByteView payload) {
  Decoder d(MessageType::kEnrollRequest, payload);
  EnrollRequest m;
  d.String(&m.token, kMaxNameLen, "token");
  d.String(&m.csr_pem, kMaxStringLen, "csr_pem");
  d.String(&m.hostname, kMaxNameLen, "hostname");
  return d.Finish(std::move(m));
}

Bytes EnrollResponse::Encode() const {
  Encoder e(24 + certificate_pem.size() + ca_pem.size() + department.size() +
            department_keys.size());
  e.String(certificate_pem);
  e.String(ca_pem);
  e.String(department);
  e.U32(department_id);
  e.Blob(department_keys);
  e.Strings(vault_addresses);
  return e.Take();
}

Result<EnrollResponse> EnrollResponse::Decode(ByteView payload) {
  Decoder d(MessageType::kEnrollResponse, payload);
  EnrollResponse m;
  d.String(&m.certificate_pem, kMaxStringLen, "certificate_pem");
  d.String(&m.ca_pem, kMaxStringLen, "ca_pem");
  d.String(&m.department, kMaxNameLen, "department");
  d.U32(&m.department_id, "department_id");
  d.Blob(&m.department_keys, kMaxDepartmentKeysLen, "department_keys");
  uint32_t n = d.Count(kMaxVaultAddresses, 4, "vault_addresses");
  m.vault_addresses.resize(n);
  for (std::string& address : m.vault_addresses) {
    d.String(&address, kMaxNameLen, "vault_addresses");
  }
  return d.Finish(std::move(m));
}

// --- Backup session ---

Bytes SessionBegin::Encode() const {
  Encoder e;
  e.U8(static_cast<uint8_t>(kind));
  e.Strings(paths);
  e.U64(resume_session_id);
  return e.Take();
}

Result<SessionBegin> SessionBegin::Decode(ByteView payload) {
  Decoder d(MessageType::kSessionBegin, payload);
  SessionBegin m;
  d.Enum(&m.kind, SessionKind::kFiles, SessionKind::kImage, "kind");
  d.Paths(&m.paths, "paths");
  d.U64(&m.resume_session_id, "resume_session_id");
  return d.Finish(std::move(m));
}

Bytes SessionBegun::Encode() const {
  Encoder e(9);
  e.U64(session_id);
  e.Bool(resumed);
  return e.Take();
}

Result<SessionBegun> SessionBegun::Decode(ByteView payload) {
  Decoder d(MessageType::kSessionBegun, payload);
  SessionBegun m;
  d.U64(&m.session_id, "session_id");
  d.Bool(&m.resumed, "resumed");
  return d.Finish(std::move(m));
}

Bytes HaveChunks::Encode() const {
  Encoder e(8 + ids.size() * crypto::kChunkIdSize);
  e.U32(request_id);
  e.Ids(ids);
  return e.Take();
}

Result<HaveChunks> HaveChunks::Decode(ByteView payload) {
  Decoder d(MessageType::kHaveChunks, payload);
  HaveChunks m;
  d.U32(&m.request_id, "request_id");
  d.Ids(&m.ids, kMaxIdsPerMessage, "ids");
  return d.Finish(std::move(m));
}

Bytes HaveChunksReply::Encode() const {
  Bytes bitmap((present.size() + 7) / 8, 0);
  for (size_t i = 0; i < present.size(); ++i) {
    if (present[i]) bitmap[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
  Encoder e(8 + bitmap.size());
  e.U32(request_id);
  e.Count(present.size());
  e.Raw(bitmap);  // its length follows from the count
  return e.Take();
}

Result<HaveChunksReply> HaveChunksReply::Decode(ByteView payload) {
  Decoder d(MessageType::kHaveChunksReply, payload);
  HaveChunksReply m;
  d.U32(&m.request_id, "request_id");
  uint32_t n = 0;
  d.U32(&n, "present");
  if (d.ok() && n > kMaxIdsPerMessage) {
    d.Fail("present count " + std::to_string(n) + " exceeds " + std::to_string(kMaxIdsPerMessage));
  }
  ByteView bitmap;
  if (d.ok() && !d.reader().ReadView((size_t{n} + 7) / 8, &bitmap)) d.Fail("present truncated");
  if (d.ok() && n % 8 != 0 && (bitmap.back() >> (n % 8)) != 0) {
    d.Fail("present has bits set past its count");
  }
  if (d.ok()) {
    m.present.resize(n);
    for (uint32_t i = 0; i < n; ++i) m.present[i] = (bitmap[i / 8] >> (i % 8)) & 1;
  }
  return d.Finish(std::move(m));
}

Status CheckPutRecord(ByteView payload) {
  if (payload.empty()) return Status::InvalidArgument("put_record: empty record");
  if (payload.size() > kMaxRecordBytes) {
    return Status::InvalidArgument("put_record: record of " + std::to_string(payload.size()) +
                                   " bytes exceeds " + std::to_string(kMaxRecordBytes));
  }
  return Status::OK();
}

Bytes Flush::Encode() const {
  Encoder e(8);
  e.U64(sequence);
  return e.Take();
}

Result<Flush> Flush::Decode(ByteView payload) {
  Decoder d(MessageType::kFlush, payload);
  Flush m;
  d.U64(&m.sequence, "sequence");
  return d.Finish(std::move(m));
}

Bytes Flushed::Encode() const {
  Encoder e(24);
  e.U64(sequence);
  e.U64(records_stored);
  e.U64(bytes_stored);
  return e.Take();
}

Result<Flushed> Flushed::Decode(ByteView payload) {
  Decoder d(MessageType::kFlushed, payload);
  Flushed m;
  d.U64(&m.sequence, "sequence");
  d.U64(&m.records_stored, "records_stored");
  d.U64(&m.bytes_stored, "bytes_stored");
  return d.Finish(std::move(m));
}

Bytes ManifestPart::Encode() const {
  Encoder e(12 + ids.size() * crypto::kChunkIdSize);
  e.U64(session_id);
  e.Ids(ids);
  return e.Take();
}

Result<ManifestPart> ManifestPart::Decode(ByteView payload) {
  Decoder d(MessageType::kManifestPart, payload);
  ManifestPart m;
  d.U64(&m.session_id, "session_id");
  d.Ids(&m.ids, kMaxManifestIdsPerPart, "ids");
  return d.Finish(std::move(m));
}

Bytes Commit::Encode() const {
  Encoder e(16 + crypto::kChunkIdSize + kStatsSize);
  e.U64(session_id);
  e.Id(root_tree);
  e.U64(manifest_count);
  e.Stats(stats);
  return e.Take();
}

Result<Commit> Commit::Decode(ByteView payload) {
  Decoder d(MessageType::kCommit, payload);
  Commit m;
  d.U64(&m.session_id, "session_id");
  d.Id(&m.root_tree, "root_tree");
  d.U64(&m.manifest_count, "manifest_count");
  d.Stats(&m.stats);
  return d.Finish(std::move(m));
}

Bytes CommitOk::Encode() const {
  Encoder e(12 + snapshot_id.size());
  e.String(snapshot_id);
  e.U64(committed_micros);
  return e.Take();
}

Result<CommitOk> CommitOk::Decode(ByteView payload) {
  Decoder d(MessageType::kCommitOk, payload);
  CommitOk m;
  d.String(&m.snapshot_id, kMaxNameLen, "snapshot_id");
  d.U64(&m.committed_micros, "committed_micros");
  return d.Finish(std::move(m));
}

// --- Jobs ---

Bytes Job::Encode() const {
  Encoder e;
  e.U64(job_id);
  e.U8(static_cast<uint8_t>(kind));
  e.Strings(paths);
  e.Bool(image);
  return e.Take();
}

Result<Job> Job::Decode(ByteView payload) {
  Decoder d(MessageType::kJob, payload);
  Job m;
  d.U64(&m.job_id, "job_id");
  d.Enum(&m.kind, JobKind::kBackupNow, JobKind::kBackupNow, "kind");
  d.Paths(&m.paths, "paths");
  d.Bool(&m.image, "image");
  return d.Finish(std::move(m));
}

Bytes JobDone::Encode() const {
  Encoder e(17 + snapshot_id.size() + error.size());
  e.U64(job_id);
  e.Bool(ok);
  e.String(snapshot_id);
  e.String(error);
  return e.Take();
}

Result<JobDone> JobDone::Decode(ByteView payload) {
  Decoder d(MessageType::kJobDone, payload);
  JobDone m;
  d.U64(&m.job_id, "job_id");
  d.Bool(&m.ok, "ok");
  d.String(&m.snapshot_id, kMaxNameLen, "snapshot_id");
  d.String(&m.error, kMaxStringLen, "error");
  return d.Finish(std::move(m));
}

// --- Keep-alive ---

Bytes Ping::Encode() const {
  Encoder e(8);
  e.U64(nonce);
  return e.Take();
}

Result<Ping> Ping::Decode(ByteView payload) {
  Decoder d(MessageType::kPing, payload);
  Ping m;
  d.U64(&m.nonce, "nonce");
  return d.Finish(std::move(m));
}

Bytes Pong::Encode() const {
  Encoder e(8);
  e.U64(nonce);
  return e.Take();
}

Result<Pong> Pong::Decode(ByteView payload) {
  Decoder d(MessageType::kPong, payload);
  Pong m;
  d.U64(&m.nonce, "nonce");
  return d.Finish(std::move(m));
}

// --- Snapshots and restore ---

Bytes ListSnapshots::Encode() const {
  Encoder e(4);
  e.U32(limit);
  return e.Take();
}

Result<ListSnapshots> ListSnapshots::Decode(ByteView payload) {
  Decoder d(MessageType::kListSnapshots, payload);
  ListSnapshots m;
  d.U32(&m.limit, "limit");
  if (d.ok() && m.limit > kMaxSnapshotsPerList) {
    d.Fail("limit " + std::to_string(m.limit) + " exceeds " + std::to_string(kMaxSnapshotsPerList));
  }
  return d.Finish(std::move(m));
}

Bytes SnapshotList::Encode() const {
  Encoder e;
  e.Count(snapshots.size());
  for (const SnapshotInfo& s : snapshots) e.Snapshot(s);
  return e.Take();
}

Result<SnapshotList> SnapshotList::Decode(ByteView payload) {
  Decoder d(MessageType::kSnapshotList, payload);
  SnapshotList m;
  uint32_t n = d.Count(kMaxSnapshotsPerList, kMinSnapshotInfoSize, "snapshots");
  m.snapshots.resize(n);
  for (SnapshotInfo& s : m.snapshots) {
    d.Snapshot(&s);
    if (!d.ok()) break;
  }
  return d.Finish(std::move(m));
}

Bytes GetRecords::Encode() const {
  Encoder e(4 + ids.size() * crypto::kChunkIdSize);
  e.Ids(ids);
  return e.Take();
}

Result<GetRecords> GetRecords::Decode(ByteView payload) {
  Decoder d(MessageType::kGetRecords, payload);
  GetRecords m;
  d.Ids(&m.ids, kMaxRecordsPerMessage, "ids");
  return d.Finish(std::move(m));
}

Bytes Records::Encode() const {
  size_t size = 4;
  for (const Bytes& r : records) size += 4 + r.size();
  Encoder e(size);
  e.Count(records.size());
  for (const Bytes& r : records) e.Blob(r);
  return e.Take();
}

Result<Records> Records::Decode(ByteView payload) {
  Decoder d(MessageType::kRecords, payload);
  Records m;
  uint32_t n = d.Count(kMaxRecordsPerMessage, 4 + 1, "records");
  m.records.resize(n);
  for (Bytes& r : m.records) {
    ByteView view = d.BlobView(kMaxRecordBytes, "records");
    if (!d.ok()) break;
    if (view.empty()) {
      d.Fail("records holds an empty record");
      break;
    }
    r.assign(view.begin(), view.end());
  }
  return d.Finish(std::move(m));
}

Bytes GetDelta::Encode() const {
  Encoder e(40 + signature.size());
  e.U32(request_id);
  e.Id(id);
  e.Blob(signature);
  return e.Take();
}

Result<GetDelta> GetDelta::Decode(ByteView payload) {
  Decoder d(MessageType::kGetDelta, payload);
  GetDelta m;
  d.U32(&m.request_id, "request_id");
  d.Id(&m.id, "id");
  d.Blob(&m.signature, kMaxSignatureLen, "signature");
  if (d.ok() && m.signature.empty()) d.Fail("signature is empty");
  return d.Finish(std::move(m));
}

Bytes DeltaReply::Encode() const {
  Encoder e(9 + data.size());
  e.U32(request_id);
  e.U8(static_cast<uint8_t>(kind));
  e.Blob(data);
  return e.Take();
}

Result<DeltaReply> DeltaReply::Decode(ByteView payload) {
  Decoder d(MessageType::kDelta, payload);
  DeltaReply m;
  d.U32(&m.request_id, "request_id");
  d.Enum(&m.kind, DeltaKind::kDelta, DeltaKind::kWhole, "kind");
  d.Blob(&m.data, kMaxDeltaReplyLen, "data");
  return d.Finish(std::move(m));
}

// --- Replication ---

Bytes ReplicaList::Encode() const {
  Encoder e(12);
  e.U64(after);
  e.U32(limit);
  return e.Take();
}

Result<ReplicaList> ReplicaList::Decode(ByteView payload) {
  Decoder d(MessageType::kReplicaList, payload);
  ReplicaList m;
  d.U64(&m.after, "after");
  d.U32(&m.limit, "limit");
  if (d.ok() && m.limit > kMaxSnapshotsPerList)
    d.Fail("limit exceeds " + std::to_string(kMaxSnapshotsPerList));
  return d.Finish(std::move(m));
}

Bytes ReplicaSnapshots::Encode() const {
  Encoder e;
  e.Count(snapshots.size());
  for (const ReplicaSnapshot& r : snapshots) {
    e.U32(r.department_id);
    e.String(r.department);
    e.Snapshot(r.info);
    e.U64(r.manifest_count);
  }
  e.U64(latest);
  return e.Take();
}

Result<ReplicaSnapshots> ReplicaSnapshots::Decode(ByteView payload) {
  Decoder d(MessageType::kReplicaSnapshots, payload);
  ReplicaSnapshots m;
  uint32_t n = d.Count(kMaxSnapshotsPerList, 4 + 4 + kMinSnapshotInfoSize + 8, "snapshots");
  m.snapshots.resize(n);
  for (ReplicaSnapshot& r : m.snapshots) {
    d.U32(&r.department_id, "department_id");
    d.String(&r.department, kMaxNameLen, "department");
    d.Snapshot(&r.info);
    d.U64(&r.manifest_count, "manifest_count");
    if (!d.ok()) break;
  }
  d.U64(&m.latest, "latest");
  return d.Finish(std::move(m));
}

Bytes GetManifest::Encode() const {
  Encoder e(16 + snapshot_id.size());
  e.U32(department_id);
  e.String(snapshot_id);
  e.U64(offset);
  return e.Take();
}

Result<GetManifest> GetManifest::Decode(ByteView payload) {
  Decoder d(MessageType::kGetManifest, payload);
  GetManifest m;
  d.U32(&m.department_id, "department_id");
  d.String(&m.snapshot_id, kMaxNameLen, "snapshot_id");
  d.U64(&m.offset, "offset");
  return d.Finish(std::move(m));
}

Bytes Manifest::Encode() const {
  Encoder e(20 + ids.size() * crypto::kChunkIdSize);
  e.U64(total);
  e.U64(offset);
  e.Ids(ids);
  return e.Take();
}

Result<Manifest> Manifest::Decode(ByteView payload) {
  Decoder d(MessageType::kManifest, payload);
  Manifest m;
  d.U64(&m.total, "total");
  d.U64(&m.offset, "offset");
  d.Ids(&m.ids, kMaxManifestIdsPerPart, "ids");
  if (d.ok() && (m.offset > m.total || m.ids.size() > m.total - m.offset)) {
    d.Fail("ids run past the manifest's total");
  }
  return d.Finish(std::move(m));
}

Bytes GetReplicaRecords::Encode() const {
  Encoder e(8 + ids.size() * crypto::kChunkIdSize);
  e.U32(department_id);
  e.Ids(ids);
  return e.Take();
}

Result<GetReplicaRecords> GetReplicaRecords::Decode(ByteView payload) {
  Decoder d(MessageType::kGetReplicaRecords, payload);
  GetReplicaRecords m;
  d.U32(&m.department_id, "department_id");
  d.Ids(&m.ids, kMaxRecordsPerMessage, "ids");
  return d.Finish(std::move(m));
}

Bytes ReplicaSetup::Encode() const {
  Encoder e;
  e.String(site);
  e.Strings(addresses);
  e.String(server_csr_pem);
  e.Count(known_departments.size());
  for (uint32_t id : known_departments) e.U32(id);
  return e.Take();
}

Result<ReplicaSetup> ReplicaSetup::Decode(ByteView payload) {
  Decoder d(MessageType::kReplicaSetup, payload);
  ReplicaSetup m;
  d.String(&m.site, kMaxNameLen, "site");
  uint32_t n = d.Count(kMaxVaultAddresses, 4, "addresses");
  m.addresses.resize(n);
  for (std::string& a : m.addresses) d.String(&a, kMaxNameLen, "addresses");
  d.String(&m.server_csr_pem, kMaxStringLen, "server_csr_pem");
  n = d.Count(kMaxReplicaDepartments, 4, "known_departments");
  m.known_departments.resize(n);
  for (uint32_t& id : m.known_departments) d.U32(&id, "known_departments");
  return d.Finish(std::move(m));
}

Bytes ReplicaSetupOk::Encode() const {
  Encoder e;
  e.String(site);
  e.String(ca_pem);
  e.String(server_cert_pem);
  e.Count(departments.size());
  for (const ReplicaDepartment& dep : departments) {
    e.U32(dep.id);
    e.String(dep.name);
    e.U64(dep.created_micros);
    e.Blob(dep.keys);
  }
  e.Count(agents.size());
  for (const ReplicaAgent& a : agents) {
    e.String(a.serial);
    e.U32(a.department_id);
    e.String(a.host);
    e.U64(a.enrolled_micros);
    e.Bool(a.revoked);
    e.U64(a.revoked_micros);
  }
  e.Strings(vault_addresses);
  return e.Take();
}

Result<ReplicaSetupOk> ReplicaSetupOk::Decode(ByteView payload) {
  Decoder d(MessageType::kReplicaSetupOk, payload);
  ReplicaSetupOk m;
  d.String(&m.site, kMaxNameLen, "site");
  d.String(&m.ca_pem, kMaxStringLen, "ca_pem");
  d.String(&m.server_cert_pem, kMaxStringLen, "server_cert_pem");
  uint32_t n = d.Count(kMaxReplicaDepartments, 4 + 4 + 8 + 4, "departments");
  m.departments.resize(n);
  for (ReplicaDepartment& dep : m.departments) {
    d.U32(&dep.id, "department id");
    d.String(&dep.name, kMaxNameLen, "department name");
    d.U64(&dep.created_micros, "department created_micros");
    d.Blob(&dep.keys, kMaxDepartmentKeysLen, "department keys");
    if (!d.ok()) break;
  }
  n = d.Count(kMaxReplicaAgents, 4 + 4 + 4 + 8 + 1 + 8, "agents");
  m.agents.resize(n);
  for (ReplicaAgent& a : m.agents) {
    d.String(&a.serial, kMaxNameLen, "agent serial");
    d.U32(&a.department_id, "agent department_id");
    d.String(&a.host, kMaxNameLen, "agent host");
    d.U64(&a.enrolled_micros, "agent enrolled_micros");
    d.Bool(&a.revoked, "agent revoked");
    d.U64(&a.revoked_micros, "agent revoked_micros");
    if (!d.ok()) break;
  }
  n = d.Count(kMaxVaultAddresses, 4, "vault_addresses");
  m.vault_addresses.resize(n);
  for (std::string& a : m.vault_addresses) d.String(&a, kMaxNameLen, "vault_addresses");
  return d.Finish(std::move(m));
}

}  // namespace cairn::proto
