#include "vault/catalog.h"

#include <cinttypes>
#include <cstdio>

#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"

namespace cairn::vault {
namespace {

constexpr size_t kTokenIdSize = 8;
constexpr size_t kTokenSecretSize = 16;
constexpr size_t kMaxListItems = 1 << 16;

std::array<uint8_t, 4> Be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

void PutString(ByteWriter& w, std::string_view s) {
  w.PutU32(static_cast<uint32_t>(s.size()));
  w.PutBytes(AsBytes(s));
}

bool GetString(ByteReader& r, std::string* s) {
  uint32_t n;
  ByteView v;
  if (!r.ReadU32(&n) || !r.ReadView(n, &v)) return false;
  s->assign(AsString(v));
  return true;
}

Status Malformed(std::string_view what) {
  return Status::Corruption("catalog: malformed " + std::string(what) + " row");
}

Bytes EncodeDepartment(const Department& d) {
  Bytes out;
  ByteWriter w(&out);
  w.PutU32(d.id);
  PutString(w, d.name);
  w.PutU64(d.created_micros);
  PutString(w, AsString(d.wrapped_keys));
  return out;
}

Result<Department> DecodeDepartment(ByteView v) {
  Department d;
  ByteReader r(v);
  std::string keys;
  if (!r.ReadU32(&d.id) || !GetString(r, &d.name) || !r.ReadU64(&d.created_micros) ||
      !GetString(r, &keys) || r.remaining() != 0) {
    return Malformed("department");
  }
  d.wrapped_keys.assign(keys.begin(), keys.end());
  return d;
}

Bytes EncodeAgent(const AgentRecord& a) {
  Bytes out;
  ByteWriter w(&out);
  PutString(w, a.serial);
  w.PutU32(a.department_id);
  PutString(w, a.host);
  w.PutU64(a.enrolled_micros);
  w.PutU8(a.revoked ? 1 : 0);
  w.PutU64(a.revoked_micros);
  return out;
}

Result<AgentRecord> DecodeAgent(ByteView v) {
  AgentRecord a;
  ByteReader r(v);
  uint8_t revoked;
  if (!GetString(r, &a.serial) || !r.ReadU32(&a.department_id) || !GetString(r, &a.host) ||
      !r.ReadU64(&a.enrolled_micros) || !r.ReadU8(&revoked) || !r.ReadU64(&a.revoked_micros) ||
      r.remaining() != 0 || revoked > 1) {
    return Malformed("agent");
  }
  a.revoked = revoked;
  return a;
}

Bytes EncodeSnapshot(const SnapshotRecord& s) {
  Bytes out;
  ByteWriter w(&out);
  PutString(w, s.id);
  w.PutU32(s.department_id);
  PutString(w, s.host);
  w.PutU32(static_cast<uint32_t>(s.paths.size()));
  for (const auto& p : s.paths) PutString(w, p);
  w.PutU8(s.kind);
  w.PutU64(s.time_micros);
  w.PutBytes(s.root_tree);
  for (uint64_t v : {s.files, s.dirs, s.bytes, s.new_bytes, s.new_chunks, s.warnings,
                     s.started_micros, s.finished_micros, s.manifest_count}) {
    w.PutU64(v);
  }
  return out;
}

Result<SnapshotRecord> DecodeSnapshot(ByteView v) {
  SnapshotRecord s;
  ByteReader r(v);
  uint32_t n;
  if (!GetString(r, &s.id) || !r.ReadU32(&s.department_id) || !GetString(r, &s.host) ||
      !r.ReadU32(&n) || n > kMaxListItems) {
    return Malformed("snapshot");
  }
  s.paths.resize(n);
  for (auto& p : s.paths) {
    if (!GetString(r, &p)) return Malformed("snapshot");
  }
  ByteView root;
  if (!r.ReadU8(&s.kind) || !r.ReadU64(&s.time_micros) || !r.ReadView(32, &root)) {
    return Malformed("snapshot");
  }
  std::memcpy(s.root_tree.data(), root.data(), 32);
  for (uint64_t* f : {&s.files, &s.dirs, &s.bytes, &s.new_bytes, &s.new_chunks, &s.warnings,
                      &s.started_micros, &s.finished_micros, &s.manifest_count}) {
    if (!r.ReadU64(f)) return Malformed("snapshot");
  }
  if (r.remaining() != 0) return Malformed("snapshot");
  return s;
}

// Snapshot keys sort newest first within a department: dept (BE) then
// (2^64 - 1 - time) (BE) then the ID.
Bytes SnapshotKey(uint32_t department, uint64_t time_micros, std::string_view id) {
  Bytes k;
  auto d = Be32(department);
  k.insert(k.end(), d.begin(), d.end());
  uint64_t inv = ~time_micros;
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<uint8_t>(inv >> (8 * i)));
  k.insert(k.end(), id.begin(), id.end());
  return k;
}

Result<uint64_t> NextCounter(repo::LmdbTxn& txn, repo::LmdbDb meta, std::string_view name) {
  uint64_t next = 1;
  auto cur = txn.Get(meta, AsBytes(name));
  if (cur.ok()) {
    if (cur->size() != 8) return Malformed("counter");
    next = DecodeFixed64(cur->data());
  } else if (!cur.status().IsNotFound()) {
    return cur.status();
  }
  uint8_t v[8];
  EncodeFixed64(v, next + 1);
  CAIRN_RETURN_IF_ERROR(txn.Put(meta, AsBytes(name), ByteView(v, 8)));
  return next;
}

std::array<uint8_t, 8> Be64(uint64_t v) {
  std::array<uint8_t, 8> k;
  for (int i = 0; i < 8; ++i) k[i] = static_cast<uint8_t>(v >> (8 * (7 - i)));
  return k;
}

Bytes EncodeJob(const JobRecord& j) {
  Bytes out;
  ByteWriter w(&out);
  w.PutU64(j.id);
  w.PutU32(j.department_id);
  PutString(w, j.agent_serial);
  PutString(w, j.host);
  w.PutU8(j.kind);
  w.PutU32(static_cast<uint32_t>(j.paths.size()));
  for (const auto& p : j.paths) PutString(w, p);
  w.PutU8(j.image ? 1 : 0);
  w.PutU8(static_cast<uint8_t>(j.state));
  w.PutU64(j.created_micros);
  w.PutU64(j.sent_micros);
  w.PutU64(j.finished_micros);
  PutString(w, j.sent_to);
  PutString(w, j.snapshot_id);
  PutString(w, j.error);
  return out;
}

Result<JobRecord> DecodeJob(ByteView v) {
  JobRecord j;
  ByteReader r(v);
  uint32_t n;
  if (!r.ReadU64(&j.id) || !r.ReadU32(&j.department_id) || !GetString(r, &j.agent_serial) ||
      !GetString(r, &j.host) || !r.ReadU8(&j.kind) || !r.ReadU32(&n) || n > kMaxListItems) {
    return Malformed("job");
  }
  j.paths.resize(n);
  for (auto& p : j.paths) {
    if (!GetString(r, &p)) return Malformed("job");
  }
  uint8_t image, state;
  if (!r.ReadU8(&image) || !r.ReadU8(&state) || !r.ReadU64(&j.created_micros) ||
      !r.ReadU64(&j.sent_micros) || !r.ReadU64(&j.finished_micros) || !GetString(r, &j.sent_to) ||
      !GetString(r, &j.snapshot_id) || !GetString(r, &j.error) || r.remaining() != 0 || image > 1 ||
      state < 1 || state > 4) {
    return Malformed("job");
  }
  j.image = image;
  j.state = static_cast<JobState>(state);
  return j;
}

// Same caps as doc/protocol.md section 3 for job.paths.
constexpr size_t kMaxJobPaths = 1024;
constexpr size_t kMaxJobPathLen = 4096;
constexpr size_t kMaxJobErrorLen = 65536;

}  // namespace

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kSent:
      return "sent";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
  }
  return "unknown";
}

