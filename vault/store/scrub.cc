#include "vault/store/scrub.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "lib/repo/pack.h"

namespace cairn::vault {
namespace {

using Clock = std::chrono::steady_clock;

// Sleeps so that `bytes` since `start` stay within `rate` per second.
void Pace(Clock::time_point start, uint64_t bytes, uint64_t rate) {
  if (rate == 0) return;
  const auto due = start + std::chrono::microseconds(bytes * 1'000'000 / rate);
  if (due > Clock::now()) std::this_thread::sleep_until(due);
}

class Scrubber {
 public:
  Scrubber(ChunkStore* store, const ScrubOptions& options) : store_(store), o_(options) {}

  Result<ScrubResult> Run() {
    start_ = Clock::now();
    CAIRN_ASSIGN_OR_RETURN(std::vector<ChunkStore::PackInfo> packs, store_->ListPacks());
    std::set<uint32_t> wanted(o_.departments.begin(), o_.departments.end());
    std::vector<ChunkStore::PackInfo> to_scrub;
    for (const auto& p : packs) {
      if (p.state == ChunkStore::PackState::kRetired) continue;
      if (!wanted.empty() && !wanted.count(p.department)) continue;
      to_scrub.push_back(p);
      scrubbed_[p.id] = p.department;
    }
    for (size_t i = 0; i < to_scrub.size(); ++i) {
      if (Cancelled()) break;
      CAIRN_RETURN_IF_ERROR(ScrubPack(to_scrub[i]));
      ++r_.packs;
      if (o_.progress && (i % 16 == 15 || i + 1 == to_scrub.size())) {
        o_.progress("scrubbed " + std::to_string(i + 1) + " of " + std::to_string(to_scrub.size()) +
                    " packs, " + std::to_string(r_.bytes_read >> 20) + " MiB, " +
                    std::to_string(r_.damaged.size()) + " damaged records");
      }
    }
    for (const auto& [department, ids] : open_) {
      if (Cancelled()) break;
      CAIRN_RETURN_IF_ERROR(ReadIndexed(department, [&](const repo::ChunkLocation& l) {
        if (!ids.count(l.pack_id)) return false;
        ++consistent_[department];
        return true;
      }));
    }
    if (!r_.cancelled) CAIRN_RETURN_IF_ERROR(CheckIndex(wanted));
    r_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    return r_;
  }

 private:
  bool Cancelled() {
    if (o_.cancelled && o_.cancelled()) r_.cancelled = true;
    return r_.cancelled;
  }

  void Damaged(uint32_t department, const repo::ChunkId& id, const repo::ChunkLocation& loc,
               std::string problem) {
    if (reported_.insert({department, id}).second) {
      r_.damaged.push_back({department, id, loc, std::move(problem)});
    }
  }

  Status ScrubPack(const ChunkStore::PackInfo& p) {
    io::Env* env = store_->packs()->env();
    const std::string path = store_->packs()->PackPath(p.department, p.id);
    if (p.state == ChunkStore::PackState::kOpen) {
      // No footer yet: what the index names in it is read one by one, in
      // one pass over the department's entries for all its open packs.
      open_[p.department].insert(p.id);
      return Status::OK();
    }
    auto reader = repo::PackReader::Open(env, path);
    if (!reader.ok()) {
      // Still there (not retired by GC meanwhile)? Then its footer, or the
      // file, is damaged: read what the index names in it one by one.
      if (!StillSealed(p.id)) return Status::OK();
      ++r_.packs_damaged;
      r_.pack_problems.push_back(path + ": " + reader.status().message());
      r_.broken_packs.push_back({p.department, p.id});
      return ReadIndexed(p.department, [&](const repo::ChunkLocation& l) {
        if (l.pack_id != p.id) return false;
        ++consistent_[p.department];
        return true;
      });
    }
    bool pack_bad = false;
    Bytes record;
    // One read transaction for the pack's lookups (short: one pack).
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, store_->index()->env()->BeginRead());
    for (const repo::PackEntry& e : (*reader)->entries()) {
      if (Cancelled()) return Status::OK();
      Status s = (*reader)->ReadRecord(e, &record);
      r_.bytes_read += e.length;
      ++r_.records;
      Pace(start_, r_.bytes_read, o_.rate_bytes);
      auto loc = store_->index()->Lookup(txn, p.department, e.id);
      if (!loc.ok() && !loc.status().IsNotFound()) return loc.status();
      const bool live =
          loc.ok() && loc->pack_id == p.id && loc->offset == e.offset && loc->length == e.length;
      if (live) ++consistent_[p.department];
      if (s.ok()) continue;
      pack_bad = true;
      if (live) {
        Damaged(p.department, e.id, *loc, s.message());
      } else {
        ++r_.garbage_damaged;
      }
    }
    if (pack_bad) {
      ++r_.packs_damaged;
      r_.pack_problems.push_back(path + ": damaged records");
    }
    return Status::OK();
  }

