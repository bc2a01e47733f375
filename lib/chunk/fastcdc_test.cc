#include "lib/chunk/fastcdc.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "lib/base/splitmix.h"
#include "lib/chunk/test_random.h"

namespace cairn::chunk {
namespace {

using testing::TestRng;

Chunker MakeChunker(uint32_t avg, uint32_t level = kDefaultNormalizationLevel,
                    uint64_t seed = kDefaultGearSeed) {
  ChunkerOptions o;
  o.avg_size = avg;
  o.normalization_level = level;
  o.gear_seed = seed;
  auto c = Chunker::Create(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

// Multiset of chunk fingerprints.
std::map<uint64_t, int> ChunkHashes(ByteView data, const std::vector<size_t>& lengths) {
  std::map<uint64_t, int> hashes;
  size_t pos = 0;
  for (size_t len : lengths) {
    ++hashes[XXH3_64bits(data.data() + pos, len)];
    pos += len;
  }
  return hashes;
}

// Chunks of `b` that do not occur in `a` (multiset difference).
int NewChunks(const std::map<uint64_t, int>& a, const std::map<uint64_t, int>& b) {
  int fresh = 0;
  for (const auto& [h, n] : b) {
    auto it = a.find(h);
    fresh += std::max(0, n - (it == a.end() ? 0 : it->second));
  }
  return fresh;
}

std::vector<size_t> StreamSplit(ByteView data, const Chunker& chunker,
                                const std::function<size_t()>& next_piece) {
  std::vector<size_t> lengths;
  uint64_t expect_offset = 0;
  StreamChunker stream(&chunker, [&](uint64_t offset, ByteView chunk) {
    EXPECT_EQ(offset, expect_offset);
    expect_offset += chunk.size();
    lengths.push_back(chunk.size());
    return Status::OK();
  });
  while (!data.empty()) {
    const size_t n = std::min(data.size(), next_piece());
    EXPECT_TRUE(stream.Write(data.first(n)).ok());
    data = data.subspan(n);
  }
  EXPECT_TRUE(stream.Finish().ok());
  return lengths;
}

TEST(ChunkerOptionsTest, SanitizeFillsDefaults) {
  ChunkerOptions o;
  ASSERT_TRUE(o.Sanitize().ok());
  EXPECT_EQ(o.avg_size, kDefaultAvgChunk);
  EXPECT_EQ(o.min_size, kDefaultMinChunk);
  EXPECT_EQ(o.max_size, kDefaultMaxChunk);

  ChunkerOptions only_avg;
  only_avg.avg_size = 64 * 1024;
  ASSERT_TRUE(only_avg.Sanitize().ok());
  EXPECT_EQ(only_avg.min_size, 16u * 1024);
  EXPECT_EQ(only_avg.max_size, 256u * 1024);
}

TEST(ChunkerOptionsTest, SanitizeRejectsBadSizes) {
  auto bad = [](uint32_t min, uint32_t avg, uint32_t max, uint32_t level = 2) {
    ChunkerOptions o;
    o.min_size = min;
    o.avg_size = avg;
    o.max_size = max;
    o.normalization_level = level;
    Status s = o.Sanitize();
    return !s.ok() && s.code() == StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(bad(8, 4096, 16384));          // min below the floor
  EXPECT_TRUE(bad(8192, 4096, 16384));       // min > avg
  EXPECT_TRUE(bad(1024, 16384, 16384));      // avg == max
  EXPECT_TRUE(bad(1024, 4096, 128u << 20));  // max above the ceiling
  EXPECT_TRUE(bad(1024, 4096, 16384, 4));    // level out of range
  EXPECT_FALSE(bad(1024, 4096, 16384));
}

TEST(ChunkerTest, FindBoundaryContract) {
  const Chunker c = MakeChunker(8 * 1024);
  const auto& o = c.options();
  TestRng rng(1);
  Bytes data = rng.RandomBytes(o.max_size * 2);
  EXPECT_EQ(c.FindBoundary({}, true), 0u);
  EXPECT_EQ(c.FindBoundary({}, false), 0u);
  // Shorter than min: needs more unless at EOF.
  EXPECT_EQ(c.FindBoundary(ByteView(data).first(o.min_size), false), 0u);
  EXPECT_EQ(c.FindBoundary(ByteView(data).first(o.min_size), true), o.min_size);
  const size_t cut = c.FindBoundary(data, false);
  ASSERT_GT(cut, o.min_size);
  ASSERT_LE(cut, o.max_size);
  // A prefix that holds the cut gives the same cut; one that stops before it
  // asks for more.
  EXPECT_EQ(c.FindBoundary(ByteView(data).first(cut), false), cut);
  EXPECT_EQ(c.FindBoundary(ByteView(data).first(cut - 1), false), 0u);
  EXPECT_EQ(c.FindBoundary(ByteView(data).first(cut - 1), true), cut - 1);

  // Data with no content boundary is forced at max_size.
  Bytes zeros(o.max_size * 3, 0);
  const size_t zcut = c.FindBoundary(zeros, false);
  EXPECT_GT(zcut, 0u);
  EXPECT_LE(zcut, o.max_size);
}

// One byte inserted at the front of 64 MiB of random data changes at most
// two chunks: the one holding the insertion and possibly its neighbour.
TEST(ChunkerTest, InsertionChangesAtMostTwoChunks) {
  for (uint32_t avg : {16u * 1024, kDefaultAvgChunk}) {
    SCOPED_TRACE(avg);
    const Chunker c = MakeChunker(avg);
    TestRng rng(2);
    Bytes a = rng.RandomBytes(64 << 20);
    Bytes b;
    b.reserve(a.size() + 1);
    b.push_back(0x5a);
    b.insert(b.end(), a.begin(), a.end());
    const auto la = SplitAll(a, c);
    const auto lb = SplitAll(b, c);
    ASSERT_GT(la.size(), 50u);
    EXPECT_LE(NewChunks(ChunkHashes(a, la), ChunkHashes(b, lb)), 2);

    // And in the middle: overwrite 8 bytes and insert 100 at 40 MiB.
    Bytes m = a;
    for (int i = 0; i < 8; ++i) m[(40 << 20) + i] ^= 0xff;
    Bytes ins = rng.RandomBytes(100);
    m.insert(m.begin() + (40 << 20), ins.begin(), ins.end());
    EXPECT_LE(NewChunks(ChunkHashes(a, la), ChunkHashes(m, SplitAll(m, c))), 2);
  }
}

// Streams `total` random bytes through a StreamChunker and checks the mean
// and the bounds of chunk lengths.
void CheckMean(const Chunker& c, uint64_t total, uint64_t seed) {
  const auto& o = c.options();
  TestRng rng(seed);
  uint64_t chunks = 0, bytes = 0, last_len = 0, below_min = 0, above_max = 0;
  StreamChunker stream(&c, [&](uint64_t, ByteView chunk) {
    if (chunks > 0) {  // check the previous chunk: only the last may be short
      below_min += last_len < o.min_size;
    }
    above_max += chunk.size() > o.max_size;
    last_len = chunk.size();
    ++chunks;
    bytes += chunk.size();
    return Status::OK();
  });
  Bytes piece(1 << 20);
  for (uint64_t done = 0; done < total; done += piece.size()) {
    rng.Fill(piece.data(), piece.size());
    ASSERT_TRUE(stream.Write(piece).ok());
  }
  ASSERT_TRUE(stream.Finish().ok());
  ASSERT_EQ(bytes, total);
  EXPECT_EQ(below_min, 0u);
  EXPECT_EQ(above_max, 0u);
  const double mean = static_cast<double>(bytes) / chunks;
  EXPECT_NEAR(mean / o.avg_size, 1.0, 0.10)
      << "mean " << mean << " target " << o.avg_size << " chunks " << chunks << " normal "
      << c.normal_size() << " bits " << c.strict_bits() << "/" << c.loose_bits();
}

TEST(ChunkerTest, MeanOverOneGiBMatchesTarget) {
  CheckMean(MakeChunker(kDefaultAvgChunk), uint64_t{1} << 30, 3);
}

TEST(ChunkerTest, MeanMatchesTargetForCandidatesAndLevels) {
  for (uint32_t avg : {64u << 10, 128u << 10, 512u << 10, 1u << 20}) {
    SCOPED_TRACE(avg);
    CheckMean(MakeChunker(avg), uint64_t{256} << 20, avg);
  }
  // Non-power-of-two target and the other normalisation levels.
  for (uint32_t level : {1u, 2u, 3u}) {
    SCOPED_TRACE(level);
    CheckMean(MakeChunker(48 * 1024, level), uint64_t{128} << 20, level);
  }
}

TEST(ChunkerTest, CalibratedModelIsCloseToTarget) {
  for (uint32_t avg : {4096u, 65536u, 100000u, kDefaultAvgChunk, 1u << 20}) {
    const Chunker c = MakeChunker(avg);
    EXPECT_NEAR(c.ExpectedMeanChunk() / avg, 1.0, 0.01) << avg;
  }
}

TEST(StreamChunkerTest, SameBoundariesAsSplitAllForAnyPieceSizes) {
  TestRng rng(4);
  Bytes data = rng.RandomBytes(24 << 20);
  for (uint32_t avg : {8u * 1024, kDefaultAvgChunk}) {
    SCOPED_TRACE(avg);
    const Chunker c = MakeChunker(avg);
    const auto whole = SplitAll(data, c);
    ASSERT_EQ(std::accumulate(whole.begin(), whole.end(), size_t{0}), data.size());
    // 1-byte pieces over a prefix (slow path), the rest with other sizes.
    ByteView prefix = ByteView(data).first(3 << 20);
    EXPECT_EQ(StreamSplit(prefix, c, [] { return size_t{1}; }), SplitAll(prefix, c));
    EXPECT_EQ(StreamSplit(data, c, [] { return size_t{4095}; }), whole);
    EXPECT_EQ(StreamSplit(data, c, [] { return size_t{1} << 20; }), whole);
    EXPECT_EQ(StreamSplit(data, c, [] { return size_t{5} << 20; }), whole);
    TestRng pieces(5);
    EXPECT_EQ(StreamSplit(data, c, [&] { return 1 + pieces.Uniform(3 << 20); }), whole);
    EXPECT_EQ(StreamSplit(data, c, [&] { return 1 + pieces.Uniform(5000); }), whole);
  }
}

TEST(StreamChunkerTest, SinkErrorStopsTheStream) {
  const Chunker c = MakeChunker(8 * 1024);
  TestRng rng(6);
  Bytes data = rng.RandomBytes(1 << 20);
  int calls = 0;
  StreamChunker stream(&c, [&](uint64_t, ByteView) {
    ++calls;
    return Status::IOError("disk full");
  });
  Status s = stream.Write(data);
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(stream.Write(data).code(), StatusCode::kIOError);
  EXPECT_EQ(stream.Finish().code(), StatusCode::kIOError);
  EXPECT_EQ(calls, 1);
  stream.Reset();
  EXPECT_TRUE(stream.Write({}).ok());
}

TEST(StreamChunkerTest, WriteAfterFinishFailsAndEmptyStreamHasNoChunks) {
  const Chunker c = MakeChunker(8 * 1024);
  int calls = 0;
  StreamChunker stream(&c, [&](uint64_t, ByteView) {
    ++calls;
    return Status::OK();
  });
  ASSERT_TRUE(stream.Finish().ok());
  EXPECT_EQ(calls, 0);
  Bytes one(1, 7);
  EXPECT_EQ(stream.Write(one).code(), StatusCode::kInvalidArgument);
}

TEST(ChunkerTest, SeedKeysTheBoundaries) {
  TestRng rng(7);
  Bytes data = rng.RandomBytes(16 << 20);
  const uint32_t avg = 16 * 1024;
  const auto a = SplitAll(data, MakeChunker(avg, 2, 1234));
  const auto a2 = SplitAll(data, MakeChunker(avg, 2, 1234));
  const auto b = SplitAll(data, MakeChunker(avg, 2, 1235));
  EXPECT_EQ(a, a2);
  ASSERT_NE(a, b);
  // Not just different somewhere: almost no boundary is shared.
  std::vector<size_t> ends_a, ends_b, shared;
  std::partial_sum(a.begin(), a.end(), std::back_inserter(ends_a));
  std::partial_sum(b.begin(), b.end(), std::back_inserter(ends_b));
  std::set_intersection(ends_a.begin(), ends_a.end(), ends_b.begin(), ends_b.end(),
                        std::back_inserter(shared));
  EXPECT_LT(shared.size(), ends_a.size() / 10) << shared.size() << " of " << ends_a.size();
}

// The boundaries as doc/chunking.md defines them, one byte after another:
// h = 2h + gear[byte] from min_size on, a cut where the strict mask's bits
// are zero before the normal point and the loose mask's after, forced at
// max_size. Written apart from the Chunker's loop so that a faster loop
// (unrolled, several bytes a step) is checked against it.
std::vector<size_t> ReferenceSplit(ByteView data, const Chunker& c) {
  std::array<uint64_t, 256> gear;
  uint64_t state = c.options().gear_seed;
  for (auto& g : gear) g = SplitMix64(&state);
  const uint64_t strict = ~uint64_t{0} << (64 - c.strict_bits());
  const uint64_t loose = ~uint64_t{0} << (64 - c.loose_bits());
  std::vector<size_t> lengths;
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), c.options().max_size);
    size_t len = n;
    uint64_t h = 0;
    for (size_t i = c.options().min_size; i < n; ++i) {
      h = (h << 1) + gear[data[i]];
      if ((h & (i < c.normal_size() ? strict : loose)) == 0) {
        len = i + 1;
        break;
      }
    }
    lengths.push_back(len);
    data = data.subspan(len);
  }
  return lengths;
}

TEST(ChunkerTest, BoundariesAreThoseOfTheByteAtATimeDefinition) {
  TestRng rng(11);
  const Bytes random = rng.RandomBytes(24 << 20);
  // Low-entropy data too: long runs, few distinct bytes (cuts land anywhere
  // relative to the loop's two-byte steps, and max_size is often forced).
  Bytes text(8 << 20);
  for (size_t i = 0; i < text.size(); ++i) {
    text[i] = static_cast<uint8_t>("abcab  \n"[(i * 7 + (i >> 9)) % 8]);
  }
  struct Case {
    uint32_t min, avg, max, level;
  };
  // Odd and even minimum sizes and normal points.
  for (const Case& k : {Case{0, 16 * 1024, 0, 2}, Case{4097, 16 * 1024, 65535, 1},
                        Case{0, kDefaultAvgChunk, 0, kDefaultNormalizationLevel},
                        Case{1001, 8191, 30001, 3}, Case{64, 4096, 16385, 0}}) {
    ChunkerOptions o;
    o.min_size = k.min;
    o.avg_size = k.avg;
    o.max_size = k.max;
    o.normalization_level = k.level;
    auto c = Chunker::Create(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    SCOPED_TRACE(::testing::Message()
                 << "min " << c->options().min_size << " avg " << k.avg << " max "
                 << c->options().max_size << " normal " << c->normal_size());
    for (ByteView data : {ByteView(random), ByteView(text)}) {
      const std::vector<size_t> want = ReferenceSplit(data, *c);
      EXPECT_EQ(SplitAll(data, *c), want);
      // Streamed in odd pieces, so scans resume at odd and even offsets.
      size_t turn = 0;
      EXPECT_EQ(StreamSplit(data, *c, [&] { return size_t{1} + (turn++ * 7919) % 100003; }), want);
    }
  }
}

// The default chunker's boundaries over fixed data, pinned: they decide
// which chunks a new backup shares with the ones already stored, so a change
// to them (a faster loop that cuts elsewhere) would make every department's
// next backup upload everything again.
TEST(ChunkerTest, DefaultBoundariesArePinned) {
  TestRng rng(2026);
  const Bytes data = rng.RandomBytes(32 << 20);
  const std::vector<size_t> lengths = SplitAll(data, MakeChunker(kDefaultAvgChunk));
  EXPECT_EQ(lengths.size(), 136u);
  EXPECT_EQ(XXH3_64bits(lengths.data(), lengths.size() * sizeof(size_t)), 8027210774932207136ull);
}

}  // namespace
}  // namespace cairn::chunk
