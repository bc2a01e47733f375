// The record: the unit the vault stores. One chunk (file data, a tree object
// or a delta), compressed and sealed by the agent:
//
//   header (80 bytes) | ciphertext (payload_len) | GCM tag (16) | checksum (8)
//
// The exact layout, with the version field and the rules for readers, is in
// doc/design.md ("Record format"). Two layers of integrity:
//   - the trailing XXH3-64 checksum covers every byte before it and needs no
//     key, so the vault can verify, scrub and recover packs without keys;
//   - the GCM tag authenticates the payload and the header fields (except the
//     nonce and header checksum), so only a key holder can produce a record
//     that decrypts, and a swapped chunk ID or length is detected.
// After decryption the reader recomputes the chunk ID (HMAC of the plaintext)
// and compares it with the header, so a record stored under the wrong ID is
// caught too.
#ifndef CAIRN_LIB_REPO_RECORD_H_
#define CAIRN_LIB_REPO_RECORD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/aead.h"
#include "lib/crypto/chunk_id.h"
#include "lib/crypto/hkdf.h"
#include "lib/crypto/keys.h"

namespace cairn::compress {
class Compressor;
class Decompressor;
}  // namespace cairn::compress

namespace cairn::repo {

using crypto::ChunkId;
using crypto::KeyId;

inline constexpr uint32_t kRecordMagic = 0x31434552;  // "REC1" little-endian
inline constexpr uint8_t kRecordVersion = 1;
inline constexpr size_t kRecordHeaderSize = 80;
inline constexpr size_t kRecordChecksumSize = 8;
inline constexpr size_t kRecordOverhead =
    kRecordHeaderSize + crypto::kTagSize + kRecordChecksumSize;
// Largest plaintext a record may carry: a 4 MiB extent or an 8 MiB CDC chunk
// with room to spare. Readers refuse larger lengths before allocating.
inline constexpr uint32_t kMaxRecordPlainSize = 16u << 20;

enum class RecordType : uint8_t {
  kData = 1,   // file or extent content
  kTree = 2,   // an encrypted directory tree or snapshot metadata object
  kDelta = 3,  // an rsync delta against a base chunk
};

// Flag bits (RecordHeader::flags).
inline constexpr uint16_t kRecordFlagZstd = 1u << 0;  // payload is a zstd frame
inline constexpr uint16_t kRecordKnownFlags = kRecordFlagZstd;

struct RecordHeader {
  uint8_t version = kRecordVersion;
  RecordType type = RecordType::kData;
  uint16_t flags = 0;
  ChunkId id{};
  KeyId key_id{};
  crypto::Nonce nonce{};
  uint32_t plain_size = 0;    // plaintext bytes (before compression)
  uint32_t payload_size = 0;  // ciphertext bytes (after compression), tag excluded

  uint64_t record_size() const { return kRecordOverhead + payload_size; }
};

// A parsed record pointing into caller-owned bytes.
struct RecordView {
  RecordHeader header;
  ByteView ciphertext_and_tag;
};

// Parses and validates the 80-byte header: magic, version, header checksum,
// known type and flags, and sizes (payload <= plain <= kMaxRecordPlainSize,
// and payload == plain when not compressed). Needs only the first 80 bytes.
// Corruption for anything wrong; never reads past `bytes`.
Result<RecordHeader> ParseRecordHeader(ByteView bytes);

// Parses a whole record (exactly record_size() bytes, extra bytes are an
// error) and checks its trailing checksum. Keyless: this is what the vault
// runs on every record it receives, stores, scrubs or replicates.
Result<RecordView> ParseRecord(ByteView record);

// Turns plaintext chunks into records for one backup session. Holds the
// session key (HKDF from the department data key and a random key ID), so
// every session encrypts under a fresh key and the nonce counter starts at
// zero safely. Not thread-safe: give each pipeline worker its own encoder,
// each with its own key ID (see Create).
class RecordEncoder {
 public:
  struct Options {
    // zstd level for data and tree records. Default 3 (DESIGN: "3 or lower");
    // policies may lower it to 1 for speed. See doc/design.md for the figures.
    int zstd_level = 3;
  };

