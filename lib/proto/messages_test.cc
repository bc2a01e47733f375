#include "lib/proto/messages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

// Records the largest single allocation while a test watches, so that the
// "huge count in a tiny buffer" cases can assert that Decode() refused the
// count before reserving room for it.
namespace {
std::atomic<bool> g_watching{false};
std::atomic<size_t> g_largest_allocation{0};

void* TrackedAlloc(std::size_t n) {
  if (g_watching.load(std::memory_order_relaxed)) {
    size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
    while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
    }
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return TrackedAlloc(n); }
void* operator new[](std::size_t n) { return TrackedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace cairn::proto {
namespace {

class AllocationWatch {
 public:
  AllocationWatch() {
    g_largest_allocation = 0;
    g_watching = true;
  }
  ~AllocationWatch() { g_watching = false; }
  size_t largest() const { return g_largest_allocation; }
};

template <typename T>
struct TypeOf;
#define CAIRN_TYPE_OF(T)                                    \
  template <>                                               \
  struct TypeOf<T> {                                        \
    static constexpr MessageType kType = MessageType::k##T; \
  }
CAIRN_TYPE_OF(Error);
CAIRN_TYPE_OF(Hello);
CAIRN_TYPE_OF(HelloOk);
CAIRN_TYPE_OF(EnrollRequest);
CAIRN_TYPE_OF(EnrollResponse);
CAIRN_TYPE_OF(SessionBegin);
CAIRN_TYPE_OF(SessionBegun);
CAIRN_TYPE_OF(HaveChunks);
CAIRN_TYPE_OF(HaveChunksReply);
CAIRN_TYPE_OF(Flush);
CAIRN_TYPE_OF(Flushed);
CAIRN_TYPE_OF(ManifestPart);
CAIRN_TYPE_OF(Commit);
CAIRN_TYPE_OF(CommitOk);
CAIRN_TYPE_OF(Job);
CAIRN_TYPE_OF(JobDone);
CAIRN_TYPE_OF(Ping);
CAIRN_TYPE_OF(Pong);
CAIRN_TYPE_OF(ListSnapshots);
CAIRN_TYPE_OF(SnapshotList);
CAIRN_TYPE_OF(GetRecords);
CAIRN_TYPE_OF(Records);
CAIRN_TYPE_OF(GetDelta);
CAIRN_TYPE_OF(ReplicaList);
CAIRN_TYPE_OF(ReplicaSnapshots);
CAIRN_TYPE_OF(GetManifest);
CAIRN_TYPE_OF(Manifest);
CAIRN_TYPE_OF(GetReplicaRecords);
CAIRN_TYPE_OF(GetReplicaOrder);
CAIRN_TYPE_OF(ReplicaOrder);
CAIRN_TYPE_OF(ReplicaSetup);
CAIRN_TYPE_OF(ReplicaSetupOk);
CAIRN_TYPE_OF(RestoreBegin);
CAIRN_TYPE_OF(JobProgress);
CAIRN_TYPE_OF(RestoreBegun);
template <>
struct TypeOf<DeltaReply> {
  static constexpr MessageType kType = MessageType::kDelta;
};
#undef CAIRN_TYPE_OF

template <typename T>
std::string Prefix() {
  return std::string(MessageTypeName(TypeOf<T>::kType)) + ": ";
}

// Decoding `payload` as T fails with InvalidArgument("<name>: ...<contains>...").
template <typename T>
void ExpectRejected(ByteView payload, std::string_view contains) {
  Result<T> m = T::Decode(payload);
  ASSERT_FALSE(m.ok()) << Prefix<T>() << "accepted, wanted: " << contains;
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status().message().rfind(Prefix<T>(), 0), 0u) << m.status().message();
  EXPECT_NE(m.status().message().find(contains), std::string::npos)
      << m.status().message() << " (wanted " << contains << ")";
}

// Round trip, canonical re-encoding, every truncation (or a sample of them
// for multi-megabyte encodings) and one trailing byte.
template <typename T>
Bytes ExpectRoundTrip(const T& message) {
  Bytes encoded = message.Encode();
  Result<T> decoded = T::Decode(encoded);
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  if (!decoded.ok()) return encoded;
  EXPECT_TRUE(*decoded == message);
  EXPECT_EQ(decoded->Encode(), encoded);

  const size_t n = encoded.size();
  if (n <= (64u << 10)) {
    for (size_t len = 0; len < n; ++len) {
      Result<T> cut = T::Decode(ByteView(encoded.data(), len));
      EXPECT_FALSE(cut.ok()) << Prefix<T>() << "accepted a truncation to " << len << " of " << n;
      if (!cut.ok()) {
        EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument);
      }
    }
  } else {
    for (size_t len : {size_t{0}, size_t{1}, size_t{4}, n / 2, n - 33, n - 1}) {
      EXPECT_FALSE(T::Decode(ByteView(encoded.data(), len)).ok()) << len;
    }
  }
  Bytes longer = encoded;
  longer.push_back(0);
  ExpectRejected<T>(longer, "1 trailing bytes");
  return encoded;
}

crypto::ChunkId Id(uint8_t fill) {
  crypto::ChunkId id;
  id.fill(fill);
  id[0] = static_cast<uint8_t>(~fill);
  return id;
}

std::vector<crypto::ChunkId> Ids(size_t n) {
  std::vector<crypto::ChunkId> ids(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i].fill(0);
    EncodeFixed64(ids[i].data(), i * 0x9e3779b97f4a7c15ull);
    EncodeFixed64(ids[i].data() + 24, i);
  }
  return ids;
}

SnapshotStats SomeStats() {
  return {.files = 1000,
          .dirs = 20,
          .bytes = 1ull << 40,
          .new_bytes = 12345,
          .new_chunks = 7,
          .warnings = 2,
          .started_micros = 1700000000000000,
          .finished_micros = 1700000000999999,
          .pit_method = "btrfs",
          .pit_micros = 1700000000000500};
}

// A little-endian u32 followed by `tail`.
Bytes U32Then(uint32_t v, Bytes tail = {}) {
  Bytes out(4);
  EncodeFixed32(out.data(), v);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}
Bytes U64(uint64_t v) {
  Bytes out(8);
  EncodeFixed64(out.data(), v);
  return out;
}
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Decodes `payload` (whose count field says far more than it holds) and
// checks it is refused with no allocation anywhere near the count's size.
template <typename T>
void ExpectCountRefusedCheaply(const Bytes& payload, std::string_view contains) {
  {
    AllocationWatch watch;
    Result<T> m = T::Decode(payload);
    EXPECT_FALSE(m.ok());
    EXPECT_LT(watch.largest(), 1024u) << Prefix<T>() << "allocated before refusing the count";
  }
  ExpectRejected<T>(payload, contains);
}

// --- Error ---

TEST(ErrorMessageTest, RoundTripsEveryCode) {
  for (int c = 1; c <= static_cast<int>(StatusCode::kCancelled); ++c) {
    ExpectRoundTrip(Error{static_cast<StatusCode>(c), c % 2 == 0, "pack 12: bad checksum"});
  }
  ExpectRoundTrip(Error{StatusCode::kUnavailable, true, ""});
  ExpectRoundTrip(Error{StatusCode::kNoSpace, false, std::string(kMaxStringLen, 'x')});
  Bytes b = Error{StatusCode::kNotFound, false, "x"}.Encode();
  EXPECT_EQ(b, (Bytes{1, 0, 1, 0, 0, 0, 'x'}));
}

TEST(ErrorMessageTest, RejectsOkUnknownCodeBadBoolAndLongText) {
  Bytes b = Error{StatusCode::kNotFound, false, "m"}.Encode();
  b[0] = 0;
  ExpectRejected<Error>(b, "code 0 is unknown");
  b[0] = 9;
  ExpectRejected<Error>(b, "code 9 is unknown");
  b[0] = 1;
  b[1] = 2;
  ExpectRejected<Error>(b, "retryable is 2, not 0 or 1");
  ExpectRejected<Error>(
      Error{StatusCode::kCorruption, false, std::string(kMaxStringLen + 1, 'x')}.Encode(),
      "message length 65537 exceeds 65536");
}

TEST(ErrorMessageTest, StatusConversion) {
  Error e = Error::FromStatus(Status::Unavailable("vault busy"));
  EXPECT_EQ(e.code, StatusCode::kUnavailable);
  EXPECT_TRUE(e.retryable);
  Status s = e.ToStatus();
  EXPECT_EQ(s, Status::Unavailable("vault busy"));
  EXPECT_TRUE(s.retryable());
  // An over-long message is cut so the Error still decodes.
  Error big = Error::FromStatus(Status::IOError(std::string(kMaxStringLen + 10, 'e')));
  EXPECT_EQ(big.message.size(), kMaxStringLen);
  EXPECT_TRUE(Error::Decode(big.Encode()).ok());
}

// --- Handshake ---

TEST(HelloTest, RoundTripsAndLayout) {
  Bytes b = ExpectRoundTrip(Hello{1, 3, Role::kReplicator, "cairn-replicator 0.1.0", "dr-1"});
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[2], 3);
  EXPECT_EQ(b[4], 2);
  ExpectRoundTrip(Hello{});
  for (Role r : {Role::kAgent, Role::kReplicator, Role::kRestore, Role::kEnroll}) {
    ExpectRoundTrip(Hello{1, 1, r, "s", "h"});
  }
  ExpectRoundTrip(
      Hello{1, 0xffff, Role::kAgent, std::string(kMaxNameLen, 's'), std::string(kMaxNameLen, 'h')});
}

