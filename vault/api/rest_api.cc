#include "vault/api/rest_api.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <set>
#include <sstream>

#include "lib/base/cli.h"
#include "lib/base/names.h"
#include "lib/client/snapshot_json.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "vault/rpc/server.h"

namespace cairn::vault {

namespace json = boost::json;

namespace {

constexpr std::string_view kSessionCookie = "cairn_session";

// A request body's fields, read by name; whatever is left unread is an
// unknown field, refused.
class Body {
 public:
  explicit Body(const json::object* o) : o_(o) {}
  Result<std::string> String(std::string_view key, bool required = true) {
    seen_.insert(std::string(key));
    auto it = o_ ? o_->find(key) : nullptr;
    if (!o_ || it == o_->end() || it->value().is_null()) {
      if (required) return Status::InvalidArgument("field '" + std::string(key) + "' is required");
      return std::string();
    }
    if (!it->value().is_string()) {
      return Status::InvalidArgument("field '" + std::string(key) + "' must be a string");
    }
    return std::string(it->value().get_string());
  }
  Result<std::vector<std::string>> Strings(std::string_view key) {
    seen_.insert(std::string(key));
    std::vector<std::string> out;
    auto it = o_ ? o_->find(key) : nullptr;
    if (!o_ || it == o_->end() || it->value().is_null()) return out;
    if (!it->value().is_array()) {
      return Status::InvalidArgument("field '" + std::string(key) + "' must be a list of strings");
    }
    for (const auto& v : it->value().get_array()) {
      if (!v.is_string()) {
        return Status::InvalidArgument("field '" + std::string(key) +
                                       "' must be a list of strings");
      }
      out.emplace_back(v.get_string());
    }
    return out;
  }
  Result<bool> Bool(std::string_view key) {
    seen_.insert(std::string(key));
    auto it = o_ ? o_->find(key) : nullptr;
    if (!o_ || it == o_->end() || it->value().is_null()) return false;
    if (!it->value().is_bool()) {
      return Status::InvalidArgument("field '" + std::string(key) + "' must be true or false");
    }
    return it->value().get_bool();
  }
  Result<uint64_t> Number(std::string_view key, uint64_t fallback) {
    seen_.insert(std::string(key));
    auto it = o_ ? o_->find(key) : nullptr;
    if (!o_ || it == o_->end() || it->value().is_null()) return fallback;
    if (it->value().is_uint64()) return it->value().get_uint64();
    if (it->value().is_int64() && it->value().get_int64() >= 0) {
      return static_cast<uint64_t>(it->value().get_int64());
    }
    return Status::InvalidArgument("field '" + std::string(key) + "' must be a whole number");
  }
  // InvalidArgument naming the first field nobody asked for.
  Status Done() const {
    if (!o_) return Status::OK();
    for (const auto& kv : *o_) {
      if (!seen_.contains(std::string(kv.key()))) {
        return Status::InvalidArgument("unknown field '" + EscapeForLog(kv.key()) + "'");
      }
    }
    return Status::OK();
  }

 private:
  const json::object* o_;
  std::set<std::string> seen_;
};

http::Response Json(int status, const json::value& v) {
  http::Response r;
  r.status = status;
  r.body = cli::ToJson(v);
  return r;
}

// The HTTP answer to a refusal.
http::Response FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return http::JsonError(400, "invalid_argument", s.message());
    case StatusCode::kPermissionDenied:
      return http::JsonError(403, "forbidden", s.message());
    case StatusCode::kNotFound:
      return http::JsonError(404, "not_found", s.message());
    case StatusCode::kNoSpace:
      return http::JsonError(507, "no_space", s.message());
    case StatusCode::kUnavailable:
      return http::JsonError(503, "unavailable", s.message());
    default:
      spdlog::error("REST: {}", s.ToString());
      return http::JsonError(500, "internal", "the vault could not do that; see its log");
  }
}

json::object DepartmentJson(const Department& d) {
  return {{"id", d.id}, {"name", d.name}, {"created", cli::Rfc3339(d.created_micros)}};
}

json::object AgentJson(const AgentRecord& a, const std::string& department) {
  return {{"serial", a.serial},
          {"department", department},
          {"host", a.host},
          {"role", a.department_id == 0 ? "replicator" : "agent"},
          {"enrolled", cli::Rfc3339(a.enrolled_micros)},
          {"revoked", a.revoked},
          {"drill_host", a.drill_host},
          {"revoked_at",
           a.revoked ? json::value(cli::Rfc3339(a.revoked_micros)) : json::value(nullptr)},
          {"last_seen", a.last_seen_micros != 0 ? json::value(cli::Rfc3339(a.last_seen_micros))
                                                : json::value(nullptr)}};
}

json::object UserJson(const UserRecord& u) {
  return {{"user", u.name},
          {"role", u.role},
          {"departments", json::array(u.departments.begin(), u.departments.end())},
          {"disabled", u.disabled},
          {"created", cli::Rfc3339(u.created_micros)}};
}

// Session IDs and CSRF tokens. The kernel's random source does not fail
// once the system is up; if it ever did, no session may get a guessable ID.
std::string RandomHex(size_t bytes) {
  Bytes b(bytes);
  if (Status s = crypto::SecureRandom(b); !s.ok()) {
    spdlog::critical("no randomness for a session: {}", s.ToString());
    std::abort();
  }
  return ToHex(b);
}

}  // namespace

boost::json::object AlertJson(const AlertRecord& a) {
  return {{"alert", a.id},
          {"key", a.key},
          {"rule", a.rule},
          {"severity", a.severity},
          {"department", a.department},
          {"summary", a.summary},
          {"firing", a.firing()},
          {"fired", cli::Rfc3339(a.fired_micros)},
          {"resolved",
           a.firing() ? json::value(nullptr) : json::value(cli::Rfc3339(a.resolved_micros))}};
}

boost::json::object SourceJson(const SourceRecord& s, const std::string& department) {
  return {{"source", s.id},
          {"department", department},
          {"host", s.host},
          {"policy", s.policy},
          {"paths", json::array(s.paths.begin(), s.paths.end())},
          {"excludes", json::array(s.excludes.begin(), s.excludes.end())},
          {"image", s.image},
          {"point_in_time", s.pit},
          {"pre_command", s.pre_command},
          {"post_command", s.post_command},
          {"hook_timeout_seconds", s.hook_timeout},
          {"created", cli::Rfc3339(s.created_micros)},
          {"last_job", s.last_job == 0 ? json::value(nullptr) : json::value(s.last_job)}};
}

boost::json::object SeriesPlanJson(const VaultService::SeriesPlan& plan) {
  json::array decisions;
  for (const auto& d : plan.decisions) {
    decisions.push_back({{"snapshot", d.id},
                         {"time", cli::Rfc3339(d.time_micros)},
                         {"keep", d.keep},
                         {"forgotten", d.forgotten},
                         {"reasons", json::array(d.reasons.begin(), d.reasons.end())}});
  }
  return {{"department", plan.department},
          {"host", plan.host},
          {"paths", json::array(plan.paths.begin(), plan.paths.end())},
          {"image", plan.image},
          {"source", plan.source_id == 0 ? json::value(nullptr) : json::value(plan.source_id)},
          {"policy", plan.policy},
          {"snapshots", std::move(decisions)}};
}

