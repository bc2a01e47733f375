#include "lib/chunk/fastcdc.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>

#include "lib/base/splitmix.h"

namespace cairn::chunk {
namespace {

// Mask selecting the top `bits` bits: with the gear hash those depend on the
// last 64 bytes, the low bits only on the last few.
uint64_t TopMask(int bits) { return bits <= 0 ? 0 : ~uint64_t{0} << (64 - bits); }

// Expected chunk length on random data when index i (0-based within the
// chunk, i >= min) is a cut with probability 2^-strict for i < normal and
// 2^-loose for i >= normal, a cut at index i gives length i+1, and the chunk
// is forced at max. E[L] = sum_k P(L > k).
double ExpectedLength(uint32_t min, uint32_t normal, uint32_t max, int strict, int loose) {
  const double p1 = std::ldexp(1.0, -strict);
  const double p2 = std::ldexp(1.0, -loose);
  const double m = static_cast<double>(max - min);                           // indices that may cut
  const double a = static_cast<double>(std::clamp(normal, min, max) - min);  // strict ones
  const double l1 = std::log1p(-p1);
  const double l2 = std::log1p(-p2);
  // Survive j indices, j = 1..m-1 (P(L > min + j)).
  const double strict_part = (1 - p1) * -std::expm1(a * l1) / p1;  // j = 1..a
  const double q1 = std::exp(a * l1);
  const double rest = std::max(0.0, m - 1 - a);
  const double loose_part = q1 * (1 - p2) * -std::expm1(rest * l2) / p2;  // j = a+1..m-1
  // If a == m there is no loose region but the strict sum ran one too far;
  // that one-term error is far below calibration tolerance.
  return static_cast<double>(min) + 1 + strict_part + loose_part;
}

struct Calibration {
  int strict_bits = 0;
  int loose_bits = 0;
  uint32_t normal = 0;
};

// Picks mask widths and a normal point so the expected mean equals avg.
Result<Calibration> Calibrate(const ChunkerOptions& o) {
  const int level = static_cast<int>(o.normalization_level);
  const double target = o.avg_size;
  Calibration best;
  double best_score = INFINITY;
  for (int bits = level + 1; bits + level <= 48; ++bits) {
    const int strict = bits + level;
    const int loose = bits - level;
    if (level == 0) {
      const double e = ExpectedLength(o.min_size, o.min_size, o.max_size, strict, loose);
      const double score = std::fabs(std::log(e / target));
      if (score < best_score) best_score = score, best = {strict, loose, o.avg_size};
      continue;
    }
    const double lo = ExpectedLength(o.min_size, o.min_size, o.max_size, strict, loose);
    const double hi = ExpectedLength(o.min_size, o.max_size, o.max_size, strict, loose);
    if (!(lo <= target && target <= hi)) continue;
    // E is increasing in the normal point (strict cuts are rarer): bisect.
    uint32_t a = o.min_size, b = o.max_size;
    while (a < b) {
      const uint32_t mid = a + (b - a) / 2;
      if (ExpectedLength(o.min_size, mid, o.max_size, strict, loose) < target) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    // Prefer the widths whose normal point lands nearest avg_size: the
    // strict/loose split then sits where NC intends it.
    const double score = std::fabs(std::log(static_cast<double>(a) / target));
    if (score < best_score) best_score = score, best = {strict, loose, a};
  }
  if (best.strict_bits == 0) {
    return Status::InvalidArgument("chunker: avg_size " + std::to_string(o.avg_size) +
                                   " is unreachable with min_size " + std::to_string(o.min_size) +
                                   ", max_size " + std::to_string(o.max_size) +
                                   " and normalization_level " + std::to_string(level));
  }
  return best;
}

}  // namespace

Status ChunkerOptions::Sanitize() {
  if (avg_size == 0) avg_size = kDefaultAvgChunk;
  if (min_size == 0) min_size = std::max(kMinChunkFloor, avg_size / 4);
  if (max_size == 0) {
    max_size = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{avg_size} * 4, kMaxChunkCeiling));
  }
  if (min_size < kMinChunkFloor) {
    return Status::InvalidArgument("chunker: min_size must be >= " +
                                   std::to_string(kMinChunkFloor));
  }
  if (max_size > kMaxChunkCeiling) {
    return Status::InvalidArgument("chunker: max_size must be <= " +
                                   std::to_string(kMaxChunkCeiling));
  }
  if (!(min_size < avg_size && avg_size < max_size)) {
    return Status::InvalidArgument("chunker: need min_size < avg_size < max_size, got " +
                                   std::to_string(min_size) + "/" + std::to_string(avg_size) + "/" +
                                   std::to_string(max_size));
  }
  if (normalization_level > 3) {
    return Status::InvalidArgument("chunker: normalization_level must be 0..3");
  }
  auto cal = Calibrate(*this);
  if (!cal.ok()) return cal.status();
  return Status::OK();
}

Result<Chunker> Chunker::Create(ChunkerOptions options) {
  CAIRN_RETURN_IF_ERROR(options.Sanitize());
  return Chunker(options);
}

