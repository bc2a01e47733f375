// Pack appends with fsync, and the LMDB chunk index at 10 million entries.
// Files go to $CAIRN_BENCH_DIR (default /var/tmp/cairn-bench), which should
// sit on the disk the vault would use: tmpfs makes fsync free.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "bench/bench_util.h"
#include "lib/crypto/keys.h"
#include "lib/io/env.h"
#include "lib/io/uring_env.h"
#include "lib/repo/chunk_index.h"
#include "lib/repo/pack.h"

namespace cairn {
namespace {

std::string BenchDir() {
  const char* d = std::getenv("CAIRN_BENCH_DIR");
  std::string dir = d ? d : "/var/tmp/cairn-bench";
  std::filesystem::create_directories(dir);
  return dir;
}

// kB from /proc/self/status, e.g. "VmHWM" or "RssAnon".
double ProcStatusKb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1));
  }
  return 0;
}

// Appends `range(0)` KiB records, syncing every `range(1)` records.
void PackAppend(benchmark::State& state, io::Env* env) {
  auto keys = *crypto::DepartmentKeys::Generate();
  auto encoder = std::move(*repo::RecordEncoder::Create(keys, {}));
  Bytes plain = bench::RandomBytes(static_cast<size_t>(state.range(0)) << 10, 3);
  Bytes record;
  (void)encoder->Encode(repo::RecordType::kData, encoder->Id(plain), plain, &record);
  const int sync_every = static_cast<int>(state.range(1));
  std::string path = BenchDir() + "/append.pack";
  uint64_t pack_id = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::filesystem::remove(path);
    auto writer =
        std::move(*repo::PackWriter::Create(env, path, {repo::kPackVersion, 1, ++pack_id}));
    state.ResumeTiming();
    for (int i = 0; i < 32; ++i) {
      if (!writer->Append(record).ok()) state.SkipWithError("append failed");
      if ((i + 1) % sync_every == 0 && !writer->Sync().ok()) state.SkipWithError("sync failed");
    }
    if (!writer->Seal().ok()) state.SkipWithError("seal failed");
  }
  state.SetBytesProcessed(state.iterations() * 32 * static_cast<int64_t>(record.size()));
  std::filesystem::remove(path);
}

void BM_PackAppendPosix(benchmark::State& state) { PackAppend(state, io::Env::Posix()); }
void BM_PackAppendUring(benchmark::State& state) { PackAppend(state, io::UringEnv::Default()); }
// 1 MiB records (a typical chunk), fsync after every record / every 8 / at seal only.
BENCHMARK(BM_PackAppendPosix)
    ->Args({1024, 1})
    ->Args({1024, 8})
    ->Args({1024, 32})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_PackAppendUring)
    ->Args({1024, 1})
    ->Args({1024, 8})
    ->Args({1024, 32})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

repo::ChunkId IdFor(uint64_t n) {
  // Spread like real HMAC output: a mixed 64-bit value repeated.
  repo::ChunkId id;
  uint64_t x = n * 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < id.size(); i += 8) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    EncodeFixed64(id.data() + i, x);
  }
  return id;
}

constexpr uint64_t kIndexEntries = 10'000'000;
constexpr size_t kBatch = 10'000;

struct IndexFixture {
  std::unique_ptr<repo::LmdbEnv> env;
  std::unique_ptr<repo::ChunkIndex> index;
};

IndexFixture& Index() {
  static IndexFixture f = [] {
    IndexFixture fx;
    std::string dir = BenchDir() + "/index";
    std::filesystem::remove_all(dir);
    fx.env = std::move(*repo::LmdbEnv::Open(dir, {}));
    fx.index = std::move(*repo::ChunkIndex::Open(fx.env.get()));
    return fx;
  }();
  return f;
}

// Inserts 10M random chunk IDs in durable 10k-entry transactions (as the
// vault commits one batch of a session at a time).
void BM_IndexInsert10M(benchmark::State& state) {
  auto& fx = Index();
  std::vector<repo::ChunkIndex::Entry> batch(kBatch);
  for (auto _ : state) {
    for (uint64_t base = 0; base < kIndexEntries; base += kBatch) {
      for (size_t i = 0; i < kBatch; ++i) {
        batch[i].id = IdFor(base + i);
        batch[i].location = {(base + i) / 32, 32 + (base + i) % 32 * 1048680, 1048680, 1};
      }
      if (!fx.index->Insert(1, batch).ok()) state.SkipWithError("insert failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * kIndexEntries);
  state.counters["VmHWM_MiB"] = ProcStatusKb("VmHWM") / 1024;
  state.counters["RssAnon_MiB"] = ProcStatusKb("RssAnon") / 1024;
  state.counters["db_MiB"] = std::filesystem::file_size(fx.env->dir() + "/data.mdb") / 1048576.0;
}
BENCHMARK(BM_IndexInsert10M)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

// Random lookups of present IDs in the 10M index, 1000 per read transaction.
void BM_IndexLookupRandom(benchmark::State& state) {
  auto& fx = Index();
  std::mt19937_64 rng(5);
  std::vector<repo::ChunkId> ids(1000);
  int64_t found = 0;
  for (auto _ : state) {
    for (auto& id : ids) id = IdFor(rng() % kIndexEntries);
    auto present = fx.index->Contains(1, ids);
    if (!present.ok()) state.SkipWithError("lookup failed");
    for (bool p : *present) found += p;
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  if (found != state.iterations() * 1000) state.SkipWithError("an inserted ID was not found");
  state.counters["VmRSS_MiB"] = ProcStatusKb("VmRSS") / 1024;
  state.counters["RssAnon_MiB"] = ProcStatusKb("RssAnon") / 1024;
}
BENCHMARK(BM_IndexLookupRandom)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
