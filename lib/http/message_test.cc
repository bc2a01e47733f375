// A request's bytes to the Request a handler gets, or the 4xx the client
// gets: what the server does before any handler runs.
#include "lib/http/message.h"

#include <gtest/gtest.h>

namespace cairn::http {
namespace {

int StatusOf(const std::variant<Request, Response>& r) {
  return std::holds_alternative<Response>(r) ? std::get<Response>(r).status : 0;
}

TEST(MessageTest, ARequestBecomesWhatHandlersSee) {
  auto r = ParseRequest(
      "POST /api/v1/departments?x=%41 HTTP/1.1\r\nHost: v\r\nContent-Type: application/json\r\n"
      "X-CSRF-Token: t\r\nCookie: a=1; cairn_session=s2\r\nContent-Length: 16\r\n\r\n"
      "{\"name\":\"parks\"}",
      {});
  ASSERT_TRUE(std::holds_alternative<Request>(r)) << std::get<Response>(r).body;
  const Request& q = std::get<Request>(r);
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.target.path, "/api/v1/departments");
  EXPECT_EQ(q.target.query.at("x"), "A");
  EXPECT_EQ(q.Header("x-csrf-token"), "t");  // names are lower-case
  EXPECT_EQ(q.Cookie("cairn_session"), "s2");
  EXPECT_EQ(q.body, "{\"name\":\"parks\"}");
}

TEST(MessageTest, WhatBreaksALimitOrTheGrammarGetsA4xx) {
  ParseLimits small;
  small.max_header_bytes = 256;
  small.max_body_bytes = 8;
  EXPECT_EQ(
      StatusOf(ParseRequest("GET / HTTP/1.1\r\nX: " + std::string(400, 'a') + "\r\n\r\n", small)),
      431);
  EXPECT_EQ(StatusOf(ParseRequest("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789", small)),
            413);
  EXPECT_EQ(StatusOf(ParseRequest("GET /api/v1/../../etc HTTP/1.1\r\n\r\n", {})), 400);
  EXPECT_EQ(StatusOf(ParseRequest("GET /api/%2e%2e/x HTTP/1.1\r\n\r\n", {})), 400);
  EXPECT_EQ(StatusOf(ParseRequest("GET http://evil/ HTTP/1.1\r\n\r\n", {})), 400);
  EXPECT_EQ(StatusOf(ParseRequest("BLAH\r\n\r\n", {})), 400);
  EXPECT_EQ(StatusOf(ParseRequest("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", {})),
            400);  // the connection ended first
  EXPECT_EQ(StatusOf(ParseRequest("", {})), 400);
  // A request line cut short (a fuzzer's timeout once: the parser waited
  // for more that never came).
  EXPECT_EQ(StatusOf(ParseRequest("POST /api/P", {})), 400);
  const auto r = ParseRequest("GET /a/../b HTTP/1.1\r\n\r\n", {});
  EXPECT_NE(std::get<Response>(r).body.find("\"code\":\"bad_target\""), std::string::npos);
}

}  // namespace
}  // namespace cairn::http
