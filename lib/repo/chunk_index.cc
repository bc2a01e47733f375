#include "lib/repo/chunk_index.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace cairn::repo {
namespace {

using Key = ChunkIndexKey;
using Value = std::array<uint8_t, kChunkIndexValueSize>;

std::array<uint8_t, 4> DepartmentPrefix(uint32_t department) {
  return {static_cast<uint8_t>(department >> 24), static_cast<uint8_t>(department >> 16),
          static_cast<uint8_t>(department >> 8), static_cast<uint8_t>(department)};
}

Key MakeKey(uint32_t department, const ChunkId& id) { return ChunkKeyOf(department, id); }

Value EncodeLocation(const ChunkLocation& loc) {
  Value v;
  EncodeFixed64(v.data(), loc.pack_id);
  EncodeFixed64(v.data() + 8, loc.offset);
  EncodeFixed32(v.data() + 16, loc.length);
  EncodeFixed32(v.data() + 20, loc.flags);
  return v;
}

Result<ChunkLocation> DecodeLocation(ByteView v) {
  if (v.size() != kChunkIndexValueSize) {
    return Status::Corruption("chunk index value has " + std::to_string(v.size()) + " bytes");
  }
  ChunkLocation loc;
  loc.pack_id = DecodeFixed64(v.data());
  loc.offset = DecodeFixed64(v.data() + 8);
  loc.length = DecodeFixed32(v.data() + 16);
  loc.flags = DecodeFixed32(v.data() + 20);
  return loc;
}

}  // namespace

ChunkIndexKey ChunkKeyOf(uint32_t department, const ChunkId& id) {
  ChunkIndexKey k;
  auto prefix = DepartmentPrefix(department);
  std::memcpy(k.data(), prefix.data(), prefix.size());
  std::memcpy(k.data() + 4, id.data(), id.size());
  return k;
}

uint32_t DepartmentOfKey(ByteView key) {
  return static_cast<uint32_t>(key[0]) << 24 | static_cast<uint32_t>(key[1]) << 16 |
         static_cast<uint32_t>(key[2]) << 8 | key[3];
}

Result<std::unique_ptr<ChunkIndex>> ChunkIndex::Open(LmdbEnv* env) {
  CAIRN_ASSIGN_OR_RETURN(LmdbDb db, env->OpenDb("chunks"));
  return std::unique_ptr<ChunkIndex>(new ChunkIndex(env, db));
}

Result<ChunkLocation> ChunkIndex::Lookup(const LmdbTxn& txn, uint32_t department,
                                         const ChunkId& id) const {
  Key k = MakeKey(department, id);
  auto v = txn.Get(db_, k);
  if (!v.ok()) return v.status();
  return DecodeLocation(*v);
}

Result<ChunkLocation> ChunkIndex::Lookup(uint32_t department, const ChunkId& id) const {
  CAIRN_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  return Lookup(txn, department, id);
}

Result<std::vector<bool>> ChunkIndex::Contains(uint32_t department,
                                               std::span<const ChunkId> ids) const {
  CAIRN_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  std::vector<bool> present(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    Key k = MakeKey(department, ids[i]);
    auto v = txn.Get(db_, k);
    if (v.ok()) {
      present[i] = true;
    } else if (!v.status().IsNotFound()) {
      return v.status();
    }
  }
  return present;
}

Status ChunkIndex::Insert(LmdbTxn& txn, uint32_t department, std::span<const Entry> entries) {
  // In key order, through one cursor: each put then searches the leaf the
  // last one left (hot in cache) instead of a random path from the root.
  std::vector<std::pair<Key, Value>> rows(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    rows[i] = {MakeKey(department, entries[i].id), EncodeLocation(entries[i].location)};
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<ByteView, ByteView>> views(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    views[i] = {ByteView(rows[i].first), ByteView(rows[i].second)};
  return txn.PutAllIfAbsent(db_, views).status();
}

Status ChunkIndex::Insert(uint32_t department, std::span<const Entry> entries) {
  CAIRN_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(Insert(txn, department, entries));
  return txn.Commit();
}

Status ChunkIndex::Remove(LmdbTxn& txn, uint32_t department, const ChunkId& id) {
  Key k = MakeKey(department, id);
  return txn.Delete(db_, k);
}

Result<bool> ChunkIndex::Relocate(LmdbTxn& txn, uint32_t department, const ChunkId& id,
                                  const ChunkLocation& from, const ChunkLocation& to) {
  Key k = MakeKey(department, id);
  auto v = txn.Get(db_, k);
  if (!v.ok()) return v.status().IsNotFound() ? Result<bool>(false) : Result<bool>(v.status());
  CAIRN_ASSIGN_OR_RETURN(ChunkLocation current, DecodeLocation(*v));
  if (current != from) return false;
  Value nv = EncodeLocation(to);
  CAIRN_RETURN_IF_ERROR(txn.Put(db_, k, nv));
  return true;
}

Status ChunkIndex::ScanFrom(
    const LmdbTxn& txn, const Position& start,
    const std::function<bool(const Position&, const ChunkLocation&)>& fn) const {
  Key k = MakeKey(start.department, start.id);
  Status bad;
  CAIRN_RETURN_IF_ERROR(txn.ForEachFrom(db_, k, [&](ByteView key, ByteView value) {
    if (key.size() != kChunkIndexKeySize) {
      bad = Status::Corruption("chunk index key has " + std::to_string(key.size()) + " bytes");
      return false;
    }
    auto loc = DecodeLocation(value);
    if (!loc.ok()) {
      bad = loc.status();
      return false;
    }
    Position p;
    p.department = DepartmentOfKey(key);
    std::memcpy(p.id.data(), key.data() + 4, p.id.size());
    return fn(p, *loc);
  }));
  return bad;
}

Result<uint64_t> ChunkIndex::Count() const {
  CAIRN_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  return txn.Count(db_);
}

Result<uint64_t> ChunkIndex::CountForDepartment(uint32_t department) const {
  CAIRN_ASSIGN_OR_RETURN(LmdbTxn txn, env_->BeginRead());
  auto prefix = DepartmentPrefix(department);
  uint64_t n = 0;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(db_, prefix, [&](ByteView, ByteView) {
    ++n;
    return true;
  }));
  return n;
}

}  // namespace cairn::repo
