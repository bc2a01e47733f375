// ChunkStore: the vault's store of records, per department: open packs
// being appended to, sealed packs, and the chunk index, kept consistent by
// the write-ordering rules of doc/design.md section 6.
//
//   Put()    appends a record to the department's open pack (nothing durable)
//   Flush()  syncs every pack written since the last flush, then commits the
//            index entries of those records and each pack's committed size
//            in one LMDB transaction. After Flush() returns OK the records
//            are durable and findable, and a snapshot may reference them.
//   Open()   recovers: every pack the catalog lists as open is recovered up
//            to its committed size (damage below it is refused, never cut),
//            surviving records beyond it are indexed, and the pack is sealed.
//
// Where packs live is the PackStore's business (pack_store.h); the
// "packs" database maps pack id -> (department, state, committed size);
// a pack is registered (open, 0 committed) before its file is created, so no
// file exists that the catalog does not know.
//
// Garbage collection (vault/store/gc.h) runs beside all of this without a
// lock that backups wait for. Its side of the store:
//   - while a collection runs, every chunk ID a caller asks about
//     (Contains) or sends (Put) is remembered as touched, before the index
//     is consulted; RemoveUntouched drops an index entry only if it was not
//     touched when it checked, and a touch of an entry being removed waits
//     until the removal is durable, so an ID a session was told is present,
//     or that a commit checked, stays (doc/design.md section 22);
//   - a record that is a delta names its base (Put's `delta_base`, kept in
//     database "delta_bases" beside its index entry), so GC keeps the base
//     while the delta is kept;
//   - Rewrite copies live records into new packs and switches their index
//     entries (compaction, repair); RetirePack marks a pack whose records
//     no entry names any more, and its file is removed only once no read
//     that began before can still hold its old location (read epochs).
//
// Thread-safe: sessions of many departments (and several of one department)
// call Put/Flush concurrently. One mutex per department serialises its
// appends; Flush holds it only to collect work, not during fsync of others.
#ifndef CAIRN_VAULT_STORE_CHUNK_STORE_H_
#define CAIRN_VAULT_STORE_CHUNK_STORE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "lib/base/bloom_filter.h"
#include "lib/io/env.h"
#include "lib/repo/chunk_index.h"
#include "lib/repo/lmdb.h"
#include "lib/repo/pack.h"
#include "vault/store/pack_store.h"

namespace cairn::vault {

struct ChunkStoreOptions {
  // Where packs live. Required; not owned, outlives the store.
  PackStore* packs = nullptr;
  // Seal a pack once it passes this size. Default repo::kDefaultPackTargetSize
  // (32 MiB): few files per TiB, little rewritten by compaction.
  uint64_t pack_target_size = 0;
  Status Sanitize();
};

struct FlushResult {
  uint64_t records = 0;  // records made durable and indexed by this flush
  uint64_t bytes = 0;
};

struct RecoveryReport {
  uint64_t packs_recovered = 0;      // open packs found at start-up
  uint64_t records_indexed = 0;      // durable records that had no index entry yet
  uint64_t bytes_truncated = 0;      // torn tails cut off
  std::vector<std::string> damaged;  // packs refused (damage in committed bytes)
};

class ChunkStore {
 public:
  // Opens the store and recovers open packs. `lmdb` must outlive the store.
  static Result<std::unique_ptr<ChunkStore>> Open(const ChunkStoreOptions& options,
                                                  repo::LmdbEnv* lmdb);
  ~ChunkStore();

  const RecoveryReport& recovery() const { return recovery_; }

  // Appends one record (validated with repo::ParseRecord) for `department`.
  // A chunk the department already stores durably, or has put since the last
  // flush, is not stored twice (returns OK; `stored` false). A delta record
  // names its base (`delta_base`), kept with its index entry for GC.
  Status Put(uint32_t department, ByteView record, bool* stored = nullptr,
             const repo::ChunkId* delta_base = nullptr);

  // Makes everything put for `department` durable and indexed.
  Result<FlushResult> Flush(uint32_t department);

  // Which IDs the department stores durably.
  Result<std::vector<bool>> Contains(uint32_t department, std::span<const repo::ChunkId> ids) const;

