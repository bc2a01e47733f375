// VaultService: protection policies, sources, the scheduler's decisions,
// retention and retention locks, and protection status (doc/design.md
// section 20).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "lib/base/bytes.h"
#include "lib/base/cli.h"
#include "lib/base/names.h"
#include "lib/crypto/hash.h"
#include "vault/policy/schedule.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

namespace {

constexpr uint64_t kSecond = 1'000'000;
constexpr size_t kJobsLookedAt = 8192;  // the newest jobs status and expiry read

// A path as sources and snapshots are compared: lexically normal, no
// trailing slash.
std::string NormalPath(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto part : parts) out += "/" + std::string(part);
  return out.empty() ? "/" : out;
}

}  // namespace

// What identifies a series: department, host, kind and the sorted paths.
std::string SeriesKey(uint32_t department, std::string_view host, bool image,
                      const std::vector<std::string>& paths) {
  std::vector<std::string> sorted;
  for (const auto& p : paths) sorted.push_back(NormalPath(p));
  std::sort(sorted.begin(), sorted.end());
  std::string key =
      std::to_string(department) + "\n" + std::string(host) + "\n" + (image ? "image" : "files");
  for (const auto& p : sorted) key += "\n" + p;
  return key;
}

std::string SeriesKeyOf(const SnapshotRecord& s) {
  return SeriesKey(s.department_id, s.host, s.kind == 2, s.paths);
}

std::string SeriesKeyOf(const SourceRecord& s) {
  return SeriesKey(s.department_id, s.host, s.image, s.paths);
}

namespace {

boost::json::object PolicyJson(const Policy& p) {
  return {{"name", p.name},
          {"template", p.template_name},
          {"schedule", p.schedule},
          {"keep_last", p.keep.last},
          {"keep_hourly", p.keep.hourly},
          {"keep_daily", p.keep.daily},
          {"keep_weekly", p.keep.weekly},
          {"keep_monthly", p.keep.monthly},
          {"keep_yearly", p.keep.yearly},
          {"zstd_level", p.zstd_level},
          {"offsite", p.offsite},
          {"rpo_seconds", p.rpo_seconds},
          {"rto_seconds", p.rto_seconds},
          {"drill_every_seconds", p.drill_every_seconds},
          {"drill_check", p.drill_check},
          {"drill_check_timeout_seconds", p.drill_check_timeout_seconds},
          {"hook_failure", p.hook_failure_continue ? "continue" : "fail"},
          {"lock_seconds", p.lock_seconds},
          {"bandwidth_bytes_per_second", p.bandwidth_bytes_per_second}};
}

struct CompiledSchedule {
  Schedule schedule;
  uint64_t gap_seconds;
};

// A policy's schedule, parsed once per spec and time zone: parsing is cheap
// but the longest gap costs a year of slots, and the scheduler asks every
// second for every source (a vault has few distinct schedules).
std::shared_ptr<const CompiledSchedule> Compile(const std::string& spec) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const CompiledSchedule>> cache;
  std::lock_guard<std::mutex> lock(mu);
  tzset();  // the zone may have changed (TZ); slots and gaps depend on it
  const std::string key = std::string(tzname[0]) + "/" + tzname[1] + "\n" + spec;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto parsed = Schedule::Parse(spec);
  if (!parsed.ok()) return nullptr;
  const uint64_t gap = parsed->MaxGapSeconds();
  auto compiled = std::make_shared<const CompiledSchedule>(CompiledSchedule{*parsed, gap});
  if (cache.size() >= 4096) cache.clear();
  cache.emplace(key, compiled);
  return compiled;
}

}  // namespace

boost::json::object VaultService::PolicyToJson(const Policy& p) { return PolicyJson(p); }

// --- Policies ------------------------------------------------------------------

Result<Policy> VaultService::CreatePolicy(const Actor& actor, Policy policy) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManagePolicies));
  policy.created_micros = policy.updated_micros = Now();
  if (Status s = CheckPolicy(policy); !s.ok()) {
    Audit(actor, "policy.refused", "", policy.name,
          {{"reason", s.message()}, {"policy", PolicyJson(policy)}});
    return s;
  }
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutPolicy(policy, /*create=*/true));
  Audit(actor, "policy.create", "", policy.name, {{"policy", PolicyJson(policy)}});
  return policy;
}

