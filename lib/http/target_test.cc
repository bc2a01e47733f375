#include "lib/http/target.h"

#include <gtest/gtest.h>

namespace cairn::http {
namespace {

TEST(TargetTest, SplitsPathAndQuery) {
  auto t = ParseTarget("/api/v1/departments/fin%2Dance/snapshots?limit=10&host=db+01&x");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->path, "/api/v1/departments/fin-ance/snapshots");
  EXPECT_EQ(t->segments,
            (std::vector<std::string>{"api", "v1", "departments", "fin-ance", "snapshots"}));
  EXPECT_EQ(t->query.at("limit"), "10");
  EXPECT_EQ(t->query.at("host"), "db 01");
  EXPECT_EQ(t->query.at("x"), "");
  EXPECT_EQ(ParseTarget("/")->path, "/");
  EXPECT_EQ(ParseTarget("/metrics/")->path, "/metrics");
}

TEST(TargetTest, RefusesEveryPathTrick) {
  for (const char* bad : {"", "api/v1", "http://evil/api", "/api/../etc/passwd", "/api/%2e%2e/x",
                          "/api/./x", "/api/%2E/x", "/api//x", "/api/a%2fb", "/api/%00", "/api/a%",
                          "/api/a%zz", "/api/a\\b", "/api/%5c", "/api/\x01"}) {
    EXPECT_TRUE(ParseTarget(bad).status().IsInvalidArgument()) << bad;
  }
  EXPECT_TRUE(ParseTarget("/" + std::string(3000, 'a')).status().IsInvalidArgument());
}

}  // namespace
}  // namespace cairn::http
