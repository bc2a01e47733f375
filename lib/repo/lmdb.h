// A small owned wrapper over LMDB: an environment, named databases, RAII
// transactions, cursors, and the mapping of LMDB's return codes into Status
// (in LmdbStatus(), the one place that does it).
//
// LMDB is multi-process safe: `cairn-vault serve` and an administrative
// command may open the same environment at once. Write transactions are
// serialised by LMDB across processes; read transactions never block and
// see a consistent snapshot. A committed write transaction is durable
// (fsync) unless the environment was opened with `no_sync` (tests only).
#ifndef CAIRN_LIB_REPO_LMDB_H_
#define CAIRN_LIB_REPO_LMDB_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace cairn::repo {

// Maps an LMDB (or errno) return code to Status: MDB_NOTFOUND NotFound,
// MDB_MAP_FULL and ENOSPC NoSpace, MDB_CORRUPTED/MDB_PAGE_NOTFOUND/MDB_INVALID/
// MDB_VERSION_MISMATCH Corruption, MDB_READERS_FULL retryable Unavailable,
// MDB_TXN_FULL InvalidArgument (split the batch), EACCES PermissionDenied,
// plain errno values through ErrnoToStatus, anything else IOError.
Status LmdbStatus(int rc, std::string_view context);

struct LmdbOptions {
  // Largest size the database may grow to. It is address space, not disk:
  // the file grows only as data is written. Default 64 GiB holds ~400M index
  // entries; raise it for larger vaults (MDB_MAP_FULL surfaces as NoSpace).
  uint64_t map_size = 64ull << 30;
  // Named databases the environment may hold. Default 32.
  unsigned max_dbs = 32;
  // Concurrent read transactions across all processes. Default 256: each
  // vault connection may hold one while it streams.
  unsigned max_readers = 256;
  // Open read-only (auditing tools, verification). Default false.
  bool read_only = false;
  // Skip fsync on commit. Only for tests and benchmarks of the index itself:
  // it breaks the write-ordering rules in doc/design.md. Default false.
  bool no_sync = false;
  // Create the directory if missing. Default true.
  bool create = true;
  // Drop the database's pages from this process's mapping (MADV_DONTNEED)
  // before a transaction begins, when `unmap_interval` has passed since
  // the last time: they stay in the page cache and fault back in on the
  // next touch, so a process that reads or writes the whole file does not
  // keep all of it in its resident set. Write transactions drop them
  // again when they commit. Default false (never).
  bool unmap = false;
  std::chrono::milliseconds unmap_interval{250};
};

class LmdbEnv;

// A named database inside an environment (an MDB_dbi).
struct LmdbDb {
  unsigned int handle = 0;
};

// A transaction. Abort()ed on destruction unless committed. A write
// transaction must stay on the thread that began it; read transactions may
// move (the environment uses MDB_NOTLS). Views returned by Get() point into
// the memory map and are valid only until the transaction ends.
class LmdbTxn {
 public:
  LmdbTxn(LmdbTxn&& other) noexcept;
  LmdbTxn& operator=(LmdbTxn&& other) noexcept;
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;
  ~LmdbTxn();

  // NotFound if absent.
  Result<ByteView> Get(LmdbDb db, ByteView key) const;
  // Inserts or replaces.
  Status Put(LmdbDb db, ByteView key, ByteView value);
  // Inserts only if absent; returns false (and changes nothing) if present.
  Result<bool> PutIfAbsent(LmdbDb db, ByteView key, ByteView value);
  // PutIfAbsent for each (key, value), through one cursor: with the keys in
  // ascending order, each put searches the leaf the last one left instead
  // of the tree from its root. Returns how many were inserted.
  Result<size_t> PutAllIfAbsent(LmdbDb db, std::span<const std::pair<ByteView, ByteView>> entries);
  // NotFound if absent.
  Status Delete(LmdbDb db, ByteView key);
  // Calls fn(key, value) for every entry whose key starts with `prefix`, in
  // key order, until fn returns false.
  Status ForEachPrefix(LmdbDb db, ByteView prefix,
                       const std::function<bool(ByteView key, ByteView value)>& fn) const;
  // Calls fn(key, value) for every entry whose key is at or after `start`
  // (all of them when it is empty), in key order, until fn returns false.
  // A long scan resumes where the last batch stopped in a new transaction.
  Status ForEachFrom(LmdbDb db, ByteView start,
                     const std::function<bool(ByteView key, ByteView value)>& fn) const;
  Result<uint64_t> Count(LmdbDb db) const;

  // Makes the transaction's writes durable and visible. The transaction is
  // finished afterwards, whatever the result.
  Status Commit();
  void Abort();
  bool active() const { return txn_ != nullptr; }

 private:
  friend class LmdbEnv;
  explicit LmdbTxn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_ = nullptr;
  bool unmap_on_commit_ = false;  // a write transaction of an LmdbOptions::unmap environment
};

class LmdbEnv {
 public:
  // Opens (creating if allowed) the environment in directory `dir`.
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const LmdbOptions& options);
  ~LmdbEnv();

  // Opens a named database, creating it if `create` (needs a write txn
  // internally; do it at start-up).
  Result<LmdbDb> OpenDb(const std::string& name, bool create = true);

  Result<LmdbTxn> BeginRead();
  Result<LmdbTxn> BeginWrite();

  const std::string& dir() const { return dir_; }

 private:
  LmdbEnv() = default;
  Result<LmdbTxn> Begin(unsigned flags, const char* what);
  MDB_env* env_ = nullptr;
  std::string dir_;
  bool read_only_ = false;
  bool unmap_ = false;
  int64_t unmap_interval_ns_ = 0;
  std::atomic<int64_t> unmapped_at_ns_{0};
};

}  // namespace cairn::repo

#endif  // CAIRN_LIB_REPO_LMDB_H_
