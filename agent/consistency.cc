#include "agent/consistency.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "lib/base/cli.h"
#include "lib/base/shell_command.h"

namespace cairn::agent {

namespace json = boost::json;

namespace {

std::string Joined(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : "\n") + p;
  return out;
}

// "pre-command exit 0" / "... timed out after N s" / "... could not run: why",
// then the output's tail on the same line.
std::string HookLine(const char* which, const json::value& r, size_t tail) {
  if (!r.is_object()) return "";
  const json::object& o = r.as_object();
  std::string line = std::string(which) + " ";
  if (const auto* e = o.if_contains("exit"); e != nullptr && e->is_int64()) {
    line += "exit " + std::to_string(e->as_int64());
  } else if (const auto* t = o.if_contains("timed_out");
             t != nullptr && t->is_bool() && t->as_bool()) {
    line += "timed out";
  } else if (const auto* f = o.if_contains("failure"); f != nullptr && f->is_string()) {
    line += "could not run: " + std::string(f->as_string());
  }
  if (const auto* out = o.if_contains("output_tail"); out != nullptr && out->is_string()) {
    std::string text(out->as_string());
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text.size() > tail) text = "..." + text.substr(text.size() - tail);
    for (char& c : text) {
      if (c == '\n') c = '|';
    }
    if (!text.empty()) line += ": " + text;
  }
  return line;
}

}  // namespace

json::object ConsistencyLog::Json() const {
  json::value pit = nullptr;
  if (!pit_method.empty()) {
    pit = json::object{{"method", pit_method}, {"taken", cli::Rfc3339(pit_micros)}};
  }
  return {{"point_in_time", pit},
          {"note", pit_note},
          {"pre", pre},
          {"post", post},
          {"crash_consistent_by_choice", crash_consistent_by_choice}};
}

std::string ConsistencyLog::Text(size_t limit) const {
  const size_t tail = limit / 3;
  std::string out = pit_note;
  for (const auto& line :
       {HookLine("pre-command", pre, tail), HookLine("post-command", post, tail)}) {
    if (!line.empty()) out += (out.empty() ? "" : "\n") + line;
  }
  if (crash_consistent_by_choice) {
    out += "\nthe pre-command failed and the policy continues: this backup is crash-consistent";
  }
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<ConsistencyOptions> ConsistencyOf(const proto::Job& job, const std::string& state_dir) {
  ConsistencyOptions o;
  if (!job.pit.empty()) {
    CAIRN_ASSIGN_OR_RETURN(o.pit, ParsePitMethod(job.pit));
  }
  o.pre_command = job.pre_command;
  o.post_command = job.post_command;
  if (job.hook_timeout_seconds != 0)
    o.hook_timeout = std::chrono::seconds(job.hook_timeout_seconds);
  o.continue_on_hook_failure = job.hook_failure_continue;
  o.state_dir = state_dir;
  return o;
}

Result<std::string> RunConsistently(
    const ConsistencyOptions& options, const std::vector<std::string>& paths, bool image,
    const std::function<Result<std::string>(const PitView& view)>& backup, ConsistencyLog* log) {
  const std::vector<std::pair<std::string, std::string>> base_env{{"CAIRN_PATHS", Joined(paths)}};
  bool post_done = options.post_command.empty();
  auto run_post = [&](const char* backup_status) {
    if (post_done) return;
    post_done = true;
    auto env = base_env;
    env.emplace_back("CAIRN_HOOK", "post");
    env.emplace_back("CAIRN_BACKUP_STATUS", backup_status);
    log->post = RunShellCommand(options.post_command, "/", env, options.hook_timeout);
    if (!ShellCommandPassed(log->post.as_object())) {
      spdlog::warn("post-command failed: {}", HookLine("post-command", log->post, 512));
    }
  };

  if (!options.pre_command.empty()) {
    auto env = base_env;
    env.emplace_back("CAIRN_HOOK", "pre");
    log->pre = RunShellCommand(options.pre_command, "/", env, options.hook_timeout);
    if (!ShellCommandPassed(log->pre.as_object())) {
      if (!options.continue_on_hook_failure) {
        run_post("failed");
        return Status::InvalidArgument(HookLine("pre-command", log->pre, 1024) +
                                       "; nothing was backed up");
      }
      log->crash_consistent_by_choice = true;
      spdlog::warn("pre-command failed; going on crash-consistent as the policy says");
    }
  }

  Result<std::unique_ptr<PitView>> view =
      image ? PitView::ForImages(options.state_dir, options.pit, paths)
            : PitView::ForPaths(options.state_dir, options.pit, paths);
  if (!view.ok()) {
    run_post("failed");
    return view.status().WithContext("point-in-time view");
  }
  log->pit_method = (*view)->method() == PitMethod::kNone
                        ? std::string()
                        : std::string(PitMethodName((*view)->method()));
  log->pit_micros = (*view)->taken_micros();
  log->pit_note = (*view)->note();
  if (!log->pit_method.empty()) run_post("pending");  // the view holds the instant

  Result<std::string> result = backup(**view);
  Status released = (*view)->Release();
  run_post(result.ok() ? "ok" : "failed");
  if (!released.ok()) {
    spdlog::error("point-in-time view not removed (the next start retries): {}",
                  released.ToString());
  }
  return result;
}

}  // namespace cairn::agent