Result<Policy> VaultService::EditPolicy(const Actor& actor, std::string_view name,
                                        const std::function<Status(Policy&)>& edit) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManagePolicies));
  std::lock_guard<std::mutex> lock(policy_mu_);
  CAIRN_ASSIGN_OR_RETURN(Policy before, vault_->catalog()->FindPolicy(name));
  // An operator edits only policies whose sources are all in its scope.
  CAIRN_ASSIGN_OR_RETURN(auto sources, vault_->catalog()->ListSources());
  for (const auto& s : sources) {
    if (s.policy == before.name && !InScope(actor, DepartmentName(s.department_id))) {
      return Status::PermissionDenied("policy " + before.name +
                                      " protects sources of departments outside your scope");
    }
  }
  Policy after = before;
  CAIRN_RETURN_IF_ERROR(edit(after));
  after.name = before.name;
  after.created_micros = before.created_micros;
  after.updated_micros = Now();
  auto refuse = [&](Status s) -> Status {
    Audit(actor, "policy.refused", "", before.name,
          {{"reason", s.message()}, {"before", PolicyJson(before)}, {"after", PolicyJson(after)}});
    return s;
  };
  if (after.lock_seconds < before.lock_seconds) {
    // Not while a snapshot it locked is still locked: the lock is a
    // promise made for those snapshots (their dates never move anyway).
    CAIRN_ASSIGN_OR_RETURN(auto plans, PlanRetention("", std::nullopt));
    const uint64_t now = Now();
    for (const auto& plan : plans) {
      if (plan.policy != before.name) continue;
      for (const auto& snap : plan.snapshots) {
        if (snap.locked_until_micros <= now) continue;
        return refuse(Status::PermissionDenied(
            "policy " + before.name + ": its retention lock cannot be shortened (from " +
            FormatDuration(before.lock_seconds) + " to " + FormatDuration(after.lock_seconds) +
            ") while snapshot " + snap.id + " is locked until " +
            cli::Rfc3339(snap.locked_until_micros)));
      }
    }
  }
  if (Status s = CheckPolicy(after); !s.ok()) return refuse(s);
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutPolicy(after, /*create=*/false));
  Audit(actor, "policy.edit", "", after.name,
        {{"before", PolicyJson(before)}, {"after", PolicyJson(after)}});
  return after;
}

Result<std::vector<Policy>> VaultService::ListPolicies(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  return vault_->catalog()->ListPolicies();
}

Result<Policy> VaultService::FindPolicy(const Actor& actor, std::string_view name) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  return vault_->catalog()->FindPolicy(name);
}

// --- Sources -------------------------------------------------------------------

JobRecord BackupJobOf(const SourceRecord& source, const Policy* policy) {
  JobRecord job;
  job.department_id = source.department_id;
  job.host = source.host;
  job.kind = 1;
  job.paths = source.paths;
  job.image = source.image;
  job.excludes = source.excludes;
  job.source_id = source.id;
  job.pit = source.pit;
  job.pre_command = source.pre_command;
  job.post_command = source.post_command;
  job.hook_timeout = source.hook_timeout;
  if (policy != nullptr) {
    job.zstd_level = static_cast<uint8_t>(policy->zstd_level);
    job.bandwidth = policy->bandwidth_bytes_per_second;
    job.hook_continue = policy->hook_failure_continue;
  }
  return job;
}

