#include "lib/crypto/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <charconv>
#include <cstring>
#include <vector>

#include "lib/crypto/aead.h"
#include "lib/crypto/hkdf.h"
#include "lib/crypto/openssl_util.h"
#include "lib/crypto/random.h"

namespace cairn::crypto {
namespace {

constexpr int kScryptLogN = 15;
constexpr int kScryptMaxLogN = 20;
constexpr uint64_t kScryptR = 8, kScryptP = 1;
constexpr size_t kSaltSize = 16, kHashSize = 32;

constexpr uint8_t kWrapMagic[4] = {'C', 'W', 'R', 'P'};
constexpr uint8_t kWrapVersion = 1;
constexpr size_t kWrapHeader = 4 + 1 + 16;  // magic, version, salt
constexpr std::string_view kWrapInfo = "cairn/v1/key-wrap";

Result<Bytes> Scrypt(std::string_view password, ByteView salt, int log_n, uint64_t r, uint64_t p) {
  Bytes out(kHashSize);
  uint64_t n = 1ull << log_n;
  uint64_t max_mem = 128 * r * n * 2 + (1u << 20);
  if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), n, r, p, max_mem,
                     out.data(), out.size()) != 1) {
    return internal::OpenSslError("scrypt");
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

bool ParseUint(std::string_view s, uint64_t* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

}  // namespace

Sha256Digest Sha256(ByteView data) {
  Sha256Digest d;
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != d.size()) {
    std::abort();  // only on allocation failure or a broken OpenSSL
  }
  return d;
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  return a.size() == b.size() && (a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0);
}

Result<std::string> RandomPassword() {
  static constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  Bytes r(20);
  CAIRN_RETURN_IF_ERROR(SecureRandom(r));
  std::string out;
  for (uint8_t b : r) out += kAlphabet[b % (sizeof(kAlphabet) - 1)];
  SecureZero(r.data(), r.size());
  return out;
}

Result<std::string> HashPassword(std::string_view password) {
  Bytes salt(kSaltSize);
  CAIRN_RETURN_IF_ERROR(SecureRandom(salt));
  CAIRN_ASSIGN_OR_RETURN(Bytes hash, Scrypt(password, salt, kScryptLogN, kScryptR, kScryptP));
  return "scrypt$" + std::to_string(kScryptLogN) + "$" + std::to_string(kScryptR) + "$" +
         std::to_string(kScryptP) + "$" + ToHex(salt) + "$" + ToHex(hash);
}

Result<bool> VerifyPassword(std::string_view password, std::string_view encoded) {
  auto parts = Split(encoded, '$');
  uint64_t log_n, r, p;
  if (parts.size() != 6 || parts[0] != "scrypt" || !ParseUint(parts[1], &log_n) ||
      !ParseUint(parts[2], &r) || !ParseUint(parts[3], &p) || log_n < 10 ||
      log_n > kScryptMaxLogN || r == 0 || r > 32 || p == 0 || p > 16) {
    return Status::InvalidArgument("malformed password hash");
  }
  auto salt = FromHex(parts[4]);
  auto want = FromHex(parts[5]);
  if (!salt.ok() || !want.ok() || want->size() != kHashSize) {
    return Status::InvalidArgument("malformed password hash");
  }
  CAIRN_ASSIGN_OR_RETURN(Bytes got, Scrypt(password, *salt, static_cast<int>(log_n), r, p));
  return ConstantTimeEqual(got, *want);
}

Result<Bytes> WrapSecret(const SecretKey& master, ByteView secret) {
  Bytes out(kWrapHeader + secret.size() + kTagSize);
  std::memcpy(out.data(), kWrapMagic, 4);
  out[4] = kWrapVersion;
  MutableByteView salt(out.data() + 5, 16);
  CAIRN_RETURN_IF_ERROR(SecureRandom(salt));
  CAIRN_ASSIGN_OR_RETURN(SecretKey key, HkdfSha256(master.view(), salt, AsBytes(kWrapInfo)));
  CAIRN_ASSIGN_OR_RETURN(Sealer sealer, Sealer::Create(key));
  Bytes sealed(secret.size() + kTagSize);
  CAIRN_ASSIGN_OR_RETURN(Nonce nonce,
                         sealer.Seal(ByteView(out.data(), kWrapHeader), secret, sealed));
  Bytes result(out.begin(), out.begin() + kWrapHeader);
  result.insert(result.end(), nonce.begin(), nonce.end());
  result.insert(result.end(), sealed.begin(), sealed.end());
  SecureZero(sealed.data(), sealed.size());
  return result;
}

Result<Bytes> UnwrapSecret(const SecretKey& master, ByteView wrapped) {
  if (wrapped.size() < kWrapHeader + kNonceSize + kTagSize ||
      std::memcmp(wrapped.data(), kWrapMagic, 4) != 0) {
    return Status::Corruption("wrapped secret is malformed");
  }
  if (wrapped[4] != kWrapVersion) {
    return Status::InvalidArgument("wrapped secret has unknown version " +
                                   std::to_string(wrapped[4]));
  }
  ByteView header = wrapped.subspan(0, kWrapHeader);
  CAIRN_ASSIGN_OR_RETURN(SecretKey key,
                         HkdfSha256(master.view(), header.subspan(5, 16), AsBytes(kWrapInfo)));
  Nonce nonce;
  std::memcpy(nonce.data(), wrapped.data() + kWrapHeader, kNonceSize);
  ByteView body = wrapped.subspan(kWrapHeader + kNonceSize);
  CAIRN_ASSIGN_OR_RETURN(Opener opener, Opener::Create(key));
  Bytes out(body.size() - kTagSize);
  Status s = opener.Open(nonce, header, body, out);
  if (!s.ok())
    return Status::Corruption("wrapped secret does not open (wrong master key or damaged)");
  return out;
}

}  // namespace cairn::crypto
