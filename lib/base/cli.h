// What every Cairn command line does with a failure, so the three CLIs
// (cairn-vault, cairn-agent, cairn-restore) report errors one way.
#ifndef CAIRN_LIB_BASE_CLI_H_
#define CAIRN_LIB_BASE_CLI_H_

#include <string_view>

#include "lib/base/status.h"

namespace cairn {

// Prints "<program>: <message>" on stderr and, when `json`, one object
// {"ok":false,"error":"<code name>","message":"..."} on stdout. Returns the
// exit code: 2 for bad usage or input (InvalidArgument), 1 for the rest.
int FailCommand(std::string_view program, bool json, const Status& s);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_CLI_H_
