// Image backup: a block device or a disk image file, in fixed aligned
// extents, with block changes sent as rsync deltas (doc/design.md section 10).
//
// For each image (a regular file or a block device) the agent:
//   1. splits [0, size) into aligned extents (lib/chunk/extent.h, 4 MiB by
//      default) and reads them through io::UringEnv, a few at a time;
//   2. records an all-zero extent as a hole and sends nothing;
//   3. computes each other extent's chunk ID (HMAC of its content). An
//      extent whose ID equals the one the extent store remembers from the
//      last committed backup costs nothing;
//   4. for a changed extent with a remembered signature and a chain depth
//      below kMaxDeltaChain, computes the librsync delta against that
//      signature; when the delta is at most extent length / 8
//      (kDeltaMaxFraction) it sends a kDelta record, stored under the NEW
//      content's ID, whose plaintext is EncodeDeltaPlaintext(base, delta)
//      with base = the ID of the extent's previous full content. Otherwise
//      the extent goes whole as a kData record (its chain restarts at 0);
//   5. builds a tree whose root leads to one kImage entry per image
//      (lib/repo/tree.h), and commits with a manifest that holds, for every
//      extent, its ID and the IDs of its whole base chain, so GC never frees
//      a base a delta still needs.
//
// The extent store (ExtentStore, LMDB database "extents" in the agent's
// lmdb/ environment) keeps per (image identity, extent index) the ID, chain
// and librsync signature of the extent as last committed. A backup writes
// what it learns to "extents_pending" only; PromotePending() runs after
// CommitOk. A failed or interrupted backup therefore never makes a later one
// send a delta against a base that no committed snapshot references.
//
// Memory: at most ImageBackupOptions::extents_in_flight extents (plus their
// signatures, deltas and records) are held at once.
//
// Error policy: an image that cannot be opened or read aborts the backup
// (there is no meaningful partial image); so does any storage or network
// error. Nothing is committed then and the extent store learns nothing.
#ifndef CAIRN_AGENT_IMAGE_BACKUP_H_
#define CAIRN_AGENT_IMAGE_BACKUP_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/backup.h"
#include "agent/vault_session.h"
#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/chunk_id.h"
#include "lib/crypto/keys.h"
#include "lib/io/env.h"
#include "lib/repo/lmdb.h"
#include "lib/repo/record.h"

namespace cairn::agent {

// Longest chain of deltas from a kData record to any extent version. The
// (depth + 1)-th change of an extent is sent whole. Bounds the work and the
// records a restore of one extent needs (at most 1 + kMaxDeltaChain).
using repo::kMaxDeltaChain;
// A delta is sent only when delta_size * kDeltaMaxFraction <= extent length
// (512 KiB for a 4 MiB extent): below that the saving pays for the extra
// record a restore must fetch and the patch it must apply.
inline constexpr uint32_t kDeltaMaxFraction = 8;
// The delta plaintext format (EncodeDeltaPlaintext, DecodeDeltaPlaintext)
// is part of the record format: lib/repo/record.h.
using repo::DecodeDeltaPlaintext;
using repo::DeltaPlaintext;
using repo::EncodeDeltaPlaintext;
using repo::kDeltaPlainVersion;

// What the extent store remembers of one extent.
struct ExtentState {
  crypto::ChunkId id{};  // HMAC of the extent's content
  // IDs of the base chain, oldest (a kData record) first; chain.back() is the
  // immediate base of `id`. Empty when `id` was sent whole. Its size is the
  // chain depth (<= kMaxDeltaChain).
  std::vector<crypto::ChunkId> chain;
  Bytes signature;  // librsync signature of the content (4 KiB blocks)
  friend bool operator==(const ExtentState&, const ExtentState&) = default;
};

// Value encoding (version 1), exposed for tests: version u8 | id (32) |
// depth u8 | depth x id (32) | signature (the rest).
Bytes EncodeExtentState(const ExtentState& state);
// Corruption for anything malformed (a damaged entry is then a miss).
Result<ExtentState> DecodeExtentState(ByteView value);

// Identifies one image across backups: its absolute path, device and inode
// (and for a block device its device number) and the extent size, hashed.
// A recreated image file (new inode) starts afresh.
using ImageKey = std::array<uint8_t, 16>;
ImageKey MakeImageKey(const std::string& abs_path, uint64_t dev, uint64_t ino, uint64_t rdev,
                      uint32_t extent_size);

// The per-extent state in the agent's LMDB environment (DIR/lmdb, shared with
// the file cache; never open both on one environment in one process).
// Thread safety: as FileCache (one thread, or read-only lookups elsewhere).
class ExtentStore {
 public:
  // Opens (creating) the databases "extents" and "extents_pending" in
  // `lmdb_dir`. `no_sync` is for tests only.
  static Result<std::unique_ptr<ExtentStore>> Open(const std::string& lmdb_dir,
                                                   bool no_sync = false);
  ~ExtentStore();

