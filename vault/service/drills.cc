// Restore drills: the vault's side (doc/design.md section 23). The drill
// host measures; the vault checks, decides, signs and keeps.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <map>
#include <set>

#include "lib/base/cli.h"
#include "lib/base/names.h"
#include "lib/crypto/hash.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"
#include "vault/drill/monthly.h"
#include "vault/drill/report.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {
namespace {

namespace json = boost::json;

Status Bad(const std::string& what) { return Status::InvalidArgument("drill_report: " + what); }

Result<uint64_t> Count(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !(v->is_uint64() || (v->is_int64() && v->as_int64() >= 0))) {
    return Bad(std::string("'") + key + "' must be a whole number");
  }
  return v->is_uint64() ? v->as_uint64() : static_cast<uint64_t>(v->as_int64());
}

// SHA-256 chained over the manifest in blocks of 16384 IDs:
// h = SHA-256(h || block), from 32 zero bytes.
class ManifestDigest {
 public:
  void Add(std::span<const crypto::ChunkId> ids) {
    for (const auto& id : ids) {
      block_.insert(block_.end(), id.begin(), id.end());
      if (block_.size() == 16384 * crypto::kChunkIdSize) Fold();
    }
  }
  std::string Hex() {
    if (!block_.empty()) Fold();
    return ToHex(h_);
  }

 private:
  void Fold() {
    Bytes in(h_.begin(), h_.end());
    in.insert(in.end(), block_.begin(), block_.end());
    h_ = crypto::Sha256(in);
    block_.clear();
  }
  crypto::Sha256Digest h_{};
  Bytes block_;
};

// A drill report's series key (SeriesKeyOf), from what it says it drilled.
std::string ReportSeries(const json::object& r, uint32_t department_id) {
  SnapshotRecord s;
  s.department_id = department_id;
  s.host = std::string(r.at("snapshot_host").as_string());
  for (const auto& p : r.at("snapshot_paths").as_array()) s.paths.emplace_back(p.as_string());
  const json::value* image = r.if_contains("snapshot_image");
  s.kind = image != nullptr && image->is_bool() && image->as_bool() ? 2 : 1;
  return SeriesKeyOf(s);
}

// The drill host for a drill of `department`'s snapshot of `source_host`:
// a drill host of the department on another host, the most recently seen
// (LastSeen); null when there is none.
template <typename SeenFn>
const AgentRecord* PickDrillHost(const std::vector<AgentRecord>& agents, uint32_t department,
                                 const std::string& source_host, SeenFn seen) {
  const AgentRecord* host = nullptr;
  for (const AgentRecord& a : agents) {
    if (!a.drill_host || a.revoked || a.department_id != department || a.host == source_host) {
      continue;
    }
    if (host == nullptr || seen(a) > seen(*host)) host = &a;
  }
  return host;
}

// A drill job of `snapshot` on `host` (null: none, for a missed drill), with
// the policy's check and RTO, reading from `read_from`.
JobRecord DrillJob(const SnapshotRecord& snapshot, const std::optional<Policy>& policy,
                   const AgentRecord* host, const std::vector<std::string>& read_from) {
  JobRecord job;
  job.department_id = snapshot.department_id;
  job.kind = 2;
  job.host = host != nullptr ? host->host : "";
  job.agent_serial = host != nullptr ? host->serial : "";
  job.image = snapshot.kind == 2;
  job.paths = snapshot.paths;
  job.read_snapshot = snapshot.id;
  if (policy) {
    job.drill_check = policy->drill_check;
    job.drill_check_timeout = policy->drill_check_timeout_seconds;
    job.drill_rto = policy->rto_seconds;
  }
  job.read_from = read_from;
  return job;
}

// Where a drill on `host` reads: the DR site (`dr`) once it knows the host,
// that is once a replicator connected, and so copied the agents, after the
// host enrolled. Before that the DR site would refuse the host's
// certificate as unknown, so the drill reads from this vault, and its
// report's read_site says so.
template <typename SeenFn>
std::vector<std::string> DrillReadFrom(const std::vector<std::string>& dr, const AgentRecord* host,
                                       const std::vector<AgentRecord>& agents, SeenFn seen) {
  if (dr.empty() || host == nullptr) return dr;
  for (const AgentRecord& a : agents) {
    if (a.department_id == 0 && !a.revoked && seen(a) > host->enrolled_micros) return dr;
  }
  spdlog::info(
      "drill host {} enrolled after the DR site's last replication pass: its drill "
      "reads from this vault",
      EscapeForLog(host->host));
  return {};
}

