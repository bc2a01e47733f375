#include "lib/repo/record.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <map>

#include "lib/chunk/rsync_delta.h"
#include "lib/repo/test_util.h"

namespace cairn::repo {
namespace {

using testing::RandomBytes;
using testing::TestKeys;
using testing::TextBytes;

class RecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = TestKeys();
    auto enc = RecordEncoder::Create(keys_, {});
    ASSERT_TRUE(enc.ok()) << enc.status().ToString();
    encoder_ = std::move(*enc);
    auto dec = RecordDecoder::Create(keys_);
    ASSERT_TRUE(dec.ok());
    decoder_ = std::move(*dec);
  }

  Bytes Encode(ByteView plain, RecordType type = RecordType::kData) {
    Bytes out;
    EXPECT_TRUE(encoder_->Encode(type, encoder_->Id(plain), plain, &out).ok());
    return out;
  }

  crypto::DepartmentKeys keys_;
  std::unique_ptr<RecordEncoder> encoder_;
  std::unique_ptr<RecordDecoder> decoder_;
};

TEST_F(RecordTest, RoundTripsTextRandomAndEmpty) {
  for (const Bytes& plain : {TextBytes(100000), RandomBytes(70000, 1), Bytes{}}) {
    Bytes rec = Encode(plain);
    Bytes back;
    RecordHeader h;
    ASSERT_TRUE(decoder_->Decode(rec, &back, &h).ok());
    EXPECT_EQ(back, plain);
    EXPECT_EQ(h.plain_size, plain.size());
    EXPECT_EQ(h.id, encoder_->Id(plain));
  }
}

TEST_F(RecordTest, TextIsCompressedRandomIsStoredRaw) {
  Bytes text = Encode(TextBytes(100000));
  Bytes random = Encode(RandomBytes(100000, 2));
  auto th = ParseRecordHeader(text);
  auto rh = ParseRecordHeader(random);
  ASSERT_TRUE(th.ok() && rh.ok());
  EXPECT_TRUE(th->flags & kRecordFlagZstd);
  EXPECT_LT(text.size(), 10000u);
  EXPECT_FALSE(rh->flags & kRecordFlagZstd);
  EXPECT_EQ(random.size(), 100000 + kRecordOverhead);
}

TEST_F(RecordTest, EverySingleBitFlipIsCorruption) {
  for (const Bytes& plain : {TextBytes(3000), RandomBytes(700, 3)}) {
    const Bytes rec = Encode(plain);
    for (size_t bit = 0; bit < rec.size() * 8; ++bit) {
      Bytes bad = rec;
      bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      // The keyless check (what the vault runs) catches it ...
      Status keyless = ParseRecord(bad).status();
      ASSERT_EQ(keyless.code(), StatusCode::kCorruption) << "bit " << bit;
      // ... and so does the full decode, which never returns wrong data.
      Bytes out = {1, 2, 3};
      Status s = decoder_->Decode(bad, &out);
      ASSERT_EQ(s.code(), StatusCode::kCorruption) << "bit " << bit;
      ASSERT_TRUE(out.empty());
    }
  }
}

TEST_F(RecordTest, SwappedIdIsRefused) {
  Bytes rec = Encode(TextBytes(5000));
  Bytes other = Encode(RandomBytes(5000, 9));
  // Swap the ID of one record into the other's header: header checksum
  // breaks, so ParseRecordHeader refuses before any key is used.
  std::copy(other.begin() + 8, other.begin() + 40, rec.begin() + 8);
  Bytes out;
  EXPECT_TRUE(decoder_->Decode(rec, &out).IsCorruption());
}

