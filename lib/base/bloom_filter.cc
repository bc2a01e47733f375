#include "lib/base/bloom_filter.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>

namespace cairn {

BloomFilter::BloomFilter(uint64_t bits, unsigned probes, uint64_t seed)
    : bits_(std::max<uint64_t>(64, (bits + 63) / 64 * 64)),
      probes_(std::clamp(probes, 1u, 16u)),
      seed_(seed),
      words_(bits_ / 64, 0) {}

uint64_t BloomFilter::SizeFor(uint64_t expected, double bits_per_key, uint64_t max_bytes) {
  const double want = std::max(1.0, static_cast<double>(expected) * bits_per_key);
  const double cap = static_cast<double>(std::max<uint64_t>(8, max_bytes)) * 8;
  return static_cast<uint64_t>(std::min(want, cap));
}

double BloomFilter::FalsePositiveRate(uint64_t keys) const {
  const double k = probes_;
  return std::pow(1 - std::exp(-k * static_cast<double>(keys) / static_cast<double>(bits_)), k);
}

void BloomFilter::Add(ByteView key) {
  const XXH128_hash_t h = XXH3_128bits_withSeed(key.data(), key.size(), seed_);
  const uint64_t step = h.high64 | 1;
  uint64_t x = h.low64;
  for (unsigned i = 0; i < probes_; ++i, x += step) {
    const uint64_t bit = x % bits_;
    words_[bit / 64] |= uint64_t{1} << (bit % 64);
  }
}

bool BloomFilter::MayContain(ByteView key) const {
  const XXH128_hash_t h = XXH3_128bits_withSeed(key.data(), key.size(), seed_);
  const uint64_t step = h.high64 | 1;
  uint64_t x = h.low64;
  for (unsigned i = 0; i < probes_; ++i, x += step) {
    const uint64_t bit = x % bits_;
    if ((words_[bit / 64] & (uint64_t{1} << (bit % 64))) == 0) return false;
  }
  return true;
}

}  // namespace cairn
