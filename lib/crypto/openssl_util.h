// Internal to lib/crypto and lib/net's TLS adapter, the only two places that
// call OpenSSL: the one place where OpenSSL's error queue becomes a Status,
// plus owning handles and a small pool for pre-keyed contexts. Public crypto
// headers stay free of OpenSSL so that including them is cheap.
#ifndef CAIRN_LIB_CRYPTO_OPENSSL_UTIL_H_
#define CAIRN_LIB_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace cairn::crypto::internal {

// Drains the calling thread's OpenSSL error queue and returns a Status with
// `code` whose message is "context: <first error>[; <more>...]". Always
// returns a non-OK Status, even when the queue was empty. The queue is left
// empty so that a later failure is not blamed on an old error.
Status OpenSslError(std::string_view context, StatusCode code = StatusCode::kIOError);

// Clears errors left on the queue by an operation whose failure was handled
// (for example a GCM tag mismatch, which is a normal "Corruption" result).
void ClearOpenSslErrors();

struct EvpCipherDeleter {
  void operator()(EVP_CIPHER* p) const { EVP_CIPHER_free(p); }
};
struct EvpCipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct EvpMacDeleter {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct EvpMacCtxDeleter {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct EvpKdfDeleter {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct EvpKdfCtxDeleter {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};

using CipherPtr = std::unique_ptr<EVP_CIPHER, EvpCipherDeleter>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxDeleter>;
using MacPtr = std::unique_ptr<EVP_MAC, EvpMacDeleter>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, EvpMacCtxDeleter>;
using KdfPtr = std::unique_ptr<EVP_KDF, EvpKdfDeleter>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, EvpKdfCtxDeleter>;

// A free list of already-keyed OpenSSL contexts, so that a hot path pays the
// key schedule (AES) or the HMAC pad hashing once per concurrent thread, not
// once per call. Acquire() returns nullptr when the list is empty; the caller
// then builds a fresh context and hands it to Release() when done. At most
// kMaxIdle contexts are kept; extras are freed. Thread-safe. A context that
// failed mid-operation must be dropped, never released, since its state is
// unknown.
template <typename Ptr>
class ContextPool {
 public:
  static constexpr size_t kMaxIdle = 64;

  ContextPool() = default;
  ContextPool(const ContextPool&) = delete;
  ContextPool& operator=(const ContextPool&) = delete;

  Ptr Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) return nullptr;
    Ptr p = std::move(idle_.back());
    idle_.pop_back();
    return p;
  }

  void Release(Ptr p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(p));
  }

 private:
  std::mutex mu_;
  std::vector<Ptr> idle_;
};

}  // namespace cairn::crypto::internal

#endif  // CAIRN_LIB_CRYPTO_OPENSSL_UTIL_H_
