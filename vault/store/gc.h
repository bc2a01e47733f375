// Garbage collection and compaction of a ChunkStore, beside live backups,
// restores and replication (doc/design.md section 22).
//
//   1. touch: the store starts remembering every chunk ID it is asked about
//      or sent (ChunkStore::BeginCollection);
//   2. fence: the caller waits until every backup session and every commit
//      that began before step 1 has ended (GcOptions::fence), so whatever a
//      session learnt before the touch filter existed is in a committed
//      snapshot by now, or never will be;
//   3. mark: every chunk a kept snapshot references (GcOptions::references,
//      the manifests), then the bases of marked deltas, into a Bloom filter
//      whose size is capped: memory does not grow with the repository, and a
//      false positive only keeps garbage;
//   4. sweep: the index is scanned in key order in short transactions; an
//      entry neither marked nor touched is removed (RemoveUntouched);
//   5. packs sealed before the scan that no entry names are retired; those
//      whose live fraction fell below GcOptions::compact_below are compacted:
//      their live records are copied into new packs (ChunkStore::Rewrite),
//      then they are retired; retired files go once no read can hold them.
//
// A dry run does steps 3 and 4 without removing anything and says what a
// run would free. Nothing here takes a lock that a backup waits for.
#ifndef CAIRN_VAULT_STORE_GC_H_
#define CAIRN_VAULT_STORE_GC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "vault/store/chunk_store.h"

namespace cairn::vault {

// Calls `sink` with the chunk IDs every kept snapshot references, per
// department, in any order and with repeats; returns the first error.
using ReferenceSink = std::function<Status(uint32_t department, std::span<const repo::ChunkId>)>;
using ReferenceSource = std::function<Status(const ReferenceSink& sink)>;

struct GcOptions {
  bool dry_run = false;
  // The mark filter: about `bits_per_key` bits per index entry, at most
  // `max_filter_bytes` (128 MiB: 100M chunks at 1% false positives).
  double bits_per_key = 10;
  uint64_t max_filter_bytes = 128ull << 20;
  // The touch filter (IDs sessions used while GC ran): 16 MiB holds 13M
  // IDs at 1%; past that it keeps more garbage, never less.
  uint64_t touch_filter_bytes = 16ull << 20;
  // Compact a sealed pack whose live bytes fall below this fraction.
  double compact_below = 0.5;
  // Index entries scanned per sweep batch (one durable transaction removes
  // the batch's garbage; backups wait only if they touch what it removes).
  size_t batch = 32768;
  // How long the run waits for reads to release retired packs before it
  // leaves them to ChunkStore::ReclaimRetired.
  std::chrono::milliseconds reclaim_wait{std::chrono::seconds(30)};
  ReferenceSource references;
  // Step 2; OK once everything that began before the touch has ended.
  std::function<Status()> fence;
  // Polled between batches; true stops the run where it is (consistent).
  std::function<bool()> cancelled;
  // Called between steps and batches with a one-line status.
  std::function<void(const std::string&)> progress;
  // Tests: called after each step that changes the store: a sweep batch
  // committed, a compaction Rewrite, a pack retired, retired files removed.
  std::function<void(const char* step)> step_for_test;
};

// Space per department (doc/design.md 22.5). Chunks never cross
// departments, so everything a department's packs hold is its own.
struct DepartmentSpace {
  uint64_t packs = 0;
  uint64_t stored_bytes = 0;       // its packs' bytes: what deleting it would free
  uint64_t referenced_bytes = 0;   // records kept snapshots reference
  uint64_t reclaimable_bytes = 0;  // what a run frees (a dry run: would free)
  uint64_t chunks = 0, referenced_chunks = 0;
};

struct GcReport {
  bool dry_run = false;
  uint64_t index_entries = 0;    // before the sweep
  uint64_t references = 0;       // IDs the manifests named (with repeats)
  uint64_t delta_records = 0;    // deltas whose base the vault knows (put_delta_record)
  uint64_t delta_bases = 0;      // bases marked because a kept delta needs them
  uint64_t entries_removed = 0;  // a dry run: that would be
  uint64_t bytes_unreferenced = 0;
  uint64_t kept_touched = 0;   // garbage a session touched during the run
  uint64_t packs_retired = 0;  // empty packs, and compacted ones
  uint64_t packs_compacted = 0;
  uint64_t records_copied = 0, bytes_copied = 0;
  uint64_t bytes_freed = 0;    // pack bytes removed less those copied (a dry run: would be)
  uint64_t packs_waiting = 0;  // retired, removed once reads end
  uint64_t filter_bytes = 0;
  double false_positive_rate = 0;
  std::vector<std::string> damaged;  // records compaction could not read
  double fence_seconds = 0, mark_seconds = 0, sweep_seconds = 0, compact_seconds = 0;
  std::map<uint32_t, DepartmentSpace> departments;
};

// Runs one collection. Unavailable when one is running already.
Result<GcReport> CollectGarbage(ChunkStore* store, const GcOptions& options);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_STORE_GC_H_
