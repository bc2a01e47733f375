#include "lib/chunk/rsync_delta.h"

#include <gtest/gtest.h>

#include "lib/chunk/test_random.h"

namespace cairn::chunk {
namespace {

using testing::TestRng;

Bytes Sig(ByteView basis) {
  auto s = ComputeSignature(basis);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : Bytes{};
}

Bytes Delta(ByteView basis, ByteView next) {
  auto d = ComputeDelta(Sig(basis), next);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(d).value() : Bytes{};
}

void ExpectCorruption(ByteView basis, ByteView delta, size_t max_output) {
  auto r = ApplyDelta(basis, delta, max_output);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
}

TEST(RsyncDeltaTest, SignatureHasThePredictedSize) {
  TestRng rng(1);
  for (size_t n : {size_t{0}, size_t{1}, size_t{4096}, size_t{4097}, size_t{4} << 20}) {
    Bytes data = rng.RandomBytes(n);
    EXPECT_EQ(Sig(data).size(), RsyncSignatureSize(n)) << n;
  }
  EXPECT_EQ(ComputeSignature(Bytes(10), 100).status().code(), StatusCode::kInvalidArgument);
}

// The aligned delta: equal blocks copied, rewritten ones literal, and what
// it produces applies with librsync's patch to exactly the new data, for
// every shape of change an image extent sees (and some it does not).
TEST(RsyncDeltaTest, AlignedDeltaRoundTripsAndSendsOnlyRewrittenBlocks) {
  TestRng rng(7);
  for (size_t n : {size_t{0}, size_t{1}, size_t{4096}, size_t{4097}, (size_t{1} << 20) + 123,
                   size_t{4} << 20}) {
    SCOPED_TRACE(n);
    Bytes basis = rng.RandomBytes(n);
    std::vector<std::pair<Bytes, size_t>> versions;  // new data, blocks rewritten
    versions.push_back({basis, 0});
    Bytes rewritten = basis;
    const size_t blocks = (n + 4095) / 4096;
    size_t changed = 0;
    for (size_t b = 0; b < blocks; b += 1 + rng.Uniform(40)) {
      const size_t at = b * 4096 + rng.Uniform(std::min<size_t>(4096, n - b * 4096));
      rewritten[at] ^= 0x5a;
      changed++;
    }
    versions.push_back({rewritten, changed});
    versions.push_back({rng.RandomBytes(n), blocks});
    Bytes longer = basis;
    Bytes tail = rng.RandomBytes(5000);
    longer.insert(longer.end(), tail.begin(), tail.end());
    versions.push_back({longer, 0});  // checked by round trip only
    Bytes shorter(basis.begin(), basis.begin() + n / 2);
    versions.push_back({shorter, 0});
    for (const auto& [next, expect_changed] : versions) {
      auto delta = ComputeAlignedDelta(Sig(basis), Sig(next), next);
      ASSERT_TRUE(delta.ok()) << delta.status().ToString();
      auto out = ApplyDelta(basis, *delta, next.size() + 1);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, next);
      if (next.size() == n) {
        // Literal bytes: the rewritten blocks, plus a few bytes per command.
        const size_t literal = std::min(expect_changed * 4096, n);
        EXPECT_GE(delta->size(), literal);
        EXPECT_LE(delta->size(), literal + 32 + 26 * (2 * expect_changed + 1));
      }
    }
  }
}

TEST(RsyncDeltaTest, AlignedDeltaRefusesSignaturesThatDoNotFit) {
  TestRng rng(8);
  Bytes a = rng.RandomBytes(20000), b = rng.RandomBytes(20000);
  EXPECT_EQ(ComputeAlignedDelta(Sig(a), *ComputeSignature(b, 1024), b).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeAlignedDelta(Sig(a), Sig(b), ByteView(b).first(10000)).status().code(),
            StatusCode::kInvalidArgument);
  Bytes bad = Sig(a);
  bad[0] ^= 1;
  EXPECT_EQ(ComputeAlignedDelta(bad, Sig(b), b).status().code(), StatusCode::kCorruption);
}

TEST(RsyncDeltaTest, RoundTripsEditedExtents) {
  TestRng rng(2);
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097},
                   (size_t{1} << 20) + 123, size_t{4} << 20}) {
    SCOPED_TRACE(n);
    Bytes basis = rng.RandomBytes(n);
    std::vector<Bytes> versions;
    versions.push_back(basis);                       // identical
    versions.push_back(rng.RandomBytes(n));          // unrelated
    versions.push_back(rng.RandomBytes(n / 2 + 7));  // unrelated, other size
    Bytes edited = basis;
    for (int i = 0; i < 5 && n > 0; ++i) {  // overwrites, an insertion, a deletion
      edited[rng.Uniform(edited.size())] ^= 0x55;
    }
    if (n > 10) {
      Bytes ins = rng.RandomBytes(333);
      edited.insert(edited.begin() + rng.Uniform(edited.size()), ins.begin(), ins.end());
      const size_t at = rng.Uniform(edited.size() - 5);
      edited.erase(edited.begin() + at, edited.begin() + at + 5);
    }
    versions.push_back(edited);
    // The buffer-reusing form into one buffer throughout, which holds the
    // previous (often longer) result each time: the same bytes.
    Bytes reused = rng.RandomBytes(5 << 20);
    for (const Bytes& next : versions) {
      Bytes delta = Delta(basis, next);
      auto out = ApplyDelta(basis, delta, next.size());
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_TRUE(Equal(*out, next));
      ASSERT_TRUE(ApplyDelta(basis, delta, next.size(), &reused).ok());
      EXPECT_TRUE(Equal(reused, next));
    }
  }
}

