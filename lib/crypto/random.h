// Cryptographically secure random bytes for keys, key IDs and nonce prefixes.
#ifndef CAIRN_LIB_CRYPTO_RANDOM_H_
#define CAIRN_LIB_CRYPTO_RANDOM_H_

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::crypto {

// Fills `out` from OpenSSL's private DRBG (RAND_priv_bytes), which is kept
// apart from the public DRBG so that values an attacker sees (nonces, salts
// sent in the clear) never share a generator state with secret keys.
// Thread-safe. On failure (the DRBG could not be seeded) returns a retryable
// Unavailable and `out` is zeroed, so that a caller ignoring the error never
// uses partially random bytes as a key.
Status SecureRandom(MutableByteView out);

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_RANDOM_H_
