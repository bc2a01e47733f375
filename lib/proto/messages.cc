#include "lib/proto/messages.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <memory>
#include <string_view>
#include <type_traits>
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

constexpr size_t kStatsSize = 8 * 8 + 4 + 8;
// Smallest encoding of a SnapshotInfo: three empty lists/strings, the kind,
// the time, the root tree and the stats.
constexpr size_t kMinSnapshotInfoSize = 4 + 4 + 4 + 1 + 8 + crypto::kChunkIdSize + kStatsSize;

// Each message has one field list, a function template `Fields(io, m)`
// below, and three codecs walk it: Sizer (how many bytes), Encoder (writes
// them) and Decoder (reads untrusted bytes, checking every cap before it
// allocates). The field list names each field's type, its cap and its name
// for error messages, once; encode and decode cannot drift apart.
//
// A codec's calls take the field by reference: const for Sizer and Encoder
// (which see `const M&`), mutable for Decoder. Caps are checked only when
// decoding; an encoder trusts its caller (messages.h).

// The field reference type a codec sees.
template <typename Io, typename T>
using Ref = std::conditional_t<Io::kDecoding, T&, const T&>;

// Counts the bytes an encoding will take, so that Encode allocates once.
class Sizer {
 public:
  static constexpr bool kDecoding = false;
  void U8(const uint8_t&, std::string_view) { n_ += 1; }
  void U16(const uint16_t&, std::string_view) { n_ += 2; }
  void U32(const uint32_t&, std::string_view) { n_ += 4; }
  void U64(const uint64_t&, std::string_view) { n_ += 8; }
  void Bool(const bool&, std::string_view) { n_ += 1; }
  template <typename E>
  void Enum(const E&, E, E, std::string_view) {
    n_ += 1;
  }
  void String(const std::string& s, size_t, std::string_view) { n_ += 4 + s.size(); }
  void Blob(const Bytes& b, size_t, std::string_view, std::string_view = {}) { n_ += 4 + b.size(); }
  void Id(const crypto::ChunkId&, std::string_view) { n_ += crypto::kChunkIdSize; }
  void Ids(const std::vector<crypto::ChunkId>& ids, size_t, std::string_view) {
    n_ += 4 + ids.size() * crypto::kChunkIdSize;
  }
  void Strings(const std::vector<std::string>& v, size_t, size_t, std::string_view) {
    n_ += 4;
    for (const auto& s : v) n_ += 4 + s.size();
  }
  void Paths(const std::vector<std::string>& v, std::string_view field) {
    Strings(v, kMaxPaths, kMaxPathLen, field);
  }
  void Bitmap(const std::vector<bool>& v, size_t, std::string_view) {
    n_ += 4 + (v.size() + 7) / 8;
  }
  template <typename T, typename F>
  void List(const std::vector<T>& v, size_t, size_t, std::string_view, F&& item) {
    n_ += 4;
    for (const T& x : v) item(*this, x);
  }
  template <typename F>
  void Check(F&&) {}
  size_t size() const { return n_; }

 private:
  size_t n_ = 0;
};

