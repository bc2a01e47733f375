#include "lib/base/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <utility>

namespace cairn {
namespace {

TEST(BufferPoolTest, AGivenBackBufferServesTheNextGet) {
  BufferPool pool({.buffer_bytes = 1 << 20, .max_kept = 2});
  uint8_t* first = nullptr;
  {
    BufferPool::Buffer b = pool.Get(1000);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(b.capacity(), size_t{1} << 20);
    std::memset(b.data(), 0xab, b.capacity());  // all of it is writable
    first = b.data();
    EXPECT_EQ(pool.kept(), 0u);
  }
  EXPECT_EQ(pool.kept(), 1u);
  BufferPool::Buffer again = pool.Get(1 << 20);
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(again.data()[12345], 0xab);  // not cleared: the caller overwrites
  EXPECT_EQ(pool.kept(), 0u);
}

TEST(BufferPoolTest, KeepsAtMostMaxKept) {
  BufferPool pool({.buffer_bytes = 4096, .max_kept = 2});
  {
    BufferPool::Buffer a = pool.Get(1), b = pool.Get(1), c = pool.Get(1);
    EXPECT_NE(a.data(), b.data());
    EXPECT_NE(b.data(), c.data());
  }
  EXPECT_EQ(pool.kept(), 2u);
}

TEST(BufferPoolTest, ALargerRequestGetsABufferOfItsOwn) {
  BufferPool pool({.buffer_bytes = 4096, .max_kept = 2});
  {
    BufferPool::Buffer big = pool.Get(4097);
    EXPECT_GE(big.capacity(), 4097u);
    big.data()[4096] = 1;
  }
  EXPECT_EQ(pool.kept(), 0u);
}

TEST(BufferPoolTest, ASweepFreesOnlyWhatNobodyTookSinceTheLastOne) {
  BufferPool pool({.buffer_bytes = 4096, .max_kept = 4});
  { BufferPool::Buffer a = pool.Get(10), b = pool.Get(10); }
  EXPECT_EQ(pool.kept(), 2u);
  EXPECT_EQ(pool.ReleaseIdle(), 0u);  // taken since the start: in use
  EXPECT_EQ(pool.kept(), 2u);
  EXPECT_EQ(pool.ReleaseIdle(), 2u);  // idle for a whole sweep
  EXPECT_EQ(pool.kept(), 0u);
  { BufferPool::Buffer c = pool.Get(10); }
  EXPECT_EQ(pool.ReleaseIdle(), 0u);
  EXPECT_EQ(pool.kept(), 1u);
}

TEST(BufferPoolTest, MovedAndUnpooledBuffersAndOnesThatOutliveThePool) {
  auto pool = std::make_unique<BufferPool>(BufferPool::Options{.buffer_bytes = 64, .max_kept = 1});
  BufferPool::Buffer a = pool->Get(64);
  BufferPool::Buffer b = std::move(a);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_EQ(b.capacity(), 64u);
  BufferPool::Buffer c = pool->Get(64);
  c = std::move(b);  // c's first buffer goes back to the pool
  EXPECT_EQ(pool->kept(), 1u);
  pool.reset();  // c outlives the pool: freed when dropped, without the pool
  c = BufferPool::Buffer::Allocate(10);
  EXPECT_EQ(c.capacity(), 10u);
}

}  // namespace
}  // namespace cairn
