// The catalog: alerts. Rows of `alerts` are keyed by their ID (BE); the
// firing ones are also indexed in `meta` as "alert_firing/<key>" -> ID, so
// that a key fires once until it resolves.
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

namespace {

std::string FiringKey(std::string_view key) { return "alert_firing/" + std::string(key); }

uint64_t IdOf(ByteView k) {
  uint64_t id = 0;
  for (uint8_t b : k) id = (id << 8) | b;
  return id;
}

}  // namespace

Result<bool> Catalog::FireAlert(AlertRecord* alert) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  const std::string index = FiringKey(alert->key);
  if (txn.Get(meta_, AsBytes(index)).ok()) return false;
  CAIRN_ASSIGN_OR_RETURN(alert->id, NextCounter(txn, meta_, "next_alert_id"));
  alert->resolved_micros = 0;
  const auto key = Be64(alert->id);
  CAIRN_RETURN_IF_ERROR(txn.Put(alerts_, key, EncodeAlert(*alert)));
  CAIRN_RETURN_IF_ERROR(txn.Put(meta_, AsBytes(index), key));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return true;
}

Result<AlertRecord> Catalog::ResolveAlert(std::string_view key, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  const std::string index = FiringKey(key);
  auto id = txn.Get(meta_, AsBytes(index));
  if (!id.ok()) {
    if (id.status().IsNotFound()) return Status::NotFound("no firing alert " + std::string(key));
    return id.status();
  }
  if (id->size() != 8) return Malformed("alert index");
  const uint64_t n = IdOf(*id);
  auto v = txn.Get(alerts_, Be64(n));
  if (!v.ok()) return v.status();
  CAIRN_ASSIGN_OR_RETURN(AlertRecord a, DecodeAlert(n, *v));
  a.resolved_micros = std::max<uint64_t>(now_micros, a.fired_micros + 1);
  CAIRN_RETURN_IF_ERROR(txn.Put(alerts_, Be64(n), EncodeAlert(a)));
  CAIRN_RETURN_IF_ERROR(txn.Delete(meta_, AsBytes(index)));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return a;
}

Result<std::vector<AlertRecord>> Catalog::FiringAlerts() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<uint64_t> ids;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(meta_, AsBytes(std::string_view("alert_firing/")),
                                          [&](ByteView, ByteView v) {
                                            if (v.size() != 8) {
                                              bad = Malformed("alert index");
                                              return false;
                                            }
                                            ids.push_back(IdOf(v));
                                            return true;
                                          }));
  CAIRN_RETURN_IF_ERROR(bad);
  std::sort(ids.begin(), ids.end());
  std::vector<AlertRecord> out;
  for (uint64_t id : ids) {
    CAIRN_ASSIGN_OR_RETURN(ByteView v, txn.Get(alerts_, Be64(id)));
    CAIRN_ASSIGN_OR_RETURN(AlertRecord a, DecodeAlert(id, v));
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<AlertRecord>> Catalog::RecentAlerts(size_t limit) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<AlertRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(alerts_, ByteView(), [&](ByteView k, ByteView v) {
    if (k.size() != 8) {
      bad = Malformed("alert");
      return false;
    }
    auto a = DecodeAlert(IdOf(k), v);
    if (!a.ok()) {
      bad = a.status();
      return false;
    }
    out.push_back(std::move(*a));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  std::reverse(out.begin(), out.end());
  if (limit != 0 && out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace cairn::vault
