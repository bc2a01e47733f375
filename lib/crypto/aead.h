// AES-256-GCM sealing and opening of records.
//
// Nonce layout (12 bytes): nonce_prefix as u32 little-endian, then a 64-bit
// counter as u64 little-endian. Under one key, a nonce must never be used
// twice: GCM then leaks the XOR of two plaintexts and lets an attacker forge
// tags. Cairn guarantees this as follows:
//   * every backup session derives its own key (hkdf.h, fresh random key ID);
//   * one Sealer per key hands out counters from an atomic, strictly
//     increasing, and refuses (rather than wraps) when the counter is used up;
//   * if several Sealers ever share one key they MUST use distinct prefixes.
// The nonce is returned by Seal() and stored in the record header; Open()
// takes it back from there.
#ifndef CAIRN_LIB_CRYPTO_AEAD_H_
#define CAIRN_LIB_CRYPTO_AEAD_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/keys.h"

namespace cairn::crypto {

inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
using Nonce = std::array<uint8_t, kNonceSize>;

// GCM's limit on one message: 2^39 - 256 bits.
inline constexpr uint64_t kMaxAeadPlaintext = (uint64_t{1} << 36) - 32;

// Encrypts records under one key.
//
// Thread safety: Seal() may be called from many threads at once; each call
// gets a distinct nonce. Move-only; moving while another thread seals is a
// race like any other.
//
// Performance: the AES key schedule and GHASH table are computed once per
// concurrently used OpenSSL context (kept in a small pool), not per call.
class Sealer {
 public:
  // The Sealer keeps its own copy of the key; `key` may be destroyed after.
  static Result<Sealer> Create(const SecretKey& key, uint32_t nonce_prefix = 0);
  // Test-only: starts the counter at `start_counter` so that exhaustion can
  // be exercised. Production code must use Create().
  static Result<Sealer> CreateForTest(const SecretKey& key, uint32_t nonce_prefix,
                                      uint64_t start_counter);

  ~Sealer();
  Sealer(Sealer&&) noexcept;
  Sealer& operator=(Sealer&&) noexcept;
  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // Encrypts `plaintext`, authenticating it together with `aad` (the record
  // header, so that a header cannot be moved onto another ciphertext).
  // out.size() must equal plaintext.size() + kTagSize; writes the ciphertext
  // then the 16-byte tag. `out` may start at the same address as `plaintext`
  // (in-place) but must not otherwise overlap it. Returns the nonce used.
  //
  // Errors: InvalidArgument for a size mismatch, partial overlap or a
  // plaintext over kMaxAeadPlaintext (no nonce is consumed); NoSpace once
  // the counter is exhausted (2^64 - 1 seals; derive a new session key);
  // an OpenSSL failure otherwise. On NoSpace or an OpenSSL failure `out` is
  // zeroed, and a nonce that was reserved is burnt, never reused.
  Result<Nonce> Seal(ByteView aad, ByteView plaintext, MutableByteView out);

  // Nonces consumed so far (including burnt ones).
  uint64_t nonces_used() const;
  uint32_t nonce_prefix() const;

 private:
  struct Impl;
  explicit Sealer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decrypts and verifies records under one key.
//
// Thread safety: Open() is const and may run on many threads at once.
// Move-only.
class Opener {
 public:
  // The Opener keeps its own copy of the key; `key` may be destroyed after.
  static Result<Opener> Create(const SecretKey& key);

  ~Opener();
  Opener(Opener&&) noexcept;
  Opener& operator=(Opener&&) noexcept;
  Opener(const Opener&) = delete;
  Opener& operator=(const Opener&) = delete;

  // ciphertext_and_tag = ciphertext || tag. out.size() must equal
  // ciphertext_and_tag.size() - kTagSize (InvalidArgument otherwise). `out`
  // may start at the same address as the ciphertext but must not otherwise
  // overlap it.
  //
  // Corruption when the tag does not verify (wrong key, nonce, aad or any
  // flipped bit) or when the input is too short to hold a tag. On every
  // error except a partial overlap, `out` is zeroed, so unauthenticated
  // plaintext never escapes.
  Status Open(const Nonce& nonce, ByteView aad, ByteView ciphertext_and_tag,
              MutableByteView out) const;

 private:
  struct Impl;
  explicit Opener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_AEAD_H_
