#include "lib/chunk/extent.h"

#include <gtest/gtest.h>

#include <vector>

namespace cairn::chunk {
namespace {

TEST(ExtentOptionsTest, Sanitize) {
  ExtentOptions o;
  ASSERT_TRUE(o.Sanitize().ok());
  EXPECT_EQ(o.extent_size, kDefaultExtentSize);
  for (uint32_t bad : {1000u, 32u * 1024, 3u * 1024 * 1024, 1u << 31}) {
    ExtentOptions b{bad};
    EXPECT_EQ(b.Sanitize().code(), StatusCode::kInvalidArgument) << bad;
  }
  ExtentOptions small{64 * 1024};
  EXPECT_TRUE(small.Sanitize().ok());
}

TEST(ExtentRangeTest, CoversTheDeviceExactlyWithAlignedExtents) {
  const uint32_t es = 64 * 1024;
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, uint64_t{es - 1}, uint64_t{es}, uint64_t{es} + 1,
                        uint64_t{es} * 10 - 1, uint64_t{es} * 10, uint64_t{es} * 10 + 4096}) {
    SCOPED_TRACE(size);
    ExtentRange range(size, es);
    std::vector<Extent> got(range.begin(), range.end());
    ASSERT_EQ(got.size(), range.size());
    EXPECT_EQ(got.size(), (size + es - 1) / es);
    uint64_t next = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].offset, next);
      EXPECT_EQ(got[i].offset % es, 0u);
      EXPECT_GT(got[i].length, 0u);
      if (i + 1 < got.size()) {
        EXPECT_EQ(got[i].length, es);
      }
      EXPECT_EQ(range.IndexOf(got[i].offset), i);
      EXPECT_EQ(range.IndexOf(got[i].offset + got[i].length - 1), i);
      next += got[i].length;
    }
    EXPECT_EQ(next, size);
  }
}

TEST(ExtentRangeTest, HugeDeviceAtDefaultSize) {
  const uint64_t size = (uint64_t{16} << 40) + 12345;  // 16 TiB and a bit
  ExtentRange range(size, kDefaultExtentSize);
  EXPECT_EQ(range.size(), (uint64_t{16} << 40) / kDefaultExtentSize + 1);
  const Extent last = range[range.size() - 1];
  EXPECT_EQ(last.offset, uint64_t{16} << 40);
  EXPECT_EQ(last.length, 12345u);
}

TEST(IsAllZeroTest, FindsANonzeroByteAtEveryPosition) {
  std::vector<uint8_t> buf(300 + 8, 0);
  for (size_t misalign = 0; misalign < 8; ++misalign) {
    for (size_t len = 0; len <= 300; len += (len < 70 ? 1 : 23)) {
      ByteView view(buf.data() + misalign, len);
      ASSERT_TRUE(IsAllZero(view));
      for (size_t pos = 0; pos < len; ++pos) {
        for (uint8_t v : {uint8_t{1}, uint8_t{0x80}}) {
          buf[misalign + pos] = v;
          ASSERT_FALSE(IsAllZero(view)) << misalign << " " << len << " " << pos;
          buf[misalign + pos] = 0;
        }
      }
    }
  }
  // A nonzero byte just outside the view does not count.
  buf[7] = 1;
  buf[8 + 100] = 1;
  EXPECT_TRUE(IsAllZero(ByteView(buf.data() + 8, 100)));
}

TEST(IsAllZeroTest, WholeExtent) {
  std::vector<uint8_t> extent(kDefaultExtentSize, 0);
  EXPECT_TRUE(IsAllZero(extent));
  extent.back() = 1;
  EXPECT_FALSE(IsAllZero(extent));
}

}  // namespace
}  // namespace cairn::chunk
