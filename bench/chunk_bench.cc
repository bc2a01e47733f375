// Chunking stage micro-benchmarks: FastCDC throughput, the dedup experiment
// behind the default chunk sizes (doc/chunking.md), rsync signature/delta/patch
// of a 4 MiB extent, and hole detection.
//
//   ./cairn_chunk_bench --benchmark_filter=FastCdc
//   ./cairn_chunk_bench --benchmark_filter=Dedup   # CAIRN_DEDUP_CORPUS_MB=200
#include <benchmark/benchmark.h>
// Header-only xxHash: bench/CMakeLists.txt links Cairn libraries only.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <unordered_set>

#include "bench/bench_util.h"
#include "lib/chunk/extent.h"
#include "lib/chunk/fastcdc.h"
#include "lib/chunk/rsync_delta.h"

namespace cairn {
namespace {
using namespace ::cairn::chunk;  // NOLINT: the benchmark exercises this library only

constexpr size_t kThroughputBytes = 256u << 20;
constexpr double kPerChunkOverhead = 100;  // record header + tag + index entry

Chunker MakeChunker(uint32_t avg, uint32_t max_mult, uint32_t level = 2) {
  ChunkerOptions o;
  o.avg_size = avg;
  o.max_size = avg * max_mult;
  o.normalization_level = level;
  auto c = Chunker::Create(o);
  if (!c.ok()) std::abort();
  return std::move(c).value();
}

void RunSplit(benchmark::State& state, ByteView data) {
  const Chunker c = MakeChunker(static_cast<uint32_t>(state.range(0)), 4);
  size_t chunks = 0;
  for (auto _ : state) {
    auto lengths = SplitAll(data, c);
    chunks = lengths.size();
    benchmark::DoNotOptimize(lengths.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
  state.counters["mean_chunk"] = static_cast<double>(data.size()) / chunks;
}

void BM_FastCdcRandom(benchmark::State& state) {
  static const Bytes data = bench::RandomBytes(kThroughputBytes);
  RunSplit(state, data);
}
void BM_FastCdcText(benchmark::State& state) {
  RunSplit(state, bench::CachedTextCorpus(kThroughputBytes));
}
#define CHUNK_CANDIDATES Arg(64 << 10)->Arg(128 << 10)->Arg(256 << 10)->Arg(512 << 10)->Arg(1 << 20)
BENCHMARK(BM_FastCdcRandom)->CHUNK_CANDIDATES->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FastCdcText)->CHUNK_CANDIDATES->Unit(benchmark::kMillisecond);

// StreamChunker at the default size, fed in 1 MiB reads.
void BM_StreamChunker1MiBReads(benchmark::State& state) {
  static const Bytes data = bench::RandomBytes(kThroughputBytes);
  const Chunker c = MakeChunker(kDefaultAvgChunk, kDefaultMaxChunk / kDefaultAvgChunk);
  for (auto _ : state) {
    size_t chunks = 0;
    StreamChunker stream(&c, [&](uint64_t, ByteView) {
      ++chunks;
      return Status::OK();
    });
    for (size_t off = 0; off < data.size(); off += 1 << 20) {
      if (!stream.Write(ByteView(data).subspan(off, 1 << 20)).ok()) std::abort();
    }
    if (!stream.Finish().ok()) std::abort();
    benchmark::DoNotOptimize(chunks);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * data.size()));
}
BENCHMARK(BM_StreamChunker1MiBReads)->Unit(benchmark::kMillisecond);

// ---- Dedup after small edits -------------------------------------------

struct EditedCorpus {
  Bytes original, edited;
  std::vector<size_t> files, edited_files;
};

// ~200 small edits at random offsets: half insertions, half overwrites, of
// 1..16 bytes each. File lengths follow the insertions.
const EditedCorpus& GetEditedCorpus() {
  static const EditedCorpus corpus = [] {
    EditedCorpus c;
    const char* mb = std::getenv("CAIRN_DEDUP_CORPUS_MB");
    const size_t n = size_t(mb != nullptr ? std::atoi(mb) : 200) << 20;
    c.original = bench::TextCorpus(n, {"/usr/include", "/usr/share/doc"}, &c.files);
    std::vector<size_t> file_end(c.files.size());
    std::partial_sum(c.files.begin(), c.files.end(), file_end.begin());
    Bytes rnd = bench::RandomBytes(200 * 40, 77);
    struct Edit {
      size_t offset, len;
      bool insert;
      const uint8_t* bytes;
    };
    std::vector<Edit> edits;
    for (size_t i = 0; i < 200; ++i) {
      uint64_t r;
      std::memcpy(&r, rnd.data() + i * 40, 8);
      edits.push_back(
          {static_cast<size_t>(r % n), 1 + (r >> 40) % 16, i % 2 == 0, rnd.data() + i * 40 + 8});
    }
    std::sort(edits.begin(), edits.end(),
              [](const Edit& a, const Edit& b) { return a.offset < b.offset; });
    c.edited_files = c.files;
    c.edited.reserve(n + 4096);
    size_t pos = 0;
    for (const Edit& e : edits) {
      if (e.offset < pos) continue;  // overlaps the previous overwrite
      const size_t f =
          std::upper_bound(file_end.begin(), file_end.end(), e.offset) - file_end.begin();
      c.edited.insert(c.edited.end(), c.original.begin() + pos, c.original.begin() + e.offset);
      c.edited.insert(c.edited.end(), e.bytes, e.bytes + e.len);
      pos = e.offset;
      if (e.insert) {
        c.edited_files[f] += e.len;
      } else {
        pos = std::min(e.offset + e.len, file_end[f]);  // stay inside the file
        c.edited_files[f] += e.len - (pos - e.offset);
      }
    }
    c.edited.insert(c.edited.end(), c.original.begin() + pos, c.original.end());
    return c;
  }();
  return corpus;
}

// Chunk hashes of `data`, split as one stream (files empty) or per file.
std::vector<std::pair<uint64_t, size_t>> Chunks(ByteView data, const std::vector<size_t>& files,
                                                const Chunker& c) {
  std::vector<std::pair<uint64_t, size_t>> out;
  auto split = [&](ByteView part) {
    size_t pos = 0;
    for (size_t len : SplitAll(part, c)) {
      out.emplace_back(XXH3_64bits(part.data() + pos, len), len);
      pos += len;
    }
  };
  if (files.empty()) {
    split(data);
  } else {
    size_t pos = 0;
    for (size_t len : files) {
      split(data.subspan(pos, len));
      pos += len;
    }
  }
  return out;
}

// Args: avg, max = avg * arg1, normalisation level, per_file (0/1).
void BM_DedupAfterEdits(benchmark::State& state) {
  const EditedCorpus& corpus = GetEditedCorpus();
  const Chunker c =
      MakeChunker(static_cast<uint32_t>(state.range(0)), static_cast<uint32_t>(state.range(1)),
                  static_cast<uint32_t>(state.range(2)));
  const bool per_file = state.range(3) != 0;
  static const std::vector<size_t> kNoFiles;
  for (auto _ : state) {
    auto before = Chunks(corpus.original, per_file ? corpus.files : kNoFiles, c);
    auto after = Chunks(corpus.edited, per_file ? corpus.edited_files : kNoFiles, c);
    std::unordered_set<uint64_t> known;
    for (const auto& [h, len] : before) known.insert(h);
    double new_bytes = 0, new_chunks = 0;
    for (const auto& [h, len] : after) {
      if (known.insert(h).second) new_bytes += len, new_chunks += 1;
    }
    const double gib = static_cast<double>(corpus.original.size()) / (1 << 30);
    state.counters["chunks_per_GiB"] = before.size() / gib;
    state.counters["mean_KiB"] = corpus.original.size() / 1024.0 / before.size();
    state.counters["new_chunks"] = new_chunks;
    state.counters["new_MiB"] = new_bytes / (1 << 20);
    state.counters["new_pct"] = 100 * new_bytes / corpus.original.size();
    // What the edit costs to store: new bytes plus per-chunk overhead.
    state.counters["cost_MiB"] = (new_bytes + kPerChunkOverhead * new_chunks) / (1 << 20);
    // Data a 100M-chunk index covers at this corpus' mean chunk size.
    state.counters["TiB_per_100M"] =
        1e8 * corpus.original.size() / before.size() / (uint64_t{1} << 40);
  }
}
BENCHMARK(BM_DedupAfterEdits)
    ->ArgsProduct({{64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20}, {4, 8}, {2}, {0, 1}})
    ->Args({256 << 10, 4, 0, 0})
    ->Args({256 << 10, 4, 1, 0})
    ->Args({256 << 10, 4, 3, 0})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// ---- rsync on a 4 MiB extent --------------------------------------------

struct ExtentPair {
  Bytes basis, changed, signature, delta;
};
const ExtentPair& GetExtentPair() {
  static const ExtentPair p = [] {
    ExtentPair e;
    e.basis = bench::RandomBytes(kDefaultExtentSize, 5);
    e.changed = e.basis;
    Bytes block = bench::RandomBytes(4096, 6);
    std::copy(block.begin(), block.end(), e.changed.begin() + 1234567);
    e.signature = ComputeSignature(e.basis).value();
    e.delta = ComputeDelta(e.signature, e.changed).value();
    return e;
  }();
  return p;
}

void BM_RsyncSignature4MiB(benchmark::State& state) {
  const ExtentPair& e = GetExtentPair();
  for (auto _ : state) benchmark::DoNotOptimize(ComputeSignature(e.basis).value().data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * e.basis.size()));
  state.counters["sig_bytes"] = static_cast<double>(e.signature.size());
}
void BM_RsyncDelta4MiB(benchmark::State& state) {
  const ExtentPair& e = GetExtentPair();
  for (auto _ : state) {
    benchmark::DoNotOptimize(ComputeDelta(e.signature, e.changed).value().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * e.changed.size()));
  state.counters["delta_bytes"] = static_cast<double>(e.delta.size());
}
void BM_RsyncPatch4MiB(benchmark::State& state) {
  const ExtentPair& e = GetExtentPair();
  for (auto _ : state) {
    benchmark::DoNotOptimize(ApplyDelta(e.basis, e.delta, e.changed.size()).value().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * e.changed.size()));
}
BENCHMARK(BM_RsyncSignature4MiB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RsyncDelta4MiB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RsyncPatch4MiB)->Unit(benchmark::kMillisecond);

void BM_IsAllZero4MiB(benchmark::State& state) {
  static const Bytes zeros(kDefaultExtentSize, 0);
  for (auto _ : state) benchmark::DoNotOptimize(IsAllZero(zeros));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * zeros.size()));
}
BENCHMARK(BM_IsAllZero4MiB);

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
