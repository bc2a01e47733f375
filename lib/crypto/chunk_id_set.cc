#include "lib/crypto/chunk_id_set.h"

#include <algorithm>

namespace cairn::crypto {
namespace {

// The hash set is folded into the sorted run when it holds this many IDs,
// or an eighth of the run, whichever is more.
constexpr size_t kMinRecent = 4096;

}  // namespace

bool ChunkIdSet::Contains(const ChunkId& id) const {
  return recent_.contains(id) || std::binary_search(sorted_.begin(), sorted_.end(), id);
}

bool ChunkIdSet::Insert(const ChunkId& id) {
  if (std::binary_search(sorted_.begin(), sorted_.end(), id)) return false;
  if (!recent_.insert(id).second) return false;
  if (recent_.size() >= std::max(kMinRecent, sorted_.size() / 8)) Fold();
  return true;
}

void ChunkIdSet::Fold() {
  const size_t old = sorted_.size();
  sorted_.insert(sorted_.end(), recent_.begin(), recent_.end());
  recent_ = {};  // frees its buckets too
  std::sort(sorted_.begin() + static_cast<std::ptrdiff_t>(old), sorted_.end());
  std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<std::ptrdiff_t>(old),
                     sorted_.end());
}

std::vector<ChunkId> ChunkIdSet::TakeSorted() {
  Fold();
  std::vector<ChunkId> out(sorted_.begin(), sorted_.end());
  sorted_ = {};
  return out;
}

}  // namespace cairn::crypto