  bool StillSealed(uint64_t pack_id) {
    auto packs = store_->ListPacks();
    if (!packs.ok()) return true;
    for (const auto& p : *packs) {
      if (p.id == pack_id) return p.state == ChunkStore::PackState::kSealed;
    }
    return false;
  }

  // Reads, one by one, the records the index names in the department
  // where `select` holds; damaged ones are reported.
  Status ReadIndexed(uint32_t department,
                     const std::function<bool(const repo::ChunkLocation&)>& select) {
    repo::ChunkIndex::Position pos{department, {}};
    std::vector<std::pair<repo::ChunkId, repo::ChunkLocation>> batch;
    bool done = false, first = true;
    while (!done) {
      batch.clear();
      {
        CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, store_->index()->env()->BeginRead());
        size_t n = 0;
        done = true;
        CAIRN_RETURN_IF_ERROR(store_->index()->ScanFrom(
            txn, pos, [&](const repo::ChunkIndex::Position& at, const repo::ChunkLocation& l) {
              if (at.department != department) return false;
              if (!first && at.id == pos.id) return true;
              if (++n > 65536) {
                done = false;
                return false;
              }
              pos = at;
              first = false;
              if (select(l)) batch.push_back({at.id, l});
              return true;
            }));
      }
      Bytes record;
      for (const auto& [id, l] : batch) {
        if (Cancelled()) return Status::OK();
        ++r_.index_entries_checked;
        Status s = store_->Read(department, id, &record);
        r_.bytes_read += l.length;
        Pace(start_, r_.bytes_read, o_.rate_bytes);
        if (s.ok()) continue;
        // Removed by GC or moved by compaction meanwhile: not this entry's fault.
        auto now = store_->index()->Lookup(department, id);
        if (!now.ok() || *now != l) continue;
        Damaged(department, id, l, s.message());
      }
    }
    return Status::OK();
  }

  // Step 2: every index entry naming a scrubbed pack was met, consistent.
  Status CheckIndex(const std::set<uint32_t>& wanted) {
    std::map<uint32_t, uint64_t> indexed;
    std::set<uint32_t> missing_pack;  // departments with entries naming no pack
    CAIRN_ASSIGN_OR_RETURN(std::vector<ChunkStore::PackInfo> packs, store_->ListPacks());
    std::set<uint64_t> known;
    for (const auto& p : packs) known.insert(p.id);
    repo::ChunkIndex::Position pos;
    bool first = true, more = true;
    while (more) {
      more = false;
      CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, store_->index()->env()->BeginRead());
      size_t n = 0;
      CAIRN_RETURN_IF_ERROR(store_->index()->ScanFrom(
          txn, pos, [&](const repo::ChunkIndex::Position& at, const repo::ChunkLocation& l) {
            if (!first && at.department == pos.department && at.id == pos.id) return true;
            if (++n > 65536) {
              more = true;
              return false;
            }
            pos = at;
            first = false;
            if (!wanted.empty() && !wanted.count(at.department)) return true;
            if (scrubbed_.count(l.pack_id)) ++indexed[at.department];
            if (!known.count(l.pack_id)) missing_pack.insert(at.department);
            return true;
          }));
    }
    for (const auto& [department, count] : indexed) {
      if (count == consistent_[department] && !missing_pack.count(department)) continue;
      // Some entry names a place no pack's footer agrees with (or GC and
      // compaction moved entries meanwhile): read them one by one.
      const std::map<uint64_t, uint32_t>& scrubbed = scrubbed_;
      CAIRN_RETURN_IF_ERROR(ReadIndexed(department, [&](const repo::ChunkLocation& l) {
        return scrubbed.count(l.pack_id) > 0 || !known.count(l.pack_id);
      }));
    }
    for (uint32_t department : missing_pack) {
      if (indexed.count(department)) continue;
      CAIRN_RETURN_IF_ERROR(ReadIndexed(
          department, [&](const repo::ChunkLocation& l) { return !known.count(l.pack_id); }));
    }
    return Status::OK();
  }

  ChunkStore* store_;
  const ScrubOptions& o_;
  ScrubResult r_;
  Clock::time_point start_;
  std::map<uint64_t, uint32_t> scrubbed_;        // pack -> department
  std::map<uint32_t, uint64_t> consistent_;      // live records found, per department
  std::map<uint32_t, std::set<uint64_t>> open_;  // open packs, per department
  std::set<std::pair<uint32_t, repo::ChunkId>> reported_;
};

}  // namespace

Result<ScrubResult> ScrubStore(ChunkStore* store, const ScrubOptions& options) {
  return Scrubber(store, options).Run();
}

}  // namespace cairn::vault
