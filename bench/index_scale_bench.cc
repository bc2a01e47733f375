// The vault's chunk index (lib/repo/chunk_index.h over LMDB) as it grows:
// 1M, 10M, then CAIRN_INDEX_SCALE_MAX entries (default 10M; the full curve
// is 100M, about 11 GiB of disk: BENCHMARKS.md "Chunk index at city scale").
//
// Growth between stages is bulk loading (random 32-byte IDs in sorted
// batches of 100k, LMDB opened no_sync, in a child process) so that the
// curve takes minutes, not hours; at each stage the index is reopened as the vault opens it
// (durable commits) and measured:
//   - lookups of present IDs and of absent IDs: 100k each at random, one
//     read transaction per 1000 (as a session's have_chunks batch), each
//     lookup timed: p50 and p99 microseconds;
//   - commits as a backup session makes them: 200 durable transactions of
//     1000 new random IDs each: entries per second and p99 commit time;
//   - memory: the heap (RssAnon) and the whole RSS (VmRSS, which counts the
//     mapped database's pages the kernel may reclaim), and the file's size.
// One line per stage on stdout, and the same as benchmark counters.
// Run: CAIRN_INDEX_SCALE_MAX=100000000 build/main/bench/cairn_index_scale_bench
#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "lib/repo/chunk_index.h"
#include "lib/repo/lmdb.h"

namespace cairn {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The i-th entry's ID: present IDs are i < n; absent ones use another stream.
crypto::ChunkId IdFor(uint64_t i, uint64_t stream = 0) {
  crypto::ChunkId id;
  for (size_t k = 0; k < id.size(); k += 8) {
    const uint64_t v = SplitMix(i * 4 + k / 8 + (stream << 56));
    std::memcpy(id.data() + k, &v, 8);
  }
  return id;
}

uint64_t ProcStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0)
      return std::strtoull(line.c_str() + std::strlen(key) + 1, nullptr, 10);
  }
  return 0;
}

std::string BenchDir() {
  const char* d = std::getenv("CAIRN_BENCH_DIR");
  return std::string(d != nullptr ? d : "/tmp") + "/cairn-index-scale";
}

struct Index {
  std::unique_ptr<repo::LmdbEnv> env;
  std::unique_ptr<repo::ChunkIndex> index;
  static Index Open(const std::string& dir, bool no_sync) {
    Index x;
    repo::LmdbOptions o;
    o.no_sync = no_sync;
    o.map_size = 256ull << 30;
    x.env = std::move(*repo::LmdbEnv::Open(dir, o));
    x.index = std::move(*repo::ChunkIndex::Open(x.env.get()));
    return x;
  }
};

repo::ChunkLocation LocationFor(uint64_t i) {
  return {i / 4096 + 1, 32 + (i % 4096) * 16384, 16384, 1};
}

// Bulk growth from `from` to `to` entries, sorted batches of 100k.
bool Grow(repo::ChunkIndex* index, uint64_t from, uint64_t to) {
  constexpr uint64_t kBatch = 100'000;
  std::vector<repo::ChunkIndex::Entry> batch;
  for (uint64_t base = from; base < to; base += kBatch) {
    batch.clear();
    for (uint64_t i = base; i < std::min(to, base + kBatch); ++i) {
      batch.push_back({IdFor(i), LocationFor(i)});
    }
    std::sort(batch.begin(), batch.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    if (!index->Insert(1, batch).ok()) return false;
  }
  return true;
}

struct Percentiles {
  double p50, p99;
};
Percentiles Of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[v.size() * 99 / 100]};
}

void BM_IndexScale(benchmark::State& state) {
  uint64_t max = 10'000'000;
  if (const char* m = std::getenv("CAIRN_INDEX_SCALE_MAX")) max = std::strtoull(m, nullptr, 10);
  std::vector<uint64_t> stages = {1'000'000, 10'000'000};
  for (uint64_t s = 100'000'000; s <= max; s *= 10) stages.push_back(s);
  std::erase_if(stages, [&](uint64_t s) { return s > max; });
  const std::string dir = BenchDir();
  for (auto _ : state) {
    std::filesystem::remove_all(dir);
    uint64_t have = 0, extra = 0;  // entries grown, and those the commit probe added
    std::printf("%12s %10s %10s %10s %10s %12s %12s %10s %10s %10s\n", "entries", "grow s",
                "hit p50us", "hit p99us", "miss p99us", "commit e/s", "commit p99ms", "heap MiB",
                "RSS MiB", "file MiB");
    for (uint64_t stage : stages) {
      auto t0 = std::chrono::steady_clock::now();
      // Growth in a child process: bulk loading's large transactions leave
      // hundreds of MiB of freed page buffers in the allocator, which would
      // be counted as this process's heap and are no part of a vault's.
      const pid_t child = fork();
      if (child == 0) {
        Index g = Index::Open(dir, /*no_sync=*/true);
        _exit(Grow(g.index.get(), have, stage) ? 0 : 1);
      }
      int wstatus = 0;
      if (child < 0 || waitpid(child, &wstatus, 0) != child || !WIFEXITED(wstatus) ||
          WEXITSTATUS(wstatus) != 0) {
        state.SkipWithError("grow failed");
        return;
      }
      const double grow_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      have = stage;
      Index x = Index::Open(dir, /*no_sync=*/false);
      std::mt19937_64 rng(stage);
      auto lookups = [&](uint64_t stream) {
        std::vector<double> us;
        us.reserve(100'000);
        for (int t = 0; t < 100; ++t) {
          auto txn = x.env->BeginRead();
          for (int k = 0; k < 1000; ++k) {
            const crypto::ChunkId id = IdFor(stream == 0 ? rng() % have : rng(), stream);
            auto a = std::chrono::steady_clock::now();
            auto r = x.index->Lookup(*txn, 1, id);
            us.push_back(
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a)
                    .count());
            if (r.ok() != (stream == 0)) state.SkipWithError("lookup gave the wrong answer");
          }
        }
        return Of(us);
      };
      const Percentiles hit = lookups(0), miss = lookups(1);
      std::vector<double> commit_ms;
      std::vector<repo::ChunkIndex::Entry> batch(1000);
      auto c0 = std::chrono::steady_clock::now();
      for (int t = 0; t < 200; ++t) {
        for (auto& e : batch) {
          const uint64_t i = ++extra;
          e = {IdFor(i, 2), LocationFor(i)};
        }
        auto a = std::chrono::steady_clock::now();
        if (!x.index->Insert(1, batch).ok()) state.SkipWithError("commit failed");
        commit_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a)
                .count());
      }
      const double commit_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
      const Percentiles commit = Of(commit_ms);
      const double heap = ProcStatusKb("RssAnon:") / 1024.0;
      const double rss = ProcStatusKb("VmRSS:") / 1024.0;
      const double file = std::filesystem::file_size(dir + "/data.mdb") / 1048576.0;
      std::printf("%12llu %10.1f %10.2f %10.2f %10.2f %12.0f %12.1f %10.1f %10.0f %10.0f\n",
                  static_cast<unsigned long long>(stage), grow_s, hit.p50, hit.p99, miss.p99,
                  200'000 / commit_s, commit.p99, heap, rss, file);
      std::fflush(stdout);
      const std::string k = std::to_string(stage / 1'000'000) + "M_";
      state.counters[k + "hit_p99_us"] = hit.p99;
      state.counters[k + "commit_entries_s"] = 200'000 / commit_s;
      state.counters[k + "heap_MiB"] = heap;
    }
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_IndexScale)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace cairn
BENCHMARK_MAIN();