boost::json::object SnapshotRecordJson(const SnapshotRecord& s, const std::string& department) {
  boost::json::object o = client::SnapshotJson(ToSnapshotInfo(s));
  o["department"] = department;
  o["chunks"] = s.manifest_count;
  o["locked_until"] = s.locked_until_micros == 0
                          ? boost::json::value(nullptr)
                          : boost::json::value(cli::Rfc3339(s.locked_until_micros));
  o["damaged"] = s.damaged_micros == 0 ? boost::json::value(nullptr)
                                       : boost::json::value(cli::Rfc3339(s.damaged_micros));
  return o;
}

boost::json::object JobJson(const JobRecord& j, const std::string& department) {
  json::object o{{"job", j.id},
                 {"state", std::string(JobStateName(j.state))},
                 {"department", department},
                 {"host", j.host},
                 {"agent_serial", j.agent_serial},
                 {"paths", json::array(j.paths.begin(), j.paths.end())},
                 {"image", j.image},
                 {"created", cli::Rfc3339(j.created_micros)},
                 {"sent", cli::Rfc3339(j.sent_micros)},
                 {"finished", cli::Rfc3339(j.finished_micros)}};
  if (j.state == JobState::kDone) o["snapshot"] = j.snapshot_id;
  if (j.state == JobState::kFailed || j.state == JobState::kMissed) o["error"] = j.error;
  if (j.source_id != 0) o["source"] = j.source_id;
  o["kind"] = j.kind == 3 ? "restore" : j.kind == 2 ? "drill" : "backup";
  if (j.kind == 2) o["drill_snapshot"] = j.read_snapshot;
  if (j.kind == 3) {
    o["restore_snapshot"] = j.read_snapshot;
    o["restore_target"] = j.restore_target;
  }
  if (j.kind == 1) o["point_in_time"] = j.pit;
  if (!j.log.empty()) o["log"] = j.log;
  return o;
}

boost::json::object JobStatsJson(const SnapshotRecord& s) {
  return {{"files", s.files},
          {"bytes", s.bytes},
          {"new_bytes", s.new_bytes},
          {"stored_bytes", s.stored_bytes},
          {"warnings", s.warnings},
          {"seconds",
           static_cast<double>(s.finished_micros - std::min(s.finished_micros, s.started_micros)) /
               1e6}};
}

std::map<uint64_t, SnapshotRecord> JobSnapshots(const VaultService& service,
                                                const std::vector<JobRecord>& jobs) {
  std::map<uint32_t, std::map<std::string, uint64_t>> wanted;  // department -> snapshot -> job
  for (const auto& j : jobs) {
    if (j.state == JobState::kDone && j.kind != 2 && j.kind != 3) {
      wanted[j.department_id][j.snapshot_id] = j.id;
    }
  }
  std::map<uint64_t, SnapshotRecord> out;
  for (const auto& [d, by_snapshot] : wanted) {
    auto list = service.vault()->catalog()->ListSnapshots(d, 0);
    if (!list.ok()) continue;
    for (auto& s : *list) {
      if (auto it = by_snapshot.find(s.id); it != by_snapshot.end()) {
        out.emplace(it->second, std::move(s));
      }
    }
  }
  return out;
}

boost::json::object ProtectionReportJson(const VaultService::ProtectionReport& report) {
  auto time = [](uint64_t micros) {
    return micros == 0 ? json::value(nullptr) : json::value(cli::Rfc3339(micros));
  };
  auto text = [](const std::string& v) {
    return v.empty() ? json::value(nullptr) : json::value(v);
  };
  json::array sources;
  for (const auto& st : report.sources) {
    sources.push_back(
        {{"source", st.source.id},
         {"department", st.department},
         {"host", st.source.host},
         {"paths", json::array(st.source.paths.begin(), st.source.paths.end())},
         {"image", st.source.image},
         {"policy", st.policy.name},
         {"rpo_seconds", st.policy.rpo_seconds},
         {"last_good_snapshot", text(st.last_good_snapshot)},
         {"last_good", time(st.last_good_micros)},
         {"last_good_point_in_time", st.last_good_micros == 0   ? json::value(nullptr)
                                     : st.last_good_pit.empty() ? json::value("live")
                                                                : json::value(st.last_good_pit)},
         {"age_seconds",
          st.last_good_micros != 0 ? json::value(st.age_seconds) : json::value(nullptr)},
         {"snapshots", st.snapshots},
         {"damaged_snapshots", st.damaged_snapshots},
         {"rpo", st.rpo},
         {"next_run", time(st.next_run_micros)},
         {"offsite", st.offsite},
         {"last_failure", text(st.last_failure)},
         {"last_failure_time", time(st.last_failure_micros)},
         {"running_job",
          st.running_job != 0 ? json::value(st.running_job) : json::value(nullptr)}});
  }
  auto strings = [](const std::vector<std::string>& v) { return json::array(v.begin(), v.end()); };
  return {{"time", cli::Rfc3339(report.time_micros)},
          {"sources", std::move(sources)},
          {"unprotected_series", strings(report.unprotected_series)},
          {"agents_without_source", strings(report.agents_without_source)},
          {"agents_unseen", strings(report.agents_unseen)}};
}

struct RestApi::Call {
  RestApi* api;
  VaultService* service;
  const http::Request& request;
  Actor actor;
  std::map<std::string, std::string> params;
  const json::object* body = nullptr;
  const ApiOptions* options = nullptr;

  std::string DepartmentName(uint32_t id) const {
    auto d = service->vault()->catalog()->FindDepartment(id);
    return d.ok() ? d->name : std::to_string(id);
  }
};

// The policy fields a request gives, applied over `p` (absent ones stay).
Status PolicyFields(Body& b, const json::object* body, Policy& p) {
  auto has = [&](const char* key) { return body != nullptr && body->contains(key); };
  if (has("schedule")) {
    CAIRN_ASSIGN_OR_RETURN(p.schedule, b.String("schedule", false));
  }
  struct Count {
    const char* key;
    uint32_t* out;
  };
  for (const Count& k :
       {Count{"keep_last", &p.keep.last}, Count{"keep_hourly", &p.keep.hourly},
        Count{"keep_daily", &p.keep.daily}, Count{"keep_weekly", &p.keep.weekly},
        Count{"keep_monthly", &p.keep.monthly}, Count{"keep_yearly", &p.keep.yearly}}) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t v, b.Number(k.key, *k.out));
    if (v > 100000) return Status::InvalidArgument(std::string(k.key) + " is at most 100000");
    *k.out = static_cast<uint32_t>(v);
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t level,
                         b.Number("zstd_level", static_cast<uint64_t>(p.zstd_level)));
  if (level > 22) return Status::InvalidArgument("zstd_level is 1..19");
  p.zstd_level = static_cast<int>(level);
  if (has("offsite")) {
    CAIRN_ASSIGN_OR_RETURN(p.offsite, b.Bool("offsite"));
  }
  for (auto [key, out] :
       {std::pair{"rpo_seconds", &p.rpo_seconds}, std::pair{"rto_seconds", &p.rto_seconds},
        std::pair{"drill_every_seconds", &p.drill_every_seconds},
        std::pair{"lock_seconds", &p.lock_seconds},
        std::pair{"bandwidth_bytes_per_second", &p.bandwidth_bytes_per_second}}) {
    CAIRN_ASSIGN_OR_RETURN(*out, b.Number(key, *out));
  }
  if (has("drill_check")) {
    CAIRN_ASSIGN_OR_RETURN(p.drill_check, b.String("drill_check", false));
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t check_timeout,
                         b.Number("drill_check_timeout_seconds", p.drill_check_timeout_seconds));
  if (check_timeout > 86400) {
    return Status::InvalidArgument("drill_check_timeout_seconds is at most 86400");
  }
  p.drill_check_timeout_seconds = static_cast<uint32_t>(check_timeout);
  if (has("hook_failure")) {
    CAIRN_ASSIGN_OR_RETURN(std::string f, b.String("hook_failure"));
    if (f != "fail" && f != "continue") {
      return Status::InvalidArgument("hook_failure is \"fail\" or \"continue\"");
    }
    p.hook_failure_continue = f == "continue";
  }
  return b.Done();
}