Status ValidateDepartmentName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return Status::InvalidArgument("department name must be 1 to 64 characters");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) {
      return Status::InvalidArgument("department name '" + std::string(name) +
                                     "' may use only a-z, 0-9 and '-' (not first)");
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<Catalog>> Catalog::Open(repo::LmdbEnv* env) {
  std::unique_ptr<Catalog> c(new Catalog(env));
  CAIRN_ASSIGN_OR_RETURN(c->departments_, env->OpenDb("departments"));
  CAIRN_ASSIGN_OR_RETURN(c->department_names_, env->OpenDb("department_names"));
  CAIRN_ASSIGN_OR_RETURN(c->tokens_, env->OpenDb("tokens"));
  CAIRN_ASSIGN_OR_RETURN(c->agents_, env->OpenDb("agents"));
  CAIRN_ASSIGN_OR_RETURN(c->snapshots_, env->OpenDb("snapshots"));
  CAIRN_ASSIGN_OR_RETURN(c->manifests_, env->OpenDb("manifests"));
  CAIRN_ASSIGN_OR_RETURN(c->meta_, env->OpenDb("meta"));
  CAIRN_ASSIGN_OR_RETURN(c->users_, env->OpenDb("users"));
  CAIRN_ASSIGN_OR_RETURN(c->jobs_, env->OpenDb("jobs"));
  CAIRN_ASSIGN_OR_RETURN(c->jobs_queued_, env->OpenDb("jobs_queued"));
  return c;
}

Result<Department> Catalog::CreateDepartment(std::string_view name, ByteView wrapped_keys,
                                             uint64_t now_micros) {
  CAIRN_RETURN_IF_ERROR(ValidateDepartmentName(name));
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto existing = txn.Get(department_names_, AsBytes(name));
  if (existing.ok()) {
    return Status::InvalidArgument("department '" + std::string(name) + "' already exists");
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, NextCounter(txn, meta_, "next_department_id"));
  Department d{static_cast<uint32_t>(id), std::string(name), now_micros,
               Bytes(wrapped_keys.begin(), wrapped_keys.end())};
  auto key = Be32(d.id);
  CAIRN_RETURN_IF_ERROR(txn.Put(departments_, key, EncodeDepartment(d)));
  CAIRN_RETURN_IF_ERROR(txn.Put(department_names_, AsBytes(name), key));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return d;
}

Result<Department> Catalog::FindDepartment(uint32_t id) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto key = Be32(id);
  auto v = txn.Get(departments_, key);
  if (!v.ok()) {
    if (v.status().IsNotFound())
      return Status::NotFound("no department with id " + std::to_string(id));
    return v.status();
  }
  return DecodeDepartment(*v);
}

