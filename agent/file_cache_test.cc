#include "agent/file_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace cairn::agent {
namespace {

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/cairn_cache_XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

CachedFile Sample() {
  CachedFile f;
  f.stamp = {1, 2, 300, 4, 5};
  crypto::ChunkId id;
  id.fill(9);
  f.content = {{repo::RefKind::kData, id, 200}};
  f.holes = {{0, 100}};
  return f;
}

TEST(FileCacheTest, ValueRoundTripsAndDamageIsRefused) {
  CachedFile f = Sample();
  Bytes b = EncodeCachedFile(f);
  Result<CachedFile> back = DecodeCachedFile(b);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, f);
  for (size_t n = 0; n < b.size(); ++n) EXPECT_FALSE(DecodeCachedFile(ByteView(b.data(), n)).ok());
}

TEST(FileCacheTest, SliceReferencesRoundTrip) {
  CachedFile f;
  f.stamp = {1, 2, 300, 4, 5};
  crypto::ChunkId group, own;
  group.fill(9);
  own.fill(3);
  f.content = {{repo::RefKind::kSlice, group, 300, 4096, own}};
  Bytes b = EncodeCachedFile(f);
  Result<CachedFile> back = DecodeCachedFile(b);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, f);
  for (size_t n = 0; n < b.size(); ++n) EXPECT_FALSE(DecodeCachedFile(ByteView(b.data(), n)).ok());
}

TEST(FileCacheTest, PendingEntriesCountOnlyAfterPromotion) {
  auto cache = FileCache::Open(TempDir(), /*no_sync=*/true);
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  CachedFile f = Sample();
  EXPECT_FALSE((*cache)->Lookup("/a", f.stamp)->has_value());
  ASSERT_TRUE((*cache)->AddPending({{"/a", f}}).ok());
  EXPECT_FALSE((*cache)->Lookup("/a", f.stamp)->has_value()) << "visible before commit";
  ASSERT_TRUE((*cache)->PromotePending().ok());
  auto hit = (*cache)->Lookup("/a", f.stamp);
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ(**hit, f);
  EXPECT_EQ(*(*cache)->Count(), 1u);
}

TEST(FileCacheTest, AnyStampChangeIsAMiss) {
  auto cache = FileCache::Open(TempDir(), true);
  ASSERT_TRUE(cache.ok());
  CachedFile f = Sample();
  ASSERT_TRUE((*cache)->AddPending({{"/a", f}}).ok());
  ASSERT_TRUE((*cache)->PromotePending().ok());
  for (int field = 0; field < 5; ++field) {
    FileStamp s = f.stamp;
    if (field == 0) s.dev++;
    if (field == 1) s.ino++;
    if (field == 2) s.size++;
    if (field == 3) s.mtime_ns++;
    if (field == 4) s.ctime_ns++;
    EXPECT_FALSE((*cache)->Lookup("/a", s)->has_value()) << "field " << field;
  }
  EXPECT_FALSE((*cache)->Lookup("/b", f.stamp)->has_value());
}

TEST(FileCacheTest, ClearPendingForgetsAnUncommittedRun) {
  auto cache = FileCache::Open(TempDir(), true);
  ASSERT_TRUE(cache.ok());
  std::vector<std::pair<std::string, CachedFile>> many;
  for (int i = 0; i < 25000; ++i) many.push_back({"/f" + std::to_string(i), Sample()});
  ASSERT_TRUE((*cache)->AddPending(many).ok());
  ASSERT_TRUE((*cache)->ClearPending().ok());
  ASSERT_TRUE((*cache)->PromotePending().ok());
  EXPECT_EQ(*(*cache)->Count(), 0u);
  ASSERT_TRUE((*cache)->AddPending(many).ok());
  ASSERT_TRUE((*cache)->PromotePending().ok());
  EXPECT_EQ(*(*cache)->Count(), 25000u);
  ASSERT_TRUE((*cache)->Clear().ok());
  EXPECT_EQ(*(*cache)->Count(), 0u);
}

}  // namespace
}  // namespace cairn::agent
