// Logging set-up. Components log through spdlog's default logger after
// calling InitLogging() once in main(); libraries never configure logging.
#ifndef CAIRN_LIB_BASE_LOGGING_H_
#define CAIRN_LIB_BASE_LOGGING_H_

#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace cairn {

struct LogOptions {
  // Program name, shown in every line ("cairn-vault").
  std::string program = "cairn";
  // "trace", "debug", "info", "warn", "error", "off". Default "info": enough
  // for operators to follow sessions without drowning a journal.
  std::string level = "info";
  // One JSON object per line instead of text: for shipping to a log store.
  // Default false: people read the text form on a terminal.
  bool json = false;
  // Log to stderr (default) so stdout stays free for --json results.
  bool to_stderr = true;
  // Under systemd (its JOURNAL_STREAM is set), log to journald instead, with
  // each line's priority. Default true.
  bool journal_when_under_systemd = true;
};

// Replaces spdlog's default logger. InvalidArgument for an unknown level.
// Not thread-safe against concurrent logging; call before starting threads.
Status InitLogging(const LogOptions& options);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_LOGGING_H_
