#include "vault/store/chunk_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <unordered_set>

#include "lib/crypto/random.h"

namespace cairn::vault {
namespace {

constexpr uint8_t kPackOpen = 1;
constexpr uint8_t kPackSealed = 2;
constexpr uint8_t kPackRetired = 3;
constexpr size_t kPackRowSize = 13;  // department u32 | state u8 | committed u64

std::array<uint8_t, 8> PackKey(uint64_t pack_id) {
  std::array<uint8_t, 8> k;
  for (int i = 0; i < 8; ++i) k[i] = static_cast<uint8_t>(pack_id >> (56 - 8 * i));
  return k;
}

uint64_t PackIdFromKey(ByteView k) {
  uint64_t id = 0;
  for (uint8_t b : k) id = id << 8 | b;
  return id;
}

struct PackRow {
  uint32_t department = 0;
  uint8_t state = kPackOpen;
  uint64_t committed = 0;
};

std::array<uint8_t, kPackRowSize> EncodeRow(const PackRow& r) {
  std::array<uint8_t, kPackRowSize> v;
  EncodeFixed32(v.data(), r.department);
  v[4] = r.state;
  EncodeFixed64(v.data() + 5, r.committed);
  return v;
}

Result<PackRow> DecodeRow(ByteView v) {
  if (v.size() != kPackRowSize || v[4] < kPackOpen || v[4] > kPackRetired) {
    return Status::Corruption("pack catalog row is malformed");
  }
  return PackRow{DecodeFixed32(v.data()), v[4], DecodeFixed64(v.data() + 5)};
}

Status PutRow(repo::LmdbTxn& txn, repo::LmdbDb db, uint64_t pack_id, const PackRow& row) {
  auto k = PackKey(pack_id);
  auto v = EncodeRow(row);
  return txn.Put(db, k, v);
}

// The key of a chunk in "delta_bases" and the touch filter: as in the index.
using repo::ChunkKeyOf;

uint32_t LocationFlags(const repo::PackEntry& e) {
  return static_cast<uint32_t>(e.type) | static_cast<uint32_t>(e.flags) << 8;
}

}  // namespace

Status ChunkStoreOptions::Sanitize() {
  if (packs == nullptr) return Status::InvalidArgument("chunk store: no pack store");
  if (pack_target_size == 0) pack_target_size = repo::kDefaultPackTargetSize;
  if (pack_target_size < (1u << 20)) {
    return Status::InvalidArgument("chunk store: pack_target_size below 1 MiB");
  }
  return Status::OK();
}

struct ChunkStore::OpenPack {
  uint64_t id = 0;
  std::unique_ptr<repo::PackWriter> writer;
};

struct ChunkStore::Department {
  std::mutex mu;
  std::unique_ptr<OpenPack> open;                // being appended to
  std::vector<std::unique_ptr<OpenPack>> full;   // past the target size; sealed at next flush
  std::vector<repo::ChunkIndex::Entry> pending;  // put since the last flush
  std::vector<std::pair<repo::ChunkId, repo::ChunkId>> pending_bases;  // delta -> base
  std::unordered_set<repo::ChunkId, crypto::ChunkIdHash> pending_ids;
};

ChunkStore::ChunkStore(ChunkStoreOptions options, repo::LmdbEnv* lmdb)
    : options_(std::move(options)), lmdb_(lmdb) {}

ChunkStore::~ChunkStore() = default;

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const ChunkStoreOptions& options,
                                                     repo::LmdbEnv* lmdb) {
  ChunkStoreOptions opts = options;
  CAIRN_RETURN_IF_ERROR(opts.Sanitize());
  std::unique_ptr<ChunkStore> store(new ChunkStore(std::move(opts), lmdb));
  CAIRN_ASSIGN_OR_RETURN(store->packs_db_, lmdb->OpenDb("packs"));
  CAIRN_ASSIGN_OR_RETURN(store->meta_db_, lmdb->OpenDb("meta"));
  CAIRN_ASSIGN_OR_RETURN(store->bases_db_, lmdb->OpenDb("delta_bases"));
  CAIRN_ASSIGN_OR_RETURN(store->index_, repo::ChunkIndex::Open(lmdb));
  CAIRN_RETURN_IF_ERROR(store->Recover());
  return store;
}

