// Enrolment tokens: what `cairn-vault token create` prints and
// `cairn-agent enroll --token` takes.
//
//   cairn1-<64 lower- or upper-case hex: SHA-256 of the vault CA's DER>-<id>.<secret>
//
// The fingerprint lets the agent pin the vault's CA before it trusts
// anything the vault says (doc/protocol.md section 1); the rest, the
// "catalog token" `<id>.<secret>`, is what EnrollRequest.token carries and
// what the vault's catalog redeems. Shared by vault and agent so the two
// sides can never disagree on the format. Pure functions; thread-safe.
#ifndef CAIRN_LIB_PROTO_TOKEN_H_
#define CAIRN_LIB_PROTO_TOKEN_H_

#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace cairn::proto {

inline constexpr std::string_view kEnrollmentTokenPrefix = "cairn1-";

struct EnrollmentToken {
  std::string ca_fingerprint;  // 64 hex characters, lower-cased
  std::string catalog_token;   // "<id>.<secret>"
};

// Splits a token. InvalidArgument, with the expected shape in the message,
// for anything malformed (wrong prefix, a fingerprint that is not 64 hex
// characters, a catalog part without '.', surrounding whitespace).
Result<EnrollmentToken> ParseEnrollmentToken(std::string_view token);

// The inverse: "cairn1-" + fingerprint + "-" + catalog_token.
std::string FormatEnrollmentToken(std::string_view ca_fingerprint, std::string_view catalog_token);

}  // namespace cairn::proto

#endif  // CAIRN_LIB_PROTO_TOKEN_H_
