#include "vault/store/gc.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "lib/base/bloom_filter.h"
#include "lib/crypto/random.h"
#include "lib/repo/pack.h"

namespace cairn::vault {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Filters hold chunks by their index key (department, ID).
repo::ChunkIndexKey Key(uint32_t department, const repo::ChunkId& id) {
  return repo::ChunkKeyOf(department, id);
}

class Collector {
 public:
  Collector(ChunkStore* store, const GcOptions& options) : store_(store), o_(options) {}

  Result<GcReport> Run() {
    report_.dry_run = o_.dry_run;
    CAIRN_ASSIGN_OR_RETURN(report_.index_entries, store_->index()->Count());
    if (!o_.dry_run) {
      CAIRN_RETURN_IF_ERROR(store_->BeginCollection(o_.touch_filter_bytes));
    }
    Status s = Collect();
    if (!o_.dry_run) store_->EndCollection();
    CAIRN_RETURN_IF_ERROR(s);
    return report_;
  }

 private:
  void Progress(const std::string& line) const {
    if (o_.progress) o_.progress(line);
  }
  bool Cancelled() const { return o_.cancelled && o_.cancelled(); }

  Status Collect() {
    // 2. The fence: what sessions learnt before the touch filter existed.
    auto t = Clock::now();
    if (!o_.dry_run && o_.fence) {
      Progress("waiting for backup sessions and commits that began before this run");
      CAIRN_RETURN_IF_ERROR(o_.fence());
    }
    report_.fence_seconds = Since(t);
    // 3. Mark.
    t = Clock::now();
    CAIRN_RETURN_IF_ERROR(Mark());
    report_.mark_seconds = Since(t);
    if (Cancelled()) return Status::Cancelled("garbage collection cancelled");
    // 4. Sweep. Packs sealed now are the only ones whose entries the scan
    // counts exactly: no entry is ever added to a sealed pack.
    t = Clock::now();
    CAIRN_ASSIGN_OR_RETURN(std::vector<ChunkStore::PackInfo> packs, store_->ListPacks());
    for (const auto& p : packs) {
      DepartmentSpace& d = report_.departments[p.department];
      ++d.packs;
      d.stored_bytes += p.size;
      if (p.state == ChunkStore::PackState::kSealed) sealed_[p.id] = {p.department, p.size, 0};
    }
    CAIRN_RETURN_IF_ERROR(Sweep());
    report_.sweep_seconds = Since(t);
    if (Cancelled()) return Status::Cancelled("garbage collection cancelled");
    // 5. Packs.
    t = Clock::now();
    CAIRN_RETURN_IF_ERROR(Packs());
    report_.compact_seconds = Since(t);
    return Status::OK();
  }

  Status Mark() {
    const uint64_t bits =
        BloomFilter::SizeFor(report_.index_entries + 1024, o_.bits_per_key, o_.max_filter_bytes);
    uint64_t seed = 0;
    CAIRN_RETURN_IF_ERROR(
        crypto::SecureRandom(MutableByteView(reinterpret_cast<uint8_t*>(&seed), sizeof(seed))));
    marked_ = std::make_unique<BloomFilter>(bits, 7, seed);
    report_.filter_bytes = marked_->memory_bytes();
    Progress("marking what kept snapshots reference");
    if (o_.references) {
      CAIRN_RETURN_IF_ERROR(
          o_.references([&](uint32_t department, std::span<const repo::ChunkId> ids) -> Status {
            for (const repo::ChunkId& id : ids) marked_->Add(Key(department, id));
            report_.references += ids.size();
            return Cancelled() ? Status::Cancelled("garbage collection cancelled") : Status::OK();
          }));
    }
    // A kept delta keeps its base, and the base's base: passes until none
    // is added (chains are short, kMaxDeltaChain).
    for (int pass = 0; pass < 64; ++pass) {
      uint64_t added = 0;
      report_.delta_records = 0;
      CAIRN_RETURN_IF_ERROR(store_->ForEachDeltaBase(
          [&](uint32_t department, const repo::ChunkId& id, const repo::ChunkId& base) {
            ++report_.delta_records;
            const auto bk = Key(department, base);
            if (marked_->MayContain(Key(department, id)) && !marked_->MayContain(bk)) {
              marked_->Add(bk);
              ++added;
            }
            return true;
          }));
      report_.delta_bases += added;
      if (added == 0) break;
    }
    // Distinct marks: the references, repeats and all, are at most the index.
    report_.false_positive_rate = marked_->FalsePositiveRate(
        std::min(report_.references + report_.delta_bases, report_.index_entries));
    return Status::OK();
  }

