#include "lib/base/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "lib/base/json_escape.h"

namespace cairn {
namespace {

// %j: the message, escaped for inclusion in a JSON string.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    AppendJsonEscaped(escaped, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

// %V: the message with control characters shown as \xNN, so that nothing a
// peer sent (a host name, a file name) can forge a log line or drive an
// operator's terminal. UTF-8 text passes unchanged.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\x%02x", u);
        dest.append(std::string_view(buf));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

}  // namespace

Status InitLogging(const LogOptions& options) {
  auto level = spdlog::level::from_str(options.level);
  // from_str maps anything unknown to "off"; only accept "off" when asked for.
  if (level == spdlog::level::off && options.level != "off") {
    return Status::InvalidArgument("unknown log level '" + options.level +
                                   "' (use trace, debug, info, warn, error or off)");
  }
  spdlog::sink_ptr sink;
  const char* journal = std::getenv("JOURNAL_STREAM");
  const bool to_journal =
      options.journal_when_under_systemd && !options.json && journal != nullptr && *journal != 0;
  if (to_journal) {
    sink = std::make_shared<spdlog::sinks::systemd_sink_mt>(options.program,
                                                            /*enable_formatting=*/true);
  } else if (options.to_stderr) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::logger>(options.program, std::move(sink));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (options.json) {
    // JSON timestamps are UTC so log stores can merge sites.
    formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","prog":")" + options.program +
        R"(","pid":%P,"tid":%t,"msg":"%j"})");
  } else if (to_journal) {
    // The journal keeps the time, the program and the priority itself.
    formatter->add_flag<EscapedMessage>('V').set_pattern("%V");
  } else {
    formatter->add_flag<EscapedMessage>('V').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " +
                                                         options.program + "[%P]: %V");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
  return Status::OK();
}

}  // namespace cairn
