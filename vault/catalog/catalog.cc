// The catalog: opening its databases, people, and small settings.
#include "vault/catalog/catalog.h"

#include "lib/crypto/hash.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

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
  CAIRN_ASSIGN_OR_RETURN(c->sessions_, env->OpenDb("sessions"));
  return c;
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

}  // namespace cairn::vault
