// Scrub: re-reads every sealed pack of a ChunkStore and checks it against
// the index (doc/design.md section 22.4).
//
//   1. per pack, in pack order: the header and footer (PackReader::Open:
//      index_sum, trailer_sum, tiling), then every record the footer lists
//      (record checksum, ID, length, type). A record the index names there
//      that fails is **damaged**; one no entry names is garbage, reported
//      and left to GC. A pack whose footer fails, or whose file is missing,
//      has each record the index names in it read on its own; so has an
//      open pack (its footer is not written yet).
//   2. the index against the packs: every entry naming a scrubbed pack must
//      have been found, consistent, in step 1 (counted per department); when
//      the counts differ, the entries are read one by one to find which.
//
// Reads are paced to `rate_bytes` per second so that backups go on. Nothing
// here writes: repair (VaultService::Scrub) rewrites damaged records.
#ifndef CAIRN_VAULT_STORE_SCRUB_H_
#define CAIRN_VAULT_STORE_SCRUB_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "vault/store/chunk_store.h"

namespace cairn::vault {

struct ScrubOptions {
  // Departments to scrub; empty for all.
  std::vector<uint32_t> departments;
  // Bytes read per second, 0 for as fast as the disk goes.
  uint64_t rate_bytes = 0;
  std::function<bool()> cancelled;
  std::function<void(const std::string&)> progress;
};

struct DamagedRecord {
  uint32_t department = 0;
  repo::ChunkId id{};
  repo::ChunkLocation location;  // where the index says it is
  std::string problem;
};

struct ScrubResult {
  uint64_t packs = 0, packs_damaged = 0;
  uint64_t records = 0;  // records checked
  uint64_t bytes_read = 0;
  uint64_t garbage_damaged = 0;  // damaged records no entry names
  uint64_t index_entries_checked = 0;
  std::vector<DamagedRecord> damaged;  // live records that failed
  std::vector<std::string> pack_problems;
  // Sealed packs whose header or footer failed (or whose file is gone):
  // repair moves their records into new packs. (department, pack ID)
  std::vector<std::pair<uint32_t, uint64_t>> broken_packs;
  double seconds = 0;
  bool cancelled = false;
};

Result<ScrubResult> ScrubStore(ChunkStore* store, const ScrubOptions& options);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_STORE_SCRUB_H_
