#include "lib/http/message.h"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json.hpp>
#include <cctype>

#include "lib/base/cli.h"

namespace cairn::http {

namespace bhttp = boost::beast::http;

std::string Request::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? std::string() : it->second;
}

std::string Request::Cookie(std::string_view name) const {
  const std::string all = Header("cookie");
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find(';', pos);
    if (end == std::string::npos) end = all.size();
    std::string_view pair(all.data() + pos, end - pos);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (auto eq = pair.find('='); eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
    pos = end + 1;
  }
  return {};
}

Response JsonError(int status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  r.body = cli::ToJson(
      boost::json::object{{"error", boost::json::object{{"code", std::string(code)},
                                                        {"message", std::string(message)}}}});
  return r;
}

void ApplyLimits(BeastParser& parser, const ParseLimits& limits) {
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
}

Response ReadError(const boost::system::error_code& ec, const ParseLimits& limits) {
  if (ec == bhttp::error::header_limit) {
    return JsonError(431, "headers_too_large", "request headers are too large");
  }
  if (ec == bhttp::error::body_limit) {
    return JsonError(
        413, "payload_too_large",
        "the request body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
  }
  if (ec == boost::beast::error::timeout) {
    return JsonError(408, "request_timeout", "the request took too long to arrive");
  }
  return JsonError(400, "bad_request", "malformed request: " + ec.message());
}

std::variant<Request, Response> ToRequest(const bhttp::request<bhttp::string_body>& req) {
  auto target = ParseTarget(std::string_view(req.target().data(), req.target().size()));
  if (!target.ok()) return JsonError(400, "bad_target", target.status().message());
  Request r;
  r.method = std::string(req.method_string());
  r.target = std::move(*target);
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(field.value());
  }
  r.body = req.body();
  return r;
}

std::variant<Request, Response> ParseRequest(std::string_view wire, const ParseLimits& limits) {
  BeastParser parser;
  ApplyLimits(parser, limits);
  parser.eager(true);
  boost::system::error_code ec;
  size_t used = 0;
  while (!parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(wire.data() + used, wire.size() - used), ec);
    used += n;
    if (ec == bhttp::error::need_more) {
      ec = {};
      // Beast takes a header only whole: no progress means the bytes are
      // all there is, and the connection ended before the request did.
      if (n == 0 || used == wire.size()) {
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        break;
      }
      continue;
    }
    if (ec || n == 0) break;
  }
  if (ec) return ReadError(ec, limits);
  if (!parser.is_done()) return ReadError(bhttp::error::partial_message, limits);
  return ToRequest(parser.get());
}

}  // namespace cairn::http
