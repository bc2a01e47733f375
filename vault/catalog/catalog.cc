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
  CAIRN_ASSIGN_OR_RETURN(c->api_tokens_, env->OpenDb("api_tokens"));
  CAIRN_ASSIGN_OR_RETURN(c->alerts_, env->OpenDb("alerts"));
  CAIRN_ASSIGN_OR_RETURN(c->policies_, env->OpenDb("policies"));
  CAIRN_ASSIGN_OR_RETURN(c->sources_, env->OpenDb("sources"));
  CAIRN_ASSIGN_OR_RETURN(c->drills_, env->OpenDb("drills"));
  return c;
}

Status Catalog::PutUser(std::string_view name, std::string_view role,
                        std::string_view password_hash) {
  UserRecord u;
  u.name = std::string(name);
  u.role = std::string(role);
  u.password_hash = std::string(password_hash);
  if (auto old = FindUser(name); old.ok()) {
    u.departments = old->departments;
    u.disabled = old->disabled;
    u.created_micros = old->created_micros;
  }
  return PutUser(u);
}

Status Catalog::PutUser(const UserRecord& user) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(users_, AsBytes(user.name), EncodeUser(user)));
  return txn.Commit();
}

Status Catalog::CreateUser(const UserRecord& user) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  if (txn.Get(users_, AsBytes(user.name)).ok()) {
    return Status::InvalidArgument("user " + user.name + " exists");
  }
  CAIRN_RETURN_IF_ERROR(txn.Put(users_, AsBytes(user.name), EncodeUser(user)));
  return txn.Commit();
}

Result<UserRecord> Catalog::FindUser(std::string_view name) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(users_, AsBytes(name));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no user " + std::string(name));
    return v.status();
  }
  return DecodeUser(name, *v);
}

Result<std::vector<UserRecord>> Catalog::ListUsers() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<UserRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(users_, ByteView(), [&](ByteView k, ByteView v) {
    auto u = DecodeUser(AsString(k), v);
    if (!u.ok()) {
      bad = u.status();
      return false;
    }
    out.push_back(std::move(*u));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

Status Catalog::PutApiToken(const ApiTokenRecord& t) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(api_tokens_, AsBytes(t.id), EncodeApiToken(t)));
  return txn.Commit();
}

Result<ApiTokenRecord> Catalog::FindApiToken(std::string_view id) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  auto v = txn.Get(api_tokens_, AsBytes(id));
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no API token " + std::string(id));
    return v.status();
  }
  return DecodeApiToken(id, *v);
}

Result<std::vector<ApiTokenRecord>> Catalog::ListApiTokens() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<ApiTokenRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(api_tokens_, ByteView(), [&](ByteView k, ByteView v) {
    auto t = DecodeApiToken(AsString(k), v);
    if (!t.ok()) {
      bad = t.status();
      return false;
    }
    out.push_back(std::move(*t));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
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

Result<std::vector<std::pair<std::string, std::string>>> Catalog::ListSettings(
    std::string_view prefix) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  const std::string key = "setting/" + std::string(prefix);
  std::vector<std::pair<std::string, std::string>> out;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(meta_, AsBytes(key), [&](ByteView k, ByteView v) {
    out.emplace_back(std::string(AsString(k).substr(8)), std::string(AsString(v)));
    return true;
  }));
  return out;
}

Status Catalog::DeleteSetting(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  std::string key = "setting/" + std::string(name);
  Status s = txn.Delete(meta_, AsBytes(key));
  if (!s.ok() && !s.IsNotFound()) return s;
  return txn.Commit();
}

}  // namespace cairn::vault