std::string NoDrillHost(const std::string& department, const std::string& source_host) {
  return "no drill host: enrol an agent of department " + department + " on a host other than " +
         EscapeForLog(source_host) + " with a token from `cairn-vault token create --department " +
         department + " --drill-host` (at the DR site, preferably)";
}

uint64_t FinishedMicros(const json::object& r) {
  const json::value* when = r.if_contains("finished_micros");
  return when != nullptr && when->is_number() ? when->to_number<uint64_t>() : 0;
}

}  // namespace

std::map<std::string, json::object> VaultService::NewestDrills(
    const std::vector<json::object>& signed_reports, uint64_t as_of_micros) const {
  std::map<std::string, uint32_t> ids;
  if (auto departments = vault_->catalog()->ListDepartments(); departments.ok()) {
    for (const Department& d : *departments) ids[d.name] = d.id;
  }
  std::map<std::string, json::object> newest;
  for (const json::object& d : signed_reports) {
    const json::value* rv = d.if_contains("report");
    if (rv == nullptr || !rv->is_object()) continue;
    const json::object& r = rv->as_object();
    const json::value* dept = r.if_contains("department");
    if (dept == nullptr || !dept->is_string() || !ids.contains(std::string(dept->as_string()))) {
      continue;
    }
    const uint64_t finished = FinishedMicros(r);
    if (finished == 0 || finished > as_of_micros) continue;
    const std::string key = ReportSeries(r, ids[std::string(dept->as_string())]);
    auto it = newest.find(key);
    if (it == newest.end() || FinishedMicros(it->second) < finished) newest[key] = r;
  }
  return newest;
}

Result<std::vector<uint64_t>> VaultService::ScheduleDrills(const SchedulerOptions& options) {
  if (IsReplica() && !IsPromoted()) return std::vector<uint64_t>{};  // the primary schedules
  Catalog* catalog = vault_->catalog();
  const uint64_t now = Now();
  CAIRN_ASSIGN_OR_RETURN(auto sources, catalog->ListSources());
  CAIRN_ASSIGN_OR_RETURN(auto policies, catalog->ListPolicies());
  std::map<std::string, Policy> by_name;
  for (auto& p : policies) {
    if (p.drill_every_seconds != 0) by_name.emplace(p.name, std::move(p));
  }
  std::vector<uint64_t> queued;
  if (by_name.empty()) return queued;
  CAIRN_ASSIGN_OR_RETURN(auto rows, catalog->ListDrills(0));
  std::vector<json::object> reports;
  for (const auto& [id, text] : rows) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (!ec && v.is_object()) reports.push_back(std::move(v.as_object()));
  }
  const std::map<std::string, json::object> newest = NewestDrills(reports, now);
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
  std::set<uint64_t> busy;  // sources with a drill queued or running
  CAIRN_ASSIGN_OR_RETURN(auto jobs, catalog->ListJobs(8192));  // the newest, as ExpireJobs
  for (const JobRecord& j : jobs) {
    if (j.kind == 2 && (j.state == JobState::kQueued || j.state == JobState::kSent)) {
      busy.insert(j.source_id);
    }
  }
  const std::vector<std::string> dr = DrAddresses();
  const Actor self = Actor::Self();
  std::map<uint32_t, std::vector<SnapshotRecord>> snapshots;  // by department, read once
  for (const SourceRecord& source : sources) {
    auto policy = by_name.find(source.policy);
    if (policy == by_name.end()) continue;
    const Policy& p = policy->second;
    const std::string key = SeriesKeyOf(source);
    // Due a drill period after the last drill (the first at once). A drill
    // queued for this period that ended without a report (missed, failed)
    // is tried again `drill_retry_seconds` after it was queued.
    uint64_t due = 0;
    if (auto it = newest.find(key); it != newest.end()) {
      due = FinishedMicros(it->second) + p.drill_every_seconds * 1'000'000;
    }
    if (source.last_drill_slot_micros >= due) {
      if (busy.contains(source.id)) continue;  // queued or running
      due = source.last_drill_slot_micros + options.drill_retry_seconds * 1'000'000;
    }
    if (due > now) continue;
    // The series' newest good snapshot; none yet: nothing to drill.
    if (!snapshots.contains(source.department_id)) {
      CAIRN_ASSIGN_OR_RETURN(snapshots[source.department_id],
                             catalog->ListSnapshots(source.department_id, 0));
    }
    const SnapshotRecord* drilled = nullptr;
    for (const SnapshotRecord& s : snapshots[source.department_id]) {
      if (s.damaged_micros == 0 && SeriesKeyOf(s) == key &&
          (drilled == nullptr || s.time_micros > drilled->time_micros)) {
        drilled = &s;
      }
    }
    if (drilled == nullptr) continue;
    const auto seen = [this](const AgentRecord& a) { return LastSeen(a); };
    const AgentRecord* host = PickDrillHost(agents, source.department_id, source.host, seen);
    const JobRecord job = DrillJob(*drilled, p, host, DrillReadFrom(dr, host, agents, seen));
    auto id = catalog->QueueScheduledJob(source.id, now, job, now);
    if (!id.ok()) {
      spdlog::warn("source {}: queueing its drill failed: {}", source.id, id.status().ToString());
      continue;
    }
    if (*id == 0) continue;  // that slot was queued already
    const std::string department = DepartmentName(source.department_id);
    if (host == nullptr) {
      const std::string reason = NoDrillHost(department, source.host);
      if (Status s = catalog->ExpireJob(*id, JobState::kQueued, JobState::kMissed, reason, now);
          !s.ok()) {
        spdlog::warn("drill job {}: recording it missed: {}", *id, s.ToString());
        continue;
      }
      spdlog::warn("drill of source {} ({} {}) missed: {}", source.id, department,
                   EscapeForLog(source.host), reason);
      Audit(self, "job.missed", department, std::to_string(*id),
            {{"source", source.id}, {"kind", "drill"}, {"error", reason}});
      continue;
    }
    queued.push_back(*id);
    spdlog::info("drill job {} queued: snapshot {} of source {} on drill host {}{}", *id,
                 drilled->id, source.id, EscapeForLog(host->host),
                 job.read_from.empty() ? " (read from this vault)" : ", read from the DR site");
    Audit(self, "job.schedule", department, std::to_string(*id),
          {{"source", source.id},
           {"kind", "drill"},
           {"policy", source.policy},
           {"snapshot", drilled->id},
           {"drill_host", host->host}});
  }
  return queued;
}