// Appends fields to a payload. Lengths and counts must fit in a u32 (the
// caps are far below that; asserted).
class Encoder {
 public:
  static constexpr bool kDecoding = false;
  explicit Encoder(size_t size_hint) : writer_(&out_) { out_.reserve(size_hint); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  void U8(const uint8_t& v, std::string_view) { writer_.PutU8(v); }
  void U16(const uint16_t& v, std::string_view) { writer_.PutU16(v); }
  void U32(const uint32_t& v, std::string_view) { writer_.PutU32(v); }
  void U64(const uint64_t& v, std::string_view) { writer_.PutU64(v); }
  void Bool(const bool& v, std::string_view) { writer_.PutU8(v ? 1 : 0); }
  template <typename E>
  void Enum(const E& v, E, E, std::string_view) {
    writer_.PutU8(static_cast<uint8_t>(v));
  }
  void String(const std::string& s, size_t, std::string_view) { PutBlob(AsBytes(s)); }
  void Blob(const Bytes& b, size_t, std::string_view, std::string_view = {}) { PutBlob(b); }
  void Id(const crypto::ChunkId& id, std::string_view) { writer_.PutBytes(id); }
  void Ids(const std::vector<crypto::ChunkId>& ids, size_t, std::string_view field) {
    Count(ids.size());
    for (const crypto::ChunkId& id : ids) Id(id, field);
  }
  void Strings(const std::vector<std::string>& v, size_t, size_t, std::string_view) {
    Count(v.size());
    for (const std::string& s : v) PutBlob(AsBytes(s));
  }
  void Paths(const std::vector<std::string>& v, std::string_view field) {
    Strings(v, kMaxPaths, kMaxPathLen, field);
  }
  // u32 count, then ceil(count / 8) bytes, bit i in byte i / 8 at bit
  // position i % 8 (least significant first); unused bits are zero.
  void Bitmap(const std::vector<bool>& v, size_t, std::string_view) {
    Count(v.size());
    Bytes bitmap((v.size() + 7) / 8, 0);
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i]) bitmap[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    }
    writer_.PutBytes(bitmap);
  }
  template <typename T, typename F>
  void List(const std::vector<T>& v, size_t, size_t, std::string_view, F&& item) {
    Count(v.size());
    for (const T& x : v) item(*this, x);
  }
  template <typename F>
  void Check(F&&) {}

  Bytes Take() { return std::move(out_); }

 private:
  void Count(size_t n) {
    assert(n <= std::numeric_limits<uint32_t>::max());
    writer_.PutU32(static_cast<uint32_t>(n));
  }
  void PutBlob(ByteView b) {
    Count(b.size());
    writer_.PutBytes(b);
  }

  Bytes out_;
  ByteWriter writer_;
};

// Reads fields from an untrusted payload. The first violation is kept as
// InvalidArgument("<message>: <what>"); every later call is a no-op, so a
// field list is read in order and checked once, in Finish().
class Decoder {
 public:
  static constexpr bool kDecoding = true;
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

  void U8(uint8_t& v, std::string_view field) {
    if (ok() && !reader_.ReadU8(&v)) Truncated(field);
  }
  void U16(uint16_t& v, std::string_view field) {
    if (ok() && !reader_.ReadU16(&v)) Truncated(field);
  }
  void U32(uint32_t& v, std::string_view field) {
    if (ok() && !reader_.ReadU32(&v)) Truncated(field);
  }
  void U64(uint64_t& v, std::string_view field) {
    if (ok() && !reader_.ReadU64(&v)) Truncated(field);
  }

  void Bool(bool& v, std::string_view field) {
    uint8_t b = 0;
    U8(b, field);
    if (!ok()) return;
    if (b > 1) return Fail(std::string(field) + " is " + std::to_string(b) + ", not 0 or 1");
    v = b == 1;
  }

  // An enum stored as one byte whose valid values are first..last.
  template <typename E>
  void Enum(E& v, E first, E last, std::string_view field) {
    uint8_t b = 0;
    U8(b, field);
    if (!ok()) return;
    if (b < static_cast<uint8_t>(first) || b > static_cast<uint8_t>(last)) {
      return Fail(std::string(field) + " " + std::to_string(b) + " is unknown");
    }
    v = static_cast<E>(b);
  }

  void String(std::string& out, size_t max, std::string_view field) {
    ByteView view = BlobView(max, field);
    if (ok()) out.assign(AsString(view));
  }
  // `if_empty`: the violation an empty blob is (empty: none).
  void Blob(Bytes& out, size_t max, std::string_view field, std::string_view if_empty = {}) {
    ByteView view;
    Blob(view, max, field, if_empty);
    if (ok()) out.assign(view.begin(), view.end());
  }
  // The same, in place: `out` points into the payload.
  void Blob(ByteView& out, size_t max, std::string_view field, std::string_view if_empty = {}) {
    ByteView view = BlobView(max, field);
    if (ok() && !if_empty.empty() && view.empty()) return Fail(if_empty);
    if (ok()) out = view;
  }

