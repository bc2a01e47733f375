// A shell command that Cairn runs for its users (a drill's application
// check, a recovery plan's check after the move, a backup's pre- and
// post-command): /bin/sh -c COMMAND in a directory, in its own process
// group, with stdin from /dev/null and a timeout after which the whole
// group is killed. Never throws and never fails as a call: what went wrong
// is in the result.
#ifndef CAIRN_LIB_BASE_SHELL_COMMAND_H_
#define CAIRN_LIB_BASE_SHELL_COMMAND_H_

#include <boost/json/object.hpp>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace cairn {

// Runs `command` in `cwd` with `env` added to the environment. The result:
//   {"command", "exit": N or null, "timed_out": bool,
//    "output_tail": the last 4 KiB of stdout and stderr (control bytes as
//    '?'), "failure": why there is no exit status (absent when there is)}.
// A command waited for past its end of output (a daemon that closed its
// output) is killed at the timeout too.
boost::json::object RunShellCommand(const std::string& command, const std::string& cwd,
                                    const std::vector<std::pair<std::string, std::string>>& env,
                                    std::chrono::seconds timeout);

// Whether a RunShellCommand result is a pass: exit status 0.
bool ShellCommandPassed(const boost::json::object& result);

// `s` single-quoted for /bin/sh.
std::string ShellQuote(const std::string& s);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_SHELL_COMMAND_H_