json::value TimeOrNull(uint64_t micros) {
  return micros == 0 ? json::value(nullptr) : json::value(cli::Rfc3339(micros));
}

// A job with its live progress while it runs (the agent reports it).
// `snapshots`: the done jobs' snapshots by ID (their stats are the job's
// history); may lack some (forgotten since).
json::object JobWithProgress(const VaultService& service, const JobRecord& j,
                             const std::string& department,
                             const std::map<uint64_t, SnapshotRecord>& snapshots) {
  json::object o = JobJson(j, department);
  if (auto snap = snapshots.find(j.id); snap != snapshots.end()) {
    o["stats"] = JobStatsJson(snap->second);
  }
  if (j.state != JobState::kSent) return o;
  auto note = service.JobProgressOf(j.id);
  if (!note) return o;
  const auto& p = note->progress;
  const double seconds = static_cast<double>(p.elapsed_millis) / 1000;
  o["progress"] = json::object{
      {"files", p.files},
      {"bytes_done", p.bytes_done},
      {"bytes_total", p.bytes_total == 0 ? json::value(nullptr) : json::value(p.bytes_total)},
      {"new_bytes", p.new_bytes},
      {"elapsed_seconds", seconds},
      {"bytes_per_second", seconds > 0 ? static_cast<double>(p.bytes_done) / seconds : 0.0},
      {"eta_seconds",
       p.eta_seconds == proto::kEtaUnknown ? json::value(nullptr) : json::value(p.eta_seconds)},
      {"reported", cli::Rfc3339(note->at_micros)}};
  return o;
}

Result<uint64_t> IdParam(const std::string& text, const char* what) {
  char* end = nullptr;
  const uint64_t id = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || end == nullptr || *end != '\0') {
    return Status::NotFound("no " + std::string(what) + " " + text);
  }
  return id;
}

struct RestApi::Route {
  const char* method;
  const char* pattern;
  // 201 for routes that create something, else 200.
  int ok_status;
  std::function<Result<json::object>(Call&)> handler;
};