  void Id(crypto::ChunkId& id, std::string_view field) {
    ByteView view;
    if (!ok()) return;
    if (!reader_.ReadView(id.size(), &view)) return Truncated(field);
    std::copy(view.begin(), view.end(), id.begin());
  }
  void Ids(std::vector<crypto::ChunkId>& out, size_t max, std::string_view field) {
    uint32_t n = Count(max, crypto::kChunkIdSize, field);
    out.resize(n);
    for (crypto::ChunkId& id : out) Id(id, field);
  }

  // At most `max_count` strings of at most `max_len` bytes each.
  void Strings(std::vector<std::string>& out, size_t max_count, size_t max_len,
               std::string_view field) {
    uint32_t n = Count(max_count, 4, field);
    out.resize(n);
    for (std::string& s : out) {
      String(s, max_len, field);
      if (!ok()) return;
    }
  }

  // A list of paths: each 1..kMaxPathLen bytes without NUL.
  void Paths(std::vector<std::string>& out, std::string_view field) {
    Strings(out, kMaxPaths, kMaxPathLen, field);
    for (const std::string& path : out) {
      if (!ok()) return;
      if (path.empty()) return Fail(std::string(field) + " holds an empty path");
      if (path.find('\0') != std::string::npos) {
        return Fail(std::string(field) + " holds a path with a NUL byte");
      }
    }
  }

  void Bitmap(std::vector<bool>& out, size_t max, std::string_view field) {
    uint32_t n = 0;
    U32(n, field);
    if (ok() && n > max) {
      return Fail(std::string(field) + " count " + std::to_string(n) + " exceeds " +
                  std::to_string(max));
    }
    ByteView bitmap;
    if (ok() && !reader_.ReadView((size_t{n} + 7) / 8, &bitmap)) return Truncated(field);
    if (ok() && n % 8 != 0 && (bitmap.back() >> (n % 8)) != 0) {
      return Fail(std::string(field) + " has bits set past its count");
    }
    if (!ok()) return;
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i) out[i] = (bitmap[i / 8] >> (i % 8)) & 1;
  }

  // A list of items of at least `min_item_size` bytes each, read by `item`.
  template <typename T, typename F>
  void List(std::vector<T>& out, size_t max, size_t min_item_size, std::string_view field,
            F&& item) {
    uint32_t n = Count(max, min_item_size, field);
    out.resize(n);
    for (T& x : out) {
      item(*this, x);
      if (!ok()) return;
    }
  }

  // A rule across fields; `what` makes the message, only when it fails.
  template <typename F>
  void Check(F&& what) {
    if (!ok()) return;
    std::string why = what();
    if (!why.empty()) Fail(why);
  }

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

  // A u32 count of items each at least min_item_size bytes long, checked
  // against `max` and against the bytes left, so that no caller reserves
  // room for items the payload cannot hold. 0 after a failure.
  uint32_t Count(size_t max, size_t min_item_size, std::string_view field) {
    uint32_t n = 0;
    U32(n, field);
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
    U32(len, field);
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

  std::string_view name_;
  ByteReader reader_;
  Status status_;
};

// --- The field lists: doc/protocol.md, message by message. ---

template <typename Io>
void Fields(Io& io, Ref<Io, SnapshotStats> s) {
  io.U64(s.files, "stats");
  io.U64(s.dirs, "stats");
  io.U64(s.bytes, "stats");
  io.U64(s.new_bytes, "stats");
  io.U64(s.new_chunks, "stats");
  io.U64(s.warnings, "stats");
  io.U64(s.started_micros, "stats");
  io.U64(s.finished_micros, "stats");
  io.String(s.pit_method, kMaxNameLen, "stats pit_method");
  io.U64(s.pit_micros, "stats pit_micros");
}

template <typename Io>
void Fields(Io& io, Ref<Io, SnapshotInfo> s) {
  io.String(s.id, kMaxNameLen, "snapshot id");
  io.String(s.hostname, kMaxNameLen, "snapshot hostname");
  io.Paths(s.paths, "snapshot paths");
  io.Enum(s.kind, SessionKind::kFiles, SessionKind::kImage, "snapshot kind");
  io.U64(s.time_micros, "snapshot time_micros");
  io.Id(s.root_tree, "snapshot root_tree");
  Fields<Io>(io, s.stats);
}

