#include "lib/crypto/hkdf.h"

#include <gtest/gtest.h>

namespace cairn::crypto {
namespace {

Bytes Hex(std::string_view h) { return *FromHex(h); }

// RFC 5869 appendix A.1 (test case 1, SHA-256). The RFC asks for L = 42;
// HkdfSha256 produces 32 bytes, which are the first 32 of the RFC's OKM
// (HKDF-Expand output is a prefix-stable stream).
TEST(HkdfTest, Rfc5869TestCase1) {
  Result<SecretKey> okm =
      HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                 Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"));
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(ToHex(okm->view()), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

// RFC 5869 appendix A.3 (test case 3): empty salt and info.
TEST(HkdfTest, Rfc5869TestCase3EmptySaltAndInfo) {
  Result<SecretKey> okm =
      HkdfSha256(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), ByteView(), ByteView());
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(ToHex(okm->view()), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}

TEST(HkdfTest, EmptyInputKeyIsInvalid) {
  EXPECT_EQ(HkdfSha256(ByteView(), ByteView(), ByteView()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(HkdfTest, SessionKeyMatchesSpecAndDependsOnEveryInput) {
  SecretKey data_key = *SecretKey::FromBytes(Bytes(kKeySize, 0x11));
  KeyId id{};
  id[0] = 1;
  Result<SecretKey> k1 = DeriveSessionKey(data_key, id);
  ASSERT_TRUE(k1.ok());
  // The documented formula, spelled out.
  Result<SecretKey> manual =
      HkdfSha256(data_key.view(), ByteView(id.data(), id.size()), AsBytes("cairn/v1/session-key"));
  ASSERT_TRUE(manual.ok());
  EXPECT_TRUE(*k1 == *manual);
  EXPECT_FALSE(*k1 == data_key);

  KeyId other_id = id;
  other_id[15] ^= 1;
  EXPECT_FALSE(*k1 == *DeriveSessionKey(data_key, other_id));
  SecretKey other_key = *SecretKey::FromBytes(Bytes(kKeySize, 0x12));
  EXPECT_FALSE(*k1 == *DeriveSessionKey(other_key, id));
  // Deterministic: a reader re-derives the writer's key.
  EXPECT_TRUE(*k1 == *DeriveSessionKey(data_key, id));
}

TEST(HkdfTest, GearSeedIsPerDepartmentAndStable) {
  SecretKey a = *SecretKey::FromBytes(Bytes(kKeySize, 0x21));
  SecretKey b = *SecretKey::FromBytes(Bytes(kKeySize, 0x22));
  Result<uint64_t> sa = DeriveGearSeed(a);
  ASSERT_TRUE(sa.ok());
  EXPECT_EQ(*sa, *DeriveGearSeed(a));  // the same department always cuts the same way
  EXPECT_NE(*sa, *DeriveGearSeed(b));
  Result<SecretKey> manual = HkdfSha256(a.view(), {}, AsBytes("cairn/v1/cdc-gear-seed"));
  ASSERT_TRUE(manual.ok());
  EXPECT_EQ(*sa, DecodeFixed64(manual->data()));
}

TEST(HkdfTest, NewKeyIdIsRandom) {
  Result<KeyId> a = NewKeyId();
  Result<KeyId> b = NewKeyId();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace cairn::crypto
