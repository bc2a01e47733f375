// Storage maintenance: garbage collection and compaction (vault/store/gc.h),
// with the vault's rules around them: who may run them, the fence over
// backup sessions and commits, the references from the catalog, the audit
// trail. doc/design.md section 22.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <thread>

#include "lib/base/names.h"
#include "lib/crypto/random.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

Status VaultService::WaitForEarlierWork(uint64_t since_micros, std::chrono::seconds timeout,
                                        const std::function<bool()>& cancelled,
                                        const std::function<void(const std::string&)>& progress) {
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lock(commits_mu_);
    ticket = next_commit_ticket_;
  }
  // Sessions open now (the touch filter exists already), not committed:
  // whatever they were told before the filter existed ends up in a commit,
  // which the mark then reads, or nowhere. What sessions are told from now
  // on is touched. (Sessions begun since the filter started are waited for
  // too: harmless, and no window is left between the two.)
  (void)since_micros;
  CAIRN_ASSIGN_OR_RETURN(std::vector<SessionRecord> rows, vault_->catalog()->ListSessions());
  std::vector<uint64_t> open;
  for (const SessionRecord& r : rows) {
    if (r.committed_snapshot.empty()) open.push_back(r.id);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto last_note = std::chrono::steady_clock::now() - std::chrono::seconds(60);
  while (true) {
    bool commits_done;
    {
      std::lock_guard<std::mutex> lock(commits_mu_);
      commits_done = commits_in_flight_.empty() || *commits_in_flight_.begin() >= ticket;
    }
    std::vector<uint64_t> still;
    std::string oldest;
    for (uint64_t id : open) {
      auto row = vault_->catalog()->FindSession(id);
      if (!row.ok()) {
        if (row.status().IsNotFound()) continue;  // expired or evicted
        return row.status();
      }
      if (!row->committed_snapshot.empty()) continue;
      still.push_back(id);
      if (oldest.empty()) {
        oldest = row->host + " (session " + std::to_string(id % 100000) + ", last active " +
                 std::to_string((Now() - std::min(Now(), row->active_micros)) / 1'000'000) +
                 " s ago)";
      }
    }
    open = std::move(still);
    if (commits_done && open.empty()) return Status::OK();
    if (cancelled && cancelled()) return Status::Cancelled("garbage collection cancelled");
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return Status::Unavailable(
          std::to_string(open.size()) +
          " backup sessions that began before this collection are still open (the oldest: " +
          oldest + "); nothing was removed, the next run tries again");
    }
    if (progress && now - last_note >= std::chrono::seconds(10)) {
      last_note = now;
      progress("waiting for " + std::to_string(open.size()) +
               " backup sessions that began before this run" +
               (oldest.empty() ? std::string() : ", the oldest " + oldest));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<GcReport> VaultService::CollectGarbage(const Actor& actor, const GcRequest& request) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kMaintainStorage));
  if (store() == nullptr) {
    return Status::Unavailable("the chunk store is not open (only a serving vault runs GC)");
  }
  std::unique_lock<std::mutex> lock(maintenance_mu_, std::try_to_lock);
  if (!lock.owns_lock()) {
    return Status::Unavailable("another garbage collection or repair is running");
  }
  GcOptions o;
  o.dry_run = request.dry_run;
  o.compact_below = request.compact_below;
  o.cancelled = request.cancelled;
  o.progress = request.progress;
  o.step_for_test = request.step_for_test;
  const uint64_t started = Now();
  o.fence = [&]() {
    return WaitForEarlierWork(started, request.fence_timeout, request.cancelled, request.progress);
  };
  Catalog* catalog = vault_->catalog();
  o.references = [catalog](const ReferenceSink& sink) -> Status {
    CAIRN_ASSIGN_OR_RETURN(std::vector<Department> departments, catalog->ListDepartments());
    for (const Department& d : departments) {
      CAIRN_ASSIGN_OR_RETURN(std::vector<SnapshotRecord> snapshots,
                             catalog->ListSnapshots(d.id, 0));
      for (const SnapshotRecord& s : snapshots) {
        Status st = catalog->ForEachManifestPart(
            s, [&](std::span<const crypto::ChunkId> ids) { return sink(d.id, ids); });
        // Forgotten meanwhile (its manifest went with it): its chunks are
        // garbage anyway. Anything else stops the run before it removes.
        if (!st.ok() && catalog->FindSnapshot(d.id, s.id).status().IsNotFound()) continue;
        if (!st.ok()) return st.WithContext("GC cannot read snapshot " + s.id + "'s manifest");
      }
    }
    return Status::OK();
  };
  auto report = vault::CollectGarbage(store(), o);
  if (!report.ok()) {
    spdlog::warn("garbage collection: {}", report.status().ToString());
    if (!request.dry_run) {
      Audit(actor, "storage.gc_failed", "", "", {{"error", report.status().ToString()}});
    }
    return report.status();
  }
  auto departments = ListDepartments();
  boost::json::object json =
      GcReportToJson(*report, departments.ok() ? *departments : std::vector<Department>{});
  json["time_micros"] = Now();
  json["by"] = actor.AuditName();
  (void)catalog->PutSetting(request.dry_run ? "gc_dry_run_last" : "gc_last",
                            boost::json::serialize(json));
  if (!request.dry_run) {
    Audit(actor, "storage.gc", "", "",
          {{"entries_removed", report->entries_removed},
           {"bytes_unreferenced", report->bytes_unreferenced},
           {"packs_retired", report->packs_retired},
           {"packs_compacted", report->packs_compacted},
           {"bytes_copied", report->bytes_copied},
           {"bytes_freed", report->bytes_freed},
           {"kept_touched", report->kept_touched},
           {"fence_seconds", report->fence_seconds}});
    spdlog::info(
        "garbage collection: {} unreferenced entries removed ({} bytes), {} packs retired ({} "
        "compacted, {} bytes copied), {} bytes freed",
        report->entries_removed, report->bytes_unreferenced, report->packs_retired,
        report->packs_compacted, report->bytes_copied, report->bytes_freed);
  }
  return report;
}

