#include "lib/proto/token.h"

#include <cctype>

#include "lib/base/bytes.h"

namespace cairn::proto {

Result<EnrollmentToken> ParseEnrollmentToken(std::string_view token) {
  auto bad = [] {
    return Status::InvalidArgument(
        "malformed enrolment token (expected cairn1-<fingerprint>-<id>.<secret>, as printed by "
        "`cairn-vault token create`)");
  };
  if (token.substr(0, kEnrollmentTokenPrefix.size()) != kEnrollmentTokenPrefix) return bad();
  token.remove_prefix(kEnrollmentTokenPrefix.size());
  if (token.size() < 66 || token[64] != '-') return bad();
  EnrollmentToken out;
  out.ca_fingerprint = std::string(token.substr(0, 64));
  out.catalog_token = std::string(token.substr(65));
  if (!FromHex(out.ca_fingerprint).ok()) return bad();
  for (char& c : out.ca_fingerprint)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t dot = out.catalog_token.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == out.catalog_token.size()) return bad();
  for (char c : out.catalog_token) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      return bad();
    }
  }
  return out;
}

std::string FormatEnrollmentToken(std::string_view ca_fingerprint, std::string_view catalog_token) {
  std::string out(kEnrollmentTokenPrefix);
  out += ca_fingerprint;
  out += '-';
  out += catalog_token;
  return out;
}

}  // namespace cairn::proto
