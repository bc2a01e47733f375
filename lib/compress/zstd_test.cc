#include "lib/compress/zstd.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace cairn::compress {
namespace {

template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    std::abort();
  }
  return std::move(r).value();
}

// Deterministic prose-like text: words from a small vocabulary, so it
// compresses like source code or documents do.
Bytes TextLike(size_t n, uint32_t seed = 1) {
  static const char* kWords[] = {"the",    "backup", "chunk",  "vault",    "agent", "restore",
                                 "pack",   "index",  "return", "status",   "const", "struct",
                                 "size_t", "if",     "for",    "snapshot", "key",   "department"};
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n + 16);
  while (s.size() < n) {
    s += kWords[rng() % std::size(kWords)];
    s += (rng() % 11 == 0) ? "\n" : " ";
  }
  s.resize(n);
  return Bytes(s.begin(), s.end());
}

Bytes RandomBytes(size_t n, uint32_t seed = 2) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

Compressor MakeCompressor(int level, double ratio = 1.0 / 32) {
  CompressorOptions o;
  o.level = level;
  o.min_saving_ratio = ratio;
  return Must(Compressor::Create(o));
}

// A frame without a content size (streaming API), as a hostile writer
// could produce.
Bytes FrameWithoutContentSize(ByteView data) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
  Bytes out(ZSTD_compressBound(data.size()) + 64);
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  ZSTD_inBuffer ib{data.data(), data.size(), 0};
  size_t r = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
  EXPECT_EQ(r, 0u);
  ZSTD_freeCCtx(c);
  out.resize(ob.pos);
  return out;
}

TEST(CompressorOptionsTest, SanitizeFillsDefaultsAndRejectsBadValues) {
  CompressorOptions o;
  EXPECT_TRUE(o.Sanitize().ok());
  EXPECT_EQ(o.level, 3);
  EXPECT_DOUBLE_EQ(o.min_saving_ratio, 1.0 / 32);
  o.level = 0;
  EXPECT_TRUE(o.Sanitize().ok());
  EXPECT_EQ(o.level, 3);
  for (int bad : {20, 22, 100, std::numeric_limits<int>::min()}) {
    CompressorOptions b;
    b.level = bad;
    EXPECT_EQ(b.Sanitize().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(Compressor::Create(b).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  for (double bad : {-0.1, 1.0, 2.0, std::nan("")}) {
    CompressorOptions b;
    b.min_saving_ratio = bad;
    EXPECT_EQ(b.Sanitize().code(), StatusCode::kInvalidArgument) << bad;
  }
  CompressorOptions fast;
  fast.level = -5;
  EXPECT_TRUE(fast.Sanitize().ok());
}

class ZstdLevelTest : public ::testing::TestWithParam<int> {};

TEST_P(ZstdLevelTest, TextRoundTripsAndCompresses) {
  Compressor c = MakeCompressor(GetParam());
  Decompressor d = Must(Decompressor::Create());
  // Several sizes through the same contexts: reuse must not leak state.
  for (size_t n : {size_t{1}, size_t{100}, size_t{4096}, size_t{64 * 1024}, size_t{1 << 20}}) {
    const Bytes text = TextLike(n, static_cast<uint32_t>(n));
    Bytes frame;
    Result<bool> store = c.Compress(text, &frame);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    if (n >= 4096) {
      EXPECT_TRUE(*store) << n;
      EXPECT_LT(frame.size(), text.size() / 2) << n;
    }
    if (!*store) continue;  // tiny inputs stay raw
    Bytes back;
    ASSERT_TRUE(d.Decompress(frame, text.size(), &back).ok()) << n;
    EXPECT_EQ(back, text) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, ZstdLevelTest, ::testing::Values(1, 3));

// Level 3 is zstd's level 3 with 2^14-entry hash and chain tables: the
// frames are exactly what zstd writes with those parameters, and not what
// it writes at its own level 3 (CompressorOptions::level).
TEST(ZstdTest, LevelThreeUsesSmallerTables) {
  const Bytes text = TextLike(1 << 20, 7);
  Compressor c = MakeCompressor(3);
  Bytes ours;
  ASSERT_TRUE(*c.Compress(text, &ours));
  auto zstd_frame = [&](int table_log) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, table_log);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_chainLog, table_log);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    Bytes out(ZSTD_compressBound(text.size()));
    const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), text.data(), text.size());
    ZSTD_freeCCtx(cctx);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
  };
  EXPECT_EQ(ours, zstd_frame(14));
  EXPECT_NE(ours, zstd_frame(0));  // zstd's own tables
}

TEST(ZstdTest, RandomDataIsStoredRaw) {
  Compressor c = MakeCompressor(3);
  for (size_t n : {size_t{10}, size_t{4096}, size_t{1 << 20}}) {
    Bytes frame;
    Result<bool> store = c.Compress(RandomBytes(n), &frame);
    ASSERT_TRUE(store.ok());
    EXPECT_FALSE(*store) << n;
  }
}

