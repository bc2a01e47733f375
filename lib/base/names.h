// The one rule for the names people give things: sites, departments and
// hosts (and, later, users and policies). A name travels into certificates,
// file names, log lines, JSON and terminals, so it is kept to a DNS-like
// charset that none of those can misread: no quotes, spaces, slashes,
// control characters or escapes.
#ifndef CAIRN_LIB_BASE_NAMES_H_
#define CAIRN_LIB_BASE_NAMES_H_

#include <string_view>

#include "lib/base/status.h"

namespace cairn {

inline constexpr size_t kMaxNameLength = 253;  // a DNS name's limit

// OK when `name` is 1 to kMaxNameLength characters of a-z, 0-9, '.', '-'
// and '_', beginning with a letter or a digit. Lower case only, so that
// "Finance" and "finance" can never be two departments (DNS names are
// case-blind too). Otherwise
// InvalidArgument naming `kind` ("department", "site", "host") and the rule,
// with the name shown escaped.
Status ValidateName(std::string_view kind, std::string_view name);

// `text` with every byte outside printable ASCII (and the backslash) shown
// as \xNN: safe to put in a log line or on a terminal.
std::string EscapeForLog(std::string_view text);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_NAMES_H_
