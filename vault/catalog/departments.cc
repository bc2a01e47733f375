// Departments: names, IDs and wrapped keys (created here or imported by replication).
#include "lib/base/names.h"
#include "vault/catalog/catalog.h"
#include "vault/catalog/rows.h"

namespace cairn::vault {

using namespace rows;  // NOLINT: the row codecs of this catalog

Result<Department> Catalog::CreateDepartment(std::string_view name, ByteView wrapped_keys,
                                             uint64_t now_micros) {
  CAIRN_RETURN_IF_ERROR(ValidateName("department", name));
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

Result<Department> Catalog::ImportDepartment(uint32_t id, std::string_view name,
                                             ByteView wrapped_keys, uint64_t created_micros) {
  CAIRN_RETURN_IF_ERROR(ValidateName("department", name));
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

}  // namespace cairn::vault