Chunker::Chunker(const ChunkerOptions& options) : options_(options) {
  auto cal = Calibrate(options_);
  assert(cal.ok() && "Chunker built from options that fail Sanitize()");
  if (cal.ok()) {
    strict_bits_ = cal->strict_bits;
    loose_bits_ = cal->loose_bits;
    normal_size_ = cal->normal;
  } else {
    // Release builds: behave like a plain single-mask CDC rather than crash.
    strict_bits_ = loose_bits_ = 16;
    normal_size_ = options_.min_size;
  }
  strict_mask_ = TopMask(strict_bits_);
  loose_mask_ = TopMask(loose_bits_);
  uint64_t state = options_.gear_seed;
  for (auto& g : gear_) g = SplitMix64(&state);
}

double Chunker::ExpectedMeanChunk() const {
  return ExpectedLength(options_.min_size, normal_size_, options_.max_size, strict_bits_,
                        loose_bits_);
}

// The hot loop. Per byte: one load from data, one from the gear table, a
// shift-add (one LEA) on the dependency chain and one predictable branch.
size_t Chunker::Scan(const uint8_t* data, size_t n, ScanState* state) const {
  size_t i = std::max<size_t>(state->next, options_.min_size);
  uint64_t h = state->hash;
  const uint64_t* const gear = gear_.data();

  const size_t strict_end = std::min<size_t>(n, normal_size_);
  const uint64_t strict_mask = strict_mask_;
  for (; i < strict_end; ++i) {
    h = (h << 1) + gear[data[i]];
    if ((h & strict_mask) == 0) return i + 1;
  }
  const uint64_t loose_mask = loose_mask_;
  for (; i < n; ++i) {
    h = (h << 1) + gear[data[i]];
    if ((h & loose_mask) == 0) return i + 1;
  }
  state->next = i;
  state->hash = h;
  return 0;
}

size_t Chunker::FindBoundaryFrom(ByteView data, bool at_eof, ScanState* state) const {
  if (data.empty()) return 0;
  const size_t max = options_.max_size;
  const size_t n = std::min(data.size(), max);
  if (size_t cut = Scan(data.data(), n, state); cut != 0) return cut;
  if (data.size() >= max) return max;
  return at_eof ? data.size() : 0;
}

size_t Chunker::FindBoundary(ByteView data, bool at_eof) const {
  ScanState state;
  return FindBoundaryFrom(data, at_eof, &state);
}

std::vector<size_t> SplitAll(ByteView data, const Chunker& chunker) {
  std::vector<size_t> lengths;
  lengths.reserve(data.size() / chunker.options().avg_size + 1);
  while (!data.empty()) {
    const size_t len = chunker.FindBoundary(data, /*at_eof=*/true);
    lengths.push_back(len);
    data = data.subspan(len);
  }
  return lengths;
}

StreamChunker::StreamChunker(const Chunker* chunker, Sink sink)
    : chunker_(chunker), sink_(std::move(sink)) {}

Status StreamChunker::Emit(ByteView chunk) {
  Status s = sink_(emitted_bytes_, chunk);
  emitted_bytes_ += chunk.size();
  ++chunks_out_;
  if (!s.ok()) error_ = s;
  return s;
}

Status StreamChunker::Write(ByteView piece) {
  CAIRN_RETURN_IF_ERROR(error_);
  if (finished_) return Status::InvalidArgument("StreamChunker: Write after Finish");
  bytes_in_ += piece.size();
  const size_t max = chunker_->options().max_size;

  // First complete the chunk whose head is buffered, copying only as much of
  // `piece` as it needs.
  while (!pending_.empty() && !piece.empty()) {
    if (pending_.capacity() < max) pending_.reserve(max);
    const size_t old = pending_.size();
    const size_t take = std::min(piece.size(), max - old);
    pending_.insert(pending_.end(), piece.begin(), piece.begin() + take);
    const size_t cut = chunker_->FindBoundaryFrom(pending_, /*at_eof=*/false, &state_);
    if (cut == 0) {  // no boundary yet; all of `piece` is now buffered
      piece = piece.subspan(take);
      continue;
    }
    // Bytes past the cut came from `piece`; hand them back to it instead of
    // keeping them, so the rest of `piece` can be chunked in place.
    state_ = {};
    CAIRN_RETURN_IF_ERROR(Emit(ByteView(pending_).first(cut)));
    pending_.clear();
    piece = piece.subspan(cut - old);
  }

  // Zero-copy path: chunks wholly inside `piece`.
  while (!piece.empty()) {
    const size_t cut = chunker_->FindBoundaryFrom(piece, /*at_eof=*/false, &state_);
    if (cut == 0) {
      // Tail without a boundary (< max_size bytes); keep it, and the scan
      // state, for the next piece.
      if (pending_.capacity() < max) pending_.reserve(max);
      pending_.assign(piece.begin(), piece.end());
      break;
    }
    state_ = {};
    CAIRN_RETURN_IF_ERROR(Emit(piece.first(cut)));
    piece = piece.subspan(cut);
  }
  return Status::OK();
}

Status StreamChunker::Finish() {
  CAIRN_RETURN_IF_ERROR(error_);
  if (finished_) return Status::OK();
  finished_ = true;
  // The buffered tail is shorter than max_size and held no boundary, so at
  // EOF it is exactly one chunk.
  if (!pending_.empty()) {
    CAIRN_RETURN_IF_ERROR(Emit(pending_));
    pending_.clear();
  }
  state_ = {};
  return Status::OK();
}

void StreamChunker::Reset() {
  pending_.clear();
  state_ = {};
  bytes_in_ = emitted_bytes_ = chunks_out_ = 0;
  finished_ = false;
  error_ = Status::OK();
}

}  // namespace cairn::chunk
