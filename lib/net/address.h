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

}  // namespace cairn::net

#endif  // CAIRN_LIB_NET_ADDRESS_H_
