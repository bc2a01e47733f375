#include "lib/repo/pack.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include "lib/io/env.h"
#include "lib/io/fault_injection_env.h"
#include "lib/io/mem_env.h"
#include "lib/repo/test_util.h"

namespace cairn::repo {
namespace {

using testing::RandomBytes;
using testing::ScratchDir;
using testing::TestKeys;
using testing::TextBytes;

class PackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = TestKeys();
    encoder_ = std::move(*RecordEncoder::Create(keys_, {}));
  }

  Bytes MakeRecord(ByteView plain) {
    Bytes out;
    EXPECT_TRUE(encoder_->Encode(RecordType::kData, encoder_->Id(plain), plain, &out).ok());
    return out;
  }

  // Writes a pack holding `plains` and returns the record bytes.
  std::vector<Bytes> WritePack(const std::string& path, const std::vector<Bytes>& plains,
                               bool seal) {
    auto w = PackWriter::Create(env_, path, PackHeader{kPackVersion, 7, 42});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    std::vector<Bytes> records;
    for (const auto& p : plains) {
      records.push_back(MakeRecord(p));
      EXPECT_TRUE((*w)->Append(records.back()).ok());
    }
    EXPECT_TRUE((*w)->Sync().ok());
    if (seal) {
      EXPECT_TRUE((*w)->Seal().ok());
    }
    return records;
  }

  Bytes ReadAll(const std::string& path) { return *io::ReadFileToBytes(env_, path); }
  void WriteAll(const std::string& path, ByteView data) {
    auto f = env_->NewWritableFile(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(data).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  io::Env* env_ = io::Env::Posix();
  ScratchDir dir_;
  crypto::DepartmentKeys keys_;
  std::unique_ptr<RecordEncoder> encoder_;
};

TEST_F(PackTest, SealedPackReadsBackEveryRecord) {
  std::string path = dir_.File("p.pack");
  std::vector<Bytes> plains = {TextBytes(200000), RandomBytes(50000, 1), TextBytes(10),
                               RandomBytes(1 << 20, 2)};
  auto records = WritePack(path, plains, /*seal=*/true);
  auto r = PackReader::Open(env_, path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->header().department_id, 7u);
  EXPECT_EQ((*r)->header().pack_id, 42u);
  ASSERT_EQ((*r)->entries().size(), plains.size());
  auto decoder = *RecordDecoder::Create(keys_);
  for (size_t i = 0; i < plains.size(); ++i) {
    Bytes rec, plain;
    ASSERT_TRUE((*r)->ReadRecord((*r)->entries()[i], &rec).ok());
    EXPECT_EQ(rec, records[i]);
    ASSERT_TRUE(decoder->Decode(rec, &plain).ok());
    EXPECT_EQ(plain, plains[i]);
  }
  EXPECT_TRUE((*r)->Verify().ok());
}

TEST_F(PackTest, UnsealedPackIsNotReadableAsSealed) {
  std::string path = dir_.File("open.pack");
  WritePack(path, {TextBytes(1000)}, /*seal=*/false);
  auto r = PackReader::Open(env_, path);
  EXPECT_TRUE(r.status().IsCorruption());
}

TEST_F(PackTest, CreateRefusesToOverwrite) {
  std::string path = dir_.File("p.pack");
  WritePack(path, {TextBytes(100)}, true);
  Bytes before = ReadAll(path);
  auto w = PackWriter::Create(env_, path, PackHeader{kPackVersion, 7, 43});
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAll(path), before);
}

TEST_F(PackTest, EverySingleBitFlipInASealedPackIsCorruption) {
  std::string path = dir_.File("p.pack");
  WritePack(path, {TextBytes(300), RandomBytes(100, 5), TextBytes(50)}, /*seal=*/true);
  const Bytes good = ReadAll(path);
  std::string bad_path = dir_.File("bad.pack");
  for (size_t bit = 0; bit < good.size() * 8; ++bit) {
    Bytes bad = good;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    WriteAll(bad_path, bad);
    auto r = PackReader::Open(env_, bad_path);
    Status s = r.ok() ? (*r)->Verify() : r.status();
    ASSERT_EQ(s.code(), StatusCode::kCorruption) << "bit " << bit << ": " << s.ToString();
  }
}

TEST_F(PackTest, CutAtEveryOffsetRecoversToLastCompleteRecord) {
  std::string path = dir_.File("p.pack");
  // Seal it too, so cuts inside the footer are covered.
  auto records =
      WritePack(path, {TextBytes(300), RandomBytes(120, 6), TextBytes(40), RandomBytes(10, 7)},
                /*seal=*/true);
  const Bytes full = ReadAll(path);
  std::vector<uint64_t> ends;  // end offset of each record
  uint64_t end = kPackHeaderSize;
  for (const auto& r : records) ends.push_back(end += r.size());

  std::string cut_path = dir_.File("cut.pack");
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    WriteAll(cut_path, ByteView(full.data(), cut));
    auto rec = RecoverPack(env_, cut_path, /*committed_size=*/0);
    ASSERT_TRUE(rec.ok()) << cut << ": " << rec.status().ToString();
    size_t complete = 0;
    while (complete < ends.size() && ends[complete] <= cut) ++complete;
    if (cut == full.size()) {
      EXPECT_TRUE(rec->was_sealed);
      EXPECT_EQ(rec->recovered_size, full.size());
    } else if (cut < kPackHeaderSize) {
      EXPECT_FALSE(rec->header_valid) << cut;
      EXPECT_EQ(rec->recovered_size, 0u);
    } else {
      EXPECT_TRUE(rec->header_valid);
      EXPECT_FALSE(rec->was_sealed) << cut;
      ASSERT_EQ(rec->entries.size(), complete) << "cut at " << cut;
      uint64_t want = complete ? ends[complete - 1] : kPackHeaderSize;
      EXPECT_EQ(rec->recovered_size, want) << cut;
      EXPECT_EQ(*env_->GetFileSize(cut_path), want) << cut;
      // Idempotent: a second recovery changes nothing.
      auto again = RecoverPack(env_, cut_path, 0);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->recovered_size, want);
    }
    for (size_t i = 0; i < rec->entries.size(); ++i) {
      EXPECT_EQ(rec->entries[i].length, records[i].size());
    }
  }
}