Result<uint64_t> ChunkStore::NextPackId() {
  std::lock_guard<std::mutex> lock(pack_id_mu_);
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
  uint64_t next = 1;
  auto cur = txn.Get(meta_db_, AsBytes("next_pack_id"));
  if (cur.ok() && cur->size() == 8) {
    next = DecodeFixed64(cur->data());
  } else if (!cur.ok() && !cur.status().IsNotFound()) {
    return cur.status();
  }
  uint8_t v[8];
  EncodeFixed64(v, next + 1);
  CAIRN_RETURN_IF_ERROR(txn.Put(meta_db_, AsBytes("next_pack_id"), ByteView(v, 8)));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return next;
}

Status ChunkStore::Recover() {
  struct Found {
    uint64_t id;
    PackRow row;
  };
  std::vector<Found> open;
  CAIRN_ASSIGN_OR_RETURN(std::vector<PackInfo> packs, ListPacks());
  for (const PackInfo& p : packs) {
    if (p.state == PackState::kOpen || p.state == PackState::kRetired) {
      open.push_back({p.id, PackRow{p.department, static_cast<uint8_t>(p.state), p.size}});
    }
  }
  io::Env* env = options_.packs->env();
  // Retired packs (no index entry names them; doc/design.md 22.3): no read
  // can hold them across a restart, so their removal is finished now.
  for (const Found& f : open) {
    if (f.row.state != kPackRetired) continue;
    const std::string path = options_.packs->PackPath(f.row.department, f.id);
    if (env->FileExists(path)) {
      CAIRN_RETURN_IF_ERROR(env->RemoveFile(path));
      CAIRN_RETURN_IF_ERROR(env->SyncDir(options_.packs->PackDir(f.row.department)));
    }
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
    auto k = PackKey(f.id);
    CAIRN_RETURN_IF_ERROR(txn.Delete(packs_db_, k));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
    spdlog::info("removed retired pack {}", path);
  }
  std::erase_if(open, [](const Found& f) { return f.row.state == kPackRetired; });
  for (const Found& f : open) {
    std::string path = options_.packs->PackPath(f.row.department, f.id);
    ++recovery_.packs_recovered;
    if (!env->FileExists(path)) {
      if (f.row.committed > 0) {
        recovery_.damaged.push_back(path + ": missing, but " + std::to_string(f.row.committed) +
                                    " bytes of it were committed");
        continue;
      }
      // Registered, then the crash came before the file was created.
      CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
      auto k = PackKey(f.id);
      CAIRN_RETURN_IF_ERROR(txn.Delete(packs_db_, k));
      CAIRN_RETURN_IF_ERROR(txn.Commit());
      continue;
    }
    auto rec = repo::RecoverPack(env, path, f.row.committed);
    if (!rec.ok()) {
      if (!rec.status().IsCorruption()) return rec.status();
      spdlog::error("pack recovery refused: {}", rec.status().ToString());
      recovery_.damaged.push_back(rec.status().message());
      continue;
    }
    recovery_.bytes_truncated += rec->original_size - rec->recovered_size;
    if (!rec->header_valid) {
      CAIRN_RETURN_IF_ERROR(env->RemoveFile(path));
      CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
      auto k = PackKey(f.id);
      CAIRN_RETURN_IF_ERROR(txn.Delete(packs_db_, k));
      CAIRN_RETURN_IF_ERROR(txn.Commit());
      continue;
    }
    if (rec->header.department_id != f.row.department || rec->header.pack_id != f.id) {
      recovery_.damaged.push_back(path + ": header names another pack or department");
      continue;
    }
    // Records past the committed size survived and are durable now (recovery
    // synced them): index them, so an agent's resumed session need not
    // send them again (doc/design.md 7.4).
    std::vector<repo::ChunkIndex::Entry> entries;
    for (const auto& e : rec->entries) {
      if (e.offset + e.length <= f.row.committed) continue;
      entries.push_back({e.id, repo::ChunkLocation{f.id, e.offset, e.length, LocationFlags(e)}});
    }
    if (!rec->was_sealed) {
      CAIRN_ASSIGN_OR_RETURN(auto writer,
                             repo::PackWriter::Reopen(env, path, rec->header, rec->entries));
      CAIRN_RETURN_IF_ERROR(writer->Seal());
    }
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
    CAIRN_RETURN_IF_ERROR(index_->Insert(txn, f.row.department, entries));
    CAIRN_RETURN_IF_ERROR(
        PutRow(txn, packs_db_, f.id, PackRow{f.row.department, kPackSealed, rec->recovered_size}));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
    recovery_.records_indexed += entries.size();
  }
  if (recovery_.packs_recovered > 0) {
    spdlog::info(
        "recovered {} open packs: {} records indexed, {} bytes of torn tails cut, {} refused",
        recovery_.packs_recovered, recovery_.records_indexed, recovery_.bytes_truncated,
        recovery_.damaged.size());
  }
  return Status::OK();
}

