#include "lib/base/cli.h"

#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "lib/base/json_escape.h"

namespace cairn::cli {
namespace {

void Serialize(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      break;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case boost::json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case boost::json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case boost::json::kind::double_: {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.6f", v.get_double());
      std::string text = buf;
      if (text.find('.') != std::string::npos) {
        while (text.back() == '0') text.pop_back();
        if (text.back() == '.') text.pop_back();
      }
      if (text == "-0") text = "0";
      // nan and inf have no JSON form.
      out += (text.find_first_of("ni") != std::string::npos) ? "null" : text;
      break;
    }
    case boost::json::kind::string:
      out += '"';
      AppendJsonEscaped(out, std::string_view(v.get_string().data(), v.get_string().size()));
      out += '"';
      break;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out += ',';
        first = false;
        Serialize(out, item);
      }
      out += ']';
      break;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += '"';
        AppendJsonEscaped(out, std::string_view(key.data(), key.size()));
        out += "\":";
        Serialize(out, item);
      }
      out += '}';
      break;
    }
  }
}

bool HasJsonFlag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--json") return true;
  }
  return false;
}

}  // namespace

std::string ExitCodesHelp() {
  return "Exit codes: 0 success; 1 failure (or damage found); 2 bad usage or input;\n"
         "3 done with warnings; 4 no vault reachable; 5 not found.";
}

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kUnavailable:
      return kExitUnreachable;
    case StatusCode::kNotFound:
      return kExitNotFound;
    default:
      return kExitFailure;
  }
}

int Fail(std::string_view program, bool json, const Status& s) {
  const int code = ExitCodeFor(s);
  std::cerr << program << ": " << s.message() << std::endl;
  if (json) {
    PrintJson(boost::json::object{{"ok", false},
                                  {"error", std::string(StatusCodeName(s.code()))},
                                  {"exit", code},
                                  {"message", s.message()}});
  }
  return code;
}

std::string ToJson(const boost::json::value& v) {
  std::string out;
  Serialize(out, v);
  return out;
}

void PrintJson(const boost::json::value& v) { std::cout << ToJson(v) << std::endl; }

std::string Rfc3339(uint64_t micros) {
  if (micros == 0) return "";
  const std::time_t t = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>((micros / 1000) % 1000));
  return buf;
}

std::string CommonFlags::Level(std::string_view fallback) const {
  if (!log_level.empty()) return log_level;
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  int i = 3;
  for (int k = 0; k < 6; ++k) {
    if (fallback == kLevels[k]) i = k;
  }
  if (quiet) i = std::min(i + 1, 5);
  i = std::max(i - verbose, 0);
  return kLevels[i];
}

std::string VersionString(std::string_view program) {
  return std::string(program) + " " + CAIRN_VERSION;
}

void Examples(CLI::App* command, std::string text) {
  command->footer(text + "\n\n" + ExitCodesHelp());
}

void AddCommonFlags(CLI::App& app, CommonFlags* flags, std::string_view program) {
  app.set_version_flag("--version", VersionString(program), "Print the version and exit");
  app.add_option("--log-level", flags->log_level, "trace, debug, info, warn, error or off");
  app.add_flag("-q,--quiet", flags->quiet, "Log less (errors only)");
  app.add_flag("-v,--verbose", flags->verbose, "Log more (repeat for more)");
  // Options of the command are accepted after a subcommand's name too.
  app.fallthrough();
  app.footer(ExitCodesHelp());
}

void AddJsonFlag(CLI::App* command, CommonFlags* flags) {
  command->add_flag("--json", flags->json, "Print the result as one JSON object on stdout");
}

int Parse(CLI::App& app, int argc, char** argv, std::string_view program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    if (message.empty()) message = "bad usage";
    std::cerr << program << ": " << message << "\n(run " << program << " --help)" << std::endl;
    if (HasJsonFlag(argc, argv)) {
      PrintJson(boost::json::object{
          {"ok", false}, {"error", "InvalidArgument"}, {"exit", kExitUsage}, {"message", message}});
    }
    return kExitUsage;
  }
  return -1;
}

}  // namespace cairn::cli
