#include "agent/scan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>

namespace cairn::agent {
namespace {

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/cairn_scan_XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

TEST(ScanTest, ExcludeMatchesRelativePathOrName) {
  std::vector<std::string> p = {"*.tmp", "cache/*", "exact"};
  EXPECT_TRUE(IsExcluded(p, "a.tmp"));
  EXPECT_TRUE(IsExcluded(p, "deep/dir/b.tmp"));
  EXPECT_TRUE(IsExcluded(p, "cache/x"));
  EXPECT_TRUE(IsExcluded(p, "cache/x/y"));  // '*' crosses '/' (flags 0)
  EXPECT_TRUE(IsExcluded(p, "sub/exact"));
  EXPECT_FALSE(IsExcluded(p, "sub/cache/x"));
  EXPECT_FALSE(IsExcluded(p, "a.tmpx"));
  EXPECT_FALSE(IsExcluded({}, "anything"));
}

TEST(ScanTest, ListDirectoryIsSortedBytewise) {
  std::string dir = TempDir();
  for (const char* n : {"b", "a", "B", "\xc3\xa9"}) {
    int fd = ::open((dir + "/" + n).c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  auto names = ListDirectory(dfd, dir);
  ::close(dfd);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"B", "a", "b", "\xc3\xa9"}));
}

TEST(ScanTest, HolesOfASparseFile) {
  std::string path = TempDir() + "/sparse";
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 8 << 20), 0);
  ASSERT_EQ(::pwrite(fd, "x", 1, 4 << 20), 1);
  auto holes = FindHoles(fd, 8 << 20, path);
  ::close(fd);
  ASSERT_TRUE(holes.ok());
  if (holes->empty()) GTEST_SKIP() << "file system reports no holes";
  uint64_t hole_bytes = 0;
  for (const auto& h : *holes) hole_bytes += h.length;
  EXPECT_GE(hole_bytes, (8u << 20) - (1u << 20));
  EXPECT_EQ(holes->front().offset, 0u);
}

TEST(ScanTest, MetadataOfEveryKind) {
  std::string dir = TempDir();
  ASSERT_EQ(::symlink("target/x", (dir + "/link").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0640), 0);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  OwnerNames owners;
  struct stat st;
  repo::TreeEntry e;
  ASSERT_EQ(::fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_TRUE(ReadEntryMetadata(dfd, "link", dir + "/link", st, &owners, &e).ok());
  EXPECT_EQ(e.type, repo::EntryType::kSymlink);
  EXPECT_EQ(e.symlink_target, "target/x");
  repo::TreeEntry f;
  ASSERT_EQ(::fstatat(dfd, "fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
  ASSERT_TRUE(ReadEntryMetadata(dfd, "fifo", dir + "/fifo", st, &owners, &f).ok());
  EXPECT_EQ(f.type, repo::EntryType::kFifo);
  EXPECT_EQ(f.mode, 0640u);
  EXPECT_EQ(f.uid, ::getuid());
  ::close(dfd);
}

TEST(ScanTest, UserXattrsAreReadSorted) {
  std::string path = TempDir() + "/x";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ::close(fd);
  if (::setxattr(path.c_str(), "user.b", "2", 1, 0) != 0) {
    GTEST_SKIP() << "no user xattrs on this file system";
  }
  ASSERT_EQ(::setxattr(path.c_str(), "user.a", "one", 3, 0), 0);
  auto x = ReadXattrs(path);
  ASSERT_TRUE(x.ok());
  std::vector<repo::Xattr> user;
  for (auto& a : *x) {
    if (a.name.rfind("user.", 0) == 0) user.push_back(a);
  }
  ASSERT_EQ(user.size(), 2u);
  EXPECT_EQ(user[0].name, "user.a");
  EXPECT_EQ(AsString(user[0].value), "one");
  EXPECT_EQ(user[1].name, "user.b");
}

}  // namespace
}  // namespace cairn::agent
