// The row encodings of the catalog's LMDB databases (doc/design.md,
// "Catalog schema"): one place for every key and value layout, shared by
// the catalog's per-concept files. Private to vault/catalog/.
#ifndef CAIRN_VAULT_CATALOG_ROWS_H_
#define CAIRN_VAULT_CATALOG_ROWS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/repo/lmdb.h"
#include "vault/catalog/catalog.h"

namespace cairn::vault::rows {

constexpr size_t kTokenIdSize = 8;
constexpr size_t kTokenSecretSize = 16;
constexpr size_t kMaxListItems = 1 << 16;

inline std::array<uint8_t, 4> Be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

inline void PutString(ByteWriter& w, std::string_view s) {
  w.PutU32(static_cast<uint32_t>(s.size()));
  w.PutBytes(AsBytes(s));
}

inline bool GetString(ByteReader& r, std::string* s) {
  uint32_t n;
  ByteView v;
  if (!r.ReadU32(&n) || !r.ReadView(n, &v)) return false;
  s->assign(AsString(v));
  return true;
}

inline Status Malformed(std::string_view what) {
  return Status::Corruption("catalog: malformed " + std::string(what) + " row");
}

inline Bytes EncodeDepartment(const Department& d) {
  Bytes out;
  ByteWriter w(&out);
  w.PutU32(d.id);
  PutString(w, d.name);
  w.PutU64(d.created_micros);
  PutString(w, AsString(d.wrapped_keys));
  return out;
}

inline Result<Department> DecodeDepartment(ByteView v) {
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

inline Bytes EncodeAgent(const AgentRecord& a) {
  Bytes out;
  ByteWriter w(&out);
  PutString(w, a.serial);
  w.PutU32(a.department_id);
  PutString(w, a.host);
  w.PutU64(a.enrolled_micros);
  w.PutU8(a.revoked ? 1 : 0);
  w.PutU64(a.revoked_micros);
  w.PutU64(a.last_seen_micros);
  w.PutU8(a.drill_host ? 1 : 0);
  return out;
}

inline Result<AgentRecord> DecodeAgent(ByteView v) {
  AgentRecord a;
  ByteReader r(v);
  uint8_t revoked;
  if (!GetString(r, &a.serial) || !r.ReadU32(&a.department_id) || !GetString(r, &a.host) ||
      !r.ReadU64(&a.enrolled_micros) || !r.ReadU8(&revoked) || !r.ReadU64(&a.revoked_micros) ||
      revoked > 1) {
    return Malformed("agent");
  }
  // Rows written before the last-seen time end here; before the drill
  // capability, after it.
  uint8_t drill_host = 0;
  if (r.remaining() != 0 &&
      (!r.ReadU64(&a.last_seen_micros) || (r.remaining() != 0 && !r.ReadU8(&drill_host)) ||
       r.remaining() != 0 || drill_host > 1)) {
    return Malformed("agent");
  }
  a.revoked = revoked;
  a.drill_host = drill_host;
  return a;
}

inline Bytes EncodeSnapshot(const SnapshotRecord& s) {
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
  // Optional trailing fields: the lock, then the record bytes the backup
  // stored (its new data as compressed; the anomaly rule's input).
  // Then when scrub found a chunk of it damaged beyond repair (0: sound).
  // Then the point-in-time method and time.
  const bool pit = !s.pit_method.empty() || s.pit_micros != 0;
  const bool more = s.stored_bytes != 0 || s.damaged_micros != 0 || pit;
  if (s.locked_until_micros != 0 || more) w.PutU64(s.locked_until_micros);
  if (more) w.PutU64(s.stored_bytes);
  if (s.damaged_micros != 0 || pit) w.PutU64(s.damaged_micros);
  if (pit) {
    PutString(w, s.pit_method);
    w.PutU64(s.pit_micros);
  }
  return out;
}

inline Result<SnapshotRecord> DecodeSnapshot(ByteView v) {
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
  // Rows of snapshots never locked end here.
  if (r.remaining() != 0 && !r.ReadU64(&s.locked_until_micros)) return Malformed("snapshot");
  if (r.remaining() != 0 && !r.ReadU64(&s.stored_bytes)) return Malformed("snapshot");
  if (r.remaining() != 0 && !r.ReadU64(&s.damaged_micros)) return Malformed("snapshot");
  if (r.remaining() != 0 && (!GetString(r, &s.pit_method) || !r.ReadU64(&s.pit_micros))) {
    return Malformed("snapshot");
  }
  if (r.remaining() != 0) return Malformed("snapshot");
  return s;
}

// Snapshot keys sort newest first within a department: dept (BE) then
// (2^64 - 1 - time) (BE) then the ID.
inline Bytes SnapshotKey(uint32_t department, uint64_t time_micros, std::string_view id) {
  Bytes k;
  auto d = Be32(department);
  k.insert(k.end(), d.begin(), d.end());
  uint64_t inv = ~time_micros;
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<uint8_t>(inv >> (8 * i)));
  k.insert(k.end(), id.begin(), id.end());
  return k;
}

inline Result<uint64_t> NextCounter(repo::LmdbTxn& txn, repo::LmdbDb meta, std::string_view name) {
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

inline std::array<uint8_t, 8> Be64(uint64_t v) {
  std::array<uint8_t, 8> k;
  for (int i = 0; i < 8; ++i) k[i] = static_cast<uint8_t>(v >> (8 * (7 - i)));
  return k;
}

inline Bytes EncodeJob(const JobRecord& j) {
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
  // Scheduled jobs' fields; rows of jobs started by hand before them end
  // above.
  w.PutU64(j.source_id);
  w.PutU32(static_cast<uint32_t>(j.excludes.size()));
  for (const auto& e : j.excludes) PutString(w, e);
  w.PutU8(j.zstd_level);
  w.PutU64(j.bandwidth);
  // Drill jobs' fields; rows from before them end above.
  PutString(w, j.read_snapshot);
  PutString(w, j.drill_check);
  w.PutU32(j.drill_check_timeout);
  w.PutU64(j.drill_rto);
  w.PutU32(static_cast<uint32_t>(j.read_from.size()));
  for (const auto& a : j.read_from) PutString(w, a);
  PutString(w, j.restore_target);  // rows from before restore jobs end above
  // Consistency (rows from before it end above).
  PutString(w, j.pit);
  PutString(w, j.pre_command);
  PutString(w, j.post_command);
  w.PutU32(j.hook_timeout);
  w.PutU8(j.hook_continue ? 1 : 0);
  PutString(w, j.log);
  return out;
}

inline Result<JobRecord> DecodeJob(ByteView v) {
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
      !GetString(r, &j.snapshot_id) || !GetString(r, &j.error) || image > 1 || state < 1 ||
      state > 5) {
    return Malformed("job");
  }
  if (r.remaining() != 0) {
    if (!r.ReadU64(&j.source_id) || !r.ReadU32(&n) || n > kMaxListItems) return Malformed("job");
    j.excludes.resize(n);
    for (auto& e : j.excludes) {
      if (!GetString(r, &e)) return Malformed("job");
    }
    if (!r.ReadU8(&j.zstd_level) || !r.ReadU64(&j.bandwidth)) return Malformed("job");
  }
  if (r.remaining() != 0) {
    if (!GetString(r, &j.read_snapshot) || !GetString(r, &j.drill_check) ||
        !r.ReadU32(&j.drill_check_timeout) || !r.ReadU64(&j.drill_rto) || !r.ReadU32(&n) ||
        n > kMaxListItems) {
      return Malformed("job");
    }
    j.read_from.resize(n);
    for (auto& a : j.read_from) {
      if (!GetString(r, &a)) return Malformed("job");
    }
    if (r.remaining() != 0 && !GetString(r, &j.restore_target)) return Malformed("job");
  }
  if (r.remaining() != 0) {
    uint8_t cont;
    if (!GetString(r, &j.pit) || !GetString(r, &j.pre_command) || !GetString(r, &j.post_command) ||
        !r.ReadU32(&j.hook_timeout) || !r.ReadU8(&cont) || cont > 1 || !GetString(r, &j.log)) {
      return Malformed("job");
    }
    j.hook_continue = cont == 1;
  }
  if (r.remaining() != 0) return Malformed("job");
  j.image = image;
  j.state = static_cast<JobState>(state);
  return j;
}

// Same caps as doc/protocol.md section 3 for job.paths.
constexpr size_t kMaxJobPaths = 1024;
constexpr size_t kMaxJobPathLen = 4096;
constexpr size_t kMaxJobErrorLen = 65536;

inline Bytes EncodePolicy(const Policy& p) {
  Bytes out;
  ByteWriter w(&out);
  w.PutU8(1);  // row version
  PutString(w, p.template_name);
  PutString(w, p.schedule);
  for (uint32_t v :
       {p.keep.last, p.keep.hourly, p.keep.daily, p.keep.weekly, p.keep.monthly, p.keep.yearly}) {
    w.PutU32(v);
  }
  w.PutU8(static_cast<uint8_t>(p.zstd_level));
  w.PutU8(p.offsite ? 1 : 0);
  for (uint64_t v : {p.rpo_seconds, p.rto_seconds, p.drill_every_seconds, p.lock_seconds,
                     p.bandwidth_bytes_per_second, p.created_micros, p.updated_micros}) {
    w.PutU64(v);
  }
  // The drill's check command; rows from before it end above.
  PutString(w, p.drill_check);
  w.PutU32(p.drill_check_timeout_seconds);
  w.PutU8(p.hook_failure_continue ? 1 : 0);  // rows from before it end above
  return out;
}

inline Result<Policy> DecodePolicy(std::string_view name, ByteView v) {
  Policy p;
  p.name = std::string(name);
  ByteReader r(v);
  uint8_t version, level, offsite;
  if (!r.ReadU8(&version) || version != 1 || !GetString(r, &p.template_name) ||
      !GetString(r, &p.schedule)) {
    return Malformed("policy");
  }
  for (uint32_t* f : {&p.keep.last, &p.keep.hourly, &p.keep.daily, &p.keep.weekly, &p.keep.monthly,
                      &p.keep.yearly}) {
    if (!r.ReadU32(f)) return Malformed("policy");
  }
  if (!r.ReadU8(&level) || !r.ReadU8(&offsite) || offsite > 1) return Malformed("policy");
  for (uint64_t* f : {&p.rpo_seconds, &p.rto_seconds, &p.drill_every_seconds, &p.lock_seconds,
                      &p.bandwidth_bytes_per_second, &p.created_micros, &p.updated_micros}) {
    if (!r.ReadU64(f)) return Malformed("policy");
  }
  if (r.remaining() != 0 &&
      (!GetString(r, &p.drill_check) || !r.ReadU32(&p.drill_check_timeout_seconds))) {
    return Malformed("policy");
  }
  if (r.remaining() != 0) {
    uint8_t cont;
    if (!r.ReadU8(&cont) || cont > 1) return Malformed("policy");
    p.hook_failure_continue = cont == 1;
  }
  if (r.remaining() != 0) return Malformed("policy");
  p.zstd_level = level;
  p.offsite = offsite;
  return p;
}

inline Bytes EncodeSource(const SourceRecord& s) {
  Bytes out;
  ByteWriter w(&out);
  w.PutU64(s.id);
  w.PutU32(s.department_id);
  PutString(w, s.host);
  PutString(w, s.policy);
  for (const auto* list : {&s.paths, &s.excludes}) {
    w.PutU32(static_cast<uint32_t>(list->size()));
    for (const auto& p : *list) PutString(w, p);
  }
  w.PutU8(s.image ? 1 : 0);
  w.PutU64(s.created_micros);
  w.PutU64(s.last_slot_micros);
  w.PutU64(s.last_job);
  w.PutU64(s.last_drill_slot_micros);
  PutString(w, s.pit);  // rows from before consistency end above
  PutString(w, s.pre_command);
  PutString(w, s.post_command);
  w.PutU32(s.hook_timeout);
  return out;
}

inline Result<SourceRecord> DecodeSource(ByteView v) {
  SourceRecord s;
  ByteReader r(v);
  if (!r.ReadU64(&s.id) || !r.ReadU32(&s.department_id) || !GetString(r, &s.host) ||
      !GetString(r, &s.policy)) {
    return Malformed("source");
  }
  for (auto* list : {&s.paths, &s.excludes}) {
    uint32_t n;
    if (!r.ReadU32(&n) || n > kMaxListItems) return Malformed("source");
    list->resize(n);
    for (auto& p : *list) {
      if (!GetString(r, &p)) return Malformed("source");
    }
  }
  uint8_t image;
  if (!r.ReadU8(&image) || image > 1 || !r.ReadU64(&s.created_micros) ||
      !r.ReadU64(&s.last_slot_micros) || !r.ReadU64(&s.last_job)) {
    return Malformed("source");
  }
  // Rows from before drill slots end here.
  if (r.remaining() != 0 && !r.ReadU64(&s.last_drill_slot_micros)) return Malformed("source");
  if (r.remaining() != 0 && (!GetString(r, &s.pit) || !GetString(r, &s.pre_command) ||
                             !GetString(r, &s.post_command) || !r.ReadU32(&s.hook_timeout))) {
    return Malformed("source");
  }
  if (r.remaining() != 0) return Malformed("source");
  s.image = image;
  return s;
}

inline Bytes EncodeSession(const SessionRecord& r) {
  Bytes out;
  ByteWriter w(&out);
  w.PutU64(r.id);
  w.PutU32(r.department_id);
  PutString(w, r.agent_serial);
  PutString(w, r.host);
  w.PutU8(r.kind);
  w.PutU32(static_cast<uint32_t>(r.paths.size()));
  for (const auto& p : r.paths) PutString(w, p);
  for (uint64_t v : {r.last_flush, r.records_stored, r.bytes_stored, r.created_micros,
                     r.active_micros, r.committed_micros}) {
    w.PutU64(v);
  }
  PutString(w, r.committed_snapshot);
  return out;
}

inline Result<SessionRecord> DecodeSession(ByteView v) {
  SessionRecord r;
  ByteReader in(v);
  uint32_t n = 0;
  if (!in.ReadU64(&r.id) || !in.ReadU32(&r.department_id) || !GetString(in, &r.agent_serial) ||
      !GetString(in, &r.host) || !in.ReadU8(&r.kind) || !in.ReadU32(&n) || n > kMaxListItems) {
    return Malformed("session");
  }
  r.paths.resize(n);
  for (auto& p : r.paths) {
    if (!GetString(in, &p)) return Malformed("session");
  }
  for (uint64_t* f : {&r.last_flush, &r.records_stored, &r.bytes_stored, &r.created_micros,
                      &r.active_micros, &r.committed_micros}) {
    if (!in.ReadU64(f)) return Malformed("session");
  }
  if (!GetString(in, &r.committed_snapshot) || in.remaining() != 0) return Malformed("session");
  return r;
}

// A user: role, password hash (the two fields of the first format), then
// disabled, created, and the department scope.
inline Bytes EncodeUser(const UserRecord& u) {
  Bytes out;
  ByteWriter w(&out);
  PutString(w, u.role);
  PutString(w, u.password_hash);
  w.PutU8(u.disabled ? 1 : 0);
  w.PutU64(u.created_micros);
  w.PutU32(static_cast<uint32_t>(u.departments.size()));
  for (const auto& d : u.departments) PutString(w, d);
  return out;
}

inline Result<UserRecord> DecodeUser(std::string_view name, ByteView v) {
  UserRecord u;
  u.name = std::string(name);
  ByteReader r(v);
  if (!GetString(r, &u.role) || !GetString(r, &u.password_hash)) return Malformed("user");
  if (r.remaining() == 0) return u;  // a user of the first format (init's admin)
  uint8_t disabled = 0;
  uint32_t n = 0;
  if (!r.ReadU8(&disabled) || disabled > 1 || !r.ReadU64(&u.created_micros) || !r.ReadU32(&n) ||
      n > kMaxListItems) {
    return Malformed("user");
  }
  u.disabled = disabled;
  u.departments.resize(n);
  for (auto& d : u.departments) {
    if (!GetString(r, &d)) return Malformed("user");
  }
  if (r.remaining() != 0) return Malformed("user");
  return u;
}

inline Bytes EncodeApiToken(const ApiTokenRecord& t) {
  Bytes out;
  ByteWriter w(&out);
  PutString(w, t.user);
  PutString(w, t.label);
  PutString(w, AsString(t.secret_hash));
  w.PutU64(t.created_micros);
  w.PutU8(t.revoked ? 1 : 0);
  return out;
}

inline Result<ApiTokenRecord> DecodeApiToken(std::string_view id, ByteView v) {
  ApiTokenRecord t;
  t.id = std::string(id);
  ByteReader r(v);
  std::string hash;
  uint8_t revoked = 0;
  if (!GetString(r, &t.user) || !GetString(r, &t.label) || !GetString(r, &hash) ||
      !r.ReadU64(&t.created_micros) || !r.ReadU8(&revoked) || revoked > 1 || r.remaining() != 0) {
    return Malformed("API token");
  }
  t.secret_hash.assign(hash.begin(), hash.end());
  t.revoked = revoked;
  return t;
}

inline Bytes EncodeAlert(const AlertRecord& a) {
  Bytes out;
  ByteWriter w(&out);
  PutString(w, a.key);
  PutString(w, a.rule);
  PutString(w, a.severity);
  PutString(w, a.department);
  PutString(w, a.summary);
  w.PutU64(a.fired_micros);
  w.PutU64(a.resolved_micros);
  return out;
}

inline Result<AlertRecord> DecodeAlert(uint64_t id, ByteView v) {
  AlertRecord a;
  a.id = id;
  ByteReader r(v);
  if (!GetString(r, &a.key) || !GetString(r, &a.rule) || !GetString(r, &a.severity) ||
      !GetString(r, &a.department) || !GetString(r, &a.summary) || !r.ReadU64(&a.fired_micros) ||
      !r.ReadU64(&a.resolved_micros) || r.remaining() != 0) {
    return Malformed("alert");
  }
  return a;
}

}  // namespace cairn::vault::rows

#endif  // CAIRN_VAULT_CATALOG_ROWS_H_
