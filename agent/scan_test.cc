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

TEST(ScanTest, JoinPathAndJoinRel) {
  EXPECT_EQ(JoinPath("/", "etc"), "/etc");
  EXPECT_EQ(JoinPath("/srv/data", "a b"), "/srv/data/a b");
  EXPECT_EQ(JoinRel("", "top"), "top");
  EXPECT_EQ(JoinRel("a/b", "c"), "a/b/c");
}

TEST(ScanTest, ListEntriesIsSortedBytewise) {
  std::string dir = TempDir();
  for (const char* n : {"b", "a", "B", "\xc3\xa9"}) {
    int fd = ::open((dir + "/" + n).c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  auto entries = ListEntries(dfd, dir, "", {});
  auto some = ListEntries(dfd, dir, "sub", {"sub/a", "b"});
  ::close(dfd);
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> names;
  for (const ListedEntry& e : *entries) {
    names.push_back(e.name);
    EXPECT_EQ(e.error, 0);
    EXPECT_TRUE(S_ISREG(e.st.st_mode));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"B", "a", "b", "\xc3\xa9"}));
  ASSERT_TRUE(some.ok());
  names.clear();
  for (const ListedEntry& e : *some) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "\xc3\xa9"}));  // excluded: sub/a, b
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

namespace cairn::agent {
namespace {

void MakeTree(const std::string& root, const std::vector<std::string>& dirs) {
  for (const std::string& d : dirs) {
    ASSERT_EQ(::mkdir((root + "/" + d).c_str(), 0755), 0) << d;
    int fd = ::open((root + "/" + d + "/f").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
}

std::vector<std::string> Names(const std::vector<ListedEntry>& entries) {
  std::vector<std::string> names;
  for (const ListedEntry& e : entries) names.push_back(e.name);
  return names;
}

TEST(StatAheadTest, DepthFirstOrderIsTheScannersOrder) {
  EXPECT_TRUE(DepthFirstLess("/a", "/a/b"));
  EXPECT_TRUE(DepthFirstLess("/a/b", "/a.b"));  // "a" is scanned, with its tree, before "a.b"
  EXPECT_TRUE(DepthFirstLess("/a/z", "/a0"));
  EXPECT_FALSE(DepthFirstLess("/a.b", "/a/b"));
  EXPECT_FALSE(DepthFirstLess("/a", "/a"));
  EXPECT_TRUE(DepthFirstLess("/a/\xc3\xa9", "/b"));
}

// The scanner takes every directory in its order; each listing is what the
// scanner would have read itself, excluded subtrees are not walked, and a
// window smaller than one directory stalls nothing.
TEST(StatAheadTest, ListingsAreTheScannersOwnInItsOrder) {
  const std::string root = TempDir();
  MakeTree(root, {"a", "a/x", "a/y", "a.b", "b", "b/deep", "b/deep/deeper", "skip", "skip/z"});
  struct stat st;
  ASSERT_EQ(::lstat(root.c_str(), &st), 0);
  StatAhead::Options options;
  options.threads = 3;
  options.window = 2;
  options.excludes = {"skip"};
  StatAhead ahead(options);
  ahead.AddRoot(root, "/r", st.st_dev);
  const std::vector<std::string> order = {"",     "/a", "/a/x",    "/a/y",
                                          "/a.b", "/b", "/b/deep", "/b/deep/deeper"};
  for (const std::string& d : order) {
    std::optional<StatAhead::Listing> listing = ahead.Take("/r" + d);
    ASSERT_TRUE(listing.has_value()) << d;
    int fd = ::open((root + d).c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    struct stat self;
    ASSERT_EQ(::fstat(fd, &self), 0);
    auto own = ListEntries(fd, root + d, d.empty() ? "" : d.substr(1), options.excludes);
    ::close(fd);
    ASSERT_TRUE(own.ok());
    EXPECT_EQ(Names(listing->entries), Names(*own)) << d;
    EXPECT_EQ(listing->ino, self.st_ino) << d;
    for (size_t i = 0; i < own->size() && i < listing->entries.size(); ++i) {
      EXPECT_EQ(listing->entries[i].st.st_ino, (*own)[i].st.st_ino);
    }
  }
  EXPECT_FALSE(ahead.Take("/r").has_value());       // taken already
  EXPECT_FALSE(ahead.Take("/r/skip").has_value());  // excluded: never walked
  EXPECT_FALSE(ahead.Take("/r/elsewhere").has_value());
}

// The scanner may pass directories over (a subtree replaced, a failure):
// the walk gives them up and serves what comes after.
TEST(StatAheadTest, PassedDirectoriesAreGivenUp) {
  const std::string root = TempDir();
  MakeTree(root, {"a", "a/x", "b", "b/y"});
  struct stat st;
  ASSERT_EQ(::lstat(root.c_str(), &st), 0);
  StatAhead::Options options;
  options.threads = 2;
  options.window = 1;
  StatAhead ahead(options);
  ahead.AddRoot(root, root, st.st_dev);
  ASSERT_TRUE(ahead.Take(root).has_value());
  std::optional<StatAhead::Listing> b = ahead.Take(root + "/b");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(Names(b->entries), (std::vector<std::string>{"f", "y"}));
  EXPECT_FALSE(ahead.Take(root + "/a/x").has_value());  // before b: passed
  EXPECT_TRUE(ahead.Take(root + "/b/y").has_value());
}

// The walk follows no symbolic link, as the scanner follows none: a root
// reached through one is left to the scanner.
TEST(StatAheadTest, NoSymbolicLinkIsFollowed) {
  const std::string root = TempDir();
  MakeTree(root, {"real", "real/sub"});
  ASSERT_EQ(::symlink("real", (root + "/ln").c_str()), 0);
  struct stat st;
  ASSERT_EQ(::lstat(root.c_str(), &st), 0);
  StatAhead ahead({});
  ahead.AddRoot(root + "/ln/sub", "/x", st.st_dev);
  ahead.AddRoot(root + "/real/sub", "/y", st.st_dev);
  EXPECT_FALSE(ahead.Take("/x").has_value());
  std::optional<StatAhead::Listing> y = ahead.Take("/y");
  ASSERT_TRUE(y.has_value());
  EXPECT_EQ(Names(y->entries), std::vector<std::string>{"f"});
}

}  // namespace
}  // namespace cairn::agent