// Items of lists: each through its own field list.
constexpr auto kEach = [](auto& io, auto& item) { Fields<std::decay_t<decltype(io)>>(io, item); };

template <typename Io>
void Fields(Io& io, Ref<Io, Error> m) {
  io.Enum(m.code, StatusCode::kNotFound, StatusCode::kCancelled, "code");
  io.Bool(m.retryable, "retryable");
  io.String(m.message, kMaxStringLen, "message");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Hello> m) {
  io.U16(m.min_version, "min_version");
  io.U16(m.max_version, "max_version");
  io.Check([&] {
    return m.min_version == 0 || m.min_version > m.max_version
               ? "version range " + std::to_string(m.min_version) + ".." +
                     std::to_string(m.max_version) + " is invalid"
               : std::string();
  });
  io.Enum(m.role, Role::kAgent, Role::kEnroll, "role");
  io.String(m.software, kMaxNameLen, "software");
  io.String(m.hostname, kMaxNameLen, "hostname");
}

template <typename Io>
void Fields(Io& io, Ref<Io, HelloOk> m) {
  io.U16(m.version, "version");
  io.Check([&] { return m.version == 0 ? std::string("version 0 is invalid") : std::string(); });
  io.String(m.site, kMaxNameLen, "site");
  io.U64(m.server_time_micros, "server_time_micros");
  io.String(m.department, kMaxNameLen, "department");
  io.Strings(m.vault_addresses, kMaxVaultAddresses, kMaxNameLen, "vault_addresses");
}

template <typename Io>
void Fields(Io& io, Ref<Io, EnrollRequest> m) {
  io.String(m.token, kMaxNameLen, "token");
  io.String(m.csr_pem, kMaxStringLen, "csr_pem");
  io.String(m.hostname, kMaxNameLen, "hostname");
}

template <typename Io>
void Fields(Io& io, Ref<Io, EnrollResponse> m) {
  io.String(m.certificate_pem, kMaxStringLen, "certificate_pem");
  io.String(m.ca_pem, kMaxStringLen, "ca_pem");
  io.String(m.department, kMaxNameLen, "department");
  io.U32(m.department_id, "department_id");
  io.Blob(m.department_keys, kMaxDepartmentKeysLen, "department_keys");
  io.Strings(m.vault_addresses, kMaxVaultAddresses, kMaxNameLen, "vault_addresses");
}

template <typename Io>
void Fields(Io& io, Ref<Io, SessionBegin> m) {
  io.Enum(m.kind, SessionKind::kFiles, SessionKind::kImage, "kind");
  io.Paths(m.paths, "paths");
  io.U64(m.resume_session_id, "resume_session_id");
}

template <typename Io>
void Fields(Io& io, Ref<Io, SessionBegun> m) {
  io.U64(m.session_id, "session_id");
  io.Bool(m.resumed, "resumed");
}

template <typename Io>
void Fields(Io& io, Ref<Io, HaveChunks> m) {
  io.U32(m.request_id, "request_id");
  io.Ids(m.ids, kMaxIdsPerMessage, "ids");
}

template <typename Io>
void Fields(Io& io, Ref<Io, HaveChunksReply> m) {
  io.U32(m.request_id, "request_id");
  io.Bitmap(m.present, kMaxIdsPerMessage, "present");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Flush> m) {
  io.U64(m.sequence, "sequence");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Flushed> m) {
  io.U64(m.sequence, "sequence");
  io.U64(m.records_stored, "records_stored");
  io.U64(m.bytes_stored, "bytes_stored");
}

template <typename Io>
void Fields(Io& io, Ref<Io, ManifestPart> m) {
  io.U64(m.session_id, "session_id");
  io.Ids(m.ids, kMaxManifestIdsPerPart, "ids");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Commit> m) {
  io.U64(m.session_id, "session_id");
  io.Id(m.root_tree, "root_tree");
  io.U64(m.manifest_count, "manifest_count");
  Fields<Io>(io, m.stats);
}