  // Reads and checks (ParseRecord, ID) the record of a durable chunk.
  Status Read(uint32_t department, const repo::ChunkId& id, Bytes* record) const;

  // The records of a prefix of `ids` (at least the first, else its error),
  // stopping before the total would pass `max_bytes` or at the first ID that
  // cannot be read. One index transaction; each pack opened once and read in
  // offset order as one batch (io_uring), so a restore's or a replication's
  // batch costs a few system calls, not a few per record. Each record is
  // checked as Read() checks it.
  //
  // `whole_packs`: the caller will read most of every pack it touches (a
  // replication pass): each pack is hinted to the disk once, from the first
  // record read to its end, so that it is read ahead sequentially instead
  // of record by record.
  Result<std::vector<Bytes>> ReadPrefix(uint32_t department, std::span<const repo::ChunkId> ids,
                                        size_t max_bytes, bool whole_packs = false) const;

  // Where ReadPrefix puts the records it is about to read: given their
  // lengths (those of a prefix of the IDs), one buffer of exactly each
  // length. The vault's reply to a restore places them in the reply itself.
  using RecordPlacer =
      std::function<std::vector<MutableByteView>(std::span<const uint32_t> lengths)>;
  // ReadPrefix into the buffers `place` gives: how many records, a prefix
  // of those placed, were read whole and checked. The buffers' contents
  // past that prefix are unspecified.
  Result<size_t> ReadPrefix(uint32_t department, std::span<const repo::ChunkId> ids,
                            size_t max_bytes, bool whole_packs, const RecordPlacer& place) const;

  // An order to read the records of `ids` in: keys[i] for ids[i], in the
  // order of their packs and of their offsets within each pack, so that a
  // reader asking in ascending key order reads each pack front to back
  // (a replication pass; doc/design.md section 13). An ID not held durably
  // gets ~0 (proto::ReplicaOrder::kNotHeld). One index transaction.
  Result<std::vector<uint64_t>> ReadOrder(uint32_t department,
                                          std::span<const repo::ChunkId> ids) const;

  // Packs and their committed bytes, per department (metrics, accounting).
  struct Usage {
    uint64_t packs = 0;
    uint64_t bytes = 0;
  };
  Result<std::map<uint32_t, Usage>> PackUsage() const;

  // Every pack the catalog lists, by ID.
  enum class PackState : uint8_t { kOpen = 1, kSealed = 2, kRetired = 3 };
  struct PackInfo {
    uint64_t id = 0;
    uint32_t department = 0;
    PackState state = PackState::kOpen;
    uint64_t size = 0;  // committed bytes; the file's size once sealed
  };
  Result<std::vector<PackInfo>> ListPacks() const;

  // --- Garbage collection's side (see the top of this file) --------------
  // Starts remembering touched IDs in a filter of `filter_bytes`.
  // Unavailable when a collection is running already.
  Status BeginCollection(uint64_t filter_bytes);
  // Stops remembering; RemoveUntouched refuses afterwards.
  void EndCollection();
  // IDs touched since BeginCollection (an upper bound: the filter's count).
  uint64_t touched_count() const;
  struct Candidate {
    uint32_t department = 0;
    repo::ChunkId id{};
    repo::ChunkLocation location;
  };
  // Removes the index entries (and delta bases) of the candidates that
  // were not touched since BeginCollection and still name the same
  // location, in one transaction under the touch mutex. Returns those
  // removed.
  Result<std::vector<Candidate>> RemoveUntouched(std::span<const Candidate> candidates);
  // Calls fn(department, id, base) for every delta record with a known base.
  Status ForEachDeltaBase(
      const std::function<bool(uint32_t, const repo::ChunkId&, const repo::ChunkId&)>& fn) const;

