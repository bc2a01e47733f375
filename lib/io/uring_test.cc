#include "lib/io/uring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <vector>

#include "lib/io/io_test_util.h"
#include "lib/io/posix_env.h"

namespace cairn::io {
namespace {

using testing::RandomBytes;
using testing::TempDir;

void WriteWholeFile(const std::string& path, ByteView data) {
  auto file = Env::Posix()->NewWritableFile(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append(data).ok());
  ASSERT_TRUE((*file)->Close().ok());
}

// The reference: what plain pread sees.
Bytes PreadWholeFile(int fd) {
  Bytes out(64);
  size_t n = 0;
  for (;;) {
    auto got = PreadFull(fd, n, MutableByteView(out).subspan(n), "reference");
    EXPECT_TRUE(got.ok());
    n += *got;
    if (n < out.size()) break;
    out.resize(out.size() * 2);
  }
  out.resize(n);
  return out;
}

UniqueFd OpenOrDie(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << path;
  return UniqueFd(fd);
}

struct RingCase {
  std::string name;
  uint32_t queue_depth;
  bool force_fallback;
  uint32_t max_bytes_per_op = 0;  // 0: default
  friend void PrintTo(const RingCase& c, std::ostream* os) { *os << c.name; }
};

class IoRingTest : public ::testing::TestWithParam<RingCase> {
 protected:
  void SetUp() override {
    IoRingOptions options;
    options.queue_depth = GetParam().queue_depth;
    options.force_fallback = GetParam().force_fallback;
    options.honor_disable_env_var = false;
    options.max_bytes_per_op = GetParam().max_bytes_per_op;
    auto ring = IoRing::Create(options);
    ASSERT_TRUE(ring.ok()) << ring.status().ToString();
    ring_ = std::move(*ring);
  }