boost::json::object VaultService::GcReportToJson(const GcReport& r,
                                                 const std::vector<Department>& departments) {
  boost::json::object o;
  o["dry_run"] = r.dry_run;
  o["index_entries"] = r.index_entries;
  o["references"] = r.references;
  o["delta_records"] = r.delta_records;
  o["delta_bases"] = r.delta_bases;
  o["entries_removed"] = r.entries_removed;
  o["bytes_unreferenced"] = r.bytes_unreferenced;
  o["kept_touched"] = r.kept_touched;
  o["packs_retired"] = r.packs_retired;
  o["packs_compacted"] = r.packs_compacted;
  o["records_copied"] = r.records_copied;
  o["bytes_copied"] = r.bytes_copied;
  o["bytes_freed"] = r.bytes_freed;
  o["packs_waiting"] = r.packs_waiting;
  o["filter_bytes"] = r.filter_bytes;
  o["false_positive_rate"] = r.false_positive_rate;
  o["damaged"] = boost::json::array(r.damaged.begin(), r.damaged.end());
  o["seconds"] = boost::json::object{{"fence", r.fence_seconds},
                                     {"mark", r.mark_seconds},
                                     {"sweep", r.sweep_seconds},
                                     {"compact", r.compact_seconds}};
  boost::json::array depts;
  for (const auto& [id, d] : r.departments) {
    std::string name = std::to_string(id);
    for (const Department& dep : departments) {
      if (dep.id == id) name = dep.name;
    }
    depts.push_back(boost::json::object{{"department", name},
                                        {"packs", d.packs},
                                        {"unique_bytes", d.stored_bytes},
                                        {"referenced_bytes", d.referenced_bytes},
                                        {"reclaimable_bytes", d.reclaimable_bytes},
                                        {"chunks", d.chunks},
                                        {"referenced_chunks", d.referenced_chunks}});
  }
  o["departments"] = std::move(depts);
  return o;
}

