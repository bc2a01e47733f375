// The conventions every Cairn command line keeps (cairn-vault, cairn-agent,
// cairn-restore, cairn-replicator), in one place:
//
//   - exit codes (kExit*), listed in every --help and in the README;
//   - a usage error exits 2, with a JSON error on stdout when --json was
//     asked for; --help and --version exit 0;
//   - --version, -q/--quiet, -v/--verbose and --log-level on every command,
//     before or after the subcommand;
//   - --json output is one valid UTF-8 JSON object on stdout, whatever bytes
//     file names hold (ToJson), with times in RFC 3339;
//   - a failure is "<program>: <message>" on stderr.
#ifndef CAIRN_LIB_BASE_CLI_H_
#define CAIRN_LIB_BASE_CLI_H_

#include <CLI/CLI.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace cairn::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // the command failed, or found damage
inline constexpr int kExitUsage = 2;        // bad usage or bad input
inline constexpr int kExitWarnings = 3;     // done, with warnings (a file that vanished)
inline constexpr int kExitUnreachable = 4;  // no vault answered
inline constexpr int kExitNotFound = 5;     // what was named does not exist

// The exit-code table for --help footers and the README.
std::string ExitCodesHelp();

// The exit code of a failed status: InvalidArgument 2, Unavailable 4,
// NotFound 5, anything else 1.
int ExitCodeFor(const Status& s);

// Prints "<program>: <message>" on stderr and, when `json`, one object
// {"ok":false,"error":"<code name>","exit":N,"message":"..."} on stdout.
// Returns the exit code (ExitCodeFor).
int Fail(std::string_view program, bool json, const Status& s);

// JSON text of `v`, always valid UTF-8 (it is ASCII: everything beyond is
// escaped). A string that is not valid UTF-8, such as a file name in
// another encoding, keeps its valid characters, and each byte that is not
// part of one becomes the escape \udcXX (XX: the byte), Python's
// "surrogateescape": json.loads(text)[...].encode("utf-8", "surrogateescape")
// gives back the original bytes. Doubles print in plain decimal notation,
// never with an exponent.
std::string ToJson(const boost::json::value& v);
// ToJson(v) and a newline on stdout, flushed (JSON lines stream).
void PrintJson(const boost::json::value& v);

// "2026-12-02T07:53:18.513Z": UTC with milliseconds. 0 gives "".
std::string Rfc3339(uint64_t micros);

// Flags every command has.
struct CommonFlags {
  std::string log_level;  // empty: the command's default, moved by -q/-v
  bool quiet = false;
  int verbose = 0;
  bool json = false;  // --json, on the commands that print results

  // The level to log at: --log-level if given, else `fallback` made one
  // step quieter by -q or louder by each -v.
  std::string Level(std::string_view fallback) const;
};

// "cairn-agent 0.1.0": the program and the project's version.
std::string VersionString(std::string_view program);

// Adds --version, -q, -v and --log-level to `app` (accepted after a
// subcommand too), the exit-code table to its footer, and usage errors
// that exit 2.
void AddCommonFlags(CLI::App& app, CommonFlags* flags, std::string_view program);

// A subcommand's footer: its examples, then the exit codes.
void Examples(CLI::App* command, std::string text);

// Adds --json to a (sub)command, bound to flags->json.
void AddJsonFlag(CLI::App* command, CommonFlags* flags);

// Parses argv. Returns -1 when the command should run, else the exit code
// to return at once (0 after --help or --version; 2 after a usage error,
// which is printed on stderr and, when --json is among the arguments, as a
// JSON error on stdout).
int Parse(CLI::App& app, int argc, char** argv, std::string_view program);

}  // namespace cairn::cli

#endif  // CAIRN_LIB_BASE_CLI_H_
