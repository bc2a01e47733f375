#include "lib/repo/lmdb.h"

#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "lib/base/bytes.h"
#include "lib/base/errno.h"
#include "lib/io/file_io.h"

namespace cairn::repo {
namespace {

// A commit that fails with EIO while its file system has less than this
// free failed for want of space (LMDB turns a short write into EIO).
constexpr uint64_t kFullBelow = 16 << 20;

Status Finished(const char* op) {
  return Status::InvalidArgument(std::string("lmdb ") + op + ": transaction already finished");
}

MDB_val Val(ByteView b) { return MDB_val{b.size(), const_cast<uint8_t*>(b.data())}; }
ByteView View(const MDB_val& v) {
  return ByteView(static_cast<const uint8_t*>(v.mv_data), v.mv_size);
}

// Drops the environment's data file from this process's resident set:
// MADV_DONTNEED on each mapping of that file, found in /proc/self/maps
// (LMDB tells the map's address only for MDB_FIXEDMAP). Readers on other
// threads lose nothing: a shared file mapping's pages fault back in from
// the page cache. Best effort: on any failure nothing is dropped.
void DropMappedPages(MDB_env* env) {
  int fd = -1;
  struct stat st;
  if (mdb_env_get_fd(env, &fd) != MDB_SUCCESS || ::fstat(fd, &st) != 0) return;
  FILE* maps = std::fopen("/proc/self/maps", "re");
  if (maps == nullptr) return;
  char line[512];
  while (std::fgets(line, sizeof(line), maps) != nullptr) {
    unsigned long begin = 0, end = 0, ino = 0;
    unsigned major = 0, minor = 0;
    if (std::sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &begin, &end, &major, &minor, &ino) == 5 &&
        ino == st.st_ino && makedev(major, minor) == st.st_dev) {
      (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    }
  }
  std::fclose(maps);
}

}  // namespace

Status LmdbStatus(int rc, std::string_view context) {
  if (rc == MDB_SUCCESS) return Status::OK();
  std::string msg(context);
  msg += ": ";
  switch (rc) {
    case MDB_NOTFOUND:
      return Status::NotFound(msg + "not found");
    case MDB_MAP_FULL:
      return Status::NoSpace(msg + "database map is full (raise map_size)");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Status::Corruption(msg + mdb_strerror(rc));
    case MDB_READERS_FULL:
      return Status::Unavailable(msg + mdb_strerror(rc));
    case MDB_MAP_RESIZED:
      // Another process grew the map. Begin*() adopts the new size and
      // retries once; seen anywhere else, retrying as-is would not help.
      return Status::Unavailable(msg + mdb_strerror(rc)).WithRetryable(false);
    case MDB_TXN_FULL:
      // Retrying the same batch fails the same way: the caller must split it.
      return Status::InvalidArgument(msg + "transaction too large; commit smaller batches");
    case MDB_KEYEXIST:
      return Status::InvalidArgument(msg + "key exists");
    case MDB_DBS_FULL:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
    case MDB_INCOMPATIBLE:
      return Status::InvalidArgument(msg + mdb_strerror(rc));
    default:
      break;
  }
  if (rc > 0) return ErrnoToStatus(rc, context);  // LMDB passes plain errno values through
  return Status::IOError(msg + mdb_strerror(rc));
}

// ---- LmdbTxn ----

LmdbTxn::LmdbTxn(LmdbTxn&& other) noexcept
    : txn_(other.txn_), unmap_on_commit_(other.unmap_on_commit_) {
  other.txn_ = nullptr;
}

LmdbTxn& LmdbTxn::operator=(LmdbTxn&& other) noexcept {
  if (this != &other) {
    Abort();
    txn_ = other.txn_;
    unmap_on_commit_ = other.unmap_on_commit_;
    other.txn_ = nullptr;
  }
  return *this;
}

LmdbTxn::~LmdbTxn() { Abort(); }

void LmdbTxn::Abort() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
}

Status LmdbTxn::Commit() {
  if (!txn_) return Status::InvalidArgument("lmdb commit: transaction already finished");
  MDB_env* env = mdb_txn_env(txn_);
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // mdb_txn_commit frees the handle even on failure
  // The pages a write transaction touched (one per entry it added, in a
  // large index) leave the resident set at once.
  if (unmap_on_commit_) DropMappedPages(env);
  if (rc == EIO || rc == ENOSPC) {
    // LMDB reports a short write, which is what a full disk gives, as EIO:
    // name the full file system instead.
    const char* path = nullptr;
    if (mdb_env_get_path(env, &path) == 0 && path != nullptr) {
      Result<io::FileSystemSpace> space = io::SpaceOf(path);
      if (space.ok() && (rc == ENOSPC || space->free_bytes < kFullBelow)) {
        return Status::NoSpace("lmdb commit: the file system of " + std::string(path) +
                               " is full (" + HumanBytes(space->free_bytes) + " free)");
      }
    }
  }
  return LmdbStatus(rc, "lmdb commit");
}

Result<ByteView> LmdbTxn::Get(LmdbDb db, ByteView key) const {
  if (!txn_) return Finished("get");
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, db.handle, &k, &v);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, "lmdb get");
  return View(v);
}

Status LmdbTxn::Put(LmdbDb db, ByteView key, ByteView value) {
  if (!txn_) return Finished("put");
  MDB_val k = Val(key), v = Val(value);
  return LmdbStatus(mdb_put(txn_, db.handle, &k, &v, 0), "lmdb put");
}

