// The vault's garbage collection, compaction and scrub (vault/store/gc.h,
// scrub.h) on real ChunkStores: LMDB and pack files in a directory under
// /tmp (or $CAIRN_BENCH_DIR), removed afterwards; packs through the
// io_uring Env, as the serving vault uses (CAIRN_BENCH_PACK_ENV=posix: pread
// and pwrite instead).
//
//   BM_GcIndex/entries:N/dry:1  CollectGarbage dry run (mark + sweep) over a
//       chunk index of N synthetic entries: random 32-byte IDs pointing at a
//       pack the catalog does not list (so the pack step has nothing to do);
//       the references are every second ID, streamed from the generator
//       (never held in memory). Reports mark and sweep seconds, entries/s,
//       and the process's peak memory during the run: VmHWM after a reset
//       through /proc/self/clear_refs, and VmRSS/RssAnon sampled every 50 ms.
//   BM_GcIndex/entries:N/dry:0  one real run over the same index (removes
//       half the entries, each batch a durable LMDB commit); the third
//       argument is GcOptions::batch: the default (GcOptions{}.batch), and
//       4096 (the default before a845068); at 1M also 65536.
//   BM_Compaction/cold:C        256 MiB of real 256 KiB records in 32 MiB
//       packs, 30% referenced, one real collection with compact_below 0.5:
//       compaction (step 5) throughput = bytes copied / compact seconds;
//       also the old packs' bytes removed (gross: GcReport::bytes_freed plus
//       bytes_copied) and bytes_freed itself (net of the copy).
//       cold:1 drops the packs from the page cache first (POSIX_FADV_DONTNEED).
//   BM_ScrubVsRead/cache:C      ScrubStore (rate_bytes 0) over such a store
//       (all records live), then read(2) of the same pack files front to
//       back in 1 MiB and in 256 KiB pieces: what the disk (or the page
//       cache) gives. C=0 warm, 1 dropped from the page cache
//       (POSIX_FADV_DONTNEED), 2 a fresh store for each reader, dropped.
//   BM_Backup/extra:E           Put + Flush (every 16 MiB) of 256 MiB of new
//       records into a store holding 256 MiB of which 70% is garbage, alone
//       and while another thread runs CollectGarbage (real) and ScrubStore
//       in a loop, back to back in each repetition; reports the ratio.
//       E=1000000: the index also holds 1M synthetic entries of another
//       department, half of them garbage, so the backup runs while the
//       sweep removes entries. CAIRN_BENCH_GC_DRY=1 makes that thread's
//       collections dry runs (a control: the same scans, no removals).
//
// Times are wall time of the measured call (UseManualTime); every benchmark
// runs one iteration per repetition, three or five repetitions (the real GC
// runs one), and the console shows the median. MB = 10^6 bytes.
// Run: nice -n 10 build/main/bench/cairn_gc_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "lib/crypto/keys.h"
#include "lib/io/env.h"
#include "lib/io/uring_env.h"
#include "lib/repo/chunk_index.h"
#include "lib/repo/lmdb.h"
#include "lib/repo/record.h"
#include "vault/store/chunk_store.h"
#include "vault/store/gc.h"
#include "vault/store/pack_store.h"
#include "vault/store/scrub.h"

namespace cairn::vault {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "gc_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::abort();
}

std::string BenchRoot() {
  const char* d = std::getenv("CAIRN_BENCH_DIR");
  std::string root = d ? d : "/tmp";
  std::filesystem::create_directories(root);
  return root;
}

std::string NewTempDir() {
  std::string tmpl = BenchRoot() + "/cairn-gc-bench-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp", Status::IOError(tmpl));
  return tmpl;
}

// --- Memory -------------------------------------------------------------------

struct ProcMem {
  double rss = 0, anon = 0, hwm = 0;  // MiB
};

