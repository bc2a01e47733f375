#include "lib/crypto/hash.h"

#include <gtest/gtest.h>

namespace cairn::crypto {
namespace {

TEST(HashTest, Sha256KnownAnswer) {
  // FIPS 180-2 "abc".
  EXPECT_EQ(ToHex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, ConstantTimeEqual) {
  EXPECT_TRUE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abc")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("abd")));
  EXPECT_FALSE(ConstantTimeEqual(AsBytes("abc"), AsBytes("ab")));
}

TEST(HashTest, PasswordsVerifyAndResistTampering) {
  auto h = HashPassword("correct horse");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("scrypt$15$8$1$", 0), 0u);
  EXPECT_TRUE(*VerifyPassword("correct horse", *h));
  EXPECT_FALSE(*VerifyPassword("correct hors", *h));
  EXPECT_NE(*h, *HashPassword("correct horse"));  // salted
  EXPECT_FALSE(VerifyPassword("x", "scrypt$15$8$1$zz$00").ok());
  EXPECT_FALSE(VerifyPassword("x", "md5$abc").ok());
  // A stored hash demanding 2^30 iterations' memory is refused, not run.
  std::string greedy = *h;
  greedy.replace(7, 2, "30");
  EXPECT_EQ(VerifyPassword("correct horse", greedy).status().code(), StatusCode::kInvalidArgument);
}

TEST(HashTest, WrapUnwrapAndEveryByteIsChecked) {
  SecretKey master = *SecretKey::Generate();
  Bytes secret = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto w = WrapSecret(master, secret);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*UnwrapSecret(master, *w), secret);
  EXPECT_NE(*w, *WrapSecret(master, secret));  // fresh salt each time
  for (size_t i = 0; i < w->size(); ++i) {
    Bytes bad = *w;
    bad[i] ^= 1;
    EXPECT_FALSE(UnwrapSecret(master, bad).ok()) << i;
  }
  EXPECT_TRUE(UnwrapSecret(*SecretKey::Generate(), *w).status().IsCorruption());
  EXPECT_FALSE(UnwrapSecret(master, ByteView(w->data(), 10)).ok());
}

}  // namespace
}  // namespace cairn::crypto