Result<bool> LmdbTxn::PutIfAbsent(LmdbDb db, ByteView key, ByteView value) {
  if (!txn_) return Finished("put");
  MDB_val k = Val(key), v = Val(value);
  int rc = mdb_put(txn_, db.handle, &k, &v, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  CAIRN_RETURN_IF_ERROR(LmdbStatus(rc, "lmdb put"));
  return true;
}

Result<size_t> LmdbTxn::PutAllIfAbsent(LmdbDb db,
                                       std::span<const std::pair<ByteView, ByteView>> entries) {
  if (!txn_) return Finished("put");
  MDB_cursor* cursor = nullptr;
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(txn_, db.handle, &cursor), "lmdb cursor"));
  size_t inserted = 0;
  int rc = 0;
  for (const auto& [key, value] : entries) {
    MDB_val k = Val(key), v = Val(value);
    rc = mdb_cursor_put(cursor, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
      rc = 0;
      continue;
    }
    if (rc != 0) break;
    ++inserted;
  }
  mdb_cursor_close(cursor);
  CAIRN_RETURN_IF_ERROR(LmdbStatus(rc, "lmdb put"));
  return inserted;
}

Status LmdbTxn::Delete(LmdbDb db, ByteView key) {
  if (!txn_) return Finished("delete");
  MDB_val k = Val(key);
  return LmdbStatus(mdb_del(txn_, db.handle, &k, nullptr), "lmdb delete");
}

Status LmdbTxn::ForEachPrefix(LmdbDb db, ByteView prefix,
                              const std::function<bool(ByteView, ByteView)>& fn) const {
  return ForEachFrom(db, prefix, [&](ByteView key, ByteView value) {
    if (key.size() < prefix.size() ||
        (!prefix.empty() && std::memcmp(key.data(), prefix.data(), prefix.size()) != 0)) {
      return false;
    }
    return fn(key, value);
  });
}

Status LmdbTxn::ForEachFrom(LmdbDb db, ByteView start,
                            const std::function<bool(ByteView, ByteView)>& fn) const {
  if (!txn_) return Finished("cursor");
  MDB_cursor* cursor = nullptr;
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(txn_, db.handle, &cursor), "lmdb cursor"));
  MDB_val k = Val(start), v;
  int rc = mdb_cursor_get(cursor, &k, &v, start.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    if (!fn(View(k), View(v))) break;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return LmdbStatus(rc, "lmdb cursor");
  return Status::OK();
}

Result<uint64_t> LmdbTxn::Count(LmdbDb db) const {
  if (!txn_) return Finished("stat");
  MDB_stat st;
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_stat(txn_, db.handle, &st), "lmdb stat"));
  return static_cast<uint64_t>(st.ms_entries);
}

// ---- LmdbEnv ----

LmdbEnv::~LmdbEnv() {
  if (env_) mdb_env_close(env_);
}

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, const LmdbOptions& options) {
  if (options.create && !options.read_only && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, "create lmdb directory " + dir);
  }
  std::unique_ptr<LmdbEnv> env(new LmdbEnv());
  env->dir_ = dir;
  env->read_only_ = options.read_only;
  std::string ctx = "lmdb open " + dir;
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_env_create(&env->env_), ctx));
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_env_set_mapsize(env->env_, options.map_size), ctx));
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_env_set_maxdbs(env->env_, options.max_dbs), ctx));
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_env_set_maxreaders(env->env_, options.max_readers), ctx));
  unsigned flags = MDB_NOTLS;
  if (options.read_only) flags |= MDB_RDONLY;
  if (options.no_sync) flags |= MDB_NOSYNC;
  int rc = mdb_env_open(env->env_, dir.c_str(), flags, 0600);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, ctx);
  env->unmap_ = options.unmap;
  env->unmap_interval_ns_ =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options.unmap_interval).count();
  return env;
}

Result<LmdbDb> LmdbEnv::OpenDb(const std::string& name, bool create) {
  MDB_txn* txn = nullptr;
  unsigned txn_flags = read_only_ ? MDB_RDONLY : 0;
  std::string ctx = "lmdb open database " + name;
  CAIRN_RETURN_IF_ERROR(LmdbStatus(mdb_txn_begin(env_, nullptr, txn_flags, &txn), ctx));
  LmdbTxn guard(txn);
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn, name.c_str(), create && !read_only_ ? MDB_CREATE : 0, &dbi);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, ctx);
  CAIRN_RETURN_IF_ERROR(guard.Commit());
  return LmdbDb{dbi};
}

Result<LmdbTxn> LmdbEnv::Begin(unsigned flags, const char* what) {
  if (unmap_) {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = unmapped_at_ns_.load(std::memory_order_relaxed);
    if (now - last >= unmap_interval_ns_ &&
        unmapped_at_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      DropMappedPages(env_);
    }
  }
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // Another process (say `serve` beside an admin command) grew the map:
    // adopt its size, then try again once.
    rc = mdb_env_set_mapsize(env_, 0);
    if (rc == MDB_SUCCESS) rc = mdb_txn_begin(env_, nullptr, flags, &txn);
  }
  CAIRN_RETURN_IF_ERROR(LmdbStatus(rc, what));
  LmdbTxn t(txn);
  t.unmap_on_commit_ = unmap_ && (flags & MDB_RDONLY) == 0;
  return t;
}

Result<LmdbTxn> LmdbEnv::BeginRead() { return Begin(MDB_RDONLY, "lmdb begin read"); }

Result<LmdbTxn> LmdbEnv::BeginWrite() {
  if (read_only_) return Status::PermissionDenied("lmdb " + dir_ + " is open read-only");
  return Begin(0, "lmdb begin write");
}

}  // namespace cairn::repo
