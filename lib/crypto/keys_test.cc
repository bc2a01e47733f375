#include "lib/crypto/keys.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "lib/crypto/random.h"

namespace cairn::crypto {
namespace {

DepartmentKeys MakeKeys() {
  Result<DepartmentKeys> keys = DepartmentKeys::Generate();
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  return *keys;
}

TEST(SecureRandomTest, FillsAndDiffers) {
  Bytes a(64), b(64);
  ASSERT_TRUE(SecureRandom(a).ok());
  ASSERT_TRUE(SecureRandom(b).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, Bytes(64, 0));
  EXPECT_TRUE(SecureRandom(MutableByteView()).ok());
}

TEST(SecretKeyTest, DefaultIsZeroAndFromBytesChecksLength) {
  SecretKey zero;
  EXPECT_TRUE(Equal(zero.view(), Bytes(kKeySize, 0)));
  EXPECT_EQ(zero.view().size(), kKeySize);

  EXPECT_EQ(SecretKey::FromBytes(Bytes(31, 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SecretKey::FromBytes(Bytes(33, 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SecretKey::FromBytes(ByteView()).status().code(), StatusCode::kInvalidArgument);
  Result<SecretKey> k = SecretKey::FromBytes(Bytes(kKeySize, 7));
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(Equal(k->view(), Bytes(kKeySize, 7)));
  EXPECT_EQ(k->data(), k->view().data());
}

TEST(SecretKeyTest, GenerateGivesDistinctKeys) {
  Result<SecretKey> a = SecretKey::Generate();
  Result<SecretKey> b = SecretKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(*a == *b);
  EXPECT_FALSE(*a == SecretKey());
}

TEST(SecretKeyTest, CopyAndMoveSemantics) {
  SecretKey a = *SecretKey::FromBytes(Bytes(kKeySize, 0x5a));
  SecretKey copy = a;
  EXPECT_TRUE(copy == a);
  SecretKey moved = std::move(a);
  EXPECT_TRUE(moved == copy);
  // A moved-from key holds no secret any more.
  EXPECT_TRUE(Equal(a.view(), Bytes(kKeySize, 0)));  // NOLINT(bugprone-use-after-move)
  SecretKey assigned;
  assigned = copy;
  EXPECT_TRUE(assigned == copy);
}

TEST(SecretKeyTest, GoogleTestPrintsNoKeyMaterial) {
  SecretKey k = *SecretKey::FromBytes(Bytes(kKeySize, 0xab));
  std::string printed = ::testing::PrintToString(k);
  EXPECT_EQ(printed, "SecretKey(redacted)");
  EXPECT_EQ(printed.find("AB"), std::string::npos);
  EXPECT_EQ(printed.find("ab"), std::string::npos);
}

TEST(DepartmentKeysTest, GenerateMakesIndependentKeys) {
  DepartmentKeys keys = MakeKeys();
  EXPECT_EQ(keys.epoch, 1u);
  EXPECT_FALSE(keys.data_key == keys.id_key);
}

TEST(DepartmentKeysTest, SerializeParseRoundTrip) {
  DepartmentKeys keys = MakeKeys();
  keys.epoch = 0x01020304;
  Bytes blob = SerializeDepartmentKeys(keys);
  EXPECT_EQ(blob.size(), kDepartmentKeysSerializedSize);
  EXPECT_EQ(AsString(ByteView(blob).first(8)), "CAIRNDKY");
  Result<DepartmentKeys> parsed = ParseDepartmentKeys(blob);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->epoch, keys.epoch);
  EXPECT_TRUE(parsed->data_key == keys.data_key);
  EXPECT_TRUE(parsed->id_key == keys.id_key);
}

TEST(DepartmentKeysTest, EverySingleByteCorruptionIsRejected) {
  const Bytes blob = SerializeDepartmentKeys(MakeKeys());
  for (size_t i = 0; i < blob.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      Bytes bad = blob;
      bad[i] ^= mask;
      Result<DepartmentKeys> parsed = ParseDepartmentKeys(bad);
      ASSERT_FALSE(parsed.ok()) << "byte " << i << " mask " << int(mask) << " accepted";
      const StatusCode code = parsed.status().code();
      EXPECT_TRUE(code == StatusCode::kCorruption || code == StatusCode::kInvalidArgument)
          << "byte " << i << ": " << parsed.status().ToString();
    }
  }
}

TEST(DepartmentKeysTest, BadLengthsAreCorruption) {
  const Bytes blob = SerializeDepartmentKeys(MakeKeys());
  for (size_t len : {size_t{0}, size_t{5}, size_t{10}, size_t{16}, blob.size() - 1}) {
    Result<DepartmentKeys> parsed = ParseDepartmentKeys(ByteView(blob).first(len));
    EXPECT_EQ(parsed.status().code(), StatusCode::kCorruption) << len;
  }
  Bytes longer = blob;
  longer.push_back(0);
  EXPECT_EQ(ParseDepartmentKeys(longer).status().code(), StatusCode::kCorruption);
}

TEST(DepartmentKeysTest, UnknownVersionIsInvalidArgument) {
  Bytes blob = SerializeDepartmentKeys(MakeKeys());
  EncodeFixed16(blob.data() + 8, 2);
  Result<DepartmentKeys> parsed = ParseDepartmentKeys(blob);
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("version"), std::string::npos);
}

}  // namespace
}  // namespace cairn::crypto