Result<SourceRecord> VaultService::AddSource(const Actor& actor, const SourceSpec& spec) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageSources, spec.department));
  Catalog* catalog = vault_->catalog();
  CAIRN_ASSIGN_OR_RETURN(Department dept, catalog->FindDepartment(spec.department));
  CAIRN_RETURN_IF_ERROR(ValidateName("host", spec.host));
  CAIRN_RETURN_IF_ERROR(catalog->FindPolicy(spec.policy).status());
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
  bool enrolled = false;
  for (const auto& a : agents) {
    enrolled |= !a.revoked && a.department_id == dept.id && a.host == spec.host;
  }
  if (!enrolled) {
    return Status::NotFound("no enrolled agent " + EscapeForLog(spec.host) + " in department " +
                            dept.name);
  }
  SourceRecord source;
  source.department_id = dept.id;
  source.host = spec.host;
  source.policy = spec.policy;
  source.image = !spec.image.empty();
  if (source.image == !spec.paths.empty()) {
    return Status::InvalidArgument("a source is either --path P... or one --image DEVICE");
  }
  if (source.image && !spec.excludes.empty()) {
    return Status::InvalidArgument("an image source takes no --exclude");
  }
  std::vector<std::string> paths = source.image ? std::vector<std::string>{spec.image} : spec.paths;
  for (const auto& p : paths) {
    if (p.empty() || p[0] != '/' || p.size() > 4096 || p.find('\0') != std::string::npos) {
      return Status::InvalidArgument("source path '" + EscapeForLog(p) +
                                     "' must be absolute (as the agent's host sees it)");
    }
    source.paths.push_back(NormalPath(p));
  }
  std::sort(source.paths.begin(), source.paths.end());
  source.paths.erase(std::unique(source.paths.begin(), source.paths.end()), source.paths.end());
  for (const auto& e : spec.excludes) {
    if (e.empty() || e.size() > 4096) return Status::InvalidArgument("an empty --exclude");
  }
  source.excludes = spec.excludes;
  const std::string& pit = spec.pit.empty() ? std::string("auto") : spec.pit;
  if (pit != "auto" && pit != "none" && pit != "btrfs" && pit != "reflink" && pit != "lvm") {
    return Status::InvalidArgument("point-in-time method '" + EscapeForLog(pit) +
                                   "': expected auto, none, btrfs, reflink or lvm");
  }
  if (source.image && pit == "btrfs") {
    return Status::InvalidArgument(
        "an image source takes reflink (image files) or lvm (logical volumes), not btrfs");
  }
  if (!source.image && (pit == "reflink" || pit == "lvm")) {
    return Status::InvalidArgument("a files source takes btrfs snapshots, not " + pit);
  }
  for (const auto* c : {&spec.pre_command, &spec.post_command}) {
    if (c->size() > 4096 || c->find('\0') != std::string::npos) {
      return Status::InvalidArgument("a hook command is at most 4096 bytes, without NUL");
    }
  }
  if (spec.hook_timeout > 86400) {
    return Status::InvalidArgument("the hook timeout is at most 86400 s");
  }
  source.pit = pit;
  source.pre_command = spec.pre_command;
  source.post_command = spec.post_command;
  source.hook_timeout = spec.hook_timeout;
  CAIRN_ASSIGN_OR_RETURN(auto existing, catalog->ListSources());
  for (const auto& s : existing) {
    if (SeriesKeyOf(s) == SeriesKeyOf(source)) {
      return Status::InvalidArgument("source " + std::to_string(s.id) +
                                     " already protects these paths of " + source.host);
    }
  }
  source.created_micros = Now();
  // The first slot is the first after now: a new source does not run at
  // once for a slot that passed before it existed.
  source.last_slot_micros = source.created_micros;
  CAIRN_ASSIGN_OR_RETURN(source, catalog->AddSource(std::move(source)));
  Audit(actor, "source.add", dept.name, std::to_string(source.id),
        {{"host", source.host},
         {"policy", source.policy},
         {"paths", boost::json::array(source.paths.begin(), source.paths.end())},
         {"excludes", boost::json::array(source.excludes.begin(), source.excludes.end())},
         {"image", source.image},
         {"point_in_time", source.pit},
         {"pre_command", source.pre_command},
         {"post_command", source.post_command}});
  return source;
}

Status VaultService::RemoveSource(const Actor& actor, uint64_t id) {
  CAIRN_ASSIGN_OR_RETURN(SourceRecord source, vault_->catalog()->FindSource(id));
  const std::string dept = DepartmentName(source.department_id);
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageSources, dept));
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->RemoveSource(id));
  Audit(actor, "source.remove", dept, std::to_string(id),
        {{"host", source.host}, {"policy", source.policy}});
  return Status::OK();
}

Result<std::vector<SourceRecord>> VaultService::ListSources(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  CAIRN_ASSIGN_OR_RETURN(auto all, vault_->catalog()->ListSources());
  std::vector<SourceRecord> out;
  for (auto& s : all) {
    if (InScope(actor, DepartmentName(s.department_id))) out.push_back(std::move(s));
  }
  return out;
}

// --- The scheduler -------------------------------------------------------------

uint64_t VaultService::SourceJitterMicros(const SourceRecord& source, uint64_t gap_seconds,
                                          const SchedulerOptions& options) {
  const uint64_t spread = std::min<uint64_t>(options.spread_seconds, gap_seconds / 2);
  if (spread == 0) return 0;
  // Deterministic per source, so that a restart does not move it.
  auto h = crypto::Sha256(AsBytes("cairn-jitter-" + std::to_string(source.id)));
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | h[i];
  return v % (spread * kSecond);
}

std::optional<VaultService::Due> VaultService::NextDue(const SourceRecord& source,
                                                       const Policy& policy,
                                                       const SchedulerOptions& options,
                                                       uint64_t now) const {
  if (policy.schedule.empty()) return std::nullopt;
  auto compiled = Compile(policy.schedule);
  if (!compiled) return std::nullopt;
  const Schedule* schedule = &compiled->schedule;
  const uint64_t jitter = SourceJitterMicros(source, compiled->gap_seconds, options);
  Due due;
  due.slot_micros = schedule->NextAfter(source.last_slot_micros);
  if (due.slot_micros == 0) return std::nullopt;
  // Slots missed while the vault was down catch up once: the latest slot
  // that has come stands for all of them.
  for (int i = 0; i < 100000; ++i) {
    uint64_t next = schedule->NextAfter(due.slot_micros);
    if (next == 0 || next + jitter > now) break;
    due.slot_micros = next;
  }
  due.run_micros = due.slot_micros + jitter;
  return due;
}