TEST(HelloTest, RejectsBadVersionsRoleAndLongNames) {
  ExpectRejected<Hello>(Hello{0, 1, Role::kAgent, "", ""}.Encode(), "version range 0..1");
  ExpectRejected<Hello>(Hello{3, 2, Role::kAgent, "", ""}.Encode(), "version range 3..2");
  Bytes b = Hello{}.Encode();
  b[4] = 0;
  ExpectRejected<Hello>(b, "role 0 is unknown");
  b[4] = 5;
  ExpectRejected<Hello>(b, "role 5 is unknown");
  ExpectRejected<Hello>(Hello{1, 1, Role::kAgent, "", std::string(kMaxNameLen + 1, 'h')}.Encode(),
                        "hostname length 1025 exceeds 1024");
  ExpectRejected<Hello>(Hello{1, 1, Role::kAgent, std::string(kMaxNameLen + 1, 's'), ""}.Encode(),
                        "software length");
}

TEST(HelloTest, LargestHelloFitsThePreHandshakeLimit) {
  Hello h{1, 1, Role::kAgent, std::string(kMaxNameLen, 's'), std::string(kMaxNameLen, 'h')};
  EXPECT_LE(h.Encode().size(), kMaxHelloPayload);
}

TEST(HelloOkTest, RoundTripsAndRejectsVersionZero) {
  ExpectRoundTrip(HelloOk{1, "city-dc", 1700000000123456, "finance"});
  ExpectRoundTrip(HelloOk{1, "city-dc", 0, ""});  // enroll: no department yet
  ExpectRoundTrip(HelloOk{});
  ExpectRejected<HelloOk>(HelloOk{0, "s", 0, ""}.Encode(), "version 0 is invalid");
  ExpectRejected<HelloOk>(HelloOk{1, "s", 0, std::string(kMaxNameLen + 1, 'd')}.Encode(),
                          "department length");
}