ProcMem ReadProcMem() {
  std::ifstream f("/proc/self/status");
  std::string line;
  ProcMem m;
  auto field = [&](const char* name, double* out) {
    const size_t n = std::strlen(name);
    if (line.compare(0, n, name) == 0) *out = std::stod(line.substr(n)) / 1024;
  };
  while (std::getline(f, line)) {
    field("VmRSS:", &m.rss);
    field("RssAnon:", &m.anon);
    field("VmHWM:", &m.hwm);
  }
  return m;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false if not allowed.
bool ResetPeakRss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// Peak memory over a run: VmHWM (reset at the start when allowed) and a
// thread sampling VmRSS and RssAnon every 50 ms.
class PeakMeter {
 public:
  PeakMeter() {
    hwm_reset_ = ResetPeakRss();
    before_ = ReadProcMem();
    peak_ = before_;
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        Sample();
        cv_.wait_for(lock, std::chrono::milliseconds(50));
      }
    });
  }
  ~PeakMeter() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    Sample();
    hwm_after_ = ReadProcMem().hwm;
  }

  void Report(benchmark::State& state) const {
    state.counters["rss_before_MiB"] = before_.rss;
    state.counters["rss_peak_MiB"] = peak_.rss;  // sampled
    state.counters["anon_before_MiB"] = before_.anon;
    state.counters["anon_peak_MiB"] = peak_.anon;  // sampled
    state.counters["anon_growth_MiB"] = peak_.anon - before_.anon;
    // VmHWM after the reset: the exact peak, file-backed pages included.
    state.counters["hwm_MiB"] = hwm_reset_ ? hwm_after_ : -1;
  }

 private:
  void Sample() {
    const ProcMem m = ReadProcMem();
    peak_.rss = std::max(peak_.rss, m.rss);
    peak_.anon = std::max(peak_.anon, m.anon);
  }

  bool hwm_reset_ = false;
  ProcMem before_, peak_;
  double hwm_after_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// --- Page cache ----------------------------------------------------------------

// Drops a file's clean pages from the page cache.
void DropFromCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fdatasync(fd);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// The fraction of a file's pages in the page cache (mincore).
double ResidentFraction(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size == 0) {
    ::close(fd);
    return -1;
  }
  void* map = ::mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return -1;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((st.st_size + page - 1) / page);
  double frac = -1;
  if (::mincore(map, st.st_size, vec.data()) == 0) {
    size_t in = 0;
    for (unsigned char c : vec) in += c & 1;
    frac = static_cast<double>(in) / static_cast<double>(vec.size());
  }
  ::munmap(map, st.st_size);
  return frac;
}

// Reads a file front to back with read(2), buf->size() at a time; returns bytes.
uint64_t ReadWholeFile(const std::string& path, std::vector<uint8_t>* buf) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path, Status::IOError(std::strerror(errno)));
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf->data(), buf->size());
    if (n < 0) Die("read " + path, Status::IOError(std::strerror(errno)));
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return total;
}

// --- Stores -----------------------------------------------------------------------

// The Env packs go through: the io_uring Env, as the serving vault uses, or
// plain pread/pwrite with CAIRN_BENCH_PACK_ENV=posix.
io::Env* PackEnv() {
  static io::Env* env = [] {
    const char* e = std::getenv("CAIRN_BENCH_PACK_ENV");
    if (e != nullptr && std::string(e) == "posix") return io::Env::Posix();
    return static_cast<io::Env*>(io::UringEnv::Default());
  }();
  return env;
}

// A ChunkStore in its own directory: LMDB in dir/lmdb, packs in dir/packs.
struct Store {
  std::string dir;
  std::unique_ptr<repo::LmdbEnv> lmdb;
  std::unique_ptr<PackStore> packs;
  std::unique_ptr<ChunkStore> store;

  explicit Store(std::string d) : dir(std::move(d)) {}
  ~Store() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  void Open(bool no_sync, uint64_t pack_target_size = 32ull << 20) {
    repo::LmdbOptions lo;
    lo.no_sync = no_sync;
    auto env = repo::LmdbEnv::Open(dir + "/lmdb", lo);
    if (!env.ok()) Die("lmdb open", env.status());
    lmdb = std::move(*env);
    auto ps = OpenLocalPackStore(PackEnv(), dir + "/packs");
    if (!ps.ok()) Die("pack store", ps.status());
    packs = std::move(*ps);
    ChunkStoreOptions so;
    so.packs = packs.get();
    so.pack_target_size = pack_target_size;
    auto cs = ChunkStore::Open(so, lmdb.get());
    if (!cs.ok()) Die("chunk store", cs.status());
    store = std::move(*cs);
  }
  void Close() {
    store.reset();
    packs.reset();
    lmdb.reset();
  }

