// The manifest a backup session receives (the chunk IDs its snapshot will
// name), kept in bounded memory: past `memory_ids` IDs it spills to a file
// in the vault's data directory. A session's memory is therefore the same
// for a 1,000-file and a 100M-chunk backup, and an agent that sends a huge
// manifest and disappears costs disk until the session expires, not RAM.
//
// The spill file is scratch: it is never synced, and it is removed when the
// buffer is cleared or destroyed (and, after a crash, at the next start:
// an agent re-sends its manifest before it commits). Not thread-safe: a
// session is used by one connection at a time.
#ifndef CAIRN_VAULT_SERVICE_MANIFEST_BUFFER_H_
#define CAIRN_VAULT_SERVICE_MANIFEST_BUFFER_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lib/crypto/chunk_id.h"
#include "lib/io/env.h"
#include "vault/catalog/catalog.h"

namespace cairn::vault {

class ManifestBuffer {
 public:
  // `spill_path`: where the IDs past `memory_ids` go. `env` outlives this.
  ManifestBuffer(io::Env* env, std::string spill_path, size_t memory_ids);
  ~ManifestBuffer();
  ManifestBuffer(const ManifestBuffer&) = delete;
  ManifestBuffer& operator=(const ManifestBuffer&) = delete;

  Status Append(std::span<const crypto::ChunkId> ids);
  uint64_t size() const { return spilled_ + memory_.size(); }
  // IDs held in memory (for tests and accounting).
  size_t in_memory() const { return memory_.size(); }
  // Every ID, in order, in batches; stops at (and returns) the first error.
  ManifestReader Reader() const;
  // Forgets every ID and removes the spill file.
  void Clear();

 private:
  io::Env* const env_;
  const std::string spill_path_;
  const size_t memory_ids_;
  std::vector<crypto::ChunkId> memory_;
  std::unique_ptr<io::WritableFile> spill_;
  uint64_t spilled_ = 0;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_SERVICE_MANIFEST_BUFFER_H_