Result<Department> Catalog::FindDepartment(std::string_view name) const {
  uint32_t id;
  {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
    auto v = txn.Get(department_names_, AsBytes(name));
    if (!v.ok()) {
      if (v.status().IsNotFound()) {
        return Status::NotFound("no department named '" + std::string(name) + "'");
      }
      return v.status();
    }
    if (v->size() != 4) return Malformed("department name");
    id = static_cast<uint32_t>((*v)[0]) << 24 | (*v)[1] << 16 | (*v)[2] << 8 | (*v)[3];
  }
  return FindDepartment(id);
}

Result<std::vector<Department>> Catalog::ListDepartments() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<Department> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(departments_, {}, [&](ByteView, ByteView v) {
    auto d = DecodeDepartment(v);
    if (!d.ok()) {
      bad = d.status();
      return false;
    }
    out.push_back(std::move(*d));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

Result<std::string> Catalog::CreateToken(uint32_t department, uint64_t now_micros,
                                         uint64_t ttl_micros) {
  Bytes id(kTokenIdSize), secret(kTokenSecretSize);
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(id));
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(secret));
  if (department != kReplicatorToken) CAIRN_RETURN_IF_ERROR(FindDepartment(department).status());
  Bytes row;
  ByteWriter w(&row);
  w.PutU32(department);
  w.PutU64(now_micros + ttl_micros);
  w.PutU8(0);  // not used
  w.PutBytes(crypto::Sha256(secret));
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(tokens_, id, row));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  std::string token = ToHex(id) + "." + ToHex(secret);
  SecureZero(secret.data(), secret.size());
  return token;
}

Result<uint32_t> Catalog::RedeemToken(std::string_view token, uint64_t now_micros) {
  auto dot = token.find('.');
  auto refused = [](std::string_view why) {
    return Status::PermissionDenied("enrolment token refused: " + std::string(why));
  };
  if (dot == std::string_view::npos) return refused("malformed token");
  auto id = FromHex(token.substr(0, dot));
  auto secret = FromHex(token.substr(dot + 1));
  if (!id.ok() || !secret.ok() || id->size() != kTokenIdSize ||
      secret->size() != kTokenSecretSize) {
    return refused("malformed token");
  }
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto row = txn.Get(tokens_, *id);
  if (!row.ok()) {
    if (row.status().IsNotFound()) return refused("unknown token");
    return row.status();
  }
  Bytes r(row->begin(), row->end());
  ByteReader reader(r);
  uint32_t department;
  uint64_t expires;
  uint8_t used;
  ByteView hash;
  if (!reader.ReadU32(&department) || !reader.ReadU64(&expires) || !reader.ReadU8(&used) ||
      !reader.ReadView(32, &hash)) {
    return Malformed("token");
  }
  if (!crypto::ConstantTimeEqual(crypto::Sha256(*secret), hash)) return refused("unknown token");
  if (used) return refused("this token was already used; create a new one");
  if (now_micros > expires) return refused("this token has expired; create a new one");
  r[12] = 1;  // spend it in the same transaction
  CAIRN_RETURN_IF_ERROR(txn.Put(tokens_, *id, r));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return department;
}