  std::vector<std::string> SealedPackPaths() const {
    auto list = store->ListPacks();
    if (!list.ok()) Die("list packs", list.status());
    std::vector<std::string> out;
    for (const auto& p : *list) {
      if (p.state == ChunkStore::PackState::kSealed) {
        out.push_back(packs->PackPath(p.department, p.id));
      }
    }
    return out;
  }
  uint64_t DbBytes() const {
    std::error_code ec;
    auto n = std::filesystem::file_size(dir + "/lmdb/data.mdb", ec);
    return ec ? 0 : n;
  }
};

// --- 1. GC over a large synthetic index ------------------------------------------

constexpr uint32_t kDept = 1;
// A pack ID the catalog never lists: the entries name it, the pack step
// finds no sealed pack to count them against.
constexpr uint64_t kNoSuchPack = 1ull << 40;
constexpr uint32_t kFakeRecordLength = (256u << 10) + 104;

// The i-th synthetic chunk ID: splitmix64 of (seed, i), spread like HMAC
// output. Regenerated on demand, so the reference source holds none.
repo::ChunkId SyntheticId(uint64_t i) {
  repo::ChunkId id;
  uint64_t x = (i + 0x5eed) * 0x9e3779b97f4a7c15ull;
  for (size_t k = 0; k < id.size(); k += 8) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    EncodeFixed64(id.data() + k, z);
  }
  return id;
}

// Every second synthetic ID (i even), streamed in batches of 64k.
Status SinkHalfOfSynthetic(uint64_t n, uint32_t department, const ReferenceSink& sink) {
  std::vector<repo::ChunkId> buf;
  buf.reserve(65536);
  for (uint64_t i = 0; i < n; i += 2) {
    buf.push_back(SyntheticId(i));
    if (buf.size() == buf.capacity()) {
      CAIRN_RETURN_IF_ERROR(sink(department, buf));
      buf.clear();
    }
  }
  return buf.empty() ? Status::OK() : sink(department, buf);
}

ReferenceSource HalfOfSynthetic(uint64_t n) {
  return [n](const ReferenceSink& sink) { return SinkHalfOfSynthetic(n, kDept, sink); };
}

// Inserts synthetic entries [0, n) for `department` in sorted batches of 50k.
void InsertSynthetic(ChunkStore* store, uint64_t n, uint32_t department) {
  constexpr uint64_t kBatch = 50'000;
  std::vector<repo::ChunkIndex::Entry> batch;
  batch.reserve(kBatch);
  for (uint64_t base = 0; base < n; base += kBatch) {
    batch.clear();
    for (uint64_t i = base; i < std::min(n, base + kBatch); ++i) {
      batch.push_back(
          {SyntheticId(i), repo::ChunkLocation{kNoSuchPack, 32 + (i % 128) * kFakeRecordLength,
                                               kFakeRecordLength, 1}});
    }
    std::sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    Status s = store->index()->Insert(department, batch);
    if (!s.ok()) Die("populate", s);
  }
}

struct IndexFixture {
  uint64_t entries = 0;
  double populate_seconds = 0;
  std::unique_ptr<Store> s;
};

std::unique_ptr<IndexFixture>& CurrentIndex() {
  static std::unique_ptr<IndexFixture> f;
  return f;
}

// The store with `n` synthetic entries, built once (one at a time): inserted
// through ChunkStore::index()->Insert in sorted batches of 50k, with LMDB
// opened no_sync for the population only; then reopened durable.
IndexFixture* IndexWith(uint64_t n) {
  auto& f = CurrentIndex();
  if (f && f->entries == n) return f.get();
  f.reset();
  auto fx = std::make_unique<IndexFixture>();
  fx->entries = n;
  fx->s = std::make_unique<Store>(NewTempDir());
  fx->s->Open(/*no_sync=*/true);
  const auto t = Clock::now();
  InsertSynthetic(fx->s->store.get(), n, kDept);
  fx->s->Close();  // MDB_NOSYNC: the data is in the page cache; closing is enough
  fx->s->Open(/*no_sync=*/false);
  fx->populate_seconds = Since(t);
  std::fprintf(stderr, "gc_bench: populated %llu entries in %.1f s, data.mdb %.0f MiB\n",
               static_cast<unsigned long long>(n), fx->populate_seconds,
               fx->s->DbBytes() / 1048576.0);
  f = std::move(fx);
  return f.get();
}

