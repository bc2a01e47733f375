#include "lib/base/cli.h"

#include <boost/json.hpp>
#include <iostream>
#include <string>

namespace cairn {

int FailCommand(std::string_view program, bool json, const Status& s) {
  std::cerr << program << ": " << s.message() << "\n";
  if (json) {
    boost::json::object o{
        {"ok", false}, {"error", std::string(StatusCodeName(s.code()))}, {"message", s.message()}};
    std::cout << boost::json::serialize(o) << "\n";
  }
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace cairn