TEST_F(PackTest, RecoveredPackCanBeReopenedAppendedAndSealed) {
  std::string path = dir_.File("p.pack");
  auto records = WritePack(path, {TextBytes(500), RandomBytes(300, 8)}, /*seal=*/false);
  // Simulate a torn append: half of a third record.
  Bytes torn = MakeRecord(TextBytes(900));
  {
    auto f = env_->NewAppendableFile(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(ByteView(torn.data(), torn.size() / 2)).ok());
  }
  uint64_t committed = kPackHeaderSize + records[0].size() + records[1].size();
  auto rec = RecoverPack(env_, path, committed);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(rec->entries.size(), 2u);
  auto w = PackWriter::Reopen(env_, path, rec->header, rec->entries);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append(torn).ok());
  ASSERT_TRUE((*w)->Seal().ok());
  auto r = PackReader::Open(env_, path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->entries().size(), 3u);
  EXPECT_TRUE((*r)->Verify().ok());
}

TEST_F(PackTest, AbandonCutsBackToTheSyncedRecords) {
  std::string path = dir_.File("p.pack");
  auto w = PackWriter::Create(env_, path, PackHeader{kPackVersion, 7, 42});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Bytes first = MakeRecord(TextBytes(500));
  ASSERT_TRUE((*w)->Append(first).ok());
  ASSERT_TRUE((*w)->Sync().ok());
  const uint64_t synced = (*w)->synced_size();
  ASSERT_EQ(synced, kPackHeaderSize + first.size());
  // More than the write buffer, so some of it reached the file.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*w)->Append(MakeRecord(RandomBytes(700 << 10, i))).ok());
  ASSERT_TRUE((*w)->Abandon().ok());
  EXPECT_EQ(ReadAll(path).size(), synced);
  EXPECT_FALSE((*w)->Append(first).ok()) << "an abandoned writer is poisoned";
  EXPECT_FALSE((*w)->Sync().ok());
  // Start-up recovery finds the synced record, as after a crash.
  auto rec = RecoverPack(env_, path, synced);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(rec->entries.size(), 1u);
  EXPECT_EQ(rec->recovered_size, synced);

  // A pack never synced is cut to nothing, which recovery also takes.
  std::string fresh = dir_.File("q.pack");
  auto q = PackWriter::Create(env_, fresh, PackHeader{kPackVersion, 7, 43});
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->Append(MakeRecord(RandomBytes(2 << 20, 9))).ok());
  ASSERT_TRUE((*q)->Abandon().ok());
  EXPECT_EQ(ReadAll(fresh).size(), 0u);
  EXPECT_TRUE(RecoverPack(env_, fresh, 0).ok());
}