Result<std::vector<uint64_t>> VaultService::ScheduleDue(const SchedulerOptions& options) {
  if (IsReplica() && !IsPromoted()) return std::vector<uint64_t>{};  // a DR copy takes no backups
  Catalog* catalog = vault_->catalog();
  const uint64_t now = Now();
  CAIRN_ASSIGN_OR_RETURN(auto sources, catalog->ListSources());
  CAIRN_ASSIGN_OR_RETURN(auto policies, catalog->ListPolicies());
  std::map<std::string, Policy> by_name;
  for (auto& p : policies) by_name.emplace(p.name, std::move(p));
  std::vector<uint64_t> queued;
  const Actor self = Actor::Self();
  for (const auto& source : sources) {
    auto policy = by_name.find(source.policy);
    if (policy == by_name.end()) continue;
    auto due = NextDue(source, policy->second, options, now);
    if (!due || due->run_micros > now) continue;
    const JobRecord job = BackupJobOf(source, &policy->second);
    auto id = catalog->QueueScheduledJob(source.id, due->slot_micros, job, now);
    if (!id.ok()) {
      spdlog::warn("source {}: queueing its scheduled job failed: {}", source.id,
                   id.status().ToString());
      continue;
    }
    if (*id == 0) continue;  // another scheduler took this slot
    queued.push_back(*id);
    spdlog::info("job {} queued for source {} ({} of {}), slot {}", *id, source.id,
                 source.image ? "image" : "files", EscapeForLog(source.host),
                 cli::Rfc3339(due->slot_micros));
    Audit(self, "job.schedule", DepartmentName(source.department_id), std::to_string(*id),
          {{"source", source.id},
           {"policy", source.policy},
           {"slot", cli::Rfc3339(due->slot_micros)}});
  }
  return queued;
}

Result<size_t> VaultService::ExpireJobs(const SchedulerOptions& options) {
  Catalog* catalog = vault_->catalog();
  const uint64_t now = Now();
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
  // When each host's agent (of a department) was last seen.
  std::map<std::string, uint64_t> seen_by_target;
  for (const auto& a : agents) {
    const uint64_t seen = LastSeen(a);
    for (const std::string& key : {a.serial, std::to_string(a.department_id) + "/" + a.host}) {
      seen_by_target[key] = std::max(seen_by_target[key], seen);
    }
  }
  // An agent counts as connected when it was seen within this (the
  // server's sweep notes connected agents every few seconds).
  constexpr uint64_t kConnected = 30 * kSecond;
  const uint64_t missed_after = options.missed_after_seconds * kSecond;
  const uint64_t deadline = options.deadline_seconds * kSecond;
  CAIRN_ASSIGN_OR_RETURN(auto jobs, catalog->ListJobs(kJobsLookedAt));
  size_t changed = 0;
  const Actor self = Actor::Self();
  for (const auto& j : jobs) {
    if (j.state != JobState::kQueued && j.state != JobState::kSent) continue;
    const std::string target = j.state == JobState::kSent ? j.sent_to
                               : j.agent_serial.empty()
                                   ? std::to_string(j.department_id) + "/" + j.host
                                   : j.agent_serial;
    const uint64_t seen = seen_by_target.count(target) ? seen_by_target[target] : 0;
    const bool connected = seen + kConnected >= now;
    const std::string last_seen = seen == 0 ? "never" : cli::Rfc3339(seen);
    std::string reason;
    if (j.state == JobState::kQueued) {
      if (now >= j.created_micros + missed_after && !connected) {
        reason = "agent " + EscapeForLog(j.host) + " was not connected within " +
                 FormatDuration(options.missed_after_seconds) + " of the job (last seen " +
                 last_seen + ")";
      } else if (now >= j.created_micros + deadline) {
        reason = "not started within its deadline of " + FormatDuration(options.deadline_seconds);
      }
    } else if (now >= j.sent_micros + deadline) {
      reason = "ran past its deadline of " + FormatDuration(options.deadline_seconds);
    } else if (!connected && now >= std::max(seen, j.sent_micros) + missed_after) {
      reason = "agent " + EscapeForLog(j.host) + " disappeared during the job (last seen " +
               last_seen + ")";
    }
    if (reason.empty()) continue;
    const JobState to = j.state == JobState::kQueued ? JobState::kMissed : JobState::kFailed;
    Status s = catalog->ExpireJob(j.id, j.state, to, reason, now);
    if (!s.ok()) {
      if (!s.IsInvalidArgument()) spdlog::warn("job {}: expiring: {}", j.id, s.ToString());
      continue;  // it moved on meanwhile
    }
    ++changed;
    {
      std::lock_guard<std::mutex> lock(progress_mu_);
      progress_.erase(j.id);
    }
    spdlog::warn("job {} {}: {}", j.id, JobStateName(to), reason);
    Audit(self, to == JobState::kMissed ? "job.missed" : "job.failed",
          DepartmentName(j.department_id), std::to_string(j.id), {{"error", reason}});
  }
  return changed;
}