  Status Sweep() {
    repo::ChunkIndex::Position pos;
    bool first = true;
    uint64_t scanned = 0;
    while (!Cancelled()) {
      std::vector<ChunkStore::Candidate> candidates;
      bool more = false;
      {
        CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, store_->index()->env()->BeginRead());
        size_t n = 0;
        CAIRN_RETURN_IF_ERROR(store_->index()->ScanFrom(
            txn, pos, [&](const repo::ChunkIndex::Position& p, const repo::ChunkLocation& loc) {
              if (!first && p.department == pos.department && p.id == pos.id) return true;
              if (n == o_.batch) {
                more = true;
                return false;
              }
              ++n;
              pos = p;
              first = false;
              DepartmentSpace& d = report_.departments[p.department];
              ++d.chunks;
              if (marked_->MayContain(Key(p.department, p.id))) {
                Live(p.department, loc);
              } else {
                candidates.push_back({p.department, p.id, loc});
              }
              return true;
            }));
      }
      scanned += candidates.size();
      std::vector<ChunkStore::Candidate> removed;
      if (o_.dry_run) {
        removed = std::move(candidates);
      } else if (!candidates.empty()) {
        CAIRN_ASSIGN_OR_RETURN(removed, store_->RemoveUntouched(candidates));
        if (!removed.empty() && o_.step_for_test) o_.step_for_test("sweep");
        // Kept because a session touched them: live for the pack counts.
        size_t j = 0;
        for (const auto& c : candidates) {
          if (j < removed.size() && removed[j].id == c.id &&
              removed[j].department == c.department) {
            ++j;
            continue;
          }
          ++report_.kept_touched;
          Live(c.department, c.location);
        }
      }
      for (const auto& r : removed) {
        ++report_.entries_removed;
        report_.bytes_unreferenced += r.location.length;
      }
      if (!more) break;
      Progress("swept " + std::to_string(report_.entries_removed) + " unreferenced of " +
               std::to_string(report_.index_entries) + " index entries");
    }
    (void)scanned;
    return Status::OK();
  }

  void Live(uint32_t department, const repo::ChunkLocation& loc) {
    DepartmentSpace& d = report_.departments[department];
    ++d.referenced_chunks;
    d.referenced_bytes += loc.length;
    if (auto it = sealed_.find(loc.pack_id); it != sealed_.end()) it->second.live += loc.length;
  }

  Status Packs() {
    // Per department, in pack order: empty packs are retired; sparse ones
    // are compacted, several into one new pack.
    std::map<uint32_t, std::vector<uint64_t>> sparse;
    for (const auto& [id, p] : sealed_) {
      if (p.live == 0) {
        if (!o_.dry_run) {
          CAIRN_RETURN_IF_ERROR(store_->RetirePack(id));
          if (o_.step_for_test) o_.step_for_test("retire");
        }
        ++report_.packs_retired;
        report_.bytes_freed += p.size;
        report_.departments[p.department].reclaimable_bytes += p.size;  // net: nothing copied
      } else if (static_cast<double>(p.live) < o_.compact_below * static_cast<double>(p.size)) {
        sparse[p.department].push_back(id);
        report_.departments[p.department].reclaimable_bytes += p.size - p.live;
        if (o_.dry_run) {
          ++report_.packs_compacted;
          report_.bytes_copied += p.live;
          report_.bytes_freed += p.size - p.live;  // net of the copy
        }
      }
    }
    if (!o_.dry_run) {
      for (const auto& [department, ids] : sparse) {
        if (Cancelled()) break;
        CAIRN_RETURN_IF_ERROR(Compact(department, ids));
      }
      CAIRN_RETURN_IF_ERROR(Reclaim());
    }
    return Status::OK();
  }