TEST_F(PackTest, AppendRefusesInvalidRecords) {
  auto w = PackWriter::Create(env_, dir_.File("p.pack"), PackHeader{kPackVersion, 1, 1});
  ASSERT_TRUE(w.ok());
  Bytes rec = MakeRecord(TextBytes(100));
  rec[100] ^= 1;
  EXPECT_TRUE((*w)->Append(rec).status().IsCorruption());
  EXPECT_EQ((*w)->entries().size(), 0u);
}

TEST_F(PackTest, ReadRecordAtRejectsOutOfRangeLocations) {
  std::string path = dir_.File("p.pack");
  WritePack(path, {TextBytes(100)}, true);
  auto r = PackReader::Open(env_, path);
  ASSERT_TRUE(r.ok());
  const PackEntry& e = (*r)->entries()[0];
  Bytes out;
  EXPECT_TRUE((*r)->ReadRecordAt(e.offset, e.length, e.id, &out).ok());
  EXPECT_TRUE((*r)->ReadRecordAt(0, 200, e.id, &out).IsCorruption());
  EXPECT_TRUE(out.empty());  // a refused read never leaves the last record behind
  EXPECT_TRUE((*r)->ReadRecordAt(kPackHeaderSize, 1u << 30, e.id, &out).IsCorruption());
  EXPECT_TRUE((*r)->ReadRecordAt(kPackHeaderSize + 1, 150, e.id, &out).IsCorruption());
  // offset + length would wrap around 2^64.
  EXPECT_TRUE(
      (*r)->ReadRecordAt(~0ull - 0xffffffffull + 2, 0xffffffffu, e.id, &out).IsCorruption());
  // The right bytes but not the chunk the index promised.
  ChunkId other = e.id;
  other[0] ^= 1;
  EXPECT_TRUE((*r)->ReadRecordAt(e.offset, e.length, other, &out).IsCorruption());
  EXPECT_TRUE(out.empty());
}

TEST_F(PackTest, TrailerWhoseSizesWrapAroundIsRejected) {
  // A forged trailer (checksums are keyless, so anyone can recompute them)
  // claiming 2^32-1 entries with an index offset chosen so that
  // index_offset + 48 * count + 48 wraps to the file size.
  std::string path = dir_.File("p.pack");
  WritePack(path, {TextBytes(100)}, true);
  Bytes bytes = ReadAll(path);
  uint8_t* t = bytes.data() + bytes.size() - kPackTrailerSize;
  uint64_t count = 0xffffffffull;
  EncodeFixed32(t + 12, static_cast<uint32_t>(count));
  EncodeFixed64(t + 16, bytes.size() - kPackTrailerSize - count * kPackIndexEntrySize);
  EncodeFixed64(t + 40, XXH3_64bits(t, 40));
  std::string forged = dir_.File("forged.pack");
  WriteAll(forged, bytes);
  auto r = PackReader::Open(env_, forged);
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
}