namespace {

using Route = RestApi::Route;
using Call = RestApi::Call;

const std::vector<Route>& Routes() {
  static const std::vector<Route> routes = {
      {"GET", "/api/v1/me", 200,
       [](Call& c) -> Result<json::object> {
         return json::object{
             {"user", c.actor.name},
             {"role", c.actor.role},
             {"departments", json::array(c.actor.departments.begin(), c.actor.departments.end())},
             {"site", c.service->vault()->site()}};
       }},
      {"GET", "/api/v1/departments", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListDepartments(c.actor));
         json::array a;
         for (const auto& d : list) a.push_back(DepartmentJson(d));
         return json::object{{"departments", a}};
       }},
      {"POST", "/api/v1/departments", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string name, b.String("name"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_ASSIGN_OR_RETURN(Department d, c.service->CreateDepartment(c.actor, name));
         return DepartmentJson(d);
       }},
      {"POST", "/api/v1/departments/{department}/tokens", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(uint64_t ttl, b.Number("ttl_seconds", 3600));
         CAIRN_ASSIGN_OR_RETURN(bool drill_host, b.Bool("drill_host"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         const std::string& dept = c.params["department"];
         CAIRN_ASSIGN_OR_RETURN(std::string token,
                                c.service->CreateEnrollmentToken(c.actor, dept, ttl, drill_host));
         return json::object{{"department", dept},
                             {"token", token},
                             {"expires_in_seconds", ttl},
                             {"drill_host", drill_host}};
       }},
      {"GET", "/api/v1/departments/{department}/snapshots", 200,
       [](Call& c) -> Result<json::object> {
         const std::string& dept = c.params["department"];
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListSnapshots(c.actor, dept));
         json::array a;
         for (const auto& s : list) a.push_back(SnapshotRecordJson(s, dept));
         return json::object{{"department", dept}, {"snapshots", a}};
       }},
      {"GET", "/api/v1/departments/{department}/snapshots/{snapshot}", 200,
       [](Call& c) -> Result<json::object> {
         const std::string& dept = c.params["department"];
         CAIRN_ASSIGN_OR_RETURN(SnapshotRecord s,
                                c.service->FindSnapshot(c.actor, dept, c.params["snapshot"]));
         return SnapshotRecordJson(s, dept);
       }},
      {"GET", "/api/v1/departments/{department}/snapshots/{snapshot}/tree", 200,
       [](Call& c) -> Result<json::object> {
         const std::string& dept = c.params["department"];
         const auto& q = c.request.target.query;
         const std::string path = q.count("path") ? q.at("path") : "";
         bool truncated = false;
         CAIRN_ASSIGN_OR_RETURN(auto entries,
                                c.service->BrowseSnapshot(c.actor, dept, c.params["snapshot"], path,
                                                          5000, &truncated));
         json::array a;
         for (const repo::TreeEntry& e : entries) {
           json::object o{
               {"name", e.name},
               {"type", std::string(repo::EntryTypeName(e.type))},
               {"mode", e.mode},
               {"user", e.user.empty() ? json::value(e.uid) : json::value(e.user)},
               {"group", e.group.empty() ? json::value(e.gid) : json::value(e.group)},
               {"mtime",
                cli::Rfc3339(static_cast<uint64_t>(std::max<int64_t>(e.mtime_ns, 0)) / 1000)}};
           if (e.type == repo::EntryType::kFile || e.type == repo::EntryType::kImage ||
               e.type == repo::EntryType::kHardlink) {
             o["size"] = e.size;
           }
           if (e.type == repo::EntryType::kSymlink) o["target"] = e.symlink_target;
           if (e.type == repo::EntryType::kHardlink) o["link_path"] = e.link_path;
           a.push_back(std::move(o));
         }
         return json::object{{"department", dept},
                             {"snapshot", c.params["snapshot"]},
                             {"path", path.empty() ? "/" : path},
                             {"entries", std::move(a)},
                             {"truncated", truncated}};
       }},
      {"POST", "/api/v1/departments/{department}/snapshots/{snapshot}/drill", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_RETURN_IF_ERROR(b.Done());
         const std::string& dept = c.params["department"];
         CAIRN_ASSIGN_OR_RETURN(uint64_t id,
                                c.service->StartDrill(c.actor, dept, c.params["snapshot"]));
         CAIRN_ASSIGN_OR_RETURN(JobRecord j, c.service->FindJob(c.actor, id));
         return JobJson(j, dept);
       }},
      {"POST", "/api/v1/departments/{department}/snapshots/{snapshot}/restore", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string agent, b.String("agent"));
         CAIRN_ASSIGN_OR_RETURN(std::string target, b.String("target"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         const std::string& dept = c.params["department"];
         CAIRN_ASSIGN_OR_RETURN(
             uint64_t id,
             c.service->StartRestore(c.actor, dept, c.params["snapshot"], agent, target));
         CAIRN_ASSIGN_OR_RETURN(JobRecord j, c.service->FindJob(c.actor, id));
         return JobJson(j, dept);
       }},
      {"GET", "/api/v1/agents", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListAgents(c.actor));
         json::array a;
         for (const auto& x : list) {
           a.push_back(AgentJson(x, x.department_id == 0 ? "" : c.DepartmentName(x.department_id)));
         }
         return json::object{{"agents", a}};
       }},
      {"POST", "/api/v1/agents/{serial}/revoke", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_RETURN_IF_ERROR(Body(c.body).Done());
         // An agent outside an operator's departments does not exist for it.
         CAIRN_ASSIGN_OR_RETURN(auto visible, c.service->ListAgents(c.actor));
         const std::string& serial = c.params["serial"];
         if (std::none_of(visible.begin(), visible.end(),
                          [&](const AgentRecord& a) { return a.serial == serial; })) {
           return Status::NotFound("no agent " + serial);
         }
         CAIRN_RETURN_IF_ERROR(c.service->RevokeAgent(c.actor, serial));
         return json::object{{"revoked", serial}};
       }},
      {"GET", "/api/v1/jobs", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListJobs(c.actor));
         json::array a;
         const auto snapshots = JobSnapshots(*c.service, list);
         for (const auto& j : list) {
           a.push_back(
               JobWithProgress(*c.service, j, c.DepartmentName(j.department_id), snapshots));
         }
         return json::object{{"jobs", a}};
       }},
      {"POST", "/api/v1/jobs", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         // A source's backup: its agent, paths and policy (excludes, level,
         // bandwidth), counted with its series.
         CAIRN_ASSIGN_OR_RETURN(uint64_t source, b.Number("source", 0));
         if (source != 0) {
           CAIRN_RETURN_IF_ERROR(b.Done());
           CAIRN_ASSIGN_OR_RETURN(uint64_t id, c.service->StartSourceJob(c.actor, source));
           CAIRN_ASSIGN_OR_RETURN(JobRecord j, c.service->FindJob(c.actor, id));
           return JobJson(j, c.DepartmentName(j.department_id));
         }
         CAIRN_ASSIGN_OR_RETURN(std::string agent, b.String("agent"));
         CAIRN_ASSIGN_OR_RETURN(std::string dept, b.String("department", false));
         CAIRN_ASSIGN_OR_RETURN(auto paths, b.Strings("paths"));
         CAIRN_ASSIGN_OR_RETURN(bool image, b.Bool("image"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         // A host outside an operator's departments is not found.
         if (!dept.empty() && !c.service->InScope(c.actor, dept)) {
           return Status::NotFound("no department " + dept);
         }
         CAIRN_ASSIGN_OR_RETURN(JobRecord target, c.service->ResolveJobTarget(agent, dept));
         if (!c.service->InScope(c.actor, c.DepartmentName(target.department_id))) {
           return Status::NotFound("no enrolled agent '" + agent + "'");
         }
         CAIRN_ASSIGN_OR_RETURN(uint64_t id,
                                c.service->StartJob(c.actor, agent, dept, paths, image));
         CAIRN_ASSIGN_OR_RETURN(JobRecord j, c.service->FindJob(c.actor, id));
         return JobJson(j, c.DepartmentName(j.department_id));
       }},
      {"GET", "/api/v1/jobs/{job}", 200,
       [](Call& c) -> Result<json::object> {
         char* end = nullptr;
         const uint64_t id = std::strtoull(c.params["job"].c_str(), &end, 10);
         if (end == nullptr || *end != '\0') return Status::NotFound("no job " + c.params["job"]);
         CAIRN_ASSIGN_OR_RETURN(JobRecord j, c.service->FindJob(c.actor, id));
         return JobWithProgress(*c.service, j, c.DepartmentName(j.department_id),
                                JobSnapshots(*c.service, {j}));
       }},
      {"GET", "/api/v1/replication", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto r, c.service->Replication(c.actor));
         return json::object{
             {"site", r.site},
             {"replica", r.replica},
             {"replica_of", r.replica_of},
             {"promoted", r.promoted},
             {"promoted_record", r.promoted_line},
             {"agent_addresses", json::array(r.agent_addresses.begin(), r.agent_addresses.end())},
             {"last_pass", r.last_pass}};
       }},
      {"POST", "/api/v1/promote", 200,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string reason, b.String("reason"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         bool already = false;
         CAIRN_ASSIGN_OR_RETURN(std::string line,
                                c.service->Promote(c.actor, c.actor.name, reason, &already));
         return json::object{{"promoted", true}, {"already", already}, {"record", line}};
       }},
      {"POST", "/api/v1/demote", 200,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string reason, b.String("reason"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_RETURN_IF_ERROR(c.service->Demote(c.actor, c.actor.name, reason));
         return json::object{{"promoted", false}};
       }},
      {"GET", "/api/v1/users", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListUsers(c.actor));
         json::array a;
         for (const auto& u : list) a.push_back(UserJson(u));
         return json::object{{"users", a}};
       }},
      {"POST", "/api/v1/users", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string name, b.String("user"));
         CAIRN_ASSIGN_OR_RETURN(std::string role, b.String("role"));
         CAIRN_ASSIGN_OR_RETURN(auto depts, b.Strings("departments"));
         CAIRN_ASSIGN_OR_RETURN(std::string password, b.String("password", false));
         CAIRN_RETURN_IF_ERROR(b.Done());
         std::optional<std::string> given;
         if (!password.empty()) given = password;
         CAIRN_ASSIGN_OR_RETURN(std::string secret,
                                c.service->CreateUser(c.actor, name, role, depts, given));
         json::object o{{"user", name}, {"role", role}};
         if (!given) o["password"] = secret;  // generated: shown once
         return o;
       }},
      {"POST", "/api/v1/users/{user}/disable", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_RETURN_IF_ERROR(Body(c.body).Done());
         CAIRN_RETURN_IF_ERROR(c.service->SetUserDisabled(c.actor, c.params["user"], true));
         return json::object{{"user", c.params["user"]}, {"disabled", true}};
       }},
      {"POST", "/api/v1/users/{user}/enable", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_RETURN_IF_ERROR(Body(c.body).Done());
         CAIRN_RETURN_IF_ERROR(c.service->SetUserDisabled(c.actor, c.params["user"], false));
         return json::object{{"user", c.params["user"]}, {"disabled", false}};
       }},
      {"POST", "/api/v1/users/{user}/password", 200,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string password, b.String("password"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_RETURN_IF_ERROR(c.service->SetPassword(c.actor, c.params["user"], password));
         return json::object{{"user", c.params["user"]}, {"password_set", true}};
       }},
      {"GET", "/api/v1/tokens", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListApiTokens(c.actor));
         json::array a;
         for (const auto& t : list) {
           a.push_back({{"id", t.id},
                        {"user", t.user},
                        {"label", t.label},
                        {"created", cli::Rfc3339(t.created_micros)},
                        {"revoked", t.revoked}});
         }
         return json::object{{"tokens", a}};
       }},
      {"POST", "/api/v1/tokens", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string label, b.String("label", false));
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_ASSIGN_OR_RETURN(std::string token,
                                c.service->CreateApiToken(c.actor, c.actor.name, label));
         return json::object{{"token", token}, {"user", c.actor.name}};
       }},
      {"DELETE", "/api/v1/tokens/{token}", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto visible, c.service->ListApiTokens(c.actor));
         const std::string& id = c.params["token"];
         if (std::none_of(visible.begin(), visible.end(),
                          [&](const ApiTokenRecord& t) { return t.id == id; })) {
           return Status::NotFound("no API token " + id);
         }
         CAIRN_RETURN_IF_ERROR(c.service->RevokeApiToken(c.actor, id));
         return json::object{{"revoked", id}};
       }},
      {"GET", "/api/v1/policies", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListPolicies(c.actor));
         json::array a;
         for (const auto& p : list) a.push_back(VaultService::PolicyToJson(p));
         json::array templates;
         for (const auto& t : ProtectionTemplates()) {
           templates.push_back({{"name", t.name},
                                {"description", t.description},
                                {"max_gap_seconds", t.max_gap_seconds},
                                {"offsite_required", t.offsite_required},
                                {"min_lock_seconds", t.min_lock_seconds}});
         }
         return json::object{{"policies", a}, {"templates", templates}};
       }},
      {"POST", "/api/v1/policies", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string name, b.String("name"));
         CAIRN_ASSIGN_OR_RETURN(std::string tmpl, b.String("template", false));
         Policy p;
         p.name = name;
         if (!tmpl.empty()) {
           auto t = FindTemplate(tmpl);
           if (!t.ok()) return Status::InvalidArgument(t.status().message());
           p = PolicyFromTemplate(**t, name);
         }
         CAIRN_RETURN_IF_ERROR(PolicyFields(b, c.body, p));
         CAIRN_ASSIGN_OR_RETURN(Policy created, c.service->CreatePolicy(c.actor, p));
         return VaultService::PolicyToJson(created);
       }},
      {"GET", "/api/v1/policies/{policy}", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(Policy p, c.service->FindPolicy(c.actor, c.params["policy"]));
         return VaultService::PolicyToJson(p);
       }},
      {"PATCH", "/api/v1/policies/{policy}", 200,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(Policy p,
                                c.service->EditPolicy(c.actor, c.params["policy"], [&](Policy& q) {
                                  return PolicyFields(b, c.body, q);
                                }));
         return VaultService::PolicyToJson(p);
       }},
      {"GET", "/api/v1/sources", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListSources(c.actor));
         json::array a;
         for (const auto& s : list) a.push_back(SourceJson(s, c.DepartmentName(s.department_id)));
         return json::object{{"sources", a}};
       }},
      {"POST", "/api/v1/sources", 201,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         VaultService::SourceSpec spec;
         CAIRN_ASSIGN_OR_RETURN(spec.department, b.String("department"));
         CAIRN_ASSIGN_OR_RETURN(spec.host, b.String("agent"));
         CAIRN_ASSIGN_OR_RETURN(spec.policy, b.String("policy"));
         CAIRN_ASSIGN_OR_RETURN(spec.paths, b.Strings("paths"));
         CAIRN_ASSIGN_OR_RETURN(spec.excludes, b.Strings("excludes"));
         CAIRN_ASSIGN_OR_RETURN(spec.image, b.String("image", false));
         CAIRN_ASSIGN_OR_RETURN(spec.pit, b.String("point_in_time", false));
         CAIRN_ASSIGN_OR_RETURN(spec.pre_command, b.String("pre_command", false));
         CAIRN_ASSIGN_OR_RETURN(spec.post_command, b.String("post_command", false));
         CAIRN_ASSIGN_OR_RETURN(uint64_t hook_timeout, b.Number("hook_timeout_seconds", 0));
         if (hook_timeout > 86400) {
           return Status::InvalidArgument("hook_timeout_seconds is at most 86400");
         }
         spec.hook_timeout = static_cast<uint32_t>(hook_timeout);
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_ASSIGN_OR_RETURN(SourceRecord s, c.service->AddSource(c.actor, spec));
         return SourceJson(s, spec.department);
       }},
      {"DELETE", "/api/v1/sources/{source}", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(uint64_t id, IdParam(c.params["source"], "source"));
         // A source outside an operator's departments does not exist for it.
         CAIRN_ASSIGN_OR_RETURN(auto visible, c.service->ListSources(c.actor));
         if (std::none_of(visible.begin(), visible.end(),
                          [&](const SourceRecord& s) { return s.id == id; })) {
           return Status::NotFound("no source " + c.params["source"]);
         }
         CAIRN_RETURN_IF_ERROR(c.service->RemoveSource(c.actor, id));
         return json::object{{"removed", id}};
       }},
      {"POST", "/api/v1/departments/{department}/snapshots/forget", 200,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(auto ids, b.Strings("snapshots"));
         CAIRN_ASSIGN_OR_RETURN(bool dry_run, b.Bool("dry_run"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         if (ids.empty()) return Status::InvalidArgument("field 'snapshots' names none");
         const std::string& dept = c.params["department"];
         CAIRN_ASSIGN_OR_RETURN(auto results,
                                c.service->ForgetSnapshots(c.actor, dept, ids, dry_run));
         json::array a;
         bool refused = false;
         for (const auto& r : results) {
           refused |= !r.refusal.empty();
           a.push_back(
               {{"snapshot", r.snapshot.id},
                {"forgotten", r.forgotten},
                {"refused", r.refusal.empty() ? json::value(nullptr) : json::value(r.refusal)}});
         }
         return json::object{{"department", dept},
                             {"dry_run", dry_run},
                             {"all_forgotten", !refused && !dry_run},
                             {"snapshots", a}};
       }},
      {"POST", "/api/v1/retention", 200,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string dept, b.String("department", false));
         CAIRN_ASSIGN_OR_RETURN(bool dry_run, b.Bool("dry_run"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_ASSIGN_OR_RETURN(auto plans, c.service->ApplyRetentionRules(c.actor, dept, dry_run));
         json::array a;
         for (const auto& plan : plans) a.push_back(SeriesPlanJson(plan));
         return json::object{{"dry_run", dry_run}, {"series", a}};
       }},
      {"GET", "/api/v1/compliance", 200,
       [](Call& c) -> Result<json::object> {
         const auto& q = c.request.target.query;
         auto d = q.find("department");
         const uint64_t now = c.service->vault()->env()->NowMicros();
         uint64_t from = now - std::min<uint64_t>(now, 30ull * 86400 * 1'000'000), to = now + 1;
         for (auto [key, out] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
           auto it = q.find(key);
           if (it == q.end()) continue;
           char* end = nullptr;
           const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
           if (it->second.empty() || end == nullptr || *end != '\0') {
             return Status::InvalidArgument(std::string(key) + " must be microseconds since 1970");
           }
           *out = v;
         }
         return c.service->Compliance(c.actor, d == q.end() ? "" : d->second, from, to,
                                      c.options->scheduler);
       }},
      {"GET", "/api/v1/drills", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(auto drills, c.service->ListDrills(c.actor, 500));
         json::array a;
         for (auto& d : drills) a.push_back(std::move(d));
         return json::object{{"drills", std::move(a)}};
       }},
      {"GET", "/api/v1/storage", 200,
       [](Call& c) -> Result<json::object> { return c.service->StorageReport(c.actor); }},
      {"POST", "/api/v1/storage/gc", 202,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(bool dry_run, b.Bool("dry_run"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         CAIRN_ASSIGN_OR_RETURN(
             std::string id,
             c.service->RequestMaintenance(c.actor, {{"task", "gc"}, {"dry_run", dry_run}}));
         return json::object{{"request", id}, {"state", "queued"}};
       }},
      {"POST", "/api/v1/storage/scrub", 202,
       [](Call& c) -> Result<json::object> {
         Body b(c.body);
         CAIRN_ASSIGN_OR_RETURN(std::string dept, b.String("department", false));
         CAIRN_ASSIGN_OR_RETURN(bool no_repair, b.Bool("no_repair"));
         CAIRN_RETURN_IF_ERROR(b.Done());
         json::object request{{"task", "scrub"}, {"repair", !no_repair}};
         if (!dept.empty()) request["department"] = dept;
         CAIRN_ASSIGN_OR_RETURN(std::string id, c.service->RequestMaintenance(c.actor, request));
         return json::object{{"request", id}, {"state", "queued"}};
       }},
      {"GET", "/api/v1/storage/requests/{request}", 200,
       [](Call& c) -> Result<json::object> {
         return c.service->MaintenanceState(c.actor, c.params["request"]);
       }},
      {"GET", "/api/v1/status", 200,
       [](Call& c) -> Result<json::object> {
         const auto& q = c.request.target.query;
         auto d = q.find("department");
         const std::string dept = d == q.end() ? "" : d->second;
         CAIRN_ASSIGN_OR_RETURN(auto report,
                                c.service->ProtectionStatus(c.actor, dept, c.options->scheduler));
         return ProtectionReportJson(report);
       }},
      {"GET", "/api/v1/alerts", 200,
       [](Call& c) -> Result<json::object> {
         const auto& q = c.request.target.query;
         auto state = q.find("state");
         const bool all = state != q.end() && state->second == "all";
         if (state != q.end() && !all && state->second != "firing") {
           return Status::InvalidArgument("state must be firing or all");
         }
         auto limit = q.find("limit");
         size_t n = limit == q.end() ? 100 : std::strtoull(limit->second.c_str(), nullptr, 10);
         n = std::clamp<size_t>(n, 1, 10000);
         CAIRN_ASSIGN_OR_RETURN(auto list, c.service->ListAlerts(c.actor, !all, n));
         json::array a;
         for (const auto& x : list) a.push_back(AlertJson(x));
         return json::object{{"alerts", a}};
       }},
      {"GET", "/api/v1/audit", 200,
       [](Call& c) -> Result<json::object> {
         AuditFilter f;
         const auto& q = c.request.target.query;
         auto get = [&](const char* k) {
           auto it = q.find(k);
           return it == q.end() ? std::string() : it->second;
         };
         f.actor = get("actor");
         f.department = get("department");
         f.action = get("action");
         f.since_micros = std::strtoull(get("since_micros").c_str(), nullptr, 10);
         f.until_micros = std::strtoull(get("until_micros").c_str(), nullptr, 10);
         f.limit = std::min<size_t>(10000, std::strtoull(get("limit").c_str(), nullptr, 10));
         if (f.limit == 0) f.limit = 1000;
         CAIRN_ASSIGN_OR_RETURN(auto entries, c.service->AuditTrail(c.actor, f));
         json::array a;
         for (const auto& e : entries) a.push_back(json::parse(e.line));
         return json::object{{"entries", a}};
       }},
      {"GET", "/api/v1/audit/verify", 200,
       [](Call& c) -> Result<json::object> {
         CAIRN_ASSIGN_OR_RETURN(AuditVerification v, c.service->VerifyAudit(c.actor));
         json::object o{{"ok", v.ok},
                        {"entries", v.entries},
                        {"checkpoints", v.checkpoints},
                        {"last_checkpoint", v.last_checkpoint_seq}};
         if (!v.ok) {
           o["first_broken"] = json::object{{"seq", v.broken_seq}, {"reason", v.reason}};
         }
         return o;
       }},
  };
  return routes;
}

