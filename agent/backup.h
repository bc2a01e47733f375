// A file backup: scan, chunk, identify, deduplicate, seal, upload, commit.
//
// Threads and queues (all bounded by one memory budget):
//
//   scanner (1)   walks each PATH depth-first in name order (fstatat, no
//                 symlink following, one file system unless cross_fs),
//                 consults the file cache, reads changed files 1 MiB at a
//                 time through io::UringEnv, and cuts them with FastCDC
//                 (the department's gear seed). A file smaller than 64 KiB
//                 joins its directory's current group of small files
//                 instead, packed into one record (doc/design.md section 9,
//                 "Groups and slices"). Each chunk's or group's bytes are
//                 charged to the budget before they are handed on; the
//                 scanner waits when the budget is spent.
//   stat-ahead    (stat_ahead threads, agent/scan.h StatAhead) list and
//                 lstat directories a little ahead of the scanner, in its
//                 order, so that a cold walk keeps the disk busy.
//   workers (N)   compute chunk IDs (HMAC under the ID key) first; a chunk
//                 already seen in this run is dropped at once. For a group,
//                 each file's own ID first (a file an earlier group holds
//                 becomes a reference to it), then the group's. Later, for
//                 the chunks the vault lacks, they compress and seal records
//                 (each worker has its own repo::RecordEncoder and key ID).
//   network (1)   the calling thread: asks the vault which IDs it holds
//                 (HaveChunks, batched adaptively: whatever queued while the
//                 previous answer was awaited), hands the absent ones back to
//                 the workers to seal, streams the records (PutRecord),
//                 flushes every flush_every bytes and at the end, then sends
//                 the manifest and commits.
//
// So a re-backup of unchanged data costs reading and hashing (or, with the
// file cache, neither), never compression or encryption. Directory trees
// (lib/repo/tree.h) are built bottom-up as soon as a directory's files are
// identified and go through the same path as kTree records.
//
// A file is read, checked and recorded as it was when opened: its size and
// mtime are taken again from the open file (the directory's listing may be
// seconds older), and compared with an lstat after the read.
//
// Error policy (per item, STYLE 12): an entry that vanishes, cannot be read
// (EACCES) or changes size while being read is left out of the snapshot and
// listed in `warnings`; the backup goes on and succeeds. A storage or
// network error, or a failure of the file cache, aborts the backup with
// that status; nothing is committed and the file cache learns nothing, so
// the next run resumes from what the vault made durable.
#ifndef CAIRN_AGENT_BACKUP_H_
#define CAIRN_AGENT_BACKUP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/file_cache.h"
#include "agent/vault_session.h"
#include "lib/base/status.h"
#include "lib/crypto/chunk_id.h"
#include "lib/crypto/keys.h"
#include "lib/io/env.h"