void BM_GcIndex(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const bool dry = state.range(1) != 0;
  for (auto _ : state) {
    IndexFixture* fx = IndexWith(n);
    GcOptions o;
    o.dry_run = dry;
    o.batch = static_cast<size_t>(state.range(2));
    o.references = HalfOfSynthetic(n);
    PeakMeter meter;
    const auto t = Clock::now();
    auto r = CollectGarbage(fx->s->store.get(), o);
    const double seconds = Since(t);
    meter.Stop();
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    state.SetIterationTime(seconds);
    meter.Report(state);
    state.counters["entries"] = static_cast<double>(r->index_entries);
    state.counters["removed"] = static_cast<double>(r->entries_removed);
    state.counters["mark_s"] = r->mark_seconds;
    state.counters["sweep_s"] = r->sweep_seconds;
    state.counters["packs_s"] = r->compact_seconds;
    state.counters["Mentries_per_s"] =
        static_cast<double>(r->index_entries) / (r->mark_seconds + r->sweep_seconds) / 1e6;
    state.counters["filter_MiB"] = static_cast<double>(r->filter_bytes) / 1048576.0;
    state.counters["fp_rate"] = r->false_positive_rate;
    state.counters["populate_s"] = fx->populate_seconds;
    state.counters["db_MiB"] = static_cast<double>(fx->s->DbBytes()) / 1048576.0;
    if (!dry) CurrentIndex().reset();  // half the index is gone now
  }
}
// Dry runs three times; a real run once (it removes half the index). The
// third argument is GcOptions::batch (index entries per sweep transaction):
// the default, and for real runs also 4096 (the default before a845068);
// at 1M also 65536.
const int64_t kDefaultBatch = static_cast<int64_t>(GcOptions{}.batch);
void GcIndexArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"entries", "dry", "batch"})
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kSecond);
}
BENCHMARK(BM_GcIndex)->Apply(GcIndexArgs)->Args({1'000'000, 1, kDefaultBatch})->Repetitions(3);
BENCHMARK(BM_GcIndex)
    ->Apply(GcIndexArgs)
    ->Args({1'000'000, 0, kDefaultBatch})
    ->Args({1'000'000, 0, 4096})
    ->Args({1'000'000, 0, 65536})
    ->Repetitions(1);
BENCHMARK(BM_GcIndex)->Apply(GcIndexArgs)->Args({10'000'000, 1, kDefaultBatch})->Repetitions(3);
BENCHMARK(BM_GcIndex)
    ->Apply(GcIndexArgs)
    ->Args({10'000'000, 0, kDefaultBatch})
    ->Args({10'000'000, 0, 4096})
    ->Repetitions(1);

// --- Real records ----------------------------------------------------------------

constexpr size_t kChunk = 256u << 10;
constexpr size_t kRecords = 1024;  // 256 MiB of plaintext

struct RecordSet {
  std::vector<Bytes> records;
  std::vector<repo::ChunkId> ids;
  uint64_t bytes = 0;
};

// 1024 records of 256 KiB of random data (stored raw: zstd gives up),
// encoded once per process. `which` picks the data (0: the old backups, 1:
// the new backup).
const RecordSet& Records(int which) {
  static std::map<int, RecordSet> sets;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto it = sets.find(which);
  if (it != sets.end()) return it->second;
  auto keys = crypto::DepartmentKeys::Generate();
  if (!keys.ok()) Die("keys", keys.status());
  auto encoder = repo::RecordEncoder::Create(*keys, {});
  if (!encoder.ok()) Die("encoder", encoder.status());
  RecordSet set;
  for (size_t i = 0; i < kRecords; ++i) {
    Bytes plain = bench::RandomBytes(kChunk, (static_cast<uint64_t>(which) << 32) + i + 1);
    const repo::ChunkId id = (*encoder)->Id(plain);
    Bytes rec;
    Status s = (*encoder)->Encode(repo::RecordType::kData, id, plain, &rec);
    if (!s.ok()) Die("encode", s);
    set.bytes += rec.size();
    set.ids.push_back(id);
    set.records.push_back(std::move(rec));
  }
  return sets.emplace(which, std::move(set)).first->second;
}

