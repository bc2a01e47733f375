// Enrolment tokens, and the agents (and replicators) they enrolled, with revocation.
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

Result<std::string> Catalog::CreateToken(uint32_t department, uint64_t now_micros,
                                         uint64_t ttl_micros, bool drill_host) {
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
  w.PutU8(drill_host ? 1 : 0);  // capabilities; rows from before them end above
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(txn.Put(tokens_, id, row));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  std::string token = ToHex(id) + "." + ToHex(secret);
  SecureZero(secret.data(), secret.size());
  return token;
}

Result<Catalog::TokenGrant> Catalog::RedeemToken(std::string_view token, uint64_t now_micros) {
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
  uint8_t capabilities = 0;
  if (reader.remaining() != 0 && (!reader.ReadU8(&capabilities) || capabilities > 1)) {
    return Malformed("token");
  }
  if (!crypto::ConstantTimeEqual(crypto::Sha256(*secret), hash)) return refused("unknown token");
  if (used) return refused("this token was already used; create a new one");
  if (now_micros > expires) return refused("this token has expired; create a new one");
  r[12] = 1;  // spend it in the same transaction
  CAIRN_RETURN_IF_ERROR(txn.Put(tokens_, *id, r));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return TokenGrant{department, capabilities == 1};
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

Status Catalog::NoteAgentSeen(std::string_view serial, uint64_t now_micros) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  auto v = txn.Get(agents_, AsBytes(serial));
  if (!v.ok()) {
    if (v.status().IsNotFound())
      return Status::NotFound("no agent with certificate " + std::string(serial));
    return v.status();
  }
  CAIRN_ASSIGN_OR_RETURN(AgentRecord a, DecodeAgent(*v));
  a.last_seen_micros = now_micros;
  CAIRN_RETURN_IF_ERROR(txn.Put(agents_, AsBytes(serial), EncodeAgent(a)));
  return txn.Commit();
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

}  // namespace cairn::vault