Result<ChunkStore::Department*> ChunkStore::GetDepartment(uint32_t department) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& d = departments_[department];
  if (!d) d = std::make_unique<Department>();
  return d.get();
}

Result<std::unique_ptr<ChunkStore::OpenPack>> ChunkStore::CreatePack(uint32_t department) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, NextPackId());
  {
    // Register first: a file the catalog does not know can never exist.
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
    CAIRN_RETURN_IF_ERROR(PutRow(txn, packs_db_, id, PackRow{department, kPackOpen, 0}));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
  CAIRN_RETURN_IF_ERROR(options_.packs->PrepareDepartment(department));
  CAIRN_ASSIGN_OR_RETURN(
      auto writer,
      repo::PackWriter::Create(options_.packs->env(), options_.packs->PackPath(department, id),
                               {repo::kPackVersion, department, id}));
  return std::make_unique<OpenPack>(OpenPack{id, std::move(writer)});
}

void ChunkStore::AbandonUnflushed(Department* dept) {
  auto abandon = [](OpenPack* p) {
    // A truncation that fails leaves the tail to start-up recovery, as before.
    if (Status s = p->writer->Abandon(); !s.ok()) {
      spdlog::warn("{}; start-up recovery will cut it", s.message());
    }
  };
  if (dept->open) abandon(dept->open.get());
  for (auto& p : dept->full) abandon(p.get());
}

Status ChunkStore::StartPack(uint32_t department, Department* dept) {
  CAIRN_ASSIGN_OR_RETURN(dept->open, CreatePack(department));
  return Status::OK();
}

Status ChunkStore::Put(uint32_t department, ByteView record, bool* stored,
                       const repo::ChunkId* delta_base) {
  if (stored) *stored = false;
  CAIRN_ASSIGN_OR_RETURN(repo::RecordView view, repo::ParseRecord(record));
  const repo::ChunkId& id = view.header.id;
  if (delta_base != nullptr && view.header.type != repo::RecordType::kDelta) {
    return Status::InvalidArgument("a delta base named for a record that is not a delta");
  }
  CAIRN_ASSIGN_OR_RETURN(Department * dept, GetDepartment(department));
  std::lock_guard<std::mutex> lock(dept->mu);
  if (dept->pending_ids.count(id)) return Status::OK();
  // Before the index is asked: an entry GC removes after this point was
  // not removed (RemoveUntouched), one removed before is stored again.
  Touch(department, std::span<const repo::ChunkId>(&id, 1));
  auto existing = index_->Lookup(department, id);
  if (existing.ok()) return Status::OK();
  if (!existing.status().IsNotFound()) return existing.status();
  auto poisoned = [&](const Status& s) {
    // The pack is poisoned (doc/design.md 6.4): nothing since the last flush
    // can be trusted. Drop it, cut back to what was synced (a full disk
    // gets its space back at once), and the agent re-sends what the vault
    // does not report as stored. A pack that cannot be made (a full disk, a
    // cluster that does not answer) drops the unflushed packs too: their
    // writes may have failed the same way.
    AbandonUnflushed(dept);
    dept->open.reset();
    dept->full.clear();
    dept->pending.clear();
    dept->pending_bases.clear();
    dept->pending_ids.clear();
    return s;
  };
  if (!dept->open) {
    if (Status s = StartPack(department, dept); !s.ok()) return poisoned(s);
  }
  auto entry = dept->open->writer->Append(record);
  if (!entry.ok()) return poisoned(entry.status());
  dept->pending.push_back({id, repo::ChunkLocation{dept->open->id, entry->offset, entry->length,
                                                   LocationFlags(*entry)}});
  if (delta_base != nullptr) dept->pending_bases.push_back({id, *delta_base});
  dept->pending_ids.insert(id);
  if (dept->open->writer->size() >= options_.pack_target_size) {
    dept->full.push_back(std::move(dept->open));
  }
  if (stored) *stored = true;
  return Status::OK();
}

