#include "restore/plan.h"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "lib/base/cli.h"
#include "lib/base/errno.h"
#include "lib/base/shell_command.h"
#include "lib/base/thread.h"
#include "lib/client/identity.h"
#include "lib/client/vault_link.h"
#include "lib/net/address.h"

namespace cairn::restore {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

uint64_t NowMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Seconds to the millisecond, for reports.
double Millis3(double seconds) { return std::round(seconds * 1000) / 1000; }

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool IsSystemName(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '-' || s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool IsSnapshotName(std::string_view s) {
  if (s == "latest") return true;
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Whether `inner` is `outer` or below it (both lexically normal, absolute).
bool Within(const std::string& inner, const std::string& outer) {
  if (inner == outer) return true;
  const std::string prefix = outer.ends_with('/') ? outer : outer + "/";
  return inner.starts_with(prefix);
}

// Collects every problem of a plan file, each as "FILE line N: ...".
class PlanParser {
 public:
  explicit PlanParser(const std::string& file) : file_(file) {}

  // `system`: the system's name (or "#3" before it has a valid one); empty
  // for a top-level key.
  void Error(const toml::node& node, const std::string& system, const std::string& what) {
    Error(static_cast<int>(node.source().begin.line), system, what);
  }
  void Error(int line, const std::string& system, const std::string& what) {
    std::string msg = file_;
    if (line > 0) msg += " line " + std::to_string(line);
    msg += ": ";
    if (!system.empty()) msg += "system " + system + ": ";
    errors_.push_back(msg + what);
  }

  bool String(const toml::node& n, const std::string& key, const std::string& system,
              std::string* out) {
    if (!n.is_string()) {
      Error(n, system, "key '" + key + "' must be a string");
      return false;
    }
    *out = *n.value<std::string>();
    if (out->empty()) {
      Error(n, system, "key '" + key + "' must not be empty");
      return false;
    }
    if (HasControl(*out)) {
      Error(n, system, "key '" + key + "' must not hold control characters");
      return false;
    }
    return true;
  }

  bool Int(const toml::node& n, const std::string& key, const std::string& system, int64_t min,
           int64_t max, int* out) {
    const auto v = n.value<int64_t>();
    if (!n.is_integer() || !v || *v < min || *v > max) {
      Error(n, system,
            "key '" + key + "' must be a whole number from " + std::to_string(min) + " to " +
                std::to_string(max));
      return false;
    }
    *out = static_cast<int>(*v);
    return true;
  }

  bool Strings(const toml::node& n, const std::string& key, const std::string& system,
               std::vector<std::string>* out) {
    const toml::array* a = n.as_array();
    if (a == nullptr || a->empty()) {
      Error(n, system, "key '" + key + "' must be a non-empty array of strings");
      return false;
    }
    out->clear();
    for (const toml::node& e : *a) {
      std::string s;
      if (!String(e, key + "[]", system, &s)) return false;
      out->push_back(std::move(s));
    }
    return true;
  }

  // An absolute path, lexically normal, never "/".
  bool Path(const toml::node& n, const std::string& key, const std::string& system,
            std::string* out) {
    if (!String(n, key, system, out)) return false;
    if (!out->starts_with('/')) {
      Error(n, system,
            "key '" + key +
                "' must be an absolute path (a plan runs from any directory): " + Quoted(*out));
      return false;
    }
    std::string normal = fs::path(*out).lexically_normal().string();
    while (normal.size() > 1 && normal.ends_with('/')) normal.pop_back();
    if (normal == "/") {
      Error(n, system, "key '" + key + "' must not be the root directory");
      return false;
    }
    *out = normal;
    return true;
  }

  std::vector<std::string> errors_;

 private:
  const std::string& file_;
};

bool CheckVaults(PlanParser& p, const toml::node& node, const std::string& system,
                 const std::vector<std::string>& vaults) {
  bool ok = true;
  for (const std::string& v : vaults) {
    if (auto hp = net::ParseHostPort(v); !hp.ok() || hp->host.empty()) {
      p.Error(node, system, "key 'vaults': " + Quoted(v) + " is not host:port");
      ok = false;
    }
  }
  return ok;
}

void ParseSystem(PlanParser& p, const toml::table& t, size_t index, Plan* plan) {
  PlanSystem s;
  s.line = static_cast<int>(t.source().begin.line);
  std::string who = "#" + std::to_string(index + 1);
  // The name first, so that every other message can use it.
  if (const toml::node* n = t.get("name")) {
    std::string name;
    if (p.String(*n, "name", who, &name)) {
      if (IsSystemName(name)) {
        s.name = name;
        who = Quoted(name);
      } else {
        p.Error(*n, who,
                "key 'name' must be 1 to 64 letters, digits, '.', '_' or '-' (not first): " +
                    Quoted(name));
      }
    }
  } else {
    p.Error(s.line, who, "key 'name' is missing");
  }
  bool has_priority = false, has_state = false, has_target = false, has_timeout = false;
  int timeout = 600;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    if (k == "name") continue;
    if (k == "priority") {
      has_priority = true;
      p.Int(node, k, who, 1, kMaxPlanPriority, &s.priority);
    } else if (k == "state") {
      has_state = true;
      p.Path(node, k, who, &s.state);
    } else if (k == "snapshot") {
      if (p.String(node, k, who, &s.snapshot) && !IsSnapshotName(s.snapshot)) {
        p.Error(node, who,
                "key 'snapshot' must be \"latest\", a snapshot ID or a prefix of one (lowercase "
                "hex digits): " +
                    Quoted(s.snapshot));
      }
    } else if (k == "host") {
      p.String(node, k, who, &s.host);
    } else if (k == "paths") {
      p.Strings(node, k, who, &s.paths);
    } else if (k == "target") {
      has_target = true;
      p.Path(node, k, who, &s.target);
    } else if (k == "check") {
      p.String(node, k, who, &s.check);
    } else if (k == "check_timeout") {
      has_timeout = true;
      p.Int(node, k, who, 1, 86400, &timeout);
    } else if (k == "vaults") {
      if (p.Strings(node, k, who, &s.vaults)) CheckVaults(p, node, who, s.vaults);
    } else if (k == "connections") {
      p.Int(node, k, who, 1, 64, &s.connections);
    } else {
      p.Error(node, who,
              "unknown key '" + k +
                  "' (known: name, priority, state, snapshot, host, paths, target, check, "
                  "check_timeout, vaults, connections)");
    }
  }
  if (!has_priority) p.Error(s.line, who, "key 'priority' is missing");
  if (!has_state)
    p.Error(s.line, who, "key 'state' is missing (an enrolled agent state directory)");
  if (!has_target) p.Error(s.line, who, "key 'target' is missing");
  if (has_timeout && s.check.empty()) {
    p.Error(s.line, who, "key 'check_timeout' is given without a 'check'");
  }
  s.check_timeout = std::chrono::seconds(timeout);
  plan->systems.push_back(std::move(s));
}

// What lstat says about the nearest existing ancestor of `path`.
Status CheckAncestor(const std::string& path) {
  fs::path p = fs::path(path).parent_path();
  while (!p.empty()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return Status::InvalidArgument(path + " cannot be created: " + p.string() +
                                       " is not a directory");
      }
      return Status::OK();
    }
    if (errno != ENOENT && errno != ENOTDIR) {
      return Status::InvalidArgument(ErrnoToStatus(errno, p.string()).message());
    }
    if (p == p.root_path()) break;
    p = p.parent_path();
  }
  return Status::OK();
}

