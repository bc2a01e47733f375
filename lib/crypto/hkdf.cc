#include "lib/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "lib/crypto/openssl_util.h"
#include "lib/crypto/random.h"

namespace cairn::crypto {

Result<SecretKey> HkdfSha256(ByteView input_key, ByteView salt, ByteView info) {
  if (input_key.empty()) return Status::InvalidArgument("HKDF: empty input key");
  // Session keys are derived once per session, so fetching per call costs
  // nothing measurable and avoids process-wide state.
  internal::KdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
  if (!kdf) return internal::OpenSslError("EVP_KDF_fetch(HKDF)");
  internal::KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return internal::OpenSslError("EVP_KDF_CTX_new");

  char digest[] = OSSL_DIGEST_NAME_SHA2_256;
  // OSSL_PARAM takes non-const pointers but only reads these buffers.
  auto octets = [](const char* name, ByteView b) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<uint8_t*>(b.data()), b.size());
  };
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = octets(OSSL_KDF_PARAM_KEY, input_key);
  if (!salt.empty()) params[n++] = octets(OSSL_KDF_PARAM_SALT, salt);
  if (!info.empty()) params[n++] = octets(OSSL_KDF_PARAM_INFO, info);
  params[n] = OSSL_PARAM_construct_end();

  uint8_t out[kKeySize];
  if (EVP_KDF_derive(ctx.get(), out, sizeof(out), params) != 1) {
    SecureZero(out, sizeof(out));
    return internal::OpenSslError("EVP_KDF_derive(HKDF-SHA256)");
  }
  Result<SecretKey> key = SecretKey::FromBytes(ByteView(out, sizeof(out)));
  SecureZero(out, sizeof(out));
  return key;
}

Result<SecretKey> DeriveSessionKey(const SecretKey& data_key, const KeyId& key_id) {
  return HkdfSha256(data_key.view(), ByteView(key_id.data(), key_id.size()),
                    AsBytes(kSessionKeyInfo));
}

Result<uint64_t> DeriveGearSeed(const SecretKey& id_key) {
  CAIRN_ASSIGN_OR_RETURN(SecretKey derived, HkdfSha256(id_key.view(), {}, AsBytes(kGearSeedInfo)));
  return DecodeFixed64(derived.data());
}

Result<KeyId> NewKeyId() {
  KeyId id;
  CAIRN_RETURN_IF_ERROR(SecureRandom(MutableByteView(id.data(), id.size())));
  return id;
}

}  // namespace cairn::crypto