Result<FlushResult> ChunkStore::Flush(uint32_t department) {
  CAIRN_ASSIGN_OR_RETURN(Department * dept, GetDepartment(department));
  std::lock_guard<std::mutex> lock(dept->mu);
  FlushResult result;
  auto fail = [&](const Status& s) {
    AbandonUnflushed(dept);
    dept->open.reset();
    dept->full.clear();
    dept->pending.clear();
    dept->pending_bases.clear();
    dept->pending_ids.clear();
    return s;
  };
  std::vector<OpenPack*> packs;
  for (auto& p : dept->full) packs.push_back(p.get());
  if (dept->open) packs.push_back(dept->open.get());
  // Rule 6.1: pack bytes durable first ...
  for (OpenPack* p : packs) {
    Status s = p->writer->Sync();
    if (!s.ok()) return fail(s);
  }
  // ... then, in one transaction, their index entries and committed sizes.
  {
    auto txn = lmdb_->BeginWrite();
    if (!txn.ok()) return fail(txn.status());
    Status s = index_->Insert(*txn, department, dept->pending);
    for (const auto& [delta, base] : dept->pending_bases) {
      if (!s.ok()) break;
      auto k = ChunkKeyOf(department, delta);
      s = txn->PutIfAbsent(bases_db_, k, base).status();
    }
    for (OpenPack* p : packs) {
      if (s.ok()) {
        s = PutRow(*txn, packs_db_, p->id,
                   PackRow{department, kPackOpen, p->writer->synced_size()});
      }
    }
    if (s.ok()) s = txn->Commit();
    if (!s.ok()) return fail(s);
  }
  for (const auto& e : dept->pending) {
    ++result.records;
    result.bytes += e.location.length;
  }
  dept->pending.clear();
  dept->pending_bases.clear();
  dept->pending_ids.clear();
  // Full packs are sealed now that everything in them is committed.
  for (auto& p : dept->full) CAIRN_RETURN_IF_ERROR(SealPack(department, p.get()));
  dept->full.clear();
  return result;
}

Status ChunkStore::SealPack(uint32_t department, OpenPack* pack) {
  CAIRN_RETURN_IF_ERROR(pack->writer->Seal());
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
  CAIRN_RETURN_IF_ERROR(
      PutRow(txn, packs_db_, pack->id, PackRow{department, kPackSealed, pack->writer->size()}));
  return txn.Commit();
}

Result<std::map<uint32_t, ChunkStore::Usage>> ChunkStore::PackUsage() const {
  std::map<uint32_t, Usage> out;
  CAIRN_ASSIGN_OR_RETURN(std::vector<PackInfo> packs, ListPacks());
  for (const PackInfo& p : packs) {
    Usage& u = out[p.department];
    ++u.packs;
    u.bytes += p.size;
  }
  return out;
}

