#include "lib/base/names.h"

#include <cstdio>
#include <string>

namespace cairn {

std::string EscapeForLog(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

Status ValidateName(std::string_view kind, std::string_view name) {
  auto refuse = [&](std::string_view why) {
    return Status::InvalidArgument(std::string(kind) + " name '" +
                                   EscapeForLog(name.substr(0, 80)) +
                                   (name.size() > 80 ? "...'" : "'") + " " + std::string(why) +
                                   ": use 1 to 253 of a-z 0-9 . - _ (lower case), starting with a "
                                   "letter or digit");
  };
  if (name.empty()) return refuse("is empty");
  if (name.size() > kMaxNameLength) return refuse("is too long");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (i == 0 && !alnum) return refuse("does not start with a letter or digit");
    if (!alnum && c != '.' && c != '-' && c != '_') return refuse("has a character not allowed");
  }
  return Status::OK();
}

}  // namespace cairn