// --- Enrolment ---

TEST(EnrollTest, RequestRoundTripsAndBoundsFields) {
  ExpectRoundTrip(EnrollRequest{"tok-123", "-----BEGIN CERTIFICATE REQUEST-----\n", "host-7"});
  ExpectRoundTrip(EnrollRequest{});
  ExpectRoundTrip(EnrollRequest{std::string(kMaxNameLen, 't'), std::string(kMaxStringLen, 'c'),
                                std::string(kMaxNameLen, 'h')});
  ExpectRejected<EnrollRequest>(EnrollRequest{std::string(kMaxNameLen + 1, 't'), "", ""}.Encode(),
                                "token length");
  ExpectRejected<EnrollRequest>(EnrollRequest{"", std::string(kMaxStringLen + 1, 'c'), ""}.Encode(),
                                "csr_pem length");
}

TEST(EnrollTest, ResponseRoundTripsAndBoundsFields) {
  EnrollResponse r{"cert", "ca", "finance", 42, Bytes(112, 0xab), {"vault-a:7443", "[::1]:7443"}};
  ExpectRoundTrip(r);
  ExpectRoundTrip(EnrollResponse{});
  r.vault_addresses.assign(kMaxVaultAddresses, std::string(kMaxNameLen, 'v'));
  r.department_keys.assign(kMaxDepartmentKeysLen, 1);
  ExpectRoundTrip(r);
  r.vault_addresses.push_back("one-too-many:1");
  ExpectRejected<EnrollResponse>(r.Encode(), "vault_addresses count 17 exceeds 16");
  r.vault_addresses.clear();
  r.department_keys.push_back(1);
  ExpectRejected<EnrollResponse>(r.Encode(), "department_keys length 4097 exceeds 4096");
  r.department_keys.clear();
  r.vault_addresses = {std::string(kMaxNameLen + 1, 'v')};
  ExpectRejected<EnrollResponse>(r.Encode(), "vault_addresses length");
}

// --- Backup session ---

TEST(SessionBeginTest, RoundTrips) {
  ExpectRoundTrip(SessionBegin{SessionKind::kFiles, {"/home", "/etc/ssh"}, 0});
  ExpectRoundTrip(SessionBegin{SessionKind::kImage, {"/dev/sda"}, 77});
  ExpectRoundTrip(SessionBegin{SessionKind::kFiles, {}, 0});
  ExpectRoundTrip(SessionBegin{SessionKind::kFiles, {std::string(kMaxPathLen, 'p')}, 1});
  ExpectRoundTrip(SessionBegin{SessionKind::kFiles, std::vector<std::string>(kMaxPaths, "/a"), 0});
}