template <typename Io>
void Fields(Io& io, Ref<Io, CommitOk> m) {
  io.String(m.snapshot_id, kMaxNameLen, "snapshot_id");
  io.U64(m.committed_micros, "committed_micros");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Job> m) {
  io.U64(m.job_id, "job_id");
  io.Enum(m.kind, JobKind::kBackupNow, JobKind::kRestore, "kind");
  io.Paths(m.paths, "paths");
  io.Bool(m.image, "image");
  io.Paths(m.excludes, "excludes");
  io.U8(m.zstd_level, "zstd_level");
  io.U64(m.bandwidth, "bandwidth");
  io.String(m.snapshot_id, kMaxNameLen, "snapshot_id");
  io.String(m.check, kMaxPathLen, "check");
  io.U32(m.check_timeout_seconds, "check_timeout_seconds");
  io.U64(m.rto_seconds, "rto_seconds");
  io.Strings(m.read_from, kMaxVaultAddresses, kMaxNameLen, "read_from");
  io.String(m.target, kMaxPathLen, "target");
  io.String(m.pit, 16, "pit");
  io.String(m.pre_command, kMaxPathLen, "pre_command");
  io.String(m.post_command, kMaxPathLen, "post_command");
  io.U32(m.hook_timeout_seconds, "hook_timeout_seconds");
  io.Bool(m.hook_failure_continue, "hook_failure_continue");
}

template <typename Io>
void Fields(Io& io, Ref<Io, JobDone> m) {
  io.U64(m.job_id, "job_id");
  io.Bool(m.ok, "ok");
  io.String(m.snapshot_id, kMaxNameLen, "snapshot_id");
  io.String(m.error, kMaxStringLen, "error");
  io.String(m.log, kMaxStringLen, "log");
}

template <typename Io>
void Fields(Io& io, Ref<Io, RestoreBegin> m) {
  io.String(m.purpose, 16, "purpose");
  io.String(m.snapshot_id, kMaxNameLen, "snapshot_id");
  io.String(m.target, kMaxPathLen, "target");
  io.Bool(m.in_place, "in_place");
  io.Bool(m.continuation, "continuation");
}

template <typename Io>
void Fields(Io& io, Ref<Io, JobProgress> m) {
  io.U64(m.job_id, "job_id");
  io.U64(m.files, "files");
  io.U64(m.bytes_done, "bytes_done");
  io.U64(m.bytes_total, "bytes_total");
  io.U64(m.new_bytes, "new_bytes");
  io.U64(m.elapsed_millis, "elapsed_millis");
  io.U32(m.eta_seconds, "eta_seconds");
}

template <typename Io>
void Fields(Io& io, Ref<Io, DrillReport> m) {
  io.String(m.json, kMaxDrillJson, "json");
}

template <typename Io>
void Fields(Io& io, Ref<Io, DrillSigned> m) {
  io.String(m.json, kMaxDrillJson, "json");
}

template <typename Io>
void Fields(Io& io, Ref<Io, RestoreBegun> m) {
  io.String(m.snapshot_id, kMaxNameLen, "snapshot_id");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Ping> m) {
  io.U64(m.nonce, "nonce");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Pong> m) {
  io.U64(m.nonce, "nonce");
}

template <typename Io>
void Fields(Io& io, Ref<Io, ListSnapshots> m) {
  io.U32(m.limit, "limit");
  io.Check([&] {
    return m.limit > kMaxSnapshotsPerList ? "limit " + std::to_string(m.limit) + " exceeds " +
                                                std::to_string(kMaxSnapshotsPerList)
                                          : std::string();
  });
}

template <typename Io>
void Fields(Io& io, Ref<Io, SnapshotList> m) {
  io.List(m.snapshots, kMaxSnapshotsPerList, kMinSnapshotInfoSize, "snapshots", kEach);
}

template <typename Io>
void Fields(Io& io, Ref<Io, GetRecords> m) {
  io.Ids(m.ids, kMaxRecordsPerMessage, "ids");
}

// Records and RecordViews: one field list, records owned or in place.
template <typename Io, typename M>
void RecordsFields(Io& io, M& m) {
  io.List(m.records, kMaxRecordsPerMessage, 4 + 1, "records", [](auto& c, auto& record) {
    c.Blob(record, kMaxRecordBytes, "records", "records holds an empty record");
  });
}

