#include "lib/io/mem_env.h"

#include <gtest/gtest.h>

#include <thread>

namespace cairn::io {
namespace {

TEST(MemEnvTest, ClockMovesOnlyWhenAdvanced) {
  MemEnvOptions options;
  MemEnv env(options);
  EXPECT_EQ(env.NowMicros(), options.start_wall_micros);
  EXPECT_EQ(env.MonotonicMicros(), options.start_monotonic_micros);
  EXPECT_EQ(env.NowMicros(), options.start_wall_micros);
  env.AdvanceClock(1'500'000);
  EXPECT_EQ(env.NowMicros(), options.start_wall_micros + 1'500'000);
  EXPECT_EQ(env.MonotonicMicros(), options.start_monotonic_micros + 1'500'000);
}

TEST(MemEnvTest, RandomnessIsSeeded) {
  MemEnvOptions a_options;
  a_options.random_seed = 1;
  MemEnv a(a_options), a_again(a_options);
  MemEnvOptions b_options;
  b_options.random_seed = 2;
  MemEnv b(b_options);
  uint8_t x[37], y[37], z[37];
  a.FillRandom(x);
  a_again.FillRandom(y);
  b.FillRandom(z);
  EXPECT_TRUE(Equal(x, y)) << "same seed, same bytes";
  EXPECT_FALSE(Equal(x, z)) << "another seed, other bytes";
}

TEST(MemEnvTest, OpenHandlesOutliveRemovalAndTheEnv) {
  std::unique_ptr<RandomAccessFile> reader;
  {
    MemEnv env;
    ASSERT_TRUE(WriteFileAtomically(&env, "/f", AsBytes("still here")).ok());
    auto opened = env.NewRandomAccessFile("/f");
    ASSERT_TRUE(opened.ok());
    reader = std::move(*opened);
    ASSERT_TRUE(env.RemoveFile("/f").ok());
    EXPECT_FALSE(env.FileExists("/f"));
  }
  uint8_t buf[10];
  auto n = reader->Read(0, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(AsString(ByteView(buf, *n)), "still here");
}

TEST(MemEnvTest, ReaderSeesTruncationByNewWritableFile) {
  MemEnv env;
  ASSERT_TRUE(WriteFileAtomically(&env, "/f", AsBytes("0123456789")).ok());
  auto reader = env.NewRandomAccessFile("/f");
  ASSERT_TRUE(reader.ok());
  auto writer = env.NewWritableFile("/f");
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(*(*reader)->Size(), 0u);
}

TEST(MemEnvTest, ThreadsWritingSeparateFiles) {
  MemEnv env;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&env, t] {
      auto file = env.NewWritableFile("/f" + std::to_string(t));
      if (!file.ok()) return;
      for (int i = 0; i < 1000; ++i) (void)(*file)->Append(AsBytes("0123456789"));
    });
  }
  for (auto& th : threads) th.join();
  auto children = env.GetChildren("/");
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(children->size(), 8u);
  for (int t = 0; t < 8; ++t) EXPECT_EQ(*env.GetFileSize("/f" + std::to_string(t)), 10'000u);
}

}  // namespace
}  // namespace cairn::io
