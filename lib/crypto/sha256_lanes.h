// SHA-256 compression with the x86 SHA extensions, one message or two side
// by side. Internal to lib/crypto: ChunkIdHasher::ComputeMany builds
// HMAC-SHA256 on it.
//
// Why two: each SHA256RNDS2 waits for the one before it, so one message
// leaves the unit idle half the time (1.8 GB/s on the AMD EPYC the
// benchmarks run on, the same as OpenSSL); a second, independent message
// fills those cycles (3.4 GB/s for the pair). More lanes add little (3.6 GB/s
// for four) and need more messages at once, so there are two.
#ifndef CAIRN_LIB_CRYPTO_SHA256_LANES_H_
#define CAIRN_LIB_CRYPTO_SHA256_LANES_H_

#include <cstddef>
#include <cstdint>

namespace cairn::crypto::internal {

inline constexpr size_t kSha256Block = 64;

// A SHA-256 chaining value, H0..H7 in FIPS 180-4 order.
struct Sha256State {
  uint32_t h[8];
};

// The initial value of SHA-256.
Sha256State Sha256Initial();

// Whether this CPU has the SHA extensions (and SSSE3 and SSE4.1, which the
// code around them uses), so that the functions below may be called. False
// after DisableSha256LanesForTest(true).
bool Sha256LanesAvailable();

// Makes Sha256LanesAvailable() false (or true again, if the CPU has them),
// so that tests cover the path taken on CPUs without the extensions.
void DisableSha256LanesForTest(bool disable);

// Compresses `blocks` 64-byte blocks of `data` into *state.
void Sha256Blocks(Sha256State* state, const uint8_t* data, size_t blocks);

// The same for two independent messages at once: `blocks` blocks of `a`
// into *sa and of `b` into *sb, interleaved.
void Sha256Blocks2(Sha256State* sa, const uint8_t* a, Sha256State* sb, const uint8_t* b,
                   size_t blocks);

// The 32-byte big-endian digest a state stands for.
void Sha256StateBytes(const Sha256State& state, uint8_t out[32]);

}  // namespace cairn::crypto::internal

#endif  // CAIRN_LIB_CRYPTO_SHA256_LANES_H_
