// Restore drills: the vault's side (doc/design.md section 23). The drill
// host measures; the vault checks, decides, signs and keeps.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <map>

#include "lib/base/cli.h"
#include "lib/base/names.h"
#include "lib/crypto/hash.h"
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

}  // namespace

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
  CAIRN_ASSIGN_OR_RETURN(uint64_t files, Count(m, "files"));
  CAIRN_ASSIGN_OR_RETURN(uint64_t bytes, Count(m, "bytes"));
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
  if (std::optional<Policy> policy = PolicyOf(*snapshot, 0); policy && policy->rto_seconds > 0) {
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
        r["manifest_chunks"] = snapshot->manifest_count;
        r["manifest_sha256"] = digest.Hex();
        r["drill_host"] = agent.host;
        r["drill_agent"] = agent.name;
        r["started"] = cli::Rfc3339(now - std::min(now, total_ms * 1000));
        r["finished"] = cli::Rfc3339(now);
        r["finished_micros"] = now;
        r["files"] = files;
        r["bytes"] = bytes;
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
  CAIRN_ASSIGN_OR_RETURN(ProtectionReport status, ProtectionStatus(actor, department, scheduler));
  CAIRN_ASSIGN_OR_RETURN(std::vector<json::object> drills, ListDrills(actor, 0));
  CAIRN_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, vault_->catalog()->ListJobs());
  std::map<uint32_t, ChunkStore::Usage> usage;
  if (vault_->store() != nullptr) {
    if (auto u = vault_->store()->PackUsage(); u.ok()) usage = *u;
  }
  const uint64_t now = Now();
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
    const json::object* last = nullptr;
    for (const json::object& d : drills) {
      const json::object& r = d.at("report").as_object();
      if (r.at("department").as_string() != st.department ||
          r.at("snapshot_host").as_string() != s.host) {
        continue;
      }
      std::vector<std::string> paths;
      for (const auto& p : r.at("snapshot_paths").as_array()) paths.emplace_back(p.as_string());
      if (paths != s.paths) continue;
      last = &r;  // newest first: the first that matches
      break;
    }
    if (last != nullptr) {
      const uint64_t total_ms = last->at("millis").as_object().at("total").to_number<uint64_t>();
      row["last_drill"] = json::object{{"drill", last->at("drill")},
                                       {"finished", last->at("finished")},
                                       {"ok", last->at("ok")},
                                       {"total_seconds", total_ms / 1000},
                                       {"rto_met", last->at("rto_met")}};
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
    // Backups of this source in the window.
    uint64_t done = 0, failed = 0, missed = 0;
    for (const JobRecord& j : jobs) {
      if (j.source_id != s.id || j.created_micros < from_micros || j.created_micros >= to_micros) {
        continue;
      }
      done += j.state == JobState::kDone;
      failed += j.state == JobState::kFailed;
      missed += j.state == JobState::kMissed;
    }
    const uint64_t ended = done + failed + missed;
    row["backups"] = json::object{{"done", done}, {"failed", failed}, {"missed", missed}};
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

}  // namespace cairn::vault