TEST(SessionBeginTest, RejectsBadKindAndPaths) {
  Bytes b = SessionBegin{SessionKind::kFiles, {}, 0}.Encode();
  b[0] = 0;
  ExpectRejected<SessionBegin>(b, "kind 0 is unknown");
  b[0] = 3;
  ExpectRejected<SessionBegin>(b, "kind 3 is unknown");
  ExpectRejected<SessionBegin>(
      SessionBegin{SessionKind::kFiles, std::vector<std::string>(kMaxPaths + 1, "/a"), 0}.Encode(),
      "paths count 1025 exceeds 1024");
  ExpectRejected<SessionBegin>(
      SessionBegin{SessionKind::kFiles, {std::string(kMaxPathLen + 1, 'p')}, 0}.Encode(),
      "paths length 4097 exceeds 4096");
  ExpectRejected<SessionBegin>(SessionBegin{SessionKind::kFiles, {"/a", ""}, 0}.Encode(),
                               "empty path");
  ExpectRejected<SessionBegin>(
      SessionBegin{SessionKind::kFiles, {std::string("/a\0b", 4)}, 0}.Encode(), "NUL");
}

TEST(SessionBeginTest, RejectsPayloadAboveTheControlLimit) {
  // 300 paths of 4000 bytes are each within their caps but 1.2 MB in all.
  SessionBegin s{SessionKind::kFiles, std::vector<std::string>(300, std::string(4000, 'p')), 0};
  ExpectRejected<SessionBegin>(s.Encode(), "exceeds the limit of 1048576");
}

TEST(SessionBegunTest, RoundTripsAndRejectsBadBool) {
  ExpectRoundTrip(SessionBegun{123, true});
  ExpectRoundTrip(SessionBegun{0, false});
  Bytes b = SessionBegun{1, true}.Encode();
  b[8] = 0xff;
  ExpectRejected<SessionBegun>(b, "resumed is 255, not 0 or 1");
}

TEST(HaveChunksTest, RoundTripsUpToTheCap) {
  ExpectRoundTrip(HaveChunks{7, {Id(1), Id(2), Id(3)}});
  ExpectRoundTrip(HaveChunks{0, {}});
  Bytes b = ExpectRoundTrip(HaveChunks{0xffffffffu, Ids(kMaxIdsPerMessage)});
  EXPECT_LE(b.size(), kMaxControlPayload);
}

TEST(HaveChunksTest, RejectsCountsBeforeAllocating) {
  ExpectRejected<HaveChunks>(HaveChunks{1, Ids(kMaxIdsPerMessage + 1)}.Encode(), "exceeds");
  ExpectCountRefusedCheaply<HaveChunks>(
      U32Then(1, U32Then(static_cast<uint32_t>(kMaxIdsPerMessage + 1), Bytes(32))),
      "ids count 32768 exceeds 32767");
  ExpectCountRefusedCheaply<HaveChunks>(U32Then(1, U32Then(0xffffffffu)), "exceeds");
  // Within the cap but not within the bytes that follow.
  ExpectCountRefusedCheaply<HaveChunks>(
      U32Then(1, U32Then(static_cast<uint32_t>(kMaxIdsPerMessage), Bytes(31))),
      "does not fit in the 31 bytes left");
}

TEST(HaveChunksReplyTest, RoundTripsBitmaps) {
  for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 1000}) {
    HaveChunksReply r{static_cast<uint32_t>(n), std::vector<bool>(n)};
    for (size_t i = 0; i < n; ++i) r.present[i] = (i * 7 + n) % 3 == 0;
    Bytes b = ExpectRoundTrip(r);
    EXPECT_EQ(b.size(), 8 + (n + 7) / 8);
  }
  HaveChunksReply all{1, std::vector<bool>(kMaxIdsPerMessage, true)};
  ExpectRoundTrip(all);
  // Bit i is bit i % 8 of byte i / 8, least significant first.
  Bytes b = HaveChunksReply{5, {true, false, false, true, false, false, false, false, false, true}}
                .Encode();
  EXPECT_EQ(b, (Bytes{5, 0, 0, 0, 10, 0, 0, 0, 0x09, 0x02}));
}

TEST(HaveChunksReplyTest, RejectsPaddingBitsAndHugeCounts) {
  Bytes b = HaveChunksReply{1, {true, true, true}}.Encode();
  b.back() |= 0x08;
  ExpectRejected<HaveChunksReply>(b, "bits set past its count");
  b.back() = 0x80 | 0x07;
  ExpectRejected<HaveChunksReply>(b, "bits set past its count");
  ExpectCountRefusedCheaply<HaveChunksReply>(
      U32Then(1, U32Then(static_cast<uint32_t>(kMaxIdsPerMessage + 1), Bytes(4096, 0))),
      "present count 32768 exceeds 32767");
  ExpectCountRefusedCheaply<HaveChunksReply>(
      U32Then(1, U32Then(static_cast<uint32_t>(kMaxIdsPerMessage), Bytes(3, 0))),
      "present truncated");
}