// --- Retention and locks ---------------------------------------------------------

Result<std::vector<VaultService::SeriesPlan>> VaultService::PlanRetention(
    std::string_view department, const std::optional<std::string>& only_series) const {
  Catalog* catalog = vault_->catalog();
  CAIRN_ASSIGN_OR_RETURN(auto sources, catalog->ListSources());
  CAIRN_ASSIGN_OR_RETURN(auto policies, catalog->ListPolicies());
  std::map<std::string, Policy> by_name;
  for (auto& p : policies) by_name.emplace(p.name, std::move(p));
  std::map<std::string, const SourceRecord*> source_of;
  std::map<uint64_t, const SourceRecord*> source_by_id;
  for (const auto& s : sources) {
    source_of[SeriesKeyOf(s)] = &s;
    source_by_id[s.id] = &s;
  }
  // A snapshot a source's job made belongs to that source even when the
  // agent named its paths differently (a symlink to a device).
  CAIRN_ASSIGN_OR_RETURN(auto jobs, catalog->ListJobs(kJobsLookedAt));
  std::map<std::string, uint64_t> job_source;  // snapshot ID -> source
  for (const auto& j : jobs) {
    if (j.source_id != 0 && !j.snapshot_id.empty()) job_source[j.snapshot_id] = j.source_id;
  }
  CAIRN_ASSIGN_OR_RETURN(auto departments, catalog->ListDepartments());
  std::vector<SeriesPlan> plans;
  std::map<std::string, size_t> plan_of;  // series key -> plans index
  const uint64_t now = Now();
  for (const auto& d : departments) {
    if (!department.empty() && d.name != department) continue;
    CAIRN_ASSIGN_OR_RETURN(auto snapshots, catalog->ListSnapshots(d.id, 0));
    for (auto& snap : snapshots) {
      std::string key = SeriesKeyOf(snap);
      const SourceRecord* source = nullptr;
      if (auto js = job_source.find(snap.id); js != job_source.end()) {
        if (auto s = source_by_id.find(js->second); s != source_by_id.end()) {
          source = s->second;
          key = SeriesKeyOf(*source);
        }
      }
      if (!source) {
        auto it = source_of.find(key);
        if (it != source_of.end()) source = it->second;
      }
      if (only_series && *only_series != key) continue;
      auto [slot, added] = plan_of.emplace(key, plans.size());
      if (added) {
        SeriesPlan plan;
        plan.department = d.name;
        plan.host = snap.host;
        plan.paths = snap.paths;
        plan.image = snap.kind == 2;
        if (source) {
          plan.source_id = source->id;
          plan.policy = source->policy;
        }
        plans.push_back(std::move(plan));
      }
      plans[slot->second].snapshots.push_back(std::move(snap));
    }
  }
  for (auto& plan : plans) {
    Retention rules;  // no source, or no policy: keep everything
    if (!plan.policy.empty()) {
      if (auto p = by_name.find(plan.policy); p != by_name.end()) rules = p->second.keep;
    }
    std::vector<RetentionInput> in;
    for (const auto& s : plan.snapshots) in.push_back({s.id, s.time_micros, s.locked_until_micros});
    plan.decisions = ApplyRetention(rules, std::move(in), now);
    if (plan.policy.empty()) {
      for (auto& dec : plan.decisions) dec.reasons = {"no source: retention does not apply"};
    }
  }
  return plans;
}

Result<std::vector<VaultService::SeriesPlan>> VaultService::ApplyRetentionRules(
    const Actor& actor, std::string_view department, bool dry_run) {
  if (!department.empty()) {
    CAIRN_RETURN_IF_ERROR(vault_->catalog()->FindDepartment(department).status());
  }
  CAIRN_RETURN_IF_ERROR(
      Authorize(actor, dry_run ? Permission::kReadState : Permission::kForget, department));
  CAIRN_ASSIGN_OR_RETURN(auto plans, PlanRetention(department, std::nullopt));
  std::vector<SeriesPlan> out;
  for (auto& plan : plans) {
    if (!InScope(actor, plan.department)) continue;
    if (!dry_run) CAIRN_RETURN_IF_ERROR(ForgetPlanned(actor, plan));
    out.push_back(std::move(plan));
  }
  return out;
}

