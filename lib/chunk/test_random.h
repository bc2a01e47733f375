// Deterministic fast pseudo-random bytes for the chunk tests (not for keys).
#ifndef CAIRN_LIB_CHUNK_TEST_RANDOM_H_
#define CAIRN_LIB_CHUNK_TEST_RANDOM_H_

#include <cstdint>
#include <cstring>

#include "lib/base/bytes.h"
#include "lib/base/splitmix.h"

namespace cairn::testing {

// splitmix64: ~8 GB/s of bytes, enough to stream a GiB through a test.
class TestRng {
 public:
  explicit TestRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return SplitMix64(&state_); }
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  void Fill(uint8_t* p, size_t n) {
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t v = Next();
      std::memcpy(p, &v, 8);
    }
    if (n > 0) {
      uint64_t v = Next();
      std::memcpy(p, &v, n);
    }
  }
  cairn::Bytes RandomBytes(size_t n) {
    cairn::Bytes b(n);
    Fill(b.data(), n);
    return b;
  }

 private:
  uint64_t state_;
};

}  // namespace cairn::testing

#endif  // CAIRN_LIB_CHUNK_TEST_RANDOM_H_
