// Reads what a restore wrote back from the disk and recomputes every
// chunk's ID (HMAC-SHA256 under the department's ID key) against the
// snapshot's tree: the proof a drill gives that the bytes on the drill
// host's disk are the bytes that were backed up, not only that the vault
// sent sound records.
//
// For every regular file and image of the tree (hard links share their
// first name's content): the size must match, each data reference's bytes
// (split around holes, SegmentsOf) must hash to its chunk ID, and each hole
// must read as zeros. Files are opened below `root` with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): no link is followed, restored or
// not. A mismatch, a missing or unreadable file is a Damage naming the
// path; the comparison goes on.
#ifndef CAIRN_RESTORE_COMPARE_H_
#define CAIRN_RESTORE_COMPARE_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/crypto/keys.h"
#include "restore/restorer.h"
#include "restore/snapshot_tree.h"

namespace cairn::restore {

struct CompareResult {
  uint64_t files = 0;   // regular files and images compared
  uint64_t bytes = 0;   // content bytes read back
  uint64_t chunks = 0;  // chunk IDs recomputed
  std::vector<Damage> mismatches;
};

struct CompareTarget {
  // A directory restore: the files are at root/<node path>.
  std::string root;
  // An image restored as one file: that file (root is then unused).
  std::string image_file;
  // Paths (from the snapshot root) the restore already reported damaged:
  // not compared.
  std::set<std::string> skip;
};

// The bytes of node.data[i] as the file open at `fd` holds them (split
// around holes, SegmentsOf) into *out. False when the file ends before
// them; an error (naming `path`) when a read fails.
Result<bool> ReadDataOnDisk(int fd, const TreeNode& node, size_t i, const std::string& path,
                            Bytes* out);

// Fails as a whole only on an error that stops every comparison (the root
// cannot be opened, an OpenSSL failure).
Result<CompareResult> CompareWithTree(const SnapshotTree& tree, const crypto::SecretKey& id_key,
                                      const CompareTarget& target);

}  // namespace cairn::restore

#endif  // CAIRN_RESTORE_COMPARE_H_
