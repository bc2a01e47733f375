// One conformance suite for every Env: PosixEnv, UringEnv (ring and forced
// fallback), MemEnv and FaultInjectionEnv over MemEnv must all behave alike.
#include "lib/io/env.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <thread>

#include "lib/io/fault_injection_env.h"
#include "lib/io/io_test_util.h"
#include "lib/io/mem_env.h"
#include "lib/io/uring_env.h"

namespace cairn::io {
namespace {

using testing::RandomBytes;
using testing::TempDir;

// An Env under test plus a directory in it where the test may write.
class EnvHarness {
 public:
  virtual ~EnvHarness() = default;
  virtual Env* env() = 0;
  virtual std::string root() = 0;
};

class PosixHarness : public EnvHarness {
 public:
  Env* env() override { return Env::Posix(); }
  std::string root() override { return dir_.path(); }

 private:
  TempDir dir_;
};

class UringHarness : public EnvHarness {
 public:
  explicit UringHarness(bool force_fallback) {
    IoRingOptions options;
    options.queue_depth = 8;
    options.force_fallback = force_fallback;
    env_ = NewUringEnv(options);
  }
  Env* env() override { return env_.get(); }
  std::string root() override { return dir_.path(); }

 private:
  TempDir dir_;
  std::unique_ptr<Env> env_;
};

class MemHarness : public EnvHarness {
 public:
  MemHarness() { EXPECT_TRUE(env_->CreateDir("/root").ok()); }
  Env* env() override { return env_.get(); }
  std::string root() override { return "/root"; }

 private:
  std::unique_ptr<Env> env_ = NewMemEnv();
};

class FaultHarness : public EnvHarness {
 public:
  FaultHarness() { EXPECT_TRUE(fault_.CreateDir("/root").ok()); }
  Env* env() override { return &fault_; }
  std::string root() override { return "/root"; }

 private:
  MemEnv mem_;
  FaultInjectionEnv fault_{&mem_};
};

struct EnvKind {
  std::string name;
  std::function<std::unique_ptr<EnvHarness>()> make;
  friend void PrintTo(const EnvKind& k, std::ostream* os) { *os << k.name; }
};

class EnvConformanceTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    env_ = harness_->env();
    root_ = harness_->root();
  }

  std::string Path(const std::string& name) const { return root_ + "/" + name; }

  void WriteFile(const std::string& path, std::string_view content) {
    auto file = env_->NewWritableFile(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->Append(AsBytes(content)).ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE((*file)->Close().ok());
  }

  std::string ReadAll(const std::string& path) {
    auto bytes = ReadFileToBytes(env_, path);
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    return bytes.ok() ? std::string(AsString(*bytes)) : "<error>";
  }

  std::vector<std::string> SortedChildren(const std::string& dir) {
    auto children = env_->GetChildren(dir);
    EXPECT_TRUE(children.ok()) << children.status().ToString();
    std::vector<std::string> names = children.ok() ? *children : std::vector<std::string>{};
    std::sort(names.begin(), names.end());
    return names;
  }

  std::unique_ptr<EnvHarness> harness_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvConformanceTest, AppendThenReadAtOffsets) {
  auto file = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append(AsBytes("hello ")).ok());
  ASSERT_TRUE((*file)->Append(AsBytes("world")).ok());
  ASSERT_TRUE((*file)->Append(ByteView()).ok());
  EXPECT_EQ((*file)->Size(), 11u);
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE((*file)->Close().ok()) << "Close must be idempotent";
  EXPECT_FALSE((*file)->Append(AsBytes("x")).ok()) << "append after close must fail";