Status ChunkStore::SealAll() {
  std::vector<uint32_t> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, d] : departments_) ids.push_back(id);
  }
  for (uint32_t department : ids) {
    CAIRN_ASSIGN_OR_RETURN(FlushResult r, Flush(department));
    (void)r;
    CAIRN_ASSIGN_OR_RETURN(Department * dept, GetDepartment(department));
    std::lock_guard<std::mutex> lock(dept->mu);
    if (dept->open) {
      CAIRN_RETURN_IF_ERROR(SealPack(department, dept->open.get()));
      dept->open.reset();
    }
  }
  return Status::OK();
}

Result<std::vector<bool>> ChunkStore::Contains(uint32_t department,
                                               std::span<const repo::ChunkId> ids) const {
  // Touched before the index answers (see RemoveUntouched).
  Touch(department, ids);
  return index_->Contains(department, ids);
}

class ChunkStore::ReadEpoch {
 public:
  explicit ReadEpoch(const ChunkStore* store) : store_(store), epoch_(store->EnterRead()) {}
  ~ReadEpoch() { store_->ExitRead(epoch_); }
  ReadEpoch(const ReadEpoch&) = delete;
  ReadEpoch& operator=(const ReadEpoch&) = delete;

 private:
  const ChunkStore* store_;
  uint64_t epoch_;
};

Status ChunkStore::Read(uint32_t department, const repo::ChunkId& id, Bytes* record) const {
  ReadEpoch read(this);
  record->clear();
  CAIRN_ASSIGN_OR_RETURN(repo::ChunkLocation loc, index_->Lookup(department, id));
  std::string path = options_.packs->PackPath(department, loc.pack_id);
  CAIRN_ASSIGN_OR_RETURN(auto file, options_.packs->env()->NewRandomAccessFile(path));
  if (loc.length < repo::kRecordOverhead ||
      loc.length > repo::kRecordOverhead + repo::kMaxRecordPlainSize) {
    return Status::Corruption("index entry for " + ToHex(id) + " has a bad length");
  }
  record->resize(loc.length);
  CAIRN_ASSIGN_OR_RETURN(size_t n, file->Read(loc.offset, *record));
  Status s = n == loc.length ? repo::ParseRecord(*record).status()
                             : Status::Corruption("pack " + path + " ends inside a record");
  if (s.ok() && repo::ParseRecordHeader(*record)->id != id) {
    s = Status::Corruption("pack " + path + ": record is not the chunk the index names");
  }
  if (!s.ok()) record->clear();
  return s;
}

bool ChunkStore::FirstHint(uint32_t department, uint64_t pack) const {
  constexpr size_t kRemembered = 512;
  std::lock_guard<std::mutex> lock(hinted_mu_);
  const std::pair<uint32_t, uint64_t> key{department, pack};
  if (std::find(hinted_.begin(), hinted_.end(), key) != hinted_.end()) return false;
  if (hinted_.size() == kRemembered) hinted_.pop_front();
  hinted_.push_back(key);
  return true;
}

Result<std::vector<uint64_t>> ChunkStore::ReadOrder(uint32_t department,
                                                    std::span<const repo::ChunkId> ids) const {
  std::vector<uint64_t> keys(ids.size(), ~uint64_t{0});
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginRead());
  for (size_t i = 0; i < ids.size(); ++i) {
    auto loc = index_->Lookup(txn, department, ids[i]);
    if (loc.ok()) {
      // Pack IDs count up from 1 and packs stay far below 4 GiB; past
      // either, the order is only coarser, never wrong.
      keys[i] = std::min<uint64_t>(loc->pack_id, 0xfffffffe) << 32 |
                std::min<uint64_t>(loc->offset, 0xffffffff);
    } else if (!loc.status().IsNotFound()) {
      return loc.status();
    }
  }
  return keys;
}