Result<uint64_t> VaultService::StartDrill(const Actor& actor, std::string_view department,
                                          std::string_view snapshot_id) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snapshot, FindSnapshot(actor, department, snapshot_id));
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kRestore, department));
  CAIRN_ASSIGN_OR_RETURN(auto agents, vault_->catalog()->ListAgents());
  const auto seen = [this](const AgentRecord& a) { return LastSeen(a); };
  const AgentRecord* host = PickDrillHost(agents, snapshot.department_id, snapshot.host, seen);
  if (host == nullptr) {
    return Status::InvalidArgument(NoDrillHost(std::string(department), snapshot.host));
  }
  const JobRecord job = DrillJob(snapshot, PolicyOf(snapshot, 0), host,
                                 DrillReadFrom(DrAddresses(), host, agents, seen));
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, vault_->catalog()->EnqueueJob(job, Now()));
  spdlog::info("drill job {} of snapshot {} queued on {} by {}", id, snapshot.id,
               EscapeForLog(host->host), actor.Describe());
  Audit(actor, "drill.start", std::string(department), std::to_string(id),
        {{"snapshot", snapshot.id}, {"drill_host", host->host}});
  return id;
}

Result<uint64_t> VaultService::StartRestore(const Actor& actor, std::string_view department,
                                            std::string_view snapshot_id, std::string_view agent,
                                            std::string_view target) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snapshot, FindSnapshot(actor, department, snapshot_id));
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kRestore, department));
  if (target.empty() || target.front() != '/' || target.size() > 4096 ||
      target.find('\0') != std::string_view::npos || target == "/") {
    return Status::InvalidArgument(
        "the target must be an absolute path of a new or empty directory (not /)");
  }
  CAIRN_ASSIGN_OR_RETURN(JobRecord job, ResolveJobTarget(agent, department));
  if (job.department_id != snapshot.department_id) {
    return Status::NotFound("no agent '" + std::string(agent) + "' in department " +
                            std::string(department));
  }
  job.kind = 3;
  job.paths = snapshot.paths;
  job.image = snapshot.kind == 2;
  job.read_snapshot = snapshot.id;
  job.restore_target = std::string(target);
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, vault_->catalog()->EnqueueJob(job, Now()));
  spdlog::info("restore job {} of snapshot {} into {} on {} queued by {}", id, snapshot.id,
               EscapeForLog(target), EscapeForLog(agent), actor.Describe());
  Audit(
      actor, "restore.start", std::string(department), std::to_string(id),
      {{"snapshot", snapshot.id}, {"agent", std::string(agent)}, {"target", std::string(target)}});
  return id;
}

