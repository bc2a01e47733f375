#include "lib/crypto/keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>

#include "lib/crypto/openssl_util.h"
#include "lib/crypto/random.h"

namespace cairn::crypto {
namespace {

constexpr char kMagic[8] = {'C', 'A', 'I', 'R', 'N', 'D', 'K', 'Y'};
constexpr size_t kChecksumOffset = 80;
constexpr size_t kChecksumSize = 32;
static_assert(kChecksumOffset + kChecksumSize == kDepartmentKeysSerializedSize);

// SHA-256 of `data` into `out` (32 bytes). False on OpenSSL failure.
bool Sha256(ByteView data, uint8_t* out) {
  unsigned int len = 0;
  return EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) == 1 &&
         len == kChecksumSize;
}

}  // namespace

SecretKey::SecretKey() { bytes_.fill(0); }

SecretKey::~SecretKey() { SecureZero(bytes_.data(), bytes_.size()); }

SecretKey::SecretKey(const SecretKey& other) : bytes_(other.bytes_) {}

SecretKey& SecretKey::operator=(const SecretKey& other) {
  if (this != &other) bytes_ = other.bytes_;
  return *this;
}

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_) {
  SecureZero(other.bytes_.data(), other.bytes_.size());
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    SecureZero(other.bytes_.data(), other.bytes_.size());
  }
  return *this;
}

Result<SecretKey> SecretKey::Generate() {
  SecretKey key;
  CAIRN_RETURN_IF_ERROR(SecureRandom(MutableByteView(key.bytes_.data(), key.bytes_.size())));
  return key;
}

Result<SecretKey> SecretKey::FromBytes(ByteView b) {
  if (b.size() != kKeySize) {
    return Status::InvalidArgument("secret key must be " + std::to_string(kKeySize) +
                                   " bytes, got " + std::to_string(b.size()));
  }
  SecretKey key;
  std::memcpy(key.bytes_.data(), b.data(), kKeySize);
  return key;
}

bool operator==(const SecretKey& a, const SecretKey& b) {
  return CRYPTO_memcmp(a.bytes_.data(), b.bytes_.data(), kKeySize) == 0;
}

void PrintTo(const SecretKey& /*key*/, std::ostream* os) { *os << "SecretKey(redacted)"; }

Result<DepartmentKeys> DepartmentKeys::Generate() {
  DepartmentKeys keys;
  keys.epoch = 1;
  CAIRN_ASSIGN_OR_RETURN(keys.data_key, SecretKey::Generate());
  CAIRN_ASSIGN_OR_RETURN(keys.id_key, SecretKey::Generate());
  return keys;
}

Bytes SerializeDepartmentKeys(const DepartmentKeys& keys) {
  Bytes out;
  out.reserve(kDepartmentKeysSerializedSize);
  ByteWriter w(&out);
  w.PutBytes(AsBytes(std::string_view(kMagic, sizeof(kMagic))));
  w.PutU16(kDepartmentKeysVersion);
  w.PutU16(0);
  w.PutU32(keys.epoch);
  w.PutBytes(keys.data_key.view());
  w.PutBytes(keys.id_key.view());
  out.resize(kDepartmentKeysSerializedSize);
  if (!Sha256(ByteView(out.data(), kChecksumOffset), out.data() + kChecksumOffset)) {
    Status s = internal::OpenSslError("SHA-256 of department keys");
    std::fprintf(stderr, "cairn: fatal: %s\n", s.ToString().c_str());
    std::abort();
  }
  return out;
}

Result<DepartmentKeys> ParseDepartmentKeys(ByteView b) {
  ByteReader r(b);
  ByteView magic;
  uint16_t version = 0;
  if (!r.ReadView(sizeof(kMagic), &magic) || !r.ReadU16(&version)) {
    return Status::Corruption("department keys: truncated header");
  }
  if (std::memcmp(magic.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption("department keys: bad magic");
  }
  if (version != kDepartmentKeysVersion) {
    return Status::InvalidArgument("department keys: unknown version " + std::to_string(version));
  }
  if (b.size() != kDepartmentKeysSerializedSize) {
    return Status::Corruption("department keys: length " + std::to_string(b.size()) +
                              ", expected " + std::to_string(kDepartmentKeysSerializedSize));
  }
  uint8_t sum[kChecksumSize];
  if (!Sha256(b.first(kChecksumOffset), sum)) {
    return internal::OpenSslError("department keys: SHA-256");
  }
  if (std::memcmp(sum, b.data() + kChecksumOffset, kChecksumSize) != 0) {
    return Status::Corruption("department keys: checksum mismatch");
  }
  uint16_t reserved = 0;
  DepartmentKeys keys;
  ByteView data_key, id_key;
  if (!r.ReadU16(&reserved) || !r.ReadU32(&keys.epoch) || !r.ReadView(kKeySize, &data_key) ||
      !r.ReadView(kKeySize, &id_key)) {
    return Status::Corruption("department keys: truncated body");  // unreachable: size checked
  }
  if (reserved != 0) return Status::Corruption("department keys: reserved field is not zero");
  if (keys.epoch == 0) return Status::Corruption("department keys: epoch 0");
  CAIRN_ASSIGN_OR_RETURN(keys.data_key, SecretKey::FromBytes(data_key));
  CAIRN_ASSIGN_OR_RETURN(keys.id_key, SecretKey::FromBytes(id_key));
  return keys;
}

}  // namespace cairn::crypto
