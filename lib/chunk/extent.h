// Fixed, aligned extents for block devices and disk images.
//
// Images are cut at fixed offsets (default 4 MiB) rather than by content:
// a block device's layout does not shift, so aligned extents line up between
// backups, and a changed extent is sent as an rsync delta against the
// signature of its previous version (see rsync_delta.h).
//
// All functions are pure and thread-safe.
#ifndef CAIRN_LIB_CHUNK_EXTENT_H_
#define CAIRN_LIB_CHUNK_EXTENT_H_

#include <cstddef>
#include <cstdint>
#include <iterator>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::chunk {

inline constexpr uint32_t kDefaultExtentSize = 4u * 1024 * 1024;
inline constexpr uint32_t kMinExtentSize = 64u * 1024;
inline constexpr uint32_t kMaxExtentSize = 1u << 30;

struct Extent {
  uint64_t offset = 0;
  uint32_t length = 0;
  friend bool operator==(const Extent&, const Extent&) = default;
};

struct ExtentOptions {
  // Extent size in bytes; 0 means kDefaultExtentSize (4 MiB). A power of two
  // in [64 KiB, 1 GiB], so extents stay aligned to any device block size.
  // Larger extents mean fewer index entries and signatures; smaller ones mean
  // less to rewrite when the rsync delta does not pay.
  uint32_t extent_size = 0;

  // Fills the default, then validates; InvalidArgument otherwise.
  Status Sanitize();
};

// The extents of a device of `device_size` bytes, in order: extent i covers
// [i * extent_size, min((i + 1) * extent_size, device_size)). Only the last
// may be short; a size of 0 has none. A cheap value type.
class ExtentRange {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Extent;
    using difference_type = std::ptrdiff_t;
    using pointer = const Extent*;
    using reference = Extent;

    Iterator() = default;
    Extent operator*() const;
    Iterator& operator++() {
      ++index_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++index_;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.index_ == b.index_; }

   private:
    friend class ExtentRange;
    Iterator(const ExtentRange* range, uint64_t index) : range_(range), index_(index) {}
    const ExtentRange* range_ = nullptr;
    uint64_t index_ = 0;
  };

  // `extent_size` must be a sanitized size (power of two >= 64 KiB).
  ExtentRange(uint64_t device_size, uint32_t extent_size);

  uint64_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  // Extent i; i < size().
  Extent operator[](uint64_t i) const;
  // The extent containing byte `offset`; offset < device size.
  uint64_t IndexOf(uint64_t offset) const { return offset >> shift_; }
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, count_); }

 private:
  uint64_t device_size_;
  uint32_t extent_size_;
  int shift_;
  uint64_t count_;
};

// True when every byte of `data` is zero (empty data is all-zero). Used to
// detect holes so they are recorded instead of stored. Reads word-wise and
// stops at the first nonzero word.
bool IsAllZero(ByteView data);

}  // namespace cairn::chunk

#endif  // CAIRN_LIB_CHUNK_EXTENT_H_