Result<std::vector<repo::TreeEntry>> VaultService::BrowseSnapshot(const Actor& actor,
                                                                  std::string_view department,
                                                                  std::string_view snapshot_id,
                                                                  std::string_view path,
                                                                  size_t limit, bool* truncated) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snapshot, FindSnapshot(actor, department, snapshot_id));
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kRestore, department));
  if (vault_->store() == nullptr) return Status::Unavailable("this vault holds no data");
  CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys,
                         vault_->DepartmentKeys(snapshot.department_id));
  CAIRN_ASSIGN_OR_RETURN(auto decoder, repo::RecordDecoder::Create(keys));
  // One directory, every part of it (bounded: a hostile chain ends).
  auto read_dir = [&](const crypto::ChunkId& first, size_t max,
                      std::vector<repo::TreeEntry>* out) -> Status {
    std::optional<crypto::ChunkId> next = first;
    for (int parts = 0; next && parts < 100000; ++parts) {
      Bytes record, plain;
      CAIRN_RETURN_IF_ERROR(vault_->store()->Read(snapshot.department_id, *next, &record));
      CAIRN_RETURN_IF_ERROR(decoder->Decode(record, &plain));
      CAIRN_ASSIGN_OR_RETURN(repo::DirPart part, repo::DecodeDirPart(plain));
      for (auto& e : part.entries) {
        if (out->size() >= max) {
          *truncated = true;
          return Status::OK();
        }
        out->push_back(std::move(e));
      }
      next = part.next;
    }
    return Status::OK();
  };
  *truncated = false;
  crypto::ChunkId dir = snapshot.root_tree;
  std::string walked;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view name = path.substr(start, slash - start);
    start = slash + 1;
    if (name.empty()) continue;
    std::vector<repo::TreeEntry> entries;
    CAIRN_RETURN_IF_ERROR(read_dir(dir, std::numeric_limits<size_t>::max(), &entries)
                              .WithContext("snapshot " + snapshot.id + " at /" + walked));
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const repo::TreeEntry& e) { return e.name == name; });
    if (it == entries.end() || it->type != repo::EntryType::kDir) {
      return Status::NotFound("no directory /" + walked + (walked.empty() ? "" : "/") +
                              std::string(name) + " in snapshot " + snapshot.id);
    }
    dir = it->subtree;
    walked += (walked.empty() ? "" : "/") + std::string(name);
  }
  std::vector<repo::TreeEntry> entries;
  CAIRN_RETURN_IF_ERROR(
      read_dir(dir, limit, &entries).WithContext("snapshot " + snapshot.id + " at /" + walked));
  Audit(actor, "snapshot.browse", std::string(department), snapshot.id, {{"path", "/" + walked}});
  return entries;
}