  Status Compact(uint32_t department, const std::vector<uint64_t>& ids) {
    io::Env* env = store_->packs()->env();
    std::vector<ChunkStore::Move> moves;
    std::vector<uint64_t> covered;  // packs whose live records are all in `moves`
    uint64_t bytes = 0;
    auto flush = [&]() -> Status {
      if (!moves.empty()) {
        CAIRN_ASSIGN_OR_RETURN(uint64_t moved, store_->Rewrite(department, moves));
        if (o_.step_for_test) o_.step_for_test("rewrite");
        report_.records_copied += moved;
        report_.bytes_copied += bytes;
      }
      for (uint64_t id : covered) {
        CAIRN_RETURN_IF_ERROR(store_->RetirePack(id));
        if (o_.step_for_test) o_.step_for_test("retire");
        ++report_.packs_compacted;
        ++report_.packs_retired;
        report_.bytes_freed += sealed_[id].size;
      }
      // Net of the copy.
      report_.bytes_freed -= std::min(report_.bytes_freed, covered.empty() ? 0 : bytes);
      moves.clear();
      covered.clear();
      bytes = 0;
      return Status::OK();
    };
    // New packs as large as the store makes them; one pack's records in memory.
    const uint64_t target = store_->pack_target_size();
    for (uint64_t id : ids) {
      if (Cancelled()) break;
      const std::string path = store_->packs()->PackPath(department, id);
      auto reader = repo::PackReader::Open(env, path);
      if (!reader.ok()) {
        report_.damaged.push_back(path + ": " + reader.status().message());
        continue;
      }
      std::vector<ChunkStore::Move> mine;
      uint64_t mine_bytes = 0;
      bool damaged = false;
      for (const repo::PackEntry& e : (*reader)->entries()) {
        auto loc = store_->index()->Lookup(department, e.id);
        if (!loc.ok()) {
          if (loc.status().IsNotFound()) continue;
          return loc.status();
        }
        if (loc->pack_id != id || loc->offset != e.offset || loc->length != e.length) continue;
        ChunkStore::Move m;
        m.id = e.id;
        m.from = *loc;
        Status s = (*reader)->ReadRecord(e, &m.record);
        if (!s.ok()) {
          report_.damaged.push_back(path + ": chunk " + ToHex(e.id) + ": " + s.message());
          damaged = true;
          break;
        }
        mine_bytes += m.record.size();
        mine.push_back(std::move(m));
      }
      if (damaged) continue;  // scrub reports it; the pack stays as it is
      for (auto& m : mine) moves.push_back(std::move(m));
      bytes += mine_bytes;
      covered.push_back(id);
      if (bytes >= target) CAIRN_RETURN_IF_ERROR(flush());
    }
    return flush();
  }

  Status Reclaim() {
    const auto deadline = Clock::now() + o_.reclaim_wait;
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(uint64_t freed, store_->ReclaimRetired());
      if (freed > 0 && o_.step_for_test) o_.step_for_test("reclaim");
      if (store_->retired_waiting() == 0 || Clock::now() >= deadline || Cancelled()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    report_.packs_waiting = store_->retired_waiting();
    return Status::OK();
  }

  struct Sealed {
    uint32_t department = 0;
    uint64_t size = 0;
    uint64_t live = 0;
  };

  ChunkStore* store_;
  const GcOptions& o_;
  GcReport report_;
  std::unique_ptr<BloomFilter> marked_;
  std::map<uint64_t, Sealed> sealed_;
};

}  // namespace

Result<GcReport> CollectGarbage(ChunkStore* store, const GcOptions& options) {
  return Collector(store, options).Run();
}

}  // namespace cairn::vault
