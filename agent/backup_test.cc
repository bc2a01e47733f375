#include "agent/backup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "lib/io/file_io.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"

namespace cairn::agent {
namespace {

using crypto::ChunkId;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/cairn_backup_XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  // Canonical, as the backup records it (TempDir() ends with '/').
  return std::filesystem::canonical(tmpl).string();
}

Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

void WriteFile(const std::string& path, ByteView data) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
}

// An in-memory vault: records become durable on Flush, like the real one.
class FakeSession : public VaultSession {
 public:
  Result<std::vector<bool>> HaveChunks(const std::vector<ChunkId>& ids) override {
    have_calls++;
    if (ids.empty() || ids.size() > proto::kMaxIdsPerMessage) {
      return Status::InvalidArgument("bad have_chunks size");
    }
    std::vector<bool> out;
    for (const auto& id : ids) out.push_back(durable.count(id) > 0);
    return out;
  }
  Status PutRecord(ByteView record) override {
    if (fail_puts) return Status::Unavailable("connection lost");
    auto view = repo::ParseRecord(record);
    if (!view.ok()) return view.status();
    if (durable.count(view->header.id)) return Status::InvalidArgument("put of a present chunk");
    unflushed[view->header.id] = Bytes(record.begin(), record.end());
    return Status::OK();
  }
  Status Flush() override {
    flushes++;
    for (auto& [id, r] : unflushed) durable[id] = std::move(r);
    unflushed.clear();
    return Status::OK();
  }
  Status KeepAlive() override { return Status::OK(); }
  Result<std::string> Commit(const ChunkId& root, const std::vector<ChunkId>& manifest,
                             const proto::SnapshotStats& stats) override {
    if (!unflushed.empty()) return Status::InvalidArgument("commit before flush");
    for (const auto& id : manifest) {
      if (!durable.count(id)) return Status::NotFound("manifest chunk missing");
    }
    if (!durable.count(root)) return Status::NotFound("root missing");
    last_manifest = manifest;
    last_stats = stats;
    return "snap-" + std::to_string(++commits);
  }

  std::map<ChunkId, Bytes> durable, unflushed;
  std::vector<ChunkId> last_manifest;
  proto::SnapshotStats last_stats;
  bool fail_puts = false;
  int commits = 0, flushes = 0, have_calls = 0;
};

// Reads a snapshot back from the fake vault.
class Reader {
 public:
  Reader(const crypto::DepartmentKeys& keys, FakeSession* vault)
      : decoder_(std::move(*repo::RecordDecoder::Create(keys))), vault_(vault) {}

  Bytes Object(const ChunkId& id) {
    Bytes plain;
    EXPECT_TRUE(vault_->durable.count(id));
    EXPECT_TRUE(decoder_->Decode(vault_->durable[id], &plain).ok());
    return plain;
  }
  std::vector<repo::TreeEntry> Dir(const ChunkId& id) {
    std::vector<repo::TreeEntry> out;
    std::optional<ChunkId> next = id;
    while (next) {
      auto part = repo::DecodeDirPart(Object(*next));
      EXPECT_TRUE(part.ok()) << part.status().ToString();
      if (!part.ok()) break;
      for (auto& e : part->entries) out.push_back(e);
      next = part->next;
    }
    return out;
  }
  // Follows absolute `path` from the root.
  std::optional<repo::TreeEntry> Find(const ChunkId& root, const std::string& path) {
    ChunkId dir = root;
    std::optional<repo::TreeEntry> found;
    std::string rest = path.substr(1);
    while (true) {
      size_t slash = rest.find('/');
      std::string name = rest.substr(0, slash);
      found.reset();
      for (auto& e : Dir(dir)) {
        if (e.name == name) found = e;
      }
      if (!found || slash == std::string::npos) return found;
      dir = found->subtree;
      rest = rest.substr(slash + 1);
    }
  }
  Bytes Content(const repo::TreeEntry& e) {
    Bytes data;
    for (const auto& r : e.content) {
      if (r.kind == repo::RefKind::kData) {
        Bytes c = Object(r.id);
        data.insert(data.end(), c.begin(), c.end());
      } else if (r.kind == repo::RefKind::kSlice) {
        Bytes c = Object(r.id);
        EXPECT_LE(r.offset + r.length, c.size());
        if (r.offset + r.length > c.size()) continue;
        data.insert(data.end(), c.begin() + r.offset, c.begin() + r.offset + r.length);
      } else {
        auto list = repo::DecodeContentList(Object(r.id));
        for (const auto& d : list->refs) {
          Bytes c = Object(d.id);
          data.insert(data.end(), c.begin(), c.end());
        }
      }
    }
    // Lay data around the holes.
    Bytes file(e.size, 0);
    size_t pos = 0, di = 0, hi = 0;
    while (pos < e.size) {
      if (hi < e.holes.size() && e.holes[hi].offset == pos) {
        pos += e.holes[hi++].length;
        continue;
      }
      file[pos++] = data[di++];
    }
    EXPECT_EQ(di, data.size());
    return file;
  }

