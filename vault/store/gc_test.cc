// Garbage collection, compaction and scrub over a real ChunkStore on a
// fault-injecting in-memory Env (doc/design.md section 22).
#include "vault/store/gc.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "lib/io/fault_injection_env.h"
#include "lib/io/mem_env.h"
#include "lib/repo/test_util.h"
#include "vault/store/scrub.h"

namespace cairn::vault {
namespace {

using repo::testing::RandomBytes;
using repo::testing::ScratchDir;
using repo::testing::TestKeys;

class GcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    encoder_ = *repo::RecordEncoder::Create(TestKeys(), {});
    ASSERT_TRUE(fault_.CreateDirs("/vault").ok());
    ASSERT_TRUE(fault_.SyncDir("/").ok());
    OpenStore();
  }

  void OpenStore() {
    store_.reset();
    lmdb_.reset();
    lmdb_ = std::move(*repo::LmdbEnv::Open(dir_.File("lmdb"), {}));
    packs_ = std::move(*OpenLocalPackStore(&fault_, "/vault/packs"));
    ChunkStoreOptions opts;
    opts.packs = packs_.get();
    opts.pack_target_size = 1 << 20;
    auto store = ChunkStore::Open(opts, lmdb_.get());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  // n records of ~100 KiB in department 1 (several 1 MiB packs), flushed
  // and sealed; their IDs.
  std::vector<repo::ChunkId> Fill(int n, uint64_t seed) {
    std::vector<repo::ChunkId> ids;
    for (int i = 0; i < n; ++i) {
      Bytes plain = RandomBytes(100000, seed + i), record;
      repo::ChunkId id = encoder_->Id(plain);
      EXPECT_TRUE(encoder_->Encode(repo::RecordType::kData, id, plain, &record).ok());
      EXPECT_TRUE(store_->Put(1, record).ok());
      ids.push_back(id);
    }
    EXPECT_TRUE(store_->Flush(1).ok());
    EXPECT_TRUE(store_->SealAll().ok());
    return ids;
  }

  GcOptions Options(const std::vector<repo::ChunkId>& kept) {
    GcOptions o;
    o.references = [kept](const ReferenceSink& sink) { return sink(1, kept); };
    o.reclaim_wait = std::chrono::milliseconds(0);
    return o;
  }

  bool Has(const repo::ChunkId& id) {
    std::vector<repo::ChunkId> ids = {id};
    return (*store_->Contains(1, ids))[0];
  }
  bool Reads(const repo::ChunkId& id) {
    Bytes r;
    return store_->Read(1, id, &r).ok();
  }
  size_t PackFiles() { return (*packs_->ListPacks(1)).size(); }

  ScratchDir dir_;
  std::unique_ptr<io::Env> mem_ = io::NewMemEnv();
  io::FaultInjectionEnv fault_{mem_.get()};
  std::unique_ptr<repo::RecordEncoder> encoder_;
  std::unique_ptr<repo::LmdbEnv> lmdb_;
  std::unique_ptr<PackStore> packs_;
  std::unique_ptr<ChunkStore> store_;
};

TEST_F(GcTest, RemovesWhatNoSnapshotReferencesAndCompacts) {
  auto ids = Fill(40, 1);
  std::vector<repo::ChunkId> kept;
  for (size_t i = 0; i < ids.size(); i += 4) kept.push_back(ids[i]);
  const size_t packs_before = PackFiles();

  auto dry = CollectGarbage(store_.get(), [&] {
    auto o = Options(kept);
    o.dry_run = true;
    return o;
  }());
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_EQ(dry->entries_removed, 30u);
  for (const auto& id : ids) EXPECT_TRUE(Has(id)) << "a dry run removes nothing";
  EXPECT_EQ(PackFiles(), packs_before);

  auto r = CollectGarbage(store_.get(), Options(kept));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->entries_removed, 30u);
  EXPECT_GT(r->packs_compacted, 0u);
  EXPECT_EQ(r->records_copied, 10u);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(Has(ids[i]), i % 4 == 0) << i;
    if (i % 4 == 0) {
      EXPECT_TRUE(Reads(ids[i])) << i;
    }
  }
  EXPECT_LT(PackFiles(), packs_before);
  EXPECT_EQ(store_->retired_waiting(), 0u);

  // Everything kept survives a restart and a second run finds nothing.
  OpenStore();
  for (const auto& id : kept) EXPECT_TRUE(Reads(id));
  auto again = CollectGarbage(store_.get(), Options(kept));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->entries_removed, 0u);
  EXPECT_EQ(again->packs_compacted, 0u);
}