Result<std::vector<Bytes>> ChunkStore::ReadPrefix(uint32_t department,
                                                  std::span<const repo::ChunkId> ids,
                                                  size_t max_bytes, bool whole_packs) const {
  std::vector<Bytes> out;
  auto place = [&out](std::span<const uint32_t> lengths) {
    out.reserve(lengths.size());
    std::vector<MutableByteView> buffers;
    for (uint32_t length : lengths) {
      out.emplace_back(length);
      buffers.push_back(out.back());
    }
    return buffers;
  };
  CAIRN_ASSIGN_OR_RETURN(size_t n, ReadPrefix(department, ids, max_bytes, whole_packs, place));
  out.resize(n);
  return out;
}

Result<size_t> ChunkStore::ReadPrefix(uint32_t department, std::span<const repo::ChunkId> ids,
                                      size_t max_bytes, bool whole_packs,
                                      const RecordPlacer& place) const {
  ReadEpoch read(this);
  std::vector<repo::ChunkLocation> locs;
  std::vector<uint32_t> lengths;
  {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginRead());
    size_t total = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto loc = index_->Lookup(txn, department, ids[i]);
      if (!loc.ok()) {
        if (i == 0) return loc.status();
        break;
      }
      if (loc->length < repo::kRecordOverhead ||
          loc->length > repo::kRecordOverhead + repo::kMaxRecordPlainSize) {
        if (i == 0)
          return Status::Corruption("index entry for " + ToHex(ids[i]) + " has a bad length");
        break;
      }
      if (i > 0 && total + loc->length > max_bytes) break;
      total += loc->length;
      locs.push_back(*loc);
      lengths.push_back(loc->length);
    }
  }
  std::vector<MutableByteView> out = place(lengths);
  assert(out.size() == locs.size());
  std::vector<size_t> order(locs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(locs[a].pack_id, locs[a].offset) < std::tie(locs[b].pack_id, locs[b].offset);
  });
  std::vector<Status> status(locs.size());
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    const uint64_t pack = locs[order[begin]].pack_id;
    while (end < order.size() && locs[order[end]].pack_id == pack) ++end;
    const std::string path = options_.packs->PackPath(department, pack);
    auto file = options_.packs->env()->NewRandomAccessFile(path);
    std::vector<io::ReadRequest> reqs(end - begin);
    for (size_t k = begin; k < end; ++k) {
      const size_t i = order[k];
      reqs[k - begin].offset = locs[i].offset;
      reqs[k - begin].buffer = out[i];
    }
    if (!file.ok()) {
      for (size_t k = begin; k < end; ++k) status[order[k]] = file.status();
    } else {
      if (whole_packs && FirstHint(department, pack)) {
        (*file)->WillNeed(locs[order[begin]].offset, options_.pack_target_size + (4u << 20));
      }
      (void)(*file)->ReadBatch(reqs);
      for (size_t k = begin; k < end; ++k) {
        const size_t i = order[k];
        const io::ReadRequest& r = reqs[k - begin];
        Status st = r.status;
        if (st.ok() && r.bytes_read != locs[i].length) {
          st = Status::Corruption("pack " + path + " ends inside a record");
        }
        if (st.ok()) st = repo::ParseRecord(out[i]).status();
        if (st.ok() && repo::ParseRecordHeader(out[i])->id != ids[i]) {
          st = Status::Corruption("pack " + path + ": record is not the chunk the index names");
        }
        status[i] = st;
      }
    }
    begin = end;
  }
  // The prefix that read whole.
  for (size_t i = 0; i < out.size(); ++i) {
    if (!status[i].ok()) return i == 0 ? Result<size_t>(status[0]) : Result<size_t>(i);
  }
  return out.size();
}

// --- Garbage collection's side ------------------------------------------------

Result<std::vector<ChunkStore::PackInfo>> ChunkStore::ListPacks() const {
  std::vector<PackInfo> out;
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginRead());
  Status decode;
  CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(packs_db_, {}, [&](ByteView k, ByteView v) {
    auto row = DecodeRow(v);
    if (!row.ok()) {
      decode = row.status();
      return false;
    }
    out.push_back(
        {PackIdFromKey(k), row->department, static_cast<PackState>(row->state), row->committed});
    return true;
  }));
  CAIRN_RETURN_IF_ERROR(decode);
  return out;
}

