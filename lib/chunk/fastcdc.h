// Content-defined chunking (FastCDC) for file trees.
//
// A Chunker decides where chunks end from the bytes themselves, so an insertion
// or deletion moves only the boundaries next to it and every other chunk keeps
// its identity (and deduplicates). It uses a 64-bit gear rolling hash:
//
//   h = (h << 1) + gear[byte]
//
// so bit k of h depends only on the last k+1 bytes and the top bits on the
// last 64. A position is a cut point when the top bits selected by a mask are
// all zero. Normalised chunking uses two masks: a stricter one (more bits, rarer
// cuts) until the "normal point", then a looser one (fewer bits) up to max_size.
// This narrows the size distribution around the target. The first min_size
// bytes of a chunk are never hashed at all ("cut-point skipping"), which is
// where most of the speed comes from.
//
// Calibration: the normal point is not fixed at avg_size. Given min, max, the
// level and the mask widths, the constructor solves the closed-form expected
// chunk length for the normal point at which the mean chunk size on random data
// equals avg_size (see doc/chunking.md). On random data the measured mean is
// within a few percent of avg_size.
//
// Keyed boundaries: the 256-entry gear table is generated from gear_seed with
// splitmix64. With the public default seed, anybody can compute where Cairn
// cuts a known file, so the sequence of chunk sizes (visible to the vault and
// on the wire even though contents are encrypted) can fingerprint known
// content. A department that derives its gear seed from secret key material
// makes the boundaries unpredictable to outsiders. Deduplication only works
// between data chunked with the same seed, so a seed must stay fixed for the
// life of a department's repository.
//
// Thread safety: Chunker is immutable after construction; any number of threads
// may call its const methods at once. StreamChunker is a single-owner object.
#ifndef CAIRN_LIB_CHUNK_FASTCDC_H_
#define CAIRN_LIB_CHUNK_FASTCDC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::chunk {

// Defaults chosen by measurement; the reasoning and the numbers are in
// doc/chunking.md.
inline constexpr uint32_t kDefaultAvgChunk = 256 * 1024;
inline constexpr uint32_t kDefaultMinChunk = kDefaultAvgChunk / 4;
inline constexpr uint32_t kDefaultMaxChunk = kDefaultAvgChunk * 4;
// Public default gear seed ("CairnCDC" in ASCII). Deployments that care about
// chunk-size fingerprinting derive their own (see the file comment).
inline constexpr uint64_t kDefaultGearSeed = 0x436169726E434443ull;
inline constexpr uint32_t kDefaultNormalizationLevel = 2;

// Hard limits enforced by Sanitize().
inline constexpr uint32_t kMinChunkFloor = 64;
inline constexpr uint32_t kMaxChunkCeiling = 64u * 1024 * 1024;

struct ChunkerOptions {
  // Smallest chunk (except the last of a stream). 0 means avg_size / 4
  // (64 KiB with the default average).
  // Bytes before min_size are skipped without hashing, so a larger minimum is
  // faster and caps the chunk count, but a boundary can never fall within
  // min_size of the previous one, so an edit there also rewrites the
  // following chunk. Must be >= 64 and < avg_size.
  uint32_t min_size = 0;
  // Target mean chunk size on random data. 0 means kDefaultAvgChunk (256 KiB).
  // Smaller re-sends less after small edits; larger costs fewer index entries
  // and less per-chunk overhead (about 100 bytes of header, tag and index per
  // chunk). Need not be a power of two: the normal point is calibrated.
  uint32_t avg_size = 0;
  // Largest chunk; a chunk is cut here when no content boundary was found.
  // 0 means avg_size * 4 (1 MiB with the default average). Forced cuts are
  // not shift-resistant, so max should be rare on real data (on random data
  // it practically never happens at 4x); it also bounds the memory a
  // StreamChunker holds. 8x measured no better (doc/chunking.md).
  // Must be > avg_size and <= 64 MiB.
  uint32_t max_size = 0;
  // Seeds the gear table. Default kDefaultGearSeed. Different seeds give
  // unrelated boundaries: data chunked under different seeds does not
  // deduplicate. Keying it hides chunk sizes' relation to known content.
  uint64_t gear_seed = kDefaultGearSeed;
  // 0..3. The strict mask has (bits + level) bits and the loose one
  // (bits - level). Default 2 (FastCDC's NC2): a narrow size distribution
  // (fewer tiny and forced-max chunks) at a small loss of shift resistance.
  // 0 disables normalisation; then the mean can only be met to the nearest
  // power of two of (avg_size - min_size).
  uint32_t normalization_level = kDefaultNormalizationLevel;