Result<json::object> VaultService::RecordDrill(const Actor& agent, std::string_view measured_json) {
  boost::system::error_code ec;
  json::value parsed = json::parse(measured_json, ec);
  if (ec || !parsed.is_object()) return Bad("not a JSON object");
  const json::object& m = parsed.as_object();
  const json::value* snap_v = m.if_contains("snapshot");
  if (snap_v == nullptr || !snap_v->is_string()) return Bad("'snapshot' must be a string");
  auto snapshot = vault_->catalog()->FindSnapshot(agent.department, snap_v->as_string());
  if (!snapshot.ok()) {
    return snapshot.status().IsNotFound()
               ? Status::NotFound("no snapshot " +
                                  EscapeForLog(std::string_view(snap_v->as_string())) +
                                  " in this department")
               : snapshot.status();
  }
  // A scheduled drill names its job: sent to this agent, of this snapshot.
  std::optional<JobRecord> job;
  if (const json::value* j = m.if_contains("job"); j != nullptr && !j->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t job_id, Count(m, "job"));
    auto found = vault_->catalog()->FindJob(job_id);
    if (!found.ok() || found->kind != 2 || found->sent_to != agent.name ||
        found->read_snapshot != snapshot->id) {
      return Bad("job " + std::to_string(job_id) +
                 " is not a drill of this snapshot sent to this agent");
    }
    job = *found;
  }
  std::string served_by;
  if (const json::value* s = m.if_contains("served_by"); s != nullptr && s->is_string()) {
    served_by = std::string(s->as_string()).substr(0, 256);
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t files, Count(m, "files"));
  CAIRN_ASSIGN_OR_RETURN(uint64_t bytes, Count(m, "bytes"));
  // What the drill host read back from its disk and hashed again (absent
  // from drills by older hosts).
  json::object read_back{{"bytes", nullptr}, {"chunks", nullptr}};
  if (m.contains("read_back_chunks")) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t b, Count(m, "read_back_bytes"));
    CAIRN_ASSIGN_OR_RETURN(uint64_t c, Count(m, "read_back_chunks"));
    read_back = {{"bytes", b}, {"chunks", c}};
  }
  const json::value* times_v = m.if_contains("millis");
  if (times_v == nullptr || !times_v->is_object()) return Bad("'millis' must be an object");
  json::object millis;
  for (const char* step : {"first_byte", "restored", "verified", "checked", "total"}) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t v, Count(times_v->as_object(), step));
    millis[step] = v;
  }
  json::array damaged;
  if (const json::value* d = m.if_contains("damaged"); d != nullptr) {
    if (!d->is_array() || d->as_array().size() > 1000) return Bad("'damaged' must be a list");
    for (const auto& item : d->as_array()) {
      if (!item.is_object()) return Bad("'damaged' holds objects");
      damaged.push_back(item);
    }
  }
  json::value check = nullptr;
  bool check_ok = true;
  if (const json::value* c = m.if_contains("check"); c != nullptr && !c->is_null()) {
    if (!c->is_object()) return Bad("'check' must be an object or null");
    const json::object& co = c->as_object();
    const json::value* exit = co.if_contains("exit");
    const json::value* timed_out = co.if_contains("timed_out");
    if (exit == nullptr || !(exit->is_null() || exit->is_int64() || exit->is_uint64()) ||
        timed_out == nullptr || !timed_out->is_bool()) {
      return Bad("'check' needs 'exit' (a number or null) and 'timed_out'");
    }
    check_ok = !timed_out->as_bool() && (exit->is_int64() || exit->is_uint64()) &&
               exit->to_number<int64_t>() == 0;
    json::object kept;
    for (const char* key : {"command", "exit", "timed_out", "output_tail", "failure"}) {
      if (const json::value* v = co.if_contains(key); v != nullptr) kept[key] = *v;
    }
    check = kept;
  }
  // An image's file system: checked, mounted read-only, listed.
  json::value filesystem = nullptr;
  bool filesystem_ok = true;
  if (const json::value* f = m.if_contains("filesystem"); f != nullptr && !f->is_null()) {
    if (!f->is_object()) return Bad("'filesystem' must be an object or null");
    const json::value* ok = f->as_object().if_contains("ok");
    if (ok == nullptr || !ok->is_bool()) return Bad("'filesystem' needs 'ok'");
    filesystem_ok = ok->as_bool();
    json::object kept;
    for (const char* key : {"type", "fsck", "mounted", "files", "bytes", "ok", "failure"}) {
      if (const json::value* v = f->as_object().if_contains(key); v != nullptr) kept[key] = *v;
    }
    filesystem = kept;
  }
  // The RTO: the policy's, else the one the drill asked for.
  json::value rto = nullptr;
  std::string rto_source;
  if (std::optional<Policy> policy = PolicyOf(*snapshot, job ? job->source_id : 0);
      policy && policy->rto_seconds > 0) {
    rto = policy->rto_seconds;
    rto_source = "policy " + policy->name;
  } else if (const json::value* r = m.if_contains("rto_seconds"); r != nullptr && !r->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t asked, Count(m, "rto_seconds"));
    rto = asked;
    rto_source = "asked by the drill";
  }
  const uint64_t total_ms = millis["total"].as_uint64();
  json::value rto_met = nullptr;
  if (!rto.is_null()) rto_met = total_ms <= rto.as_uint64() * 1000;
  ManifestDigest digest;
  CAIRN_RETURN_IF_ERROR(
      vault_->catalog()->ForEachManifestPart(*snapshot, [&](std::span<const crypto::ChunkId> ids) {
        digest.Add(ids);
        return Status::OK();
      }));
  std::string failure;
  if (!damaged.empty()) failure = std::to_string(damaged.size()) + " damaged objects";
  if (!filesystem_ok) {
    const json::value* why = filesystem.as_object().if_contains("failure");
    failure += std::string(failure.empty() ? "" : "; ") + "the image's file system: " +
               (why != nullptr && why->is_string() ? std::string(why->as_string()) : "not sound");
  }
  if (!check_ok) failure += std::string(failure.empty() ? "" : "; ") + "the check failed";
  if (rto_met.is_bool() && !rto_met.as_bool()) {
    failure += std::string(failure.empty() ? "" : "; ") + "the RTO was missed";
  }
  if (snapshot->damaged_micros != 0) {
    failure += std::string(failure.empty() ? "" : "; ") + "scrub marked the snapshot damaged";
  }
  const uint64_t now = Now();
  const std::string department = DepartmentName(agent.department);
  if (vault_->audit() == nullptr) return Status::Unavailable("the vault has no evidence key");
  AuditLog* audit = vault_->audit();
  CAIRN_ASSIGN_OR_RETURN(Bytes pem_bytes,
                         io::ReadFileToBytes(vault_->env(), audit->public_key_path()));
  const std::string pem(AsString(pem_bytes));
  json::object signed_report;
  CAIRN_ASSIGN_OR_RETURN(
      uint64_t id, vault_->catalog()->AddDrill([&](uint64_t drill) -> Result<std::string> {
        json::object r;
        r["version"] = 1;
        r["drill"] = drill;
        r["vault_site"] = vault_->site();
        r["department"] = department;
        r["snapshot"] = snapshot->id;
        r["snapshot_time"] = cli::Rfc3339(snapshot->time_micros);
        r["snapshot_host"] = snapshot->host;
        r["snapshot_paths"] = json::array(snapshot->paths.begin(), snapshot->paths.end());
        r["snapshot_image"] = snapshot->kind == 2;
        r["scheduled"] = job.has_value() && job->source_id != 0;
        r["job"] = job ? json::value(job->id) : json::value(nullptr);
        r["source"] = job ? json::value(job->source_id) : json::value(nullptr);
        // Where the drill read the data: this vault, or the DR site (the
        // off-site copy proven).
        const std::vector<std::string> dr = DrAddresses();
        r["served_by"] = served_by;
        r["read_site"] = std::find(dr.begin(), dr.end(), served_by) != dr.end()
                             ? json::value("dr")
                             : json::value(vault_->site());
        r["manifest_chunks"] = snapshot->manifest_count;
        r["manifest_sha256"] = digest.Hex();
        r["drill_host"] = agent.host;
        r["drill_agent"] = agent.name;
        r["started"] = cli::Rfc3339(now - std::min(now, total_ms * 1000));
        r["finished"] = cli::Rfc3339(now);
        r["finished_micros"] = now;
        r["files"] = files;
        r["bytes"] = bytes;
        r["read_back"] = read_back;
        r["damaged"] = damaged;
        r["millis"] = millis;
        r["check"] = check;
        r["filesystem"] = filesystem;
        r["rto_seconds"] = rto;
        r["rto_source"] = rto_source.empty() ? json::value(nullptr) : json::value(rto_source);
        r["rto_met"] = rto_met;
        r["ok"] = failure.empty();
        r["failure"] = failure;
        CAIRN_ASSIGN_OR_RETURN(signed_report,
                               SignReport(
                                   r, [&](ByteView b) { return audit->Sign(b); }, pem));
        return json::serialize(signed_report);
      }));
  Audit(agent, "drill.report", department, snapshot->id,
        {{"drill", id},
         {"ok", failure.empty()},
         {"failure", failure},
         {"total_millis", total_ms},
         {"rto_seconds", rto},
         {"rto_met", rto_met}});
  spdlog::info("drill {} of snapshot {} ({}) by {}: {}", id, snapshot->id, department,
               agent.Describe(), failure.empty() ? "passed" : "FAILED: " + failure);
  return signed_report;
}

