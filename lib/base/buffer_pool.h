// BufferPool: large buffers kept, already touched, for the next use.
//
// The vault builds each reply to get_records in place (proto::RecordsPayload,
// up to 16 MiB). A fresh buffer that large is a new mapping (the vault sets
// glibc's mmap threshold to 1 MiB so that its heap stays flat), and the reads
// into it fault in every page: about a fifth of the vault's CPU in a restore.
// A pool keeps a few buffers of one size between replies and lets them all
// go once a sweep finds that nobody took one since the last sweep.
//
// Bounds: at most max_kept free buffers of buffer_bytes each (only the pages
// ever written count in RSS). A request larger than buffer_bytes gets a
// buffer of its own, freed when dropped.
//
// Contents: a buffer from Get() holds whatever its last user wrote there;
// the caller must not send a byte of it it did not write itself.
//
// Thread safety: every member may be called from any thread. A Buffer may
// outlive its pool; it is then freed instead of kept.
#ifndef CAIRN_LIB_BASE_BUFFER_POOL_H_
#define CAIRN_LIB_BASE_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace cairn {

class BufferPool {
 public:
  struct Options {
    size_t buffer_bytes = 0;  // the size of every pooled buffer
    size_t max_kept = 0;      // free buffers kept at most
  };

  // Move-only; gives its memory back to the pool (or frees it) when dropped.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept;
    Buffer& operator=(Buffer&& other) noexcept;
    ~Buffer();

    // A buffer of `n` bytes that belongs to no pool (not zero-filled).
    static Buffer Allocate(size_t n);

    uint8_t* data() const { return data_.get(); }
    size_t capacity() const { return capacity_; }

   private:
    friend class BufferPool;
    struct State;
    void GiveBack();

    std::unique_ptr<uint8_t[]> data_;
    size_t capacity_ = 0;
    std::weak_ptr<State> pool_;
  };

  explicit BufferPool(Options options);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `n` bytes, not zero-filled: a kept one when `n`
  // fits one and one is free, else a new one.
  Buffer Get(size_t n);

  // Frees every kept buffer when no Get() happened since the last call;
  // returns how many were freed. For a periodic sweep.
  size_t ReleaseIdle();

  size_t kept() const;

 private:
  std::shared_ptr<Buffer::State> state_;
};

}  // namespace cairn

#endif  // CAIRN_LIB_BASE_BUFFER_POOL_H_
