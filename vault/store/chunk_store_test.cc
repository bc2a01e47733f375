#include "vault/store/chunk_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "lib/io/fault_injection_env.h"
#include "lib/io/mem_env.h"
#include "lib/proto/messages.h"
#include "lib/repo/test_util.h"

namespace cairn::vault {
namespace {

using repo::testing::RandomBytes;
using repo::testing::ScratchDir;
using repo::testing::TestKeys;

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = TestKeys();
    encoder_ = *repo::RecordEncoder::Create(keys_, {});
    ASSERT_TRUE(fault_.CreateDirs("/vault").ok());
    ASSERT_TRUE(fault_.SyncDir("/").ok());
    OpenStore();
  }

  void OpenStore(uint64_t pack_target = 0) {
    store_.reset();
    lmdb_.reset();
    lmdb_ = std::move(*repo::LmdbEnv::Open(dir_.File("lmdb"), {}));
    packs_ = std::move(*OpenLocalPackStore(&fault_, "/vault/packs"));
    ChunkStoreOptions opts;
    opts.packs = packs_.get();
    opts.pack_target_size = pack_target;
    auto store = ChunkStore::Open(opts, lmdb_.get());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  // A record of `n` random bytes; its ID in *id.
  Bytes Record(size_t n, uint64_t seed, repo::ChunkId* id) {
    Bytes plain = RandomBytes(n, seed), out;
    *id = encoder_->Id(plain);
    EXPECT_TRUE(encoder_->Encode(repo::RecordType::kData, *id, plain, &out).ok());
    return out;
  }

  bool Has(uint32_t dept, const repo::ChunkId& id) {
    std::vector<repo::ChunkId> ids = {id};
    return (*store_->Contains(dept, ids))[0];
  }

  ScratchDir dir_;
  std::unique_ptr<io::Env> mem_ = io::NewMemEnv();
  io::FaultInjectionEnv fault_{mem_.get()};
  crypto::DepartmentKeys keys_;
  std::unique_ptr<repo::RecordEncoder> encoder_;
  std::unique_ptr<repo::LmdbEnv> lmdb_;
  std::unique_ptr<PackStore> packs_;
  std::unique_ptr<ChunkStore> store_;
};

TEST_F(ChunkStoreTest, FlushIsTheDurabilityBarrier) {
  repo::ChunkId a, b;
  Bytes ra = Record(1000, 1, &a), rb = Record(2000, 2, &b);
  bool stored = false;
  ASSERT_TRUE(store_->Put(1, ra, &stored).ok());
  EXPECT_TRUE(stored);
  ASSERT_TRUE(store_->Put(1, rb).ok());
  EXPECT_FALSE(Has(1, a));  // not durable yet: not reported as stored
  auto r = store_->Flush(1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->records, 2u);
  EXPECT_TRUE(Has(1, a) && Has(1, b));
  Bytes back;
  ASSERT_TRUE(store_->Read(1, a, &back).ok());
  EXPECT_EQ(back, ra);
  // The same chunk again is not stored twice.
  ASSERT_TRUE(store_->Put(1, ra, &stored).ok());
  EXPECT_FALSE(stored);
}

TEST_F(ChunkStoreTest, DepartmentsNeverSeeEachOthersChunks) {
  repo::ChunkId a;
  Bytes ra = Record(1000, 3, &a);
  ASSERT_TRUE(store_->Put(1, ra).ok());
  ASSERT_TRUE(store_->Flush(1).ok());
  EXPECT_FALSE(Has(2, a));
  Bytes back;
  EXPECT_TRUE(store_->Read(2, a, &back).IsNotFound());
  // Department 2 storing the same bytes gets its own copy.
  bool stored = false;
  ASSERT_TRUE(store_->Put(2, ra, &stored).ok());
  EXPECT_TRUE(stored);
}

TEST_F(ChunkStoreTest, PacksRollOverAndSealedPacksVerify) {
  OpenStore(/*pack_target=*/1 << 20);
  std::vector<repo::ChunkId> ids(12);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(store_->Put(4, Record(300 << 10, 10 + i, &ids[i])).ok());
  ASSERT_TRUE(store_->Flush(4).ok());
  ASSERT_TRUE(store_->SealAll().ok());
  auto packs = *fault_.GetChildren("/vault/packs/4");
  EXPECT_GE(packs.size(), 3u);
  for (const auto& name : packs) {
    auto reader = repo::PackReader::Open(&fault_, "/vault/packs/4/" + name);
    ASSERT_TRUE(reader.ok()) << name << ": " << reader.status().ToString();
    EXPECT_TRUE((*reader)->Verify().ok());
  }
  for (const auto& id : ids) {
    Bytes back;
    EXPECT_TRUE(store_->Read(4, id, &back).ok());
  }
}

TEST_F(ChunkStoreTest, PowerCutKeepsFlushedChunksAndNothingHalfWritten) {
  repo::ChunkId flushed, lost;
  ASSERT_TRUE(store_->Put(1, Record(5000, 20, &flushed)).ok());
  ASSERT_TRUE(store_->Flush(1).ok());
  ASSERT_TRUE(store_->Put(1, Record(5000, 21, &lost)).ok());
  store_.reset();                               // the vault dies ...
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());  // ... with the power
  OpenStore();
  EXPECT_TRUE(store_->recovery().damaged.empty());
  EXPECT_EQ(store_->recovery().packs_recovered, 1u);
  EXPECT_TRUE(Has(1, flushed));
  Bytes back;
  EXPECT_TRUE(store_->Read(1, flushed, &back).ok());
  EXPECT_FALSE(Has(1, lost));
  // The agent re-sends what the vault does not report; that works.
  ASSERT_TRUE(store_->Put(1, Record(5000, 21, &lost)).ok());
  ASSERT_TRUE(store_->Flush(1).ok());
  EXPECT_TRUE(Has(1, lost));
}