template <typename Io>
void Fields(Io& io, Ref<Io, Records> m) {
  RecordsFields(io, m);
}

template <typename Io>
void Fields(Io& io, RecordViews& m) {
  RecordsFields(io, m);
}

template <typename Io>
void Fields(Io& io, Ref<Io, GetDelta> m) {
  io.U32(m.request_id, "request_id");
  io.Id(m.id, "id");
  io.Blob(m.signature, kMaxSignatureLen, "signature");
  io.Id(m.have, "have");
  io.Check([&] {
    return m.signature.empty() && m.have == crypto::ChunkId{}
               ? std::string("signature is empty and no have is given")
               : std::string();
  });
}

template <typename Io>
void Fields(Io& io, Ref<Io, DeltaReply> m) {
  io.U32(m.request_id, "request_id");
  io.Enum(m.kind, DeltaKind::kDelta, DeltaKind::kNoChain, "kind");
  io.Blob(m.data, kMaxDeltaReplyLen, "data");
  io.List(m.deltas, kMaxDeltasPerReply, 4 + 1, "deltas", [](auto& c, auto& delta) {
    c.Blob(delta, kMaxDeltaReplyLen, "deltas", "deltas holds an empty delta");
  });
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaList> m) {
  io.U64(m.after, "after");
  io.U32(m.limit, "limit");
  io.Check([&] {
    return m.limit > kMaxSnapshotsPerList ? "limit exceeds " + std::to_string(kMaxSnapshotsPerList)
                                          : std::string();
  });
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaSnapshot> r) {
  io.U32(r.department_id, "department_id");
  io.String(r.department, kMaxNameLen, "department");
  Fields<Io>(io, r.info);
  io.U64(r.manifest_count, "manifest_count");
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaSnapshots> m) {
  io.List(m.snapshots, kMaxSnapshotsPerList, 4 + 4 + kMinSnapshotInfoSize + 8, "snapshots", kEach);
  io.U64(m.latest, "latest");
}

template <typename Io>
void Fields(Io& io, Ref<Io, GetManifest> m) {
  io.U32(m.department_id, "department_id");
  io.String(m.snapshot_id, kMaxNameLen, "snapshot_id");
  io.U64(m.offset, "offset");
}

template <typename Io>
void Fields(Io& io, Ref<Io, Manifest> m) {
  io.U64(m.total, "total");
  io.U64(m.offset, "offset");
  io.Ids(m.ids, kMaxManifestIdsPerPart, "ids");
  io.Check([&] {
    return m.offset > m.total || m.ids.size() > m.total - m.offset
               ? std::string("ids run past the manifest's total")
               : std::string();
  });
}

template <typename Io>
void Fields(Io& io, Ref<Io, GetReplicaRecords> m) {
  io.U32(m.department_id, "department_id");
  io.Ids(m.ids, kMaxRecordsPerMessage, "ids");
}

template <typename Io>
void Fields(Io& io, Ref<Io, GetReplicaOrder> m) {
  io.U32(m.department_id, "department_id");
  io.Ids(m.ids, kMaxIdsPerMessage, "ids");
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaOrder> m) {
  io.List(m.keys, kMaxIdsPerMessage, 8, "keys", [](auto& c, auto& key) { c.U64(key, "keys"); });
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaSetup> m) {
  io.String(m.site, kMaxNameLen, "site");
  io.Strings(m.addresses, kMaxVaultAddresses, kMaxNameLen, "addresses");
  io.String(m.server_csr_pem, kMaxStringLen, "server_csr_pem");
  io.List(m.known_departments, kMaxReplicaDepartments, 4, "known_departments",
          [](auto& c, auto& id) { c.U32(id, "known_departments"); });
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaDepartment> d) {
  io.U32(d.id, "department id");
  io.String(d.name, kMaxNameLen, "department name");
  io.U64(d.created_micros, "department created_micros");
  io.Blob(d.keys, kMaxDepartmentKeysLen, "department keys");
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaAgent> a) {
  io.String(a.serial, kMaxNameLen, "agent serial");
  io.U32(a.department_id, "agent department_id");
  io.String(a.host, kMaxNameLen, "agent host");
  io.U64(a.enrolled_micros, "agent enrolled_micros");
  io.Bool(a.revoked, "agent revoked");
  io.U64(a.revoked_micros, "agent revoked_micros");
}

