// The chunk index: (department, chunk ID) -> where the record lives.
//
// One LMDB database, "chunks". Keys are the department ID (4 bytes,
// big-endian, so one department's chunks are contiguous) followed by the
// 32-byte chunk ID; values are 24 bytes (layout in doc/design.md). Entries
// are inserted only after the pack bytes they name are durable (write
// ordering rule 2). Thread-safe: each call runs in its own transaction
// unless it takes one.
#ifndef CAIRN_LIB_REPO_CHUNK_INDEX_H_
#define CAIRN_LIB_REPO_CHUNK_INDEX_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "lib/base/status.h"
#include "lib/repo/lmdb.h"
#include "lib/repo/record.h"

namespace cairn::repo {

struct ChunkLocation {
  uint64_t pack_id = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t flags = 0;  // record type (low byte) and record flags (next 16 bits)

  friend bool operator==(const ChunkLocation&, const ChunkLocation&) = default;
};

inline constexpr size_t kChunkIndexKeySize = 4 + crypto::kChunkIdSize;
using ChunkIndexKey = std::array<uint8_t, kChunkIndexKeySize>;
// The key of (department, id): the department big-endian, then the ID. The
// index, the vault's delta bases and GC's filters all use it.
ChunkIndexKey ChunkKeyOf(uint32_t department, const ChunkId& id);
// The department of such a key (which must be kChunkIndexKeySize long).
uint32_t DepartmentOfKey(ByteView key);
inline constexpr size_t kChunkIndexValueSize = 24;

class ChunkIndex {
 public:
  // Opens (creating) the "chunks" database in `env`, which must outlive it.
  static Result<std::unique_ptr<ChunkIndex>> Open(LmdbEnv* env);

  // Location of one chunk; NotFound if the department has no such chunk.
  Result<ChunkLocation> Lookup(uint32_t department, const ChunkId& id) const;
  Result<ChunkLocation> Lookup(const LmdbTxn& txn, uint32_t department, const ChunkId& id) const;

  // For each ID, whether the department already stores it. One read
  // transaction; this is the agent's "which of these are missing?" question.
  Result<std::vector<bool>> Contains(uint32_t department, std::span<const ChunkId> ids) const;

  // Inserts a batch in one durable write transaction. An ID already present
  // keeps its first location (the older copy stays authoritative; the new
  // record is garbage for GC to collect).
  struct Entry {
    ChunkId id;
    ChunkLocation location;
  };
  Status Insert(uint32_t department, std::span<const Entry> entries);
  Status Insert(LmdbTxn& txn, uint32_t department, std::span<const Entry> entries);

  // Removes one entry (GC, compaction). NotFound if absent.
  Status Remove(LmdbTxn& txn, uint32_t department, const ChunkId& id);

  // Points an entry at a new copy of its record (compaction, repair), only
  // while it still names `from`: returns false, changing nothing, when the
  // entry is gone or names another place.
  Result<bool> Relocate(LmdbTxn& txn, uint32_t department, const ChunkId& id,
                        const ChunkLocation& from, const ChunkLocation& to);

  // Calls fn for entries in key order (department, then chunk ID), starting
  // at (department, id) inclusive, until fn returns false. GC scans the
  // whole index in batches this way, each batch in a short transaction.
  struct Position {
    uint32_t department = 0;
    ChunkId id{};
  };
  Status ScanFrom(const LmdbTxn& txn, const Position& start,
                  const std::function<bool(const Position&, const ChunkLocation&)>& fn) const;

  // Number of chunks a department stores; all departments together.
  Result<uint64_t> CountForDepartment(uint32_t department) const;
  Result<uint64_t> Count() const;

  LmdbEnv* env() const { return env_; }

 private:
  ChunkIndex(LmdbEnv* env, LmdbDb db) : env_(env), db_(db) {}
  LmdbEnv* env_;
  LmdbDb db_;
};

}  // namespace cairn::repo

#endif  // CAIRN_LIB_REPO_CHUNK_INDEX_H_
