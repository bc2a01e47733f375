// How cairn-vault's commands print: one JSON object (--json) or text, and
// failures by lib/base/cli.h's conventions.
#ifndef CAIRN_VAULT_CMD_OUTPUT_H_
#define CAIRN_VAULT_CMD_OUTPUT_H_

#include <boost/json/object.hpp>
#include <iostream>
#include <string>

#include "lib/base/cli.h"
#include "lib/base/status.h"

namespace cairn::vault::cmd {

// Prints `result` as one JSON object on stdout (--json) or as text.
inline void Print(bool json, const boost::json::object& result, const std::string& text) {
  if (json) {
    cli::PrintJson(result);
  } else {
    std::cout << text;
  }
}

inline int Fail(bool json, const Status& s) { return cli::Fail("cairn-vault", json, s); }

}  // namespace cairn::vault::cmd

#endif  // CAIRN_VAULT_CMD_OUTPUT_H_