// Checks every target and loads every state directory into *states.
Status CheckOnHost(const Plan& plan, std::map<std::string, client::Identity>* states) {
  std::vector<std::string> errors;
  auto error = [&](const PlanSystem& s, const std::string& what) {
    errors.push_back(plan.file + " line " + std::to_string(s.line) + ": system " + Quoted(s.name) +
                     ": " + what);
  };
  for (const PlanSystem& s : plan.systems) {
    if (Status st = CheckPlanTarget(s.target); !st.ok()) {
      error(s, "key 'target': " + st.message());
    }
    if (states->contains(s.state)) continue;
    auto identity = client::LoadIdentity(s.state);
    if (!identity.ok()) {
      error(s, "key 'state': " + identity.status().message());
      continue;
    }
    states->emplace(s.state, std::move(identity).value());
  }
  if (errors.empty()) return Status::OK();
  std::string msg;
  for (const std::string& e : errors) msg += (msg.empty() ? "" : "\n") + e;
  return Status::InvalidArgument(msg);
}

// One listing of snapshots per (state, vault addresses).
struct Listing {
  Status status;
  std::vector<proto::SnapshotInfo> snapshots;
  std::string vault;
};

std::string SnapshotFailure(const Status& s) { return "snapshot: " + s.message(); }

}  // namespace

