// A snapshot's tree, loaded from a vault into memory for restore, verify
// and `ls`.
//
// Loading fetches tree objects breadth first through a RecordStream
// (lib/client/vault_link.h: the vault reads the next parts while these are
// decoded), decrypts and checks each one (tag and chunk
// ID, lib/repo/record.h), decodes it with the untrusted-input decoder of
// lib/repo/tree.h, which refuses entry names with '/', NUL, "." or "..", and
// resolves content lists into a flat list of data references per file.
//
// A damaged or refused object does not stop the load: it is recorded as a
// TreeProblem with the path of the directory or file it belongs to, and the
// rest of the tree loads. Memory: the entries of the whole snapshot (a few
// hundred bytes per entry plus 48 bytes per data chunk of a file).
#ifndef CAIRN_RESTORE_SNAPSHOT_TREE_H_
#define CAIRN_RESTORE_SNAPSHOT_TREE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/client/vault_link.h"
#include "lib/crypto/chunk_id.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"

namespace cairn::restore {

inline constexpr uint32_t kNoParent = UINT32_MAX;

struct TreeNode {
  // For files, entry.content is cleared (see `data`), except in a file
  // with slice references: it is kept for their slice IDs, and then
  // entry.content[i] is the reference of data[i].
  repo::TreeEntry entry;
  uint32_t parent = kNoParent;
  std::string path;  // from the snapshot root, names joined by '/'
  // kDir: children in name order (an incomplete directory lists what loaded).
  std::vector<uint32_t> children;
  // kFile and kImage: the data references, content lists resolved, each
  // with the file offset of its first byte (see SegmentsOf).
  // A slice (repo::RefKind::kSlice) is bytes [chunk_offset, chunk_offset +
  // length) of chunk `id`; anything else is the whole chunk.
  struct Data {
    crypto::ChunkId id;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint32_t chunk_offset = 0;
    bool slice = false;
  };
  std::vector<Data> data;
  // False when a part of this directory or a content list of this file could
  // not be loaded (see SnapshotTree::problems).
  bool complete = true;
};

struct TreeProblem {
  std::string path;  // the directory or file concerned; "" for the root
  crypto::ChunkId id{};
  Status status;
};

struct SnapshotTree {
  std::vector<TreeNode> nodes;
  std::vector<uint32_t> top;  // the root directory's entries
  std::vector<TreeProblem> problems;
  uint64_t objects = 0;  // tree objects and content lists loaded
};

// Loads the tree rooted at `root` through `link`. Fails as a whole only when
// the connection fails; everything else is a problem in the result.
Result<SnapshotTree> LoadTree(client::VaultLink* link, repo::RecordDecoder* decoder,
                              const crypto::ChunkId& root);

// Where the bytes of a data reference go in the file: a chunk that
// straddles holes is split around them. `offset` is TreeNode::Data::offset.
struct Segment {
  uint64_t file_offset = 0;
  uint64_t chunk_offset = 0;
  uint64_t length = 0;
};
std::vector<Segment> SegmentsOf(const repo::TreeEntry& entry, uint64_t offset, uint64_t length);

// The chunk ID the bytes of node.data[i] alone hash to: the reference's
// own, or a slice's slice_id (not its group's).
const crypto::ChunkId& DataIdOf(const TreeNode& node, size_t i);

// The node at `path` ("a/b/c", no leading '/'), or kNoParent if absent.
uint32_t FindNode(const SnapshotTree& tree, std::string_view path);

}  // namespace cairn::restore

#endif  // CAIRN_RESTORE_SNAPSHOT_TREE_H_