  // A fresh random key ID is drawn for each encoder.
  static Result<std::unique_ptr<RecordEncoder>> Create(const crypto::DepartmentKeys& keys,
                                                       const Options& options);
  ~RecordEncoder();

  // The chunk ID of `plaintext` under the department ID key. Compute it first
  // to ask the vault whether the chunk is already stored.
  ChunkId Id(ByteView plaintext) const;
  // out[i] = Id(plaintexts[i]), faster over many (ChunkIdHasher::ComputeMany).
  void Ids(std::span<const ByteView> plaintexts, std::span<ChunkId> out) const;

  // Compresses (when that pays), seals and frames `plaintext` with the given
  // ID into *out (replacing its contents). `id` must be Id(plaintext);
  // InvalidArgument when plaintext exceeds kMaxRecordPlainSize.
  Status Encode(RecordType type, const ChunkId& id, ByteView plaintext, Bytes* out);
  // The same into a buffer that is not zero-filled before the record is
  // written over it (the backup's data records: ~1% of the agent's CPU).
  Status Encode(RecordType type, const ChunkId& id, ByteView plaintext, UninitBytes* out);

  const KeyId& key_id() const { return key_id_; }

 private:
  RecordEncoder(KeyId key_id, crypto::ChunkIdHasher hasher, crypto::Sealer sealer,
                std::unique_ptr<compress::Compressor> compressor);
  template <typename Buffer>
  Status EncodeTo(RecordType type, const ChunkId& id, ByteView plaintext, Buffer* out);
  KeyId key_id_;
  crypto::ChunkIdHasher hasher_;
  crypto::Sealer sealer_;
  std::unique_ptr<compress::Compressor> compressor_;
  UninitBytes compressed_;  // scratch, reused
};

// A delta record's plaintext (doc/design.md section 10):
//   version u8 (1) | base chunk ID (32) | librsync delta
// The record's own ID is the HMAC of the rebuilt content, not of this
// plaintext; the base is the previous full content of the same extent.
inline constexpr uint8_t kDeltaPlainVersion = 1;
Bytes EncodeDeltaPlaintext(const ChunkId& base, ByteView delta);
struct DeltaPlaintext {
  ChunkId base{};
  ByteView delta;  // points into the decoded input
};
// Corruption for an unknown version or a plaintext shorter than 33 bytes.
Result<DeltaPlaintext> DecodeDeltaPlaintext(ByteView plaintext);

// Opens records of one department: verifies the checksum, derives (and
// caches) the session key named by the record's key ID, decrypts,
// decompresses, and recomputes the chunk ID. Not thread-safe; one per worker.
class RecordDecoder {
 public:
  static Result<std::unique_ptr<RecordDecoder>> Create(const crypto::DepartmentKeys& keys);
  ~RecordDecoder();

  // On success *plaintext holds the chunk. Corruption when the checksum,
  // tag, compression or chunk ID do not match; *plaintext is then cleared.
  // A delta record always fails the ID check here: use DecodeChunk.
  Status Decode(ByteView record, Bytes* plaintext, RecordHeader* header_out = nullptr);

  // The full content of the chunk a record names, for any record type. For a
  // delta record, `base_content` is asked for the full content of its base
  // (which the caller resolves, recursively if the base is a delta too, and
  // bounds the depth); the delta is applied and the result checked against
  // the record's ID. Corruption when anything does not match; errors from
  // `base_content` are returned as they are. *content is cleared on failure.
  Status DecodeChunk(ByteView record,
                     const std::function<Result<Bytes>(const ChunkId& base)>& base_content,
                     Bytes* content, RecordHeader* header_out = nullptr);
  // The same into a buffer that grows without being zero-filled first (a
  // restore's chunk buffers; the plaintext overwrites it whole).
  Status DecodeChunk(ByteView record,
                     const std::function<Result<Bytes>(const ChunkId& base)>& base_content,
                     UninitBytes* content, RecordHeader* header_out = nullptr);

  // Decode of several records at once, each into contents[i] with
  // results[i] its outcome, and each expected to hold chunk want[i]
  // (Corruption if it holds another). The chunk IDs are checked together
  // (ChunkIdHasher::ComputeMany), which is faster than one Decode after
  // another. A delta record fails as it does in Decode (see DecodeChunk).
  // InvalidArgument, and nothing decoded, when the lists' lengths differ.
  Status DecodeMany(std::span<const ByteView> records, std::span<const ChunkId> want,
                    std::span<UninitBytes> contents, std::span<Status> results);

