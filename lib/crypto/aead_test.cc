#include "lib/crypto/aead.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <thread>
#include <vector>

namespace cairn::crypto {
namespace {

Bytes Hex(std::string_view h) { return *FromHex(h); }

SecretKey RandomKey() { return *SecretKey::Generate(); }

// Unwraps a Result holding a move-only value; a failure ends the test binary
// loudly rather than touching an empty value.
template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    std::abort();
  }
  return std::move(r).value();
}

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 29);
  return b;
}

struct Sealed {
  Nonce nonce;
  Bytes ct;  // ciphertext || tag
};

Sealed MustSeal(Sealer& sealer, ByteView aad, ByteView pt) {
  Sealed s;
  s.ct.resize(pt.size() + kTagSize);
  Result<Nonce> n = sealer.Seal(aad, pt, s.ct);
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  if (n.ok()) s.nonce = *n;
  return s;
}

// McGrew & Viega GCM test case 16 (AES-256, 96-bit IV, with AAD). The IV
// cafebabe facedbaddecaf888 is reached through the documented nonce layout:
// prefix u32 LE = 0xbebafeca, counter u64 LE = 0x88f8cadeaddbcefa.
TEST(AeadTest, KnownAnswerAndNonceLayout) {
  SecretKey key = *SecretKey::FromBytes(
      Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"));
  const Bytes pt = Hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6"
      "b525b16aedf5aa0de657ba637b39");
  const Bytes aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string want =
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056"
      "828838c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b";
  Result<Sealer> sealer = Sealer::CreateForTest(key, 0xbebafeca, 0x88f8cadeaddbcefaull);
  ASSERT_TRUE(sealer.ok()) << sealer.status().ToString();
  Sealed s = MustSeal(*sealer, aad, pt);
  EXPECT_EQ(ToHex(ByteView(s.nonce.data(), s.nonce.size())), "cafebabefacedbaddecaf888");
  EXPECT_EQ(ToHex(s.ct), want);
  EXPECT_EQ(sealer->nonces_used(), 1u);

  Result<Opener> opener = Opener::Create(key);
  ASSERT_TRUE(opener.ok());
  Bytes out(pt.size());
  ASSERT_TRUE(opener->Open(s.nonce, aad, s.ct, out).ok());
  EXPECT_EQ(out, pt);
}

TEST(AeadTest, RoundTripVariousSizes) {
  SecretKey key = RandomKey();
  Sealer sealer = Must(Sealer::Create(key, 7));
  Opener opener = Must(Opener::Create(key));
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{4096}, size_t{1} << 20}) {
    const Bytes pt = Pattern(n, static_cast<uint8_t>(n));
    const Bytes aad = Pattern(n % 40, 3);
    Sealed s = MustSeal(sealer, aad, pt);
    if (n > 0) {
      EXPECT_FALSE(std::equal(pt.begin(), pt.end(), s.ct.begin())) << "not encrypted, n=" << n;
    }
    Bytes out(n);
    Status st = opener.Open(s.nonce, aad, s.ct, out);
    ASSERT_TRUE(st.ok()) << n << ": " << st.ToString();
    EXPECT_EQ(out, pt) << n;
  }
  EXPECT_EQ(sealer.nonces_used(), 7u);
  EXPECT_EQ(sealer.nonce_prefix(), 7u);
}

TEST(AeadTest, InPlaceSealAndOpen) {
  SecretKey key = RandomKey();
  Sealer sealer = Must(Sealer::Create(key));
  Opener opener = Must(Opener::Create(key));
  const Bytes pt = Pattern(1000, 9);
  Bytes buf = pt;
  buf.resize(pt.size() + kTagSize);
  Result<Nonce> nonce = sealer.Seal(ByteView(), ByteView(buf).first(pt.size()), buf);
  ASSERT_TRUE(nonce.ok()) << nonce.status().ToString();
  ASSERT_TRUE(opener.Open(*nonce, ByteView(), buf, MutableByteView(buf).first(pt.size())).ok());
  EXPECT_TRUE(std::equal(pt.begin(), pt.end(), buf.begin()));
}