Status ChunkStore::BeginCollection(uint64_t filter_bytes) {
  uint64_t seed = 0;
  CAIRN_RETURN_IF_ERROR(
      crypto::SecureRandom(MutableByteView(reinterpret_cast<uint8_t*>(&seed), 8)));
  auto filter = std::make_unique<BloomFilter>(filter_bytes * 8, 7, seed);
  std::lock_guard<std::mutex> lock(gc_mu_);
  if (touched_) return Status::Unavailable("a garbage collection is running already");
  touched_ = std::move(filter);
  touched_count_ = 0;
  return Status::OK();
}

void ChunkStore::EndCollection() {
  std::lock_guard<std::mutex> lock(gc_mu_);
  touched_.reset();
}

uint64_t ChunkStore::touched_count() const {
  std::lock_guard<std::mutex> lock(gc_mu_);
  return touched_count_;
}

void ChunkStore::Touch(uint32_t department, std::span<const repo::ChunkId> ids) const {
  std::unique_lock<std::mutex> lock(gc_mu_);
  if (!touched_) return;
  bool wait = false;
  for (const repo::ChunkId& id : ids) {
    const auto key = ChunkKeyOf(department, id);
    touched_->Add(key);
    wait = wait || removing_.count(key) > 0;
  }
  touched_count_ += ids.size();
  // Being removed right now: the caller's lookup must come after the
  // removal is durable (it then finds the chunk missing, and it is sent).
  if (wait) {
    const uint64_t generation = removal_generation_;
    removal_done_.wait(lock, [&] { return removal_generation_ != generation; });
  }
}

Result<std::vector<ChunkStore::Candidate>> ChunkStore::RemoveUntouched(
    std::span<const Candidate> candidates) {
  std::vector<const Candidate*> untouched;
  {
    // A Touch before this check keeps its entry. One after it, of an entry
    // about to go, waits in Touch until the removal below is durable, and
    // its index lookup, which follows the touch, then finds nothing.
    std::lock_guard<std::mutex> lock(gc_mu_);
    if (!touched_) return Status::Unavailable("no garbage collection is running");
    for (const Candidate& c : candidates) {
      const auto key = ChunkKeyOf(c.department, c.id);
      if (touched_->MayContain(key)) continue;
      untouched.push_back(&c);
      removing_.insert(key);
    }
  }
  auto done = [this] {
    {
      std::lock_guard<std::mutex> lock(gc_mu_);
      removing_.clear();
      ++removal_generation_;
    }
    removal_done_.notify_all();
  };
  auto result = RemoveEntries(untouched);
  done();
  return result;
}

Result<std::vector<ChunkStore::Candidate>> ChunkStore::RemoveEntries(
    std::span<const Candidate* const> candidates) {
  std::vector<Candidate> removed;
  if (candidates.empty()) return removed;
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
  for (const Candidate* cp : candidates) {
    const Candidate& c = *cp;
    const auto key = ChunkKeyOf(c.department, c.id);
    auto loc = index_->Lookup(txn, c.department, c.id);
    if (!loc.ok()) {
      if (loc.status().IsNotFound()) continue;
      return loc.status();
    }
    if (*loc != c.location) continue;
    CAIRN_RETURN_IF_ERROR(index_->Remove(txn, c.department, c.id));
    Status s = txn.Delete(bases_db_, key);
    if (!s.ok() && !s.IsNotFound()) return s;
    removed.push_back(c);
  }
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return removed;
}

Status ChunkStore::ForEachDeltaBase(
    const std::function<bool(uint32_t, const repo::ChunkId&, const repo::ChunkId&)>& fn) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginRead());
  return txn.ForEachPrefix(bases_db_, {}, [&](ByteView k, ByteView v) {
    if (k.size() != repo::kChunkIndexKeySize || v.size() != crypto::kChunkIdSize) return true;
    const uint32_t dept = repo::DepartmentOfKey(k);
    repo::ChunkId id, base;
    std::memcpy(id.data(), k.data() + 4, id.size());
    std::memcpy(base.data(), v.data(), base.size());
    return fn(dept, id, base);
  });
}

