#include "lib/chunk/extent.h"

#include <bit>
#include <cassert>
#include <cstring>
#include <string>

namespace cairn::chunk {

Status ExtentOptions::Sanitize() {
  if (extent_size == 0) extent_size = kDefaultExtentSize;
  if (!std::has_single_bit(extent_size) || extent_size < kMinExtentSize ||
      extent_size > kMaxExtentSize) {
    return Status::InvalidArgument("extent_size must be a power of two in [64 KiB, 1 GiB], got " +
                                   std::to_string(extent_size));
  }
  return Status::OK();
}

ExtentRange::ExtentRange(uint64_t device_size, uint32_t extent_size)
    : device_size_(device_size),
      extent_size_(extent_size),
      shift_(std::countr_zero(extent_size)),
      count_((device_size >> shift_) + ((device_size & (extent_size - 1)) != 0 ? 1 : 0)) {
  assert(std::has_single_bit(extent_size));
}

Extent ExtentRange::operator[](uint64_t i) const {
  assert(i < count_);
  const uint64_t offset = i << shift_;
  const uint64_t left = device_size_ - offset;
  return Extent{offset, static_cast<uint32_t>(left < extent_size_ ? left : extent_size_)};
}

Extent ExtentRange::Iterator::operator*() const { return (*range_)[index_]; }

bool IsAllZero(ByteView data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  // Head bytes up to 8-byte alignment, so the word loop reads aligned words.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    if (*p != 0) return false;
    ++p;
    --n;
  }
  // Four words per step, OR-ed together: one branch per 32 bytes, which the
  // compiler vectorises.
  while (n >= 32) {
    uint64_t w[4];
    std::memcpy(w, p, 32);
    if ((w[0] | w[1] | w[2] | w[3]) != 0) return false;
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if (w != 0) return false;
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    if (*p != 0) return false;
    ++p;
    --n;
  }
  return true;
}

}  // namespace cairn::chunk
