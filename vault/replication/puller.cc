#include "vault/replication/puller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <thread>
#include <utility>

#include "lib/client/vault_link.h"
#include "lib/client/wire.h"
#include "lib/crypto/keys.h"
#include "lib/crypto/pki.h"
#include "lib/io/env.h"
#include "lib/proto/messages.h"
#include "lib/repo/record.h"

namespace cairn::vault {

using crypto::ChunkId;
using proto::MessageType;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint64_t kFlushEvery = 64u << 20;  // bytes stored between durability points
constexpr size_t kInFlight = 4;              // get_replica_records requests in flight
constexpr size_t kVerifyBytes = 8u << 20;    // read back at a time before a commit

// Sorts `ids` into the order the source keeps their records in
// (get_replica_order: its packs front to back), so that it reads each pack
// once, sequentially; chunk ID order is no order on disk. The keys only
// order the requests: whatever they say, the same IDs are fetched and
// checked. A first pass over millions of chunks asks many times: a cancel
// is honoured between the asks.
Status OrderAsStored(client::VaultLink* link, uint32_t department,
                     const std::atomic<bool>& cancelled, std::vector<ChunkId>* ids) {
  std::vector<std::pair<uint64_t, size_t>> keyed;  // key, index into *ids
  keyed.reserve(ids->size());
  for (size_t b = 0; b < ids->size(); b += proto::kMaxIdsPerMessage) {
    if (cancelled) return Status::Cancelled("replication pass cancelled");
    proto::GetReplicaOrder ask;
    ask.department_id = department;
    ask.ids.assign(
        ids->begin() + static_cast<long>(b),
        ids->begin() + static_cast<long>(std::min(ids->size(), b + proto::kMaxIdsPerMessage)));
    CAIRN_ASSIGN_OR_RETURN(proto::ReplicaOrder order,
                           (link->Call<proto::ReplicaOrder>(MessageType::kGetReplicaOrder, ask,
                                                            MessageType::kReplicaOrder)));
    if (order.keys.size() != ask.ids.size()) {
      return Status::InvalidArgument("source answered get_replica_order with " +
                                     std::to_string(order.keys.size()) + " keys for " +
                                     std::to_string(ask.ids.size()) + " IDs");
    }
    for (size_t i = 0; i < order.keys.size(); ++i) {
      // Its manifest names it, so the source must hold it: fail now, not
      // after fetching everything else.
      if (order.keys[i] == proto::ReplicaOrder::kNotHeld) {
        return Status::NotFound("the source does not hold chunk " + ToHex(ask.ids[i]) +
                                " of the snapshot's manifest");
      }
      keyed.emplace_back(order.keys[i], b + i);
    }
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<ChunkId> ordered;
  ordered.reserve(ids->size());
  for (const auto& [key, i] : keyed) ordered.push_back((*ids)[i]);
  *ids = std::move(ordered);
  return Status::OK();
}

}  // namespace

std::string ReplicatorIdentityDir(const std::string& data_dir) { return data_dir + "/replicator"; }

Result<VaultService::RecordFetcher> PeerRecordFetcher(const std::string& data_dir,
                                                      std::string* describe) {
  const std::string dir = ReplicatorIdentityDir(data_dir);
  auto identity = client::LoadIdentity(dir, /*need_keys=*/false);
  if (!identity.ok()) {
    return Status::NotFound("no peer to repair from: " + dir +
                            " holds no replicator identity (cairn-replicator enroll)");
  }
  describe->clear();
  for (const std::string& a : identity->config.vault_addresses) {
    *describe += (describe->empty() ? "" : ",") + a;
  }
  auto shared = std::make_shared<client::Identity>(std::move(*identity));
  auto link = std::make_shared<std::unique_ptr<client::VaultLink>>();
  return VaultService::RecordFetcher(
      [shared, link](uint32_t department,
                     std::span<const ChunkId> ids) -> Result<std::vector<Bytes>> {
        if (!*link || !(*link)->failure().ok()) {
          client::VaultLink::Options o;
          o.role = proto::Role::kReplicator;
          o.software = "cairn-vault scrub";
          CAIRN_ASSIGN_OR_RETURN(
              *link, client::VaultLink::Open(*shared, shared->config.vault_addresses, o));
        }
        std::vector<Bytes> out;
        while (out.size() < ids.size()) {
          proto::GetReplicaRecords ask;
          ask.department_id = department;
          ask.ids.assign(ids.begin() + static_cast<long>(out.size()), ids.end());
          Bytes payload = ask.Encode();
          CAIRN_ASSIGN_OR_RETURN(auto t, (*link)->BeginRequest(MessageType::kGetReplicaRecords,
                                                               payload, MessageType::kRecords));
          auto got = (*link)->AwaitRecords(t);
          if (!(*link)->failure().ok()) {
            if (out.empty()) return (*link)->failure();
            break;  // the link is gone: the rest stays unrepaired
          }
          if (!got.ok()) {
            out.emplace_back();  // the peer cannot read this one either
            continue;
          }
          for (ByteView r : got->records) out.emplace_back(r.begin(), r.end());
        }
        return out;
      });
}

ReplicationPuller::ReplicationPuller(VaultService* service, client::Identity identity,
                                     ReplicatorOptions options)
    : service_(service), identity_(std::move(identity)), options_(std::move(options)) {
  auto fp = crypto::CertificateFingerprint(identity_.ca_pem);
  cursor_key_ = "replica_cursor/" + (fp.ok() ? *fp : identity_.config.vault_addresses.front());
}

Status ReplicationPuller::Setup(client::VaultLink* link) {
  Vault* vault = service_->vault();
  proto::ReplicaSetup req;
  req.site = vault->site();
  req.addresses = options_.advertise;
  CAIRN_ASSIGN_OR_RETURN(
      req.server_csr_pem,
      crypto::CreateCsr(vault->pki().tls_private_key_pem(),
                        req.addresses.empty() ? "localhost" : req.addresses.front()));
  CAIRN_ASSIGN_OR_RETURN(auto local, service_->ListDepartments());
  for (const auto& d : local) req.known_departments.push_back(d.id);
  CAIRN_ASSIGN_OR_RETURN(proto::ReplicaSetupOk ok,
                         (link->Call<proto::ReplicaSetupOk>(MessageType::kReplicaSetup, req,
                                                            MessageType::kReplicaSetupOk)));
  return service_->ApplyReplicaSetup(ok);
}

namespace {
// A figure that does not exist yet (negative) is null, never a sentinel.
boost::json::value OrNull(double v) {
  return v < 0 ? boost::json::value(nullptr) : boost::json::value(v);
}
}  // namespace

boost::json::object PassJson(const PassStats& p) {
  boost::json::array committed;
  for (const auto& id : p.committed) committed.emplace_back(id);
  return boost::json::object{{"ok", true},
                             {"snapshots", p.snapshots},
                             {"committed", committed},
                             {"records", p.records},
                             {"bytes", p.bytes},
                             {"bytes_received", p.bytes_received},
                             {"chunks_present", p.chunks_present},
                             {"cursor", p.cursor},
                             {"source_latest", p.source_latest},
                             {"pending", p.pending},
                             {"lag_seconds", p.lag_seconds},
                             {"last_lag_seconds", OrNull(p.last_lag_seconds)},
                             {"newest_age_seconds", OrNull(p.newest_age_seconds)},
                             {"seconds", p.seconds}};
}

Result<PassStats> ReplicationPuller::RunPass(bool setup_only) {
  auto stats = Pass(setup_only);
  if (!stats.ok() && link_ != nullptr && !link_->failure().ok()) {
    // A lost source names itself and what happens next.
    stats = client::LostConnection(
        stats.status(), "the source vault", link_->address(),
        "what this pass had flushed is kept: the next pass carries on from there");
  }
  link_.reset();
  if (stats.ok() && !setup_only) {
    boost::json::object record = PassJson(*stats);
    record.erase("committed");
    record["time_micros"] = service_->vault()->env()->NowMicros();
    Status s = service_->RecordReplicationPass(record);
    if (!s.ok()) spdlog::warn("recording the replication pass: {}", s.ToString());
  }
  return stats;
}

Result<PassStats> ReplicationPuller::Pass(bool setup_only) {
  const auto start = Clock::now();
  PassStats stats;
  Catalog* catalog = service_->vault()->catalog();
  ChunkStore* store = service_->vault()->store();
  if (store == nullptr) return Status::InvalidArgument("the DR vault is not open to serve");
  io::Env* env = service_->vault()->env();

  client::VaultLink::Options link_options;
  link_options.role = proto::Role::kReplicator;
  link_options.software = "cairn-replicator 0.1.0";
  link_options.deadline = options_.deadline;
  CAIRN_ASSIGN_OR_RETURN(
      link_, client::VaultLink::Open(identity_, identity_.config.vault_addresses, link_options));
  client::VaultLink* link = link_.get();
  CAIRN_RETURN_IF_ERROR(Setup(link).WithContext("replication set-up"));
  if (setup_only) return stats;

  uint64_t cursor = 0;
  if (auto c = catalog->GetSetting(cursor_key_); c.ok())
    cursor = std::strtoull(c->c_str(), nullptr, 10);

  // Rate limit: sleep whenever the pass is ahead of limit_rate.
  auto throttle = [&](uint64_t bytes_so_far) {
    if (options_.limit_rate == 0) return;
    const double allowed = std::chrono::duration<double>(Clock::now() - start).count() *
                           static_cast<double>(options_.limit_rate);
    const double ahead = static_cast<double>(bytes_so_far) - allowed;
    if (ahead > 0) {
      std::this_thread::sleep_for(
          std::chrono::duration<double>(ahead / static_cast<double>(options_.limit_rate)));
    }
  };

  PassProgress progress;
  auto last_report = Clock::now();
  auto report = [&] {
    if (!options_.progress || Clock::now() - last_report < std::chrono::milliseconds(250)) return;
    last_report = Clock::now();
    progress.records = stats.records;
    progress.bytes = stats.bytes;
    progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    options_.progress(progress);
  };
  while (!cancelled_) {
    CAIRN_ASSIGN_OR_RETURN(proto::ReplicaSnapshots list,
                           (link->Call<proto::ReplicaSnapshots>(MessageType::kReplicaList,
                                                                proto::ReplicaList{cursor, 256},
                                                                MessageType::kReplicaSnapshots)));
    stats.source_latest = list.latest;
    if (list.snapshots.empty()) break;
    progress.snapshots += list.snapshots.size();
    for (const proto::ReplicaSnapshot& snap : list.snapshots) {
      if (cancelled_) break;
      ++progress.snapshot;
      const uint64_t number = SnapshotNumber(snap.info.id);
      if (number <= cursor) return Status::InvalidArgument("source listed snapshots out of order");
      const uint32_t dept = snap.department_id;
      if (!catalog->FindDepartment(dept).ok()) {
        return Status::NotFound("snapshot " + snap.info.id + " is of department " +
                                std::to_string(dept) + ", whose keys the set-up did not bring");
      }
      if (!catalog->FindSnapshot(dept, snap.info.id).ok()) {
        // The manifest, in parts.
        std::vector<ChunkId> manifest;
        while (true) {
          proto::GetManifest ask{dept, snap.info.id, manifest.size()};
          CAIRN_ASSIGN_OR_RETURN(proto::Manifest part,
                                 (link->Call<proto::Manifest>(MessageType::kGetManifest, ask,
                                                              MessageType::kManifest)));
          if (part.offset != manifest.size()) {
            return Status::InvalidArgument("source sent a manifest part out of step");
          }
          manifest.insert(manifest.end(), part.ids.begin(), part.ids.end());
          if (manifest.size() >= part.total || part.ids.empty()) break;
        }
        if (manifest.size() != snap.manifest_count) {
          return Status::Corruption("snapshot " + snap.info.id + ": manifest of " +
                                    std::to_string(manifest.size()) + " IDs, listed with " +
                                    std::to_string(snap.manifest_count));
        }
        // What this vault lacks.
        std::vector<ChunkId> missing;
        for (size_t b = 0; b < manifest.size(); b += 4096) {
          const size_t e = std::min(manifest.size(), b + 4096);
          std::span<const ChunkId> ids(manifest.data() + b, e - b);
          CAIRN_ASSIGN_OR_RETURN(std::vector<bool> have, store->Contains(dept, ids));
          for (size_t i = 0; i < have.size(); ++i) {
            if (!have[i]) {
              missing.push_back(ids[i]);
            } else {
              ++stats.chunks_present;
            }
          }
        }
        std::sort(missing.begin(), missing.end());
        missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
        // A source of protocol version 1 cannot say: chunk ID order then.
        if (link->version() >= 2) {
          CAIRN_RETURN_IF_ERROR(OrderAsStored(link, dept, cancelled_, &missing)
                                    .WithContext("snapshot " + snap.info.id));
        }
        progress.records_to_fetch = stats.records + missing.size();
        // Fetch them, several requests in flight; store each after checking it.
        struct Pending {
          client::VaultLink::Ticket ticket;
          size_t begin, end;
        };
        std::deque<Pending> pending;
        size_t next = 0;
        uint64_t since_flush = 0;
        std::vector<ChunkId> stored_here;
        auto send = [&](size_t begin, size_t end) -> Status {
          proto::GetReplicaRecords ask;
          ask.department_id = dept;
          ask.ids.assign(missing.begin() + static_cast<long>(begin),
                         missing.begin() + static_cast<long>(end));
          Bytes payload = ask.Encode();
          CAIRN_ASSIGN_OR_RETURN(auto t, link->BeginRequest(MessageType::kGetReplicaRecords,
                                                            payload, MessageType::kRecords));
          pending.push_back({t, begin, end});
          return Status::OK();
        };
        while ((next < missing.size() || !pending.empty()) && !cancelled_) {
          while (next < missing.size() && pending.size() < kInFlight) {
            const size_t end = std::min(missing.size(), next + proto::kMaxRecordsPerMessage);
            CAIRN_RETURN_IF_ERROR(send(next, end));
            next = end;
          }
          Pending p = pending.front();
          pending.pop_front();
          CAIRN_ASSIGN_OR_RETURN(client::VaultLink::RecordBatch batch,
                                 link->AwaitRecords(p.ticket));
          const std::vector<ByteView>& records = batch.records;
          const size_t got = std::min(records.size(), p.end - p.begin);
          for (size_t i = 0; i < got; ++i) {
            const ChunkId& want = missing[p.begin + i];
            auto parsed = repo::ParseRecord(records[i]);
            if (!parsed.ok() || parsed->header.id != want) {
              return Status::Corruption("source sent a bad record for chunk " + ToHex(want) + ": " +
                                        (parsed.ok() ? "it holds chunk " + ToHex(parsed->header.id)
                                                     : parsed.status().message()));
            }
            CAIRN_RETURN_IF_ERROR(store->Put(dept, records[i]));
            stats.bytes += records[i].size();
            since_flush += records[i].size();
            ++stats.records;
            stored_here.push_back(want);
          }
          if (p.begin + got < p.end) CAIRN_RETURN_IF_ERROR(send(p.begin + got, p.end));
          if (since_flush >= kFlushEvery) {
            CAIRN_RETURN_IF_ERROR(store->Flush(dept).status());
            since_flush = 0;
          }
          throttle(stats.bytes);
          report();
        }
        if (cancelled_) break;
        CAIRN_RETURN_IF_ERROR(store->Flush(dept).status());
        // Verify before committing: what this pass stored reads back whole
        // (checksum and ID); CommitReplica then checks that every manifest
        // chunk is durable here (rule 6.3).
        // (ReadPrefix reads at least the first ID asked, else fails with
        // why; a prefix ends before a record that cannot be read, which the
        // next round then asks for first.)
        for (size_t b = 0; b < stored_here.size();) {
          std::span<const ChunkId> ids(stored_here.data() + b,
                                       std::min<size_t>(256, stored_here.size() - b));
          auto back = store->ReadPrefix(dept, ids, kVerifyBytes);
          if (!back.ok()) {
            return back.status().WithContext("snapshot " + snap.info.id + ": verifying chunk " +
                                             ToHex(ids[0]));
          }
          b += back->size();
        }
        SnapshotRecord rec = FromSnapshotInfo(snap.info);
        rec.department_id = dept;
        CAIRN_ASSIGN_OR_RETURN(bool committed, service_->CommitReplica(rec, manifest));
        if (committed) {
          ++stats.snapshots;
          stats.committed.push_back(snap.info.id);
          const uint64_t now = env->NowMicros();
          stats.last_lag_seconds =
              static_cast<double>(now - std::min(now, snap.info.time_micros)) / 1e6;
          spdlog::info(
              "replicated snapshot {} of department {} ({} records, {} bytes fetched; "
              "lag {:.1f} s)",
              snap.info.id, snap.department, stats.records, stats.bytes, stats.last_lag_seconds);
        }
      }
      cursor = number;
      CAIRN_RETURN_IF_ERROR(catalog->PutSetting(cursor_key_, std::to_string(cursor)));
    }
  }
  stats.cursor = cursor;
  stats.bytes_received = link->bytes_received();
  const uint64_t now = env->NowMicros();
  stats.lag_seconds = 0;
  if (stats.source_latest > cursor) {
    auto rest = link->Call<proto::ReplicaSnapshots>(
        MessageType::kReplicaList, proto::ReplicaList{cursor, 0}, MessageType::kReplicaSnapshots);
    if (rest.ok() && !rest->snapshots.empty()) {
      stats.pending = rest->snapshots.size();
      const uint64_t oldest = rest->snapshots.front().info.time_micros;
      stats.lag_seconds = static_cast<double>(now - std::min(now, oldest)) / 1e6;
    }
  }
  if (auto all = catalog->ListSnapshotsAfter(0, 0); all.ok() && !all->empty()) {
    uint64_t newest = 0;
    for (const auto& s : *all) newest = std::max(newest, s.time_micros);
    stats.newest_age_seconds = static_cast<double>(now - std::min(now, newest)) / 1e6;
  }
  stats.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (cancelled_) return Status::Cancelled("replication pass cancelled");
  return stats;
}

}  // namespace cairn::vault