Result<VaultService::ScrubReport> VaultService::Scrub(const Actor& actor,
                                                      const ScrubRequest& request) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kMaintainStorage));
  if (store() == nullptr) {
    return Status::Unavailable("the chunk store is not open (only a serving vault scrubs)");
  }
  Catalog* catalog = vault_->catalog();
  ScrubOptions so;
  so.rate_bytes = request.rate_bytes;
  so.cancelled = request.cancelled;
  so.progress = request.progress;
  std::vector<Department> departments;
  if (!request.department.empty()) {
    CAIRN_ASSIGN_OR_RETURN(Department d, catalog->FindDepartment(request.department));
    so.departments.push_back(d.id);
    departments.push_back(d);
  } else {
    CAIRN_ASSIGN_OR_RETURN(departments, catalog->ListDepartments());
  }
  ScrubReport report;
  CAIRN_ASSIGN_OR_RETURN(report.result, ScrubStore(store(), so));
  const uint64_t now = Now();

  // Repair: each damaged record fetched from the peer, checked, rewritten.
  using Key = std::pair<uint32_t, crypto::ChunkId>;
  std::set<Key> bad;
  for (const DamagedRecord& d : report.result.damaged) bad.insert({d.department, d.id});
  if (!bad.empty() && request.repair && request.fetch) {
    report.repair_source = request.fetch_from;
    std::lock_guard<std::mutex> lock(maintenance_mu_);
    std::map<uint32_t, std::vector<const DamagedRecord*>> by_department;
    for (const DamagedRecord& d : report.result.damaged) by_department[d.department].push_back(&d);
    for (const auto& [department, list] : by_department) {
      for (size_t b = 0; b < list.size(); b += proto::kMaxRecordsPerMessage) {
        const size_t e = std::min(list.size(), b + proto::kMaxRecordsPerMessage);
        std::vector<crypto::ChunkId> ids;
        for (size_t i = b; i < e; ++i) ids.push_back(list[i]->id);
        auto fetched = request.fetch(department, ids);
        if (!fetched.ok()) {
          for (const auto& id : ids) {
            report.unrepaired.push_back(DepartmentName(department) + " " + ToHex(id) +
                                        ": fetching from " + request.fetch_from +
                                        " failed: " + fetched.status().message());
          }
          continue;
        }
        std::vector<ChunkStore::Move> moves;
        for (size_t i = 0; i < fetched->size() && i < ids.size(); ++i) {
          auto parsed = repo::ParseRecord((*fetched)[i]);
          if (!parsed.ok() || parsed->header.id != ids[i]) continue;  // not the chunk asked for
          moves.push_back({ids[i], list[b + i]->location, std::move((*fetched)[i])});
        }
        auto moved = store()->Rewrite(department, moves);
        if (!moved.ok()) return moved.status().WithContext("repair");
        for (const crypto::ChunkId& id : ids) {
          Bytes record;
          if (store()->Read(department, id, &record).ok()) {
            ++report.repaired;
            bad.erase({department, id});
          } else {
            report.unrepaired.push_back(DepartmentName(department) + " " + ToHex(id) + ": " +
                                        request.fetch_from + " does not hold a sound copy");
          }
        }
      }
    }
  } else {
    for (const DamagedRecord& d : report.result.damaged) {
      report.unrepaired.push_back(DepartmentName(d.department) + " " + ToHex(d.id) + ": " +
                                  d.problem + " (no DR copy to repair from)");
    }
  }

  // Broken packs (header, footer): their sound records move to a new pack,
  // then the pack is retired once no entry names it.
  if (request.repair) {
    std::lock_guard<std::mutex> lock(maintenance_mu_);
    for (const auto& [department, pack] : report.result.broken_packs) {
      std::vector<ChunkStore::Move> moves;
      bool stays = false;
      repo::ChunkIndex::Position pos{department, {}};
      std::vector<std::pair<crypto::ChunkId, repo::ChunkLocation>> named;
      {
        CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, store()->index()->env()->BeginRead());
        CAIRN_RETURN_IF_ERROR(store()->index()->ScanFrom(
            txn, pos, [&](const repo::ChunkIndex::Position& at, const repo::ChunkLocation& l) {
              if (at.department != department) return false;
              if (l.pack_id == pack) named.push_back({at.id, l});
              return true;
            }));
      }
      for (const auto& [id, loc] : named) {
        ChunkStore::Move m;
        m.id = id;
        m.from = loc;
        if (bad.count({department, id}) || !store()->Read(department, id, &m.record).ok()) {
          stays = true;
          continue;
        }
        moves.push_back(std::move(m));
      }
      CAIRN_ASSIGN_OR_RETURN(uint64_t moved, store()->Rewrite(department, moves));
      (void)moved;
      if (!stays) {
        CAIRN_RETURN_IF_ERROR(store()->RetirePack(pack));
        ++report.packs_rebuilt;
      }
    }
    (void)store()->ReclaimRetired();
  }

  // A delta whose base stays damaged cannot be rebuilt either.
  for (bool grew = !bad.empty(); grew;) {
    grew = false;
    CAIRN_RETURN_IF_ERROR(store()->ForEachDeltaBase(
        [&](uint32_t department, const crypto::ChunkId& id, const crypto::ChunkId& base) {
          if (bad.count({department, base}) && bad.insert({department, id}).second) grew = true;
          return true;
        }));
  }
  // The snapshots that reference what stays damaged are marked; those
  // marked before and sound now are cleared (only after a whole scrub).
  for (const Department& d : departments) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<SnapshotRecord> snapshots, catalog->ListSnapshots(d.id, 0));
    const auto first = bad.lower_bound({d.id, crypto::ChunkId{}});
    const bool any = first != bad.end() && first->first == d.id;
    for (const SnapshotRecord& s : snapshots) {
      uint64_t hits = 0;
      if (any) {
        Status st = catalog->ForEachManifestPart(s, [&](std::span<const crypto::ChunkId> ids) {
          for (const auto& id : ids) hits += bad.count({d.id, id});
          return Status::OK();
        });
        if (!st.ok() && !catalog->FindSnapshot(d.id, s.id).status().IsNotFound()) return st;
      }
      if (hits > 0) {
        report.damaged_snapshots.push_back({d.name, s.id, s.host, hits});
        if (s.damaged_micros == 0) {
          CAIRN_RETURN_IF_ERROR(catalog->MarkSnapshotDamaged(d.id, s.id, now));
          Audit(actor, "snapshot.damaged", d.name, s.id, {{"chunks", hits}});
        }
      } else if (s.damaged_micros != 0 && !report.result.cancelled) {
        CAIRN_RETURN_IF_ERROR(catalog->MarkSnapshotDamaged(d.id, s.id, 0));
        report.cleared_snapshots.push_back(d.name + "/" + s.id);
        Audit(actor, "snapshot.repaired", d.name, s.id);
      }
    }
  }
  boost::json::object json = ScrubReportToJson(report, departments);
  json["time_micros"] = now;
  json["by"] = actor.AuditName();
  (void)catalog->PutSetting("scrub_last", boost::json::serialize(json));
  Audit(actor, "storage.scrub", request.department, "",
        {{"packs", report.result.packs},
         {"bytes_read", report.result.bytes_read},
         {"damaged", report.result.damaged.size()},
         {"repaired", report.repaired},
         {"packs_rebuilt", report.packs_rebuilt},
         {"unrepaired", report.unrepaired.size()},
         {"damaged_snapshots", report.damaged_snapshots.size()},
         {"repair_source", report.repair_source}});
  spdlog::info("scrub: {} packs, {} MiB, {} damaged records, {} repaired, {} snapshots damaged",
               report.result.packs, report.result.bytes_read >> 20, report.result.damaged.size(),
               report.repaired, report.damaged_snapshots.size());
  return report;
}

