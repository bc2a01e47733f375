// Per-chunk crypto stages: chunk ID (HMAC-SHA256) and AES-256-GCM seal/open.
// Sizes: 1 MiB (a large chunk) down to 4 KiB, where fixed per-call costs
// (context reuse, locking) would show.
//
//   ./build/bench/cairn_crypto_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "bench/bench_util.h"
#include "lib/crypto/aead.h"
#include "lib/crypto/chunk_id.h"
#include "lib/crypto/keys.h"

namespace cairn::crypto {
namespace {

template <typename T>
T MustOk(Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    std::abort();
  }
  return std::move(r).value();
}

const SecretKey& Key() {
  static const SecretKey key = MustOk(SecretKey::Generate());
  return key;
}

void BM_ChunkIdHmacSha256(benchmark::State& state) {
  static const ChunkIdHasher hasher(Key());  // shared across threads, as in the agent
  const Bytes data =
      bench::RandomBytes(static_cast<size_t>(state.range(0)), 1 + state.thread_index());
  for (auto _ : state) {
    ChunkId id = hasher.Compute(data);
    benchmark::DoNotOptimize(id);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ChunkIdHmacSha256)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_ChunkIdHmacSha256)->Arg(1 << 20)->Threads(2)->UseRealTime();

// Chunks not in cache, as in the agent, where the reader thread wrote them:
// each iteration hashes the next of 256 MiB of chunks, so every one comes
// from memory.
void BM_ChunkIdHmacSha256Cold(benchmark::State& state) {
  static const ChunkIdHasher hasher(Key());
  const size_t size = static_cast<size_t>(state.range(0));
  const size_t count = (256u << 20) / size;
  const Bytes data = bench::RandomBytes(size * count, 7);
  size_t i = 0;
  for (auto _ : state) {
    ChunkId id = hasher.Compute(ByteView(data).subspan(i * size, size));
    benchmark::DoNotOptimize(id);
    i = (i + 1) % count;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ChunkIdHmacSha256Cold)->Arg(256 << 10)->Arg(1 << 20);

// ComputeMany over batches of `range(1)` cold chunks of about range(0)
// bytes each (sizes spread from half to one and a half times that, as a
// content-defined chunker's are): the two SHA-extension lanes against one
// Compute() after another (range(2) = 0).
void BM_ChunkIdMany(benchmark::State& state) {
  static const ChunkIdHasher hasher(Key());
  const size_t size = static_cast<size_t>(state.range(0));
  const size_t batch = static_cast<size_t>(state.range(1));
  const bool many = state.range(2) != 0;
  const Bytes data = bench::RandomBytes(256u << 20, 9);
  std::vector<ByteView> chunks;
  uint64_t x = 1;
  for (size_t at = 0;;) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const size_t n = size / 2 + (x >> 33) % size;
    if (at + n > data.size()) break;
    chunks.push_back(ByteView(data).subspan(at, n));
    at += n;
  }
  std::vector<ChunkId> ids(batch);
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    if (i + batch > chunks.size()) i = 0;
    std::span<const ByteView> in(chunks.data() + i, batch);
    if (many) {
      hasher.ComputeMany(in, ids);
    } else {
      for (size_t j = 0; j < batch; ++j) ids[j] = hasher.Compute(in[j]);
    }
    benchmark::DoNotOptimize(ids.data());
    for (ByteView c : in) bytes += static_cast<int64_t>(c.size());
    i += batch;
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_ChunkIdMany)
    ->ArgNames({"size", "batch", "lanes"})
    ->Args({192 << 10, 16, 0})
    ->Args({192 << 10, 16, 1})
    ->Args({192 << 10, 2, 1})
    ->Args({16 << 10, 64, 0})
    ->Args({16 << 10, 64, 1})
    ->Args({1 << 20, 4, 1});

void BM_AeadSeal(benchmark::State& state) {
  static Sealer sealer = MustOk(Sealer::Create(Key()));
  const size_t n = static_cast<size_t>(state.range(0));
  const Bytes pt = bench::RandomBytes(n, 3);
  const Bytes aad(40, 7);  // about a record header
  Bytes out(n + kTagSize);
  for (auto _ : state) {
    Result<Nonce> nonce = sealer.Seal(aad, pt, out);
    if (!nonce.ok()) state.SkipWithError(nonce.status().ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AeadSeal)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_AeadSeal)->Arg(1 << 20)->Threads(2)->UseRealTime();

void BM_AeadOpen(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Sealer sealer = MustOk(Sealer::Create(Key()));
  static const Opener opener = MustOk(Opener::Create(Key()));
  const Bytes pt = bench::RandomBytes(n, 4);
  const Bytes aad(40, 7);
  Bytes ct(n + kTagSize);
  const Nonce nonce = MustOk(sealer.Seal(aad, pt, ct));
  Bytes out(n);
  for (auto _ : state) {
    Status s = opener.Open(nonce, aad, ct, out);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AeadOpen)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

// The cost the pool avoids: a fresh Sealer (cipher fetch + AES key schedule)
// for every record.
void BM_AeadSealFreshSealerPerCall(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Bytes pt = bench::RandomBytes(n, 5);
  Bytes out(n + kTagSize);
  for (auto _ : state) {
    Sealer sealer = MustOk(Sealer::Create(Key()));
    benchmark::DoNotOptimize(sealer.Seal(ByteView(), pt, out).ok());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_AeadSealFreshSealerPerCall)->Arg(4 << 10)->Arg(64 << 10);

}  // namespace
}  // namespace cairn::crypto

BENCHMARK_MAIN();