  auto size = env_->GetFileSize(Path("f"));
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 11u);

  auto reader = env_->NewRandomAccessFile(Path("f"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto reader_size = (*reader)->Size();
  ASSERT_TRUE(reader_size.ok());
  EXPECT_EQ(*reader_size, 11u);
  uint8_t buf[5];
  auto n = (*reader)->Read(6, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(AsString(ByteView(buf, 5)), "world");
  n = (*reader)->Read(2, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(AsString(ByteView(buf, *n)), "llo w");
}

TEST_P(EnvConformanceTest, ReadIsShortOnlyAtEndOfFile) {
  WriteFile(Path("f"), "0123456789A");
  auto reader = env_->NewRandomAccessFile(Path("f"));
  ASSERT_TRUE(reader.ok());
  uint8_t buf[10];
  auto n = (*reader)->Read(8, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(AsString(ByteView(buf, 3)), "89A");
  n = (*reader)->Read(11, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  n = (*reader)->Read(1000, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_P(EnvConformanceTest, ReadBatchFillsEveryRequest) {
  const Bytes data = RandomBytes(300'000, 1);
  auto file = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append(data).ok());
  ASSERT_TRUE((*file)->Close().ok());

  auto reader = env_->NewRandomAccessFile(Path("f"));
  ASSERT_TRUE(reader.ok());
  // More requests than UringHarness's queue depth (8), one crossing EOF, one
  // past it and one empty.
  std::vector<Bytes> buffers;
  std::vector<ReadRequest> requests;
  for (uint64_t off = 0; off < 290'000; off += 10'000) {
    buffers.emplace_back(7'000);
    requests.push_back({.offset = off});
  }
  buffers.emplace_back(20'000);
  requests.push_back({.offset = 295'000});  // crosses EOF: 5'000 bytes
  buffers.emplace_back(10);
  requests.push_back({.offset = 400'000});  // past EOF: 0 bytes
  buffers.emplace_back(0);
  requests.push_back({.offset = 5});  // empty buffer
  for (size_t i = 0; i < requests.size(); ++i) requests[i].buffer = buffers[i];

  ASSERT_TRUE((*reader)->ReadBatch(requests).ok());
  for (size_t i = 0; i < requests.size(); ++i) {
    const ReadRequest& r = requests[i];
    ASSERT_TRUE(r.status.ok()) << i << ": " << r.status.ToString();
    const size_t expected =
        r.offset >= data.size() ? 0 : std::min<size_t>(r.buffer.size(), data.size() - r.offset);
    ASSERT_EQ(r.bytes_read, expected) << "request " << i;
    EXPECT_TRUE(Equal(ByteView(r.buffer.data(), r.bytes_read),
                      ByteView(data).subspan(std::min<size_t>(r.offset, data.size()), expected)))
        << "request " << i;
  }
}

TEST_P(EnvConformanceTest, LargeFileRoundTrip) {
  const Bytes data = RandomBytes(3 * 1024 * 1024 + 17, 2);
  auto file = env_->NewWritableFile(Path("big"));
  ASSERT_TRUE(file.ok());
  for (size_t off = 0; off < data.size(); off += 1'000'003) {
    size_t n = std::min<size_t>(1'000'003, data.size() - off);
    ASSERT_TRUE((*file)->Append(ByteView(data).subspan(off, n)).ok());
  }
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  auto back = ReadFileToBytes(env_, Path("big"));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(Equal(*back, data));
}

TEST_P(EnvConformanceTest, ConcurrentReadersSeeTheSameBytes) {
  const Bytes data = RandomBytes(1 << 20, 3);
  auto file = env_->NewWritableFile(Path("shared"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append(data).ok());
  ASSERT_TRUE((*file)->Close().ok());
  auto reader = env_->NewRandomAccessFile(Path("shared"));
  ASSERT_TRUE(reader.ok());

  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Bytes buf(4096 + t);
      for (uint64_t off = static_cast<uint64_t>(t) * 1000; off < data.size(); off += 50'000) {
        auto n = (*reader)->Read(off, buf);
        size_t expected = std::min<size_t>(buf.size(), data.size() - off);
        if (!n.ok() || *n != expected ||
            !Equal(ByteView(buf.data(), *n), ByteView(data).subspan(off, expected))) {
          ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST_P(EnvConformanceTest, AppendableFileContinuesAtTheEnd) {
  WriteFile(Path("log"), "abc");
  auto file = env_->NewAppendableFile(Path("log"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->Size(), 3u);
  ASSERT_TRUE((*file)->Append(AsBytes("def")).ok());
  EXPECT_EQ((*file)->Size(), 6u);
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(ReadAll(Path("log")), "abcdef");

  auto missing = env_->NewAppendableFile(Path("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_FALSE(env_->FileExists(Path("nope"))) << "NewAppendableFile must not create";
}

TEST_P(EnvConformanceTest, NewWritableFileTruncates) {
  WriteFile(Path("f"), "long old content");
  WriteFile(Path("f"), "new");
  EXPECT_EQ(ReadAll(Path("f")), "new");
}

TEST_P(EnvConformanceTest, MissingFilesAreNotFound) {
  EXPECT_FALSE(env_->FileExists(Path("absent")));
  EXPECT_TRUE(env_->NewRandomAccessFile(Path("absent")).status().IsNotFound());
  EXPECT_TRUE(env_->GetFileSize(Path("absent")).status().IsNotFound());
  EXPECT_TRUE(env_->RemoveFile(Path("absent")).IsNotFound());
  EXPECT_TRUE(env_->RenameFile(Path("absent"), Path("x")).IsNotFound());
  EXPECT_TRUE(env_->GetChildren(Path("absent")).status().IsNotFound());
  EXPECT_TRUE(env_->NewWritableFile(Path("nodir/f")).status().IsNotFound())
      << "a file needs an existing parent directory";
  Status s = env_->NewRandomAccessFile(Path("absent")).status();
  EXPECT_NE(s.message().find(Path("absent")), std::string::npos)
      << "errors name the path: " << s.ToString();
}

TEST_P(EnvConformanceTest, ExclusiveCreateNeverClobbers) {
  auto first = env_->NewExclusiveFile(Path("x"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE((*first)->Append(AsBytes("precious")).ok());
  ASSERT_TRUE((*first)->Close().ok());
  auto second = env_->NewExclusiveFile(Path("x"));
  EXPECT_EQ(second.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAll(Path("x")), "precious");
}

TEST_P(EnvConformanceTest, RenameReplacesTarget) {
  WriteFile(Path("a"), "from a");
  WriteFile(Path("b"), "from b");
  ASSERT_TRUE(env_->RenameFile(Path("a"), Path("b")).ok());
  EXPECT_FALSE(env_->FileExists(Path("a")));
  EXPECT_EQ(ReadAll(Path("b")), "from a");
  ASSERT_TRUE(env_->RenameFile(Path("b"), Path("c")).ok());
  EXPECT_EQ(SortedChildren(root_), (std::vector<std::string>{"c"}));
}

TEST_P(EnvConformanceTest, ChildrenAndRemove) {
  EXPECT_TRUE(SortedChildren(root_).empty());
  WriteFile(Path("y"), "1");
  WriteFile(Path("x"), "2");
  ASSERT_TRUE(env_->CreateDir(Path("d")).ok());
  WriteFile(Path("d/inner"), "3");
  EXPECT_EQ(SortedChildren(root_), (std::vector<std::string>{"d", "x", "y"}));
  EXPECT_EQ(SortedChildren(Path("d")), (std::vector<std::string>{"inner"}));
  ASSERT_TRUE(env_->RemoveFile(Path("x")).ok());
  EXPECT_FALSE(env_->FileExists(Path("x")));
  EXPECT_EQ(SortedChildren(root_), (std::vector<std::string>{"d", "y"}));
}

TEST_P(EnvConformanceTest, TruncateCutsTheFile) {
  WriteFile(Path("f"), "0123456789");
  ASSERT_TRUE(env_->TruncateFile(Path("f"), 4).ok());
  EXPECT_EQ(*env_->GetFileSize(Path("f")), 4u);
  EXPECT_EQ(ReadAll(Path("f")), "0123");
  EXPECT_TRUE(env_->TruncateFile(Path("absent"), 0).IsNotFound());
}

TEST_P(EnvConformanceTest, CreateDirsMakesEveryParent) {
  ASSERT_TRUE(env_->CreateDirs(Path("a/b/c")).ok());
  EXPECT_TRUE(env_->FileExists(Path("a/b")));
  WriteFile(Path("a/b/c/f"), "deep");
  EXPECT_EQ(ReadAll(Path("a/b/c/f")), "deep");
  EXPECT_TRUE(env_->CreateDirs(Path("a/b/c/")).ok()) << "idempotent, trailing slash ok";
  EXPECT_TRUE(env_->CreateDir(Path("a")).ok()) << "existing directory is fine";
  EXPECT_FALSE(env_->CreateDir(Path("a/b/c/f")).ok()) << "a file is in the way";
  EXPECT_FALSE(env_->CreateDirs(Path("a/b/c/f/g")).ok()) << "a file is in the way";
  ASSERT_TRUE(env_->SyncDir(Path("a/b")).ok());
}

TEST_P(EnvConformanceTest, WriteFileAtomicallyReplacesAndLeavesNoTemporary) {
  ASSERT_TRUE(WriteFileAtomically(env_, Path("config"), AsBytes("version 1")).ok());
  EXPECT_EQ(ReadAll(Path("config")), "version 1");
  ASSERT_TRUE(WriteFileAtomically(env_, Path("config"), AsBytes("v2")).ok());
  EXPECT_EQ(ReadAll(Path("config")), "v2");
  EXPECT_EQ(SortedChildren(root_), (std::vector<std::string>{"config"}));
  EXPECT_FALSE(WriteFileAtomically(env_, Path("nodir/config"), AsBytes("x")).ok());
}

TEST_P(EnvConformanceTest, ClockAndRandomness) {
  EXPECT_GT(env_->NowMicros(), uint64_t{1'600'000'000} * 1'000'000);  // after 2020
  uint64_t t0 = env_->MonotonicMicros();
  EXPECT_GE(env_->MonotonicMicros(), t0);
  uint8_t a[32] = {};
  uint8_t b[32] = {};
  env_->FillRandom(a);
  env_->FillRandom(b);
  EXPECT_FALSE(Equal(a, b)) << "two draws of 256 bits must differ";
  EXPECT_FALSE(Equal(a, Bytes(32, 0)));
}

INSTANTIATE_TEST_SUITE_P(
    AllEnvs, EnvConformanceTest,
    ::testing::Values(EnvKind{"Posix", [] { return std::make_unique<PosixHarness>(); }},
                      EnvKind{"Uring", [] { return std::make_unique<UringHarness>(false); }},
                      EnvKind{"UringFallback", [] { return std::make_unique<UringHarness>(true); }},
                      EnvKind{"Mem", [] { return std::make_unique<MemHarness>(); }},
                      EnvKind{"FaultInjectionOverMem",
                              [] { return std::make_unique<FaultHarness>(); }}),
    [](const ::testing::TestParamInfo<EnvKind>& param_info) { return param_info.param.name; });

TEST(PathTest, ParentDir) {
  EXPECT_EQ(ParentDir("a/b/c"), "a/b");
  EXPECT_EQ(ParentDir("/c"), "/");
  EXPECT_EQ(ParentDir("c"), ".");
  EXPECT_EQ(ParentDir("/a/b/"), "/a");
  EXPECT_EQ(ParentDir("/a//b"), "/a");
  EXPECT_EQ(ParentDir("/"), "/");
}

TEST(PathTest, NormalizePath) {
  EXPECT_EQ(NormalizePath("a//b/"), "a/b");
  EXPECT_EQ(NormalizePath("/"), "/");
  EXPECT_EQ(NormalizePath("//x///"), "/x");
}

}  // namespace
}  // namespace cairn::io