TEST(PutRecordTest, ChecksSize) {
  EXPECT_EQ(CheckPutRecord({}).code(), StatusCode::kInvalidArgument);
  Bytes record(104, 1);
  EXPECT_TRUE(CheckPutRecord(record).ok());
  record.assign(kMaxRecordBytes, 1);
  EXPECT_TRUE(CheckPutRecord(record).ok());
  record.push_back(1);
  Status s = CheckPutRecord(record);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("put_record: record of", 0), 0u) << s.message();
}

TEST(FlushTest, FlushAndFlushedRoundTrip) {
  ExpectRoundTrip(Flush{0});
  ExpectRoundTrip(Flush{~0ull});
  ExpectRoundTrip(Flushed{3, 1000, 1ull << 35});
  ExpectRoundTrip(Flushed{});
  EXPECT_EQ(Flushed{}.Encode().size(), 24u);
}

TEST(ManifestPartTest, RoundTripsEmptyAndFullParts) {
  ExpectRoundTrip(ManifestPart{9, {}});
  ExpectRoundTrip(ManifestPart{9, {Id(4), Id(5)}});
  Bytes full = ExpectRoundTrip(ManifestPart{9, Ids(kMaxManifestIdsPerPart)});
  EXPECT_LE(full.size(), kMaxFramePayload);
}

TEST(ManifestPartTest, RejectsCountsBeforeAllocating) {
  // One ID over the cap still fits in the frame: the count cap refuses it.
  Bytes over = ManifestPart{9, Ids(kMaxManifestIdsPerPart + 1)}.Encode();
  EXPECT_LE(over.size(), kMaxFramePayload);
  ExpectRejected<ManifestPart>(over, "ids count 500001 exceeds 500000");
  ExpectCountRefusedCheaply<ManifestPart>(
      Cat({U64(9), U32Then(static_cast<uint32_t>(kMaxManifestIdsPerPart + 1))}), "exceeds");
  ExpectCountRefusedCheaply<ManifestPart>(
      Cat({U64(9), U32Then(static_cast<uint32_t>(kMaxManifestIdsPerPart), Bytes(64))}),
      "does not fit");
}

TEST(CommitTest, RoundTrips) {
  Bytes b = ExpectRoundTrip(Commit{5, Id(9), 123456, SomeStats()});
  // Eight u64, then the point-in-time method (u32 length + "btrfs") and time.
  EXPECT_EQ(b.size(), 8 + 32 + 8 + 64u + 4 + 5 + 8);
  ExpectRoundTrip(Commit{});
  ExpectRoundTrip(CommitOk{"snap-0123456789abcdef", 1700000001000000});
  ExpectRoundTrip(CommitOk{});
  ExpectRejected<CommitOk>(CommitOk{std::string(kMaxNameLen + 1, 's'), 0}.Encode(),
                           "snapshot_id length");
}

// --- Jobs ---

TEST(JobTest, RoundTrips) {
  ExpectRoundTrip(Job{17, JobKind::kBackupNow, {"/srv", "/home"}, false});
  ExpectRoundTrip(Job{18, JobKind::kBackupNow, {"/dev/vg0/data"}, true});
  Job drill{19, JobKind::kDrill};
  drill.snapshot_id = "1a2b3c4d0000000000000007";
  drill.check = "test -s srv/db/PG_VERSION";
  drill.check_timeout_seconds = 600;
  drill.rto_seconds = 7200;
  drill.read_from = {"dr.example:7420"};
  ExpectRoundTrip(drill);
  Job restore{20, JobKind::kRestore};
  restore.snapshot_id = "1a2b3c4d0000000000000007";
  restore.target = "/srv/restored/fin-db";
  ExpectRoundTrip(restore);
  ExpectRoundTrip(Job{});
  ExpectRoundTrip(JobDone{17, true, "snap-1", ""});
  ExpectRoundTrip(JobDone{18, false, "", "io_error: /dev/vg0/data: read failed"});
  ExpectRoundTrip(JobDone{});
}

TEST(JobTest, RejectsBadKindBoolsAndCounts) {
  Bytes b = Job{1, JobKind::kBackupNow, {}, true}.Encode();
  b[8] = 4;
  ExpectRejected<Job>(b, "kind 4 is unknown");
  b[8] = 1;
  b[13] = 2;  // job_id 8, kind 1, an empty paths list 4: then image
  ExpectRejected<Job>(b, "image is 2, not 0 or 1");
  // A scheduled job carries its policy's excludes, level and limit.
  ExpectRoundTrip(
      Job{7, JobKind::kBackupNow, {"/srv/a"}, false, {"*.tmp", "cache"}, 9, 50'000'000});
  ExpectRejected<Job>(Job{7, JobKind::kBackupNow, {"/srv/a"}, false, {""}, 0, 0}.Encode(),
                      "excludes holds an empty path");
  ExpectCountRefusedCheaply<Job>(Cat({U64(1), Bytes{1}, U32Then(0xffffffffu, {0})}),
                                 "paths count 4294967295 exceeds 1024");
  ExpectCountRefusedCheaply<Job>(Cat({U64(1), Bytes{1}, U32Then(1000, {0})}), "does not fit");
  Bytes d = JobDone{1, true, "", ""}.Encode();
  d[8] = 7;
  ExpectRejected<JobDone>(d, "ok is 7");
}

