#include "lib/crypto/chunk_id.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "lib/crypto/sha256_lanes.h"

namespace cairn::crypto {
namespace {

// HMAC pads keys shorter than the SHA-256 block with zeros, so an RFC 4231 key
// zero-extended to 32 bytes gives the RFC's MAC. Cross-checked with
//   printf 'Hi There' | openssl dgst -sha256 -mac HMAC
//     -macopt hexkey:0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b
SecretKey PaddedKey(ByteView k) {
  Bytes padded(k.begin(), k.end());
  padded.resize(kKeySize, 0);
  return *SecretKey::FromBytes(padded);
}

std::string IdHex(const ChunkId& id) { return ToHex(ByteView(id.data(), id.size())); }

TEST(ChunkIdTest, Rfc4231TestCase1) {
  ChunkIdHasher hasher(PaddedKey(Bytes(20, 0x0b)));
  const std::string want = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  EXPECT_EQ(IdHex(hasher.Compute(AsBytes("Hi There"))), want);
  // Again: the pooled, re-initialised context must give the same answer.
  EXPECT_EQ(IdHex(hasher.Compute(AsBytes("Hi There"))), want);
}

TEST(ChunkIdTest, Rfc4231TestCase2) {
  Result<ChunkIdHasher> hasher = ChunkIdHasher::Create(PaddedKey(AsBytes("Jefe")));
  ASSERT_TRUE(hasher.ok()) << hasher.status().ToString();
  Result<ChunkId> id = hasher->TryCompute(AsBytes("what do ya want for nothing?"));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(IdHex(*id), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// The hasher feeds a chunk to HMAC in 4 KiB pieces: inputs at, just past and
// well past a piece boundary give the one-shot HMAC (Python's hmac module).
TEST(ChunkIdTest, InputsAcrossPieceBoundaries) {
  ChunkIdHasher hasher(PaddedKey(Bytes(20, 0x0b)));
  const std::pair<size_t, const char*> cases[] = {
      {4096, "b0a596698ee2357e980b2688c986cd6ad69342e1731651e63225499b17d01c5f"},
      {4097, "c2287198333eabf7ff141bb09a1b2846138a1e2187f3161c3fcd93b098ac9762"},
      {12301, "83b28410f6a7f0cb94268bb7451739e873a45b37c231de8e16e007239dfc3531"},
      {(1 << 20) + 1, "a85d2c8993a2aeb24cbf771a769c2971d370457e9efb56c5ee428fb8d76eee69"},
  };
  for (const auto& [size, want] : cases) {
    Bytes data(size);
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
    EXPECT_EQ(IdHex(hasher.Compute(data)), want) << size << " bytes";
  }
}

TEST(ChunkIdTest, KeyOutlivesSecretKeyAndCopiesAgree) {
  std::optional<ChunkIdHasher> hasher;
  {
    SecretKey key = PaddedKey(Bytes(20, 0x0b));
    hasher.emplace(key);
  }  // key wiped here
  ChunkIdHasher copy = *hasher;
  EXPECT_EQ(IdHex(copy.Compute(AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(ChunkIdTest, DifferentKeysGiveDifferentIds) {
  ChunkIdHasher a(*SecretKey::Generate());
  ChunkIdHasher b(*SecretKey::Generate());
  const Bytes data(4096, 0x42);
  EXPECT_NE(a.Compute(data), b.Compute(data));
  EXPECT_EQ(a.Compute(data), a.Compute(data));
  Bytes other = data;
  other[4095] ^= 1;
  EXPECT_NE(a.Compute(data), a.Compute(other));
}

TEST(ChunkIdTest, EmptyInput) {
  ChunkIdHasher hasher(PaddedKey(Bytes(20, 0x0b)));
  // printf '' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0b...0b (20 bytes)
  EXPECT_EQ(IdHex(hasher.Compute(ByteView())),
            "999a901219f032cd497cadb5e6051e97b6a29ab297bd6ae722bd6062a2f59542");
}

TEST(ChunkIdTest, ConcurrentComputeAgrees) {
  ChunkIdHasher hasher(*SecretKey::Generate());
  Bytes data(256 * 1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
  const ChunkId want = hasher.Compute(data);
  constexpr int kThreads = 8;
  constexpr int kIters = 200;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Bytes small(100, static_cast<uint8_t>(t));
      for (int i = 0; i < kIters; ++i) {
        // Interleave another input so shared state would show up as a mismatch.
        (void)hasher.Compute(small);
        if (hasher.Compute(data) != want) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// Lengths around every block and padding boundary of HMAC-SHA256, and
// larger ones that cross ComputeMany's 4 KiB steps.
std::vector<size_t> EdgeLengths() {
  return {0,   1,   31,  32,  55,   56,   57,   63,   64,   65,   119,       120,    127,
          128, 129, 191, 192, 1000, 4095, 4096, 4097, 8191, 8193, 65536 + 7, 300000, 1 << 20};
}

// ComputeMany against Compute (OpenSSL) for batches of every shape: one
// message, equal lengths, mixed lengths in random orders, unaligned starts,
// the same bytes twice.
void ExpectManyMatchesCompute(const ChunkIdHasher& hasher) {
  std::mt19937_64 rng(42);
  Bytes data((1 << 20) + 4096 + 64);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lengths = EdgeLengths();
  for (int round = 0; round < 40; ++round) {
    std::vector<ByteView> in;
    const size_t n = round < 3 ? static_cast<size_t>(round) : 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) {
      const size_t len = round % 5 == 4 ? lengths[round % lengths.size()]  // all equal
                                        : lengths[rng() % lengths.size()];
      const size_t at = rng() % 64;  // unaligned too
      in.push_back(ByteView(data).subspan(at, len));
    }
    if (n >= 2 && round % 7 == 0) in[1] = in[0];
    std::vector<ChunkId> got(in.size());
    hasher.ComputeMany(in, got);
    for (size_t i = 0; i < in.size(); ++i) {
      ASSERT_EQ(IdHex(got[i]), IdHex(hasher.Compute(in[i])))
          << "round " << round << ", message " << i << " of " << in.size() << ", " << in[i].size()
          << " bytes";
    }
  }
}

TEST(ChunkIdTest, ComputeManyMatchesCompute) {
  ExpectManyMatchesCompute(ChunkIdHasher(*SecretKey::Generate()));
  ExpectManyMatchesCompute(ChunkIdHasher(PaddedKey(Bytes(20, 0x0b))));
}

TEST(ChunkIdTest, ComputeManyWithoutShaExtensions) {
  internal::DisableSha256LanesForTest(true);
  EXPECT_FALSE(internal::Sha256LanesAvailable());
  ExpectManyMatchesCompute(ChunkIdHasher(*SecretKey::Generate()));
  internal::DisableSha256LanesForTest(false);
}

TEST(ChunkIdTest, ComputeManyRfc4231) {
  ChunkIdHasher hasher(PaddedKey(Bytes(20, 0x0b)));
  const ByteView hi = AsBytes("Hi There");
  const std::vector<ByteView> in = {hi, ByteView(), hi};
  std::vector<ChunkId> got(in.size());
  hasher.ComputeMany(in, got);
  EXPECT_EQ(IdHex(got[0]), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(IdHex(got[1]), "999a901219f032cd497cadb5e6051e97b6a29ab297bd6ae722bd6062a2f59542");
  EXPECT_EQ(got[2], got[0]);
}

// The SHA-extension compression itself, one lane and two, against OpenSSL's
// SHA-256 of messages padded by hand.
TEST(Sha256LanesTest, BlocksMatchOpenSsl) {
  if (!internal::Sha256LanesAvailable()) GTEST_SKIP() << "no SHA extensions on this CPU";
  std::mt19937_64 rng(7);
  for (size_t len : EdgeLengths()) {
    Bytes a(len), b(len);
    for (auto& x : a) x = static_cast<uint8_t>(rng());
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    uint8_t want_a[32], want_b[32];
    SHA256(a.data(), a.size(), want_a);
    SHA256(b.data(), b.size(), want_b);
    auto pad = [](Bytes m) {
      const uint64_t bits = m.size() * 8;
      m.push_back(0x80);
      while (m.size() % 64 != 56) m.push_back(0);
      for (int i = 7; i >= 0; --i) m.push_back(static_cast<uint8_t>(bits >> (8 * i)));
      return m;
    };
    const Bytes pa = pad(a), pb = pad(b);
    internal::Sha256State one = internal::Sha256Initial();
    internal::Sha256Blocks(&one, pa.data(), pa.size() / 64);
    internal::Sha256State sa = internal::Sha256Initial(), sb = internal::Sha256Initial();
    internal::Sha256Blocks2(&sa, pa.data(), &sb, pb.data(), pa.size() / 64);
    uint8_t got[32];
    internal::Sha256StateBytes(one, got);
    EXPECT_EQ(ToHex(ByteView(got, 32)), ToHex(ByteView(want_a, 32))) << len << " bytes, one lane";
    internal::Sha256StateBytes(sa, got);
    EXPECT_EQ(ToHex(ByteView(got, 32)), ToHex(ByteView(want_a, 32))) << len << " bytes, lane 1";
    internal::Sha256StateBytes(sb, got);
    EXPECT_EQ(ToHex(ByteView(got, 32)), ToHex(ByteView(want_b, 32))) << len << " bytes, lane 2";
  }
}

}  // namespace
}  // namespace cairn::crypto
