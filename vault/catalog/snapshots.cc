// Snapshots and their manifests, committed here or replicated from another vault.
#include <cinttypes>
#include <cstdio>

#include "lib/base/cli.h"
#include "lib/crypto/random.h"
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

namespace {

// Writes a manifest in parts of up to 16384 IDs (512 KiB), keyed by
// snapshot ID and part number, so a huge manifest never needs one huge
// value, nor all of it in memory. Returns the number of IDs.
Result<uint64_t> PutManifest(repo::LmdbTxn& txn, repo::LmdbDb manifests, const std::string& id,
                             const ManifestReader& manifest) {
  constexpr size_t kPart = 16384;
  Bytes value;
  value.reserve(kPart * crypto::kChunkIdSize);
  uint32_t part = 0;
  uint64_t count = 0;
  auto put_part = [&]() -> Status {
    Bytes mkey(id.begin(), id.end());
    auto p = Be32(part++);
    mkey.insert(mkey.end(), p.begin(), p.end());
    Status s = txn.Put(manifests, mkey, value);
    value.clear();
    return s;
  };
  Status streamed = manifest([&](std::span<const crypto::ChunkId> ids) -> Status {
    for (const crypto::ChunkId& cid : ids) {
      value.insert(value.end(), cid.begin(), cid.end());
      ++count;
      if (value.size() == kPart * crypto::kChunkIdSize) CAIRN_RETURN_IF_ERROR(put_part());
    }
    return Status::OK();
  });
  CAIRN_RETURN_IF_ERROR(streamed);
  if (!value.empty()) CAIRN_RETURN_IF_ERROR(put_part());
  return count;
}

}  // namespace

ManifestReader ManifestOf(const std::vector<crypto::ChunkId>& ids) {
  return [&ids](const std::function<Status(std::span<const crypto::ChunkId>)>& sink) {
    return sink(ids);
  };
}

Result<SnapshotRecord> Catalog::CommitSnapshot(SnapshotRecord snapshot,
                                               const std::vector<crypto::ChunkId>& manifest) {
  return CommitSnapshot(std::move(snapshot), ManifestOf(manifest));
}

Result<SnapshotRecord> Catalog::CommitSnapshot(SnapshotRecord snapshot,
                                               const ManifestReader& manifest) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(uint64_t n, NextCounter(txn, meta_, "next_snapshot_id"));
  // A random tag first, so that a short prefix (the first 8 digits, as
  // `snapshots` shows) names one snapshot; the counter after it orders
  // snapshots for replication (SnapshotNumber).
  uint8_t tag[4];
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(MutableByteView(tag, sizeof(tag))));
  char id[25];
  std::snprintf(id, sizeof(id), "%02x%02x%02x%02x%016" PRIx64, tag[0], tag[1], tag[2], tag[3], n);
  snapshot.id = id;
  CAIRN_ASSIGN_OR_RETURN(snapshot.manifest_count,
                         PutManifest(txn, manifests_, snapshot.id, manifest));
  Bytes key = SnapshotKey(snapshot.department_id, snapshot.time_micros, snapshot.id);
  CAIRN_RETURN_IF_ERROR(txn.Put(snapshots_, key, EncodeSnapshot(snapshot)));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return snapshot;
}

proto::SnapshotInfo ToSnapshotInfo(const SnapshotRecord& s) {
  proto::SnapshotInfo info;
  info.id = s.id;
  info.hostname = s.host;
  info.paths = s.paths;
  info.kind = static_cast<proto::SessionKind>(s.kind);
  info.time_micros = s.time_micros;
  info.root_tree = s.root_tree;
  info.stats = {s.files,    s.dirs,           s.bytes,           s.new_bytes,  s.new_chunks,
                s.warnings, s.started_micros, s.finished_micros, s.pit_method, s.pit_micros};
  return info;
}

void SetStats(SnapshotRecord* s, const proto::SnapshotStats& st) {
  s->files = st.files;
  s->dirs = st.dirs;
  s->bytes = st.bytes;
  s->new_bytes = st.new_bytes;
  s->new_chunks = st.new_chunks;
  s->warnings = st.warnings;
  s->started_micros = st.started_micros;
  s->finished_micros = st.finished_micros;
  s->pit_method = st.pit_method;
  s->pit_micros = st.pit_micros;
}

