#include "lib/repo/record.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "lib/chunk/rsync_delta.h"
#include "lib/compress/zstd.h"
#include "lib/crypto/random.h"

namespace cairn::repo {
namespace {

// Header field offsets; see doc/design.md.
constexpr size_t kOffMagic = 0;
constexpr size_t kOffVersion = 4;
constexpr size_t kOffType = 5;
constexpr size_t kOffFlags = 6;
constexpr size_t kOffId = 8;
constexpr size_t kOffKeyId = 40;
constexpr size_t kOffNonce = 56;
constexpr size_t kOffPlainSize = 68;
constexpr size_t kOffPayloadSize = 72;
constexpr size_t kOffHeaderChecksum = 76;
static_assert(kOffHeaderChecksum + 4 == kRecordHeaderSize);
// The GCM AAD is the header minus the nonce and the header checksum.
constexpr size_t kAadSize = kOffNonce + (kOffHeaderChecksum - kOffPlainSize);

uint32_t HeaderChecksum(const uint8_t* header) {
  return static_cast<uint32_t>(XXH3_64bits(header, kOffHeaderChecksum));
}

std::array<uint8_t, kAadSize> Aad(const uint8_t* header) {
  std::array<uint8_t, kAadSize> aad;
  std::memcpy(aad.data(), header, kOffNonce);
  std::memcpy(aad.data() + kOffNonce, header + kOffPlainSize, kOffHeaderChecksum - kOffPlainSize);
  return aad;
}

bool KnownType(uint8_t t) {
  return t == static_cast<uint8_t>(RecordType::kData) ||
         t == static_cast<uint8_t>(RecordType::kTree) ||
         t == static_cast<uint8_t>(RecordType::kDelta);
}

void WriteHeader(const RecordHeader& h, uint8_t* out) {
  EncodeFixed32(out + kOffMagic, kRecordMagic);
  out[kOffVersion] = h.version;
  out[kOffType] = static_cast<uint8_t>(h.type);
  EncodeFixed16(out + kOffFlags, h.flags);
  std::memcpy(out + kOffId, h.id.data(), h.id.size());
  std::memcpy(out + kOffKeyId, h.key_id.data(), h.key_id.size());
  std::memcpy(out + kOffNonce, h.nonce.data(), h.nonce.size());
  EncodeFixed32(out + kOffPlainSize, h.plain_size);
  EncodeFixed32(out + kOffPayloadSize, h.payload_size);
  EncodeFixed32(out + kOffHeaderChecksum, HeaderChecksum(out));
}

// Empties a buffer unless the decode that fills it succeeded. The decoders
// size their output where it stands instead of clearing it first: a buffer
// handed in again (a restore reuses one per chunk) then needs no zero-fill
// of the bytes about to be overwritten, which was 5% of a restore's CPU.
template <typename Buffer>
class ClearUnlessOk {
 public:
  explicit ClearUnlessOk(Buffer* b) : b_(b) {}
  ~ClearUnlessOk() {
    if (!ok_) b_->clear();
  }
  void Ok() { ok_ = true; }