  // The committed state of extent `index`, nullopt when none (or damaged).
  Result<std::optional<ExtentState>> Lookup(const ImageKey& image, uint64_t index) const;

  // One pending change: a new state, or (state == nullopt) forget the extent.
  struct Change {
    uint64_t index = 0;
    std::optional<ExtentState> state;
  };
  // Records changes for `image` in one transaction; invisible to Lookup
  // until PromotePending().
  Status AddPending(const ImageKey& image, const std::vector<Change>& changes);
  // Records that `image` now has `extent_count` extents: promotion forgets
  // committed extents at or past it (a shrunk image).
  Status SetPendingExtentCount(const ImageKey& image, uint64_t extent_count);

  Status ClearPending();
  // Applies every pending change to the committed table, in batches. Call
  // only after the snapshot was committed. Idempotent.
  Status PromotePending();
  // Forgets everything (the vault no longer holds what the store names).
  Status Clear();
  // Committed extents (tests, diagnostics).
  Result<uint64_t> Count() const;

 private:
  ExtentStore() = default;
  Status ClearDb(repo::LmdbDb db);
  std::unique_ptr<repo::LmdbEnv> env_;
  repo::LmdbDb extents_, pending_;
};

struct ImageBackupOptions {
  // Images: regular files or block devices (symlinks to them are followed,
  // e.g. /dev/disk/by-id/...). Absolute or relative to the working directory.
  std::vector<std::string> images;
  // Images read from a point-in-time view (agent/pit.h): image -> what to
  // read (a reflink clone, an LVM snapshot). The image itself still names
  // the extent store's state and the snapshot's entry. And the view's
  // method and time for the snapshot's metadata. Default: read live.
  std::map<std::string, std::string> read_from;
  std::string pit_method;
  uint64_t pit_micros = 0;
  // Extent size; 0 = chunk::kDefaultExtentSize (4 MiB). A power of two in
  // [64 KiB, 1 GiB]. Changing it starts every image afresh.
  uint32_t extent_size = 0;
  // Extents read and processed together (memory bound: about this many
  // extents plus their signatures, deltas and records). Default 4.
  unsigned extents_in_flight = 4;
  // Threads hashing, diffing and sealing a batch. 0 = hardware concurrency,
  // capped at extents_in_flight.
  unsigned workers = 0;
  // Flush after this many record bytes. Default 256 MiB (doc/protocol.md).
  uint64_t flush_every = 256ull << 20;
  int zstd_level = 3;
  // Called with the progress about every 250 ms and once at the end; may
  // be empty (backup.h's BackupProgress).
  std::function<void(const BackupProgress&)> progress;
  // The clock of the snapshot's start and finish times. Default (null): the
  // POSIX Env. Tests pass a simulated one.
  io::Env* clock = nullptr;
};

struct ImageBackupResult {
  std::string snapshot_id;
  crypto::ChunkId root_tree{};
  uint64_t images = 0;
  uint64_t bytes = 0;      // logical bytes of the images
  uint64_t new_bytes = 0;  // plaintext bytes of the records uploaded
  uint64_t new_chunks = 0;
  uint64_t extents_total = 0;
  uint64_t extents_changed = 0;  // differ from the last committed backup (or new)
  uint64_t extents_delta = 0;    // of those, uploaded as kDelta records
  uint64_t extents_hole = 0;     // all-zero, recorded as holes
  uint64_t delta_bytes = 0;      // plaintext bytes of the delta records uploaded
  uint64_t bytes_read = 0;
  uint64_t manifest_size = 0;
  std::vector<std::string> warnings;
  double seconds = 0;
};

// The absolute, normalised image paths, sorted, duplicates dropped;
// InvalidArgument for an empty list, a path that is neither a regular file
// nor a block device, or two images with the same path.
Result<std::vector<std::string>> NormalizeImagePaths(const std::vector<std::string>& images);

// Runs one image backup on an opened session (ideally of kind image).
// `store` may be null: every extent is then sent whole (or deduplicated).
// On success the snapshot is committed and the store's pending state is
// promoted. If the vault refuses the commit because it lacks a chunk (a base
// collected since), the store is cleared and NotFound "...run the backup
// again" is returned.
Result<ImageBackupResult> RunImageBackup(const crypto::DepartmentKeys& keys, ExtentStore* store,
                                         VaultSession* session, const ImageBackupOptions& options);

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_IMAGE_BACKUP_H_