TEST_F(GcTest, WhatSessionsTouchDuringARunStays) {
  auto ids = Fill(10, 100);
  GcOptions o = Options({});
  // Within the run, after the touch filter exists: a session asks about
  // ids[0] (have_chunks) and re-sends ids[1] (a deduplicated put).
  Bytes plain = RandomBytes(100000, 101), record;
  ASSERT_TRUE(encoder_->Encode(repo::RecordType::kData, ids[1], plain, &record).ok());
  o.fence = [&]() -> Status {
    std::vector<repo::ChunkId> ask = {ids[0]};
    CAIRN_RETURN_IF_ERROR(store_->Contains(1, ask).status());
    bool stored = true;
    CAIRN_RETURN_IF_ERROR(store_->Put(1, record, &stored));
    EXPECT_FALSE(stored);
    return Status::OK();
  };
  auto r = CollectGarbage(store_.get(), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kept_touched, 2u);
  EXPECT_EQ(r->entries_removed, 8u);
  EXPECT_TRUE(Reads(ids[0]));
  EXPECT_TRUE(Reads(ids[1]));
  for (size_t i = 2; i < ids.size(); ++i) EXPECT_FALSE(Has(ids[i]));
}

TEST_F(GcTest, RemoveUntouchedIsAtomicWithTouch) {
  auto ids = Fill(3, 200);
  std::vector<ChunkStore::Candidate> c;
  for (const auto& id : ids) c.push_back({1, id, *store_->index()->Lookup(1, id)});
  EXPECT_TRUE(store_->RemoveUntouched(c).status().IsUnavailable()) << "only during a run";
  ASSERT_TRUE(store_->BeginCollection(1 << 16).ok());
  EXPECT_TRUE(store_->BeginCollection(1 << 16).IsUnavailable()) << "one run at a time";
  std::vector<repo::ChunkId> ask = {ids[0]};
  ASSERT_TRUE(store_->Contains(1, ask).ok());
  // An entry that moved since the scan saw it is not removed either.
  c[2].location.offset += 1;
  auto removed = store_->RemoveUntouched(c);
  store_->EndCollection();
  ASSERT_TRUE(removed.ok());
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0].id, ids[1]);
  EXPECT_TRUE(Has(ids[0]));
  EXPECT_FALSE(Has(ids[1]));
  EXPECT_TRUE(Has(ids[2]));
}

TEST_F(GcTest, AKeptDeltaKeepsItsBaseChain) {
  auto base = Fill(1, 300)[0];
  // Two deltas in a chain: d2 -> d1 -> base. Only d2 is referenced.
  std::vector<repo::ChunkId> deltas;
  repo::ChunkId prev = base;
  for (int i = 0; i < 2; ++i) {
    Bytes plain = RandomBytes(5000, 310 + i), record;
    repo::ChunkId id = encoder_->Id(plain);
    ASSERT_TRUE(encoder_->Encode(repo::RecordType::kDelta, id, plain, &record).ok());
    ASSERT_TRUE(store_->Put(1, record, nullptr, &prev).ok());
    deltas.push_back(id);
    prev = id;
  }
  ASSERT_TRUE(store_->Flush(1).ok());
  auto r = CollectGarbage(store_.get(), Options({deltas[1]}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->delta_bases, 2u);
  EXPECT_EQ(r->entries_removed, 0u);
  EXPECT_TRUE(Reads(base) && Reads(deltas[0]) && Reads(deltas[1]));
  // A base named for a record that is not a delta is refused.
  Bytes plain = RandomBytes(100, 320), record;
  repo::ChunkId id = encoder_->Id(plain);
  ASSERT_TRUE(encoder_->Encode(repo::RecordType::kData, id, plain, &record).ok());
  EXPECT_TRUE(store_->Put(1, record, nullptr, &base).IsInvalidArgument());
  // Once nothing keeps the chain, all of it goes.
  auto gone = CollectGarbage(store_.get(), Options({}));
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->entries_removed, 3u);
}

// A crash after any step of compaction (here: power lost, unsynced data
// dropped, the store reopened) leaves every kept record readable; garbage
// may remain until the next run.
TEST_F(GcTest, EveryStepOfCompactionIsCrashSafe) {
  for (int stop_after = 1; stop_after <= 6; ++stop_after) {
    SCOPED_TRACE("crash after step " + std::to_string(stop_after));
    auto ids = Fill(30, 1000 * stop_after);
    std::vector<repo::ChunkId> kept;
    for (size_t i = 0; i < ids.size(); i += 5) kept.push_back(ids[i]);
    GcOptions o = Options(kept);
    int steps = 0;
    bool crashed = false;
    o.step_for_test = [&](const char*) {
      if (++steps == stop_after) crashed = true;
    };
    o.cancelled = [&] { return crashed; };
    (void)CollectGarbage(store_.get(), o);
    store_.reset();
    ASSERT_TRUE(fault_.DropUnsyncedData().ok());
    OpenStore();
    for (const auto& id : kept) EXPECT_TRUE(Reads(id));
    auto after = CollectGarbage(store_.get(), Options(kept));
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    for (const auto& id : kept) EXPECT_TRUE(Reads(id));
    // Clean the department for the next round.
    ASSERT_TRUE(CollectGarbage(store_.get(), Options({})).ok());
    EXPECT_EQ(*store_->index()->CountForDepartment(1), 0u);
  }
}

