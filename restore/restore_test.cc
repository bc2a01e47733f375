// Unit tests of the restore library's pure parts: splitting a chunk around
// holes and resolving a snapshot name. The data path itself runs against real
// processes in tests/e2e/restore_test.sh and restore_image_test.sh.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "lib/crypto/chunk_id.h"
#include "lib/repo/test_util.h"
#include "restore/compare.h"
#include "restore/restorer.h"
#include "restore/snapshot_tree.h"

namespace cairn::restore {
namespace {

repo::TreeEntry WithHoles(std::vector<repo::Hole> holes) {
  repo::TreeEntry e;
  e.holes = std::move(holes);
  return e;
}

std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> Flat(const std::vector<Segment>& s) {
  std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> out;
  for (const Segment& x : s) out.emplace_back(x.file_offset, x.chunk_offset, x.length);
  return out;
}

TEST(SegmentsTest, AChunkWithoutHolesIsOneSegment) {
  EXPECT_EQ(Flat(SegmentsOf(WithHoles({}), 4096, 100)),
            (std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>{{4096, 0, 100}}));
  // A hole before or after the chunk does not split it.
  EXPECT_EQ(Flat(SegmentsOf(WithHoles({{0, 4096}, {4196, 10}}), 4096, 100)),
            (std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>{{4096, 0, 100}}));
}

TEST(SegmentsTest, AChunkStraddlingHolesIsSplitAroundThem) {
  // Data [60, 100), hole [100, 150), data [150, 170), hole [170, 1000), data [1000, ...).
  auto e = WithHoles({{100, 50}, {170, 830}});
  EXPECT_EQ(Flat(SegmentsOf(e, 60, 100)), (std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>{
                                              {60, 0, 40}, {150, 40, 20}, {1000, 60, 40}}));
  // Starting exactly where a hole ends.
  EXPECT_EQ(Flat(SegmentsOf(e, 150, 30)),
            (std::vector<std::tuple<uint64_t, uint64_t, uint64_t>>{{150, 0, 20}, {1000, 20, 10}}));
}

TEST(DifferingBlocksTest, RunsOfChangedBlocksIncludingAShortTail) {
  Bytes have(10 * 4096 + 100, 7);
  Bytes want = have;
  using Runs = std::vector<std::pair<uint64_t, uint64_t>>;
  EXPECT_EQ(DifferingBlocks(want, have, 4096), Runs{});
  want[0] = 1;         // block 0
  want[4096 * 2] = 1;  // blocks 2 and 3: one run
  want[4096 * 3 + 5] = 1;
  want[want.size() - 1] = 1;  // the short last block
  EXPECT_EQ(DifferingBlocks(want, have, 4096),
            (Runs{{0, 4096}, {8192, 16384}, {40960, 40960 + 100}}));
  // Bytes the target does not have yet always differ, to the very end.
  Bytes shorter(have.begin(), have.begin() + 4096 * 9 + 10);
  Bytes same = have;
  EXPECT_EQ(DifferingBlocks(same, shorter, 4096), (Runs{{36864, 41060}}));
  EXPECT_EQ(DifferingBlocks(same, Bytes(), 4096), (Runs{{0, 41060}}));
}

proto::SnapshotInfo Snap(std::string id) {
  proto::SnapshotInfo s;
  s.id = std::move(id);
  return s;
}

TEST(FindSnapshotTest, IdPrefixAndLatest) {
  // Newest first, as the vault sends them.
  std::vector<proto::SnapshotInfo> list = {Snap("00000000000000c3"), Snap("00000000000000b2"),
                                           Snap("00000000000000b1"), Snap("00000000000000a1")};
  EXPECT_EQ(FindSnapshot(list, "latest")->id, "00000000000000c3");
  EXPECT_EQ(FindSnapshot(list, "00000000000000b1")->id, "00000000000000b1");
  EXPECT_EQ(FindSnapshot(list, "00000000000000a")->id, "00000000000000a1");  // unique prefix
  auto ambiguous = FindSnapshot(list, "00000000000000b");
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_EQ(ambiguous.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ambiguous.status().message().find("ambiguous"), std::string::npos);
  EXPECT_TRUE(FindSnapshot(list, "ff").status().IsNotFound());
  EXPECT_TRUE(FindSnapshot(list, "").status().IsNotFound());
  EXPECT_TRUE(FindSnapshot({}, "latest").status().IsNotFound());
}

// The drill's read-back (compare.h): the bytes on disk hash to the tree's
// chunk IDs, or the file is named with what differs; a link is never
// followed.
TEST(CompareTest, TheDiskIsHashedAgainstTheChunkIds) {
  using repo::testing::RandomBytes;
  using repo::testing::ScratchDir;
  ScratchDir dir;
  const std::string root = dir.File("restored");
  ASSERT_EQ(::mkdir(root.c_str(), 0700), 0);
  crypto::SecretKey key;
  crypto::ChunkIdHasher hasher(key);
  const Bytes first = RandomBytes(5000, 1), second = RandomBytes(3000, 2);
  SnapshotTree tree;
  TreeNode node;
  node.entry.type = repo::EntryType::kFile;
  node.entry.name = "a.bin";
  node.entry.size = first.size() + second.size();
  node.path = "a.bin";
  node.data = {{hasher.Compute(first), 0, first.size()},
               {hasher.Compute(second), first.size(), second.size()}};
  tree.nodes.push_back(node);
  auto write = [&](const Bytes& a, const Bytes& b) {
    std::ofstream out(root + "/a.bin", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(a.size()));
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  write(first, second);
  auto ok = CompareWithTree(tree, key, {root, "", {}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->mismatches.empty());
  EXPECT_EQ(ok->chunks, 2u);
  EXPECT_EQ(ok->bytes, 8000u);
  Bytes flipped = second;
  flipped[100] ^= 1;
  write(first, flipped);
  auto bad = CompareWithTree(tree, key, {root, "", {}});
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ(bad->mismatches.size(), 1u);
  EXPECT_EQ(bad->mismatches[0].paths, std::vector<std::string>{"a.bin"});
  EXPECT_NE(bad->mismatches[0].error.find("offset 5000"), std::string::npos);
  // Reported damaged by the restore already: skipped.
  EXPECT_TRUE(CompareWithTree(tree, key, {root, "", {"a.bin"}})->mismatches.empty());
  // Shorter on disk.
  write(first, {});
  EXPECT_EQ(CompareWithTree(tree, key, {root, "", {}})->mismatches.size(), 1u);
  // A link where the file should be, pointing at the right bytes: refused.
  write(first, second);
  ASSERT_EQ(::rename((root + "/a.bin").c_str(), dir.File("elsewhere").c_str()), 0);
  ASSERT_EQ(::symlink(dir.File("elsewhere").c_str(), (root + "/a.bin").c_str()), 0);
  auto link = CompareWithTree(tree, key, {root, "", {}});
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link->mismatches.size(), 1u);
}

}  // namespace
}  // namespace cairn::restore