TEST_F(ChunkStoreTest, ProcessCrashIndexesWhatSurvivedSoItIsNotResent) {
  // A pack writer gathers 1 MiB before it writes: of 3 MiB put, at least
  // the first 2 MiB reach the page cache, the rest dies with the process.
  std::vector<repo::ChunkId> ids(48);
  for (int i = 0; i < 48; ++i) ASSERT_TRUE(store_->Put(1, Record(64 << 10, 30 + i, &ids[i])).ok());
  store_.reset();  // killed before flushing; the page cache keeps what was written
  OpenStore();
  const size_t kept = store_->recovery().records_indexed;
  EXPECT_GE(kept, 30u);
  EXPECT_LT(kept, 48u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(Has(1, ids[i]), i < kept) << i;
  // And it stays after a later power cut: recovery made it durable.
  store_.reset();
  ASSERT_TRUE(fault_.DropUnsyncedData().ok());
  OpenStore();
  EXPECT_TRUE(Has(1, ids[0]));
  Bytes back;
  EXPECT_TRUE(store_->Read(1, ids[kept - 1], &back).ok());
}

TEST_F(ChunkStoreTest, FullDiskIsAClearErrorAndLosesNothingStored) {
  repo::ChunkId kept, refused;
  ASSERT_TRUE(store_->Put(1, Record(5000, 40, &kept)).ok());
  ASSERT_TRUE(store_->Flush(1).ok());
  fault_.SetNoSpaceAfter(fault_.bytes_appended() + 1000);
  // The record is gathered in memory; the full disk shows when it is
  // written, at the latest by the flush.
  Status s = store_->Put(1, Record(50000, 41, &refused));
  if (s.ok()) s = store_->Flush(1).status();
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_FALSE(Has(1, refused));
  EXPECT_TRUE(Has(1, kept));
  fault_.ClearFaults();
  // Space is back: the vault goes on without a restart.
  ASSERT_TRUE(store_->Put(1, Record(50000, 41, &refused)).ok());
  ASSERT_TRUE(store_->Flush(1).ok());
  EXPECT_TRUE(Has(1, refused));
  // And after a restart everything is consistent.
  store_.reset();
  OpenStore();
  EXPECT_TRUE(store_->recovery().damaged.empty());
  Bytes back;
  EXPECT_TRUE(store_->Read(1, kept, &back).ok());
  EXPECT_TRUE(store_->Read(1, refused, &back).ok());
}

TEST_F(ChunkStoreTest, InvalidRecordsAreRefused) {
  repo::ChunkId a;
  Bytes r = Record(1000, 50, &a);
  r[200] ^= 1;
  EXPECT_TRUE(store_->Put(1, r).IsCorruption());
  ASSERT_TRUE(store_->Flush(1).ok());
  EXPECT_FALSE(Has(1, a));
}

}  // namespace
// ReadOrder: keys that sort IDs into the order their records were stored
// (pack by pack, offset by offset), whatever order they are asked in; not
// held (unknown, another department's, or put but not flushed): ~0.
TEST_F(ChunkStoreTest, ReadOrderSortsIdsIntoStorageOrder) {
  OpenStore(/*pack_target=*/1 << 20);
  std::vector<repo::ChunkId> ids(10);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->Put(5, Record(200 << 10, 60 + i, &ids[i])).ok());
  ASSERT_TRUE(store_->Flush(5).ok());
  repo::ChunkId unflushed;
  ASSERT_TRUE(store_->Put(5, Record(1000, 99, &unflushed)).ok());
  repo::ChunkId unknown{};
  std::vector<repo::ChunkId> ask = {ids[7], unknown, ids[0], ids[9], unflushed, ids[3],
                                    ids[1], ids[8],  ids[2], ids[6], ids[4],    ids[5]};
  auto keys = store_->ReadOrder(5, ask);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->size(), ask.size());
  EXPECT_EQ((*keys)[1], ~uint64_t{0});
  EXPECT_EQ((*keys)[4], ~uint64_t{0});
  std::vector<std::pair<uint64_t, repo::ChunkId>> sorted;
  for (size_t i = 0; i < ask.size(); ++i) sorted.emplace_back((*keys)[i], ask[i]);
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sorted[i].second, ids[i]) << i;
  // The records span several packs, and the keys say so.
  EXPECT_NE(sorted[0].first >> 32, sorted[9].first >> 32);
  auto other = store_->ReadOrder(6, ask);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, std::vector<uint64_t>(ask.size(), ~uint64_t{0}));
}

