// Inputs shared by the micro-benchmarks: reproducible random buffers and a
// text-like corpus built from files every Debian host has.
#ifndef CAIRN_BENCH_BENCH_UTIL_H_
#define CAIRN_BENCH_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/base/bytes.h"

namespace cairn::bench {

// `n` pseudo-random bytes (splitmix64 from `seed`): incompressible, no
// duplicate content. Same seed, same bytes.
Bytes RandomBytes(size_t n, uint64_t seed = 1);

// Up to `n` bytes of real text-like data: regular files under `roots`, walked
// in sorted path order (so the corpus is the same on the same host),
// concatenated; compressed files (.gz .xz .bz2 .zst .lz4 ...) are skipped. If
// the files hold fewer than `n` bytes the rest is synthetic text (see
// SyntheticText), so the result always has exactly `n` bytes. When
// `file_lengths` is non-null it receives the length of each piece in order
// (the last file may be cut short; the synthetic tail counts as one piece), for
// benchmarks that treat the corpus as a file tree.
Bytes TextCorpus(size_t n,
                 const std::vector<std::string>& roots = {"/usr/include", "/usr/share/doc"},
                 std::vector<size_t>* file_lengths = nullptr);

// `n` bytes of synthetic English-like text: words drawn with a skewed
// distribution from a fixed vocabulary, with punctuation and line breaks.
// Compresses roughly like prose; deterministic for a seed.
Bytes SyntheticText(size_t n, uint64_t seed = 1);

// The first `n` bytes of TextCorpus with the default roots, built once per
// process and cached (for benchmarks that all want the same corpus); a later
// call with a larger `n` rebuilds it, invalidating earlier views.
ByteView CachedTextCorpus(size_t n);

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_BENCH_UTIL_H_
