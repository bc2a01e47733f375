// Byte spans and the little-endian encoding every Cairn format uses.
//
// ByteView is a read-only view that never owns; Bytes owns. ByteReader walks a
// view with bounds checks so that parsers of untrusted input can never read
// past the end: every Read* returns false instead.
#ifndef CAIRN_LIB_BASE_BYTES_H_
#define CAIRN_LIB_BASE_BYTES_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "lib/base/status.h"

namespace cairn {

using ByteView = std::span<const uint8_t>;
using MutableByteView = std::span<uint8_t>;
using Bytes = std::vector<uint8_t>;

// An allocator that leaves an element constructed without a value
// uninitialised, so that resize() does not zero-fill: for a buffer about to
// be overwritten whole, such as a frame read from a socket (zero-filling
// each frame first cost a restore 1.3% of its CPU).
template <typename T>
class DefaultInitAllocator : public std::allocator<T> {
 public:
  using std::allocator<T>::allocator;
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// Bytes whose resize() leaves the new bytes uninitialised.
using UninitBytes = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;

inline ByteView AsBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsString(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
inline bool Equal(ByteView a, ByteView b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Little-endian fixed-width encoding (x86 stores this natively; memcpy keeps
// it free of alignment and aliasing traps).
inline void EncodeFixed16(uint8_t* dst, uint16_t v) { std::memcpy(dst, &v, 2); }
inline void EncodeFixed32(uint8_t* dst, uint32_t v) { std::memcpy(dst, &v, 4); }
inline void EncodeFixed64(uint8_t* dst, uint64_t v) { std::memcpy(dst, &v, 8); }
inline uint16_t DecodeFixed16(const uint8_t* src) {
  uint16_t v;
  std::memcpy(&v, src, 2);
  return v;
}
inline uint32_t DecodeFixed32(const uint8_t* src) {
  uint32_t v;
  std::memcpy(&v, src, 4);
  return v;
}
inline uint64_t DecodeFixed64(const uint8_t* src) {
  uint64_t v;
  std::memcpy(&v, src, 8);
  return v;
}
static_assert(std::endian::native == std::endian::little,
              "Cairn formats assume little-endian hosts");

// Appends to a growable buffer.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes* out) : out_(out) {}
  void PutU8(uint8_t v) { out_->push_back(v); }
  void PutU16(uint16_t v) { Put(&v, 2); }
  void PutU32(uint32_t v) { Put(&v, 4); }
  void PutU64(uint64_t v) { Put(&v, 8); }
  void PutBytes(ByteView b) { Put(b.data(), b.size()); }

 private:
  void Put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  Bytes* out_;
};

// Reads from a view with bounds checks. Each Read* returns false, and reads
// nothing, when fewer bytes remain than asked for.
class ByteReader {
 public:
  explicit ByteReader(ByteView in) : in_(in) {}
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  bool ReadU8(uint8_t* v) { return Read(v, 1); }
  bool ReadU16(uint16_t* v) { return Read(v, 2); }
  bool ReadU32(uint32_t* v) { return Read(v, 4); }
  bool ReadU64(uint64_t* v) { return Read(v, 8); }
  // Points `out` at the next n bytes without copying.
  bool ReadView(size_t n, ByteView* out) {
    if (remaining() < n) return false;
    *out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool Skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

 private:
  bool Read(void* dst, size_t n) {
    if (remaining() < n) return false;
    std::memcpy(dst, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  ByteView in_;
  size_t pos_ = 0;
};

// Lower-case hex of b.
std::string ToHex(ByteView b);
// Parses hex (either case) into bytes; InvalidArgument on odd length or a
// non-hex character.
Result<Bytes> FromHex(std::string_view hex);

// Overwrites memory in a way the compiler may not elide; for key material.
void SecureZero(void* p, size_t n);

// Calls consume(piece) for consecutive pieces of `in` of at most `step`
// bytes, asking the CPU to fetch the next piece's cache lines while the
// current one is consumed. For a consumer that streams through memory
// faster than the hardware prefetcher keeps up with, on data that is not in
// cache: HMAC-SHA256 over a chunk another thread wrote runs at 1.1 GB/s in
// one call and 1.6 GB/s like this (BM_ChunkIdHmacSha256Cold, BENCHMARKS.md).
// AES-GCM, by contrast, is slower in pieces than in one call even when cold.
template <typename Consume>
void ForEachPrefetched(ByteView in, size_t step, Consume&& consume) {
  constexpr size_t kLine = 64;
  for (size_t at = 0; at < in.size(); at += step) {
    const size_t n = in.size() - at < step ? in.size() - at : step;
    const size_t next_end = in.size() - (at + n) < step ? in.size() : at + n + step;
    for (size_t p = at + n; p < next_end; p += kLine) __builtin_prefetch(in.data() + p, 0, 3);
    consume(in.subspan(at, n));
  }
}

// Formats a byte count for people: "1.5 GiB", "512 B".
std::string HumanBytes(uint64_t n);

// Formats a duration for people: "0:07", "4:02", "1:05:09". Negative, NaN or
// absurd (over ~115 days) values print as "0:00".
std::string HumanDuration(double seconds);

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_BYTES_H_