Result<std::vector<json::object>> VaultService::ListDrills(const Actor& actor, size_t limit) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  CAIRN_ASSIGN_OR_RETURN(auto rows, vault_->catalog()->ListDrills(0));
  std::vector<json::object> out;
  for (const auto& [id, text] : rows) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) continue;
    const json::value* r = v.as_object().if_contains("report");
    const json::value* d = r && r->is_object() ? r->as_object().if_contains("department") : nullptr;
    if (d == nullptr || !d->is_string() || !InScope(actor, d->as_string())) continue;
    out.push_back(v.as_object());
    if (limit != 0 && out.size() >= limit) break;
  }
  return out;
}

Result<json::object> VaultService::Compliance(const Actor& actor, std::string_view department,
                                              uint64_t from_micros, uint64_t to_micros,
                                              const SchedulerOptions& scheduler) const {
  // As things stood at the end of the window (now, for a window that has
  // not ended).
  const uint64_t now = std::min(to_micros, Now());
  CAIRN_ASSIGN_OR_RETURN(ProtectionReport status,
                         ProtectionStatus(actor, department, scheduler, now));
  CAIRN_ASSIGN_OR_RETURN(std::vector<json::object> drills, ListDrills(actor, 0));
  const std::map<std::string, json::object> newest = NewestDrills(drills, now);
  CAIRN_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, vault_->catalog()->ListJobs());
  std::map<uint32_t, ChunkStore::Usage> usage;
  if (vault_->store() != nullptr) {
    if (auto u = vault_->store()->PackUsage(); u.ok()) usage = *u;
  }
  json::array rows;
  for (const SourceStatus& st : status.sources) {
    const SourceRecord& s = st.source;
    json::object row;
    row["department"] = st.department;
    row["source"] = s.id;
    row["host"] = s.host;
    row["paths"] = json::array(s.paths.begin(), s.paths.end());
    row["image"] = s.image;
    row["policy"] = st.policy.name;
    // RPO: objective, and what was achieved at the primary and off site.
    row["rpo_seconds"] = st.policy.rpo_seconds ? json::value(st.policy.rpo_seconds) : nullptr;
    row["newest_good_snapshot"] = st.last_good_snapshot;
    row["rpo_achieved_seconds"] =
        st.last_good_micros ? json::value(st.age_seconds) : json::value(nullptr);
    row["rpo_state"] = st.rpo;
    row["offsite"] = st.offsite;
    row["damaged_snapshots"] = st.damaged_snapshots;
    // RTO: objective, and the last drill of this source's series.
    row["rto_seconds"] = st.policy.rto_seconds ? json::value(st.policy.rto_seconds) : nullptr;
    const auto found = newest.find(SeriesKeyOf(s));
    const json::object* last = found == newest.end() ? nullptr : &found->second;
    if (last != nullptr) {
      const uint64_t total_ms = last->at("millis").as_object().at("total").to_number<uint64_t>();
      const json::value* site = last->if_contains("read_site");
      row["last_drill"] = json::object{
          {"drill", last->at("drill")},     {"finished", last->at("finished")},
          {"ok", last->at("ok")},           {"total_seconds", total_ms / 1000},
          {"rto_met", last->at("rto_met")}, {"read_site", site ? *site : json::value(nullptr)}};
    } else {
      row["last_drill"] = nullptr;
    }
    row["drill_every_seconds"] =
        st.policy.drill_every_seconds ? json::value(st.policy.drill_every_seconds) : nullptr;
    json::value fresh = nullptr;
    if (st.policy.drill_every_seconds != 0) {
      bool is_fresh = false;
      if (last != nullptr) {
        const json::value* when = last->if_contains("finished_micros");
        is_fresh = when != nullptr && when->is_number() &&
                   now - std::min(now, when->to_number<uint64_t>()) <=
                       st.policy.drill_every_seconds * 1'000'000;
      }
      fresh = is_fresh;
    }
    row["drill_fresh"] = fresh;
    // Backups and scheduled drills of this source in the window.
    uint64_t counts[2][3] = {};  // [backup, drill][done, failed, missed]
    std::string last_drill_miss;
    for (const JobRecord& j : jobs) {
      if (j.source_id != s.id || (j.kind != 1 && j.kind != 2) || j.created_micros < from_micros ||
          j.created_micros >= to_micros || j.created_micros > now) {
        continue;
      }
      uint64_t* c = counts[j.kind - 1];
      c[0] += j.state == JobState::kDone;
      c[1] += j.state == JobState::kFailed;
      c[2] += j.state == JobState::kMissed;
      if (j.kind == 2 && j.state == JobState::kMissed) last_drill_miss = j.error;
    }
    const uint64_t done = counts[0][0];
    const uint64_t ended = counts[0][0] + counts[0][1] + counts[0][2];
    row["backups"] =
        json::object{{"done", done}, {"failed", counts[0][1]}, {"missed", counts[0][2]}};
    row["scheduled_drills"] = json::object{{"done", counts[1][0]},
                                           {"failed", counts[1][1]},
                                           {"missed", counts[1][2]},
                                           {"last_missed_reason", last_drill_miss}};
    row["backup_success_percent"] =
        ended ? json::value(static_cast<uint64_t>(done * 100 / ended)) : json::value(nullptr);
    row["department_stored_bytes"] = usage[s.department_id].bytes;
    // The objectives met over all: RPO met, RTO met by the last drill, the
    // drill fresh, no damaged snapshot.
    const bool rpo_ok = st.rpo == "met" || st.rpo == "no RPO";
    const bool rto_ok =
        st.policy.rto_seconds == 0 || (last != nullptr && last->at("rto_met").is_bool() &&
                                       last->at("rto_met").as_bool() && last->at("ok").as_bool());
    const bool drill_ok = fresh.is_null() || fresh.as_bool();
    row["compliant"] = rpo_ok && rto_ok && drill_ok && st.damaged_snapshots == 0;
    rows.push_back(std::move(row));
  }
  return json::object{{"time", cli::Rfc3339(now)},
                      {"from", cli::Rfc3339(from_micros)},
                      {"to", cli::Rfc3339(to_micros)},
                      {"sources", std::move(rows)}};
}