// About 30% of a set's IDs (fixed choice).
std::vector<repo::ChunkId> ThirtyPercent(const RecordSet& set) {
  std::mt19937_64 rng(7);
  std::bernoulli_distribution keep(0.3);
  std::vector<repo::ChunkId> out;
  for (const auto& id : set.ids) {
    if (keep(rng)) out.push_back(id);
  }
  return out;
}

// The slowest single calls of a WriteSet.
struct WriteStats {
  double max_put_ms = 0, max_flush_ms = 0;
  double put_s = 0, flush_s = 0;  // in all
};

// Puts every record, flushing every `flush_every`, then flushes; each ID is
// passed to `before_put` first (the backup's "commit list").
Status WriteSet(ChunkStore* store, const RecordSet& set, size_t flush_every,
                const std::function<void(const repo::ChunkId&)>& before_put = nullptr,
                WriteStats* stats = nullptr) {
  WriteStats w;
  auto flush = [&]() -> Status {
    const auto t = Clock::now();
    Status s = store->Flush(kDept).status();
    const double d = Since(t);
    w.flush_s += d;
    w.max_flush_ms = std::max(w.max_flush_ms, d * 1e3);
    return s;
  };
  for (size_t i = 0; i < set.records.size(); ++i) {
    if (before_put) before_put(set.ids[i]);
    const auto t = Clock::now();
    CAIRN_RETURN_IF_ERROR(store->Put(kDept, set.records[i]));
    const double d = Since(t);
    w.put_s += d;
    w.max_put_ms = std::max(w.max_put_ms, d * 1e3);
    if ((i + 1) % flush_every == 0) CAIRN_RETURN_IF_ERROR(flush());
  }
  Status s = flush();
  if (stats) *stats = w;
  return s;
}

// A fresh durable store holding the old set, every pack sealed.
std::unique_ptr<Store> StoreWithOldSet() {
  auto s = std::make_unique<Store>(NewTempDir());
  s->Open(/*no_sync=*/false);
  Status st = WriteSet(s->store.get(), Records(0), 128);
  if (st.ok()) st = s->store->SealAll();
  if (!st.ok()) Die("write records", st);
  return s;
}

ReferenceSource FixedReferences(std::vector<repo::ChunkId> ids) {
  return [ids = std::move(ids)](const ReferenceSink& sink) { return sink(kDept, ids); };
}

// --- 2. Compaction ------------------------------------------------------------------

