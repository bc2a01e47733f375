#include "lib/base/names.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(NamesTest, OneRuleForEveryName) {
  for (const char* good : {"finance", "fin-srv-01", "db1.city.gov.cn", "a_b", "7th-district"}) {
    EXPECT_TRUE(ValidateName("host", good).ok()) << good;
  }
  for (std::string bad :
       {std::string(), std::string("Finance"), std::string("dr \"west\""), std::string("a b"),
        std::string("x\n2026-01-01 FORGED"), std::string("\x1b[2J"), std::string("../etc"),
        std::string("-x"), std::string(".hidden"), std::string("a/b"), std::string(254, 'a'),
        std::string("caf\xc3\xa9")}) {
    Status s = ValidateName("department", bad);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
    // The message shows the name escaped: no control character reaches a log.
    for (char c : s.message()) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << s.message();
  }
}

TEST(NamesTest, EscapeForLogShowsControlBytes) {
  EXPECT_EQ(EscapeForLog("a\nb\x1b[2J\\"), "a\\x0ab\\x1b[2J\\x5c");
  EXPECT_EQ(EscapeForLog("plain text"), "plain text");
}

}  // namespace
}  // namespace cairn
