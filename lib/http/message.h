// HTTP requests and responses as the REST API's handlers see them, and the
// steps that turn a request's bytes into one: Beast's parser under limits,
// the checked target (target.h), lower-case header names. The server
// (server.h) reads with these; the fuzzer (tests/fuzz/http_fuzz.cc) feeds
// them arbitrary bytes.
#ifndef CAIRN_LIB_HTTP_MESSAGE_H_
#define CAIRN_LIB_HTTP_MESSAGE_H_

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "lib/base/status.h"
#include "lib/http/target.h"

namespace cairn::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  Target target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string remote;  // "10.0.0.9:51234"
  // The verified client certificate, when the client sent one that chains
  // to ServerOptions::client_ca_pem; all empty otherwise: its subject's CN
  // and OU, and the fingerprint (crypto::CertificateFingerprint) of the CA
  // its chain ends in, which tells the vault's own CA from an imported one.
  struct ClientCertificate {
    std::string cn, ou, root_fingerprint;
  } client_certificate;

  std::string Header(std::string_view name) const;  // "" when absent
  std::string Cookie(std::string_view name) const;  // "" when absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Set-Cookie, ...
};

// {"error":{"code":code,"message":message}} with `status`.
Response JsonError(int status, std::string_view code, std::string_view message);

struct ParseLimits {
  // 16 KiB of headers, 1 MiB of body: the API's largest request is a few KiB.
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 1 << 20;
};

using BeastParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Sets `limits` on a parser before it reads.
void ApplyLimits(BeastParser& parser, const ParseLimits& limits);
// The answer to a request that could not be read (431, 413, 408, 400).
Response ReadError(const boost::system::error_code& ec, const ParseLimits& limits);
// The Request of a complete parsed request, or the 400 for a target that
// does not pass ParseTarget.
std::variant<Request, Response> ToRequest(
    const boost::beast::http::request<boost::beast::http::string_body>& request);
// One request read from `wire` (all of it at once) as the server reads it:
// the Request a handler would get, or the 4xx the client would. Bytes left
// after the request are ignored.
std::variant<Request, Response> ParseRequest(std::string_view wire, const ParseLimits& limits);

}  // namespace cairn::http

#endif  // CAIRN_LIB_HTTP_MESSAGE_H_
