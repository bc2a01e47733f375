#include "lib/compress/zstd.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <exception>
#include <string>

namespace cairn::compress {
namespace {

constexpr int kDefaultLevel = 3;
// Highest non-"ultra" level; see CompressorOptions::level.
constexpr int kMaxLevel = 19;
constexpr int kLevel3TableLog = 14;  // see CompressorOptions::level

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* p) const { ZSTD_freeCCtx(p); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* p) const { ZSTD_freeDCtx(p); }
};

// The one place a zstd error code becomes a Status.
Status ZstdError(size_t code, std::string_view context, StatusCode status_code) {
  std::string msg(context);
  msg += ": ";
  msg += ZSTD_getErrorName(code);
  return Status(status_code, msg);
}

}  // namespace

Status CompressorOptions::Sanitize() {
  if (level == 0) level = kDefaultLevel;
  if (level < ZSTD_minCLevel() || level > kMaxLevel) {
    return Status::InvalidArgument("zstd level " + std::to_string(level) + " outside [" +
                                   std::to_string(ZSTD_minCLevel()) + ", " +
                                   std::to_string(kMaxLevel) + "]");
  }
  if (!(min_saving_ratio >= 0.0 && min_saving_ratio < 1.0)) {  // also rejects NaN
    return Status::InvalidArgument("min_saving_ratio must be in [0, 1)");
  }
  return Status::OK();
}

// ------------------------------------------------------------- Compressor

struct Compressor::Impl {
  CompressorOptions options;
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx;
};

Compressor::Compressor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Compressor::~Compressor() = default;
Compressor::Compressor(Compressor&&) noexcept = default;
Compressor& Compressor::operator=(Compressor&&) noexcept = default;

const CompressorOptions& Compressor::options() const { return impl_->options; }

Result<Compressor> Compressor::Create(const CompressorOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  CAIRN_RETURN_IF_ERROR(impl->options.Sanitize());
  impl->cctx.reset(ZSTD_createCCtx());
  if (!impl->cctx) return Status::IOError("ZSTD_createCCtx: out of memory");
  ZSTD_CCtx* c = impl->cctx.get();
  // Content size in the frame lets the reader cross-check the record header.
  // No zstd checksum: the AES-GCM tag already authenticates every byte.
  // Level 3's tables at 2^14 entries (CompressorOptions::level); 0 leaves a
  // parameter at the level's own value.
  const int table_log = impl->options.level == 3 ? kLevel3TableLog : 0;
  for (auto [param, value] :
       {std::pair{ZSTD_c_compressionLevel, impl->options.level},
        std::pair{ZSTD_c_hashLog, table_log}, std::pair{ZSTD_c_chainLog, table_log},
        std::pair{ZSTD_c_contentSizeFlag, 1}, std::pair{ZSTD_c_checksumFlag, 0}}) {
    const size_t r = ZSTD_CCtx_setParameter(c, param, value);
    if (ZSTD_isError(r)) {
      return ZstdError(r, "ZSTD_CCtx_setParameter", StatusCode::kInvalidArgument);
    }
  }
  return Compressor(std::move(impl));
}

Result<bool> Compressor::Compress(ByteView input, Bytes* out) { return CompressTo(input, out); }

Result<bool> Compressor::Compress(ByteView input, UninitBytes* out) {
  return CompressTo(input, out);
}

template <typename Buffer>
Result<bool> Compressor::CompressTo(ByteView input, Buffer* out) {
  if (!impl_) return Status::InvalidArgument("Compressor used after move");
  if (input.empty()) {
    out->clear();
    return false;
  }
  // A full-bound buffer lets zstd take its fastest path (no output checks).
  try {
    out->resize(ZSTD_compressBound(input.size()));
  } catch (const std::exception&) {  // bad_alloc, length_error
    return Status::IOError("zstd: cannot allocate the output buffer");
  }
  const size_t n =
      ZSTD_compress2(impl_->cctx.get(), out->data(), out->size(), input.data(), input.size());
  if (ZSTD_isError(n)) {
    // Leave the context clean for the next call.
    ZSTD_CCtx_reset(impl_->cctx.get(), ZSTD_reset_session_only);
    out->clear();
    return ZstdError(n, "ZSTD_compress2", StatusCode::kIOError);
  }
  out->resize(n);
  const double limit = static_cast<double>(input.size()) * (1.0 - impl_->options.min_saving_ratio);
  return static_cast<double>(n) <= limit;
}

// ----------------------------------------------------------- Decompressor

struct Decompressor::Impl {
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx;
};

Decompressor::Decompressor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Decompressor::~Decompressor() = default;
Decompressor::Decompressor(Decompressor&&) noexcept = default;
Decompressor& Decompressor::operator=(Decompressor&&) noexcept = default;

Result<Decompressor> Decompressor::Create() {
  auto impl = std::make_unique<Impl>();
  impl->dctx.reset(ZSTD_createDCtx());
  if (!impl->dctx) return Status::IOError("ZSTD_createDCtx: out of memory");
  return Decompressor(std::move(impl));
}

Status Decompressor::DecompressInto(ByteView input, MutableByteView out) {
  if (!impl_) return Status::InvalidArgument("Decompressor used after move");
  const size_t expected = out.size();
  // Exactly one frame, nothing after it: trailing bytes mean the record
  // length or the frame is damaged.
  const size_t frame_size = ZSTD_findFrameCompressedSize(input.data(), input.size());
  if (ZSTD_isError(frame_size)) {
    return ZstdError(frame_size, "zstd frame malformed or truncated", StatusCode::kCorruption);
  }
  if (frame_size != input.size()) {
    return Status::Corruption("zstd: " + std::to_string(input.size() - frame_size) +
                              " bytes after the frame");
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(input.data(), input.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("zstd: bad frame header");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != expected) {
    return Status::Corruption("zstd: frame declares " + std::to_string(declared) +
                              " bytes, expected " + std::to_string(expected));
  }
  // One-shot decompression into a buffer of exactly `expected` bytes: zstd
  // never writes past it (dstSize_tooSmall instead), and uses the output as
  // its window, so a frame without a declared size cannot balloon memory.
  const size_t n =
      ZSTD_decompressDCtx(impl_->dctx.get(), out.data(), out.size(), input.data(), input.size());
  if (ZSTD_isError(n)) {
    ZSTD_DCtx_reset(impl_->dctx.get(), ZSTD_reset_session_only);
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
      return Status::Corruption("zstd: frame decompresses to more than " +
                                std::to_string(expected) + " bytes");
    }
    return ZstdError(n, "zstd decompress", StatusCode::kCorruption);
  }
  if (n != expected) {
    return Status::Corruption("zstd: frame decompressed to " + std::to_string(n) +
                              " bytes, expected " + std::to_string(expected));
  }
  return Status::OK();
}

Status Decompressor::Decompress(ByteView input, size_t expected_size, Bytes* out) {
  return DecompressTo(input, expected_size, out);
}

Status Decompressor::Decompress(ByteView input, size_t expected_size, UninitBytes* out) {
  return DecompressTo(input, expected_size, out);
}

template <typename Buffer>
Status Decompressor::DecompressTo(ByteView input, size_t expected_size, Buffer* out) {
  try {
    out->resize(expected_size);
  } catch (const std::exception&) {  // bad_alloc, length_error
    out->clear();
    return Status::IOError("zstd: cannot allocate " + std::to_string(expected_size) + " bytes");
  }
  Status s = DecompressInto(input, *out);
  if (!s.ok()) out->clear();
  return s;
}

}  // namespace cairn::compress