TEST(RsyncDeltaTest, OneRandom4KiBWriteCostsAbout4KiB) {
  TestRng rng(3);
  for (int trial = 0; trial < 8; ++trial) {
    Bytes basis = rng.RandomBytes(4 << 20);
    Bytes next = basis;
    const size_t at = rng.Uniform(next.size() - 4096 + 1);
    rng.Fill(next.data() + at, 4096);
    Bytes delta = Delta(basis, next);
    EXPECT_LT(delta.size(), 16u * 1024) << "offset " << at;
    auto out = ApplyDelta(basis, delta, next.size());
    ASSERT_TRUE(out.ok());
    EXPECT_TRUE(Equal(*out, next));
  }
}

TEST(RsyncDeltaTest, IdenticalDataGivesATinyDelta) {
  TestRng rng(4);
  Bytes basis = rng.RandomBytes(4 << 20);
  EXPECT_LT(Delta(basis, basis).size(), 64u);
}

TEST(RsyncDeltaTest, RejectsTruncatedDeltas) {
  TestRng rng(5);
  Bytes basis = rng.RandomBytes(64 * 1024);
  Bytes next = basis;
  rng.Fill(next.data() + 10000, 3000);
  Bytes delta = Delta(basis, next);
  ASSERT_TRUE(ApplyDelta(basis, delta, next.size()).ok());
  for (size_t cut = 0; cut < delta.size(); ++cut) {
    SCOPED_TRACE(cut);
    ExpectCorruption(basis, ByteView(delta).first(cut), next.size());
  }
}

TEST(RsyncDeltaTest, RejectsGarbageAndTrailingBytes) {
  TestRng rng(6);
  Bytes basis = rng.RandomBytes(64 * 1024);
  for (size_t n : {1, 4, 100, 5000}) ExpectCorruption(basis, rng.RandomBytes(n), 1 << 20);
  // Right magic, then garbage.
  Bytes magic_then_junk = {0x72, 0x73, 0x02, 0x36};
  Bytes junk = rng.RandomBytes(200);
  magic_then_junk.insert(magic_then_junk.end(), junk.begin(), junk.end());
  ExpectCorruption(basis, magic_then_junk, 1 << 20);
  // A valid delta followed by anything.
  Bytes delta = Delta(basis, basis);
  delta.push_back(0);
  ExpectCorruption(basis, delta, 1 << 20);
}

TEST(RsyncDeltaTest, RejectsCopiesOutsideTheBasis) {
  TestRng rng(7);
  Bytes basis = rng.RandomBytes(256 * 1024);
  Bytes delta = Delta(basis, basis);  // one COPY of the whole basis
  for (size_t shorter : {size_t{0}, size_t{1}, size_t{4096}, basis.size() - 1}) {
    SCOPED_TRACE(shorter);
    ExpectCorruption(ByteView(basis).first(shorter), delta, basis.size());
  }
}

TEST(RsyncDeltaTest, RejectsOutputAboveTheLimit) {
  TestRng rng(8);
  Bytes basis = rng.RandomBytes(1 << 20);
  Bytes next = rng.RandomBytes(1 << 20);  // all literal
  for (const Bytes* target : {&basis, &next}) {
    Bytes delta = Delta(basis, *target);
    EXPECT_TRUE(ApplyDelta(basis, delta, target->size()).ok());
    ExpectCorruption(basis, delta, target->size() - 1);
    ExpectCorruption(basis, delta, 0);
  }
}

// Random corruption of a valid delta: OK with bounded output, or Corruption,
// never a crash (run under ASan in the sanitizer build).
TEST(RsyncDeltaTest, MutatedDeltasNeverMisbehave) {
  TestRng rng(9);
  Bytes basis = rng.RandomBytes(200 * 1024);
  Bytes next = basis;
  rng.Fill(next.data() + 5000, 700);
  next.insert(next.begin() + 90000, 50, 0x11);
  const Bytes delta = Delta(basis, next);
  const size_t max_output = 300 * 1024;
  for (int i = 0; i < 3000; ++i) {
    Bytes m = delta;
    const int flips = 1 + static_cast<int>(rng.Uniform(4));
    for (int f = 0; f < flips; ++f) m[rng.Uniform(m.size())] = static_cast<uint8_t>(rng.Next());
    auto r = ApplyDelta(basis, m, max_output);
    if (r.ok()) {
      EXPECT_LE(r->size(), max_output);
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
    }
  }
}

TEST(RsyncDeltaTest, ComputeDeltaRejectsBadSignatures) {
  TestRng rng(10);
  Bytes basis = rng.RandomBytes(64 * 1024);
  Bytes sig = Sig(basis);
  auto expect_bad = [&](ByteView s) {
    auto d = ComputeDelta(s, basis);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kCorruption) << d.status().ToString();
  };
  expect_bad({});
  expect_bad(ByteView(sig).first(11));
  expect_bad(ByteView(sig).first(sig.size() - 1));
  Bytes bad_magic = sig;
  bad_magic[3] ^= 1;
  expect_bad(bad_magic);
  Bytes huge_block = sig;
  huge_block[4] = 0x7f;  // block_len ~ 2 GiB
  expect_bad(huge_block);
  Bytes bad_strong = sig;
  bad_strong[11] = 33;
  expect_bad(bad_strong);
  expect_bad(rng.RandomBytes(500));
}

}  // namespace
}  // namespace cairn::chunk