// ReadPrefix: records back in request order across packs, a prefix when a
// later ID is missing or the byte budget is reached, the error when the
// first one fails, and damage caught like Read() catches it.
TEST_F(ChunkStoreTest, ReadPrefixReadsInPackOrderAndStopsAtTheFirstProblem) {
  OpenStore(/*pack_target=*/1 << 20);
  std::vector<repo::ChunkId> ids(10);
  std::vector<Bytes> records;
  for (int i = 0; i < 10; ++i) {
    records.push_back(Record(200 << 10, 40 + i, &ids[i]));
    ASSERT_TRUE(store_->Put(5, records.back()).ok());
  }
  ASSERT_TRUE(store_->Flush(5).ok());
  // Asked in an order unrelated to pack order.
  std::vector<repo::ChunkId> ask = {ids[7], ids[0], ids[9], ids[3], ids[3]};
  auto got = store_->ReadPrefix(5, ask, 64u << 20);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 5u);
  EXPECT_EQ((*got)[0], records[7]);
  EXPECT_EQ((*got)[1], records[0]);
  EXPECT_EQ((*got)[2], records[9]);
  EXPECT_EQ((*got)[4], records[3]);
  // With the read-ahead of whole packs (a replication's reads), twice (the
  // second time every pack is hinted already): the same records.
  for (int round = 0; round < 2; ++round) {
    auto ahead = store_->ReadPrefix(5, ask, 64u << 20, /*whole_packs=*/true);
    ASSERT_TRUE(ahead.ok()) << ahead.status().ToString();
    EXPECT_EQ(*ahead, *got);
  }
  // The budget: always the first, then what fits.
  EXPECT_EQ(store_->ReadPrefix(5, ask, 1)->size(), 1u);
  EXPECT_EQ(store_->ReadPrefix(5, ask, 2 * records[0].size() + 100)->size(), 2u);
  // A missing ID: a prefix, or the error when it is the first.
  repo::ChunkId unknown{};
  std::vector<repo::ChunkId> gap = {ids[1], unknown, ids[2]};
  EXPECT_EQ(store_->ReadPrefix(5, gap, 64u << 20)->size(), 1u);
  std::vector<repo::ChunkId> first = {unknown, ids[1]};
  EXPECT_TRUE(store_->ReadPrefix(5, first, 64u << 20).status().IsNotFound());
  // Another department sees none of it.
  EXPECT_TRUE(store_->ReadPrefix(6, ask, 64u << 20).status().IsNotFound());
  // A flipped byte inside record 2: the prefix stops before it.
  ASSERT_TRUE(store_->SealAll().ok());
  auto packs = *fault_.GetChildren("/vault/packs/5");
  bool flipped = false;
  for (const auto& name : packs) {
    const std::string path = "/vault/packs/5/" + name;
    Bytes data = *io::ReadFileToBytes(&fault_, path);
    auto at =
        std::search(data.begin(), data.end(), records[2].begin() + 200, records[2].begin() + 232);
    if (at == data.end()) continue;
    *at ^= 1;
    ASSERT_TRUE(io::WriteFileAtomically(&fault_, path, data).ok());
    flipped = true;
  }
  ASSERT_TRUE(flipped);
  std::vector<repo::ChunkId> run = {ids[1], ids[2], ids[3]};
  auto damaged = store_->ReadPrefix(5, run, 64u << 20);
  ASSERT_TRUE(damaged.ok());
  EXPECT_EQ(damaged->size(), 1u);
  // Read in place, as the vault's reply is: the records after the damage
  // were placed, but only the prefix read whole is kept, and no byte the
  // buffer held before (another request's, perhaps) goes out.
  std::optional<proto::RecordsPayload> reply;
  auto place = [&reply](std::span<const uint32_t> lengths) {
    reply.emplace(lengths);
    std::vector<MutableByteView> slots = reply->records();
    for (MutableByteView slot : slots) std::ranges::fill(slot, 0xab);
    return slots;
  };
  auto in_place = store_->ReadPrefix(5, run, 64u << 20, /*whole_packs=*/false, place);
  ASSERT_TRUE(in_place.ok());
  EXPECT_EQ(*in_place, 1u);
  EXPECT_EQ(reply->count(), 3u);
  reply->KeepFirst(*in_place);
  EXPECT_TRUE(std::ranges::equal(reply->payload(), proto::Records{{records[1]}}.Encode()));
  std::vector<repo::ChunkId> bad_first = {ids[2]};
  EXPECT_TRUE(store_->ReadPrefix(5, bad_first, 64u << 20).status().IsCorruption());
}

}  // namespace cairn::vault