Result<std::string> VaultService::MonthlyReport(const Actor& actor, std::string_view department,
                                                std::string_view month, uint64_t from_micros,
                                                uint64_t to_micros,
                                                const SchedulerOptions& scheduler) {
  if (department.empty()) return Status::InvalidArgument("a monthly report is per department");
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->FindDepartment(department).status());
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadAudit, department));
  if (vault_->audit() == nullptr) return Status::Unavailable("the vault has no evidence key");
  CAIRN_ASSIGN_OR_RETURN(json::object compliance,
                         Compliance(actor, department, from_micros, to_micros, scheduler));
  CAIRN_ASSIGN_OR_RETURN(std::vector<json::object> all, ListDrills(actor, 0));
  json::array drills;
  for (const json::object& d : all) {
    const json::object& r = d.at("report").as_object();
    const uint64_t finished = FinishedMicros(r);
    if (r.at("department").as_string() != department || finished < from_micros ||
        finished >= to_micros) {
      continue;
    }
    const uint64_t total_ms = r.at("millis").as_object().at("total").to_number<uint64_t>();
    json::object row;
    for (const char* key :
         {"drill", "finished", "snapshot", "snapshot_host", "drill_host", "read_site", "files",
          "bytes", "rto_seconds", "rto_met", "ok", "failure", "scheduled"}) {
      const json::value* v = r.if_contains(key);
      row[key] = v != nullptr ? *v : json::value(nullptr);
    }
    row["total_seconds"] = total_ms / 1000;
    row["total_millis"] = total_ms;
    drills.push_back(std::move(row));
  }
  AuditLog* audit = vault_->audit();
  CAIRN_ASSIGN_OR_RETURN(Bytes pem_bytes,
                         io::ReadFileToBytes(vault_->env(), audit->public_key_path()));
  const std::string pem(AsString(pem_bytes));
  json::object r{{"version", 1},
                 {"kind", "monthly"},
                 {"department", department},
                 {"month", month},
                 {"vault_site", vault_->site()},
                 {"generated", cli::Rfc3339(Now())},
                 {"from", cli::Rfc3339(from_micros)},
                 {"to", cli::Rfc3339(to_micros)},
                 {"key_sha256", ToHex(crypto::Sha256(AsBytes(pem)))},
                 {"sources", compliance["sources"]},
                 {"drills", std::move(drills)}};
  const std::string body = RenderMonthlyBody(r);
  r["html_sha256"] = ToHex(crypto::Sha256(AsBytes(body)));
  CAIRN_ASSIGN_OR_RETURN(json::object signed_report,
                         SignReport(
                             r, [&](ByteView b) { return audit->Sign(b); }, pem));
  Audit(actor, "report.monthly", std::string(department), std::string(month),
        {{"from", cli::Rfc3339(from_micros)}, {"to", cli::Rfc3339(to_micros)}});
  return WrapMonthlyHtml(body, signed_report);
}

}  // namespace cairn::vault