void BM_Compaction(benchmark::State& state) {
  const bool cold = state.range(0) != 0;
  const RecordSet& set = Records(0);
  for (auto _ : state) {
    auto s = StoreWithOldSet();
    uint64_t pack_bytes = 0;
    double resident = 0;
    const auto paths = s->SealedPackPaths();
    for (const auto& p : paths) {
      pack_bytes += std::filesystem::file_size(p);
      if (cold) DropFromCache(p);
      resident += ResidentFraction(p) / static_cast<double>(paths.size());
    }
    GcOptions o;
    o.compact_below = 0.5;
    o.references = FixedReferences(ThirtyPercent(set));
    PeakMeter meter;
    const auto t = Clock::now();
    auto r = CollectGarbage(s->store.get(), o);
    const double seconds = Since(t);
    meter.Stop();
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    if (!r->damaged.empty()) state.SkipWithError(r->damaged.front().c_str());
    state.SetIterationTime(r->compact_seconds);
    meter.Report(state);
    state.counters["packs_before"] = static_cast<double>(paths.size());
    state.counters["pack_MB"] = static_cast<double>(pack_bytes) / 1e6;
    state.counters["resident_before"] = resident;
    state.counters["packs_compacted"] = static_cast<double>(r->packs_compacted);
    state.counters["packs_after"] = static_cast<double>(s->SealedPackPaths().size());
    state.counters["copied_MB"] = static_cast<double>(r->bytes_copied) / 1e6;
    // bytes_freed is net of what compaction copies (since a845068); the old
    // packs' files removed are that plus the copy.
    const uint64_t removed = r->bytes_freed + r->bytes_copied;
    state.counters["freed_net_MB"] = static_cast<double>(r->bytes_freed) / 1e6;
    state.counters["removed_MB"] = static_cast<double>(removed) / 1e6;
    state.counters["compact_s"] = r->compact_seconds;
    state.counters["gc_total_s"] = seconds;
    state.counters["copy_MBps"] = static_cast<double>(r->bytes_copied) / r->compact_seconds / 1e6;
    // Old pack bytes removed per second of step 5, and disk given back (net).
    state.counters["removed_MBps"] = static_cast<double>(removed) / r->compact_seconds / 1e6;
    state.counters["freed_net_MBps"] =
        static_cast<double>(r->bytes_freed) / r->compact_seconds / 1e6;
  }
}
BENCHMARK(BM_Compaction)
    ->ArgNames({"cold"})
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Repetitions(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- 3. Scrub against plain reads ----------------------------------------------------

std::unique_ptr<Store>& ScrubHolder() {
  static std::unique_ptr<Store> s;
  return s;
}

Store* ScrubFixture() {
  auto& s = ScrubHolder();
  if (!s) s = StoreWithOldSet();
  return s.get();
}

void WarmOrDrop(const std::vector<std::string>& paths, bool cold, benchmark::State& state) {
  std::vector<uint8_t> buf(1u << 20);
  double resident = 0;
  for (const auto& p : paths) {
    if (cold) {
      DropFromCache(p);
    } else {
      (void)ReadWholeFile(p, &buf);
    }
    resident += ResidentFraction(p) / static_cast<double>(paths.size());
  }
  state.counters["resident_before"] = resident;
}

// cache: 0 warm (read once first), 1 dropped from the page cache with
// POSIX_FADV_DONTNEED (the same files every repetition), 2 a fresh store
// per repetition, written, synced and dropped: the first read of its bytes
// since they were written (what a scrub of old packs meets). The fresh
// stores are kept until the benchmark ends, so that the file system puts
// each on blocks no earlier repetition used (and read).
struct ReadTarget {
  Store* store = nullptr;
  std::vector<std::string> paths;
};

std::vector<std::unique_ptr<Store>>& KeptStores() {
  static std::vector<std::unique_ptr<Store>> kept;
  return kept;
}

ReadTarget PrepareRead(int cache, benchmark::State& state) {
  ReadTarget t;
  if (cache == 2) {
    KeptStores().push_back(StoreWithOldSet());
    t.store = KeptStores().back().get();
  } else {
    t.store = ScrubFixture();
  }
  t.paths = t.store->SealedPackPaths();
  WarmOrDrop(t.paths, cache != 0, state);
  return t;
}

double ScrubMBps(Store* store, std::string* error) {
  ScrubOptions o;
  const auto t = Clock::now();
  auto r = ScrubStore(store->store.get(), o);
  const double seconds = Since(t);
  if (!r.ok()) {
    *error = r.status().ToString();
    return 0;
  }
  if (!r->damaged.empty() || !r->pack_problems.empty()) *error = "damage found";
  return static_cast<double>(r->bytes_read) / seconds / 1e6;
}

double ReadMBps(const std::vector<std::string>& paths, size_t piece) {
  std::vector<uint8_t> buf(piece);
  const auto t = Clock::now();
  uint64_t bytes = 0;
  for (const auto& p : paths) bytes += ReadWholeFile(p, &buf);
  return static_cast<double>(bytes) / Since(t) / 1e6;
}

// Per repetition, each prepared the same way (warm, or dropped, or a fresh
// store): ScrubStore (rate_bytes 0), then read(2) of the same pack files
// front to back in 1 MiB pieces, then in 256 KiB pieces (the scrub's
// request: one synchronous read per 256 KiB record). The benchmark's time
// is the scrub's.
void BM_ScrubVsRead(benchmark::State& state) {
  const int cache = static_cast<int>(state.range(0));
  for (auto _ : state) {
    std::string error;
    ReadTarget t1 = PrepareRead(cache, state);
    const auto t = Clock::now();
    const double scrub = ScrubMBps(t1.store, &error);
    const double scrub_seconds = Since(t);
    const double resident = state.counters["resident_before"];
    ReadTarget t2 = PrepareRead(cache, state);
    const double read_1m = ReadMBps(t2.paths, 1u << 20);
    ReadTarget t3 = PrepareRead(cache, state);
    const double read_256k = ReadMBps(t3.paths, 256u << 10);
    KeptStores().clear();
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    state.SetIterationTime(scrub_seconds);
    state.counters["resident_before"] = resident;
    state.counters["scrub_MBps"] = scrub;
    state.counters["read1M_MBps"] = read_1m;
    state.counters["read256K_MBps"] = read_256k;
    state.counters["scrub_vs_read1M"] = scrub / read_1m;
  }
}
BENCHMARK(BM_ScrubVsRead)
    ->ArgNames({"cache"})
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->Repetitions(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// --- 4. Backup beside GC and scrub -----------------------------------------------------

// extra > 0: the store also holds `extra` synthetic index entries in
// department 2 (half of them referenced, the rest garbage for the sweep to
// remove, each sweep batch a durable commit; a Touch waits for it only if it
// touches an entry that commit removes).
constexpr uint32_t kOtherDept = 2;

// One backup of the new set into a store with garbage, alone or beside a
// thread running CollectGarbage (real) and ScrubStore in a loop.
struct BackupRun {
  double seconds = 0;
  WriteStats ws;
  uint64_t gc_runs = 0, scrub_runs = 0, copied = 0, scrubbed = 0, removed = 0;
  std::string error;
};

BackupRun RunBackup(bool with_gc, uint64_t extra) {
  const RecordSet& old_set = Records(0);
  const RecordSet& new_set = Records(1);
  BackupRun out;
  auto s = StoreWithOldSet();
  if (extra > 0) InsertSynthetic(s->store.get(), extra, kOtherDept);
  // What kept snapshots reference: 30% of the old set, and whatever the
  // backup has sent so far (recorded before each Put: an ID put after the
  // mark read this list is touched, so the run keeps it either way).
  std::mutex mu;
  std::vector<repo::ChunkId> sent;
  const std::vector<repo::ChunkId> kept = ThirtyPercent(old_set);
  std::atomic<bool> stop{false}, backup_done{false}, started{false};
  std::atomic<uint64_t> gc_runs{0}, scrub_runs{0}, copied{0}, scrubbed{0}, removed{0};
  std::string gc_error;
  std::thread gc;
  if (with_gc) {
    gc = std::thread([&] {
      GcOptions o;
      o.dry_run = std::getenv("CAIRN_BENCH_GC_DRY") != nullptr;  // a control: no removals
      o.compact_below = 0.5;
      o.cancelled = [&] { return stop.load(); };
      o.references = [&](const ReferenceSink& sink) -> Status {
        CAIRN_RETURN_IF_ERROR(SinkHalfOfSynthetic(extra, kOtherDept, sink));
        CAIRN_RETURN_IF_ERROR(sink(kDept, kept));
        std::vector<repo::ChunkId> copy;
        {
          std::lock_guard<std::mutex> lock(mu);
          copy = sent;
        }
        return sink(kDept, copy);
      };
      ScrubOptions so;
      so.cancelled = [&] { return stop.load(); };
      while (!stop) {
        started = true;
        auto r = CollectGarbage(s->store.get(), o);
        if (!r.ok()) {
          if (!r.status().IsCancelled()) gc_error = r.status().ToString();
          break;
        }
        if (!backup_done) {
          ++gc_runs;
          copied += r->bytes_copied;
          removed += r->entries_removed;
        }
        if (stop) break;
        auto sr = ScrubStore(s->store.get(), so);
        if (!sr.ok()) {
          gc_error = sr.status().ToString();
          break;
        }
        if (!backup_done && !sr->cancelled) {
          ++scrub_runs;
          scrubbed += sr->bytes_read;
        }
      }
    });
    while (!started) std::this_thread::yield();
  }
  const auto t = Clock::now();
  Status st = WriteSet(
      s->store.get(), new_set, 64,
      [&](const repo::ChunkId& id) {
        std::lock_guard<std::mutex> lock(mu);
        sent.push_back(id);
      },
      &out.ws);
  out.seconds = Since(t);
  backup_done = true;
  stop = true;
  if (gc.joinable()) gc.join();
  if (!st.ok()) {
    out.error = st.ToString();
  } else if (!gc_error.empty()) {
    out.error = gc_error;
  } else {
    // Every record the backup stored is still indexed.
    auto present = s->store->Contains(kDept, new_set.ids);
    if (!present.ok() || std::count(present->begin(), present->end(), false) != 0) {
      out.error = "a record the backup stored is missing after GC";
    }
  }
  out.gc_runs = gc_runs;
  out.scrub_runs = scrub_runs;
  out.copied = copied;
  out.scrubbed = scrubbed;
  out.removed = removed;
  return out;
}

// Each repetition runs the backup alone and beside GC + scrub back to back
// (in alternating order), so that the ratio compares runs seconds apart on
// this shared machine. The benchmark's time is the backup beside GC.
void BM_Backup(benchmark::State& state) {
  const uint64_t extra = static_cast<uint64_t>(state.range(0));
  const double mb = static_cast<double>(Records(1).bytes) / 1e6;
  static int round = 0;
  for (auto _ : state) {
    BackupRun alone, beside;
    if (round++ % 2 == 0) {
      alone = RunBackup(false, extra);
      beside = RunBackup(true, extra);
    } else {
      beside = RunBackup(true, extra);
      alone = RunBackup(false, extra);
    }
    if (!alone.error.empty() || !beside.error.empty()) {
      state.SkipWithError((alone.error + beside.error).c_str());
      break;
    }
    state.SetIterationTime(beside.seconds);
    state.counters["MB"] = mb;
    state.counters["alone_MBps"] = mb / alone.seconds;
    state.counters["gc_MBps"] = mb / beside.seconds;
    state.counters["ratio"] = alone.seconds / beside.seconds;
    state.counters["alone_put_s"] = alone.ws.put_s;
    state.counters["alone_flush_s"] = alone.ws.flush_s;
    state.counters["alone_max_put_ms"] = alone.ws.max_put_ms;
    state.counters["gc_put_s"] = beside.ws.put_s;
    state.counters["gc_flush_s"] = beside.ws.flush_s;
    state.counters["gc_max_put_ms"] = beside.ws.max_put_ms;
    state.counters["gc_max_flush_ms"] = beside.ws.max_flush_ms;
    state.counters["gc_runs"] = static_cast<double>(beside.gc_runs);
    state.counters["scrub_runs"] = static_cast<double>(beside.scrub_runs);
    state.counters["gc_copied_MB"] = static_cast<double>(beside.copied) / 1e6;
    state.counters["scrub_read_MB"] = static_cast<double>(beside.scrubbed) / 1e6;
    state.counters["gc_removed"] = static_cast<double>(beside.removed);
  }
}
BENCHMARK(BM_Backup)
    ->ArgNames({"extra"})
    ->Arg(0)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Repetitions(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

// Removes the stores before exit (the static fixtures).
void Cleanup() {
  CurrentIndex().reset();
  ScrubHolder().reset();
  KeptStores().clear();
}

}  // namespace cairn::vault

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (cairn::vault::PackEnv() == cairn::io::Env::Posix()) {
    std::fprintf(stderr, "gc_bench: packs through Env::Posix (pread/pwrite)\n");
  } else {
    auto uring = cairn::io::UringEnv::Default()->ThreadUsesIoUring();
    std::fprintf(stderr, "gc_bench: packs through UringEnv, io_uring %s\n",
                 uring.ok() && *uring ? "in use" : "unavailable (pread/pwrite fallback)");
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  cairn::vault::Cleanup();
  return 0;
}