// Matches `path` against a pattern with {name} segments.
bool Match(std::string_view pattern, const std::vector<std::string>& segments,
           std::map<std::string, std::string>* params) {
  std::vector<std::string_view> parts;
  size_t start = 1;
  while (start <= pattern.size()) {
    size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    parts.push_back(pattern.substr(start, end - start));
    start = end + 1;
  }
  if (parts.size() != segments.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].size() > 2 && parts[i].front() == '{' && parts[i].back() == '}') {
      found[std::string(parts[i].substr(1, parts[i].size() - 2))] = segments[i];
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  *params = std::move(found);
  return true;
}

bool IsWrite(std::string_view method) { return method != "GET" && method != "HEAD"; }

}  // namespace

RestApi::RestApi(VaultService* service, const VaultServer* server, ApiOptions options)
    : service_(service), server_(server), options_(options) {}

std::vector<std::string> RestApi::RouteList() {
  std::vector<std::string> out = {"POST /api/v1/login", "POST /api/v1/logout", "GET /metrics"};
  for (const auto& r : Routes()) out.push_back(std::string(r.method) + " " + r.pattern);
  return out;
}

Result<Actor> RestApi::Authenticate(const http::Request& request, bool* from_cookie,
                                    std::string* session_id) {
  *from_cookie = false;
  const std::string auth = request.Header("authorization");
  if (auth.starts_with("Bearer ")) {
    return service_->AuthenticateToken(std::string_view(auth).substr(7), request.remote);
  }
  const std::string id = request.Cookie(kSessionCookie);
  if (id.empty()) return Status::PermissionDenied("log in first (no session, no bearer token)");
  std::string user;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    const uint64_t now = Now();
    const uint64_t idle = static_cast<uint64_t>(options_.session_idle.count()) * 1'000'000;
    const uint64_t max = static_cast<uint64_t>(options_.session_max.count()) * 3'600'000'000ull;
    if (it == sessions_.end() || now - it->second.used_micros > idle ||
        now - it->second.created_micros > max) {
      if (it != sessions_.end()) sessions_.erase(it);
      return Status::PermissionDenied("the session expired; log in again");
    }
    it->second.used_micros = now;
    user = it->second.user;
  }
  *from_cookie = true;
  *session_id = id;
  return service_->UserActor(user, request.remote);
}

