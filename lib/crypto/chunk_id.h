// Chunk identity: HMAC-SHA256 of the plaintext under the department ID key.
//
// Keying the hash keeps deduplication inside one department: another
// department (or the vault, which never holds plaintext keys in the clear)
// cannot test whether a known file is stored by computing its ID.
#ifndef CAIRN_LIB_CRYPTO_CHUNK_ID_H_
#define CAIRN_LIB_CRYPTO_CHUNK_ID_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/keys.h"

namespace cairn::crypto {

inline constexpr size_t kChunkIdSize = 32;
using ChunkId = std::array<uint8_t, kChunkIdSize>;

// A hash for unordered containers of chunk IDs: the first bytes of the ID,
// which is HMAC output and already uniform.
struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h;
    std::memcpy(&h, id.data(), sizeof(h));
    return h;
  }
};

// Computes chunk IDs under one ID key.
//
// The key is absorbed once at construction (HMAC pads hashed once); each call
// reuses an already-keyed OpenSSL context from a small internal pool, so the
// per-call overhead is a mutex and a context reset, not a key schedule.
//
// Thread safety: Compute() and TryCompute() are const and may run on many
// threads at once. Copies are cheap and share the keyed state (and its pool);
// the hasher keeps its own copy of the key material inside OpenSSL, so the
// SecretKey passed in may be destroyed afterwards.
class ChunkIdHasher {
 public:
  // Never fails visibly: if OpenSSL cannot provide HMAC-SHA256 (broken
  // install), the error is kept and the first Compute() aborts. Use Create()
  // to get that error as a Status instead.
  explicit ChunkIdHasher(const SecretKey& id_key);
  // Like the constructor, but reports an OpenSSL set-up failure.
  static Result<ChunkIdHasher> Create(const SecretKey& id_key);

  ~ChunkIdHasher();
  ChunkIdHasher(const ChunkIdHasher&);
  ChunkIdHasher& operator=(const ChunkIdHasher&);
  ChunkIdHasher(ChunkIdHasher&&) noexcept;
  ChunkIdHasher& operator=(ChunkIdHasher&&) noexcept;

  // HMAC-SHA256(id_key, plaintext). Aborts the process if OpenSSL fails
  // (only on allocation failure or a hasher whose set-up failed): an ID that
  // is silently wrong would merge unrelated chunks, which is worse than a
  // crash.
  ChunkId Compute(ByteView plaintext) const;
  // Same, reporting an OpenSSL failure as a Status instead of aborting.
  Result<ChunkId> TryCompute(ByteView plaintext) const;

  // out[i] = Compute(in[i]) for each i; `out` has in.size() elements. Where
  // the CPU has the SHA extensions, two messages are hashed side by side,
  // each lane taking the next message as soon as it is done: about 1.9
  // times Compute()'s rate over many messages (sha256_lanes.h). Elsewhere,
  // one Compute() after another.
  void ComputeMany(std::span<const ByteView> in, std::span<ChunkId> out) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_CHUNK_ID_H_
