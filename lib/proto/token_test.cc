#include "lib/proto/token.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::proto {
namespace {

const std::string kFp(64, 'a');

TEST(TokenTest, ParsesWhatFormatWrites) {
  std::string token = FormatEnrollmentToken(kFp, "0123abcd.deadbeef");
  Result<EnrollmentToken> t = ParseEnrollmentToken(token);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->ca_fingerprint, kFp);
  EXPECT_EQ(t->catalog_token, "0123abcd.deadbeef");
}

TEST(TokenTest, UpperCaseFingerprintIsLowered) {
  Result<EnrollmentToken> t = ParseEnrollmentToken("cairn1-" + std::string(64, 'A') + "-1.2");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ca_fingerprint, kFp);
}

TEST(TokenTest, MalformedTokensAreRefused) {
  for (std::string bad :
       {std::string(""), std::string("cairn2-") + kFp + "-1.2", "cairn1-" + kFp.substr(1) + "-1.2",
        "cairn1-" + std::string(63, 'a') + "g-1.2", "cairn1-" + kFp + "-12", "cairn1-" + kFp + "-",
        "cairn1-" + kFp + "-.2", "cairn1-" + kFp + "-1.", "cairn1-" + kFp + "-1.2 ",
        "cairn1-" + kFp + "1.2"}) {
    Result<EnrollmentToken> t = ParseEnrollmentToken(bad);
    EXPECT_FALSE(t.ok()) << bad;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace cairn::proto