Status VaultService::ForgetPlanned(const Actor& actor, SeriesPlan& plan) {
  CAIRN_ASSIGN_OR_RETURN(Department dept, vault_->catalog()->FindDepartment(plan.department));
  for (auto& d : plan.decisions) {
    if (d.keep) continue;
    Status s = vault_->catalog()->ForgetSnapshot(dept.id, d.id, Now());
    if (!s.ok()) {
      if (s.IsNotFound()) continue;  // forgotten meanwhile
      d.keep = true;
      d.reasons = {"not forgotten: " + s.message()};
      spdlog::warn("retention: snapshot {} not forgotten: {}", d.id, s.ToString());
      continue;
    }
    d.forgotten = true;
    Audit(actor, "snapshot.forget", plan.department, d.id,
          {{"by", "retention"},
           {"policy", plan.policy},
           {"source", plan.source_id},
           {"time", cli::Rfc3339(d.time_micros)}});
  }
  return Status::OK();
}

Result<std::vector<VaultService::ForgetResult>> VaultService::ForgetSnapshots(
    const Actor& actor, std::string_view department, const std::vector<std::string>& ids,
    bool dry_run) {
  CAIRN_ASSIGN_OR_RETURN(Department dept, vault_->catalog()->FindDepartment(department));
  CAIRN_RETURN_IF_ERROR(
      Authorize(actor, dry_run ? Permission::kReadState : Permission::kForget, department));
  std::vector<ForgetResult> out;
  const uint64_t now = Now();
  for (const auto& id : ids) {
    CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snap, FindSnapshot(actor, department, id));
    ForgetResult r{snap, false, ""};
    if (snap.locked_until_micros > now) {
      r.refusal = "locked until " + cli::Rfc3339(snap.locked_until_micros);
    } else if (!dry_run) {
      Status s = vault_->catalog()->ForgetSnapshot(dept.id, snap.id, now);
      if (!s.ok()) {
        r.refusal = s.message();
      } else {
        r.forgotten = true;
      }
    }
    if (!dry_run) {
      if (r.forgotten) {
        Audit(actor, "snapshot.forget", dept.name, snap.id,
              {{"by", "request"}, {"time", cli::Rfc3339(snap.time_micros)}});
      } else {
        Audit(actor, "snapshot.forget_refused", dept.name, snap.id, {{"reason", r.refusal}});
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<Policy> VaultService::PolicyOf(const SnapshotRecord& snapshot,
                                             uint64_t source_id) const {
  auto sources = vault_->catalog()->ListSources();
  if (!sources.ok()) return std::nullopt;
  const std::string key = SeriesKeyOf(snapshot);
  for (const auto& s : *sources) {
    if (s.id != source_id && SeriesKeyOf(s) != key) continue;
    auto policy = vault_->catalog()->FindPolicy(s.policy);
    if (!policy.ok()) return std::nullopt;
    return *policy;
  }
  return std::nullopt;
}

uint64_t VaultService::LockFor(const SnapshotRecord& snapshot, uint64_t source_id) const {
  std::optional<Policy> policy = PolicyOf(snapshot, source_id);
  if (!policy || policy->lock_seconds == 0) return 0;
  return snapshot.time_micros + policy->lock_seconds * kSecond;
}

Status VaultService::AfterJobSnapshot(const JobRecord& job, std::string_view snapshot_id) {
  if (job.source_id == 0) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snap,
                         vault_->catalog()->FindSnapshot(job.department_id, snapshot_id));
  if (uint64_t until = LockFor(snap, job.source_id); until > snap.locked_until_micros) {
    CAIRN_RETURN_IF_ERROR(
        vault_->catalog()->LockSnapshot(job.department_id, snap.id, until).status());
  }
  // Retention of this series, now that it has a new snapshot.
  CAIRN_ASSIGN_OR_RETURN(SourceRecord source, vault_->catalog()->FindSource(job.source_id));
  CAIRN_ASSIGN_OR_RETURN(auto plans,
                         PlanRetention(DepartmentName(job.department_id), SeriesKeyOf(source)));
  for (auto& plan : plans) CAIRN_RETURN_IF_ERROR(ForgetPlanned(Actor::Self(), plan));
  return Status::OK();
}

// --- Early warning of abnormal change --------------------------------------------

namespace {

constexpr uint64_t kMiB = 1 << 20;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string Ratio(double r) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", r);
  return buf;
}

}  // namespace

void VaultService::CheckForAnomaly(const SnapshotRecord& snap) {
  if (options_.anomaly_lock_seconds == 0) return;
  Catalog* catalog = vault_->catalog();
  auto list = catalog->ListSnapshots(snap.department_id, 0);  // newest first
  if (!list.ok()) return;
  const std::string key = SeriesKeyOf(snap);
  // The series' pattern: its last 10 snapshots before this one.
  std::vector<SnapshotRecord> before;
  for (auto& s : *list) {
    if (s.id == snap.id || s.time_micros > snap.time_micros || SeriesKeyOf(s) != key) continue;
    before.push_back(std::move(s));
    if (before.size() == 10) break;
  }
  if (before.size() < 3) return;  // no pattern yet
  std::vector<double> news, files, ratios;
  for (const auto& s : before) {
    news.push_back(static_cast<double>(s.new_bytes));
    files.push_back(static_cast<double>(s.files));
    if (s.stored_bytes != 0 && s.new_bytes >= 64 * 1024) {
      ratios.push_back(static_cast<double>(s.stored_bytes) / static_cast<double>(s.new_bytes));
    }
  }
  std::vector<std::string> why;
  const double usual_new = Median(news);
  if (snap.new_bytes >= kMiB && static_cast<double>(snap.new_bytes) > 10 * usual_new + kMiB) {
    why.push_back("new data " + HumanBytes(snap.new_bytes) + ", usually " +
                  HumanBytes(static_cast<uint64_t>(usual_new)));
  }
  if (snap.stored_bytes != 0 && snap.new_bytes >= kMiB && !ratios.empty()) {
    const double ratio =
        static_cast<double>(snap.stored_bytes) / static_cast<double>(snap.new_bytes);
    const double usual = Median(ratios);
    if (ratio >= 0.9 && usual <= 0.7) {
      why.push_back("new data no longer compresses (stored/new " + Ratio(ratio) + ", usually " +
                    Ratio(usual) + "): encrypted?");
    }
  }
  const double usual_files = Median(files);
  if (snap.kind != 2 && usual_files >= 20 && static_cast<double>(snap.files) < usual_files / 2) {
    why.push_back("files dropped to " + std::to_string(snap.files) + ", usually " +
                  std::to_string(static_cast<uint64_t>(usual_files)));
  }
  if (why.empty()) return;

  // Lock the last good snapshots before it, so that whoever caused this
  // cannot also forget them (an operator's account included).
  const uint64_t until = Now() + options_.anomaly_lock_seconds * kSecond;
  const std::string dept = DepartmentName(snap.department_id);
  const Actor self = Actor::Self();
  std::vector<std::string> locked;
  for (size_t i = 0; i < before.size() && i < 3; ++i) {
    auto held = catalog->LockSnapshot(snap.department_id, before[i].id, until);
    if (!held.ok()) continue;
    locked.push_back(before[i].id);
    Audit(self, "snapshot.lock", dept, before[i].id,
          {{"by", "anomaly"}, {"after", snap.id}, {"until", cli::Rfc3339(*held)}});
  }
  std::string figures;
  for (const auto& w : why) figures += (figures.empty() ? "" : "; ") + w;
  std::string what;
  for (const auto& p : snap.paths) what += (what.empty() ? "" : " ") + p;
  AlertRecord a;
  a.key = "anomaly:" + snap.id;
  a.rule = "anomaly";
  a.severity = "critical";
  a.department = dept;
  a.summary = "abnormal change in " + EscapeForLog(snap.host) + " " + EscapeForLog(what) + " (" +
              dept + "), snapshot " + snap.id + ": " + figures + "; " +
              std::to_string(locked.size()) + " earlier snapshot(s) locked until " +
              cli::Rfc3339(until);
  a.fired_micros = Now();
  spdlog::warn("{}", a.summary);
  boost::json::array why_json(why.begin(), why.end());
  Audit(self, "snapshot.anomaly", dept, snap.id,
        {{"why", why_json},
         {"new_bytes", snap.new_bytes},
         {"stored_bytes", snap.stored_bytes},
         {"files", snap.files},
         {"locked", boost::json::array(locked.begin(), locked.end())}});
  auto fired = catalog->FireAlert(&a);
  if (fired.ok() && *fired) {
    Audit(self, "alert.fire", a.department, a.key,
          {{"alert", a.id}, {"rule", a.rule}, {"severity", a.severity}, {"summary", a.summary}});
  }
}

// --- Protection status ----------------------------------------------------------

Result<VaultService::ProtectionReport> VaultService::ProtectionStatus(
    const Actor& actor, std::string_view department, const SchedulerOptions& options,
    uint64_t as_of_micros) const {
  if (!department.empty()) {
    CAIRN_RETURN_IF_ERROR(vault_->catalog()->FindDepartment(department).status());
  }
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState, department));
  Catalog* catalog = vault_->catalog();
  const uint64_t now = as_of_micros != 0 ? std::min(as_of_micros, Now()) : Now();
  ProtectionReport report;
  report.time_micros = now;
  CAIRN_ASSIGN_OR_RETURN(auto sources, catalog->ListSources());
  CAIRN_ASSIGN_OR_RETURN(auto policies, catalog->ListPolicies());
  std::map<std::string, Policy> by_name;
  for (auto& p : policies) by_name.emplace(p.name, std::move(p));
  CAIRN_ASSIGN_OR_RETURN(auto jobs, catalog->ListJobs(kJobsLookedAt));
  CAIRN_ASSIGN_OR_RETURN(auto plans, PlanRetention(department, std::nullopt));
  const uint64_t replicated = ReplicatedUpTo();
  const bool dr_seen = replica_served_micros_.load() != 0;
  auto visible = [&](uint32_t dept) {
    const std::string name = DepartmentName(dept);
    return (department.empty() || name == department) && InScope(actor, name);
  };
  std::set<std::string> hosts_with_source;
  for (const auto& s : sources) {
    if (!visible(s.department_id) || s.created_micros > now) continue;
    hosts_with_source.insert(std::to_string(s.department_id) + "/" + s.host);
    SourceStatus st;
    st.source = s;
    st.department = DepartmentName(s.department_id);
    auto policy = by_name.find(s.policy);
    if (policy != by_name.end()) st.policy = policy->second;
    // The newest snapshot of its series that scrub has not found damaged.
    for (const auto& plan : plans) {
      if (plan.source_id != s.id || plan.snapshots.empty()) continue;
      const SnapshotRecord* good = nullptr;
      for (const SnapshotRecord& snap : plan.snapshots) {
        if (snap.time_micros > now) continue;  // taken after the time asked about
        ++st.snapshots;
        if (snap.damaged_micros != 0) {
          ++st.damaged_snapshots;
        } else if (good == nullptr) {
          good = &snap;
        }
      }
      if (good == nullptr) continue;
      const SnapshotRecord& newest = *good;
      st.last_good_snapshot = newest.id;
      st.last_good_micros = newest.time_micros;
      st.last_good_pit = newest.pit_method;
      st.offsite = !st.policy.offsite ? "not required"
                   : !dr_seen         ? "no DR site has pulled since the vault started"
                   : SnapshotNumber(newest.id) <= replicated ? "replicated"
                                                             : "lagging";
    }
    if (st.policy.offsite && st.last_good_snapshot.empty()) st.offsite = "nothing to copy yet";
    for (const auto& j : jobs) {
      if (j.source_id != s.id || j.kind != 1 || j.created_micros > now) continue;
      if (j.state == JobState::kFailed || j.state == JobState::kMissed) {
        st.last_failure_job = j.id;
        st.last_failure = std::string(JobStateName(j.state)) + ": " + j.error;
        st.last_failure_micros = j.finished_micros;
      }
      if (j.state == JobState::kQueued || j.state == JobState::kSent) st.running_job = j.id;
    }
    if (auto due = NextDue(s, st.policy, options, now)) st.next_run_micros = due->run_micros;
    // RPO: met, at risk (the next run would come too late, or the last
    // attempt failed), breached; with no RPO, "no RPO".
    const uint64_t rpo = st.policy.rpo_seconds * kSecond;
    const uint64_t since = st.last_good_micros != 0 ? st.last_good_micros : s.created_micros;
    st.age_seconds =
        st.last_good_micros != 0 ? (now - std::min(now, st.last_good_micros)) / kSecond : 0;
    if (rpo == 0) {
      st.rpo = "no RPO";
    } else if (now > since + rpo) {
      st.rpo = "breached";
    } else if ((st.next_run_micros != 0 && st.next_run_micros > since + rpo) ||
               st.last_failure_micros > st.last_good_micros) {
      st.rpo = "at risk";
    } else {
      st.rpo = st.last_good_micros != 0 ? "met" : "pending";
    }
    report.sources.push_back(std::move(st));
  }
  // What nothing protects: snapshots of series without a source, agents
  // without a source, agents not seen for a day.
  for (const auto& plan : plans) {
    if (plan.source_id != 0 || !InScope(actor, plan.department)) continue;
    report.unprotected_series.push_back(plan.department + " " + plan.host + " " +
                                        (plan.paths.empty() ? "" : plan.paths.front()) +
                                        (plan.paths.size() > 1 ? " ..." : ""));
  }
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
  for (const auto& a : agents) {
    if (a.revoked || a.department_id == kReplicatorToken || !visible(a.department_id)) continue;
    const std::string name = DepartmentName(a.department_id) + "/" + a.host;
    if (!hosts_with_source.contains(std::to_string(a.department_id) + "/" + a.host)) {
      report.agents_without_source.push_back(name);
    }
    const uint64_t seen = std::max(LastSeen(a), a.enrolled_micros);
    if (now > seen + 86400 * kSecond) report.agents_unseen.push_back(name);
  }
  return report;
}

uint64_t VaultService::ReplicatedUpTo() const { return replica_served_after_.load(); }

}  // namespace cairn::vault
