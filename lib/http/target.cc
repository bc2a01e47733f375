#include "lib/http/target.h"

namespace cairn::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %-decoding; '+' is a space in the query only.
Result<std::string> Decode(std::string_view in, bool query) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return Status::InvalidArgument("bad %-escape in the request target");
      const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return Status::InvalidArgument("bad %-escape in the request target");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (query && c == '+') {
      c = ' ';
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') {
      return Status::InvalidArgument("the request target holds a control character or a backslash");
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Result<Target> ParseTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return Status::InvalidArgument("the request target must start with '/'");
  }
  if (target.size() > kMaxTargetLength) {
    return Status::InvalidArgument("the request target is longer than " +
                                   std::to_string(kMaxTargetLength) + " bytes");
  }
  Target t;
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  // Segments are split before decoding: an encoded '/' stays inside its segment.
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view raw = path.substr(start, end - start);
    if (raw.empty()) {
      if (end == path.size() && start == path.size()) break;  // "/" or a trailing '/'
      return Status::InvalidArgument("the request target has an empty path segment");
    }
    CAIRN_ASSIGN_OR_RETURN(std::string segment, Decode(raw, false));
    if (segment == "." || segment == "..") {
      return Status::InvalidArgument("the request target has a '.' or '..' segment");
    }
    if (segment.find('/') != std::string::npos) {
      return Status::InvalidArgument("the request target has an encoded '/'");
    }
    t.segments.push_back(std::move(segment));
    start = end + 1;
  }
  t.path = "/";
  for (size_t i = 0; i < t.segments.size(); ++i) t.path += (i ? "/" : "") + t.segments[i];
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    CAIRN_ASSIGN_OR_RETURN(std::string key, Decode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      CAIRN_ASSIGN_OR_RETURN(value, Decode(pair.substr(eq + 1), true));
    }
    t.query[key] = value;
  }
  return t;
}

}  // namespace cairn::http
