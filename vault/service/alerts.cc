// VaultService: the alert rules (doc/design.md section 18, "Alerts"). Each
// rule turns the catalog's state into conditions, keyed by rule and
// subject; a condition that holds fires once, and resolves when it no
// longer holds. A threshold of 0 turns its rule off.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>

#include "lib/base/errno.h"
#include "lib/base/names.h"
#include "lib/io/file_io.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

namespace {

// "3 h 12 min", "45 s": for alert summaries.
std::string Duration(uint64_t seconds) {
  if (seconds >= 86400) {
    return std::to_string(seconds / 86400) + " d " + std::to_string(seconds % 86400 / 3600) + " h";
  }
  if (seconds >= 3600) {
    return std::to_string(seconds / 3600) + " h " + std::to_string(seconds % 3600 / 60) + " min";
  }
  if (seconds >= 60) return std::to_string(seconds / 60) + " min";
  return std::to_string(seconds) + " s";
}

struct Condition {
  std::string rule, severity, department, summary;
};

constexpr size_t kJobsLookedAt = 4096;  // the newest jobs the job rules read

}  // namespace

void VaultService::NoteAgentSeen(std::string_view serial) {
  const uint64_t now = Now();
  {
    std::lock_guard<std::mutex> lock(seen_mu_);
    auto it = seen_.find(serial);
    if (it == seen_.end()) it = seen_.emplace(std::string(serial), Seen{}).first;
    it->second.seen_micros = now;
    if (now - std::min(now, it->second.written_micros) < 60'000'000) return;
    it->second.written_micros = now;
  }
  Status s = vault_->catalog()->NoteAgentSeen(serial, now);
  if (!s.ok() && !s.IsNotFound()) {
    spdlog::warn("recording when agent {} was seen: {}", serial, s.ToString());
  }
}

uint64_t VaultService::LastSeen(const AgentRecord& agent) const {
  std::lock_guard<std::mutex> lock(seen_mu_);
  auto it = seen_.find(agent.serial);
  return std::max(agent.last_seen_micros, it != seen_.end() ? it->second.seen_micros : 0);
}

Result<io::FileSystemSpace> VaultService::Disk() const { return io::SpaceOf(vault_->data_dir()); }