SnapshotRecord FromSnapshotInfo(const proto::SnapshotInfo& info) {
  SnapshotRecord s;
  s.id = info.id;
  s.host = info.hostname;
  s.paths = info.paths;
  s.kind = static_cast<uint8_t>(info.kind);
  s.time_micros = info.time_micros;
  s.root_tree = info.root_tree;
  SetStats(&s, info.stats);
  return s;
}

uint64_t SnapshotNumber(std::string_view id) {
  // 24 hex digits: a random tag and the counter; 16: the counter alone
  // (snapshots committed before the tag was added).
  if (id.size() == 24) {
    for (char c : id.substr(0, 8)) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    id.remove_prefix(8);
  }
  if (id.size() != 16) return 0;
  uint64_t n = 0;
  for (char c : id) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return 0;
    n = n << 4 | static_cast<uint64_t>(v);
  }
  return n;
}

Result<bool> Catalog::CommitReplica(const SnapshotRecord& snapshot,
                                    const std::vector<crypto::ChunkId>& manifest) {
  const uint64_t n = SnapshotNumber(snapshot.id);
  if (n == 0)
    return Status::InvalidArgument("replicated snapshot id '" + snapshot.id + "' is malformed");
  if (FindSnapshot(snapshot.department_id, snapshot.id).ok()) return false;
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  SnapshotRecord s = snapshot;
  s.manifest_count = manifest.size();
  Bytes key = SnapshotKey(s.department_id, s.time_micros, s.id);
  if (txn.Get(snapshots_, key).ok()) return false;
  CAIRN_RETURN_IF_ERROR(txn.Put(snapshots_, key, EncodeSnapshot(s)));
  CAIRN_RETURN_IF_ERROR(PutManifest(txn, manifests_, s.id, ManifestOf(manifest)).status());
  uint64_t next = 1;
  if (auto cur = txn.Get(meta_, AsBytes("next_snapshot_id")); cur.ok() && cur->size() == 8) {
    next = DecodeFixed64(cur->data());
  }
  if (next <= n) {
    uint8_t v[8];
    EncodeFixed64(v, n + 1);
    CAIRN_RETURN_IF_ERROR(txn.Put(meta_, AsBytes("next_snapshot_id"), ByteView(v, 8)));
  }
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return true;
}