Status Catalog::AddAgent(const AgentRecord& agent) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(agents_, AsBytes(agent.serial), EncodeAgent(agent)));
  return txn.Commit();
}

Result<AgentRecord> Catalog::FindAgent(std::string_view serial) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(agents_, AsBytes(serial));
  if (!v.ok()) {
    if (v.status().IsNotFound())
      return Status::NotFound("no agent with certificate " + std::string(serial));
    return v.status();
  }
  return DecodeAgent(*v);
}

Result<std::vector<AgentRecord>> Catalog::ListAgents() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<AgentRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(agents_, {}, [&](ByteView, ByteView v) {
    auto a = DecodeAgent(v);
    if (!a.ok()) {
      bad = a.status();
      return false;
    }
    out.push_back(std::move(*a));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

Status Catalog::RevokeAgent(std::string_view serial, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto v = txn.Get(agents_, AsBytes(serial));
  if (!v.ok()) {
    if (v.status().IsNotFound())
      return Status::NotFound("no agent with certificate " + std::string(serial));
    return v.status();
  }
  CAIRN_ASSIGN_OR_RETURN(AgentRecord a, DecodeAgent(*v));
  a.revoked = true;
  a.revoked_micros = now_micros;
  CAIRN_RETURN_IF_ERROR(txn.Put(agents_, AsBytes(serial), EncodeAgent(a)));
  return txn.Commit();
}

bool Catalog::IsRevokedOrUnknown(std::string_view serial) const {
  auto a = FindAgent(serial);
  return !a.ok() || a->revoked;
}

Status Catalog::PutUser(std::string_view name, std::string_view role,
                        std::string_view password_hash) {
  Bytes row;
  ByteWriter w(&row);
  PutString(w, role);
  PutString(w, password_hash);
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(users_, AsBytes(name), row));
  return txn.Commit();
}

Result<std::pair<std::string, std::string>> Catalog::FindUser(std::string_view name) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(users_, AsBytes(name));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no user " + std::string(name));
    return v.status();
  }
  ByteReader r(*v);
  std::pair<std::string, std::string> out;
  if (!GetString(r, &out.first) || !GetString(r, &out.second) || r.remaining() != 0) {
    return Malformed("user");
  }
  return out;
}

namespace {

Status PutManifest(repo::LmdbTxn& txn, repo::LmdbDb manifests, const std::string& id,
                   const std::vector<crypto::ChunkId>& manifest) {
  // The manifest in parts of up to 16384 IDs (512 KiB), keyed by snapshot
  // ID and part number, so a huge manifest never needs one huge value.
  constexpr size_t kPart = 16384;
  for (size_t i = 0, part = 0; i < manifest.size(); i += kPart, ++part) {
    size_t n_ids = std::min(kPart, manifest.size() - i);
    Bytes value(n_ids * 32);
    std::memcpy(value.data(), manifest[i].data(), value.size());
    Bytes mkey(id.begin(), id.end());
    auto p = Be32(static_cast<uint32_t>(part));
    mkey.insert(mkey.end(), p.begin(), p.end());
    CAIRN_RETURN_IF_ERROR(txn.Put(manifests, mkey, value));
  }
  return Status::OK();
}

}  // namespace

Result<SnapshotRecord> Catalog::CommitSnapshot(SnapshotRecord snapshot,
                                               const std::vector<crypto::ChunkId>& manifest) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(uint64_t n, NextCounter(txn, meta_, "next_snapshot_id"));
  char id[17];
  std::snprintf(id, sizeof(id), "%016" PRIx64, n);
  snapshot.id = id;
  snapshot.manifest_count = manifest.size();
  Bytes key = SnapshotKey(snapshot.department_id, snapshot.time_micros, snapshot.id);
  CAIRN_RETURN_IF_ERROR(txn.Put(snapshots_, key, EncodeSnapshot(snapshot)));
  CAIRN_RETURN_IF_ERROR(PutManifest(txn, manifests_, snapshot.id, manifest));
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
  info.stats = {s.files,      s.dirs,     s.bytes,          s.new_bytes,
                s.new_chunks, s.warnings, s.started_micros, s.finished_micros};
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
  if (id.size() != 16) return 0;
  uint64_t n = 0;
  for (char c : id) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return 0;
    n = n << 4 | static_cast<uint64_t>(v);
  }
  return n;
}

