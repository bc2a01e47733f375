// splitmix64: a tiny, fast, non-cryptographic 64-bit generator (a Weyl
// sequence through a bijective mixer). For deterministic tables (the FastCDC
// gear), test data and benchmark inputs; never for keys or nonces, which
// come from lib/crypto's SecureRandom.
#ifndef CAIRN_LIB_BASE_SPLITMIX_H_
#define CAIRN_LIB_BASE_SPLITMIX_H_

#include <cstdint>

namespace cairn {

// Advances *state and returns the next value. Same seed, same sequence.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_SPLITMIX_H_
