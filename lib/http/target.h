// Request targets of the REST API: "/api/v1/departments/finance?limit=10",
// checked and split. Pure functions of untrusted input (fuzzed).
#ifndef CAIRN_LIB_HTTP_TARGET_H_
#define CAIRN_LIB_HTTP_TARGET_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace cairn::http {

inline constexpr size_t kMaxTargetLength = 2048;

struct Target {
  std::string path;                          // "/api/v1/departments/finance", decoded
  std::vector<std::string> segments;         // {"api", "v1", "departments", "finance"}
  std::map<std::string, std::string> query;  // decoded; a repeated key keeps the last
};

// Parses an origin-form target. InvalidArgument for anything else: not
// starting with '/', longer than kMaxTargetLength, a bad %-escape, an
// encoded or literal NUL, control character or backslash, an empty
// segment ("//"), or a "." or ".." segment (encoded or not): the API has
// no use for any of them, and refusing them leaves no path trick to try.
Result<Target> ParseTarget(std::string_view target);

}  // namespace cairn::http

#endif  // CAIRN_LIB_HTTP_TARGET_H_