http::Response RestApi::Login(const http::Request& request) {
  Actor actor;
  if (request.body.empty() && !request.client_certificate.cn.empty()) {
    // A person's certificate, from the vault's CA or an imported one, names
    // the account.
    const auto& c = request.client_certificate;
    auto a = service_->CertificateLogin({c.cn, c.ou, c.root_fingerprint}, request.remote);
    if (!a.ok()) return http::JsonError(401, "unauthenticated", a.status().message());
    actor = *a;
  } else {
    if (request.Header("content-type").rfind("application/json", 0) != 0) {
      return http::JsonError(415, "unsupported_media_type", "send JSON {\"user\", \"password\"}");
    }
    boost::system::error_code ec;
    json::value v = json::parse(request.body, ec);
    if (ec || !v.is_object()) return http::JsonError(400, "invalid_argument", "malformed JSON");
    Body b(&v.get_object());
    auto user = b.String("user");
    auto password = b.String("password");
    Status done = b.Done();
    if (!user.ok() || !password.ok() || !done.ok()) {
      return FromStatus(!user.ok() ? user.status() : !password.ok() ? password.status() : done);
    }
    auto a = service_->Login(*user, *password, request.remote);
    if (!a.ok()) {
      if (a.status().IsUnavailable()) {
        http::Response r = http::JsonError(429, "too_many_attempts", a.status().message());
        r.headers.push_back({"Retry-After", "5"});
        return r;
      }
      return http::JsonError(401, "unauthenticated", a.status().message());
    }
    actor = *a;
  }
  Session s;
  s.user = actor.name;
  s.csrf = RandomHex(16);
  s.created_micros = s.used_micros = Now();
  const std::string id = RandomHex(32);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Expired sessions go as new ones come: memory stays bounded.
    const uint64_t idle = static_cast<uint64_t>(options_.session_idle.count()) * 1'000'000;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      it = s.used_micros - it->second.used_micros > idle ? sessions_.erase(it) : std::next(it);
    }
    sessions_[id] = s;
  }
  http::Response r = Json(
      200,
      json::object{{"user", actor.name},
                   {"role", actor.role},
                   {"departments", json::array(actor.departments.begin(), actor.departments.end())},
                   {"csrf_token", s.csrf}});
  r.headers.push_back({"Set-Cookie", std::string(kSessionCookie) + "=" + id +
                                         "; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=" +
                                         std::to_string(options_.session_max.count() * 3600)});
  return r;
}