// --- Keep-alive ---

TEST(PingTest, PingAndPongRoundTrip) {
  ExpectRoundTrip(Ping{0x0123456789abcdefull});
  ExpectRoundTrip(Pong{0x0123456789abcdefull});
  ExpectRoundTrip(Ping{});
  ExpectRoundTrip(Pong{});
}

// --- Snapshots and restore ---

TEST(SnapshotListTest, RoundTrips) {
  ExpectRoundTrip(ListSnapshots{0});
  ExpectRoundTrip(ListSnapshots{static_cast<uint32_t>(kMaxSnapshotsPerList)});
  ExpectRejected<ListSnapshots>(
      ListSnapshots{static_cast<uint32_t>(kMaxSnapshotsPerList + 1)}.Encode(),
      "limit 4097 exceeds 4096");

  SnapshotInfo a{"snap-a", "host-1", {"/home"}, SessionKind::kFiles, 1, Id(1), SomeStats()};
  SnapshotInfo b{"snap-b", "host-1", {}, SessionKind::kImage, 2, Id(2), {}};
  ExpectRoundTrip(SnapshotList{{a, b}});
  ExpectRoundTrip(SnapshotList{});
  ExpectRoundTrip(SnapshotList{std::vector<SnapshotInfo>(kMaxSnapshotsPerList, b)});
}

TEST(SnapshotListTest, RejectsBadKindAndCounts) {
  SnapshotInfo a{"s", "h", {}, SessionKind::kFiles, 1, Id(1), {}};
  Bytes b = SnapshotList{{a}}.Encode();
  b[4 + 5 + 5 + 4] = 9;  // count, id, hostname, paths, then kind
  ExpectRejected<SnapshotList>(b, "snapshot kind 9 is unknown");
  ExpectRejected<SnapshotList>(
      SnapshotList{std::vector<SnapshotInfo>(kMaxSnapshotsPerList + 1, a)}.Encode(),
      "snapshots count 4097 exceeds 4096");
  ExpectCountRefusedCheaply<SnapshotList>(U32Then(static_cast<uint32_t>(kMaxSnapshotsPerList)),
                                          "does not fit");
}

TEST(RecordsTest, GetRecordsRoundTripsAndCaps) {
  ExpectRoundTrip(GetRecords{{Id(1)}});
  ExpectRoundTrip(GetRecords{});
  ExpectRoundTrip(GetRecords{Ids(kMaxRecordsPerMessage)});
  ExpectRejected<GetRecords>(GetRecords{Ids(kMaxRecordsPerMessage + 1)}.Encode(),
                             "ids count 65 exceeds 64");
  ExpectCountRefusedCheaply<GetRecords>(U32Then(0x7fffffffu), "exceeds");
}

TEST(RecordsTest, RecordsRoundTripAndCaps) {
  ExpectRoundTrip(Records{});
  ExpectRoundTrip(Records{{Bytes(104, 1), Bytes(300, 2)}});
  ExpectRoundTrip(Records{std::vector<Bytes>(kMaxRecordsPerMessage, Bytes(1, 3))});
  Bytes full = ExpectRoundTrip(Records{{Bytes(kMaxRecordBytes, 4)}});
  EXPECT_LE(full.size(), kMaxFramePayload);

  ExpectRejected<Records>(Records{{Bytes(kMaxRecordBytes + 1, 4)}}.Encode(), "exceeds 16777320");
  ExpectRejected<Records>(Records{{Bytes(10, 1), Bytes()}}.Encode(), "empty record");
  ExpectRejected<Records>(
      Records{std::vector<Bytes>(kMaxRecordsPerMessage + 1, Bytes(1, 3))}.Encode(),
      "records count 65 exceeds 64");
  // Two large records: each within its cap, together above the frame limit.
  ExpectRejected<Records>(Records{{Bytes(10u << 20, 1), Bytes(10u << 20, 2)}}.Encode(),
                          "exceeds the limit of 16781312");
  ExpectCountRefusedCheaply<Records>(U32Then(64, U32Then(1, {1})), "does not fit");
  // A record length far beyond what remains is refused before copying.
  ExpectCountRefusedCheaply<Records>(U32Then(1, U32Then(16u << 20, {1, 2, 3})),
                                     "records truncated");
}