TEST_F(GcTest, ARetiredPackLeftByACrashIsRemovedAtOpen) {
  auto ids = Fill(12, 400);
  auto packs = *store_->ListPacks();
  ASSERT_GT(packs.size(), 1u);
  // Retire the first pack by hand after emptying the index of it: as a
  // run does, then "crash" before the file is removed.
  const uint64_t victim = packs[0].id;
  std::vector<ChunkStore::Candidate> c;
  for (const auto& id : ids) {
    auto loc = *store_->index()->Lookup(1, id);
    if (loc.pack_id == victim) c.push_back({1, id, loc});
  }
  ASSERT_TRUE(store_->BeginCollection(1 << 16).ok());
  ASSERT_EQ(store_->RemoveUntouched(c)->size(), c.size());
  store_->EndCollection();
  ASSERT_TRUE(store_->RetirePack(victim).ok());
  const std::string path = packs_->PackPath(1, victim);
  ASSERT_TRUE(fault_.FileExists(path));
  OpenStore();
  EXPECT_FALSE(fault_.FileExists(path));
  const auto after = *store_->ListPacks();
  for (const auto& p : after) EXPECT_NE(p.id, victim);
}

TEST_F(GcTest, ScrubFindsEveryFlippedByteOfALiveRecord) {
  auto ids = Fill(12, 500);
  auto clean = ScrubStore(store_.get(), {});
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->damaged.empty());
  EXPECT_EQ(clean->records, 12u);
  // Flip one byte inside three different records.
  std::set<repo::ChunkId> hit;
  for (int k : {1, 5, 9}) {
    auto loc = *store_->index()->Lookup(1, ids[k]);
    const std::string path = packs_->PackPath(1, loc.pack_id);
    Bytes data = *io::ReadFileToBytes(&fault_, path);
    data[loc.offset + 200 + k] ^= 0x40;
    ASSERT_TRUE(io::WriteFileAtomically(&fault_, path, data).ok());
    hit.insert(ids[k]);
  }
  auto r = ScrubStore(store_.get(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::set<repo::ChunkId> found;
  for (const auto& d : r->damaged) found.insert(d.id);
  EXPECT_EQ(found, hit);
  EXPECT_GT(r->packs_damaged, 0u);
}

// A thousand single-byte flips, one at a time, anywhere in any pack: scrub
// reports each one, as a damaged record (the one holding the byte) or as a
// broken pack (a header or footer byte).
TEST_F(GcTest, ScrubDetectsEachOfAThousandFlips) {
  Fill(24, 700);
  const auto packs = *store_->ListPacks();
  std::mt19937_64 rng(42);
  int detected = 0;
  const int flips = 1000;
  for (int i = 0; i < flips; ++i) {
    const auto& p = packs[rng() % packs.size()];
    const std::string path = packs_->PackPath(1, p.id);
    Bytes data = *io::ReadFileToBytes(&fault_, path);
    const size_t off = rng() % data.size();
    const uint8_t mask = static_cast<uint8_t>(1u << (rng() % 8));
    data[off] ^= mask;
    ASSERT_TRUE(io::WriteFileAtomically(&fault_, path, data).ok());
    auto r = ScrubStore(store_.get(), {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    bool found = false;
    for (const auto& d : r->damaged) {
      found = found || (d.location.pack_id == p.id && d.location.offset <= off &&
                        off < d.location.offset + d.location.length);
    }
    for (const auto& b : r->broken_packs) found = found || b.second == p.id;
    detected += found;
    EXPECT_TRUE(found) << "flip " << i << " at byte " << off << " of pack " << p.id;
    data[off] ^= mask;  // undo, for the next flip
    ASSERT_TRUE(io::WriteFileAtomically(&fault_, path, data).ok());
  }
  EXPECT_EQ(detected, flips);
  auto clean = ScrubStore(store_.get(), {});
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->damaged.empty() && clean->broken_packs.empty());
}

TEST_F(GcTest, ScrubReportsRecordsOfAMissingPack) {
  auto ids = Fill(12, 600);
  auto loc = *store_->index()->Lookup(1, ids[0]);
  ASSERT_TRUE(fault_.RemoveFile(packs_->PackPath(1, loc.pack_id)).ok());
  auto r = ScrubStore(store_.get(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  size_t in_pack = 0;
  for (const auto& id : ids) in_pack += store_->index()->Lookup(1, id)->pack_id == loc.pack_id;
  EXPECT_EQ(r->damaged.size(), in_pack);
  EXPECT_EQ(r->pack_problems.size(), 1u);
}

}  // namespace
}  // namespace cairn::vault