 private:
  Buffer* b_;
  bool ok_ = false;
};

// *to = the bytes of `from`, moved when the types allow.
template <typename Buffer>
void MoveInto(Bytes&& from, Buffer* to) {
  if constexpr (std::is_same_v<Buffer, Bytes>) {
    *to = std::move(from);
  } else {
    to->resize(from.size());
    if (!from.empty()) std::memcpy(to->data(), from.data(), from.size());
  }
}

}  // namespace

Result<RecordHeader> ParseRecordHeader(ByteView bytes) {
  if (bytes.size() < kRecordHeaderSize) {
    return Status::Corruption("record header truncated: " + std::to_string(bytes.size()) + " of " +
                              std::to_string(kRecordHeaderSize) + " bytes");
  }
  const uint8_t* p = bytes.data();
  if (DecodeFixed32(p + kOffMagic) != kRecordMagic) return Status::Corruption("bad record magic");
  if (DecodeFixed32(p + kOffHeaderChecksum) != HeaderChecksum(p)) {
    return Status::Corruption("record header checksum mismatch");
  }
  RecordHeader h;
  h.version = p[kOffVersion];
  if (h.version != kRecordVersion) {
    return Status::Corruption("unsupported record version " + std::to_string(h.version));
  }
  if (!KnownType(p[kOffType])) {
    return Status::Corruption("unknown record type " + std::to_string(p[kOffType]));
  }
  h.type = static_cast<RecordType>(p[kOffType]);
  h.flags = DecodeFixed16(p + kOffFlags);
  if (h.flags & ~kRecordKnownFlags) return Status::Corruption("unknown record flags");
  std::memcpy(h.id.data(), p + kOffId, h.id.size());
  std::memcpy(h.key_id.data(), p + kOffKeyId, h.key_id.size());
  std::memcpy(h.nonce.data(), p + kOffNonce, h.nonce.size());
  h.plain_size = DecodeFixed32(p + kOffPlainSize);
  h.payload_size = DecodeFixed32(p + kOffPayloadSize);
  if (h.plain_size > kMaxRecordPlainSize) return Status::Corruption("record plain size too large");
  if (h.payload_size > h.plain_size) {
    return Status::Corruption("record payload larger than its plaintext");
  }
  if (h.type == RecordType::kDelta && (h.flags & kRecordFlagZstd)) {
    return Status::Corruption("delta records are never compressed");
  }
  if (!(h.flags & kRecordFlagZstd) && h.payload_size != h.plain_size) {
    return Status::Corruption("uncompressed record with payload size != plain size");
  }
  return h;
}

Result<RecordView> ParseRecord(ByteView record) {
  CAIRN_ASSIGN_OR_RETURN(RecordHeader h, ParseRecordHeader(record));
  if (record.size() != h.record_size()) {
    return Status::Corruption("record is " + std::to_string(record.size()) +
                              " bytes, header says " + std::to_string(h.record_size()));
  }
  size_t checked = record.size() - kRecordChecksumSize;
  uint64_t want = DecodeFixed64(record.data() + checked);
  if (XXH3_64bits(record.data(), checked) != want) {
    return Status::Corruption("record checksum mismatch");
  }
  return RecordView{h, record.subspan(kRecordHeaderSize, h.payload_size + crypto::kTagSize)};
}

// ---- RecordEncoder ----

RecordEncoder::RecordEncoder(KeyId key_id, crypto::ChunkIdHasher hasher, crypto::Sealer sealer,
                             std::unique_ptr<compress::Compressor> compressor)
    : key_id_(key_id),
      hasher_(std::move(hasher)),
      sealer_(std::move(sealer)),
      compressor_(std::move(compressor)) {}

RecordEncoder::~RecordEncoder() = default;

Result<std::unique_ptr<RecordEncoder>> RecordEncoder::Create(const crypto::DepartmentKeys& keys,
                                                             const Options& options) {
  KeyId key_id;
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(key_id));
  CAIRN_ASSIGN_OR_RETURN(crypto::SecretKey session_key,
                         crypto::DeriveSessionKey(keys.data_key, key_id));
  CAIRN_ASSIGN_OR_RETURN(crypto::Sealer sealer, crypto::Sealer::Create(session_key));
  compress::CompressorOptions copts;
  copts.level = options.zstd_level;
  CAIRN_RETURN_IF_ERROR(copts.Sanitize());
  CAIRN_ASSIGN_OR_RETURN(compress::Compressor compressor, compress::Compressor::Create(copts));
  return std::unique_ptr<RecordEncoder>(
      new RecordEncoder(key_id, crypto::ChunkIdHasher(keys.id_key), std::move(sealer),
                        std::make_unique<compress::Compressor>(std::move(compressor))));
}

ChunkId RecordEncoder::Id(ByteView plaintext) const { return hasher_.Compute(plaintext); }

