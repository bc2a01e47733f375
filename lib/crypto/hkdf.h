// HKDF-SHA256 (RFC 5869) and the per-session key derivation built on it.
#ifndef CAIRN_LIB_CRYPTO_HKDF_H_
#define CAIRN_LIB_CRYPTO_HKDF_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/keys.h"

namespace cairn::crypto {

// HKDF-SHA256 extract-then-expand, producing kKeySize (32) bytes. An empty
// salt means the RFC's default (HashLen zero bytes); an empty info is allowed.
// InvalidArgument for an empty input_key. Thread-safe (no shared state).
Result<SecretKey> HkdfSha256(ByteView input_key, ByteView salt, ByteView info);

inline constexpr size_t kKeyIdSize = 16;
using KeyId = std::array<uint8_t, kKeyIdSize>;

// The HKDF info string that binds a derived key to its purpose and format
// version, so that the same data key can never yield the same bytes for a
// different use.
inline constexpr std::string_view kSessionKeyInfo = "cairn/v1/session-key";

// Session key for one backup session:
//   HKDF-SHA256(ikm = data_key, salt = key_id, info = "cairn/v1/session-key").
// The key ID travels in every record header, so a reader holding the data key
// re-derives the session key from the record alone.
//
// key_id MUST be fresh for every session (16 bytes from SecureRandom, e.g.
// NewKeyId()): two sessions with the same key ID get the same AES key, and
// their Sealers would then repeat nonces, which breaks GCM completely.
Result<SecretKey> DeriveSessionKey(const SecretKey& data_key, const KeyId& key_id);

// A fresh random key ID. Unavailable if the DRBG failed.
Result<KeyId> NewKeyId();

inline constexpr std::string_view kGearSeedInfo = "cairn/v1/cdc-gear-seed";
// The FastCDC gear seed of a department: the first 8 bytes (little-endian)
// of HKDF(id_key, salt = empty, info = kGearSeedInfo). Keying the chunker
// per department means nobody without the ID key can predict where a known
// file is cut, so chunk lengths seen by the vault or on the wire do not
// fingerprint content (doc/chunking.md). Deterministic: the same department
// always chunks the same way, which deduplication needs.
Result<uint64_t> DeriveGearSeed(const SecretKey& id_key);

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_HKDF_H_