template <typename Io>
void Fields(Io& io, Ref<Io, ReplicaSetupOk> m) {
  io.String(m.site, kMaxNameLen, "site");
  io.String(m.ca_pem, kMaxStringLen, "ca_pem");
  io.String(m.server_cert_pem, kMaxStringLen, "server_cert_pem");
  io.List(m.departments, kMaxReplicaDepartments, 4 + 4 + 8 + 4, "departments", kEach);
  io.List(m.agents, kMaxReplicaAgents, 4 + 4 + 4 + 8 + 1 + 8, "agents", kEach);
  io.Strings(m.vault_addresses, kMaxVaultAddresses, kMaxNameLen, "vault_addresses");
}

template <typename M>
Bytes EncodeMessage(const M& m) {
  Sizer sizer;
  Fields<Sizer>(sizer, m);
  Encoder e(sizer.size());
  Fields<Encoder>(e, m);
  return e.Take();
}

template <typename M>
Result<M> DecodeMessage(MessageType type, ByteView payload) {
  Decoder d(type, payload);
  M m;
  Fields<Decoder>(d, m);
  return d.Finish(std::move(m));
}

}  // namespace

// Encode() and Decode() of every message: its field list, walked.
#define CAIRN_MESSAGE_CODEC(Type, kType)                      \
  Bytes Type::Encode() const { return EncodeMessage(*this); } \
  Result<Type> Type::Decode(ByteView payload) {               \
    return DecodeMessage<Type>(MessageType::kType, payload);  \
  }

CAIRN_MESSAGE_CODEC(Error, kError)
CAIRN_MESSAGE_CODEC(Hello, kHello)
CAIRN_MESSAGE_CODEC(HelloOk, kHelloOk)
CAIRN_MESSAGE_CODEC(EnrollRequest, kEnrollRequest)
CAIRN_MESSAGE_CODEC(EnrollResponse, kEnrollResponse)
CAIRN_MESSAGE_CODEC(SessionBegin, kSessionBegin)
CAIRN_MESSAGE_CODEC(SessionBegun, kSessionBegun)
CAIRN_MESSAGE_CODEC(HaveChunks, kHaveChunks)
CAIRN_MESSAGE_CODEC(HaveChunksReply, kHaveChunksReply)
CAIRN_MESSAGE_CODEC(Flush, kFlush)
CAIRN_MESSAGE_CODEC(Flushed, kFlushed)
CAIRN_MESSAGE_CODEC(ManifestPart, kManifestPart)
CAIRN_MESSAGE_CODEC(Commit, kCommit)
CAIRN_MESSAGE_CODEC(CommitOk, kCommitOk)
CAIRN_MESSAGE_CODEC(Job, kJob)
CAIRN_MESSAGE_CODEC(JobDone, kJobDone)
CAIRN_MESSAGE_CODEC(Ping, kPing)
CAIRN_MESSAGE_CODEC(Pong, kPong)
CAIRN_MESSAGE_CODEC(ListSnapshots, kListSnapshots)
CAIRN_MESSAGE_CODEC(SnapshotList, kSnapshotList)
CAIRN_MESSAGE_CODEC(GetRecords, kGetRecords)
CAIRN_MESSAGE_CODEC(Records, kRecords)

Result<RecordViews> RecordViews::Decode(ByteView payload) {
  return DecodeMessage<RecordViews>(MessageType::kRecords, payload);
}

RecordsPayload::RecordsPayload(std::span<const uint32_t> lengths, BufferPool* pool) {
  size_ = 4;
  offsets_.reserve(lengths.size());
  for (uint32_t length : lengths) {
    offsets_.push_back(size_ + 4);
    size_ += 4 + size_t{length};
  }
  // Not zero-filled: every byte is either written below or a record's,
  // which the caller fills before sending.
  data_ = pool != nullptr ? pool->Get(size_) : BufferPool::Buffer::Allocate(size_);
  EncodeFixed32(data_.data(), static_cast<uint32_t>(lengths.size()));
  for (size_t i = 0; i < lengths.size(); ++i) {
    EncodeFixed32(data_.data() + offsets_[i] - 4, lengths[i]);
  }
}

