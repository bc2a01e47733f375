#include "lib/crypto/sha256_lanes.h"

#include <cpuid.h>
#include <immintrin.h>

#include <atomic>

namespace cairn::crypto::internal {
namespace {

// FIPS 180-4 section 4.2.2.
alignas(16) constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define CAIRN_SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

// The state as SHA256RNDS2 takes it: words A, B, E, F in one register and
// C, D, G, H in the other (highest lane first).
struct Lanes {
  __m128i abef, cdgh;
};

CAIRN_SHA_TARGET Lanes ToLanes(const Sha256State& s) {
  const __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.h)),
                                         0xB1);  // B A D C
  const __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.h + 4)),
                                         0x1B);  // H G F E
  return {_mm_alignr_epi8(abcd, efgh, 8), _mm_blend_epi16(efgh, abcd, 0xF0)};
}

CAIRN_SHA_TARGET void FromLanes(const Lanes& l, Sha256State* s) {
  const __m128i feba = _mm_shuffle_epi32(l.abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(l.cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(s->h), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(s->h + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// `blocks` blocks of each of N messages, the N interleaved round by round
// so that one message's rounds run while another's wait.
template <int N>
CAIRN_SHA_TARGET void Compress(Lanes* state, const uint8_t* const* data, size_t blocks) {
  const __m128i big_endian = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  Lanes s[N];
  for (int l = 0; l < N; ++l) s[l] = state[l];
  for (size_t b = 0; b < blocks; ++b) {
    Lanes start[N];
    __m128i w[N][4];  // the message schedule, four words at a time
    for (int l = 0; l < N; ++l) start[l] = s[l];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
#pragma GCC unroll 2
      for (int l = 0; l < N; ++l) {
        __m128i m;
        if (i < 4) {
          m = _mm_shuffle_epi8(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(data[l] + b * 64 + 16 * i)),
              big_endian);
        } else {
          // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at once.
          m = _mm_sha256msg1_epu32(w[l][i & 3], w[l][(i + 1) & 3]);
          m = _mm_add_epi32(m, _mm_alignr_epi8(w[l][(i + 3) & 3], w[l][(i + 2) & 3], 4));
          m = _mm_sha256msg2_epu32(m, w[l][(i + 3) & 3]);
        }
        w[l][i & 3] = m;
        __m128i wk =
            _mm_add_epi32(m, _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * i)));
        s[l].cdgh = _mm_sha256rnds2_epu32(s[l].cdgh, s[l].abef, wk);
        wk = _mm_shuffle_epi32(wk, 0x0E);
        s[l].abef = _mm_sha256rnds2_epu32(s[l].abef, s[l].cdgh, wk);
      }
    }
    for (int l = 0; l < N; ++l) {
      s[l].abef = _mm_add_epi32(s[l].abef, start[l].abef);
      s[l].cdgh = _mm_add_epi32(s[l].cdgh, start[l].cdgh);
    }
  }
  for (int l = 0; l < N; ++l) state[l] = s[l];
}

// CPUID directly: not every compiler's __builtin_cpu_supports knows "sha".
bool CpuHasShaExtensions() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool ssse3 = (ecx & bit_SSSE3) != 0;
  const bool sse41 = (ecx & bit_SSE4_1) != 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool sha = (ebx & bit_SHA) != 0;
  return ssse3 && sse41 && sha;
}

const bool kCpuHasSha = CpuHasShaExtensions();
std::atomic<bool> disabled_for_test{false};

}  // namespace

Sha256State Sha256Initial() {
  return {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
           0x5be0cd19}};
}

bool Sha256LanesAvailable() {
  return kCpuHasSha && !disabled_for_test.load(std::memory_order_relaxed);
}

void DisableSha256LanesForTest(bool disable) { disabled_for_test = disable; }

CAIRN_SHA_TARGET void Sha256Blocks(Sha256State* state, const uint8_t* data, size_t blocks) {
  Lanes l = ToLanes(*state);
  Compress<1>(&l, &data, blocks);
  FromLanes(l, state);
}

CAIRN_SHA_TARGET void Sha256Blocks2(Sha256State* sa, const uint8_t* a, Sha256State* sb,
                                    const uint8_t* b, size_t blocks) {
  Lanes l[2] = {ToLanes(*sa), ToLanes(*sb)};
  const uint8_t* data[2] = {a, b};
  Compress<2>(l, data, blocks);
  FromLanes(l[0], sa);
  FromLanes(l[1], sb);
}

void Sha256StateBytes(const Sha256State& state, uint8_t out[32]) {
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<uint8_t>(state.h[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(state.h[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(state.h[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(state.h[i]);
  }
}

}  // namespace cairn::crypto::internal