void RecordEncoder::Ids(std::span<const ByteView> plaintexts, std::span<ChunkId> out) const {
  hasher_.ComputeMany(plaintexts, out);
}

Status RecordEncoder::Encode(RecordType type, const ChunkId& id, ByteView plaintext, Bytes* out) {
  return EncodeTo(type, id, plaintext, out);
}

Status RecordEncoder::Encode(RecordType type, const ChunkId& id, ByteView plaintext,
                             UninitBytes* out) {
  return EncodeTo(type, id, plaintext, out);
}

template <typename Buffer>
Status RecordEncoder::EncodeTo(RecordType type, const ChunkId& id, ByteView plaintext,
                               Buffer* out) {
  if (plaintext.size() > kMaxRecordPlainSize) {
    return Status::InvalidArgument("chunk of " + std::to_string(plaintext.size()) +
                                   " bytes exceeds the record limit");
  }
  RecordHeader h;
  h.type = type;
  h.id = id;
  h.key_id = key_id_;
  h.plain_size = static_cast<uint32_t>(plaintext.size());
  ByteView payload = plaintext;
  // Deltas are already dense; only data and trees are worth compressing.
  if (type != RecordType::kDelta && !plaintext.empty()) {
    CAIRN_ASSIGN_OR_RETURN(bool keep, compressor_->Compress(plaintext, &compressed_));
    if (keep) {
      h.flags |= kRecordFlagZstd;
      payload = compressed_;
    }
  }
  h.payload_size = static_cast<uint32_t>(payload.size());

  out->resize(h.record_size());
  uint8_t* p = out->data();
  WriteHeader(h, p);  // nonce still zero; rewritten below
  auto aad = Aad(p);
  CAIRN_ASSIGN_OR_RETURN(h.nonce, sealer_.Seal(aad, payload,
                                               MutableByteView(p + kRecordHeaderSize,
                                                               payload.size() + crypto::kTagSize)));
  WriteHeader(h, p);
  // The scratch buffer held (compressed) plaintext; do not leave it around.
  if (payload.data() == compressed_.data()) SecureZero(compressed_.data(), compressed_.size());
  size_t checked = out->size() - kRecordChecksumSize;
  EncodeFixed64(p + checked, XXH3_64bits(p, checked));
  return Status::OK();
}

// ---- RecordDecoder ----

RecordDecoder::RecordDecoder(const crypto::DepartmentKeys& keys,
                             std::unique_ptr<compress::Decompressor> decompressor)
    : data_key_(keys.data_key), hasher_(keys.id_key), decompressor_(std::move(decompressor)) {}

RecordDecoder::~RecordDecoder() = default;

Result<std::unique_ptr<RecordDecoder>> RecordDecoder::Create(const crypto::DepartmentKeys& keys) {
  CAIRN_ASSIGN_OR_RETURN(compress::Decompressor d, compress::Decompressor::Create());
  return std::unique_ptr<RecordDecoder>(
      new RecordDecoder(keys, std::make_unique<compress::Decompressor>(std::move(d))));
}

Result<const crypto::Opener*> RecordDecoder::OpenerFor(const KeyId& key_id) {
  auto it = openers_.find(key_id);
  if (it != openers_.end()) return it->second.get();
  // One backup session uses one key ID, so a restore touches few; still,
  // keep the cache bounded.
  if (openers_.size() >= 4096) openers_.clear();
  CAIRN_ASSIGN_OR_RETURN(crypto::SecretKey key, crypto::DeriveSessionKey(data_key_, key_id));
  CAIRN_ASSIGN_OR_RETURN(crypto::Opener opener, crypto::Opener::Create(key));
  auto [pos, inserted] =
      openers_.emplace(key_id, std::make_unique<crypto::Opener>(std::move(opener)));
  return pos->second.get();
}

