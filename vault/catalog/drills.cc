// Drill reports: signed JSON, keyed by drill ID (doc/design.md section 23).
#include <algorithm>

#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using rows::Be64;
using rows::NextCounter;

Result<uint64_t> Catalog::AddDrill(const std::function<Result<std::string>(uint64_t id)>& make) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, NextCounter(txn, meta_, "next_drill_id"));
  CAIRN_ASSIGN_OR_RETURN(std::string report, make(id));
  const auto key = Be64(id);
  CAIRN_RETURN_IF_ERROR(txn.Put(drills_, key, AsBytes(report)));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return id;
}

Result<std::vector<std::pair<uint64_t, std::string>>> Catalog::ListDrills(size_t limit) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  std::vector<std::pair<uint64_t, std::string>> out;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(drills_, {}, [&](ByteView k, ByteView v) {
    uint64_t id = 0;
    for (uint8_t b : k) id = id << 8 | b;
    out.emplace_back(id, std::string(AsString(v)));
    return true;
  }));
  std::reverse(out.begin(), out.end());
  if (limit != 0 && out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace cairn::vault