  // A copy of a live record to write elsewhere: compaction moves records
  // out of a mostly dead pack, repair replaces a damaged one.
  struct Move {
    repo::ChunkId id{};
    repo::ChunkLocation from;  // where the index says it is now
    Bytes record;              // checked: ParseRecord and the ID
  };
  // Writes the records into one new pack of `department`, syncs and seals
  // it, then, in one transaction, records it sealed and points each index
  // entry that still names `from` at the copy. Returns how many moved.
  Result<uint64_t> Rewrite(uint32_t department, std::span<const Move> moves);
  // Marks a sealed pack retired (no index entry names it any more); its
  // file is removed by ReclaimRetired once no read that began before can
  // still hold a location in it. A crash in between is finished by Open.
  Status RetirePack(uint64_t pack_id);
  // Removes the files (then rows) of retired packs no read can hold.
  // Returns the bytes freed.
  Result<uint64_t> ReclaimRetired();
  // Retired packs still waiting for reads to finish.
  size_t retired_waiting() const;

  // Seals every open pack (shutdown).
  Status SealAll();

  repo::ChunkIndex* index() { return index_.get(); }
  PackStore* packs() const { return options_.packs; }
  uint64_t pack_target_size() const { return options_.pack_target_size; }

 private:
  struct OpenPack;
  struct Department;
  // Cuts the department's open and full packs back to what was synced
  // (PackWriter::Abandon), before they are dropped. Holds dept->mu.
  void AbandonUnflushed(Department* dept);
  // A read in progress holds the epoch it began in (Read, ReadPrefix).
  class ReadEpoch;
  uint64_t EnterRead() const;
  void ExitRead(uint64_t epoch) const;
  // ReadPrefix(whole_packs): true the first time a pack is asked about.
  bool FirstHint(uint32_t department, uint64_t pack) const;
  // Adds the IDs to the touched filter while a collection runs.
  void Touch(uint32_t department, std::span<const repo::ChunkId> ids) const;
  // RemoveUntouched's transaction: removes the entries that still name
  // their location, and their delta bases.
  Result<std::vector<Candidate>> RemoveEntries(std::span<const Candidate* const> candidates);

  ChunkStore(ChunkStoreOptions options, repo::LmdbEnv* lmdb);
  Status Recover();
  Result<Department*> GetDepartment(uint32_t department);
  // Registers a new pack in the catalog, then creates its file.
  Result<std::unique_ptr<OpenPack>> CreatePack(uint32_t department);
  // The department's next open pack. Caller holds the department's mutex.
  Status StartPack(uint32_t department, Department* dept);
  Status SealPack(uint32_t department, OpenPack* pack);
  Result<uint64_t> NextPackId();

  ChunkStoreOptions options_;
  repo::LmdbEnv* lmdb_;
  repo::LmdbDb packs_db_;
  repo::LmdbDb meta_db_;
  repo::LmdbDb bases_db_;
  std::unique_ptr<repo::ChunkIndex> index_;
  RecoveryReport recovery_;

  mutable std::mutex mu_;  // guards departments_
  std::map<uint32_t, std::unique_ptr<Department>> departments_;
  std::mutex pack_id_mu_;

  // GC: the touched filter (non-null while a collection runs).
  // While RemoveUntouched commits, the keys it is removing: a Touch of one
  // of them waits (removal_done_) until the removal is durable, so that the
  // index lookup after the touch sees it gone. Other touches never wait.
  mutable std::mutex gc_mu_;
  mutable std::condition_variable removal_done_;
  std::unique_ptr<BloomFilter> touched_;
  mutable uint64_t touched_count_ = 0;
  std::set<repo::ChunkIndexKey> removing_;
  uint64_t removal_generation_ = 0;  // one more after each removal

  // ReadPrefix(whole_packs): the packs hinted already, oldest first (a
  // bounded memory of the last few hundred).
  mutable std::mutex hinted_mu_;
  mutable std::deque<std::pair<uint32_t, uint64_t>> hinted_;

  // Read epochs and packs waiting to be removed.
  mutable std::mutex epoch_mu_;
  mutable uint64_t epoch_ = 1;
  mutable std::map<uint64_t, uint64_t> readers_;  // epoch -> reads in progress
  struct Retired {
    uint64_t pack_id;
    uint32_t department;
    uint64_t epoch;
  };
  std::vector<Retired> retired_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_STORE_CHUNK_STORE_H_