template <typename Buffer>
Status RecordDecoder::DecodePayload(ByteView record, Buffer* plaintext, RecordHeader* header) {
  ClearUnlessOk guard(plaintext);
  CAIRN_ASSIGN_OR_RETURN(RecordView view, ParseRecord(record));
  const RecordHeader& h = view.header;
  CAIRN_ASSIGN_OR_RETURN(const crypto::Opener* opener, OpenerFor(h.key_id));
  auto aad = Aad(record.data());
  bool compressed = h.flags & kRecordFlagZstd;
  // A compressed payload opens into the scratch buffer, which is not
  // zero-filled as it grows (the plaintext overwrites it whole).
  MutableByteView target;
  if (compressed) {
    payload_.resize(h.payload_size);
    target = payload_;
  } else {
    plaintext->resize(h.payload_size);
    target = *plaintext;
  }
  Status s = opener->Open(h.nonce, aad, view.ciphertext_and_tag, target);
  if (!s.ok()) {
    if (compressed) payload_.clear();
    return s.WithContext("record " + ToHex(h.id));
  }
  if (compressed) {
    s = decompressor_->Decompress(payload_, h.plain_size, plaintext);
    SecureZero(payload_.data(), payload_.size());
    if (!s.ok()) return s.WithContext("record " + ToHex(h.id));
  }
  *header = h;
  guard.Ok();
  return Status::OK();
}

Status RecordDecoder::Decode(ByteView record, Bytes* plaintext, RecordHeader* header_out) {
  return DecodeTo(record, plaintext, header_out);
}

template <typename Buffer>
Status RecordDecoder::DecodeTo(ByteView record, Buffer* plaintext, RecordHeader* header_out) {
  RecordHeader h;
  CAIRN_RETURN_IF_ERROR(DecodePayload(record, plaintext, &h));
  if (hasher_.Compute(*plaintext) != h.id) {
    plaintext->clear();
    return Status::Corruption("record " + ToHex(h.id) + ": chunk ID does not match its content");
  }
  if (header_out) *header_out = h;
  return Status::OK();
}

Status RecordDecoder::DecodeMany(std::span<const ByteView> records, std::span<const ChunkId> want,
                                 std::span<UninitBytes> contents, std::span<Status> results) {
  if (want.size() != records.size() || contents.size() != records.size() ||
      results.size() != records.size()) {
    return Status::InvalidArgument("DecodeMany: lists of different lengths");
  }
  std::vector<ByteView> opened;
  std::vector<size_t> which;
  std::vector<ChunkId> claimed;
  for (size_t i = 0; i < records.size(); ++i) {
    RecordHeader h;
    results[i] = DecodePayload(records[i], &contents[i], &h);
    if (!results[i].ok()) {
      contents[i].clear();
      continue;
    }
    opened.push_back(contents[i]);
    which.push_back(i);
    claimed.push_back(h.id);
  }
  std::vector<ChunkId> ids(opened.size());
  hasher_.ComputeMany(opened, ids);
  // The same checks, in the same order and with the same words, as Decode
  // and then ReadChunk.
  for (size_t j = 0; j < which.size(); ++j) {
    const size_t i = which[j];
    if (ids[j] != claimed[j]) {
      results[i] = Status::Corruption("record " + ToHex(claimed[j]) +
                                      ": chunk ID does not match its content");
    } else if (claimed[j] != want[i]) {
      results[i] = Status::Corruption("chunk " + ToHex(want[i]) + ": the record holds chunk " +
                                      ToHex(claimed[j]));
    } else {
      continue;
    }
    SecureZero(contents[i].data(), contents[i].size());
    contents[i].clear();
  }
  return Status::OK();
}

Status RecordDecoder::DecodeChunk(
    ByteView record, const std::function<Result<Bytes>(const ChunkId& base)>& base_content,
    Bytes* content, RecordHeader* header_out) {
  return DecodeChunkTo(record, base_content, content, header_out);
}

Status RecordDecoder::DecodeChunk(
    ByteView record, const std::function<Result<Bytes>(const ChunkId& base)>& base_content,
    UninitBytes* content, RecordHeader* header_out) {
  return DecodeChunkTo(record, base_content, content, header_out);
}