 private:
  std::unique_ptr<repo::RecordDecoder> decoder_;
  FakeSession* vault_;
};

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = std::move(*crypto::DepartmentKeys::Generate());
    root_ = TempDir();
    data_ = root_ + "/data";
    ASSERT_EQ(::mkdir(data_.c_str(), 0755), 0);
    auto cache = FileCache::Open(root_ + "/lmdb", true);
    ASSERT_TRUE(cache.ok());
    cache_ = std::move(*cache);
    options_.paths = {data_};
    options_.workers = 2;
    options_.chunk_avg_size = 16 * 1024;
  }

  Result<BackupResult> Backup(FileCache* cache = nullptr) {
    return RunBackup(keys_, cache, &vault_, options_);
  }

  crypto::DepartmentKeys keys_;
  std::string root_, data_;
  std::unique_ptr<FileCache> cache_;
  FakeSession vault_;
  BackupOptions options_;
};

TEST_F(BackupTest, EveryEntryKindRoundTrips) {
  Bytes big = RandomBytes(300 * 1024, 1);
  WriteFile(data_ + "/big", big);
  WriteFile(data_ + "/empty", {});
  ASSERT_EQ(::mkdir((data_ + "/emptydir").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((data_ + "/sub").c_str(), 0755), 0);
  WriteFile(data_ + "/sub/small", AsBytes("hello"));
  ASSERT_EQ(::symlink("../big", (data_ + "/sub/sym").c_str()), 0);
  ASSERT_EQ(::link((data_ + "/big").c_str(), (data_ + "/sub/hard").c_str()), 0);
  ASSERT_EQ(::mkfifo((data_ + "/fifo").c_str(), 0600), 0);
  int fd = ::open((data_ + "/sparse").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_EQ(::ftruncate(fd, 4 << 20), 0);
  ASSERT_EQ(::pwrite(fd, "data", 4, 2 << 20), 4);
  ::close(fd);
  const bool xattrs = ::setxattr((data_ + "/empty").c_str(), "user.tag", "v", 1, 0) == 0;

  auto r = Backup(cache_.get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->snapshot_id, "snap-1");
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_EQ(r->files, 5u);  // big, empty, small, hard, sparse
  EXPECT_EQ(vault_.last_stats.files, 5u);
  std::set<ChunkId> manifest(vault_.last_manifest.begin(), vault_.last_manifest.end());
  EXPECT_TRUE(manifest.count(r->root_tree));

  Reader reader(keys_, &vault_);
  auto e = reader.Find(r->root_tree, data_ + "/big");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, repo::EntryType::kFile);
  EXPECT_EQ(reader.Content(*e), big);
  EXPECT_NE(e->link_group, 0u);
  for (const auto& ref : e->content) EXPECT_TRUE(manifest.count(ref.id));
  auto hard = reader.Find(r->root_tree, data_ + "/sub/hard");
  ASSERT_TRUE(hard);
  EXPECT_EQ(hard->type, repo::EntryType::kHardlink);
  EXPECT_EQ(hard->link_group, e->link_group);
  EXPECT_EQ("/" + hard->link_path, data_ + "/big");
  auto sym = reader.Find(r->root_tree, data_ + "/sub/sym");
  ASSERT_TRUE(sym);
  EXPECT_EQ(sym->symlink_target, "../big");
  auto small = reader.Find(r->root_tree, data_ + "/sub/small");
  ASSERT_TRUE(small);
  EXPECT_EQ(AsString(reader.Content(*small)), "hello");
  auto fifo = reader.Find(r->root_tree, data_ + "/fifo");
  ASSERT_TRUE(fifo);
  EXPECT_EQ(fifo->type, repo::EntryType::kFifo);
  auto dir = reader.Find(r->root_tree, data_ + "/emptydir");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->type, repo::EntryType::kDir);
  EXPECT_EQ(dir->mode, 0700u);
  EXPECT_TRUE(reader.Dir(dir->subtree).empty());
  auto sparse = reader.Find(r->root_tree, data_ + "/sparse");
  ASSERT_TRUE(sparse);
  Bytes expect(4 << 20, 0);
  std::memcpy(expect.data() + (2 << 20), "data", 4);
  EXPECT_EQ(reader.Content(*sparse), expect);
  if (!sparse->holes.empty()) {
    EXPECT_LT(r->bytes_read, (1u << 20) + 400 * 1024);
  }
  auto empty = reader.Find(r->root_tree, data_ + "/empty");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size, 0u);
  if (xattrs) {
    ASSERT_FALSE(empty->xattrs.empty());
    EXPECT_EQ(empty->xattrs[0].name, "user.tag");
  }
  // The intermediate directories of the PATH are there too.
  EXPECT_TRUE(reader.Find(r->root_tree, root_));
}

