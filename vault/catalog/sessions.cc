// Backup sessions' resumable state.
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

Status Catalog::PutSession(const SessionRecord& session) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(sessions_, Be64(session.id), EncodeSession(session)));
  return txn.Commit();
}

Result<SessionRecord> Catalog::FindSession(uint64_t id) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  CAIRN_ASSIGN_OR_RETURN(ByteView v, txn.Get(sessions_, Be64(id)));
  return DecodeSession(v);
}

Status Catalog::DeleteSession(uint64_t id) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  Status s = txn.Delete(sessions_, Be64(id));
  if (!s.ok() && !s.IsNotFound()) return s;
  return txn.Commit();
}

Result<std::vector<SessionRecord>> Catalog::ListSessions() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<SessionRecord> out;
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(sessions_, ByteView(), [&](ByteView, ByteView v) {
    auto r = DecodeSession(v);
    if (!r.ok()) {
      bad = r.status();
      return false;
    }
    out.push_back(std::move(*r));
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

}  // namespace cairn::vault