TEST_F(PackTest, DamageInsideTheCommittedRegionIsNeverTruncated) {
  std::string path = dir_.File("p.pack");
  auto records = WritePack(path, {TextBytes(300), RandomBytes(200, 3), TextBytes(50)}, false);
  uint64_t size = *env_->GetFileSize(path);
  Bytes bytes = ReadAll(path);
  bytes[kPackHeaderSize + records[0].size() + 90] ^= 0x10;  // inside record 2
  WriteAll(path, bytes);
  auto rec = RecoverPack(env_, path, /*committed_size=*/size);
  EXPECT_TRUE(rec.status().IsCorruption()) << rec.status().ToString();
  EXPECT_NE(rec.status().message().find("not truncating"), std::string::npos);
  EXPECT_EQ(ReadAll(path), bytes);  // nothing changed
  // The same damage beyond what was committed is a torn tail: cut there.
  auto cut = RecoverPack(env_, path, kPackHeaderSize + records[0].size());
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->entries.size(), 1u);
  EXPECT_EQ(*env_->GetFileSize(path), kPackHeaderSize + records[0].size());
}

TEST_F(PackTest, DamagedHeaderIsReportedNotErased) {
  std::string path = dir_.File("p.pack");
  WritePack(path, {TextBytes(300)}, false);
  Bytes bytes = ReadAll(path);
  bytes[20] ^= 1;  // pack id
  WriteAll(path, bytes);
  EXPECT_TRUE(RecoverPack(env_, path, 0).status().IsCorruption());
  EXPECT_EQ(ReadAll(path), bytes);
  // A zero-filled header is what a torn creation leaves: that is cut.
  std::fill(bytes.begin(), bytes.begin() + kPackHeaderSize, 0);
  WriteAll(path, bytes);
  auto rec = RecoverPack(env_, path, 0);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(rec->header_valid);
  EXPECT_EQ(*env_->GetFileSize(path), 0u);
}

TEST(PackPowerLossTest, RecoveredRecordsSurviveALaterPowerCut) {
  // The process dies before syncing: the appends it had written (the
  // writer gathers 1 MiB before it writes) are still in the page cache and
  // read back as valid. Recovery keeps them, so it must make them durable,
  // or a power cut after the vault indexes them would lose data.
  auto mem = io::NewMemEnv();
  io::FaultInjectionEnv env(mem.get());
  ASSERT_TRUE(env.CreateDir("/v").ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  auto keys = TestKeys();
  auto encoder = *RecordEncoder::Create(keys, {});
  constexpr int kRecords = 40;  // 40 x 64 KiB: some written, the last gathered
  size_t written = 0;
  {
    auto w = PackWriter::Create(&env, "/v/p.pack", PackHeader{kPackVersion, 1, 1});
    ASSERT_TRUE(w.ok());
    for (int i = 0; i < kRecords; ++i) {
      Bytes plain = RandomBytes(64 << 10, 100 + i), record;
      ASSERT_TRUE(encoder->Encode(RecordType::kData, encoder->Id(plain), plain, &record).ok());
      const uint64_t before = *env.GetFileSize("/v/p.pack");
      ASSERT_TRUE((*w)->Append(record).ok());
      if (*env.GetFileSize("/v/p.pack") > before) written = static_cast<size_t>(i);  // 0..i-1
    }
  }  // killed: never synced
  ASSERT_GT(written, 0u);
  auto rec = RecoverPack(&env, "/v/p.pack", 0);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  // What was gathered and not written died with the process.
  ASSERT_EQ(rec->entries.size(), written);
  ASSERT_LT(written, static_cast<size_t>(kRecords));
  ASSERT_TRUE(env.DropUnsyncedData().ok());  // power cut
  ASSERT_TRUE(env.FileExists("/v/p.pack"));
  EXPECT_EQ(*env.GetFileSize("/v/p.pack"), rec->recovered_size);
}

}  // namespace
}  // namespace cairn::repo
