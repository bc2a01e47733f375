#include "lib/base/buffer_pool.h"

#include <mutex>
#include <utility>
#include <vector>

namespace cairn {

struct BufferPool::Buffer::State {
  explicit State(Options o) : options(o) {}
  const Options options;
  mutable std::mutex mu;
  std::vector<std::unique_ptr<uint8_t[]>> free;  // each options.buffer_bytes
  bool taken_since_sweep = false;
};

BufferPool::Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::move(other.data_)),
      capacity_(std::exchange(other.capacity_, 0)),
      pool_(std::move(other.pool_)) {}

BufferPool::Buffer& BufferPool::Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    GiveBack();
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    pool_ = std::move(other.pool_);
  }
  return *this;
}

BufferPool::Buffer::~Buffer() { GiveBack(); }

BufferPool::Buffer BufferPool::Buffer::Allocate(size_t n) {
  Buffer b;
  b.data_ = std::make_unique_for_overwrite<uint8_t[]>(n);
  b.capacity_ = n;
  return b;
}

void BufferPool::Buffer::GiveBack() {
  if (!data_) return;
  if (std::shared_ptr<State> pool = pool_.lock()) {
    std::lock_guard lock(pool->mu);
    if (pool->free.size() < pool->options.max_kept) pool->free.push_back(std::move(data_));
  }
  data_.reset();  // not kept: freed here
  capacity_ = 0;
  pool_.reset();
}

BufferPool::BufferPool(Options options) : state_(std::make_shared<Buffer::State>(options)) {}

BufferPool::~BufferPool() = default;

BufferPool::Buffer BufferPool::Get(size_t n) {
  const size_t size = state_->options.buffer_bytes;
  if (n > size) return Buffer::Allocate(n);
  Buffer b;
  {
    std::lock_guard lock(state_->mu);
    state_->taken_since_sweep = true;
    if (!state_->free.empty()) {
      b.data_ = std::move(state_->free.back());
      state_->free.pop_back();
    }
  }
  if (!b.data_) b.data_ = std::make_unique_for_overwrite<uint8_t[]>(size);
  b.capacity_ = size;
  b.pool_ = state_;
  return b;
}

size_t BufferPool::ReleaseIdle() {
  std::vector<std::unique_ptr<uint8_t[]>> gone;
  {
    std::lock_guard lock(state_->mu);
    if (std::exchange(state_->taken_since_sweep, false)) return 0;
    gone.swap(state_->free);
  }
  return gone.size();  // freed here, outside the lock
}

size_t BufferPool::kept() const {
  std::lock_guard lock(state_->mu);
  return state_->free.size();
}

}  // namespace cairn
