#include "lib/net/address.h"

#include <charconv>

namespace cairn::net::internal {

Result<HostPort> ParseHostPort(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("\"" + std::string(text) + "\" is not host:port");
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return Status::InvalidArgument("\"" + std::string(text) + "\": unbalanced brackets");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\": write IPv6 addresses as [addr]:port");
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return Status::InvalidArgument("\"" + std::string(text) + "\": bad port");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

}  // namespace cairn::net::internal
