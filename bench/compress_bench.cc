// zstd per-chunk compression at levels 1 and 3, and decompression, on
// text-like data (files from /usr/include) and on random data. The
// "ratio" counter is compressed/original size.
//
//   ./build/bench/cairn_compress_bench --benchmark_counters_tabular=true
//
// BM_CompressTree compresses a whole real tree the ways a backup could
// (CAIRN_COMPRESS_TREE=DIR; skipped without it): its small files one frame
// each, as the agent stores them, or packed in path order into frames of
// about `unit` bytes; its large files in pieces of `unit` bytes:
//
//   CAIRN_COMPRESS_TREE=/var/tmp/cairn-compare/corpus-662cbd14
//   ./build/main/bench/cairn_compress_bench --benchmark_filter=Tree
//     --benchmark_counters_tabular=true   (one command line, the variable set)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

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

// A tree's regular files, read in path order: those under kSmallFile
// one by one, and the larger ones concatenated.
constexpr size_t kSmallFile = 64 << 10;
struct Tree {
  std::vector<Bytes> small;
  Bytes large;
  std::string error;  // why the tree could not be read whole
};

const Tree* LoadTree() {
  static const Tree* tree = []() -> Tree* {
    auto* t = new Tree;
    const char* root = std::getenv("CAIRN_COMPRESS_TREE");
    if (root == nullptr) {
      t->error = "set CAIRN_COMPRESS_TREE to a directory";
      return t;
    }
    namespace fs = std::filesystem;
    std::vector<fs::path> paths;
    std::error_code ec;
    for (fs::recursive_directory_iterator
             it(root, fs::directory_options::skip_permission_denied, ec),
         end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && !it->is_symlink(ec)) paths.push_back(it->path());
    }
    if (ec || paths.empty()) {
      t->error = std::string("CAIRN_COMPRESS_TREE=") + root + ": " +
                 (ec ? ec.message() : std::string("no regular files"));
      return t;
    }
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) {
      std::ifstream in(p, std::ios::binary);
      Bytes b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        t->error = p.string() + ": cannot be read";
        return t;
      }
      if (b.size() < kSmallFile) {
        t->small.push_back(std::move(b));
      } else {
        t->large.insert(t->large.end(), b.begin(), b.end());
      }
    }
    return t;
  }();
  return tree;
}

// Args: level, what (0: small files one frame each; 1: small files packed
// into frames of about `unit` bytes; 2: large files in pieces of `unit`),
// unit. Counters: ratio (stored/original, raw where zstd saves too little),
// frames, and stored_mb with each frame's record overhead in a pack (104
// bytes of record, 48 of footer index entry; doc/design.md).
void BM_CompressTree(benchmark::State& state) {
  const Tree* tree = LoadTree();
  if (!tree->error.empty()) {
    state.SkipWithError(tree->error.c_str());
    return;
  }
  CompressorOptions o;
  o.level = static_cast<int>(state.range(0));
  Compressor c = MustOk(Compressor::Create(o));
  const int what = static_cast<int>(state.range(1));
  const size_t unit = static_cast<size_t>(state.range(2));
  std::vector<ByteView> frames;
  Bytes packed;
  if (what == 0) {
    for (const Bytes& f : tree->small) frames.push_back(f);
  } else if (what == 1) {
    for (const Bytes& f : tree->small) packed.insert(packed.end(), f.begin(), f.end());
    // Cut at file ends once a frame holds `unit` bytes.
    size_t begin = 0, at = 0;
    for (const Bytes& f : tree->small) {
      at += f.size();
      if (at - begin >= unit) {
        frames.push_back(ByteView(packed).subspan(begin, at - begin));
        begin = at;
      }
    }
    if (at > begin) frames.push_back(ByteView(packed).subspan(begin, at - begin));
  } else {
    for (size_t off = 0; off < tree->large.size(); off += unit) {
      frames.push_back(
          ByteView(tree->large).subspan(off, std::min(unit, tree->large.size() - off)));
    }
  }
  if (frames.empty()) {
    state.SkipWithError(what == 2 ? "the tree has no large files" : "the tree has no small files");
    return;
  }
  Bytes out;
  size_t in_total = 0, out_total = 0;
  for (auto _ : state) {
    in_total = out_total = 0;
    for (ByteView f : frames) {
      Result<bool> keep = c.Compress(f, &out);
      if (!keep.ok()) state.SkipWithError(keep.status().ToString().c_str());
      in_total += f.size();
      out_total += keep.ok() && *keep ? out.size() : f.size();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in_total));
  state.counters["input_mb"] = static_cast<double>(in_total) / 1e6;
  state.counters["ratio"] = static_cast<double>(out_total) / static_cast<double>(in_total);
  state.counters["frames"] = static_cast<double>(frames.size());
  state.counters["stored_mb"] = static_cast<double>(out_total + 152 * frames.size()) / 1e6;
}
BENCHMARK(BM_CompressTree)
    ->ArgNames({"level", "what", "unit"})
    ->Args({3, 0, 0})
    ->Args({3, 1, 1 << 20})
    ->Args({2, 1, 1 << 20})
    ->Args({1, 1, 1 << 20})
    ->Args({3, 2, 256 << 10})
    ->Args({2, 2, 256 << 10})
    ->Args({1, 2, 256 << 10})
    ->Args({3, 2, 1 << 20})
    ->Args({2, 2, 1 << 20})
    ->Args({1, 2, 1 << 20})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::compress

BENCHMARK_MAIN();