http::Response RestApi::Logout(const http::Request& request) {
  const std::string id = request.Cookie(kSessionCookie);
  std::string user;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return http::JsonError(401, "unauthenticated", "no session");
    if (!crypto::ConstantTimeEqual(AsBytes(request.Header("x-csrf-token")),
                                   AsBytes(it->second.csrf))) {
      return http::JsonError(403, "csrf", "a write with a session cookie needs X-CSRF-Token");
    }
    user = it->second.user;
    sessions_.erase(it);
  }
  if (auto actor = service_->UserActor(user, request.remote); actor.ok()) {
    service_->AuditLogout(*actor);
  }
  http::Response r = Json(200, json::object{{"logged_out", true}});
  r.headers.push_back(
      {"Set-Cookie",
       std::string(kSessionCookie) + "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"});
  return r;
}

http::Response RestApi::Handle(const http::Request& request) {
  const std::string& path = request.target.path;
  if (path == "/api/v1/login") {
    if (request.method != "POST") return http::JsonError(405, "method_not_allowed", "use POST");
    return Login(request);
  }
  if (path == "/api/v1/logout") {
    if (request.method != "POST") return http::JsonError(405, "method_not_allowed", "use POST");
    return Logout(request);
  }
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  bool path_known = false;
  for (const auto& r : Routes()) {
    std::map<std::string, std::string> p;
    if (!Match(r.pattern, request.target.segments, &p)) continue;
    path_known = true;
    if (request.method == r.method) {
      route = &r;
      params = std::move(p);
      break;
    }
  }
  const bool metrics = path == "/metrics";
  if (!route && !metrics) {
    if (path_known) return http::JsonError(405, "method_not_allowed", "not with this method");
    return http::JsonError(404, "not_found", "no such route");
  }
  bool from_cookie = false;
  std::string session_id;
  auto actor = Authenticate(request, &from_cookie, &session_id);
  if (!actor.ok()) return http::JsonError(401, "unauthenticated", actor.status().message());
  if (metrics) {
    if (request.method != "GET") return http::JsonError(405, "method_not_allowed", "use GET");
    if (Status s = service_->Authorize(*actor, Permission::kReadState); !s.ok()) {
      return FromStatus(s);
    }
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = Metrics();
    return r;
  }
  if (from_cookie && IsWrite(request.method)) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || !crypto::ConstantTimeEqual(AsBytes(request.Header("x-csrf-token")),
                                                            AsBytes(it->second.csrf))) {
      return http::JsonError(403, "csrf", "a write with a session cookie needs X-CSRF-Token");
    }
  }
  json::value body;
  if (!request.body.empty()) {
    if (request.Header("content-type").rfind("application/json", 0) != 0) {
      return http::JsonError(415, "unsupported_media_type",
                             "send JSON (Content-Type: application/json)");
    }
    boost::system::error_code ec;
    body = json::parse(request.body, ec);
    if (ec || !body.is_object()) {
      return http::JsonError(400, "invalid_argument", "the body is not a JSON object");
    }
  }
  Call call{this,     service_,          request,
            *actor,   std::move(params), body.is_object() ? &body.get_object() : nullptr,
            &options_};
  auto result = route->handler(call);
  if (!result.ok()) return FromStatus(result.status());
  return Json(route->ok_status, *result);
}

// --- /metrics ---------------------------------------------------------------

