// PosixEnv and UringEnv behaviour that needs a real kernel: full disks and
// error messages.
#include "lib/io/posix_env.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/io/file_io.h"
#include "lib/io/io_test_util.h"
#include "lib/io/uring_env.h"

namespace cairn::io {
namespace {

using testing::TempDir;

// /dev/full fails every write with ENOSPC: the real kernel path to kNoSpace.
TEST(PosixEnvTest, FullDeviceGivesNoSpace) {
  UringEnv uring_env;
  IoRingOptions fallback;
  fallback.force_fallback = true;
  UringEnv uring_fallback_env(fallback);
  for (Env* env :
       {Env::Posix(), static_cast<Env*>(&uring_env), static_cast<Env*>(&uring_fallback_env)}) {
    auto file = env->NewAppendableFile("/dev/full");
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    Status s = (*file)->Append(Bytes(4096, 1));
    EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
    EXPECT_NE(s.message().find("/dev/full"), std::string::npos) << s.ToString();
    EXPECT_EQ((*file)->Size(), 0u) << "a failed append does not count";
  }
}

// A file-size limit makes the kernel refuse to grow a file past it (EFBIG),
// which Cairn reports as kNoSpace. setrlimit is process-wide, so it runs in a
// forked child.
TEST(PosixEnvTest, FileSizeLimitGivesNoSpaceAndKeepsThePrefix) {
  TempDir dir;
  const std::string path = dir.Child("capped");
  constexpr rlim_t kLimit = 64 * 1024;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    struct rlimit limit = {kLimit, kLimit};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(10);
    auto file = Env::Posix()->NewWritableFile(path);
    if (!file.ok()) ::_exit(11);
    Status s = (*file)->Append(Bytes(kLimit + 4096, 7));
    ::_exit(s.code() == StatusCode::kNoSpace ? 0 : 12);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus)) << "child died by signal " << WTERMSIG(wstatus);
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "10: setrlimit, 11: open, 12: not kNoSpace";
  // The kernel wrote up to the limit: the caller sees a prefix, as documented.
  auto size = Env::Posix()->GetFileSize(path);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, kLimit);
}

TEST(PosixEnvTest, MostlyUncachedSeesThePageCacheAndDirectIoToggles) {
  TempDir dir;
  const std::string path = dir.Child("f");
  {
    auto file = Env::Posix()->NewWritableFile(path);
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append(Bytes(4 << 20, 7)).ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  EXPECT_FALSE(MostlyUncached(fd.get(), 0, 0));
  Bytes all(4 << 20);
  ASSERT_TRUE(PreadFull(fd.get(), 0, all, path).ok());
  EXPECT_FALSE(MostlyUncached(fd.get(), 0, all.size())) << "just read: cached";
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  if (!MostlyUncached(fd.get(), 0, all.size())) {
    GTEST_SKIP() << "this file system keeps the file cached";
  }
  if (!SetDirectIo(fd.get(), true)) GTEST_SKIP() << "no O_DIRECT here";
  EXPECT_NE(::fcntl(fd.get(), F_GETFL) & O_DIRECT, 0);
  Result<AlignedBuffer> buffer = AlignedBuffer::Allocate(1 << 20);
  ASSERT_TRUE(buffer.ok());
  auto got = PreadFull(fd.get(), 1 << 20, buffer->span(), path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, 1u << 20);
  EXPECT_EQ(buffer->data()[0], 7);
  EXPECT_TRUE(SetDirectIo(fd.get(), false));
  EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_DIRECT, 0);
}

TEST(PosixEnvTest, ErrorsNameTheOperationAndPath) {
  TempDir dir;
  const std::string missing = dir.Child("no/such.pack");
  Status s = Env::Posix()->NewRandomAccessFile(missing).status();
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_NE(s.message().find("open " + missing), std::string::npos) << s.ToString();
  s = Env::Posix()->RenameFile(dir.Child("a"), dir.Child("b"));
  EXPECT_NE(s.message().find("rename " + dir.Child("a")), std::string::npos) << s.ToString();
}

TEST(PosixEnvTest, UringEnvReportsItsPath) {
  UringEnv env;
  auto uses = env.ThreadUsesIoUring();
  ASSERT_TRUE(uses.ok());
  IoRingOptions fallback;
  fallback.force_fallback = true;
  UringEnv fallback_env(fallback);
  auto fallback_uses = fallback_env.ThreadUsesIoUring();
  ASSERT_TRUE(fallback_uses.ok());
  EXPECT_FALSE(*fallback_uses);
  EXPECT_EQ(UringEnv::Default(), UringEnv::Default());
}

TEST(PosixEnvTest, ClockIsRealTime) {
  const uint64_t now = Env::Posix()->NowMicros();
  EXPECT_GT(now, uint64_t{1'700'000'000} * 1'000'000);  // after Nov 2023
  const uint64_t t0 = Env::Posix()->MonotonicMicros();
  ::usleep(2000);
  EXPECT_GE(Env::Posix()->MonotonicMicros() - t0, 2000u);
}

// OpenNoSymlinks with openat2 and by components (as on a kernel without
// it): the same descriptors, and the same refusals of a symbolic link
// anywhere on the way and of a path that leaves the directory.
TEST(OpenNoSymlinksTest, RefusesLinksAndEscapesWithAndWithoutOpenat2) {
  TempDir tmp;
  const std::string root = tmp.path();
  ASSERT_EQ(::mkdir((root + "/a").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((root + "/a/b").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((root + "/outside").c_str(), 0700), 0);
  ASSERT_EQ(::symlink("b", (root + "/a/link").c_str()), 0);
  ASSERT_EQ(::symlink("../outside", (root + "/a/up").c_str()), 0);
  const int out = ::open((root + "/a/b/f").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(out, 0);
  ::close(out);
  const int dir = ::open((root + "/a").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  for (bool off : {false, true}) {
    SCOPED_TRACE(off ? "by components" : "openat2");
    internal::DisableOpenat2ForTest(off);
    auto opens = [&](int at, const std::string& path, int flags) {
      const int fd = OpenNoSymlinks(at, path, flags);
      if (fd >= 0) ::close(fd);
      return fd >= 0;
    };
    const int kDir = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    EXPECT_TRUE(opens(dir, "b", kDir));
    EXPECT_TRUE(opens(dir, "", kDir));  // the directory itself
    EXPECT_TRUE(opens(dir, "b/f", O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(opens(AT_FDCWD, root + "/a/b/f", O_RDONLY | O_CLOEXEC));
    EXPECT_FALSE(opens(dir, "link", kDir));        // a link at the end
    EXPECT_FALSE(opens(dir, "link/f", O_RDONLY));  // a link on the way
    EXPECT_FALSE(opens(dir, "up", kDir));
    EXPECT_FALSE(opens(AT_FDCWD, root + "/a/link/f", O_RDONLY));
    EXPECT_FALSE(opens(dir, "../outside", kDir));  // leaves the directory
    EXPECT_EQ(errno, EXDEV);
    EXPECT_FALSE(opens(dir, root + "/outside", kDir));  // absolute, below a directory
    EXPECT_EQ(errno, EXDEV);
    EXPECT_FALSE(opens(dir, "nothing", kDir));
    EXPECT_EQ(errno, ENOENT);
    EXPECT_FALSE(opens(dir, "b/new", O_WRONLY | O_CREAT));  // no mode: refused
    EXPECT_EQ(errno, EINVAL);
  }
  internal::DisableOpenat2ForTest(false);
  ::close(dir);
}

}  // namespace
}  // namespace cairn::io