TEST_F(BackupTest, UnchangedFilesAreNotReadWithTheCache) {
  WriteFile(data_ + "/a", RandomBytes(200 * 1024, 2));
  WriteFile(data_ + "/b", RandomBytes(50 * 1024, 3));
  auto first = Backup(cache_.get());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GT(first->chunks_sealed, 0u);
  auto second = Backup(cache_.get());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->cache_hits, 2u);
  EXPECT_EQ(second->bytes_read, 0u);
  // The snapshot's root records the ancestors of the backed-up path (here
  // /tmp/...), whose metadata other processes change; only those few tree
  // objects may be new. The backed-up directory itself must dedup exactly.
  size_t ancestors = static_cast<size_t>(std::count(data_.begin(), data_.end(), '/'));
  EXPECT_LE(second->chunks_sealed, ancestors);
  EXPECT_LE(second->new_chunks, ancestors);
  Reader reader(keys_, &vault_);
  auto before = reader.Find(first->root_tree, data_);
  auto after = reader.Find(second->root_tree, data_);
  ASSERT_TRUE(before && after);
  EXPECT_EQ(after->subtree, before->subtree) << "unchanged tree must dedup";
  EXPECT_EQ(vault_.last_manifest.size(), first->manifest_size);
}

TEST_F(BackupTest, UnchangedDataIsNotSealedAgainWithoutTheCache) {
  WriteFile(data_ + "/a", RandomBytes(300 * 1024, 4));
  auto first = Backup();
  ASSERT_TRUE(first.ok());
  auto second = Backup();
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second->bytes_read, 0u);
  EXPECT_GT(second->chunks_hashed, 0u);
  // Data chunks are never sealed again; only the tree objects of the path's
  // ancestors (/tmp/..., changed by other processes) may be new, and those
  // are tiny.
  size_t ancestors = static_cast<size_t>(std::count(data_.begin(), data_.end(), '/'));
  EXPECT_LE(second->chunks_sealed, ancestors);
  EXPECT_LT(second->new_bytes, 4096u * ancestors);
}

TEST_F(BackupTest, ChangedFileIsReadAgain) {
  WriteFile(data_ + "/a", RandomBytes(100 * 1024, 5));
  ASSERT_TRUE(Backup(cache_.get()).ok());
  Bytes changed = RandomBytes(100 * 1024, 6);
  WriteFile(data_ + "/a", changed);
  auto second = Backup(cache_.get());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->cache_hits, 0u);
  Reader reader(keys_, &vault_);
  EXPECT_EQ(reader.Content(*reader.Find(second->root_tree, data_ + "/a")), changed);
}

TEST_F(BackupTest, MemoryInFlightStaysWithinTheBudget) {
  WriteFile(data_ + "/big", RandomBytes(12 << 20, 7));
  options_.memory_budget = 1 << 20;
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // One chunk (max 4 x 16 KiB) may overshoot only when nothing else is in
  // flight; tree objects are tiny here.
  EXPECT_LE(r->peak_bytes_in_flight, (1u << 20) + (64u << 10));
  EXPECT_GT(r->peak_bytes_in_flight, 0u);
  Reader reader(keys_, &vault_);
  EXPECT_EQ(reader.Content(*reader.Find(r->root_tree, data_ + "/big")).size(), 12u << 20);
}

