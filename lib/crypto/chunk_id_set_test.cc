#include "lib/crypto/chunk_id_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace cairn::crypto {
namespace {

ChunkId RandomId(std::mt19937_64& rng) {
  ChunkId id;
  for (auto& b : id) b = static_cast<uint8_t>(rng());
  return id;
}

// Against std::set, across many folds: every ID inserted once is found,
// a repeat is refused whether it sits in the sorted run or the hash set,
// and the IDs come out sorted and complete.
TEST(ChunkIdSetTest, AgreesWithStdSetAcrossFolds) {
  std::mt19937_64 rng(42);
  ChunkIdSet set;
  std::set<ChunkId> want;
  std::vector<ChunkId> inserted;
  for (int i = 0; i < 100'000; ++i) {
    // One in four is a repeat of an earlier ID (old or recent).
    ChunkId id =
        (i % 4 == 3 && !inserted.empty()) ? inserted[rng() % inserted.size()] : RandomId(rng);
    const bool fresh = want.insert(id).second;
    ASSERT_EQ(set.Insert(id), fresh) << i;
    if (fresh) inserted.push_back(id);
  }
  EXPECT_EQ(set.size(), want.size());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(set.Contains(inserted[rng() % inserted.size()]));
    EXPECT_FALSE(set.Contains(RandomId(rng)));
  }
  std::vector<ChunkId> out = set.TakeSorted();
  EXPECT_TRUE(std::equal(out.begin(), out.end(), want.begin(), want.end()));
  EXPECT_TRUE(set.empty());
}

TEST(ChunkIdSetTest, EmptyAndSmall) {
  ChunkIdSet set;
  EXPECT_TRUE(set.TakeSorted().empty());
  ChunkId a{}, b{};
  b[0] = 1;
  EXPECT_TRUE(set.Insert(b));
  EXPECT_TRUE(set.Insert(a));
  EXPECT_FALSE(set.Insert(b));
  EXPECT_EQ(set.TakeSorted(), (std::vector<ChunkId>{a, b}));
}

}  // namespace
}  // namespace cairn::crypto