Result<Plan> ParsePlan(std::string_view text, const std::string& file) {
  toml::table t;
  try {
    t = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(file + " line " + std::to_string(e.source().begin.line) +
                                   ": not valid TOML: " + std::string(e.description()));
  }
  PlanParser p(file);
  Plan plan;
  plan.file = file;
  bool has_name = false;
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    if (k == "format") {
      int format = 0;
      if (p.Int(node, k, "", 1, 1000, &format) && format != kPlanFormatVersion) {
        p.Error(node, "",
                "key 'format' is " + std::to_string(format) + "; this cairn-restore reads " +
                    std::to_string(kPlanFormatVersion));
      }
    } else if (k == "name") {
      has_name = true;
      p.String(node, k, "", &plan.name);
    } else if (k == "parallel") {
      p.Int(node, k, "", 1, kMaxPlanParallel, &plan.parallel);
    } else if (k == "connections") {
      p.Int(node, k, "", 1, 64, &plan.connections);
    } else if (k == "vaults") {
      std::vector<std::string> vaults;
      if (p.Strings(node, k, "", &vaults) && CheckVaults(p, node, "", vaults)) {
        plan.vaults = std::move(vaults);
      }
    } else if (k == "on_failure") {
      std::string v;
      if (p.String(node, k, "", &v)) {
        if (v == "stop") {
          plan.on_failure = OnFailure::kStop;
        } else if (v == "continue") {
          plan.on_failure = OnFailure::kContinue;
        } else {
          p.Error(node, "", "key 'on_failure' must be \"stop\" or \"continue\": " + Quoted(v));
        }
      }
    } else if (k == "system") {
      const toml::array* a = node.as_array();
      if (a == nullptr || !a->is_array_of_tables()) {
        p.Error(node, "", "'system' must be an array of tables: one [[system]] per system");
        continue;
      }
      if (a->size() > kMaxPlanSystems) {
        p.Error(node, "", "more than " + std::to_string(kMaxPlanSystems) + " systems");
        continue;
      }
      for (size_t i = 0; i < a->size(); ++i) {
        ParseSystem(p, *a->get(i)->as_table(), i, &plan);
      }
    } else if (node.is_table()) {
      p.Error(node, "", "unknown section [" + k + "] (systems are [[system]])");
    } else {
      p.Error(node, "",
              "unknown key '" + k +
                  "' (known: format, name, parallel, on_failure, connections, "
                  "system)");
    }
  }
  if (!has_name) p.Error(0, "", "key 'name' is missing (what the plan recovers)");
  if (plan.systems.empty() && !t.contains("system")) {
    p.Error(0, "", "the plan names no system (add a [[system]] table for each)");
  }
  // Names unique; targets apart (a target inside another would make that
  // one non-empty when its turn comes).
  std::map<std::string, const PlanSystem*> names;
  for (const PlanSystem& s : plan.systems) {
    if (s.name.empty()) continue;
    auto [it, fresh] = names.emplace(s.name, &s);
    if (!fresh) {
      p.Error(s.line, Quoted(s.name),
              "key 'name': a second system of this name (the first is at line " +
                  std::to_string(it->second->line) + ")");
    }
  }
  for (size_t i = 0; i < plan.systems.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const PlanSystem &a = plan.systems[j], &b = plan.systems[i];
      if (a.target.empty() || b.target.empty()) continue;
      if (Within(a.target, b.target) || Within(b.target, a.target)) {
        p.Error(b.line, Quoted(b.name),
                "key 'target': " + b.target + (a.target == b.target ? " is also" : " overlaps") +
                    " the target of system " + Quoted(a.name) + " (" + a.target + ", line " +
                    std::to_string(a.line) + ")");
      }
    }
  }
  if (!p.errors_.empty()) {
    std::string msg;
    for (const std::string& e : p.errors_) msg += (msg.empty() ? "" : "\n") + e;
    return Status::InvalidArgument(msg);
  }
  return plan;
}

