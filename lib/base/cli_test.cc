#include "lib/base/cli.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace cairn::cli {
namespace {

TEST(ToJsonTest, ValidUtf8IsEscapedToAscii) {
  boost::json::object o{{"name", "caf\xc3\xa9 \xe6\x95\xb0\xe6\x8d\xae \xf0\x9f\x98\x80"},
                        {"quote", "a\"b\\c\n\x01"}};
  EXPECT_EQ(ToJson(o),
            R"({"name":"caf\u00e9 \u6570\u636e \ud83d\ude00","quote":"a\"b\\c\n\u0001"})");
}

TEST(ToJsonTest, BytesThatAreNotUtf8BecomeSurrogateEscapes) {
  // Latin-1 "é", a lone continuation byte, an overlong '/', a truncated
  // sequence at the end, and an encoded surrogate: each byte escaped alone.
  std::string name =
      "f\xe9"
      "e\x80/\xc0\xaf"
      "x\xed\xa0\x80"
      "z\xe6\x95";
  EXPECT_EQ(ToJson(boost::json::value(name)),
            R"("f\udce9e\udc80/\udcc0\udcafx\udced\udca0\udc80z\udce6\udc95")");
}

TEST(ToJsonTest, NumbersNeverUseAnExponent) {
  boost::json::object o{{"a", 0.0},  {"b", 71.28627},
                        {"c", 1e-9}, {"d", 12345678901.5},
                        {"e", -1},   {"f", uint64_t{18446744073709551615ull}}};
  EXPECT_EQ(ToJson(o),
            R"({"a":0,"b":71.28627,"c":0,"d":12345678901.5,"e":-1,"f":18446744073709551615})");
}

TEST(CliTest, ExitCodesFollowTheStatus) {
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(Status::Unavailable("x")), kExitUnreachable);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x")), kExitNotFound);
  EXPECT_EQ(ExitCodeFor(Status::Corruption("x")), kExitFailure);
  EXPECT_EQ(ExitCodeFor(Status::OK()), kExitOk);
}

TEST(CliTest, Rfc3339IsUtcWithMilliseconds) {
  EXPECT_EQ(Rfc3339(1'796'000'000'123'456ull), "2026-11-30T00:53:20.123Z");
  EXPECT_EQ(Rfc3339(0), "");
}

TEST(CliTest, QuietAndVerboseMoveTheLevel) {
  CommonFlags f;
  EXPECT_EQ(f.Level("warn"), "warn");
  f.verbose = 2;
  EXPECT_EQ(f.Level("warn"), "debug");
  f.verbose = 0;
  f.quiet = true;
  EXPECT_EQ(f.Level("warn"), "error");
  f.log_level = "trace";
  EXPECT_EQ(f.Level("warn"), "trace");
}

}  // namespace
}  // namespace cairn::cli
