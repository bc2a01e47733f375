#include "lib/crypto/chunk_id.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstdio>
#include <cstdlib>

#include "lib/crypto/openssl_util.h"

namespace cairn::crypto {

struct ChunkIdHasher::Impl {
  // Keyed once; never used directly after construction, only duplicated.
  internal::MacCtxPtr keyed;
  // Contexts ready for EVP_MAC_update (freshly duplicated or re-initialised).
  mutable internal::ContextPool<internal::MacCtxPtr> pool;
  Status init_status;
};

namespace {

// 4 KiB: measured against 2-32 KiB steps and prefetch distances on cold
// 1 MiB chunks; all within 10%, the smallest steps a little ahead.
constexpr size_t kHashStep = 4096;

Status InitKeyed(const SecretKey& id_key, internal::MacCtxPtr* out) {
  internal::MacPtr mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
  if (!mac) return internal::OpenSslError("EVP_MAC_fetch(HMAC)");
  internal::MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return internal::OpenSslError("EVP_MAC_CTX_new");
  char digest[] = OSSL_DIGEST_NAME_SHA2_256;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(ctx.get(), id_key.data(), kKeySize, params) != 1) {
    return internal::OpenSslError("EVP_MAC_init(HMAC-SHA256)");
  }
  *out = std::move(ctx);
  return Status::OK();
}

}  // namespace

ChunkIdHasher::ChunkIdHasher(const SecretKey& id_key) : impl_(std::make_shared<Impl>()) {
  impl_->init_status = InitKeyed(id_key, &impl_->keyed);
}

Result<ChunkIdHasher> ChunkIdHasher::Create(const SecretKey& id_key) {
  ChunkIdHasher hasher(id_key);
  if (!hasher.impl_->init_status.ok()) return hasher.impl_->init_status;
  return hasher;
}

ChunkIdHasher::~ChunkIdHasher() = default;
ChunkIdHasher::ChunkIdHasher(const ChunkIdHasher&) = default;
ChunkIdHasher& ChunkIdHasher::operator=(const ChunkIdHasher&) = default;
ChunkIdHasher::ChunkIdHasher(ChunkIdHasher&&) noexcept = default;
ChunkIdHasher& ChunkIdHasher::operator=(ChunkIdHasher&&) noexcept = default;

Result<ChunkId> ChunkIdHasher::TryCompute(ByteView plaintext) const {
  if (!impl_) return Status::InvalidArgument("ChunkIdHasher used after move");
  if (!impl_->init_status.ok()) return impl_->init_status;
  internal::MacCtxPtr ctx = impl_->pool.Acquire();
  if (!ctx) {
    ctx.reset(EVP_MAC_CTX_dup(impl_->keyed.get()));
    if (!ctx) return internal::OpenSslError("EVP_MAC_CTX_dup");
  }
  ChunkId id;
  size_t len = 0;
  // SHA-NI outruns the hardware prefetcher on a chunk that is not in this
  // core's cache (the usual case: the reader thread wrote it).
  bool updated = true;
  ForEachPrefetched(plaintext, kHashStep, [&](ByteView piece) {
    updated = updated && EVP_MAC_update(ctx.get(), piece.data(), piece.size()) == 1;
  });
  if (!updated || EVP_MAC_final(ctx.get(), id.data(), &len, id.size()) != 1 || len != id.size()) {
    return internal::OpenSslError("HMAC-SHA256");  // ctx dropped: state unknown
  }
  // A NULL key re-initialises with the key already absorbed (the inner and
  // outer pad states are kept), which is far cheaper than a fresh dup.
  if (EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) == 1) {
    impl_->pool.Release(std::move(ctx));
  } else {
    internal::ClearOpenSslErrors();  // the ID is fine; just do not reuse ctx
  }
  return id;
}

ChunkId ChunkIdHasher::Compute(ByteView plaintext) const {
  Result<ChunkId> id = TryCompute(plaintext);
  if (!id.ok()) {
    std::fprintf(stderr, "cairn: fatal: chunk ID: %s\n", id.status().ToString().c_str());
    std::abort();
  }
  return *id;
}

}  // namespace cairn::crypto