Result<std::vector<SnapshotRecord>> Catalog::ListSnapshotsAfter(uint64_t after,
                                                                size_t limit) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<SnapshotRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(snapshots_, ByteView(), [&](ByteView, ByteView v) {
    auto s = DecodeSnapshot(v);
    if (!s.ok()) {
      bad = s.status();
      return false;
    }
    if (SnapshotNumber(s->id) > after) out.push_back(std::move(*s));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  std::sort(out.begin(), out.end(), [](const SnapshotRecord& a, const SnapshotRecord& b) {
    return SnapshotNumber(a.id) < SnapshotNumber(b.id);
  });
  if (limit != 0 && out.size() > limit) out.resize(limit);
  return out;
}

Result<uint64_t> Catalog::LatestSnapshotNumber() const {
  CAIRN_ASSIGN_OR_RETURN(auto all, ListSnapshotsAfter(0, 0));
  return all.empty() ? 0 : SnapshotNumber(all.back().id);
}

Result<std::vector<SnapshotRecord>> Catalog::ListSnapshots(uint32_t department,
                                                           size_t limit) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<SnapshotRecord> out;
  Status bad;
  auto prefix = Be32(department);
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(snapshots_, prefix, [&](ByteView, ByteView v) {
    auto s = DecodeSnapshot(v);
    if (!s.ok()) {
      bad = s.status();
      return false;
    }
    out.push_back(std::move(*s));
    return limit == 0 || out.size() < limit;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

Result<SnapshotRecord> Catalog::FindSnapshot(uint32_t department, std::string_view id) const {
  CAIRN_ASSIGN_OR_RETURN(auto all, ListSnapshots(department, 0));
  for (auto& s : all) {
    if (s.id == id) return s;
  }
  return Status::NotFound("no snapshot " + std::string(id) + " in this department");
}

Result<std::vector<crypto::ChunkId>> Catalog::Manifest(uint32_t department,
                                                       std::string_view id) const {
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snap, FindSnapshot(department, id));
  std::vector<crypto::ChunkId> out;
  out.reserve(snap.manifest_count);
  CAIRN_RETURN_IF_ERROR(ForEachManifestPart(snap, [&](std::span<const crypto::ChunkId> ids) {
    out.insert(out.end(), ids.begin(), ids.end());
    return Status::OK();
  }));
  return out;
}

Status Catalog::ForEachManifestPart(
    const SnapshotRecord& snap,
    const std::function<Status(std::span<const crypto::ChunkId>)>& sink) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<crypto::ChunkId> part;
  uint64_t count = 0;
  Status bad;
  CAIRN_RETURN_IF_ERROR(
      txn.ForEachPrefix(manifests_, AsBytes(snap.id), [&](ByteView k, ByteView v) {
        if (k.size() != snap.id.size() + 4) return true;  // another snapshot's longer ID
        if (v.size() % 32 != 0) {
          bad = Malformed("manifest");
          return false;
        }
        part.resize(v.size() / 32);
        std::memcpy(part.data(), v.data(), v.size());
        count += part.size();
        bad = sink(part);
        return bad.ok();
      }));
  CAIRN_RETURN_IF_ERROR(bad);
  if (count != snap.manifest_count) {
    return Status::Corruption("snapshot " + snap.id + ": manifest has " + std::to_string(count) +
                              " IDs, expected " + std::to_string(snap.manifest_count));
  }
  return Status::OK();
}

Status Catalog::ForgetSnapshot(uint32_t department, std::string_view id, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snap, FindSnapshot(department, id));
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  Bytes key = SnapshotKey(department, snap.time_micros, snap.id);
  auto v = txn.Get(snapshots_, key);
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no snapshot " + snap.id);
    return v.status();
  }
  // Checked again inside the transaction that deletes: a lock set since
  // the read above holds.
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord current, DecodeSnapshot(*v));
  if (current.locked_until_micros > now_micros) {
    return Status::PermissionDenied("snapshot " + snap.id + " is locked until " +
                                    cli::Rfc3339(current.locked_until_micros));
  }
  std::vector<Bytes> parts;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(manifests_, AsBytes(snap.id), [&](ByteView k, ByteView) {
    if (k.size() == snap.id.size() + 4) parts.emplace_back(k.begin(), k.end());
    return true;
  }));
  for (const Bytes& k : parts) CAIRN_RETURN_IF_ERROR(txn.Delete(manifests_, k));
  CAIRN_RETURN_IF_ERROR(txn.Delete(snapshots_, key));
  return txn.Commit();
}

Status Catalog::UpdateSnapshot(uint32_t department, std::string_view id,
                               const std::function<bool(SnapshotRecord&)>& change) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord snap, FindSnapshot(department, id));
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  Bytes key = SnapshotKey(department, snap.time_micros, snap.id);
  auto v = txn.Get(snapshots_, key);
  if (!v.ok()) return v.status();
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord current, DecodeSnapshot(*v));
  if (!change(current)) return Status::OK();
  CAIRN_RETURN_IF_ERROR(txn.Put(snapshots_, key, EncodeSnapshot(current)));
  return txn.Commit();
}

Result<uint64_t> Catalog::LockSnapshot(uint32_t department, std::string_view id,
                                       uint64_t until_micros) {
  uint64_t in_force = until_micros;
  CAIRN_RETURN_IF_ERROR(UpdateSnapshot(department, id, [&](SnapshotRecord& s) {
    // A lock only ever moves later.
    if (s.locked_until_micros >= until_micros) {
      in_force = s.locked_until_micros;
      return false;
    }
    s.locked_until_micros = until_micros;
    return true;
  }));
  return in_force;
}

Status Catalog::MarkSnapshotDamaged(uint32_t department, std::string_view id, uint64_t micros) {
  return UpdateSnapshot(department, id, [&](SnapshotRecord& s) {
    if ((s.damaged_micros != 0) == (micros != 0)) return false;
    s.damaged_micros = micros;
    return true;
  });
}

}  // namespace cairn::vault
