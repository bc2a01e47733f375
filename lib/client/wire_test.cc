#include "lib/client/wire.h"

#include <gtest/gtest.h>

namespace cairn::client {
namespace {

TEST(LostConnectionTest, NamesThePeerTheCauseAndWhatNext) {
  Status s = LostConnection(Status::Unavailable("connection reset by peer"), "the vault",
                            "10.0.0.5:7443", "run the backup again once the vault is back");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(s.retryable());
  EXPECT_EQ(s.message(),
            "lost the connection to the vault at 10.0.0.5:7443 (connection reset by peer); run "
            "the backup again once the vault is back");
}

TEST(LostConnectionTest, DoesNotNameTheVaultTwice) {
  Status cause = Status::Unavailable("read: end of stream").WithContext("vault 10.0.0.5:7443");
  Status s = LostConnection(cause, "the vault", "10.0.0.5:7443", "next");
  EXPECT_EQ(s.message(),
            "lost the connection to the vault at 10.0.0.5:7443 (read: end of stream); next");
}

TEST(LostConnectionTest, KeepsAnotherVaultsNameAndTheCodeAsGiven) {
  Status cause(StatusCode::kIOError, "vault 10.0.0.9:7443: broken pipe", /*retryable=*/false);
  Status s = LostConnection(cause, "the source vault", "10.0.0.5:7443", "next");
  EXPECT_EQ(s.code(), StatusCode::kIOError);
  EXPECT_FALSE(s.retryable());
  EXPECT_EQ(s.message(),
            "lost the connection to the source vault at 10.0.0.5:7443 (vault 10.0.0.9:7443: "
            "broken pipe); next");
}

}  // namespace
}  // namespace cairn::client
