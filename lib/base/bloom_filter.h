// BloomFilter: a fixed-size set of byte strings that answers "maybe" or
// "no". GC marks live chunks in one (vault/store/gc.h): a false "maybe"
// keeps a piece of garbage until a later run, never the reverse, so the
// filter's size, not the repository's, bounds GC's memory.
//
// Double hashing (Kirsch and Mitzenmacher) over XXH3-128 with a random
// seed per filter, so that nobody can choose keys that collide on purpose
// and the garbage one run keeps by chance is not kept by the next.
//
// Thread-compatible: Add from one thread at a time; MayContain from many
// once adding is done.
#ifndef CAIRN_LIB_BASE_BLOOM_FILTER_H_
#define CAIRN_LIB_BASE_BLOOM_FILTER_H_

#include <cstdint>
#include <vector>

#include "lib/base/bytes.h"

namespace cairn {

class BloomFilter {
 public:
  // A filter of `bits` bits (rounded up to a multiple of 64, at least 64)
  // probing `probes` bits per key (1..16). `seed` varies the hashing.
  BloomFilter(uint64_t bits, unsigned probes, uint64_t seed);

  // The size for `expected` keys at about `bits_per_key` bits each, capped
  // at `max_bytes` (past the cap the false-positive rate rises instead).
  static uint64_t SizeFor(uint64_t expected, double bits_per_key, uint64_t max_bytes);
  // The expected false-positive rate once `keys` keys were added.
  double FalsePositiveRate(uint64_t keys) const;

  void Add(ByteView key);
  bool MayContain(ByteView key) const;

  uint64_t bits() const { return bits_; }
  uint64_t memory_bytes() const { return words_.size() * sizeof(uint64_t); }
  unsigned probes() const { return probes_; }

 private:
  uint64_t bits_;
  unsigned probes_;
  uint64_t seed_;
  std::vector<uint64_t> words_;
};

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_BLOOM_FILTER_H_
