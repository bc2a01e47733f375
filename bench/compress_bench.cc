// zstd per-chunk compression at levels 1 and 3, and decompression, on
// text-like data (files from /usr/include) and on random data. The
// "ratio" counter is compressed/original size.
//
//   ./build/bench/cairn_compress_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "bench/bench_util.h"
#include "lib/compress/zstd.h"

namespace cairn::compress {
namespace {

constexpr size_t kCorpusBytes = 16 << 20;

template <typename T>
T MustOk(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    std::abort();
  }
  return std::move(r).value();
}

// 16 MiB of concatenated headers, cut into chunks of the benchmark's size.
ByteView Corpus(bool text) {
  static const Bytes text_corpus = bench::TextCorpus(kCorpusBytes, {"/usr/include"});
  static const Bytes random_corpus = bench::RandomBytes(kCorpusBytes, 9);
  return text ? ByteView(text_corpus) : ByteView(random_corpus);
}

// Args: level, chunk size, text (1) or random (0).
void BM_ZstdCompress(benchmark::State& state) {
  CompressorOptions o;
  o.level = static_cast<int>(state.range(0));
  Compressor c = MustOk(Compressor::Create(o));
  const size_t chunk = static_cast<size_t>(state.range(1));
  const ByteView corpus = Corpus(state.range(2) != 0);
  Bytes out;
  size_t offset = 0, in_total = 0, out_total = 0, stored = 0, calls = 0;
  for (auto _ : state) {
    const ByteView in = corpus.subspan(offset, chunk);
    offset = (offset + chunk + chunk > corpus.size()) ? 0 : offset + chunk;
    Result<bool> keep = c.Compress(in, &out);
    if (!keep.ok()) state.SkipWithError(keep.status().ToString().c_str());
    in_total += in.size();
    out_total += *keep ? out.size() : in.size();
    stored += *keep ? 1 : 0;
    ++calls;
  }
  state.SetBytesProcessed(static_cast<int64_t>(in_total));
  state.counters["ratio"] = static_cast<double>(out_total) / static_cast<double>(in_total);
  state.counters["compressed_share"] = static_cast<double>(stored) / static_cast<double>(calls);
}
BENCHMARK(BM_ZstdCompress)
    ->ArgNames({"level", "chunk", "text"})
    ->Args({1, 1 << 20, 1})
    ->Args({3, 1 << 20, 1})
    ->Args({1, 256 << 10, 1})
    ->Args({3, 256 << 10, 1})
    ->Args({1, 1 << 20, 0})
    ->Args({3, 1 << 20, 0});

// Args: level the frames were made with, chunk size. Text only (random data
// is stored raw and never decompressed).
void BM_ZstdDecompress(benchmark::State& state) {
  CompressorOptions o;
  o.level = static_cast<int>(state.range(0));
  Compressor c = MustOk(Compressor::Create(o));
  Decompressor d = MustOk(Decompressor::Create());
  const size_t chunk = static_cast<size_t>(state.range(1));
  const ByteView corpus = Corpus(true);
  std::vector<Bytes> frames;
  for (size_t off = 0; off + chunk <= corpus.size(); off += chunk) {
    Bytes f;
    if (!MustOk(c.Compress(corpus.subspan(off, chunk), &f))) continue;
    frames.push_back(std::move(f));
  }
  if (frames.empty()) {
    state.SkipWithError("corpus did not compress");
    return;
  }
  Bytes out(chunk);
  size_t i = 0;
  for (auto _ : state) {
    Status s = d.DecompressInto(frames[i], out);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    i = (i + 1) % frames.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * chunk));
}
BENCHMARK(BM_ZstdDecompress)->ArgNames({"level", "chunk"})->Args({1, 1 << 20})->Args({3, 1 << 20});

}  // namespace
}  // namespace cairn::compress

BENCHMARK_MAIN();
