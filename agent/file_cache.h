// The agent's file cache: which files were unchanged since the last
// committed snapshot, and their content, so an unchanged file is not read.
//
// LMDB in the state directory (DIR/lmdb), two databases:
//   files    key = absolute path, value = FileStamp + content references +
//            holes of the file as the last committed snapshot recorded it;
//   pending  the same, written during a backup.
// A backup writes what it learns to `pending` only; PromotePending() moves
// it to `files` once the vault answered CommitOk. So a backup that fails or
// is interrupted never teaches the cache anything the vault does not hold
// in a committed snapshot, and resume after an interruption works from the
// vault's durable chunks alone (doc/protocol.md, "Resume").
//
// A hit needs every field of the stamp to match (device, inode, size,
// mtime and ctime in nanoseconds): ctime catches a file rewritten with its
// mtime restored (cp -p, tar, rsync -t), and the inode a file replaced by
// rename. Entries of paths no longer backed up are kept (harmless: one
// lookup never finds them again unless the path comes back unchanged).
//
// Thread safety: LMDB write transactions stay on their thread; call every
// method from one thread (Lookup may also run on others: read transactions
// may move, the environment uses MDB_NOTLS).
#ifndef CAIRN_AGENT_FILE_CACHE_H_
#define CAIRN_AGENT_FILE_CACHE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/repo/lmdb.h"
#include "lib/repo/tree.h"

namespace cairn::agent {

struct FileStamp {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

struct CachedFile {
  FileStamp stamp;
  std::vector<repo::ContentRef> content;
  std::vector<repo::Hole> holes;
  friend bool operator==(const CachedFile&, const CachedFile&) = default;
};

// Value encoding (version 1), exposed for tests.
Bytes EncodeCachedFile(const CachedFile& file);
// Corruption for anything malformed (a damaged entry is then a miss).
Result<CachedFile> DecodeCachedFile(ByteView value);

class FileCache {
 public:
  // Opens (creating) the cache in `lmdb_dir`. `no_sync` is for tests only.
  static Result<std::unique_ptr<FileCache>> Open(const std::string& lmdb_dir, bool no_sync = false);
  ~FileCache();

  // The committed entry for `path` if its stamp equals `stamp`; nullopt on
  // a miss (absent, changed or undecodable). Errors only for LMDB failures.
  Result<std::optional<CachedFile>> Lookup(const std::string& path, const FileStamp& stamp) const;

  // Records what this backup learnt, in one transaction. Not visible to
  // Lookup until PromotePending().
  Status AddPending(const std::vector<std::pair<std::string, CachedFile>>& files);

  // Forgets pending entries (left by a run that did not commit).
  Status ClearPending();

  // Moves every pending entry into the committed table. Call only after the
  // snapshot referencing them was committed. Idempotent; done in batches,
  // each a transaction (an interruption leaves a mix of moved and pending
  // entries, both correct).
  Status PromotePending();

  // Forgets everything (the vault no longer holds what the cache named).
  Status Clear();

  // Committed entries (for tests and diagnostics).
  Result<uint64_t> Count() const;

 private:
  FileCache() = default;
  Status ClearDb(repo::LmdbDb db);
  std::unique_ptr<repo::LmdbEnv> env_;
  repo::LmdbDb files_, pending_;
};

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_FILE_CACHE_H_