// DecodeMany against one Decode each: the good records decode whole, and
// each bad one (a flipped bit, an ID that is not its content's, another
// chunk than the one asked for, a delta) fails on its own with an empty
// buffer, whatever its neighbours.
TEST_F(RecordTest, DecodeManyDecodesEachRecordAsDecodeDoes) {
  std::vector<Bytes> plains;
  for (int i = 0; i < 9; ++i) {
    plains.push_back(i % 3 == 0 ? TextBytes(1000 + 50000 * i) : RandomBytes(7 + 30011 * i, 40 + i));
  }
  plains.push_back(Bytes{});
  std::vector<Bytes> recs;
  std::vector<ChunkId> want;
  for (const Bytes& p : plains) {
    recs.push_back(Encode(p));
    want.push_back(encoder_->Id(p));
  }
  recs[2][recs[2].size() / 2] ^= 0x10;  // damaged
  // Sealed under an ID that is not its content's (what a buggy or
  // malicious encoder could write): tag and checksums are fine.
  ASSERT_TRUE(
      encoder_->Encode(RecordType::kData, encoder_->Id(plains[0]), plains[4], &recs[4]).ok());
  want[4] = want[5];  // also asked for as another chunk: the content check comes first
  want[6] = want[7];  // asked for another chunk than the record holds
  const Bytes delta_plain = EncodeDeltaPlaintext(want[0], Bytes(10, 1));
  ASSERT_TRUE(encoder_->Encode(RecordType::kDelta, want[8], delta_plain, &recs[8]).ok());

  std::vector<ByteView> views(recs.begin(), recs.end());
  std::vector<UninitBytes> contents(recs.size());
  for (UninitBytes& c : contents) c.resize(100);  // reused buffers hold old bytes
  std::vector<Status> results(recs.size());
  ASSERT_TRUE(decoder_->DecodeMany(views, want, contents, results).ok());
  for (size_t i = 0; i < recs.size(); ++i) {
    if (i == 2 || i == 4 || i == 6 || i == 8) {
      EXPECT_TRUE(results[i].IsCorruption()) << i << ": " << results[i].ToString();
      EXPECT_TRUE(contents[i].empty()) << i;
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    EXPECT_EQ(Bytes(contents[i].begin(), contents[i].end()), plains[i]) << i;
  }
  EXPECT_NE(results[4].message().find("does not match its content"), std::string::npos)
      << results[4].ToString();
  EXPECT_NE(results[6].message().find("the record holds chunk"), std::string::npos)
      << results[6].ToString();
  std::vector<Status> short_results(1);
  EXPECT_TRUE(decoder_->DecodeMany(views, want, contents, short_results).IsInvalidArgument());
}

// Recomputes both keyless checksums, as anyone with write access to a pack
// could after tampering.
void ForgeChecksums(Bytes& r) {
  EncodeFixed32(r.data() + 76, static_cast<uint32_t>(XXH3_64bits(r.data(), 76)));
  size_t n = r.size() - kRecordChecksumSize;
  EncodeFixed64(r.data() + n, XXH3_64bits(r.data(), n));
}

TEST_F(RecordTest, TamperingWithForgedChecksumsFailsAuthentication) {
  const Bytes rec = Encode(TextBytes(5000));
  ASSERT_TRUE(ParseRecord(rec).ok());
  // A different chunk ID, key ID, type or payload byte: the keyless parse
  // now passes, but GCM (ID, type and sizes are in the AAD) refuses.
  for (size_t offset : {5u, 8u, 39u, 40u, 60u, 90u}) {
    Bytes bad = rec;
    if (offset == 5) {
      bad[5] = static_cast<uint8_t>(RecordType::kTree);
    } else {
      bad[offset] ^= 0x40;
    }
    ForgeChecksums(bad);
    ASSERT_TRUE(ParseRecord(bad).ok()) << offset;
    Bytes out;
    EXPECT_TRUE(decoder_->Decode(bad, &out).IsCorruption()) << offset;
    EXPECT_TRUE(out.empty());
  }
}

TEST_F(RecordTest, DeltaRecordRebuildsItsChunkAndNothingElse) {
  const Bytes base = RandomBytes(256 * 1024, 21);
  Bytes next = base;
  const Bytes patch = RandomBytes(4096, 22);
  std::copy(patch.begin(), patch.end(), next.begin() + 81920);
  auto sig = chunk::ComputeSignature(base, 4096);
  ASSERT_TRUE(sig.ok());
  auto delta = chunk::ComputeDelta(*sig, next);
  ASSERT_TRUE(delta.ok());
  const ChunkId base_id = encoder_->Id(base);
  Bytes rec;
  ASSERT_TRUE(encoder_
                  ->Encode(RecordType::kDelta, encoder_->Id(next),
                           EncodeDeltaPlaintext(base_id, *delta), &rec)
                  .ok());
  EXPECT_LT(rec.size(), 16u * 1024);  // a 4 KiB change costs about 4 KiB

  Bytes out;
  // The plain decoder refuses it: the ID names the rebuilt content.
  EXPECT_TRUE(decoder_->Decode(rec, &out).IsCorruption());
  ChunkId asked{};
  auto good_base = [&](const ChunkId& id) -> Result<Bytes> {
    asked = id;
    return base;
  };
  ASSERT_TRUE(decoder_->DecodeChunk(rec, good_base, &out).ok());
  EXPECT_EQ(out, next);
  EXPECT_EQ(asked, base_id);
  // A wrong base rebuilds something else, which the ID check refuses.
  auto wrong_base = [&](const ChunkId&) -> Result<Bytes> { return RandomBytes(base.size(), 23); };
  EXPECT_TRUE(decoder_->DecodeChunk(rec, wrong_base, &out).IsCorruption());
  EXPECT_TRUE(out.empty());
  // A base that cannot be fetched: its error comes back as it is.
  auto missing = [&](const ChunkId&) -> Result<Bytes> { return Status::NotFound("no base"); };
  EXPECT_TRUE(decoder_->DecodeChunk(rec, missing, &out).IsNotFound());
  // Other record types go through the normal path; the base is never asked.
  Bytes data_rec = Encode(next);
  bool called = false;
  auto never = [&](const ChunkId&) -> Result<Bytes> {
    called = true;
    return Bytes{};
  };
  ASSERT_TRUE(decoder_->DecodeChunk(data_rec, never, &out).ok());
  EXPECT_EQ(out, next);
  EXPECT_FALSE(called);
}

TEST_F(RecordTest, WrongDepartmentKeysCannotDecode) {
  Bytes rec = Encode(TextBytes(4000));
  auto other = RecordDecoder::Create(TestKeys());
  ASSERT_TRUE(other.ok());
  Bytes out;
  EXPECT_TRUE((*other)->Decode(rec, &out).IsCorruption());
  EXPECT_TRUE(out.empty());
}

TEST_F(RecordTest, TruncatedAndOversizedInputsAreRejected) {
  Bytes rec = Encode(TextBytes(4000));
  for (size_t n = 0; n < rec.size(); n += 7) {
    EXPECT_TRUE(ParseRecord(ByteView(rec.data(), n)).status().IsCorruption()) << n;
  }
  Bytes longer = rec;
  longer.push_back(0);
  EXPECT_TRUE(ParseRecord(longer).status().IsCorruption());
  Bytes huge(kMaxRecordPlainSize + 1);
  Bytes out;
  EXPECT_EQ(encoder_->Encode(RecordType::kData, encoder_->Id(huge), huge, &out).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(RecordTest, SessionsUseDistinctKeyIds) {
  auto a = RecordEncoder::Create(keys_, {});
  auto b = RecordEncoder::Create(keys_, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->key_id(), (*b)->key_id());
  // Both decode with the same department keys.
  Bytes plain = TextBytes(1000), rec, out;
  ASSERT_TRUE((*b)->Encode(RecordType::kTree, (*b)->Id(plain), plain, &rec).ok());
  ASSERT_TRUE(decoder_->Decode(rec, &out).ok());
  EXPECT_EQ(out, plain);
}

}  // namespace
// ReadChunk follows delta chains through a record source, bounded in depth
// and refusing cycles and records stored under the wrong ID.
// A buffer handed in again, larger or smaller than the chunk, holds exactly
// the chunk after a success, and nothing after any failure.
TEST_F(RecordTest, AReusedBufferHoldsTheChunkOrNothing) {
  const Bytes text = TextBytes(100000), random = RandomBytes(70000, 7);
  std::map<ChunkId, Bytes> store{{encoder_->Id(text), Encode(text)},
                                 {encoder_->Id(random), Encode(random)}};
  RecordSource source = [&](const ChunkId& id) -> Result<Bytes> {
    auto it = store.find(id);
    if (it == store.end()) return Status::NotFound("no such chunk");
    return it->second;
  };
  for (size_t stale : {0u, 10u, 70000u, 300000u}) {
    for (const Bytes* want : {&text, &random}) {
      Bytes out(stale, 0xab);
      ASSERT_TRUE(ReadChunk(decoder_.get(), encoder_->Id(*want), source, 1 << 20, &out).ok());
      EXPECT_EQ(out, *want) << stale;
      Bytes back(stale, 0xab);
      RecordHeader h;
      ASSERT_TRUE(decoder_->Decode(store[encoder_->Id(*want)], &back, &h).ok());
      EXPECT_EQ(back, *want) << stale;
    }
    Bytes out(stale, 0xab);
    EXPECT_FALSE(ReadChunk(decoder_.get(), ChunkId{}, source, 1 << 20, &out).ok());
    EXPECT_TRUE(out.empty());
    out.assign(stale, 0xab);  // too large for the bound
    EXPECT_FALSE(ReadChunk(decoder_.get(), encoder_->Id(text), source, 1000, &out).ok());
    EXPECT_TRUE(out.empty());
    for (const Bytes* want : {&text, &random}) {
      Bytes damaged = store[encoder_->Id(*want)];
      damaged[90] ^= 1;  // in the ciphertext: the tag fails
      out.assign(stale, 0xab);
      RecordHeader h;
      EXPECT_FALSE(decoder_->Decode(damaged, &out, &h).ok());
      EXPECT_TRUE(out.empty());
    }
  }
}

// The buffers the backup and the restore use that are not zero-filled as
// they grow: the same records, the same contents, nothing left over from a
// buffer's earlier use, and nothing at all on failure.
TEST_F(RecordTest, UninitialisedBuffersEncodeAndDecodeTheSame) {
  const Bytes text = TextBytes(100000), random = RandomBytes(70000, 9);
  const Bytes base = RandomBytes(64 * 1024, 10);
  Bytes next = base;
  next[5000] ^= 0xff;
  auto sig = chunk::ComputeSignature(base, 4096);
  ASSERT_TRUE(sig.ok());
  auto delta = chunk::ComputeDelta(*sig, next);
  ASSERT_TRUE(delta.ok());
  std::map<ChunkId, Bytes> store;
  for (const Bytes* plain : {&text, &random, &base}) {
    UninitBytes rec(300000, 0xcd);  // stale bytes past what the record needs
    ASSERT_TRUE(encoder_->Encode(RecordType::kData, encoder_->Id(*plain), *plain, &rec).ok());
    Bytes back;
    ASSERT_TRUE(decoder_->Decode(Bytes(rec.begin(), rec.end()), &back).ok());
    EXPECT_EQ(back, *plain);
    store[encoder_->Id(*plain)] = Bytes(rec.begin(), rec.end());
  }
  Bytes delta_rec;
  ASSERT_TRUE(encoder_
                  ->Encode(RecordType::kDelta, encoder_->Id(next),
                           EncodeDeltaPlaintext(encoder_->Id(base), *delta), &delta_rec)
                  .ok());
  store[encoder_->Id(next)] = delta_rec;
  RecordSource source = [&](const ChunkId& id) -> Result<Bytes> {
    auto it = store.find(id);
    if (it == store.end()) return Status::NotFound("no such chunk");
    return it->second;
  };
  for (size_t stale : {0u, 10u, 70000u, 300000u}) {
    for (const Bytes* want : std::initializer_list<const Bytes*>{&text, &random, &next}) {
      UninitBytes out(stale, 0xab);
      const ChunkId id = encoder_->Id(*want);
      ASSERT_TRUE(ReadChunk(decoder_.get(), id, store[id], source, 1 << 20, &out).ok());
      EXPECT_EQ(Bytes(out.begin(), out.end()), *want) << stale;
    }
    Bytes damaged = store[encoder_->Id(text)];
    damaged[90] ^= 1;
    UninitBytes out(stale, 0xab);
    EXPECT_TRUE(ReadChunk(decoder_.get(), encoder_->Id(text), damaged, source, 1 << 20, &out)
                    .IsCorruption());
    EXPECT_TRUE(out.empty());
  }
}

TEST_F(RecordTest, ReadChunkFollowsBoundedDeltaChains) {
  std::map<ChunkId, Bytes> store;
  std::vector<ChunkId> versions;
  Bytes content = RandomBytes(64 * 1024, 30);
  ChunkId prev = encoder_->Id(content);
  Bytes rec;
  ASSERT_TRUE(encoder_->Encode(RecordType::kData, prev, content, &rec).ok());
  store[prev] = rec;
  versions.push_back(prev);
  Bytes prev_content = content;
  for (int v = 1; v <= static_cast<int>(kMaxDeltaChain) + 1; ++v) {
    Bytes next = prev_content;
    next[static_cast<size_t>(v) * 4096] ^= 0xff;
    auto sig = chunk::ComputeSignature(prev_content, 4096);
    ASSERT_TRUE(sig.ok());
    auto delta = chunk::ComputeDelta(*sig, next);
    ASSERT_TRUE(delta.ok());
    ChunkId id = encoder_->Id(next);
    ASSERT_TRUE(
        encoder_->Encode(RecordType::kDelta, id, EncodeDeltaPlaintext(prev, *delta), &rec).ok());
    store[id] = rec;
    versions.push_back(id);
    prev = id;
    prev_content = next;
  }
  int fetches = 0;
  RecordSource source = [&](const ChunkId& id) -> Result<Bytes> {
    ++fetches;
    auto it = store.find(id);
    if (it == store.end()) return Status::NotFound("no such chunk");
    return it->second;
  };
  Bytes out;
  // kMaxDeltaChain deltas deep: readable, one fetch per record.
  ASSERT_TRUE(ReadChunk(decoder_.get(), versions[kMaxDeltaChain], source, 1 << 20, &out).ok());
  EXPECT_EQ(fetches, static_cast<int>(kMaxDeltaChain) + 1);
  EXPECT_EQ(encoder_->Id(out), versions[kMaxDeltaChain]);
  // One more: refused, and nothing is returned.
  Status s = ReadChunk(decoder_.get(), versions.back(), source, 1 << 20, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("longer than"), std::string::npos) << s.ToString();
  EXPECT_TRUE(out.empty());
  // The output bound.
  EXPECT_TRUE(ReadChunk(decoder_.get(), versions[0], source, 1000, &out).IsCorruption());
  // A record stored under another ID (a vault answering with the wrong one).
  const Bytes saved = store[versions[1]];
  store[versions[1]] = store[versions[0]];
  s = ReadChunk(decoder_.get(), versions[1], source, 1 << 20, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("holds chunk"), std::string::npos) << s.ToString();
  store[versions[1]] = saved;
  // A missing base: NotFound with the ID as context.
  store.erase(versions[0]);
  s = ReadChunk(decoder_.get(), versions[2], source, 1 << 20, &out);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(ToHex(versions[0])), std::string::npos) << s.ToString();
}

// DeltasBetween: the stored deltas from an earlier version to a later one,
// which applied in order rebuild the later one; nothing when the chain does
// not reach the earlier version, or it is stored whole.
TEST_F(RecordTest, DeltasBetweenFollowsTheChainBackToAnEarlierVersion) {
  std::map<ChunkId, Bytes> store;
  std::vector<ChunkId> versions;
  std::vector<Bytes> contents = {RandomBytes(64 * 1024, 31)};
  versions.push_back(encoder_->Id(contents[0]));
  Bytes rec;
  ASSERT_TRUE(encoder_->Encode(RecordType::kData, versions[0], contents[0], &rec).ok());
  store[versions[0]] = rec;
  for (int v = 1; v <= 3; ++v) {
    Bytes next = contents.back();
    next[static_cast<size_t>(v) * 4096 + 7] ^= 0xff;
    auto delta = chunk::ComputeDelta(*chunk::ComputeSignature(contents.back(), 4096), next);
    ASSERT_TRUE(delta.ok());
    const ChunkId id = encoder_->Id(next);
    ASSERT_TRUE(
        encoder_
            ->Encode(RecordType::kDelta, id, EncodeDeltaPlaintext(versions.back(), *delta), &rec)
            .ok());
    store[id] = rec;
    versions.push_back(id);
    contents.push_back(next);
  }
  RecordSource source = [&](const ChunkId& id) -> Result<Bytes> {
    auto it = store.find(id);
    if (it == store.end()) return Status::NotFound("no such chunk");
    return it->second;
  };
  for (size_t from = 0; from < 3; ++from) {
    auto deltas = DeltasBetween(decoder_.get(), versions[from], versions[3], source, 1 << 20);
    ASSERT_TRUE(deltas.ok()) << deltas.status().ToString();
    ASSERT_TRUE(deltas->has_value()) << from;
    ASSERT_EQ((*deltas)->size(), 3 - from);
    Bytes at = contents[from];
    for (const Bytes& d : **deltas) at = *chunk::ApplyDelta(at, d, 1 << 20);
    EXPECT_EQ(at, contents[3]) << from;
  }
  // Not an ancestor, the same version, a chunk stored whole, a tight bound.
  const ChunkId stranger = encoder_->Id(RandomBytes(100, 32));
  EXPECT_FALSE(DeltasBetween(decoder_.get(), stranger, versions[3], source, 1 << 20)->has_value());
  EXPECT_FALSE(
      DeltasBetween(decoder_.get(), versions[3], versions[3], source, 1 << 20)->has_value());
  EXPECT_FALSE(
      DeltasBetween(decoder_.get(), versions[1], versions[0], source, 1 << 20)->has_value());
  EXPECT_FALSE(DeltasBetween(decoder_.get(), versions[0], versions[3], source, 10)->has_value());
  // A record stored under another ID is Corruption, a missing one NotFound.
  store[versions[2]] = store[versions[1]];
  EXPECT_TRUE(DeltasBetween(decoder_.get(), versions[0], versions[3], source, 1 << 20)
                  .status()
                  .IsCorruption());
  store.erase(versions[2]);
  EXPECT_TRUE(DeltasBetween(decoder_.get(), versions[0], versions[3], source, 1 << 20)
                  .status()
                  .IsNotFound());
}

TEST_F(RecordTest, ReadChunkRefusesADeltaCycle) {
  // A delta whose base is its own ID: only a forger with the keys can make
  // one, but a reader must not loop on it.
  Bytes content = RandomBytes(8192, 31);
  ChunkId id = encoder_->Id(content);
  auto sig = chunk::ComputeSignature(content, 4096);
  ASSERT_TRUE(sig.ok());
  auto delta = chunk::ComputeDelta(*sig, content);
  ASSERT_TRUE(delta.ok());
  Bytes rec;
  ASSERT_TRUE(
      encoder_->Encode(RecordType::kDelta, id, EncodeDeltaPlaintext(id, *delta), &rec).ok());
  RecordSource source = [&](const ChunkId&) -> Result<Bytes> { return rec; };
  Bytes out;
  Status s = ReadChunk(decoder_.get(), id, source, 1 << 20, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("cycle"), std::string::npos) << s.ToString();
}

}  // namespace cairn::repo
