#include "lib/base/bloom_filter.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace cairn {
namespace {

Bytes Key(uint64_t i) {
  Bytes k(36);
  std::memcpy(k.data(), &i, sizeof(i));
  k[20] = static_cast<uint8_t>(i * 7);
  return k;
}

TEST(BloomFilterTest, NeverForgetsAKeyItHolds) {
  BloomFilter f(BloomFilter::SizeFor(100000, 10, 1 << 20), 7, 42);
  for (uint64_t i = 0; i < 100000; ++i) f.Add(Key(i));
  for (uint64_t i = 0; i < 100000; ++i) ASSERT_TRUE(f.MayContain(Key(i))) << i;
}

TEST(BloomFilterTest, FalsePositivesNearTheExpectedRate) {
  BloomFilter f(BloomFilter::SizeFor(100000, 10, 1 << 20), 7, 7);
  for (uint64_t i = 0; i < 100000; ++i) f.Add(Key(i));
  uint64_t fp = 0;
  for (uint64_t i = 1'000'000; i < 1'100'000; ++i) fp += f.MayContain(Key(i));
  const double rate = static_cast<double>(fp) / 100000;
  EXPECT_NEAR(rate, f.FalsePositiveRate(100000), 0.005);
  EXPECT_LT(rate, 0.015);
}

TEST(BloomFilterTest, SeedsChangeWhichKeysCollide) {
  BloomFilter a(1 << 12, 3, 1), b(1 << 12, 3, 2);
  for (uint64_t i = 0; i < 1000; ++i) {
    a.Add(Key(i));
    b.Add(Key(i));
  }
  uint64_t both = 0, either = 0;
  for (uint64_t i = 5000; i < 15000; ++i) {
    const bool x = a.MayContain(Key(i)), y = b.MayContain(Key(i));
    both += x && y;
    either += x || y;
  }
  EXPECT_GT(either, 0u);
  EXPECT_LT(both * 2, either);  // independent: a collision in one rarely repeats
}

TEST(BloomFilterTest, SizeIsCapped) {
  EXPECT_EQ(BloomFilter::SizeFor(1'000'000'000, 10, 128u << 20), (128ull << 20) * 8);
  EXPECT_EQ(BloomFilter(1, 7, 0).bits(), 64u);
}

}  // namespace
}  // namespace cairn
