// Restore and verify a snapshot (cairn-restore restore): the data path of
// doc/design.md section 12.
//
// Pipeline: the calling thread walks the loaded tree (snapshot_tree.h) in
// depth-first order, creates directories and special files, and cuts the
// file contents into batches of chunk IDs (up to 64 IDs or 8 MiB; a chunk
// used twice within a batch is fetched once). `connections` workers, each
// with its own vault connection, record decoder and io_uring, take batches
// from a bounded queue, keep one request in flight while they decrypt,
// decompress and verify the previous reply, and write the content at its
// offsets. Memory is bounded by the queue and the workers' two batches.
//
// Safety: every name is checked again (no '/', NUL, "." or ".."); every
// file system call is relative to a directory descriptor opened with
// O_NOFOLLOW below the target, so no symlink, restored or pre-existing, is
// followed out of it. Files are written under a temporary name and renamed
// into place after their metadata is set, unless `in_place`. A non-empty
// target is refused unless `in_place` or `overwrite`. A restore to a new
// target (a new or empty directory, a new image file) is refused before
// anything is written when the target's file system has less free space
// than the selected files' data (holes and hard links take none; btrfs,
// which may compress, is not checked); a file system that fills during a
// restore ends it with NoSpace, keeping the files restored whole.
//
// Verification: every chunk is decrypted and its HMAC recomputed and
// compared with its ID (delta chains included). A chunk that fails is
// reported with every file that uses it; the file is kept as
// "NAME.cairn-damaged" (the bad ranges read as zeros) and everything else is
// restored. `verify_only` does all the reading and checking and writes
// nothing.
//
// In place (`in_place`, for failback): an existing regular file or block
// device is reconciled chunk by chunk: the current bytes of each chunk's
// range are hashed, and only a range that differs is asked for, as a
// librsync delta against the range's signature (get_delta), applied,
// verified, and written back block by block (4 KiB) where it differs.
#ifndef CAIRN_RESTORE_RESTORER_H_
#define CAIRN_RESTORE_RESTORER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "lib/proto/messages.h"

namespace cairn::restore {

struct SnapshotTree;  // snapshot_tree.h

struct RestoreProgress {
  uint64_t bytes_done = 0, bytes_total = 0;
  uint64_t files_done = 0, files_total = 0;
  uint64_t bytes_received = 0;
  double seconds = 0;
};

// Which series "latest" is looked for in (doc/design.md section 12): a
// snapshot of another host, or of other paths, is never "latest" by
// accident.
struct SnapshotFilter {
  // Only this host's snapshots; empty: any host.
  std::string host;
  // Only snapshots that include every one of these paths.
  std::vector<std::string> paths;
  // Among those, the ones that include this path, when there are any (an
  // in-place restore onto a device this host backs up prefers that
  // device's series).
  std::string prefer_path;
};

struct RestoreOptions {
  std::string target;  // directory, image file or block device
  // How "latest" is resolved; an ID or prefix names any snapshot.
  SnapshotFilter filter;
  std::vector<std::string> includes;  // fnmatch patterns on snapshot paths; empty = all
  bool in_place = false;
  bool overwrite = false;
  bool verify_only = false;
  // Allow an in-place restore of another host's snapshot, or of another
  // image of this host, onto the target. Default false: refused.
  bool force = false;
  // Restore into where a symbolic link --target points. Default false: a
  // target that is a link is refused (with --overwrite, writing through a
  // link to /etc would be a disaster).
  bool follow_target_symlink = false;
  // Set from another thread (a signal) to stop: unfinished files are
  // removed, what was restored stays, and Restore returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  int connections = 4;              // parallel vault connections (and workers)
  std::vector<std::string> vaults;  // addresses, in order; empty = the agent's
  std::chrono::milliseconds deadline{std::chrono::seconds(120)};
  // Called about every 250 ms from the planning thread; may be empty.
  std::function<void(const RestoreProgress&)> progress;
  // Hand the loaded tree back in RestoreResult::tree (a drill compares the
  // disk with it afterwards). Default false.
  bool keep_tree = false;
};

// A chunk or tree object that failed verification or could not be fetched,
// and the paths (from the snapshot root) that could not be restored whole
// because of it.
struct Damage {
  std::string what;  // "chunk <id>" or "tree object <id>"
  std::string error;
  std::vector<std::string> paths;
};

struct RestoreResult {
  std::string snapshot_id;
  std::string vault;  // the address that served the restore
  bool image_target = false;
  uint64_t files = 0, dirs = 0, symlinks = 0, hardlinks = 0, specials = 0;
  uint64_t bytes = 0;           // content bytes restored or verified
  uint64_t chunks = 0;          // distinct chunk fetches
  uint64_t bytes_received = 0;  // from the vault, frames included
  uint64_t bytes_sent = 0;
  uint64_t bytes_written = 0;    // to the target
  uint64_t bytes_unchanged = 0;  // in place: ranges found identical
  uint64_t chunks_delta = 0;     // in place: ranges fetched as deltas
  std::vector<Damage> damaged;
  std::vector<std::string> warnings;
  double seconds = 0;
  std::shared_ptr<const SnapshotTree> tree;  // with keep_tree
};

// The byte ranges [begin, end) of `want` whose `block`-sized blocks differ
// from `have` (bytes past the end of `have` always differ), adjacent blocks
// merged into one run. What an in-place restore writes back.
std::vector<std::pair<uint64_t, uint64_t>> DifferingBlocks(ByteView want, ByteView have,
                                                           uint32_t block);

// Resolves SNAPSHOT: a full ID, a unique prefix of one, or "latest" (the
// newest snapshot that passes `filter`). NotFound says what exists instead.
Result<proto::SnapshotInfo> FindSnapshot(const std::vector<proto::SnapshotInfo>& list,
                                         std::string_view wanted,
                                         const SnapshotFilter& filter = {});

// Whether `snap` passes `filter` (host and paths; prefer_path ignored).
bool MatchesFilter(const proto::SnapshotInfo& snap, const SnapshotFilter& filter);

// The leftover temporary files of restores that were killed
// (".cairn-restore-<pid>-<n>") under `dir`, removed without following any
// symbolic link. Returns how many were removed.
Result<uint64_t> RemoveRestoreLeftovers(const std::string& dir);

// Restores (or verifies) `snapshot` with the identity in `state`. Fails as a
// whole for bad options, a refused target, an unreachable vault or a write
// error on the target (a full disk); damage is reported in the result, and
// the caller exits non-zero when `damaged` is not empty.
Result<RestoreResult> Restore(const client::Identity& state, const std::string& snapshot,
                              const RestoreOptions& options);

}  // namespace cairn::restore

#endif  // CAIRN_RESTORE_RESTORER_H_