MutableByteView RecordsPayload::record(size_t i) {
  const size_t end = i + 1 < offsets_.size() ? offsets_[i + 1] - 4 : size_;
  return MutableByteView(data_.data() + offsets_[i], end - offsets_[i]);
}

std::vector<MutableByteView> RecordsPayload::records() {
  std::vector<MutableByteView> out;
  out.reserve(count());
  for (size_t i = 0; i < count(); ++i) out.push_back(record(i));
  return out;
}

void RecordsPayload::KeepFirst(size_t n) {
  assert(n <= offsets_.size());
  if (n == offsets_.size()) return;
  size_ = offsets_[n] - 4;
  offsets_.resize(n);
  EncodeFixed32(data_.data(), static_cast<uint32_t>(n));
}
CAIRN_MESSAGE_CODEC(GetDelta, kGetDelta)
CAIRN_MESSAGE_CODEC(DeltaReply, kDelta)
CAIRN_MESSAGE_CODEC(ReplicaList, kReplicaList)
CAIRN_MESSAGE_CODEC(ReplicaSnapshots, kReplicaSnapshots)
CAIRN_MESSAGE_CODEC(GetManifest, kGetManifest)
CAIRN_MESSAGE_CODEC(Manifest, kManifest)
CAIRN_MESSAGE_CODEC(GetReplicaRecords, kGetReplicaRecords)
CAIRN_MESSAGE_CODEC(ReplicaSetup, kReplicaSetup)
CAIRN_MESSAGE_CODEC(ReplicaSetupOk, kReplicaSetupOk)
CAIRN_MESSAGE_CODEC(RestoreBegin, kRestoreBegin)
CAIRN_MESSAGE_CODEC(RestoreBegun, kRestoreBegun)
CAIRN_MESSAGE_CODEC(JobProgress, kJobProgress)
CAIRN_MESSAGE_CODEC(DrillReport, kDrillReport)
CAIRN_MESSAGE_CODEC(DrillSigned, kDrillSigned)
CAIRN_MESSAGE_CODEC(GetReplicaOrder, kGetReplicaOrder)
CAIRN_MESSAGE_CODEC(ReplicaOrder, kReplicaOrder)

#undef CAIRN_MESSAGE_CODEC

Error Error::FromStatus(const Status& status) {
  assert(!status.ok());
  Error e;
  e.code = status.ok() ? StatusCode::kInvalidArgument : status.code();
  e.retryable = status.retryable();
  e.message = status.message().substr(0, kMaxStringLen);
  return e;
}

Status Error::ToStatus() const { return Status(code, message, retryable); }

Status CheckPutRecord(ByteView payload) {
  if (payload.empty()) return Status::InvalidArgument("put_record: empty record");
  if (payload.size() > kMaxRecordBytes) {
    return Status::InvalidArgument("put_record: record of " + std::to_string(payload.size()) +
                                   " bytes exceeds " + std::to_string(kMaxRecordBytes));
  }
  return Status::OK();
}

Bytes PutDeltaRecord::Encode(const crypto::ChunkId& base, ByteView record) {
  Bytes out(base.begin(), base.end());
  out.insert(out.end(), record.begin(), record.end());
  return out;
}

Result<PutDeltaRecord> PutDeltaRecord::Decode(ByteView payload) {
  if (payload.size() < crypto::kChunkIdSize) {
    return Status::InvalidArgument("put_delta_record: shorter than a base ID");
  }
  PutDeltaRecord m;
  std::memcpy(m.base.data(), payload.data(), crypto::kChunkIdSize);
  m.record = payload.subspan(crypto::kChunkIdSize);
  CAIRN_RETURN_IF_ERROR(CheckPutRecord(m.record).WithContext("put_delta_record"));
  return m;
}

}  // namespace cairn::proto
