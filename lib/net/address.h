// "host:port" parsing: Listen, Connect, and every address a configuration
// names (the vault's listeners, a syslog collector).
#ifndef CAIRN_LIB_NET_ADDRESS_H_
#define CAIRN_LIB_NET_ADDRESS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace cairn::net {

struct HostPort {
  std::string host;  // without brackets; may be empty (":7443")
  uint16_t port = 0;
};

// "host:port", "[v6]:port" or ":port". InvalidArgument otherwise.
Result<HostPort> ParseHostPort(std::string_view text);

// Whether HOST means every address of this machine ("", "0.0.0.0", "::"):
// a host to listen on, never one to tell a client to dial.
bool IsWildcardHost(std::string_view host);

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_ADDRESS_H_