Result<Department> Catalog::ImportDepartment(uint32_t id, std::string_view name,
                                             ByteView wrapped_keys, uint64_t created_micros) {
  CAIRN_RETURN_IF_ERROR(ValidateDepartmentName(name));
  if (id == 0) return Status::InvalidArgument("department id 0 is invalid");
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto key = Be32(id);
  auto by_id = txn.Get(departments_, key);
  if (by_id.ok()) {
    CAIRN_ASSIGN_OR_RETURN(Department d, DecodeDepartment(*by_id));
    if (d.name != name) {
      return Status::InvalidArgument("department id " + std::to_string(id) + " is '" + d.name +
                                     "' here, '" + std::string(name) + "' at the source");
    }
    return d;
  }
  if (txn.Get(department_names_, AsBytes(name)).ok()) {
    return Status::InvalidArgument("department '" + std::string(name) +
                                   "' exists here under another id");
  }
  Department d{id, std::string(name), created_micros,
               Bytes(wrapped_keys.begin(), wrapped_keys.end())};
  CAIRN_RETURN_IF_ERROR(txn.Put(departments_, key, EncodeDepartment(d)));
  CAIRN_RETURN_IF_ERROR(txn.Put(department_names_, AsBytes(name), key));
  // Local departments created later get IDs past the imported ones.
  uint64_t next = 1;
  if (auto cur = txn.Get(meta_, AsBytes("next_department_id")); cur.ok() && cur->size() == 8) {
    next = DecodeFixed64(cur->data());
  }
  if (next <= id) {
    uint8_t v[8];
    EncodeFixed64(v, uint64_t{id} + 1);
    CAIRN_RETURN_IF_ERROR(txn.Put(meta_, AsBytes("next_department_id"), ByteView(v, 8)));
  }
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return d;
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
  CAIRN_RETURN_IF_ERROR(PutManifest(txn, manifests_, s.id, manifest));
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

Result<std::string> Catalog::GetSetting(std::string_view name) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::string key = "setting/" + std::string(name);
  auto v = txn.Get(meta_, AsBytes(key));
  if (!v.ok()) return v.status();
  return std::string(AsString(*v));
}

Status Catalog::PutSetting(std::string_view name, std::string_view value) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  std::string key = "setting/" + std::string(name);
  CAIRN_RETURN_IF_ERROR(txn.Put(meta_, AsBytes(key), AsBytes(value)));
  return txn.Commit();
}

Status Catalog::DeleteSetting(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  std::string key = "setting/" + std::string(name);
  Status s = txn.Delete(meta_, AsBytes(key));
  if (!s.ok() && !s.IsNotFound()) return s;
  return txn.Commit();
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
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<crypto::ChunkId> out;
  out.reserve(snap.manifest_count);
  Status bad;
  CAIRN_RETURN_IF_ERROR(
      txn.ForEachPrefix(manifests_, AsBytes(snap.id), [&](ByteView k, ByteView v) {
        if (k.size() != snap.id.size() + 4 || v.size() % 32 != 0) {
          bad = Malformed("manifest");
          return false;
        }
        for (size_t i = 0; i < v.size(); i += 32) {
          crypto::ChunkId c;
          std::memcpy(c.data(), v.data() + i, 32);
          out.push_back(c);
        }
        return true;
      }));
  CAIRN_RETURN_IF_ERROR(bad);
  if (out.size() != snap.manifest_count) {
    return Status::Corruption("snapshot " + snap.id + ": manifest has " +
                              std::to_string(out.size()) + " IDs, expected " +
                              std::to_string(snap.manifest_count));
  }
  return out;
}

