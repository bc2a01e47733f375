// Key material: a 256-bit secret key type, and a department's key pair with
// its versioned on-disk form.
//
// Key hierarchy (see doc/design.md):
//   department data key --HKDF(key ID)--> per-session AES-256-GCM key
//   department ID key   --HMAC-SHA256--> chunk IDs (dedup stays inside one
//                                         department)
// Destroying both department keys makes the department's data unreadable.
#ifndef CAIRN_LIB_CRYPTO_KEYS_H_
#define CAIRN_LIB_CRYPTO_KEYS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::crypto {

inline constexpr size_t kKeySize = 32;

// 32 bytes of secret key material held inline (no heap copy to forget).
// The bytes are overwritten with SecureZero when the object is destroyed or
// assigned over, and a moved-from key is all zero. Copyable and movable; a
// copy is a second secret that is wiped independently. Not thread-safe to
// mutate concurrently; const access from many threads is fine.
//
// There is deliberately no operator<< and no formatter, so a key cannot be
// logged by accident; GoogleTest prints it as "SecretKey(redacted)".
class SecretKey {
 public:
  SecretKey();  // all zero
  ~SecretKey();
  SecretKey(const SecretKey& other);
  SecretKey& operator=(const SecretKey& other);
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;

  // A fresh key from SecureRandom. Unavailable if the DRBG failed.
  static Result<SecretKey> Generate();
  // Copies b. InvalidArgument unless b.size() == kKeySize.
  static Result<SecretKey> FromBytes(ByteView b);

  ByteView view() const { return ByteView(bytes_.data(), bytes_.size()); }
  const uint8_t* data() const { return bytes_.data(); }

  // Constant-time comparison (no early exit that would leak a prefix length).
  friend bool operator==(const SecretKey& a, const SecretKey& b);

  // GoogleTest's printer hook; prints no key material.
  friend void PrintTo(const SecretKey& key, std::ostream* os);

 private:
  std::array<uint8_t, kKeySize> bytes_;
};

// A department's key pair.
struct DepartmentKeys {
  // Bumps on rotation, so records can say which generation sealed them.
  uint32_t epoch = 1;
  // AES session keys are derived from it (HKDF, see hkdf.h).
  SecretKey data_key;
  // HMAC key for chunk IDs (see chunk_id.h).
  SecretKey id_key;

  // Epoch 1 and two independent random keys. Unavailable if the DRBG failed.
  static Result<DepartmentKeys> Generate();
};

// Serialised form, version 1 (112 bytes, little-endian):
//   0  magic     8  "CAIRNDKY"
//   8  version   u16 = 1
//  10  reserved  u16 = 0
//  12  epoch     u32 (>= 1)
//  16  data_key  32
//  48  id_key    32
//  80  checksum  32  SHA-256 of bytes [0, 80)
// The checksum detects corruption only; it does not authenticate. The blob
// holds raw keys: callers wrap it with the vault master key before it touches
// disk or the network, and SecureZero the returned buffer when done.
inline constexpr size_t kDepartmentKeysSerializedSize = 112;
inline constexpr uint16_t kDepartmentKeysVersion = 1;

// Never fails in practice; aborts the process only if OpenSSL cannot compute
// SHA-256 at all (allocation failure or a broken install), since returning a
// blob without a valid checksum would lose the keys silently.
Bytes SerializeDepartmentKeys(const DepartmentKeys& keys);

// Corruption for bad magic, length, checksum, reserved field or epoch 0;
// InvalidArgument for a version this build does not know (a newer writer).
Result<DepartmentKeys> ParseDepartmentKeys(ByteView b);

}  // namespace cairn::crypto

#endif  // CAIRN_LIB_CRYPTO_KEYS_H_