boost::json::object VaultService::ScrubReportToJson(const ScrubReport& r,
                                                    const std::vector<Department>& departments) {
  auto name = [&](uint32_t id) {
    for (const Department& d : departments) {
      if (d.id == id) return d.name;
    }
    return std::to_string(id);
  };
  boost::json::object o;
  o["packs"] = r.result.packs;
  o["packs_damaged"] = r.result.packs_damaged;
  o["records"] = r.result.records;
  o["bytes_read"] = r.result.bytes_read;
  o["index_entries_checked"] = r.result.index_entries_checked;
  o["garbage_damaged"] = r.result.garbage_damaged;
  o["seconds"] = r.result.seconds;
  o["cancelled"] = r.result.cancelled;
  o["rate_bytes_per_second"] =
      r.result.seconds > 0 ? static_cast<double>(r.result.bytes_read) / r.result.seconds : 0.0;
  boost::json::array damaged;
  for (const DamagedRecord& d : r.result.damaged) {
    damaged.push_back(boost::json::object{{"department", name(d.department)},
                                          {"chunk", ToHex(d.id)},
                                          {"pack", d.location.pack_id},
                                          {"offset", d.location.offset},
                                          {"problem", d.problem}});
  }
  o["damaged"] = std::move(damaged);
  o["pack_problems"] =
      boost::json::array(r.result.pack_problems.begin(), r.result.pack_problems.end());
  o["repair_source"] = r.repair_source;
  o["repaired"] = r.repaired;
  o["packs_rebuilt"] = r.packs_rebuilt;
  o["unrepaired"] = boost::json::array(r.unrepaired.begin(), r.unrepaired.end());
  boost::json::array snaps;
  for (const auto& s : r.damaged_snapshots) {
    snaps.push_back(boost::json::object{{"department", s.department},
                                        {"snapshot", s.snapshot},
                                        {"host", s.host},
                                        {"chunks", s.chunks}});
  }
  o["damaged_snapshots"] = std::move(snaps);
  o["cleared_snapshots"] =
      boost::json::array(r.cleared_snapshots.begin(), r.cleared_snapshots.end());
  return o;
}