// RecordViews decodes what Records does, in place, and refuses the same.
TEST(RecordsTest, RecordViewsPointIntoThePayload) {
  const Records sent{{Bytes(104, 1), Bytes(300, 2), Bytes(1, 3)}};
  const Bytes payload = sent.Encode();
  auto views = RecordViews::Decode(payload);
  ASSERT_TRUE(views.ok()) << views.status().ToString();
  ASSERT_EQ(views->records.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::ranges::equal(views->records[i], sent.records[i]));
    EXPECT_GE(views->records[i].data(), payload.data());
    EXPECT_LE(views->records[i].data() + views->records[i].size(), payload.data() + payload.size());
  }
  EXPECT_TRUE(RecordViews::Decode(Records{}.Encode())->records.empty());

  for (const Bytes& bad :
       {Records{{Bytes(10, 1), Bytes()}}.Encode(),
        Records{std::vector<Bytes>(kMaxRecordsPerMessage + 1, Bytes(1, 3))}.Encode(),
        U32Then(1, U32Then(16u << 20, {1, 2, 3}))}) {
    auto owned = Records::Decode(bad);
    auto in_place = RecordViews::Decode(bad);
    ASSERT_FALSE(owned.ok());
    ASSERT_FALSE(in_place.ok());
    EXPECT_EQ(in_place.status().ToString(), owned.status().ToString());
  }
  Bytes trailing = payload;
  trailing.push_back(0);
  EXPECT_FALSE(RecordViews::Decode(trailing).ok());
}

// A payload built in place is byte for byte Records' encoding, also when
// only a prefix of the records could be filled.
TEST(RecordsTest, RecordsPayloadIsTheEncodingOfTheSameRecords) {
  const std::vector<Bytes> records = {Bytes(104, 1), Bytes(300, 2), Bytes(1, 3), Bytes(7, 4)};
  std::vector<uint32_t> lengths;
  for (const Bytes& r : records) lengths.push_back(static_cast<uint32_t>(r.size()));
  for (size_t keep = 0; keep <= records.size(); ++keep) {
    RecordsPayload built(lengths);
    ASSERT_EQ(built.count(), records.size());
    for (size_t i = 0; i < keep; ++i) {
      MutableByteView slot = built.record(i);
      ASSERT_EQ(slot.size(), records[i].size());
      std::ranges::copy(records[i], slot.begin());
    }
    built.KeepFirst(keep);
    EXPECT_EQ(built.count(), keep);
    const Records expected{std::vector<Bytes>(records.begin(), records.begin() + keep)};
    EXPECT_TRUE(std::ranges::equal(built.payload(), expected.Encode())) << "keep " << keep;
  }
  EXPECT_TRUE(std::ranges::equal(RecordsPayload({}).payload(), Records{}.Encode()));
}

TEST(DeltaTest, GetDeltaRoundTripsAndCaps) {
  ExpectRoundTrip(GetDelta{7, Id(1), Bytes(20, 9)});
  ExpectRoundTrip(GetDelta{1, Id(2), Bytes(kMaxSignatureLen, 1)});
  ExpectRejected<GetDelta>(GetDelta{1, Id(2), Bytes()}.Encode(), "signature is empty");
  ExpectRoundTrip(GetDelta{2, Id(3), Bytes(), Id(4)});  // have, no signature
  ExpectRoundTrip(GetDelta{2, Id(3), Bytes(20, 9), Id(4)});
  ExpectRejected<GetDelta>(GetDelta{1, Id(2), Bytes(kMaxSignatureLen + 1, 1)}.Encode(), "exceeds");
}

TEST(DeltaTest, DeltaReplyRoundTripsAndCaps) {
  ExpectRoundTrip(DeltaReply{3, DeltaKind::kDelta, Bytes(100, 1)});
  ExpectRoundTrip(DeltaReply{3, DeltaKind::kWhole, Bytes()});
  Bytes full = ExpectRoundTrip(DeltaReply{4, DeltaKind::kWhole, Bytes(kMaxDeltaReplyLen, 2)});
  EXPECT_LE(full.size(), kMaxFramePayload);
  Bytes bad = DeltaReply{3, DeltaKind::kDelta, Bytes(1, 1)}.Encode();
  bad[4] = 5;  // kind
  ExpectRejected<DeltaReply>(bad, "kind");
  ExpectRoundTrip(DeltaReply{3, DeltaKind::kNoChain, Bytes(), {}});
  ExpectRoundTrip(DeltaReply{3, DeltaKind::kDeltas, Bytes(), {Bytes(10, 1), Bytes(20, 2)}});
  ExpectRejected<DeltaReply>(DeltaReply{3, DeltaKind::kDeltas, Bytes(), {Bytes()}}.Encode(),
                             "deltas");
  ExpectRejected<DeltaReply>(
      DeltaReply{3, DeltaKind::kDeltas, Bytes(), std::vector<Bytes>(9, Bytes(1, 1))}.Encode(),
      "deltas");
  ExpectRejected<DeltaReply>(
      DeltaReply{3, DeltaKind::kWhole, Bytes(kMaxDeltaReplyLen + 1, 2)}.Encode(), "exceeds");
}