TEST_F(BackupTest, LargeFilesOutOfThePageCacheAreReadDirect) {
  // Past one batch of direct reads, and not a multiple of the alignment.
  const size_t size = (17u << 20) + 12345;
  Bytes big = RandomBytes(size, 8);
  WriteFile(data_ + "/big", big);
  int fd = ::open((data_ + "/big").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fsync(fd), 0);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const bool dropped = io::MostlyUncached(fd, 0, size);
  ::close(fd);
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_EQ(r->bytes_read, size);
  Reader reader(keys_, &vault_);
  EXPECT_EQ(reader.Content(*reader.Find(r->root_tree, data_ + "/big")), big);
  if (!dropped) GTEST_SKIP() << "this file system keeps the file cached; read through the cache";
  // A file system without O_DIRECT reads through the cache instead.
  fd = ::open((data_ + "/big").c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) GTEST_SKIP() << "no O_DIRECT here";
  ::close(fd);
  EXPECT_EQ(r->bytes_read_direct, size);

  // Cached, the same file is read through the cache.
  std::ifstream(data_ + "/big", std::ios::binary).ignore(size);
  auto again = Backup();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->bytes_read, size);
  EXPECT_EQ(again->bytes_read_direct, 0u);
}

// Chunks view the read buffers they were cut from (SlabPool): more data in
// flight than the pools hold (24 single reads, 4 batches of direct reads)
// waits for buffers to come back, and every chunk still holds its own bytes.
TEST_F(BackupTest, ChunksKeepTheirReadBuffersUntilSealed) {
  options_.memory_budget = 512u << 20;  // so that the pools, not the budget, run out
  std::vector<Bytes> files;
  for (int i = 0; i < 3; ++i) {
    files.push_back(RandomBytes((40u << 20) + 777 * i, 30 + i));
    WriteFile(data_ + "/f" + std::to_string(i), files.back());
  }
  // One of them out of the page cache: read with O_DIRECT where it can be.
  int fd = ::open((data_ + "/f1").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fsync(fd), 0);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->warnings.empty());
  Reader reader(keys_, &vault_);
  for (int i = 0; i < 3; ++i) {
    const std::string path = data_ + "/f" + std::to_string(i);
    EXPECT_TRUE(reader.Content(*reader.Find(r->root_tree, path)) == files[i]) << path;
  }
}

// A backup that fails while the reader waits for a read buffer (every one
// held by chunks the failed upload will never send) ends with the failure.
TEST_F(BackupTest, AFailureWhileTheReadBuffersAreHeldEndsTheBackup) {
  options_.memory_budget = 512u << 20;
  WriteFile(data_ + "/big", RandomBytes(96u << 20, 41));
  vault_.fail_puts = true;
  auto r = Backup();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("connection lost"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(vault_.commits, 0);
}

TEST_F(BackupTest, ExcludedEntriesAreLeftOut) {
  WriteFile(data_ + "/keep", AsBytes("k"));
  WriteFile(data_ + "/drop.tmp", AsBytes("d"));
  ASSERT_EQ(::mkdir((data_ + "/cache").c_str(), 0755), 0);
  WriteFile(data_ + "/cache/x", AsBytes("x"));
  options_.excludes = {"*.tmp", "cache"};
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  Reader reader(keys_, &vault_);
  EXPECT_TRUE(reader.Find(r->root_tree, data_ + "/keep"));
  EXPECT_FALSE(reader.Find(r->root_tree, data_ + "/drop.tmp"));
  EXPECT_FALSE(reader.Find(r->root_tree, data_ + "/cache"));
  EXPECT_EQ(r->files, 1u);
}

TEST_F(BackupTest, VanishedFileIsAWarning) {
  WriteFile(data_ + "/stays", AsBytes("s"));
  WriteFile(data_ + "/goes", AsBytes("g"));
  options_.before_read_for_test = [&](const std::string& path) {
    if (path == data_ + "/goes") ::unlink(path.c_str());
  };
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("vanished"), std::string::npos) << r->warnings[0];
  EXPECT_EQ(vault_.last_stats.warnings, 1u);
  Reader reader(keys_, &vault_);
  EXPECT_TRUE(reader.Find(r->root_tree, data_ + "/stays"));
  EXPECT_FALSE(reader.Find(r->root_tree, data_ + "/goes"));
}

// A file that changed after its directory was listed and before it was
// opened (the stat-ahead lists ahead of the scanner) is read, checked and
// recorded as opened: whole, and without a warning.
TEST_F(BackupTest, FileChangedBeforeItsOpenIsReadAsOpened) {
  WriteFile(data_ + "/grows", AsBytes("short"));
  const Bytes longer = RandomBytes(100 * 1024, 9);
  options_.before_read_for_test = [&](const std::string& path) {
    if (path == data_ + "/grows") WriteFile(path, longer);
  };
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->warnings.empty()) << r->warnings[0];
  Reader reader(keys_, &vault_);
  auto e = reader.Find(r->root_tree, data_ + "/grows");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->size, longer.size());
  EXPECT_EQ(reader.Content(*e), longer);
}

