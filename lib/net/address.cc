#include "lib/net/address.h"

#include <boost/url/parse.hpp>
#include <charconv>

namespace cairn::net {

// Boost.URL parses the authority (RFC 3986: reg-name, IPv4, or an IPv6
// literal in brackets); this adds Cairn's rules: a port is required, and an
// empty host means every address (listening only).
Result<HostPort> ParseHostPort(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("\"" + std::string(text) + "\" is not host:port (" +
                                   std::string(why) + ")");
  };
  auto authority = boost::urls::parse_authority(text);
  if (!authority) {
    if (text.find(':') != text.rfind(':') && text.find('[') == std::string_view::npos) {
      return bad("write IPv6 addresses as [addr]:port");
    }
    return bad(authority.error().message());
  }
  if (authority->has_userinfo()) return bad("no user@ part");
  if (!authority->has_port() || authority->port().empty()) return bad("the port is missing");
  const std::string_view digits = authority->port();
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port > 65535) {
    return bad("bad port");
  }
  std::string host;
  switch (authority->host_type()) {
    case boost::urls::host_type::ipv6:
      host = authority->host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::ipvfuture:
      return bad("unknown address form");
    default:
      host = std::string(authority->encoded_host());
      if (host.find('%') != std::string::npos) return bad("escapes are not host names");
  }
  return HostPort{std::move(host), static_cast<uint16_t>(port)};
}

bool IsWildcardHost(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

}  // namespace cairn::net