TEST(ZstdTest, MinSavingRatioDecides) {
  // Half random, half zeros: compresses to a little over 50%.
  Bytes data = RandomBytes(64 * 1024);
  std::fill(data.begin() + data.size() / 2, data.end(), 0);
  Bytes frame;
  EXPECT_TRUE(*MakeCompressor(3, 0.4).Compress(data, &frame));
  EXPECT_FALSE(*MakeCompressor(3, 0.6).Compress(data, &frame));
  // Ratio 0: store whenever not larger than the input.
  EXPECT_TRUE(*MakeCompressor(3, 0.0).Compress(data, &frame));
}

TEST(ZstdTest, EmptyInput) {
  Compressor c = MakeCompressor(3);
  Bytes frame{1, 2, 3};
  Result<bool> store = c.Compress(ByteView(), &frame);
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE(*store);  // nothing beats nothing
  // A valid frame of empty content decompresses to zero bytes.
  Bytes empty_frame(ZSTD_compressBound(0));
  empty_frame.resize(ZSTD_compress(empty_frame.data(), empty_frame.size(), nullptr, 0, 3));
  Decompressor d = Must(Decompressor::Create());
  Bytes out{9};
  EXPECT_TRUE(d.Decompress(empty_frame, 0, &out).ok());
  EXPECT_TRUE(out.empty());
  // No bytes at all is not a frame.
  EXPECT_EQ(d.Decompress(ByteView(), 0, &out).code(), StatusCode::kCorruption);
}

class ZstdCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    text_ = TextLike(200 * 1024);
    ASSERT_TRUE(*compressor_.Compress(text_, &frame_));
  }
  Status Decompress(ByteView frame, size_t expected) {
    Status s = decompressor_.Decompress(frame, expected, &out_);
    if (!s.ok()) {
      EXPECT_TRUE(out_.empty()) << "output left behind on error";
    }
    return s;
  }
  Compressor compressor_ = MakeCompressor(3);
  Decompressor decompressor_ = Must(Decompressor::Create());
  Bytes text_, frame_, out_;
};

TEST_F(ZstdCorruptionTest, TruncatedFrameIsCorruption) {
  for (size_t len :
       {size_t{0}, size_t{1}, size_t{4}, size_t{10}, frame_.size() / 2, frame_.size() - 1}) {
    EXPECT_EQ(Decompress(ByteView(frame_).first(len), text_.size()).code(), StatusCode::kCorruption)
        << len;
  }
  // The decompressor still works afterwards.
  ASSERT_TRUE(Decompress(frame_, text_.size()).ok());
  EXPECT_EQ(out_, text_);
}

TEST_F(ZstdCorruptionTest, GarbageAndTrailingBytesAreCorruption) {
  EXPECT_EQ(Decompress(RandomBytes(1000), text_.size()).code(), StatusCode::kCorruption);
  EXPECT_EQ(Decompress(text_, text_.size()).code(), StatusCode::kCorruption);
  Bytes trailing = frame_;
  trailing.push_back(0);
  EXPECT_EQ(Decompress(trailing, text_.size()).code(), StatusCode::kCorruption);
  Bytes two = frame_;
  two.insert(two.end(), frame_.begin(), frame_.end());
  EXPECT_EQ(Decompress(two, text_.size() * 2).code(), StatusCode::kCorruption);
  // Damaged block headers (the magic and frame header are the first bytes).
  Bytes bad_magic = frame_;
  bad_magic[0] ^= 0xff;
  EXPECT_EQ(Decompress(bad_magic, text_.size()).code(), StatusCode::kCorruption);
}

TEST_F(ZstdCorruptionTest, WrongExpectedSizeIsCorruption) {
  for (size_t expected : {size_t{0}, text_.size() - 1, text_.size() + 1, text_.size() * 2}) {
    EXPECT_EQ(Decompress(frame_, expected).code(), StatusCode::kCorruption) << expected;
  }
}

TEST_F(ZstdCorruptionTest, BombsAreRefused) {
  // 64 MiB of zeros compresses to a few KiB. The frame declares its size.
  const Bytes zeros(64 << 20, 0);
  Bytes bomb;
  ASSERT_TRUE(*compressor_.Compress(zeros, &bomb));
  ASSERT_LT(bomb.size(), 64 * 1024u);
  EXPECT_EQ(Decompress(bomb, 4096).code(), StatusCode::kCorruption);

  // Same bomb without a declared size: decompression must stop at the limit.
  const Bytes sneaky = FrameWithoutContentSize(zeros);
  ASSERT_EQ(ZSTD_getFrameContentSize(sneaky.data(), sneaky.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  Status s = Decompress(sneaky, 4096);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("more than"), std::string::npos) << s.ToString();

  // An honest frame without a declared size is still accepted at its size,
  // and rejected when it is shorter than expected.
  const Bytes small = TextLike(10000);
  const Bytes honest = FrameWithoutContentSize(small);
  ASSERT_TRUE(Decompress(honest, small.size()).ok());
  EXPECT_EQ(out_, small);
  EXPECT_EQ(Decompress(honest, small.size() + 1).code(), StatusCode::kCorruption);
}

TEST_F(ZstdCorruptionTest, DecompressIntoCallerBuffer) {
  Bytes buf(text_.size());
  ASSERT_TRUE(decompressor_.DecompressInto(frame_, buf).ok());
  EXPECT_EQ(buf, text_);
  Bytes small(100);
  EXPECT_EQ(decompressor_.DecompressInto(frame_, small).code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace cairn::compress
