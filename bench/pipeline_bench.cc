// The full per-chunk pipeline the agent runs: FastCDC chunk -> chunk ID
// (HMAC-SHA256) -> zstd -> AES-256-GCM seal -> record framing, on one core.
// Counters split the time by stage so a miss of the 250 MB/s target can be
// explained.
#include <benchmark/benchmark.h>

#include <chrono>

#include "bench/bench_util.h"
#include "lib/chunk/fastcdc.h"
#include "lib/crypto/keys.h"
#include "lib/repo/record.h"

namespace cairn {
namespace {

constexpr size_t kCorpusSize = 64 << 20;

void RunPipeline(benchmark::State& state, ByteView input, int level) {
  auto keys = *crypto::DepartmentKeys::Generate();
  repo::RecordEncoder::Options opts;
  opts.zstd_level = level;
  auto encoder = std::move(*repo::RecordEncoder::Create(keys, opts));
  auto chunker = *chunk::Chunker::Create({});
  Bytes record;
  using Clock = std::chrono::steady_clock;
  double chunk_s = 0, id_s = 0, encode_s = 0;
  uint64_t stored = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    std::vector<size_t> cuts = chunk::SplitAll(input, chunker);
    auto t1 = Clock::now();
    chunk_s += std::chrono::duration<double>(t1 - t0).count();
    size_t off = 0;
    for (size_t len : cuts) {
      ByteView piece = input.subspan(off, len);
      off += len;
      auto a = Clock::now();
      repo::ChunkId id = encoder->Id(piece);
      auto b = Clock::now();
      if (!encoder->Encode(repo::RecordType::kData, id, piece, &record).ok()) {
        state.SkipWithError("encode failed");
        return;
      }
      auto c = Clock::now();
      id_s += std::chrono::duration<double>(b - a).count();
      encode_s += std::chrono::duration<double>(c - b).count();
      stored += record.size();
      benchmark::DoNotOptimize(record.data());
    }
  }
  double total_bytes = static_cast<double>(input.size()) * state.iterations();
  state.SetBytesProcessed(static_cast<int64_t>(total_bytes));
  // MB/s of each stage alone, so the slowest is obvious.
  state.counters["chunk_MBps"] = total_bytes / chunk_s / 1e6;
  state.counters["id_MBps"] = total_bytes / id_s / 1e6;
  state.counters["zstd_seal_MBps"] = total_bytes / encode_s / 1e6;
  state.counters["stored_ratio"] = static_cast<double>(stored) / total_bytes;
}

void BM_PipelineText(benchmark::State& state) {
  RunPipeline(state, bench::CachedTextCorpus(kCorpusSize), static_cast<int>(state.range(0)));
}
BENCHMARK(BM_PipelineText)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PipelineRandom(benchmark::State& state) {
  static const Bytes random = bench::RandomBytes(kCorpusSize, 7);
  RunPipeline(state, random, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_PipelineRandom)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
