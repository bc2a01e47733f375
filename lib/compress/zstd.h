// zstd compression of chunks, one frame per chunk.
//
// Each chunk becomes one zstd frame that records its content size. Chunks
// are compressed independently (no dictionary, no cross-chunk history), so
// any chunk can be restored alone. A chunk is stored raw when compression
// does not pay (see CompressorOptions::min_saving_ratio); the caller records
// which form it stored, and the plaintext size, in the record header.
#ifndef CAIRN_LIB_COMPRESS_ZSTD_H_
#define CAIRN_LIB_COMPRESS_ZSTD_H_

#include <cstddef>
#include <memory>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::compress {

struct CompressorOptions {
  // zstd level (negative = fast modes; 1..19). Default 3. Measured on this
  // machine (bench/compress_bench, 1 MiB chunks of /usr/include text, one
  // core): level 1 compresses at 0.70 GB/s to 14.4% of the input, level 3 at
  // 0.53 GB/s to 13.5% (6.5% smaller output); both decompress at ~2.3 GB/s.
  // With HMAC (1.87 GB/s) and AES-GCM (4.8 GB/s) the per-chunk pipeline is
  // then ~380 MB/s/core at level 3 vs ~460 at level 1, both above the
  // 250 MB/s target, and level 3 is what restic's "auto" mode roughly
  // matches, which the repository-size target compares against. Policies
  // that favour throughput over space pick 1. Incompressible data costs
  // little at either level (~8 GB/s, zstd emits raw blocks).
  // 0 means "zstd's default" and becomes 3. Levels 20..22 are refused: they
  // need "ultra" windows larger than a chunk and buy nothing per chunk.
  //
  // Level 3 here is zstd's level 3 with its hash and chain tables at 2^14
  // entries (zstd's own are 2^16, and 2^17 / 2^16 above 256 KiB). Measured
  // with `zstd -b3 --zstd=clog=14,hlog=14` on 400 MB of each benchmark tree
  // (BENCHMARKS.md, issue 15): 256 KiB blocks compress 8-15% faster for
  // 0.4-1.2% more output, 1 MiB blocks 22-29% faster for 1.3-3% more.
  // Between levels 2 and 3 that is the better trade: level 2 is 20% faster
  // for 2.7% more output on the second tree.
  int level = 3;

  // Store raw unless compressed size <= input * (1 - min_saving_ratio).
  // Default 1/32 (3.125%): below that the space saved does not repay the
  // decompression cost on every restore, and incompressible data (media,
  // archives, ciphertext) is recognised and kept raw. Must be in [0, 1).
  double min_saving_ratio = 1.0 / 32;

  // Fills defaults (level 0 -> 3). InvalidArgument for a level outside
  // [ZSTD_minCLevel(), 19] or a ratio outside [0, 1) (or NaN).
  Status Sanitize();
};

// Compresses chunks. Owns a zstd compression context that is reused across
// calls, so its tables are allocated once.
//
// NOT thread-safe: use one Compressor per worker thread. Move-only.
class Compressor {
 public:
  // Sanitizes a copy of `options`; InvalidArgument if they are bad.
  static Result<Compressor> Create(const CompressorOptions& options);

  ~Compressor();
  Compressor(Compressor&&) noexcept;
  Compressor& operator=(Compressor&&) noexcept;

  // Compresses `input` into *out (resized to the compressed size). Returns
  // true if the compressed form should be stored, false if raw is better
  // (then *out content is unspecified). Empty input always returns false:
  // a frame is never smaller than nothing. On error *out is unspecified and
  // the Compressor stays usable.
  Result<bool> Compress(ByteView input, Bytes* out);
  // The same into a buffer whose growth is not zero-filled first (a record
  // encoder's scratch: zstd overwrites what it uses).
  Result<bool> Compress(ByteView input, UninitBytes* out);

  const CompressorOptions& options() const;

 private:
  struct Impl;
  explicit Compressor(std::unique_ptr<Impl> impl);
  template <typename Buffer>
  Result<bool> CompressTo(ByteView input, Buffer* out);
  std::unique_ptr<Impl> impl_;
};

// Decompresses chunks. Owns a zstd decompression context.
//
// NOT thread-safe: use one per worker thread. Move-only.
class Decompressor {
 public:
  static Result<Decompressor> Create();

  ~Decompressor();
  Decompressor(Decompressor&&) noexcept;
  Decompressor& operator=(Decompressor&&) noexcept;

  // Decompresses exactly one zstd frame from `input` into *out, which ends
  // up exactly expected_size bytes. Corruption if the frame is malformed or
  // truncated, has trailing bytes, declares another content size, or would
  // produce more or fewer than expected_size bytes.
  //
  // Decompression bombs are refused: at most expected_size bytes are ever
  // written and no memory beyond *out is allocated for the output. The
  // caller bounds expected_size (it comes from a record header, which must
  // be checked against the maximum chunk size first). On error *out is
  // cleared.
  Status Decompress(ByteView input, size_t expected_size, Bytes* out);
  // The same into a buffer that grows without being zero-filled first.
  Status Decompress(ByteView input, size_t expected_size, UninitBytes* out);

  // Same contract, into a caller-owned buffer whose size is the expected
  // size: lets a hot path reuse one buffer and skip zero-filling it. On
  // error `out` holds unspecified bytes.
  Status DecompressInto(ByteView input, MutableByteView out);

 private:
  struct Impl;
  explicit Decompressor(std::unique_ptr<Impl> impl);
  template <typename Buffer>
  Status DecompressTo(ByteView input, size_t expected_size, Buffer* out);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::compress

#endif  // CAIRN_LIB_COMPRESS_ZSTD_H_