TEST(AeadTest, AnyFlippedBitIsCorruption) {
  SecretKey key = RandomKey();
  Sealer sealer = Must(Sealer::Create(key));
  Opener opener = Must(Opener::Create(key));
  const Bytes pt = Pattern(64, 1);
  const Bytes aad = Pattern(24, 2);
  const Sealed s = MustSeal(sealer, aad, pt);
  Bytes out(pt.size());
  ASSERT_TRUE(opener.Open(s.nonce, aad, s.ct, out).ok());

  auto expect_corrupt = [&](const Nonce& nonce, ByteView a, ByteView ct, const char* what,
                            size_t bit) {
    Bytes o(pt.size(), 0xee);
    Status st = opener.Open(nonce, a, ct, o);
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << what << " bit " << bit;
    EXPECT_EQ(o, Bytes(pt.size(), 0)) << what << " bit " << bit << ": out not zeroed";
  };
  // Every bit of ciphertext and tag.
  for (size_t bit = 0; bit < s.ct.size() * 8; ++bit) {
    Bytes ct = s.ct;
    ct[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    expect_corrupt(s.nonce, aad, ct, bit < pt.size() * 8 ? "ciphertext" : "tag", bit);
  }
  for (size_t bit = 0; bit < aad.size() * 8; ++bit) {
    Bytes a = aad;
    a[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    expect_corrupt(s.nonce, a, s.ct, "aad", bit);
  }
  for (size_t bit = 0; bit < kNonceSize * 8; ++bit) {
    Nonce n = s.nonce;
    n[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    expect_corrupt(n, aad, s.ct, "nonce", bit);
  }
  // Dropped or added AAD, truncation.
  expect_corrupt(s.nonce, ByteView(), s.ct, "empty aad", 0);
  Bytes short_ct(s.ct.begin(), s.ct.end() - 1);
  Bytes o(short_ct.size() - kTagSize);
  EXPECT_EQ(opener.Open(s.nonce, aad, short_ct, o).code(), StatusCode::kCorruption);
  Bytes tiny(kTagSize - 1, 0);
  EXPECT_EQ(opener.Open(s.nonce, aad, tiny, MutableByteView()).code(), StatusCode::kCorruption);
  // The opener still works after all those failures.
  EXPECT_TRUE(opener.Open(s.nonce, aad, s.ct, out).ok());
  EXPECT_EQ(out, pt);
}

TEST(AeadTest, WrongKeyIsCorruption) {
  SecretKey key = RandomKey();
  Sealer sealer = Must(Sealer::Create(key));
  const Bytes pt = Pattern(100, 5);
  const Sealed s = MustSeal(sealer, ByteView(), pt);
  Opener wrong = Must(Opener::Create(RandomKey()));
  Bytes out(pt.size());
  EXPECT_EQ(wrong.Open(s.nonce, ByteView(), s.ct, out).code(), StatusCode::kCorruption);
  EXPECT_EQ(out, Bytes(pt.size(), 0));
}

TEST(AeadTest, SizeMismatchesAreInvalidArgument) {
  SecretKey key = RandomKey();
  Sealer sealer = Must(Sealer::Create(key));
  Opener opener = Must(Opener::Create(key));
  const Bytes pt(100, 1);
  for (size_t out_size : {size_t{0}, size_t{100}, size_t{115}, size_t{117}}) {
    Bytes out(out_size);
    EXPECT_EQ(sealer.Seal(ByteView(), pt, out).status().code(), StatusCode::kInvalidArgument)
        << out_size;
  }
  EXPECT_EQ(sealer.nonces_used(), 0u) << "a rejected call must not consume a nonce";

  const Sealed s = MustSeal(sealer, ByteView(), pt);
  for (size_t out_size : {size_t{0}, size_t{99}, size_t{101}, size_t{116}}) {
    Bytes out(out_size);
    EXPECT_EQ(opener.Open(s.nonce, ByteView(), s.ct, out).code(), StatusCode::kInvalidArgument)
        << out_size;
  }
  // Partial overlap of input and output.
  Bytes buf(300);
  EXPECT_EQ(
      sealer.Seal(ByteView(), ByteView(buf).subspan(0, 100), MutableByteView(buf).subspan(50, 116))
          .status()
          .code(),
      StatusCode::kInvalidArgument);
}

TEST(AeadTest, NoncesNeverRepeatAcrossThreads) {
  SecretKey key = RandomKey();
  Sealer sealer = Must(Sealer::Create(key, 0x01020304));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250000;
  std::vector<std::vector<Nonce>> per_thread(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = per_thread[t];
      mine.reserve(kPerThread);
      const uint8_t pt[8] = {1, 2, 3, 4, 5, 6, 7, static_cast<uint8_t>(t)};
      uint8_t out[sizeof(pt) + kTagSize];
      for (int i = 0; i < kPerThread; ++i) {
        Result<Nonce> n = sealer.Seal(ByteView(), pt, out);
        if (!n.ok()) {
          ++failures[t];
          continue;
        }
        mine.push_back(*n);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<Nonce> all;
  all.reserve(size_t{kThreads} * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0);
    all.insert(all.end(), per_thread[t].begin(), per_thread[t].end());
  }
  ASSERT_EQ(all.size(), size_t{kThreads} * kPerThread);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a nonce repeated";
  EXPECT_EQ(sealer.nonces_used(), uint64_t{kThreads} * kPerThread);
  for (const Nonce& n : all) {
    ASSERT_EQ(DecodeFixed32(n.data()), 0x01020304u) << "prefix lost";
  }
}

TEST(AeadTest, CounterExhaustionFailsInsteadOfWrapping) {
  SecretKey key = RandomKey();
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  Sealer sealer = Must(Sealer::CreateForTest(key, 9, kMax - 3));
  Opener opener = Must(Opener::Create(key));
  const Bytes pt(10, 0x33);
  std::vector<uint64_t> counters;
  for (int i = 0; i < 3; ++i) {
    Sealed s = MustSeal(sealer, ByteView(), pt);
    counters.push_back(DecodeFixed64(s.nonce.data() + 4));
    Bytes out(pt.size());
    EXPECT_TRUE(opener.Open(s.nonce, ByteView(), s.ct, out).ok());
  }
  EXPECT_EQ(counters, (std::vector<uint64_t>{kMax - 3, kMax - 2, kMax - 1}));
  for (int i = 0; i < 5; ++i) {
    Bytes out(pt.size() + kTagSize, 0xee);
    Result<Nonce> n = sealer.Seal(ByteView(), pt, out);
    ASSERT_FALSE(n.ok()) << "sealed with counter " << DecodeFixed64(n->data() + 4);
    EXPECT_EQ(n.status().code(), StatusCode::kNoSpace);
    EXPECT_EQ(out, Bytes(out.size(), 0));
  }
  EXPECT_EQ(sealer.nonces_used(), 3u);
}

TEST(AeadTest, ExhaustionUnderContentionNeverWraps) {
  SecretKey key = RandomKey();
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  constexpr uint64_t kLeft = 1000;
  Sealer sealer = Must(Sealer::CreateForTest(key, 0, kMax - kLeft));
  std::vector<std::vector<uint64_t>> per_thread(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      uint8_t out[kTagSize];
      for (int i = 0; i < 1000; ++i) {
        Result<Nonce> n = sealer.Seal(ByteView(), ByteView(), out);
        if (n.ok()) per_thread[t].push_back(DecodeFixed64(n->data() + 4));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), kLeft);
  EXPECT_EQ(all.front(), kMax - kLeft);
  EXPECT_EQ(all.back(), kMax - 1);
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

TEST(AeadTest, SealerOutlivesKeyAndMoves) {
  std::optional<Sealer> sealer;
  Bytes key_bytes(kKeySize, 0x44);
  {
    SecretKey key = *SecretKey::FromBytes(key_bytes);
    sealer.emplace(Must(Sealer::Create(key)));
  }
  Sealer moved = std::move(*sealer);
  const Bytes pt(50, 1);
  Sealed s = MustSeal(moved, ByteView(), pt);
  Opener opener = Must(Opener::Create(*SecretKey::FromBytes(key_bytes)));
  Bytes out(pt.size());
  EXPECT_TRUE(opener.Open(s.nonce, ByteView(), s.ct, out).ok());
  EXPECT_EQ(out, pt);
}

}  // namespace
}  // namespace cairn::crypto