TEST(ReplicationMessagesTest, RoundTripsAndCaps) {
  ExpectRoundTrip(ReplicaList{42, 100});
  ExpectRejected<ReplicaList>(ReplicaList{1, 4097}.Encode(), "limit exceeds");
  ReplicaSnapshots list;
  list.latest = 9;
  ReplicaSnapshot r;
  r.department_id = 3;
  r.department = "finance";
  r.info.id = "0000000000000009";
  r.info.hostname = "fin-srv-01";
  r.info.paths = {"/srv"};
  r.info.root_tree = Id(4);
  r.manifest_count = 12;
  list.snapshots = {r, r};
  ExpectRoundTrip(list);
  ExpectRoundTrip(ReplicaSnapshots{});
  ExpectRoundTrip(GetManifest{3, "0000000000000009", 500000});
  ExpectRoundTrip(Manifest{3, 1, {Id(1), Id(2)}});
  ExpectRoundTrip(Manifest{0, 0, {}});
  ExpectRejected<Manifest>(Manifest{1, 0, {Id(1), Id(2)}}.Encode(), "past the manifest");
  ExpectRejected<Manifest>(Manifest{5, 6, {}}.Encode(), "past the manifest");
  ExpectRoundTrip(GetReplicaRecords{3, {Id(1)}});
  ExpectRejected<GetReplicaRecords>(GetReplicaRecords{3, Ids(kMaxRecordsPerMessage + 1)}.Encode(),
                                    "ids count 65 exceeds 64");
  ExpectRoundTrip(GetReplicaOrder{3, {Id(1), Id(2)}});
  ExpectRoundTrip(GetReplicaOrder{3, Ids(kMaxIdsPerMessage)});
  ExpectRejected<GetReplicaOrder>(GetReplicaOrder{3, Ids(kMaxIdsPerMessage + 1)}.Encode(),
                                  "exceeds");
  ExpectCountRefusedCheaply<ReplicaOrder>(U32Then(0xffffffffu), "exceeds");
  ExpectRoundTrip(ReplicaOrder{{5, 0, ReplicaOrder::kNotHeld}});
  ExpectRoundTrip(ReplicaOrder{std::vector<uint64_t>(kMaxIdsPerMessage, 7)});
  ExpectRejected<ReplicaOrder>(ReplicaOrder{std::vector<uint64_t>(kMaxIdsPerMessage + 1)}.Encode(),
                               "exceeds");
  ExpectRoundTrip(ReplicaSetup{"dr", {"10.0.0.2:7420"}, "-----BEGIN CSR-----", {1, 2}});
  ReplicaSetupOk ok;
  ok.site = "primary";
  ok.ca_pem = "ca";
  ok.server_cert_pem = "cert";
  ok.departments = {{1, "finance", 5, Bytes(112, 7)}, {2, "health", 6, {}}};
  ok.agents = {{"ab12", 1, "fin-srv-01", 3, true, 4}};
  ok.vault_addresses = {"10.0.0.1:7420", "10.0.0.2:7420"};
  ExpectRoundTrip(ok);
  ExpectRoundTrip(ReplicaSetupOk{});
  ExpectRoundTrip(RestoreBegin{"restore", "0123456789abcdef01234567", "/srv/back", true, false});
  ExpectRoundTrip(RestoreBegin{});
  ExpectRoundTrip(JobProgress{3, 120, 5 << 20, 9 << 20, 1 << 20, 2500, 4});
  ExpectRoundTrip(JobProgress{});
  ExpectRoundTrip(RestoreBegun{"0123456789abcdef01234567"});
  ExpectRejected<RestoreBegin>(RestoreBegin{std::string(17, 'x'), "", "", false, false}.Encode(),
                               "purpose");
  ok.departments[0].keys = Bytes(kMaxDepartmentKeysLen + 1, 1);
  ExpectRejected<ReplicaSetupOk>(ok.Encode(), "exceeds");
  // hello_ok carries the agents' vault list.
  ExpectRoundTrip(HelloOk{1, "dr", 5, "finance", {"10.0.0.1:7420", "10.0.0.2:7420"}});
  ExpectRejected<HelloOk>(
      HelloOk{1, "dr", 5, "f", std::vector<std::string>(kMaxVaultAddresses + 1, "a")}.Encode(),
      "exceeds");
}

}  // namespace
}  // namespace cairn::proto