  // Opens a kDelta record without rebuilding its content: its base's ID and
  // its librsync delta. Checksum and tag are verified; the result cannot be
  // checked against the record's ID (that needs the base's content), so
  // whoever applies the delta checks the outcome. InvalidArgument for a
  // record of another type; Corruption as Decode.
  Status OpenDelta(ByteView record, ChunkId* base, Bytes* delta,
                   RecordHeader* header_out = nullptr);

 private:
  explicit RecordDecoder(const crypto::DepartmentKeys& keys,
                         std::unique_ptr<compress::Decompressor> decompressor);
  Result<const crypto::Opener*> OpenerFor(const KeyId& key_id);
  // Checksum, tag and decompression; no ID check.
  template <typename Buffer>
  Status DecodePayload(ByteView record, Buffer* plaintext, RecordHeader* header);
  template <typename Buffer>
  Status DecodeTo(ByteView record, Buffer* plaintext, RecordHeader* header_out);
  template <typename Buffer>
  Status DecodeChunkTo(ByteView record,
                       const std::function<Result<Bytes>(const ChunkId& base)>& base_content,
                       Buffer* content, RecordHeader* header_out);

  crypto::SecretKey data_key_;
  crypto::ChunkIdHasher hasher_;
  std::unique_ptr<compress::Decompressor> decompressor_;
  std::map<KeyId, std::unique_ptr<crypto::Opener>> openers_;
  UninitBytes payload_;  // scratch, reused
};

// Longest chain of delta records a reader follows (doc/design.md section 10):
// a chunk stored as a delta on a delta ... on a kData record, at most this
// many deltas deep. The agent never writes a longer one.
inline constexpr uint32_t kMaxDeltaChain = 8;

// Where ReadChunk gets stored records: the record stored under an ID (from a
// vault connection, or a vault's own store).
using RecordSource = std::function<Result<Bytes>(const ChunkId& id)>;

// The full content of chunk `id`, for any record type: fetches its record,
// opens it with `decoder` and, for a delta record, rebuilds its base the same
// way, recursively. Checks that each record is the one asked for (its header
// names that ID), that the chain holds at most kMaxDeltaChain deltas and no
// cycle, and that the content is at most `max_output` bytes; every failure
// is Corruption naming the chunk, and *content is then empty. Errors from
// `source` are returned with the ID as context.
Status ReadChunk(RecordDecoder* decoder, const ChunkId& id, const RecordSource& source,
                 size_t max_output, Bytes* content);
// The same with the record of `id` in hand (a restore's batch of records,
// read in place): `source` is asked only for the bases of a delta.
Status ReadChunk(RecordDecoder* decoder, const ChunkId& id, ByteView record,
                 const RecordSource& source, size_t max_output, Bytes* content);
Status ReadChunk(RecordDecoder* decoder, const ChunkId& id, ByteView record,
                 const RecordSource& source, size_t max_output, UninitBytes* content);

// ReadChunk's size rule: Corruption naming chunk `id` when its content of
// `size` bytes exceeds `max_output`, else OK.
Status CheckChunkSize(const ChunkId& id, size_t size, size_t max_output);

// The stored deltas that lead from content `from` to chunk `to`: when `to`
// is stored as a delta whose chain of bases (at most kMaxDeltaChain deep)
// reaches `from`, the deltas of that chain, oldest first, so that applying
// them one after the other to `from`'s content yields `to`'s. Nullopt when
// the chain does not reach `from`, or the deltas would exceed `max_bytes`.
// Nothing is rebuilt, so nothing is checked against an ID but the records'
// own: whoever applies the deltas checks the result.
Result<std::optional<std::vector<Bytes>>> DeltasBetween(RecordDecoder* decoder, const ChunkId& from,
                                                        const ChunkId& to,
                                                        const RecordSource& source,
                                                        size_t max_bytes);

}  // namespace cairn::repo

#endif  // CAIRN_LIB_REPO_RECORD_H_