  TempDir dir_;
  std::unique_ptr<IoRing> ring_;
};

TEST_P(IoRingTest, UsesTheRequestedPath) {
  EXPECT_EQ(ring_->options().queue_depth, GetParam().queue_depth);
  if (GetParam().force_fallback) {
    EXPECT_FALSE(ring_->uses_io_uring());
  } else if (!ring_->uses_io_uring()) {
    GTEST_SKIP() << "io_uring unavailable on this kernel";
  }
}

// Many files of awkward sizes, read whole in one multi-fd batch, must match
// pread byte for byte; the buffers are larger than the files so every read
// ends short at EOF.
TEST_P(IoRingTest, BatchedReadsOfManyFilesMatchPread) {
  const size_t sizes[] = {0, 1, 511, 4095, 4096, 4097, 65536, 100'003, 1 << 20, (1 << 20) + 1};
  std::vector<UniqueFd> fds;
  std::vector<int> raw_fds;
  std::vector<Bytes> expected;
  for (int i = 0; i < 150; ++i) {
    const std::string path = dir_.Child("f" + std::to_string(i));
    WriteWholeFile(path, RandomBytes(sizes[i % std::size(sizes)], i));
    fds.push_back(OpenOrDie(path, O_RDONLY));
    raw_fds.push_back(fds.back().get());
    expected.push_back(PreadWholeFile(raw_fds.back()));
  }
  std::vector<Bytes> buffers;
  std::vector<ReadRequest> requests(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    buffers.emplace_back(expected[i].size() + 777);
    requests[i].buffer = buffers[i];
  }
  ASSERT_TRUE(ring_->ReadBatch(raw_fds, requests).ok());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(requests[i].status.ok()) << requests[i].status.ToString();
    ASSERT_EQ(requests[i].bytes_read, expected[i].size()) << "file " << i;
    EXPECT_TRUE(Equal(ByteView(buffers[i].data(), requests[i].bytes_read), expected[i]))
        << "file " << i;
  }
}

// Many files written in one multi-fd batch (how restore writes the chunks
// of one reply), read back with pread.
TEST_P(IoRingTest, BatchedWritesToManyFilesMatchPread) {
  std::vector<UniqueFd> fds;
  std::vector<int> raw_fds;
  std::vector<Bytes> data;
  std::vector<WriteRequest> requests;
  for (int i = 0; i < 100; ++i) {
    fds.push_back(OpenOrDie(dir_.Child("w" + std::to_string(i)), O_RDWR | O_CREAT | O_TRUNC));
    data.push_back(RandomBytes(static_cast<size_t>(i) * 977 + 1, 100 + i));
  }
  for (int i = 0; i < 100; ++i) {
    raw_fds.push_back(fds[static_cast<size_t>(i)].get());
    WriteRequest w;
    w.offset = static_cast<uint64_t>(i) * 13;
    w.data = data[static_cast<size_t>(i)];
    requests.push_back(w);
  }
  ASSERT_TRUE(ring_->WriteBatch(raw_fds, requests).ok());
  for (int i = 0; i < 100; ++i) {
    const auto& w = requests[static_cast<size_t>(i)];
    ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    EXPECT_EQ(w.bytes_written, w.data.size());
    Bytes back = PreadWholeFile(raw_fds[static_cast<size_t>(i)]);
    ASSERT_EQ(back.size(), w.offset + w.data.size());
    EXPECT_TRUE(Equal(ByteView(back).subspan(w.offset), w.data)) << "file " << i;
  }
  std::vector<int> short_fds(1, raw_fds[0]);
  EXPECT_EQ(ring_->WriteBatch(short_fds, requests).code(), StatusCode::kInvalidArgument);
}

// A file far larger than one batch, read batch after batch at one fd.
TEST_P(IoRingTest, FileLargerThanTheBatchIsReadInFull) {
  const Bytes data = RandomBytes(5 * 1024 * 1024 + 123, 7);
  const std::string path = dir_.Child("big");
  WriteWholeFile(path, data);
  UniqueFd fd = OpenOrDie(path, O_RDONLY);

  constexpr size_t kChunk = 64 * 1024;
  constexpr size_t kChunksPerBatch = 16;  // 1 MiB per batch, deeper than depth 4
  Bytes out(data.size() + kChunk * kChunksPerBatch);
  size_t total = 0;
  for (uint64_t batch_start = 0;; batch_start += kChunk * kChunksPerBatch) {
    std::vector<ReadRequest> requests(kChunksPerBatch);
    for (size_t i = 0; i < kChunksPerBatch; ++i) {
      requests[i].offset = batch_start + i * kChunk;
      requests[i].buffer = MutableByteView(out).subspan(requests[i].offset, kChunk);
    }
    ASSERT_TRUE(ring_->ReadBatch(fd.get(), requests).ok());
    size_t batch_bytes = 0;
    for (const ReadRequest& r : requests) batch_bytes += r.bytes_read;
    total += batch_bytes;
    if (batch_bytes < kChunk * kChunksPerBatch) break;
  }
  ASSERT_EQ(total, data.size());
  EXPECT_TRUE(Equal(ByteView(out.data(), total), data));
}

TEST_P(IoRingTest, ShortReadsAtEndOfFile) {
  const std::string path = dir_.Child("small");
  WriteWholeFile(path, AsBytes("0123456789"));
  UniqueFd fd = OpenOrDie(path, O_RDONLY);
  Bytes a(100), b(100), c(100), d(5), e;
  std::vector<ReadRequest> requests = {
      {.offset = 0, .buffer = a},     // 10 bytes
      {.offset = 5, .buffer = b},     // 5 bytes
      {.offset = 10, .buffer = c},    // at EOF: 0
      {.offset = 1000, .buffer = d},  // past EOF: 0
      {.offset = 3, .buffer = e},     // empty buffer: 0
  };
  ASSERT_TRUE(ring_->ReadBatch(fd.get(), requests).ok());
  EXPECT_EQ(requests[0].bytes_read, 10u);
  EXPECT_EQ(AsString(ByteView(a.data(), 10)), "0123456789");
  EXPECT_EQ(requests[1].bytes_read, 5u);
  EXPECT_EQ(AsString(ByteView(b.data(), 5)), "56789");
  EXPECT_EQ(requests[2].bytes_read, 0u);
  EXPECT_EQ(requests[3].bytes_read, 0u);
  EXPECT_EQ(requests[4].bytes_read, 0u);
  for (const auto& r : requests) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

TEST_P(IoRingTest, WriteBatchThenReadBack) {
  const std::string path = dir_.Child("written");
  UniqueFd fd = OpenOrDie(path, O_RDWR | O_CREAT | O_TRUNC);
  // 100 pieces of varying size, submitted in reverse order so completion
  // order cannot line up with file order by accident.
  const Bytes data = RandomBytes(100 * 5000, 11);
  std::vector<WriteRequest> requests;
  for (int i = 99; i >= 0; --i) {
    const size_t len = 4000 + static_cast<size_t>(i) * 10;
    const uint64_t off = static_cast<uint64_t>(i) * 5000;
    requests.push_back({.offset = off, .data = ByteView(data).subspan(off, len)});
  }
  ASSERT_TRUE(ring_->WriteBatch(fd.get(), requests).ok());
  for (const auto& w : requests) {
    EXPECT_TRUE(w.status.ok());
    EXPECT_EQ(w.bytes_written, w.data.size());
  }
  ASSERT_TRUE(ring_->Fsync(fd.get(), /*datasync=*/true).ok());
  ASSERT_TRUE(ring_->Fsync(fd.get(), /*datasync=*/false).ok());

  const Bytes back = PreadWholeFile(fd.get());
  ASSERT_EQ(back.size(), 99u * 5000 + 4000 + 990);
  for (int i = 0; i < 100; ++i) {
    const size_t len = 4000 + static_cast<size_t>(i) * 10;
    const size_t off = static_cast<size_t>(i) * 5000;
    ASSERT_TRUE(Equal(ByteView(back).subspan(off, len), ByteView(data).subspan(off, len))) << i;
    if (i < 99) {  // the holes between pieces read as zeros
      EXPECT_EQ(back[off + len], 0) << i;
    }
  }
}

TEST_P(IoRingTest, ErrorsBecomeStatusesPerRequest) {
  // A write-only descriptor cannot be read: EBADF for every request.
  const std::string path = dir_.Child("wo");
  WriteWholeFile(path, AsBytes("data"));
  UniqueFd fd = OpenOrDie(path, O_WRONLY);
  Bytes a(4), b(4);
  std::vector<ReadRequest> requests = {{.offset = 0, .buffer = a}, {.offset = 1, .buffer = b}};
  Status s = ring_->ReadBatch(fd.get(), requests);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  for (const auto& r : requests) EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);

  std::vector<int> mismatched = {fd.get()};
  EXPECT_EQ(ring_->ReadBatch(mismatched, requests).code(), StatusCode::kInvalidArgument);
}

TEST_P(IoRingTest, FullDeviceIsNoSpace) {
  UniqueFd fd = OpenOrDie("/dev/full", O_WRONLY);
  const Bytes data(8192, 0xab);
  std::vector<WriteRequest> requests = {{.offset = 0, .data = data}};
  Status s = ring_->WriteBatch(fd.get(), requests);
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_EQ(requests[0].status.code(), StatusCode::kNoSpace);
}

TEST_P(IoRingTest, DirectReadsWithAlignedBuffers) {
  const Bytes data = RandomBytes(3 * AlignedBuffer::kAlignment + 100, 5);
  const std::string path = dir_.Child("direct");
  WriteWholeFile(path, data);
  auto opened = OpenForDirectRead(path);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  // /tmp on ext4 or xfs accepts O_DIRECT; tmpfs before 6.6 does not. Either
  // way the content must come back intact.
  auto buffer = AlignedBuffer::Allocate(data.size());
  ASSERT_TRUE(buffer.ok());
  EXPECT_EQ(buffer->size() % AlignedBuffer::kAlignment, 0u);
  std::vector<ReadRequest> requests = {{.offset = 0, .buffer = buffer->span()}};
  ASSERT_TRUE(ring_->ReadBatch(opened->fd.get(), requests).ok())
      << requests[0].status.ToString() << " direct_io=" << opened->direct_io;
  ASSERT_EQ(requests[0].bytes_read, data.size());
  EXPECT_TRUE(Equal(ByteView(buffer->data(), data.size()), data));
}

INSTANTIATE_TEST_SUITE_P(
    Depths, IoRingTest,
    ::testing::Values(RingCase{"Depth4", 4, false}, RingCase{"Depth64", 64, false},
                      RingCase{"Depth1", 1, false}, RingCase{"FallbackDepth4", 4, true},
                      // Every request over 4 KiB is split: the short-I/O
                      // resubmission path runs for reads and writes alike.
                      RingCase{"Depth4Split4K", 4, false, 4096}),
    [](const ::testing::TestParamInfo<RingCase>& param_info) { return param_info.param.name; });

// The ring and the fallback give identical answers for the same batch.
TEST(IoRingFallbackTest, IdenticalResultsToTheRing) {
  TempDir dir;
  const std::string path = dir.Child("f");
  const Bytes data = RandomBytes(777'777, 9);
  WriteWholeFile(path, data);
  UniqueFd fd = OpenOrDie(path, O_RDONLY);

  auto run = [&](bool fallback) {
    IoRingOptions options;
    options.queue_depth = 8;
    options.force_fallback = fallback;
    auto ring = IoRing::Create(options);
    EXPECT_TRUE(ring.ok());
    std::vector<Bytes> buffers;
    std::vector<ReadRequest> requests;
    for (uint64_t off = 0; off < 900'000; off += 33'333) {
      buffers.emplace_back(50'000);
      requests.push_back({.offset = off});
    }
    for (size_t i = 0; i < requests.size(); ++i) requests[i].buffer = buffers[i];
    EXPECT_TRUE((*ring)->ReadBatch(fd.get(), requests).ok());
    std::vector<size_t> counts;
    for (const auto& r : requests) counts.push_back(r.bytes_read);
    return std::make_pair(counts, buffers);
  };
  auto [ring_counts, ring_buffers] = run(false);
  auto [fallback_counts, fallback_buffers] = run(true);
  EXPECT_EQ(ring_counts, fallback_counts);
  EXPECT_EQ(ring_buffers, fallback_buffers);
}

TEST(IoRingFallbackTest, EnvironmentVariableDisablesIoUring) {
  ASSERT_EQ(::setenv("CAIRN_DISABLE_IO_URING", "1", 1), 0);
  auto disabled = IoRing::Create({});
  IoRingOptions ignore_env;
  ignore_env.honor_disable_env_var = false;
  auto ignoring = IoRing::Create(ignore_env);
  ::unsetenv("CAIRN_DISABLE_IO_URING");
  ASSERT_TRUE(disabled.ok());
  EXPECT_FALSE((*disabled)->uses_io_uring());
  ASSERT_TRUE(ignoring.ok());
  auto probe = IoRing::Create({});
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ((*ignoring)->uses_io_uring(), (*probe)->uses_io_uring());
}

TEST(IoRingOptionsTest, SanitizeFillsDefaultsAndClamps) {
  IoRingOptions options;
  options.queue_depth = 0;
  options.Sanitize();
  EXPECT_EQ(options.queue_depth, 64u);
  options.queue_depth = 1'000'000;
  options.Sanitize();
  EXPECT_EQ(options.queue_depth, 4096u);
  options.max_bytes_per_op = 5000;
  options.Sanitize();
  EXPECT_EQ(options.max_bytes_per_op, 4096u);
  options.max_bytes_per_op = 100;
  options.Sanitize();
  EXPECT_EQ(options.max_bytes_per_op, 4096u);
  options.max_bytes_per_op = 0;
  options.Sanitize();
  EXPECT_EQ(options.max_bytes_per_op, uint32_t{1} << 30);
  IoRingOptions defaults;
  EXPECT_EQ(defaults.queue_depth, 64u);
  EXPECT_FALSE(defaults.force_fallback);
}

#ifndef NDEBUG
TEST(IoRingDeathTest, OtherThreadIsRejectedInDebugBuilds) {
  auto ring = IoRing::Create({});
  ASSERT_TRUE(ring.ok());
  EXPECT_DEATH(
      {
        std::thread t([&] { (void)(*ring)->Fsync(0, true); });
        t.join();
      },
      "owner");
}
#endif

TEST(AlignedBufferTest, AlignedRoundedAndOwned) {
  auto buffer = AlignedBuffer::Allocate(5000);
  ASSERT_TRUE(buffer.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer->data()) % AlignedBuffer::kAlignment, 0u);
  EXPECT_EQ(buffer->size(), 8192u);
  AlignedBuffer moved = std::move(*buffer);
  EXPECT_EQ(moved.size(), 8192u);
  EXPECT_EQ(buffer->data(), nullptr);  // NOLINT: checking moved-from state on purpose
  EXPECT_FALSE(AlignedBuffer::Allocate(0).ok());
}

TEST(OpenForReadTest, DescriptorsAreCloseOnExecAndMissingIsNotFound) {
  TempDir dir;
  WriteWholeFile(dir.Child("f"), AsBytes("x"));
  for (bool direct : {false, true}) {
    auto opened = OpenForRead(dir.Child("f"), direct);
    ASSERT_TRUE(opened.ok());
    EXPECT_TRUE(::fcntl(opened->fd.get(), F_GETFD) & FD_CLOEXEC);
  }
  auto missing = OpenForRead(dir.Child("absent"));
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("absent"), std::string::npos);
}

TEST(OpenForReadTest, DirectReadEndedAtEofOnlyForUnalignedDirectReads) {
  TempDir dir;
  WriteWholeFile(dir.Child("f"), Bytes(10'000, 1));
  auto direct = OpenForDirectRead(dir.Child("f"));
  ASSERT_TRUE(direct.ok());
  if (!direct->direct_io) GTEST_SKIP() << "/tmp refuses O_DIRECT here";
  EXPECT_TRUE(DirectReadEndedAtEof(direct->fd.get(), 10'000));
  EXPECT_FALSE(DirectReadEndedAtEof(direct->fd.get(), 8192)) << "aligned: ask again";
  auto buffered = OpenForRead(dir.Child("f"));
  ASSERT_TRUE(buffered.ok());
  EXPECT_FALSE(buffered->direct_io);
  EXPECT_FALSE(DirectReadEndedAtEof(buffered->fd.get(), 10'000)) << "buffered: ask again";
}

}  // namespace
}  // namespace cairn::io
