// SHA-256, constant-time comparison, password hashing (scrypt) and key
// wrapping under a master key. Thread-safe, stateless.
#ifndef CAIRN_LIB_CRYPTO_HASH_H_
#define CAIRN_LIB_CRYPTO_HASH_H_

#include <array>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/crypto/keys.h"

namespace cairn::crypto {

using Sha256Digest = std::array<uint8_t, 32>;
Sha256Digest Sha256(ByteView data);

// Compares in time independent of where the inputs differ. Different sizes
// compare unequal (the size itself is not secret).
bool ConstantTimeEqual(ByteView a, ByteView b);

// Hashes a password for storage: "scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex>"
// with N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s here: slow for a guesser, fine
// for a login) and a random 16-byte salt.
Result<std::string> HashPassword(std::string_view password);
// A password to hand to a person: 20 characters from an alphabet without
// look-alikes (about 116 bits).
Result<std::string> RandomPassword();
// OK(true/false) for a well-formed hash; InvalidArgument for a malformed
// one. Parameters above N = 2^20 are refused (a stored hash must not make
// a login allocate gigabytes).
Result<bool> VerifyPassword(std::string_view password, std::string_view encoded);

// Wraps secret bytes (department keys) under the vault master key:
//   "CWRP" | version 1 | salt (16) | nonce (12) | ciphertext | tag (16)
// with key = HKDF(master, salt, "cairn/v1/key-wrap") and the first 21 bytes
// as AAD. A fresh salt per wrap gives a fresh key, so the nonce never
// repeats. Unwrap returns Corruption for any damage or the wrong master.
Result<Bytes> WrapSecret(const SecretKey& master, ByteView secret);
Result<Bytes> UnwrapSecret(const SecretKey& master, ByteView wrapped);

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_HASH_H_
