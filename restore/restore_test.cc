// Unit tests of the restore library's pure parts: splitting a chunk around
// holes and resolving a snapshot name. The data path itself runs against real
// processes in tests/e2e/restore_test.sh and restore_image_test.sh.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace cairn::restore