  // Fills defaults for zero fields, then validates. InvalidArgument when the
  // sizes are out of order or outside [kMinChunkFloor, kMaxChunkCeiling], or
  // when no mask width and normal point can reach avg_size.
  Status Sanitize();
};

// Immutable chunk-boundary finder. Construct from sanitized options
// (Chunker::Create sanitizes for you).
class Chunker {
 public:
  // Sanitizes a copy of `options` and builds a Chunker.
  static Result<Chunker> Create(ChunkerOptions options);
  // `options` must already be sanitized (asserted in debug builds); prefer
  // Create() when they come from configuration.
  explicit Chunker(const ChunkerOptions& options);

  // Length of the chunk starting at data[0]. Returns 0, meaning "need more
  // bytes", only when !at_eof and no boundary was found in data and
  // data.size() < max_size. With at_eof the rest of data is the last chunk, so
  // the result is never 0 unless data is empty. Stateless: a caller that
  // appends bytes and calls again rescans from the start; drivers that feed
  // small pieces should use FindBoundaryFrom (or StreamChunker).
  size_t FindBoundary(ByteView data, bool at_eof) const;

  // Where a previous FindBoundaryFrom stopped inside the current chunk.
  struct ScanState {
    size_t next = 0;    // next byte index to hash
    uint64_t hash = 0;  // gear hash up to `next`
  };
  // Like FindBoundary, but resumes at `state` instead of rescanning: `data`
  // must start at the chunk start and extend the data of the previous call.
  // Reset `state` to {} after each chunk is taken.
  size_t FindBoundaryFrom(ByteView data, bool at_eof, ScanState* state) const;

  const ChunkerOptions& options() const { return options_; }
  // Calibrated parameters, for diagnostics and doc/chunking.md.
  uint32_t normal_size() const { return normal_size_; }
  int strict_bits() const { return strict_bits_; }
  int loose_bits() const { return loose_bits_; }
  // Expected mean chunk length on random data under the model the calibration
  // solved (ignoring the last chunk).
  double ExpectedMeanChunk() const;

 private:
  // Returns the cut length, or 0 when data[state->next, n) holds no cut.
  size_t Scan(const uint8_t* data, size_t n, ScanState* state) const;

  ChunkerOptions options_;
  uint32_t normal_size_ = 0;
  int strict_bits_ = 0;
  int loose_bits_ = 0;
  uint64_t strict_mask_ = 0;
  uint64_t loose_mask_ = 0;
  std::array<uint64_t, 256> gear_{};
};

// Splits all of `data` and returns the chunk lengths in order (their sum is
// data.size(); empty data gives no chunks).
std::vector<size_t> SplitAll(ByteView data, const Chunker& chunker);

// Feeds a stream that arrives in pieces (a file read in buffers) through a
// Chunker and hands each chunk, in order, to a sink.
//
// Memory: the only copy it keeps is the unfinished tail of the current chunk,
// at most max_size bytes (allocated once). Chunks that lie wholly inside one
// piece are passed to the sink straight from the caller's buffer without a
// copy. So peak memory is max_size plus the caller's read buffer.
//
// The sink gets the chunk's offset in the stream and a view that is valid only
// during the call. A non-OK status from the sink stops the stream: Write or
// Finish returns it, and every later call returns it too (the stream is
// poisoned; Reset() starts a new one). Boundaries are identical to SplitAll
// over the concatenated pieces, whatever the piece sizes.
//
// Not thread-safe; one owner at a time.
class StreamChunker {
 public:
  using Sink = std::function<Status(uint64_t offset, ByteView chunk)>;

  // `chunker` must outlive this object.
  StreamChunker(const Chunker* chunker, Sink sink);

  // Consumes all of `piece` (any size, including 0), emitting every chunk
  // that ends inside it.
  Status Write(ByteView piece);
  // Emits the last (possibly short) chunk. After Finish, Write fails with
  // InvalidArgument until Reset().
  Status Finish();
  // Forgets any buffered tail and error; the next Write starts a new stream at
  // offset 0.
  void Reset();

  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t chunks_out() const { return chunks_out_; }

 private:
  Status Emit(ByteView chunk);

  const Chunker* chunker_;
  Sink sink_;
  Bytes pending_;  // unfinished chunk tail; size() <= max_size
  Chunker::ScanState state_;
  uint64_t bytes_in_ = 0;
  uint64_t emitted_bytes_ = 0;
  uint64_t chunks_out_ = 0;
  bool finished_ = false;
  Status error_;
};

}  // namespace cairn::chunk

#endif  // CAIRN_LIB_CHUNK_FASTCDC_H_
