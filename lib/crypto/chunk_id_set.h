// A set of chunk IDs that costs little more than the IDs themselves.
//
// A backup remembers every chunk ID it has referenced: to send each chunk
// once, and as the snapshot's manifest. A node-based hash set spends about
// 56 bytes per 32-byte ID (48 MB at a million files); this one keeps most
// IDs in one sorted run and only the newest in a small hash set, which is
// merged into the run when it outgrows an eighth of it (so the merging
// costs a few moves per ID in all).
#ifndef CAIRN_LIB_CRYPTO_CHUNK_ID_SET_H_
#define CAIRN_LIB_CRYPTO_CHUNK_ID_SET_H_

#include <cstddef>
#include <deque>
#include <unordered_set>
#include <vector>

#include "lib/crypto/chunk_id.h"

namespace cairn::crypto {

class ChunkIdSet {
 public:
  // Adds `id`; true when it was not in the set.
  bool Insert(const ChunkId& id);
  bool Contains(const ChunkId& id) const;
  size_t size() const { return sorted_.size() + recent_.size(); }
  bool empty() const { return size() == 0; }

  // Empties the set into a sorted vector of its IDs.
  std::vector<ChunkId> TakeSorted();

 private:
  void Fold();
  // A deque: growing it moves nothing, so the set never holds two copies.
  std::deque<ChunkId> sorted_;
  std::unordered_set<ChunkId, ChunkIdHash> recent_;
};

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_CHUNK_ID_SET_H_
