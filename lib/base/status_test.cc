#include "lib/base/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "lib/base/errno.h"

namespace cairn {
namespace {

Result<int> Half(int v) {
  if (v % 2) return Status::InvalidArgument("odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  CAIRN_ASSIGN_OR_RETURN(int h, Half(v));
  CAIRN_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int v) {
  CAIRN_RETURN_IF_ERROR(Half(v).status().ok() ? Status::OK() : Status::InvalidArgument("odd"));
  return Status::OK();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::OK().ok());
  Status s = Status::Corruption("bad checksum").WithContext("pack 7");
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.message(), "pack 7: bad checksum");
  EXPECT_EQ(s.ToString(), "corruption: pack 7: bad checksum");
  EXPECT_FALSE(s.retryable());
  EXPECT_TRUE(Status::Unavailable("vault down").retryable());
  EXPECT_FALSE(Status::Unavailable("x").WithRetryable(false).retryable());
}

TEST(StatusTest, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(ErrnoTest, MapsToClosedSet) {
  EXPECT_EQ(ErrnoToStatus(ENOSPC, "write").code(), StatusCode::kNoSpace);
  EXPECT_EQ(ErrnoToStatus(-ENOSPC, "uring write").code(), StatusCode::kNoSpace);
  EXPECT_EQ(ErrnoToStatus(EDQUOT, "write").code(), StatusCode::kNoSpace);
  EXPECT_EQ(ErrnoToStatus(ENOENT, "open").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToStatus(EACCES, "open").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToStatus(EIO, "read").code(), StatusCode::kIOError);
  Status again = ErrnoToStatus(-EAGAIN, "read");
  EXPECT_EQ(again.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(again.retryable());
  EXPECT_TRUE(ErrnoToStatus(0, "x").ok());
  EXPECT_NE(ErrnoToStatus(ENOENT, "open /x").message().find("open /x: "), std::string::npos);
}

}  // namespace
}  // namespace cairn