Result<std::string> VaultService::RequestMaintenance(const Actor& actor,
                                                     boost::json::object request) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kMaintainStorage));
  const boost::json::value* task = request.if_contains("task");
  if (task == nullptr || !task->is_string() ||
      (task->as_string() != "gc" && task->as_string() != "scrub")) {
    return Status::InvalidArgument("a maintenance task is gc or scrub");
  }
  uint8_t raw[8];
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(MutableByteView(raw, 8)));
  const std::string id = ToHex(ByteView(raw, 8));
  request["by"] = actor.AuditName();
  request["requested_micros"] = Now();
  CAIRN_RETURN_IF_ERROR(
      vault_->catalog()->PutSetting("maintenance/request/" + id, boost::json::serialize(request)));
  Audit(actor, "storage.request", "", id, request);
  return id;
}

Result<boost::json::object> VaultService::MaintenanceState(const Actor& actor,
                                                           std::string_view id) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kMaintainStorage));
  const std::string key(id);
  if (key.size() != 16 || key.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::NotFound("no maintenance request " + EscapeForLog(key));
  }
  // In the order of the request's life: the serving vault writes each
  // state before it removes the previous one (maintenance.cc), so reads in
  // this order, each its own transaction, never miss it between two.
  if (vault_->catalog()->GetSetting("maintenance/request/" + key).ok()) {
    return boost::json::object{{"id", key}, {"state", "queued"}};
  }
  if (vault_->catalog()->GetSetting("maintenance/running/" + key).ok()) {
    return boost::json::object{{"id", key}, {"state", "running"}};
  }
  if (auto r = vault_->catalog()->GetSetting("maintenance/result/" + key); r.ok()) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(*r, ec);
    if (ec || !v.is_object()) return Status::Corruption("maintenance result " + key);
    return boost::json::object{{"id", key}, {"state", "done"}, {"result", v}};
  }
  return Status::NotFound("no maintenance request " + key);
}

Result<boost::json::object> VaultService::StorageReport(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadState));
  boost::json::object out;
  CAIRN_ASSIGN_OR_RETURN(std::vector<Department> departments, vault_->catalog()->ListDepartments());
  boost::json::array depts;
  if (vault_->store() != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(auto usage, vault_->store()->PackUsage());
    for (const Department& d : departments) {
      if (!InScope(actor, d.name)) continue;
      const auto it = usage.find(d.id);
      depts.push_back(
          boost::json::object{{"department", d.name},
                              {"packs", it == usage.end() ? 0 : it->second.packs},
                              {"unique_bytes", it == usage.end() ? 0 : it->second.bytes}});
    }
  }
  out["departments"] = std::move(depts);
  for (const char* key : {"gc_last", "gc_dry_run_last", "scrub_last"}) {
    auto v = vault_->catalog()->GetSetting(key);
    boost::system::error_code ec;
    boost::json::value parsed = v.ok() ? boost::json::parse(*v, ec) : boost::json::value(nullptr);
    out[key] = ec ? boost::json::value(nullptr) : parsed;
  }
  return out;
}

}  // namespace cairn::vault