namespace cairn::agent {

// Where a backup is, reported about every 250 ms and once at the end: for
// a progress line, JSON status lines, or (later) the vault's job view.
struct BackupProgress {
  uint64_t bytes_read = 0;     // read from disk (unchanged files are not read)
  uint64_t bytes_covered = 0;  // of the tree, read or answered by the file cache
  uint64_t bytes_total = 0;    // estimated size of the whole backup; 0 = not known yet
  uint64_t files = 0, dirs = 0;
  uint64_t new_bytes = 0;  // plaintext sent as new records
  // Image backups: extents seen, changed, and sent as deltas.
  uint64_t extents = 0, extents_changed = 0, extents_delta = 0;
  double seconds = 0;
  double eta_seconds = -1;  // -1: not known
  bool final = false;
};

// One PATH of a files backup read from a point-in-time view (agent/pit.h).
struct ViewedPath {
  std::string path;  // as the user named it (absolute, normalised)
  std::string view;  // where to read it now
  // The live file system's device number: files read from the view are
  // stamped with it, so the file cache still knows them.
  uint64_t live_dev = 0;
};

struct BackupOptions {
  // What to back up: files or directories, absolute or relative to the
  // working directory. Nested paths (/a and /a/b) are backed up once.
  std::vector<std::string> paths;
  // fnmatch(3) patterns matched against each entry's path relative to its
  // PATH and against its name; a match leaves the entry (and a directory's
  // whole subtree) out. Default none.
  std::vector<std::string> excludes;
  // Descend into other mounted file systems. Default false: a mount point
  // is recorded as an empty directory (backing up /proc or a NFS share by
  // accident is worse than missing one).
  bool cross_fs = false;
  // Worker threads. 0 (default) = std::thread::hardware_concurrency().
  unsigned workers = 0;
  // Threads reading directories ahead of the scanner (StatAhead); 0: none.
  // Default 8: a cold walk of /usr's copy (100k entries) took 1.14 s with
  // one thread, 0.51 s with 4, 0.37 s with 8 and 0.36 s with 16.
  unsigned stat_ahead = 8;
  // Plaintext bytes that may be in flight between the reader and the vault
  // (chunks waiting to be identified, asked about, sealed or sent). Default
  // 96 MiB: far more than a loopback round trip needs to keep the pipe
  // full; with the allocator's overhead and everything else the agent
  // peaks at 140-205 MiB on 1-30 GB of large files (bench/scale-curve),
  // under the 256 MiB bound (128 MiB once peaked at 250-270 MiB; 64 MiB
  // slowed a cold backup by 10%).
  uint64_t memory_budget = 96ull << 20;
  // Flush after this many record bytes. Default 256 MiB (doc/protocol.md).
  uint64_t flush_every = 256ull << 20;
  // zstd level of the records. Default 3.
  int zstd_level = 3;
  // Called with the progress about every 250 ms and once at the end, on a
  // thread of the backup; may be empty. Estimating the total costs an
  // lstat-only walk beside the scan, done only when this is set.
  std::function<void(const BackupProgress&)> progress;
  // The clock of the snapshot's start and finish times. Default (null): the
  // POSIX Env. Tests pass a simulated one.
  io::Env* clock = nullptr;
  // Chunker average size override for tests; 0 = the library default.
  uint32_t chunk_avg_size = 0;
  // PATHs read from a point-in-time view (recorded under the PATH), and the
  // view's method and time for the snapshot's metadata. Default: none, the
  // data is read live.
  std::vector<ViewedPath> views;
  std::string pit_method;
  uint64_t pit_micros = 0;
  // Test seam: called on the scanner thread with a regular file's absolute
  // path just before it is opened for reading (to make it vanish, say).
  std::function<void(const std::string& path)> before_read_for_test;
};

struct BackupResult {
  std::string snapshot_id;
  crypto::ChunkId root_tree{};
  uint64_t files = 0;  // regular files (and hard-link names) recorded
  uint64_t dirs = 0;
  uint64_t bytes = 0;      // logical bytes of the files recorded
  uint64_t new_bytes = 0;  // plaintext bytes of the records uploaded
  uint64_t new_chunks = 0;
  std::vector<std::string> warnings;
  double seconds = 0;
  // Diagnostics (tests, benchmarks).
  uint64_t bytes_read = 0;         // file bytes actually read
  uint64_t bytes_read_direct = 0;  // of those, read with O_DIRECT (not in the page cache)
  uint64_t cache_hits = 0;         // files taken from the file cache
  uint64_t chunks_hashed = 0;
  uint64_t chunks_sealed = 0;  // compressed and encrypted
  uint64_t peak_bytes_in_flight = 0;
  uint64_t manifest_size = 0;
};

// Runs one backup on an opened session. `cache` may be null (no cache).
// On success the snapshot is committed and, when there is a cache, the
// files read in this run are promoted in it. If the vault refuses the
// commit because it lacks a chunk the file cache promised, the cache is
// cleared and NotFound "...run the backup again" is returned.
Result<BackupResult> RunBackup(const crypto::DepartmentKeys& keys, FileCache* cache,
                               VaultSession* session, const BackupOptions& options);

// The absolute, normalised PATHs a backup of `paths` covers (nested ones
// dropped), sorted. InvalidArgument for an empty list or an empty path.
Result<std::vector<std::string>> NormalizeBackupPaths(const std::vector<std::string>& paths);

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_BACKUP_H_