Result<uint64_t> Catalog::EnqueueJob(const JobRecord& spec, uint64_t now_micros) {
  if (spec.kind != 1) {
    return Status::InvalidArgument("unknown job kind " + std::to_string(spec.kind));
  }
  if (spec.agent_serial.empty() && spec.host.empty()) {
    return Status::InvalidArgument("a job needs an agent serial or a host");
  }
  if (spec.paths.size() > kMaxJobPaths) {
    return Status::InvalidArgument("a job may name at most 1024 paths");
  }
  for (const auto& p : spec.paths) {
    if (p.empty() || p.size() > kMaxJobPathLen || p.find('\0') != std::string::npos) {
      return Status::InvalidArgument("job path must be 1 to 4096 bytes without NUL");
    }
  }
  JobRecord job;
  job.department_id = spec.department_id;
  job.agent_serial = spec.agent_serial;
  job.host = spec.host;
  job.kind = spec.kind;
  job.paths = spec.paths;
  job.image = spec.image;
  job.state = JobState::kQueued;
  job.created_micros = now_micros;
  if (!job.agent_serial.empty()) {
    CAIRN_ASSIGN_OR_RETURN(AgentRecord agent, FindAgent(job.agent_serial));
    if (agent.revoked) {
      return Status::PermissionDenied("agent " + job.agent_serial + " is revoked");
    }
    if (job.department_id != 0 && job.department_id != agent.department_id) {
      return Status::PermissionDenied("agent " + job.agent_serial +
                                      " belongs to another department");
    }
    job.department_id = agent.department_id;
    if (job.host.empty()) job.host = agent.host;
  }
  CAIRN_RETURN_IF_ERROR(FindDepartment(job.department_id).status());
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(job.id, NextCounter(txn, meta_, "next_job_id"));
  auto key = Be64(job.id);
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, key, EncodeJob(job)));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_queued_, key, {}));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return job.id;
}

Result<JobRecord> Catalog::FindJob(uint64_t id) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(jobs_, Be64(id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no job " + std::to_string(id));
    return v.status();
  }
  return DecodeJob(*v);
}

Result<std::vector<JobRecord>> Catalog::ListJobs(size_t limit) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<JobRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(jobs_, {}, [&](ByteView, ByteView v) {
    auto j = DecodeJob(v);
    if (!j.ok()) {
      bad = j.status();
      return false;
    }
    out.push_back(std::move(*j));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  if (limit != 0 && out.size() > limit) out.erase(out.begin(), out.end() - limit);
  return out;
}

Result<std::vector<JobRecord>> Catalog::ListQueuedJobs() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<JobRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(jobs_queued_, {}, [&](ByteView k, ByteView) {
    auto v = txn.Get(jobs_, k);
    auto j = v.ok() ? DecodeJob(*v) : Result<JobRecord>(v.status());
    if (!j.ok()) {
      bad = j.status().IsNotFound() ? Malformed("queued job") : j.status();
      return false;
    }
    out.push_back(std::move(*j));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

namespace {

// Loads job `id` in `txn` and checks it is in state `from`.
Result<JobRecord> LoadJobIn(repo::LmdbTxn& txn, repo::LmdbDb jobs, uint64_t id, JobState from) {
  auto v = txn.Get(jobs, Be64(id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no job " + std::to_string(id));
    return v.status();
  }
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, DecodeJob(*v));
  if (j.state != from) {
    return Status::InvalidArgument("job " + std::to_string(id) + " is " +
                                   std::string(JobStateName(j.state)) + ", not " +
                                   std::string(JobStateName(from)));
  }
  return j;
}

}  // namespace

Status Catalog::MarkJobSent(uint64_t id, std::string_view serial, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, JobState::kQueued));
  j.state = JobState::kSent;
  j.sent_micros = now_micros;
  j.sent_to = std::string(serial);
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  CAIRN_RETURN_IF_ERROR(txn.Delete(jobs_queued_, Be64(id)));
  return txn.Commit();
}

Status Catalog::RequeueJob(uint64_t id) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, JobState::kSent));
  j.state = JobState::kQueued;
  j.sent_micros = 0;
  j.sent_to.clear();
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_queued_, Be64(id), {}));
  return txn.Commit();
}

Status Catalog::FinishJob(uint64_t id, bool ok, std::string_view snapshot_id,
                          std::string_view error, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(JobRecord j, LoadJobIn(txn, jobs_, id, JobState::kSent));
  j.state = ok ? JobState::kDone : JobState::kFailed;
  j.finished_micros = now_micros;
  j.snapshot_id = ok ? std::string(snapshot_id) : "";
  j.error = ok ? "" : std::string(error.substr(0, kMaxJobErrorLen));
  if (!ok && j.error.empty()) j.error = "failed (the agent gave no reason)";
  CAIRN_RETURN_IF_ERROR(txn.Put(jobs_, Be64(id), EncodeJob(j)));
  return txn.Commit();
}

}  // namespace cairn::vault