std::optional<double> VaultService::ReplicationLagSeconds() const {
  if (!IsReplica() || IsPromoted()) return std::nullopt;
  auto pass = vault_->catalog()->GetSetting("replication_last_pass");
  if (!pass.ok()) return std::nullopt;
  boost::system::error_code ec;
  auto v = boost::json::parse(*pass, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  auto number = [&](const char* key) -> double {
    auto it = o.find(key);
    if (it == o.end()) return 0;
    return it->value().is_number() ? it->value().to_number<double>() : 0;
  };
  // The lag at the last good pass, grown by the time since: a source that
  // cannot be reached makes the DR site fall further behind every second.
  const uint64_t now = Now();
  const double at = number("time_micros");
  const double since = at > 0 ? std::max(0.0, (static_cast<double>(now) - at) / 1e6) : 0;
  return number("lag_seconds") + since;
}

Result<std::vector<AlertRecord>> VaultService::EvaluateAlerts(const AlertThresholds& t,
                                                              const AlertInputs& inputs) {
  Catalog* catalog = vault_->catalog();
  const uint64_t now = Now();
  std::map<std::string, Condition> holds;  // key -> condition

  if (t.agent_unseen_seconds > 0) {
    CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
    for (const auto& a : agents) {
      if (a.revoked) continue;
      const uint64_t last_seen = LastSeen(a);
      const uint64_t away =
          (now - std::min(now, std::max(last_seen, a.enrolled_micros))) / 1'000'000;
      if (away < t.agent_unseen_seconds) continue;
      const bool replicator = a.department_id == kReplicatorToken;
      const std::string dept = replicator ? "" : DepartmentName(a.department_id);
      holds["agent_unseen:" + a.serial] = {
          "agent_unseen", "warning", dept,
          std::string(replicator ? "replicator " : "agent ") + EscapeForLog(a.host) +
              (dept.empty() ? "" : " (" + dept + ")") + " not seen for " + Duration(away) +
              (last_seen == 0 ? " (never connected since enrolment)" : "")};
    }
  }
  if (t.job_missed_seconds > 0 || t.job_failed) {
    CAIRN_ASSIGN_OR_RETURN(auto jobs, catalog->ListJobs(kJobsLookedAt));
    // The newest finished job of each target decides job_failed.
    std::map<std::string, const JobRecord*> newest;
    for (const auto& j : jobs) {
      // The agent that ran it (a job may name its target by host).
      const std::string& ran_on = !j.sent_to.empty() ? j.sent_to : j.agent_serial;
      // A drill's target is its source (a missed one may have no host).
      const std::string target = j.kind == 2 ? "drill/" + std::to_string(j.source_id)
                                             : std::to_string(j.department_id) + "/" +
                                                   (ran_on.empty() ? "host:" + j.host : ran_on);
      if (j.state == JobState::kDone || j.state == JobState::kFailed ||
          j.state == JobState::kMissed) {
        newest[target] = &j;  // oldest first: the last one wins
      }
      const uint64_t waiting = (now - std::min(now, j.created_micros)) / 1'000'000;
      if (t.job_missed_seconds > 0 && j.state == JobState::kQueued &&
          waiting >= t.job_missed_seconds) {
        holds["job_missed:" + std::to_string(j.id)] = {
            "job_missed", "warning", DepartmentName(j.department_id),
            "job " + std::to_string(j.id) + " for " + EscapeForLog(j.host) + " (" +
                DepartmentName(j.department_id) + ") queued " + Duration(waiting) +
                " ago: its agent has not taken it"};
      }
    }
    for (const auto& [target, j] : newest) {
      if (j->state != JobState::kMissed || t.job_missed_seconds == 0) continue;
      holds["job_missed:" + target] = {
          "job_missed", "warning", DepartmentName(j->department_id),
          (j->kind == 2
               ? "drill job " + std::to_string(j->id) + " of source " + std::to_string(j->source_id)
               : "job " + std::to_string(j->id) + " for " + EscapeForLog(j->host)) +
              " (" + DepartmentName(j->department_id) + ") was missed: " + EscapeForLog(j->error)};
    }
    if (t.job_failed) {
      for (const auto& [target, j] : newest) {
        if (j->state != JobState::kFailed) continue;
        holds["job_failed:" + target] = {
            "job_failed", "warning", DepartmentName(j->department_id),
            "job " + std::to_string(j->id) + " on " + EscapeForLog(j->host) + " (" +
                DepartmentName(j->department_id) + ") failed: " + EscapeForLog(j->error)};
      }
    }
  }
  if (t.rpo_breached) {
    // A source whose last good backup is older than its policy's RPO.
    CAIRN_ASSIGN_OR_RETURN(auto report, ProtectionStatus(Actor::Self(), "", SchedulerOptions{}));
    for (const auto& st : report.sources) {
      if (st.rpo != "breached") continue;
      std::string what;
      for (const auto& p : st.source.paths) what += (what.empty() ? "" : " ") + p;
      holds["rpo_breached:" + std::to_string(st.source.id)] = {
          "rpo_breached", "critical", st.department,
          "source " + std::to_string(st.source.id) + " (" + EscapeForLog(st.source.host) + " " +
              EscapeForLog(what) + ", " + st.department + "): " +
              (st.last_good_micros == 0 ? "no backup yet"
                                        : "last good backup " + Duration(st.age_seconds) + " ago") +
              ", RPO " + Duration(st.policy.rpo_seconds) +
              (st.last_failure.empty() ? "" : "; last failure: " + EscapeForLog(st.last_failure))};
    }
  }
  if (t.replication_lag_seconds > 0) {
    if (auto lag = ReplicationLagSeconds(); lag && *lag >= t.replication_lag_seconds) {
      holds["replication_lag"] = {"replication_lag", "critical", "",
                                  "the DR copy is " + Duration(static_cast<uint64_t>(*lag)) +
                                      " behind its source (threshold " +
                                      Duration(t.replication_lag_seconds) + ")"};
    }
  }
  if (t.disk_free_percent > 0) {
    if (auto d = Disk(); d.ok() && d->size_bytes > 0) {
      const double percent = 100.0 * static_cast<double>(d->free_bytes) / d->size_bytes;
      if (percent < static_cast<double>(t.disk_free_percent)) {
        char text[32];
        std::snprintf(text, sizeof(text), "%.1f", percent);
        holds["disk_free"] = {"disk_free", "critical", "",
                              std::string("the data directory's disk has ") + text +
                                  " % free (threshold " + std::to_string(t.disk_free_percent) +
                                  " %)"};
      }
    }
  }
  if (t.audit_backlog_entries > 0 && inputs.audit_backlog &&
      *inputs.audit_backlog >= t.audit_backlog_entries) {
    holds["audit_backlog"] = {
        "audit_backlog", "warning", "",
        std::to_string(*inputs.audit_backlog) + " audit entries wait to be forwarded to syslog"};
  }

  {
    // Snapshots scrub found damaged and could not repair (doc/design.md 22.4).
    CAIRN_ASSIGN_OR_RETURN(auto departments, catalog->ListDepartments());
    for (const Department& d : departments) {
      CAIRN_ASSIGN_OR_RETURN(auto snapshots, catalog->ListSnapshots(d.id, 0));
      size_t damaged = 0;
      std::string newest;
      for (const auto& s : snapshots) {
        if (s.damaged_micros == 0) continue;
        if (damaged++ == 0) newest = s.id;
      }
      if (damaged > 0) {
        holds["storage_damaged:" + d.name] = {
            "storage_damaged", "critical", d.name,
            std::to_string(damaged) + " snapshot(s) of " + d.name +
                " reference damaged chunks scrub could not repair (newest: " + newest +
                "); `cairn-vault scrub` repairs them from the DR copy once this vault is enrolled "
                "there "
                "(doc/dr-runbook.md)"};
      }
    }
  }

  std::vector<AlertRecord> changes;
  CAIRN_ASSIGN_OR_RETURN(auto firing, catalog->FiringAlerts());
  // An anomaly (fired at commit, policies.cc) is an event: it stays firing
  // for a day, then resolves.
  for (const auto& a : firing) {
    if (a.rule == "anomaly" && now < a.fired_micros + 86400ull * 1'000'000) {
      holds[a.key] = {a.rule, a.severity, a.department, a.summary};
    }
  }
  const Actor self = Actor::Self();
  for (const auto& a : firing) {
    if (holds.contains(a.key)) continue;
    auto resolved = catalog->ResolveAlert(a.key, now);
    if (!resolved.ok()) {
      if (resolved.status().IsNotFound()) continue;  // resolved by another evaluation
      return resolved.status();
    }
    Audit(self, "alert.resolve", resolved->department, resolved->key,
          {{"alert", resolved->id},
           {"rule", resolved->rule},
           {"severity", resolved->severity},
           {"summary", resolved->summary}});
    changes.push_back(std::move(*resolved));
  }
  for (auto& [key, c] : holds) {
    AlertRecord a;
    a.key = key;
    a.rule = c.rule;
    a.severity = c.severity;
    a.department = c.department;
    a.summary = c.summary;
    a.fired_micros = now;
    CAIRN_ASSIGN_OR_RETURN(bool fired, catalog->FireAlert(&a));
    if (!fired) continue;
    Audit(self, "alert.fire", a.department, a.key,
          {{"alert", a.id}, {"rule", a.rule}, {"severity", a.severity}, {"summary", a.summary}});
    changes.push_back(std::move(a));
  }
  return changes;
}

Result<std::vector<AlertRecord>> VaultService::ListAlerts(const Actor& actor, bool active_only,
                                                          size_t limit) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  CAIRN_ASSIGN_OR_RETURN(auto all, active_only ? vault_->catalog()->FiringAlerts()
                                               : vault_->catalog()->RecentAlerts(limit));
  std::vector<AlertRecord> out;
  for (auto& a : all) {
    if (a.department.empty() || InScope(actor, a.department)) out.push_back(std::move(a));
  }
  return out;
}

}  // namespace cairn::vault