TEST_F(BackupTest, UnreadableFileIsAWarning) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads everything";
  WriteFile(data_ + "/secret", AsBytes("s"));
  ASSERT_EQ(::chmod((data_ + "/secret").c_str(), 0), 0);
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("Permission denied"), std::string::npos);
}

TEST_F(BackupTest, NetworkFailureAbortsAndTeachesTheCacheNothing) {
  WriteFile(data_ + "/a", RandomBytes(100 * 1024, 8));
  vault_.fail_puts = true;
  auto r = Backup(cache_.get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("connection lost"), std::string::npos);
  EXPECT_EQ(vault_.commits, 0);
  EXPECT_EQ(*cache_->Count(), 0u);
  vault_.fail_puts = false;
  auto again = Backup(cache_.get());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->cache_hits, 0u);
  EXPECT_EQ(*cache_->Count(), 1u);
}

TEST_F(BackupTest, StaleCacheIsClearedWhenTheVaultLacksItsChunks) {
  WriteFile(data_ + "/a", RandomBytes(100 * 1024, 9));
  ASSERT_TRUE(Backup(cache_.get()).ok());
  vault_.durable.clear();  // the vault lost or collected everything
  auto r = Backup(cache_.get());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_EQ(*cache_->Count(), 0u);
  auto again = Backup(cache_.get());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

// The stat-ahead only reads earlier what the scanner would read: the same
// tree with it and without it, excludes and all.
TEST_F(BackupTest, TheStatAheadChangesNothing) {
  for (const char* d : {"a", "a/x", "a/x/y", "a.b", "b", "b/cache", "c"}) {
    ASSERT_EQ(::mkdir((data_ + "/" + d).c_str(), 0755), 0);
    for (int i = 0; i < 20; ++i) {
      WriteFile(data_ + "/" + d + "/f" + std::to_string(i),
                AsBytes(std::string(d) + "," + std::to_string(i)));
    }
  }
  ASSERT_EQ(::symlink("a", (data_ + "/link").c_str()), 0);
  options_.excludes = {"cache", "*7"};
  options_.stat_ahead = 0;
  auto without = Backup();
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  options_.stat_ahead = 8;
  auto with = Backup();
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  Reader reader(keys_, &vault_);
  auto before = reader.Find(without->root_tree, data_);
  auto after = reader.Find(with->root_tree, data_);
  ASSERT_TRUE(before && after);
  EXPECT_EQ(before->subtree, after->subtree);
  EXPECT_EQ(with->files, without->files);
  EXPECT_EQ(with->files, 6u * 18u);  // f7 and f17 excluded everywhere; b/cache left out
  EXPECT_FALSE(reader.Find(with->root_tree, data_ + "/b/cache"));
  EXPECT_TRUE(reader.Find(with->root_tree, data_ + "/a/x/y/f3"));
}

// Small files share group records; a copy of one is stored once, whether
// an earlier group holds it or the same group does.
TEST_F(BackupTest, CopiesOfASmallFileAreStoredOnce) {
  options_.workers = 1;  // groups are packed in the order they are cut
  const Bytes same = RandomBytes(3000, 7), other = RandomBytes(2000, 8);
  ASSERT_EQ(::mkdir((data_ + "/a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((data_ + "/b").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((data_ + "/c").c_str(), 0755), 0);
  WriteFile(data_ + "/a/1", same);  // a group: 1, 2 (its copy) and 3
  WriteFile(data_ + "/a/2", same);
  WriteFile(data_ + "/a/3", other);
  WriteFile(data_ + "/b/copy", same);  // an earlier group holds it
  WriteFile(data_ + "/c/x", other);    // a group of one file and its copy
  WriteFile(data_ + "/c/y", other);
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Reader reader(keys_, &vault_);
  auto entry = [&](const std::string& rel) {
    auto e = reader.Find(r->root_tree, data_ + rel);
    EXPECT_TRUE(e) << rel;
    return e.value_or(repo::TreeEntry{});
  };
  const repo::TreeEntry a1 = entry("/a/1"), a2 = entry("/a/2"), a3 = entry("/a/3");
  ASSERT_EQ(a1.content.size(), 1u);
  ASSERT_EQ(a1.content[0].kind, repo::RefKind::kSlice);
  EXPECT_EQ(a2.content, a1.content);
  EXPECT_EQ(entry("/b/copy").content, a1.content);
  // The group record holds 1 and 3, not the copy.
  EXPECT_EQ(reader.Object(a1.content[0].id).size(), same.size() + other.size());
  ASSERT_EQ(a3.content.size(), 1u);
  EXPECT_EQ(a3.content[0].id, a1.content[0].id);
  EXPECT_EQ(entry("/c/x").content, a3.content);
  EXPECT_EQ(entry("/c/y").content, a3.content);
  for (const char* rel : {"/a/1", "/a/2", "/b/copy"}) EXPECT_EQ(reader.Content(entry(rel)), same);
  for (const char* rel : {"/a/3", "/c/x", "/c/y"}) EXPECT_EQ(reader.Content(entry(rel)), other);

  // Two copies alone in a directory: one chunk of their own, both referring to it.
  ASSERT_EQ(::mkdir((data_ + "/d").c_str(), 0755), 0);
  const Bytes fresh = RandomBytes(1500, 9);
  WriteFile(data_ + "/d/p", fresh);
  WriteFile(data_ + "/d/q", fresh);
  r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const repo::TreeEntry p = entry("/d/p"), q = entry("/d/q");
  ASSERT_EQ(p.content.size(), 1u);
  EXPECT_EQ(p.content[0].kind, repo::RefKind::kData);
  EXPECT_EQ(q.content, p.content);
  EXPECT_EQ(reader.Object(p.content[0].id), fresh);
}

TEST_F(BackupTest, NestedAndDuplicatePathsAreBackedUpOnce) {
  auto p = NormalizeBackupPaths({data_, data_ + "/", data_ + "/../data/."});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->size(), 1u);
  EXPECT_FALSE(NormalizeBackupPaths({}).ok());
  EXPECT_FALSE(NormalizeBackupPaths({root_ + "/missing"}).ok());
}

}  // namespace
}  // namespace cairn::agent

namespace cairn::agent {
namespace {

// A policy's bandwidth limit: records wait only for what runs ahead of the
// rate, after a one-second burst; a simulated clock makes it exact.
TEST(LimitBandwidthTest, RecordsWaitForWhatRunsAheadOfTheRate) {
  class Counting : public VaultSession {
   public:
    explicit Counting(uint64_t* bytes) : bytes_(bytes) {}
    Result<std::vector<bool>> HaveChunks(const std::vector<crypto::ChunkId>& ids) override {
      return std::vector<bool>(ids.size(), false);
    }
    Status PutRecord(ByteView record) override {
      *bytes_ += record.size();
      return Status::OK();
    }
    Status Flush() override { return Status::OK(); }
    Status KeepAlive() override { return Status::OK(); }
    Result<std::string> Commit(const crypto::ChunkId&, const std::vector<crypto::ChunkId>&,
                               const proto::SnapshotStats&) override {
      return std::string("s");
    }

   private:
    uint64_t* bytes_;
  };
  uint64_t sent = 0, now = 1'000'000, slept = 0;
  RateClock clock{[&] { return now; },
                  [&](uint64_t micros) {
                    slept += micros;
                    now += micros;
                  }};
  const uint64_t rate = 4 << 20;  // 4 MiB/s
  auto session = LimitBandwidth(std::make_unique<Counting>(&sent), rate, clock);
  Bytes record(1 << 20);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(session->PutRecord(record).ok());
  EXPECT_EQ(slept, 0u);  // the first second's worth goes at once
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(session->PutRecord(record).ok());
  EXPECT_EQ(sent, 12u << 20);
  EXPECT_EQ(slept, 2'000'000u);  // 8 MiB more at 4 MiB/s
  // Time that passed on its own (reading a slow disk) is not waited again.
  now += 5'000'000;
  slept = 0;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(session->PutRecord(record).ok());
  EXPECT_EQ(slept, 0u);
  // But credit stops at one burst: a long pause does not allow a longer one.
  ASSERT_TRUE(session->PutRecord(record).ok());
  EXPECT_EQ(slept, 250'000u);
  // No limit: the session itself.
  auto plain = std::make_unique<Counting>(&sent);
  VaultSession* raw = plain.get();
  EXPECT_EQ(LimitBandwidth(std::move(plain), 0).get(), raw);
}

}  // namespace
}  // namespace cairn::agent