Result<uint64_t> ChunkStore::Rewrite(uint32_t department, std::span<const Move> moves) {
  if (moves.empty()) return uint64_t{0};
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<OpenPack> pack, CreatePack(department));
  const uint64_t id = pack->id;
  repo::PackWriter* writer = pack->writer.get();
  std::vector<repo::ChunkLocation> to;
  to.reserve(moves.size());
  for (const Move& m : moves) {
    CAIRN_ASSIGN_OR_RETURN(repo::PackEntry e, writer->Append(m.record));
    if (e.id != m.id) return Status::InvalidArgument("rewrite: a record is not the chunk named");
    to.push_back({id, e.offset, e.length, LocationFlags(e)});
  }
  // The copy is durable and sealed (rules 6.1, 6.5) before any entry names it.
  CAIRN_RETURN_IF_ERROR(writer->Seal());
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
  uint64_t moved = 0;
  for (size_t i = 0; i < moves.size(); ++i) {
    CAIRN_ASSIGN_OR_RETURN(bool switched,
                           index_->Relocate(txn, department, moves[i].id, moves[i].from, to[i]));
    moved += switched;
  }
  CAIRN_RETURN_IF_ERROR(
      PutRow(txn, packs_db_, id, PackRow{department, kPackSealed, writer->size()}));
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return moved;
}

Status ChunkStore::RetirePack(uint64_t pack_id) {
  uint32_t department = 0;
  {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
    auto k = PackKey(pack_id);
    CAIRN_ASSIGN_OR_RETURN(ByteView v, txn.Get(packs_db_, k));
    CAIRN_ASSIGN_OR_RETURN(PackRow row, DecodeRow(v));
    if (row.state != kPackSealed) {
      return Status::Unavailable("pack " + std::to_string(pack_id) + " is not sealed");
    }
    department = row.department;
    row.state = kPackRetired;
    CAIRN_RETURN_IF_ERROR(PutRow(txn, packs_db_, pack_id, row));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
  std::lock_guard<std::mutex> lock(epoch_mu_);
  // Reads that began in this epoch or earlier may hold a location in the
  // pack; later ones look its records up after the switch, and do not.
  retired_.push_back({pack_id, department, epoch_});
  ++epoch_;
  return Status::OK();
}

Result<uint64_t> ChunkStore::ReclaimRetired() {
  std::vector<Retired> ready;
  {
    std::lock_guard<std::mutex> lock(epoch_mu_);
    const uint64_t oldest = readers_.empty() ? epoch_ : readers_.begin()->first;
    for (auto it = retired_.begin(); it != retired_.end();) {
      if (it->epoch < oldest) {
        ready.push_back(*it);
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  uint64_t freed = 0;
  io::Env* env = options_.packs->env();
  for (const Retired& r : ready) {
    const std::string path = options_.packs->PackPath(r.department, r.pack_id);
    if (env->FileExists(path)) {
      if (auto size = env->GetFileSize(path); size.ok()) freed += *size;
      CAIRN_RETURN_IF_ERROR(env->RemoveFile(path));
      CAIRN_RETURN_IF_ERROR(env->SyncDir(options_.packs->PackDir(r.department)));
    }
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, lmdb_->BeginWrite());
    auto k = PackKey(r.pack_id);
    CAIRN_RETURN_IF_ERROR(txn.Delete(packs_db_, k));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
  return freed;
}

size_t ChunkStore::retired_waiting() const {
  std::lock_guard<std::mutex> lock(epoch_mu_);
  return retired_.size();
}

uint64_t ChunkStore::EnterRead() const {
  std::lock_guard<std::mutex> lock(epoch_mu_);
  ++readers_[epoch_];
  return epoch_;
}

void ChunkStore::ExitRead(uint64_t epoch) const {
  std::lock_guard<std::mutex> lock(epoch_mu_);
  auto it = readers_.find(epoch);
  if (it != readers_.end() && --it->second == 0) readers_.erase(it);
}

}  // namespace cairn::vault