template <typename Buffer>
Status RecordDecoder::DecodeChunkTo(
    ByteView record, const std::function<Result<Bytes>(const ChunkId& base)>& base_content,
    Buffer* content, RecordHeader* header_out) {
  auto header = ParseRecordHeader(record);
  if (header.ok() && header->type != RecordType::kDelta) {
    return DecodeTo(record, content, header_out);
  }
  ClearUnlessOk guard(content);
  RecordHeader h;
  Bytes plain;
  CAIRN_RETURN_IF_ERROR(DecodePayload(record, &plain, &h));
  CAIRN_ASSIGN_OR_RETURN(DeltaPlaintext delta, DecodeDeltaPlaintext(plain));
  CAIRN_ASSIGN_OR_RETURN(Bytes base, base_content(delta.base));
  auto rebuilt = chunk::ApplyDelta(base, delta.delta, kMaxRecordPlainSize);
  SecureZero(base.data(), base.size());
  if (!rebuilt.ok()) return rebuilt.status().WithContext("delta record " + ToHex(h.id));
  if (hasher_.Compute(*rebuilt) != h.id) {
    SecureZero(rebuilt->data(), rebuilt->size());
    return Status::Corruption("delta record " + ToHex(h.id) +
                              ": rebuilt content does not match its chunk ID");
  }
  MoveInto(std::move(*rebuilt), content);
  if (header_out) *header_out = h;
  guard.Ok();
  return Status::OK();
}

Status RecordDecoder::OpenDelta(ByteView record, ChunkId* base, Bytes* delta,
                                RecordHeader* header_out) {
  delta->clear();
  CAIRN_ASSIGN_OR_RETURN(RecordHeader header, ParseRecordHeader(record));
  if (header.type != RecordType::kDelta) {
    return Status::InvalidArgument("record " + ToHex(header.id) + " is not a delta");
  }
  RecordHeader h;
  Bytes plain;
  CAIRN_RETURN_IF_ERROR(DecodePayload(record, &plain, &h));
  CAIRN_ASSIGN_OR_RETURN(DeltaPlaintext opened, DecodeDeltaPlaintext(plain));
  *base = opened.base;
  delta->assign(opened.delta.begin(), opened.delta.end());
  if (header_out) *header_out = h;
  return Status::OK();
}

namespace {

// ReadChunk; `given`, when not null, is the record of `id`.
template <typename Buffer>
Status ReadChunkFrom(RecordDecoder* decoder, const ChunkId& id, const ByteView* given,
                     const RecordSource& source, size_t max_output, Buffer* content) {
  std::vector<ChunkId> chain;  // the IDs being rebuilt, outermost first
  // Rebuilds `want` into *out (a delta's bases into Bytes); the outermost
  // chunk goes straight into *content, so a caller that hands in the same
  // buffer again reuses it.
  auto rebuild = [&](auto& self, const ChunkId& want, auto* out) -> Status {
    ClearUnlessOk guard(out);
    if (chain.size() > kMaxDeltaChain) {
      return Status::Corruption("chunk " + ToHex(id) + ": delta chain longer than " +
                                std::to_string(kMaxDeltaChain));
    }
    if (std::find(chain.begin(), chain.end(), want) != chain.end()) {
      return Status::Corruption("chunk " + ToHex(id) + ": delta chain has a cycle at " +
                                ToHex(want));
    }
    chain.push_back(want);
    Result<Bytes> fetched = Bytes();
    if (given == nullptr || chain.size() > 1) fetched = source(want);
    if (!fetched.ok()) return fetched.status().WithContext("chunk " + ToHex(want));
    const ByteView record = given != nullptr && chain.size() == 1 ? *given : ByteView(*fetched);
    auto base = [&](const ChunkId& b) -> Result<Bytes> {
      Bytes base_content;
      CAIRN_RETURN_IF_ERROR(self(self, b, &base_content));
      return base_content;
    };
    RecordHeader header;
    Status s = decoder->DecodeChunk(record, base, out, &header);
    if (s.ok() && header.id != want) {
      s = Status::Corruption("chunk " + ToHex(want) + ": the record holds chunk " +
                             ToHex(header.id));
    } else if (s.ok()) {
      s = CheckChunkSize(want, out->size(), max_output);
    }
    if (!s.ok()) {
      SecureZero(out->data(), out->size());
      return s;
    }
    chain.pop_back();
    guard.Ok();
    return Status::OK();
  };
  return rebuild(rebuild, id, content);
}

}  // namespace

