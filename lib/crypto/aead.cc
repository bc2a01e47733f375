#include "lib/crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <limits>

#include "lib/crypto/openssl_util.h"

namespace cairn::crypto {
namespace {

// Counter value that marks exhaustion; never used as a nonce.
constexpr uint64_t kExhausted = std::numeric_limits<uint64_t>::max();

// OpenSSL's update functions take int lengths.
constexpr size_t kMaxUpdate = size_t{1} << 30;

Nonce MakeNonce(uint32_t prefix, uint64_t counter) {
  Nonce n;
  EncodeFixed32(n.data(), prefix);
  EncodeFixed64(n.data() + 4, counter);
  return n;
}

bool PartiallyOverlaps(ByteView in, MutableByteView out) {
  if (in.empty() || out.empty() || in.data() == out.data()) return false;
  const uint8_t* a = in.data();
  const uint8_t* b = out.data();
  return a < b + out.size() && b < a + in.size();
}

Result<internal::CipherPtr> FetchAes256Gcm() {
  internal::CipherPtr cipher(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  if (!cipher) return internal::OpenSslError("EVP_CIPHER_fetch(AES-256-GCM)");
  return cipher;
}

// A context keyed for `encrypt`, ready for a per-call IV.
Result<internal::CipherCtxPtr> NewKeyedContext(const EVP_CIPHER* cipher, const SecretKey& key,
                                               bool encrypt) {
  internal::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return internal::OpenSslError("EVP_CIPHER_CTX_new");
  const int ok = encrypt ? EVP_EncryptInit_ex2(ctx.get(), cipher, key.data(), nullptr, nullptr)
                         : EVP_DecryptInit_ex2(ctx.get(), cipher, key.data(), nullptr, nullptr);
  if (ok != 1) return internal::OpenSslError("AES-256-GCM key set-up");
  return ctx;
}

// Feeds `in` through EVP_{En,De}cryptUpdate in int-sized pieces; out == nullptr
// means AAD.
bool Update(EVP_CIPHER_CTX* ctx, bool encrypt, ByteView in, uint8_t* out) {
  size_t done = 0;
  while (done < in.size()) {
    const size_t n = std::min(in.size() - done, kMaxUpdate);
    int outl = 0;
    uint8_t* dst = out ? out + done : nullptr;
    const int ok = encrypt
                       ? EVP_EncryptUpdate(ctx, dst, &outl, in.data() + done, static_cast<int>(n))
                       : EVP_DecryptUpdate(ctx, dst, &outl, in.data() + done, static_cast<int>(n));
    if (ok != 1 || (out && static_cast<size_t>(outl) != n)) return false;
    done += n;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- Sealer

struct Sealer::Impl {
  SecretKey key;  // kept to key new pool contexts
  internal::CipherPtr cipher;
  internal::ContextPool<internal::CipherCtxPtr> pool;
  uint32_t prefix = 0;
  uint64_t start = 0;
  std::atomic<uint64_t> next{0};
};

Sealer::Sealer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sealer::~Sealer() = default;
Sealer::Sealer(Sealer&&) noexcept = default;
Sealer& Sealer::operator=(Sealer&&) noexcept = default;

Result<Sealer> Sealer::Create(const SecretKey& key, uint32_t nonce_prefix) {
  return CreateForTest(key, nonce_prefix, 0);
}

Result<Sealer> Sealer::CreateForTest(const SecretKey& key, uint32_t nonce_prefix,
                                     uint64_t start_counter) {
  auto impl = std::make_unique<Impl>();
  impl->key = key;
  CAIRN_ASSIGN_OR_RETURN(impl->cipher, FetchAes256Gcm());
  // Key one context now so that a bad set-up fails here, not on first Seal.
  CAIRN_ASSIGN_OR_RETURN(internal::CipherCtxPtr ctx,
                         NewKeyedContext(impl->cipher.get(), impl->key, /*encrypt=*/true));
  impl->pool.Release(std::move(ctx));
  impl->prefix = nonce_prefix;
  impl->start = start_counter;
  impl->next.store(start_counter, std::memory_order_relaxed);
  return Sealer(std::move(impl));
}

uint64_t Sealer::nonces_used() const {
  return impl_->next.load(std::memory_order_relaxed) - impl_->start;
}

uint32_t Sealer::nonce_prefix() const { return impl_->prefix; }

Result<Nonce> Sealer::Seal(ByteView aad, ByteView plaintext, MutableByteView out) {
  if (!impl_) return Status::InvalidArgument("Sealer used after move");
  if (plaintext.size() > kMaxAeadPlaintext) {
    return Status::InvalidArgument("AES-GCM: plaintext exceeds the GCM message limit");
  }
  if (out.size() != plaintext.size() + kTagSize) {
    return Status::InvalidArgument("AES-GCM seal: out.size() must be plaintext.size() + 16");
  }
  if (PartiallyOverlaps(plaintext, out)) {
    return Status::InvalidArgument("AES-GCM seal: out partially overlaps plaintext");
  }

  // Reserve a counter. compare_exchange instead of fetch_add so the counter
  // can never wrap past kExhausted, however many threads race at the end.
  uint64_t counter = impl_->next.load(std::memory_order_relaxed);
  do {
    if (counter == kExhausted) {
      SecureZero(out.data(), out.size());
      return Status::NoSpace("AES-GCM: nonce counter exhausted; derive a new session key");
    }
  } while (!impl_->next.compare_exchange_weak(counter, counter + 1, std::memory_order_relaxed));
  const Nonce nonce = MakeNonce(impl_->prefix, counter);

  internal::CipherCtxPtr ctx = impl_->pool.Acquire();
  if (!ctx) {
    Result<internal::CipherCtxPtr> fresh =
        NewKeyedContext(impl_->cipher.get(), impl_->key, /*encrypt=*/true);
    if (!fresh.ok()) {
      SecureZero(out.data(), out.size());
      return fresh.status();
    }
    ctx = std::move(fresh).value();
  }

  // Only the IV changes per call: the key schedule in ctx is kept.
  int outl = 0;
  const size_t n = plaintext.size();
  OSSL_PARAM get_tag[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out.data() + n, kTagSize),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_EncryptInit_ex2(ctx.get(), nullptr, nullptr, nonce.data(), nullptr) != 1 ||
      !Update(ctx.get(), true, aad, nullptr) || !Update(ctx.get(), true, plaintext, out.data()) ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &outl) != 1 || outl != 0 ||
      EVP_CIPHER_CTX_get_params(ctx.get(), get_tag) != 1) {
    SecureZero(out.data(), out.size());
    return internal::OpenSslError("AES-256-GCM seal");  // ctx dropped: state unknown
  }
  impl_->pool.Release(std::move(ctx));
  return nonce;
}

// ---------------------------------------------------------------- Opener

struct Opener::Impl {
  SecretKey key;
  internal::CipherPtr cipher;
  mutable internal::ContextPool<internal::CipherCtxPtr> pool;
};

Opener::Opener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Opener::~Opener() = default;
Opener::Opener(Opener&&) noexcept = default;
Opener& Opener::operator=(Opener&&) noexcept = default;

Result<Opener> Opener::Create(const SecretKey& key) {
  auto impl = std::make_unique<Impl>();
  impl->key = key;
  CAIRN_ASSIGN_OR_RETURN(impl->cipher, FetchAes256Gcm());
  CAIRN_ASSIGN_OR_RETURN(internal::CipherCtxPtr ctx,
                         NewKeyedContext(impl->cipher.get(), impl->key, /*encrypt=*/false));
  impl->pool.Release(std::move(ctx));
  return Opener(std::move(impl));
}

Status Opener::Open(const Nonce& nonce, ByteView aad, ByteView ciphertext_and_tag,
                    MutableByteView out) const {
  if (!impl_) return Status::InvalidArgument("Opener used after move");
  if (ciphertext_and_tag.size() < kTagSize) {
    SecureZero(out.data(), out.size());
    return Status::Corruption("AES-GCM open: input shorter than the tag");
  }
  const size_t n = ciphertext_and_tag.size() - kTagSize;
  if (out.size() != n) {
    SecureZero(out.data(), out.size());
    return Status::InvalidArgument("AES-GCM open: out.size() must be input size - 16");
  }
  const ByteView ciphertext = ciphertext_and_tag.first(n);
  if (PartiallyOverlaps(ciphertext, out)) {
    return Status::InvalidArgument("AES-GCM open: out partially overlaps ciphertext");
  }

  internal::CipherCtxPtr ctx = impl_->pool.Acquire();
  if (!ctx) {
    Result<internal::CipherCtxPtr> fresh =
        NewKeyedContext(impl_->cipher.get(), impl_->key, /*encrypt=*/false);
    if (!fresh.ok()) {
      SecureZero(out.data(), out.size());
      return fresh.status();
    }
    ctx = std::move(fresh).value();
  }

  // OSSL_PARAM wants a mutable buffer; the input view is const.
  uint8_t tag[kTagSize];
  std::copy_n(ciphertext_and_tag.data() + n, kTagSize, tag);
  OSSL_PARAM set_tag[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_DecryptInit_ex2(ctx.get(), nullptr, nullptr, nonce.data(), nullptr) != 1 ||
      !Update(ctx.get(), false, aad, nullptr) ||
      !Update(ctx.get(), false, ciphertext, out.data()) ||
      EVP_CIPHER_CTX_set_params(ctx.get(), set_tag) != 1) {
    SecureZero(out.data(), out.size());
    return internal::OpenSslError("AES-256-GCM open");
  }
  int outl = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &outl) != 1) {
    // The normal outcome for tampered or mis-keyed data, not an OpenSSL
    // fault: clear the queue and report Corruption. The context is dropped
    // (cheap, and corrupt records are rare).
    internal::ClearOpenSslErrors();
    SecureZero(out.data(), out.size());
    return Status::Corruption("AES-GCM: authentication failed (tampered data or wrong key)");
  }
  impl_->pool.Release(std::move(ctx));
  return Status::OK();
}

}  // namespace cairn::crypto
