#include "lib/repo/chunk_index.h"

#include <gtest/gtest.h>

#include "lib/repo/test_util.h"

namespace cairn::repo {
namespace {

using testing::ScratchDir;

ChunkId IdOf(uint64_t n) {
  ChunkId id{};
  EncodeFixed64(id.data(), n);
  id[31] = 0x5a;
  return id;
}

class ChunkIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::move(*LmdbEnv::Open(dir_.File("index"), {}));
    index_ = std::move(*ChunkIndex::Open(env_.get()));
  }
  ScratchDir dir_;
  std::unique_ptr<LmdbEnv> env_;
  std::unique_ptr<ChunkIndex> index_;
};

TEST_F(ChunkIndexTest, InsertLookupContains) {
  std::vector<ChunkIndex::Entry> batch;
  for (uint64_t i = 0; i < 1000; ++i) {
    batch.push_back({IdOf(i), ChunkLocation{i / 100, 32 + i * 1000, 1000, 1}});
  }
  ASSERT_TRUE(index_->Insert(1, batch).ok());
  auto loc = index_->Lookup(1, IdOf(512));
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(*loc, (ChunkLocation{5, 32 + 512000, 1000, 1}));
  std::vector<ChunkId> ask = {IdOf(3), IdOf(5000), IdOf(999)};
  auto present = index_->Contains(1, ask);
  ASSERT_TRUE(present.ok());
  EXPECT_EQ(*present, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(*index_->CountForDepartment(1), 1000u);
}

TEST_F(ChunkIndexTest, DepartmentsAreSeparate) {
  std::vector<ChunkIndex::Entry> a = {{IdOf(1), ChunkLocation{1, 32, 100, 1}}};
  ASSERT_TRUE(index_->Insert(1, a).ok());
  EXPECT_TRUE(index_->Lookup(2, IdOf(1)).status().IsNotFound());
  std::vector<ChunkId> ask = {IdOf(1)};
  EXPECT_EQ(*index_->Contains(2, ask), std::vector<bool>{false});
  EXPECT_EQ(*index_->CountForDepartment(2), 0u);
  // Department 256 must not bleed into 1 through its key prefix either.
  ASSERT_TRUE(index_->Insert(256, a).ok());
  EXPECT_EQ(*index_->CountForDepartment(1), 1u);
  EXPECT_EQ(*index_->CountForDepartment(256), 1u);
}

TEST_F(ChunkIndexTest, FirstLocationWinsAndRemoveWorks) {
  std::vector<ChunkIndex::Entry> first = {{IdOf(7), ChunkLocation{1, 32, 100, 1}}};
  std::vector<ChunkIndex::Entry> second = {{IdOf(7), ChunkLocation{9, 64, 100, 1}}};
  ASSERT_TRUE(index_->Insert(3, first).ok());
  ASSERT_TRUE(index_->Insert(3, second).ok());
  EXPECT_EQ(index_->Lookup(3, IdOf(7))->pack_id, 1u);
  auto txn = *env_->BeginWrite();
  ASSERT_TRUE(index_->Remove(txn, 3, IdOf(7)).ok());
  EXPECT_TRUE(index_->Remove(txn, 3, IdOf(7)).IsNotFound());
  ASSERT_TRUE(txn.Commit().ok());
  EXPECT_TRUE(index_->Lookup(3, IdOf(7)).status().IsNotFound());
}

// Insert puts a batch in key order through one cursor: a batch in any
// order lands whole, and within a batch as across batches the first
// location of an ID wins.
TEST_F(ChunkIndexTest, UnsortedBatchLandsWholeAndTheFirstOfADuplicateWins) {
  std::vector<ChunkIndex::Entry> batch;
  for (uint64_t i = 0; i < 5000; ++i) {
    const uint64_t n = (i * 7919) % 5000;  // a permutation of 0..4999
    batch.push_back({IdOf(n), ChunkLocation{1 + n / 1000, 32 + n, 100, 1}});
  }
  batch.push_back({IdOf(42), ChunkLocation{77, 32, 100, 1}});  // a later duplicate
  ASSERT_TRUE(index_->Insert(2, batch).ok());
  EXPECT_EQ(*index_->CountForDepartment(2), 5000u);
  for (uint64_t n = 0; n < 5000; n += 499) {
    auto loc = index_->Lookup(2, IdOf(n));
    ASSERT_TRUE(loc.ok()) << n;
    EXPECT_EQ(*loc, (ChunkLocation{1 + n / 1000, 32 + n, 100, 1})) << n;
  }
}

TEST_F(ChunkIndexTest, SurvivesReopen) {
  std::vector<ChunkIndex::Entry> a = {{IdOf(11), ChunkLocation{4, 96, 123, 2}}};
  ASSERT_TRUE(index_->Insert(5, a).ok());
  index_.reset();
  env_.reset();
  env_ = std::move(*LmdbEnv::Open(dir_.File("index"), {}));
  index_ = std::move(*ChunkIndex::Open(env_.get()));
  EXPECT_EQ(*index_->Lookup(5, IdOf(11)), (ChunkLocation{4, 96, 123, 2}));
}

}  // namespace
}  // namespace cairn::repo