Status CheckChunkSize(const ChunkId& id, size_t size, size_t max_output) {
  if (size <= max_output) return Status::OK();
  return Status::Corruption("chunk " + ToHex(id) + ": content of " + std::to_string(size) +
                            " bytes exceeds " + std::to_string(max_output));
}

Status ReadChunk(RecordDecoder* decoder, const ChunkId& id, const RecordSource& source,
                 size_t max_output, Bytes* content) {
  return ReadChunkFrom(decoder, id, nullptr, source, max_output, content);
}

Status ReadChunk(RecordDecoder* decoder, const ChunkId& id, ByteView record,
                 const RecordSource& source, size_t max_output, Bytes* content) {
  return ReadChunkFrom(decoder, id, &record, source, max_output, content);
}

Status ReadChunk(RecordDecoder* decoder, const ChunkId& id, ByteView record,
                 const RecordSource& source, size_t max_output, UninitBytes* content) {
  return ReadChunkFrom(decoder, id, &record, source, max_output, content);
}

Bytes EncodeDeltaPlaintext(const ChunkId& base, ByteView delta) {
  Bytes out;
  out.reserve(1 + base.size() + delta.size());
  ByteWriter w(&out);
  w.PutU8(kDeltaPlainVersion);
  w.PutBytes(base);
  w.PutBytes(delta);
  return out;
}

Result<DeltaPlaintext> DecodeDeltaPlaintext(ByteView plaintext) {
  DeltaPlaintext out;
  if (plaintext.size() < 1 + out.base.size() || plaintext[0] != kDeltaPlainVersion) {
    return Status::Corruption("delta record: unknown version or truncated");
  }
  std::copy(plaintext.begin() + 1, plaintext.begin() + 1 + out.base.size(), out.base.begin());
  out.delta = plaintext.subspan(1 + out.base.size());
  return out;
}

Result<std::optional<std::vector<Bytes>>> DeltasBetween(RecordDecoder* decoder, const ChunkId& from,
                                                        const ChunkId& to,
                                                        const RecordSource& source,
                                                        size_t max_bytes) {
  std::vector<Bytes> deltas;  // newest first
  size_t total = 0;
  ChunkId at = to;
  for (uint32_t depth = 0; depth < kMaxDeltaChain; ++depth) {
    Result<Bytes> record = source(at);
    if (!record.ok()) return record.status().WithContext("chunk " + ToHex(at));
    CAIRN_ASSIGN_OR_RETURN(RecordHeader header, ParseRecordHeader(*record));
    if (header.id != at) {
      return Status::Corruption("chunk " + ToHex(at) + ": the record stored under it is " +
                                ToHex(header.id));
    }
    if (header.type != RecordType::kDelta) return std::optional<std::vector<Bytes>>();
    ChunkId base;
    Bytes delta;
    CAIRN_RETURN_IF_ERROR(decoder->OpenDelta(*record, &base, &delta));
    total += delta.size();
    if (total > max_bytes) return std::optional<std::vector<Bytes>>();
    deltas.push_back(std::move(delta));
    if (base == from) {
      std::reverse(deltas.begin(), deltas.end());
      return std::optional<std::vector<Bytes>>(std::move(deltas));
    }
    at = base;
  }
  return std::optional<std::vector<Bytes>>();
}

}  // namespace cairn::repo
