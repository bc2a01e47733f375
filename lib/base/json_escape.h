// JSON string escaping that yields valid UTF-8 (ASCII, in fact) whatever
// the bytes: the one place that decides how Cairn writes a string into JSON
// (command-line results, JSON logs, the REST API).
#ifndef CAIRN_LIB_BASE_JSON_ESCAPE_H_
#define CAIRN_LIB_BASE_JSON_ESCAPE_H_

#include <string>
#include <string_view>

namespace cairn {

// Appends the body of a JSON string (no quotes) for `s`: quotes, backslash
// and control characters escaped, every non-ASCII character as \uXXXX
// (surrogate pairs beyond the BMP), and each byte that is not part of valid
// UTF-8 as \udcXX, Python's "surrogateescape", so the bytes can be
// recovered: json.loads(text).encode("utf-8", "surrogateescape").
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_JSON_ESCAPE_H_
