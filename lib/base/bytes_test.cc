#include "lib/base/bytes.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(BytesTest, HexRoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(ToHex(b), "0001abff");
  auto back = FromHex("0001ABff");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
  EXPECT_FALSE(FromHex("abc").ok());
  EXPECT_FALSE(FromHex("zz").ok());
}

TEST(BytesTest, ReaderNeverReadsPastEnd) {
  Bytes buf;
  ByteWriter w(&buf);
  w.PutU32(0xdeadbeef);
  w.PutU16(7);
  ByteReader r(buf);
  uint32_t a;
  uint64_t big;
  ASSERT_TRUE(r.ReadU32(&a));
  EXPECT_EQ(a, 0xdeadbeefu);
  EXPECT_FALSE(r.ReadU64(&big));  // only 2 bytes left
  EXPECT_EQ(r.remaining(), 2u);
  ByteView v;
  EXPECT_FALSE(r.ReadView(3, &v));
  EXPECT_TRUE(r.ReadView(2, &v));
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(BytesTest, ForEachPrefetchedCoversTheInputInOrder) {
  Bytes data(10000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  for (size_t size :
       {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{10000}}) {
    Bytes seen;
    size_t calls = 0;
    ForEachPrefetched(ByteView(data).first(size), 4096, [&](ByteView piece) {
      EXPECT_FALSE(piece.empty());
      EXPECT_LE(piece.size(), 4096u);
      seen.insert(seen.end(), piece.begin(), piece.end());
      ++calls;
    });
    EXPECT_EQ(seen, Bytes(data.begin(), data.begin() + size)) << size;
    EXPECT_EQ(calls, (size + 4095) / 4096) << size;
  }
}

TEST(BytesTest, HumanDuration) {
  EXPECT_EQ(HumanDuration(7.2), "0:07");
  EXPECT_EQ(HumanDuration(242), "4:02");
  EXPECT_EQ(HumanDuration(3909), "1:05:09");
  EXPECT_EQ(HumanDuration(-1), "0:00");
  EXPECT_EQ(HumanDuration(1e12), "0:00");
}

TEST(BytesTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3ull << 30), "3.0 GiB");
}

}  // namespace
}  // namespace cairn