Result<Plan> LoadPlan(const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return ErrnoToStatus(errno, "plan " + file);
    return Status::PermissionDenied("plan " + file + ": cannot be read");
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError("plan " + file + ": read failed");
  return ParsePlan(text.str(), file);
}

std::vector<std::vector<size_t>> PlanOrder(const Plan& plan) {
  std::map<int, std::vector<size_t>> by_priority;
  for (size_t i = 0; i < plan.systems.size(); ++i) {
    by_priority[plan.systems[i].priority].push_back(i);
  }
  std::vector<std::vector<size_t>> out;
  for (auto& [priority, group] : by_priority) out.push_back(std::move(group));
  return out;
}

Status CheckPlanTarget(const std::string& target) {
  struct stat st {};
  if (::lstat(target.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return CheckAncestor(target);
    return Status::InvalidArgument(ErrnoToStatus(errno, target).message());
  }
  if (S_ISLNK(st.st_mode)) {
    return Status::InvalidArgument(target + " is a symbolic link; name the real directory");
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(target +
                                   " exists and is not a directory (a plan restores onto new "
                                   "targets: a new path, or an empty directory)");
  }
  std::error_code ec;
  fs::directory_iterator it(target, ec);
  if (ec) return Status::InvalidArgument(target + ": " + ec.message());
  if (it != fs::directory_iterator()) {
    return Status::InvalidArgument(target + " is not empty (it holds " +
                                   Quoted(it->path().filename().string()) +
                                   "); a plan restores onto new targets only");
  }
  return Status::OK();
}

Status CheckPlanOnHost(const Plan& plan) {
  std::map<std::string, client::Identity> states;
  return CheckOnHost(plan, &states);
}

std::string_view SystemStatusName(SystemStatus s) {
  switch (s) {
    case SystemStatus::kReady:
      return "ready";
    case SystemStatus::kPassed:
      return "passed";
    case SystemStatus::kFailed:
      return "failed";
    case SystemStatus::kSkipped:
      return "skipped";
  }
  return "unknown";
}

namespace {

// The state of one plan run, shared by its worker threads.
class PlanRun {
 public:
  PlanRun(const Plan& plan, const PlanOptions& options,
          const std::map<std::string, client::Identity>& states)
      : plan_(plan), options_(options), states_(states) {}

  Result<PlanReport> Run();

 private:
  bool Cancelled() const { return options_.cancel != nullptr && options_.cancel->load(); }
  // Where a system reads from: --vault, else its own, else the plan's;
  // empty: its state's addresses.
  const std::vector<std::string>& Vaults(const PlanSystem& s) const {
    return !options_.vaults.empty() ? options_.vaults : !s.vaults.empty() ? s.vaults : plan_.vaults;
  }
  void Resolve(const std::vector<size_t>& order);
  void RunGroup(const std::vector<size_t>& group);
  void RunSystem(size_t index);
  // Marks a system finished and tells the caller (with mu_ held).
  void FinishLocked(size_t index);
  void Progress(size_t index, const RestoreProgress& p);

  const Plan& plan_;
  const PlanOptions& options_;
  const std::map<std::string, client::Identity>& states_;
  Clock::time_point start_;
  std::mutex mu_;
  std::vector<SystemReport> reports_;  // by index into plan_.systems
  std::map<size_t, RestoreProgress> running_;
  Clock::time_point last_progress_{};
  size_t done_ = 0;
};

void PlanRun::Resolve(const std::vector<size_t>& order) {
  std::map<std::string, Listing> listings;
  for (size_t i : order) {
    const PlanSystem& s = plan_.systems[i];
    SystemReport& r = reports_[i];
    const client::Identity& identity = states_.at(s.state);
    const std::vector<std::string>& vaults = Vaults(s);
    const std::vector<std::string>& addresses =
        vaults.empty() ? identity.config.vault_addresses : vaults;
    std::string key = s.state;
    for (const std::string& a : addresses) key += "\n" + a;
    auto it = listings.find(key);
    if (it == listings.end()) {
      Listing l;
      auto link = client::VaultLink::Open(identity, addresses, {});
      if (!link.ok()) {
        l.status = link.status();
      } else {
        l.vault = (*link)->address();
        auto list = (*link)->ListSnapshots();
        if (list.ok()) {
          l.snapshots = std::move(list).value();
        } else {
          l.status = list.status();
        }
      }
      it = listings.emplace(key, std::move(l)).first;
    }
    const Listing& l = it->second;
    if (!l.status.ok()) {
      r.status = SystemStatus::kFailed;
      r.failure = SnapshotFailure(l.status);
      continue;
    }
    SnapshotFilter filter;
    filter.host = s.host == "*" ? "" : s.host.empty() ? identity.config.host : s.host;
    filter.paths = s.paths;
    auto snap = FindSnapshot(l.snapshots, s.snapshot, filter);
    if (!snap.ok()) {
      r.status = SystemStatus::kFailed;
      r.failure = SnapshotFailure(snap.status());
      continue;
    }
    r.snapshot = snap->id;
    r.snapshot_host = snap->hostname;
    r.snapshot_time_micros = snap->time_micros;
    r.image = snap->kind == proto::SessionKind::kImage;
    r.vault = l.vault;
  }
}

void PlanRun::FinishLocked(size_t index) {
  ++done_;
  running_.erase(index);
  if (options_.on_finished) options_.on_finished(reports_[index]);
}

void PlanRun::Progress(size_t index, const RestoreProgress& p) {
  std::lock_guard lock(mu_);
  running_[index] = p;
  if (!options_.progress) return;
  const auto now = Clock::now();
  if (now - last_progress_ < std::chrono::milliseconds(250)) return;
  last_progress_ = now;
  PlanProgress out;
  for (const auto& [i, rp] : running_) {
    out.running.push_back(plan_.systems[i].name);
    out.total.bytes_done += rp.bytes_done;
    out.total.bytes_total += rp.bytes_total;
    out.total.files_done += rp.files_done;
    out.total.files_total += rp.files_total;
    out.total.bytes_received += rp.bytes_received;
  }
  out.total.seconds = SecondsSince(start_);
  out.systems_done = done_;
  out.systems_total = plan_.systems.size();
  options_.progress(out);
}

void PlanRun::RunSystem(size_t index) {
  const PlanSystem& s = plan_.systems[index];
  SystemReport r;
  {
    std::lock_guard lock(mu_);
    r = reports_[index];
    running_[index] = RestoreProgress{};
  }
  r.started_micros = NowMicros();
  const auto t0 = Clock::now();
  RestoreOptions ro;
  ro.target = s.target;
  ro.vaults = Vaults(s);
  ro.connections = s.connections > 0 ? s.connections : plan_.connections;
  ro.cancel = options_.cancel;
  ro.progress = [this, index](const RestoreProgress& p) { Progress(index, p); };
  auto restored = Restore(states_.at(s.state), r.snapshot, ro);
  r.seconds_restore = SecondsSince(t0);
  if (!restored.ok()) {
    r.status = SystemStatus::kFailed;
    r.failure =
        restored.status().IsCancelled() ? "interrupted" : "restore: " + restored.status().message();
  } else {
    r.vault = restored->vault;
    r.image = restored->image_target;
    r.files = restored->files;
    r.dirs = restored->dirs;
    r.bytes = restored->bytes;
    r.damaged = restored->damaged;
    r.warnings = restored->warnings;
    if (!r.damaged.empty()) {
      r.status = SystemStatus::kFailed;
      r.failure = std::to_string(r.damaged.size()) +
                  " damaged object(s): " + r.damaged.front().what + ": " + r.damaged.front().error;
    } else if (!s.check.empty()) {
      const auto t1 = Clock::now();
      const std::string cwd = r.image ? fs::path(s.target).parent_path().string() : s.target;
      json::object check = RunShellCommand(s.check, cwd,
                                           {{"CAIRN_PLAN_SYSTEM", s.name},
                                            {"CAIRN_PLAN_TARGET", s.target},
                                            {"CAIRN_PLAN_SNAPSHOT", r.snapshot}},
                                           s.check_timeout);
      r.seconds_check = SecondsSince(t1);
      if (!ShellCommandPassed(check)) {
        r.status = SystemStatus::kFailed;
        if (check["timed_out"].as_bool()) {
          r.failure = "check timed out after " + std::to_string(s.check_timeout.count()) + " s";
        } else if (check["exit"].is_number()) {
          r.failure = "check failed: exit " + json::serialize(check["exit"]);
        } else {
          r.failure = "check failed: " + (check.contains("failure")
                                              ? std::string(check["failure"].as_string())
                                              : std::string("no exit status"));
        }
      } else {
        r.status = SystemStatus::kPassed;
      }
      r.check = std::move(check);
    } else {
      r.status = SystemStatus::kPassed;
    }
  }
  r.seconds_total = SecondsSince(t0);
  r.finished_micros = NowMicros();
  std::lock_guard lock(mu_);
  reports_[index] = std::move(r);
  FinishLocked(index);
}

void PlanRun::RunGroup(const std::vector<size_t>& group) {
  std::vector<size_t> runnable;
  {
    std::lock_guard lock(mu_);
    for (size_t i : group) {
      // Its snapshot did not resolve (on_failure "continue"): reported now,
      // at its turn.
      if (reports_[i].status == SystemStatus::kFailed) {
        FinishLocked(i);
      } else {
        runnable.push_back(i);
      }
    }
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (;;) {
      const size_t k = next.fetch_add(1);
      if (k >= runnable.size()) return;
      if (Cancelled()) {
        std::lock_guard lock(mu_);
        reports_[runnable[k]].status = SystemStatus::kSkipped;
        reports_[runnable[k]].failure = "not run: interrupted";
        FinishLocked(runnable[k]);
        continue;
      }
      RunSystem(runnable[k]);
    }
  };
  // This thread is one of the workers; a thread that cannot be started
  // only means less parallelism.
  const size_t n = std::min(runnable.size(), static_cast<size_t>(plan_.parallel));
  std::vector<std::thread> threads =
      StartThreads("a plan worker thread", n > 0 ? n - 1 : 0, [&worker](size_t) { worker(); });
  worker();
  for (auto& t : threads) t.join();
}

Result<PlanReport> PlanRun::Run() {
  start_ = Clock::now();
  PlanReport report;
  report.file = plan_.file;
  report.name = plan_.name;
  report.parallel = plan_.parallel;
  report.on_failure = plan_.on_failure;
  report.dry_run = options_.dry_run;
  report.started_micros = NowMicros();
  reports_.resize(plan_.systems.size());
  for (size_t i = 0; i < plan_.systems.size(); ++i) {
    const PlanSystem& s = plan_.systems[i];
    reports_[i].name = s.name;
    reports_[i].priority = s.priority;
    reports_[i].state = s.state;
    reports_[i].target = s.target;
  }
  const std::vector<std::vector<size_t>> order = PlanOrder(plan_);
  std::vector<size_t> flat;
  for (const auto& g : order) flat.insert(flat.end(), g.begin(), g.end());
  Resolve(flat);

  if (options_.on_start) {
    PlanReport so_far = report;
    for (size_t i : flat) so_far.systems.push_back(reports_[i]);
    std::lock_guard lock(mu_);
    options_.on_start(so_far);
  }
  const bool unresolved = std::any_of(reports_.begin(), reports_.end(), [](const SystemReport& r) {
    return r.status == SystemStatus::kFailed;
  });
  if (options_.dry_run) {
    // Nothing runs: what resolved stays ready.
  } else {
    std::string stopped_by;  // the failed system that stops the plan
    if (unresolved && plan_.on_failure == OnFailure::kStop) {
      for (size_t i : flat) {
        if (reports_[i].status == SystemStatus::kFailed) {
          stopped_by = "the snapshot of system " + Quoted(reports_[i].name) +
                       " could not be resolved and on_failure is \"stop\"";
          break;
        }
      }
    }
    for (const auto& group : order) {
      if (stopped_by.empty() && !Cancelled()) {
        RunGroup(group);
        if (plan_.on_failure == OnFailure::kStop) {
          for (size_t i : group) {
            if (reports_[i].status == SystemStatus::kFailed) {
              stopped_by = "system " + Quoted(reports_[i].name) + " (priority " +
                           std::to_string(reports_[i].priority) +
                           ") failed and on_failure is \"stop\"";
              break;
            }
          }
        }
        continue;
      }
      std::lock_guard lock(mu_);
      for (size_t i : group) {
        SystemReport& r = reports_[i];
        if (r.status == SystemStatus::kFailed) {
          FinishLocked(i);  // unresolved: its own failure
          continue;
        }
        r.status = SystemStatus::kSkipped;
        r.failure = "not run: " + (stopped_by.empty() ? std::string("interrupted") : stopped_by);
        FinishLocked(i);
      }
    }
  }
  report.cancelled = Cancelled() && !options_.dry_run;
  for (size_t i : flat) report.systems.push_back(std::move(reports_[i]));
  report.finished_micros = NowMicros();
  report.total_seconds = SecondsSince(start_);
  report.ok =
      !report.cancelled &&
      std::all_of(report.systems.begin(), report.systems.end(), [&](const SystemReport& r) {
        return r.status == (options_.dry_run ? SystemStatus::kReady : SystemStatus::kPassed);
      });
  return report;
}

}  // namespace

Result<PlanReport> RunPlan(const Plan& plan, const PlanOptions& options) {
  if (plan.systems.empty())
    return Status::InvalidArgument(plan.file + ": the plan names no system");
  std::map<std::string, client::Identity> states;
  CAIRN_RETURN_IF_ERROR(CheckOnHost(plan, &states));
  PlanRun run(plan, options, states);
  return run.Run();
}

json::object PlanReportJson(const PlanReport& report) {
  json::array systems;
  uint64_t passed = 0, failed = 0, skipped = 0;
  auto time_or_null = [](uint64_t micros) -> json::value {
    return micros == 0 ? json::value(nullptr) : json::value(cli::Rfc3339(micros));
  };
  for (const SystemReport& r : report.systems) {
    passed += r.status == SystemStatus::kPassed;
    failed += r.status == SystemStatus::kFailed;
    skipped += r.status == SystemStatus::kSkipped;
    json::array damaged;
    for (const Damage& d : r.damaged) {
      damaged.push_back(json::object{{"what", d.what},
                                     {"error", d.error},
                                     {"paths", json::array(d.paths.begin(), d.paths.end())}});
    }
    systems.push_back(json::object{
        {"name", r.name},
        {"priority", r.priority},
        {"status", std::string(SystemStatusName(r.status))},
        {"ok", r.ok()},
        {"failure", r.failure.empty() ? json::value(nullptr) : json::value(r.failure)},
        {"state", r.state},
        {"target", r.target},
        {"snapshot", r.snapshot.empty() ? json::value(nullptr) : json::value(r.snapshot)},
        {"snapshot_host", r.snapshot.empty() ? json::value(nullptr) : json::value(r.snapshot_host)},
        {"snapshot_time", time_or_null(r.snapshot_time_micros)},
        {"vault", r.vault.empty() ? json::value(nullptr) : json::value(r.vault)},
        {"image", r.image},
        {"files", r.files},
        {"dirs", r.dirs},
        {"bytes", r.bytes},
        {"damaged", std::move(damaged)},
        {"warnings", json::array(r.warnings.begin(), r.warnings.end())},
        {"started", time_or_null(r.started_micros)},
        {"finished", time_or_null(r.finished_micros)},
        {"seconds_restore", Millis3(r.seconds_restore)},
        {"seconds_check", Millis3(r.seconds_check)},
        {"seconds_total", Millis3(r.seconds_total)},
        {"check", r.check}});
  }
  return json::object{{"ok", report.ok},
                      {"plan", report.name},
                      {"file", report.file},
                      {"dry_run", report.dry_run},
                      {"cancelled", report.cancelled},
                      {"parallel", report.parallel},
                      {"on_failure", report.on_failure == OnFailure::kStop ? "stop" : "continue"},
                      {"started", time_or_null(report.started_micros)},
                      {"finished", time_or_null(report.finished_micros)},
                      {"total_seconds", Millis3(report.total_seconds)},
                      {"passed", passed},
                      {"failed", failed},
                      {"skipped", skipped},
                      {"systems", std::move(systems)}};
}

}  // namespace cairn::restore