namespace {

// A Prometheus text-format label value.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class MetricWriter {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void Sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
              double value) {
    out_ << name;
    if (!labels.empty()) {
      out_ << "{";
      for (size_t i = 0; i < labels.size(); ++i) {
        out_ << (i ? "," : "") << labels[i].first << "=\"" << Label(labels[i].second) << "\"";
      }
      out_ << "}";
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", value);
    out_ << " " << buf << "\n";
  }
  std::string Take() { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

std::string RestApi::Metrics() {
  MetricWriter m;
  Vault* vault = service_->vault();
  const uint64_t now = Now();
  auto departments = vault->catalog()->ListDepartments();
  std::map<uint32_t, std::string> names;
  if (departments.ok()) {
    for (const auto& d : *departments) names[d.id] = d.name;
  }
  std::map<uint32_t, ChunkStore::Usage> usage;
  if (vault->store() != nullptr) {
    if (auto u = vault->store()->PackUsage(); u.ok()) usage = *u;
  }
  m.Family("cairn_department_stored_bytes", "gauge",
           "Bytes of records stored for the department (committed pack bytes).");
  for (const auto& [id, name] : names) {
    m.Sample("cairn_department_stored_bytes", {{"department", name}},
             static_cast<double>(usage[id].bytes));
  }
  m.Family("cairn_department_snapshots", "gauge", "Snapshots the department holds.");
  std::map<std::string, double> damaged;  // by department name
  struct Source {
    std::string department, host, paths;
    uint64_t newest = 0;
  };
  std::map<std::string, Source> sources;
  for (const auto& [id, name] : names) {
    auto list = vault->catalog()->ListSnapshots(id, 0);
    m.Sample("cairn_department_snapshots", {{"department", name}},
             list.ok() ? static_cast<double>(list->size()) : 0);
    if (!list.ok()) continue;
    damaged[name] = 0;
    for (const auto& s : *list) {
      if (s.damaged_micros != 0) damaged[name] += 1;
      std::string paths;
      for (const auto& p : s.paths) paths += (paths.empty() ? "" : ",") + p;
      Source& src = sources[name + "\n" + s.host + "\n" + paths];
      src.department = name;
      src.host = s.host;
      src.paths = paths;
      src.newest = std::max(src.newest, s.time_micros);
    }
  }
  m.Family("cairn_department_damaged_snapshots", "gauge",
           "Snapshots that need a chunk scrub found damaged and could not repair.");
  for (const auto& [name, n] : damaged) {
    m.Sample("cairn_department_damaged_snapshots", {{"department", name}}, n);
  }
  m.Family("cairn_source_newest_snapshot_age_seconds", "gauge",
           "Age of the newest snapshot of each source (department, host, paths).");
  for (const auto& [key, src] : sources) {
    m.Sample("cairn_source_newest_snapshot_age_seconds",
             {{"department", src.department}, {"host", src.host}, {"paths", src.paths}},
             static_cast<double>(now - std::min(now, src.newest)) / 1e6);
  }
  std::map<uint32_t, uint64_t> failures;
  if (auto jobs = vault->catalog()->ListJobs(); jobs.ok()) {
    for (const auto& j : *jobs) {
      if (j.state == JobState::kFailed) ++failures[j.department_id];
    }
  }
  m.Family("cairn_department_job_failures_total", "counter", "Jobs that failed, per department.");
  for (const auto& [id, name] : names) {
    m.Sample("cairn_department_job_failures_total", {{"department", name}},
             static_cast<double>(failures[id]));
  }
  m.Family("cairn_vault_ingested_bytes_total", "counter",
           "Record bytes made durable by backups since the vault started.");
  m.Sample("cairn_vault_ingested_bytes_total", {}, static_cast<double>(service_->ingested_bytes()));
  m.Family("cairn_vault_connections", "gauge",
           "Connections open on the agent listener (agents, restores, replicators).");
  m.Sample("cairn_vault_connections", {},
           server_ ? static_cast<double>(server_->connections()) : 0);
  m.Family("cairn_vault_agents_connected", "gauge",
           "Agents in service mode connected (job links).");
  m.Sample("cairn_vault_agents_connected", {},
           server_ ? static_cast<double>(const_cast<VaultServer*>(server_)->job_links()) : 0);
  uint64_t packs = 0, index = 0;
  for (const auto& [id, u] : usage) packs += u.packs;
  if (vault->store() != nullptr) {
    for (const auto& [id, name] : names) {
      if (auto n = vault->store()->index()->CountForDepartment(id); n.ok()) index += *n;
    }
  }
  m.Family("cairn_vault_packs", "gauge", "Pack files.");
  m.Sample("cairn_vault_packs", {}, static_cast<double>(packs));
  m.Family("cairn_vault_index_entries", "gauge", "Chunks in the index.");
  m.Sample("cairn_vault_index_entries", {}, static_cast<double>(index));
  if (auto disk = service_->Disk(); disk.ok()) {
    m.Family("cairn_vault_disk_free_bytes", "gauge", "Free bytes on the data directory's disk.");
    m.Sample("cairn_vault_disk_free_bytes", {}, static_cast<double>(disk->free_bytes));
    m.Family("cairn_vault_disk_size_bytes", "gauge", "Size of the data directory's disk.");
    m.Sample("cairn_vault_disk_size_bytes", {}, static_cast<double>(disk->size_bytes));
  }
  m.Family("cairn_vault_backup_sessions", "gauge", "Backup sessions held open.");
  m.Sample("cairn_vault_backup_sessions", {}, static_cast<double>(service_->open_sessions()));
  if (auto r = service_->Replication(Actor::Local()); r.ok() && r->replica) {
    auto pending = r->last_pass.find("pending");
    m.Family("cairn_replication_lag_seconds", "gauge",
             "How far the DR copy is behind its source: the age of the oldest snapshot not yet "
             "here at the last good pass, plus the time since that pass.");
    m.Sample("cairn_replication_lag_seconds", {}, service_->ReplicationLagSeconds().value_or(0));
    m.Family("cairn_replication_pending_snapshots", "gauge",
             "Source snapshots not yet replicated here at the last pass.");
    m.Sample("cairn_replication_pending_snapshots", {},
             pending != r->last_pass.end() && pending->value().is_number()
                 ? pending->value().to_number<double>()
                 : 0);
  }
  // The last GC and scrub (doc/design.md section 22).
  auto last = [&](const char* setting) -> json::object {
    auto v = vault->catalog()->GetSetting(setting);
    if (!v.ok()) return {};
    boost::system::error_code ec;
    json::value parsed = json::parse(*v, ec);
    return !ec && parsed.is_object() ? parsed.as_object() : json::object{};
  };
  auto number = [](const json::object& o, const char* key) {
    const json::value* v = o.if_contains(key);
    return v != nullptr && v->is_number() ? v->to_number<double>() : 0.0;
  };
  if (json::object gc = last("gc_last"); !gc.empty()) {
    m.Family("cairn_gc_last_run_timestamp_seconds", "gauge", "When the last GC run ended.");
    m.Sample("cairn_gc_last_run_timestamp_seconds", {}, number(gc, "time_micros") / 1e6);
    m.Family("cairn_gc_last_bytes_freed", "gauge", "Pack bytes the last GC run freed, net.");
    m.Sample("cairn_gc_last_bytes_freed", {}, number(gc, "bytes_freed"));
  }
  if (json::object scrub = last("scrub_last"); !scrub.empty()) {
    m.Family("cairn_scrub_last_run_timestamp_seconds", "gauge", "When the last scrub ended.");
    m.Sample("cairn_scrub_last_run_timestamp_seconds", {}, number(scrub, "time_micros") / 1e6);
    const json::value* d = scrub.if_contains("damaged");
    m.Family("cairn_scrub_last_damaged_records", "gauge",
             "Damaged records the last scrub found (repaired or not).");
    m.Sample("cairn_scrub_last_damaged_records", {},
             d != nullptr && d->is_array() ? static_cast<double>(d->as_array().size()) : 0);
  }
  std::map<std::string, double> firing;
  for (const char* rule : {"agent_unseen", "job_failed", "job_missed", "replication_lag",
                           "disk_free", "audit_backlog", "storage_damaged"}) {
    firing[rule] = 0;
  }
  if (auto alerts = vault->catalog()->FiringAlerts(); alerts.ok()) {
    for (const auto& a : *alerts) firing[a.rule] += 1;
  }
  m.Family("cairn_alerts_firing", "gauge", "Alerts firing, per rule.");
  for (const auto& [rule, n] : firing) m.Sample("cairn_alerts_firing", {{"rule", rule}}, n);
  if (options_.audit_backlog) {
    if (auto backlog = options_.audit_backlog(); backlog) {
      m.Family("cairn_audit_forward_backlog", "gauge",
               "Audit entries not yet forwarded to the syslog collector.");
      m.Sample("cairn_audit_forward_backlog", {}, static_cast<double>(*backlog));
    }
  }
  return m.Take();
}

}  // namespace cairn::vault
