#include "lib/repo/lmdb.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "lib/repo/test_util.h"

namespace cairn::repo {
namespace {

using testing::ScratchDir;

TEST(LmdbStatusTest, MapsEveryClassOfError) {
  EXPECT_TRUE(LmdbStatus(MDB_SUCCESS, "x").ok());
  EXPECT_EQ(LmdbStatus(MDB_NOTFOUND, "get").code(), StatusCode::kNotFound);
  EXPECT_EQ(LmdbStatus(MDB_MAP_FULL, "put").code(), StatusCode::kNoSpace);
  EXPECT_EQ(LmdbStatus(ENOSPC, "commit").code(), StatusCode::kNoSpace);
  EXPECT_EQ(LmdbStatus(MDB_CORRUPTED, "get").code(), StatusCode::kCorruption);
  EXPECT_EQ(LmdbStatus(MDB_PAGE_NOTFOUND, "get").code(), StatusCode::kCorruption);
  EXPECT_EQ(LmdbStatus(MDB_INVALID, "open").code(), StatusCode::kCorruption);
  EXPECT_EQ(LmdbStatus(MDB_VERSION_MISMATCH, "open").code(), StatusCode::kCorruption);
  EXPECT_EQ(LmdbStatus(EACCES, "open").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(LmdbStatus(EIO, "read").code(), StatusCode::kIOError);
  EXPECT_EQ(LmdbStatus(MDB_TXN_FULL, "put").code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(LmdbStatus(MDB_TXN_FULL, "put").retryable());
  Status readers = LmdbStatus(MDB_READERS_FULL, "begin");
  EXPECT_EQ(readers.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(readers.retryable());
  EXPECT_NE(LmdbStatus(MDB_NOTFOUND, "get chunk").message().find("get chunk"), std::string::npos);
}

// Kilobytes of `file` mapped and resident in this process (/proc/self/smaps).
uint64_t ResidentKiB(const std::string& file) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in = false;
  uint64_t kib = 0;
  while (std::getline(smaps, line)) {
    const std::string first = line.substr(0, line.find(' '));
    if (!first.empty() && first.back() != ':') {  // a mapping's header line
      in = line.size() >= file.size() &&
           line.compare(line.size() - file.size(), file.size(), file) == 0;
    } else if (in && first == "Rss:") {
      kib += std::stoull(line.substr(4));
    }
  }
  return kib;
}

// Resident KiB of the data file after a scan of ~20 MB and one more
// transaction; checks that a view held from before reads the same bytes.
uint64_t ResidentAfterScan(const LmdbOptions& options) {
  ScratchDir dir;
  auto env = LmdbEnv::Open(dir.File("db"), options);
  EXPECT_TRUE(env.ok()) << env.status().ToString();
  if (!env.ok()) return 0;
  auto db = (*env)->OpenDb("t");
  EXPECT_TRUE(db.ok());
  const std::string value(1000, 'v');
  {
    auto txn = (*env)->BeginWrite();
    EXPECT_TRUE(txn.ok());
    for (int i = 0; i < 20000; ++i) {
      const std::string key = "key" + std::to_string(i);
      EXPECT_TRUE(txn->Put(*db, AsBytes(key), AsBytes(value + key)).ok());
    }
    EXPECT_TRUE(txn->Commit().ok());
  }
  auto held = (*env)->BeginRead();
  EXPECT_TRUE(held.ok());
  auto view = held->Get(*db, AsBytes("key123"));
  EXPECT_TRUE(view.ok());
  uint64_t touched = 0;
  {
    auto scan = (*env)->BeginRead();  // reads every page
    EXPECT_TRUE(scan.ok());
    EXPECT_TRUE(scan->ForEachPrefix(*db, {},
                                    [&](ByteView, ByteView v) {
                                      touched += v.size();
                                      return true;
                                    })
                    .ok());
  }
  EXPECT_EQ(touched, 20000 * (value.size() + 3) + 10 * 1 + 90 * 2 + 900 * 3 + 9000 * 4 + 10000 * 5);
  EXPECT_GT(ResidentKiB("/data.mdb"), 10000u);  // the scan mapped the ~20 MB file
  EXPECT_TRUE((*env)->BeginRead().ok());
  const uint64_t after = ResidentKiB("/data.mdb");
  EXPECT_EQ(std::string(view->begin(), view->end()), value + "key123");
  return after;
}

// `unmap` drops the pages a scan touched from the process (the resident set
// shrinks) when the next transaction begins, and loses nothing: a view held
// from an earlier transaction still reads its bytes, faulted back in from
// the page cache. Without it, or within the interval, the pages stay.
TEST(LmdbTest, UnmapShrinksTheResidentSetAndKeepsViews) {
  LmdbOptions options;
  EXPECT_GT(ResidentAfterScan(options), 10000u);
  options.unmap = true;
  options.unmap_interval = std::chrono::hours(1);  // only the first transaction drops
  EXPECT_GT(ResidentAfterScan(options), 10000u);
  options.unmap_interval = std::chrono::milliseconds(0);
  EXPECT_LT(ResidentAfterScan(options), 1000u);
}

TEST(LmdbTest, PutGetDeleteAndIterate) {
  ScratchDir dir;
  auto env = LmdbEnv::Open(dir.File("db"), {});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto db = (*env)->OpenDb("t");
  ASSERT_TRUE(db.ok());
  {
    auto txn = (*env)->BeginWrite();
    ASSERT_TRUE(txn.ok());
    for (std::string k : {"a1", "a2", "b1", "a3"}) {
      ASSERT_TRUE(txn->Put(*db, AsBytes(k), AsBytes("v" + k)).ok());
    }
    auto inserted = txn->PutIfAbsent(*db, AsBytes("a1"), AsBytes("other"));
    ASSERT_TRUE(inserted.ok());
    EXPECT_FALSE(*inserted);
    ASSERT_TRUE(txn->Commit().ok());
  }
  auto txn = (*env)->BeginRead();
  ASSERT_TRUE(txn.ok());
  auto v = txn->Get(*db, AsBytes("a1"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(AsString(*v), "va1");
  EXPECT_TRUE(txn->Get(*db, AsBytes("zz")).status().IsNotFound());
  std::vector<std::string> keys;
  ASSERT_TRUE(txn->ForEachPrefix(*db, AsBytes("a"),
                                 [&](ByteView k, ByteView) {
                                   keys.emplace_back(AsString(k));
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(*txn->Count(*db), 4u);
}

TEST(LmdbTest, PutAllIfAbsentInsertsWhatIsAbsentAndCountsIt) {
  ScratchDir dir;
  auto env = *LmdbEnv::Open(dir.File("db"), {});
  auto db = *env->OpenDb("t");
  auto txn = *env->BeginWrite();
  ASSERT_TRUE(txn.Put(db, AsBytes("b"), AsBytes("old")).ok());
  std::vector<std::pair<ByteView, ByteView>> rows = {
      {AsBytes("a"), AsBytes("1")}, {AsBytes("b"), AsBytes("new")}, {AsBytes("c"), AsBytes("3")}};
  auto inserted = txn.PutAllIfAbsent(db, rows);
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();
  EXPECT_EQ(*inserted, 2u);
  // Out of order works too (only slower), and nothing present is replaced.
  std::vector<std::pair<ByteView, ByteView>> more = {{AsBytes("z"), AsBytes("26")},
                                                     {AsBytes("a"), AsBytes("again")}};
  EXPECT_EQ(*txn.PutAllIfAbsent(db, more), 1u);
  ASSERT_TRUE(txn.Commit().ok());
  auto read = *env->BeginRead();
  EXPECT_EQ(AsString(*read.Get(db, AsBytes("a"))), "1");
  EXPECT_EQ(AsString(*read.Get(db, AsBytes("b"))), "old");
  EXPECT_EQ(AsString(*read.Get(db, AsBytes("z"))), "26");
  EXPECT_EQ(*read.Count(db), 4u);
  EXPECT_EQ(txn.PutAllIfAbsent(db, rows).status().code(), StatusCode::kInvalidArgument);
}

TEST(LmdbTest, FinishedTransactionRefusesUseInsteadOfCrashing) {
  ScratchDir dir;
  auto env = *LmdbEnv::Open(dir.File("db"), {});
  auto db = *env->OpenDb("t");
  auto txn = *env->BeginWrite();
  ASSERT_TRUE(txn.Commit().ok());
  EXPECT_EQ(txn.Put(db, AsBytes("k"), AsBytes("v")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(txn.Get(db, AsBytes("k")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(txn.Commit().code(), StatusCode::kInvalidArgument);
}

TEST(LmdbTest, UncommittedTransactionLeavesNoTrace) {
  ScratchDir dir;
  auto env = *LmdbEnv::Open(dir.File("db"), {});
  auto db = *env->OpenDb("t");
  {
    auto txn = *env->BeginWrite();
    ASSERT_TRUE(txn.Put(db, AsBytes("k"), AsBytes("v")).ok());
  }  // destroyed: aborted
  auto txn = *env->BeginRead();
  EXPECT_TRUE(txn.Get(db, AsBytes("k")).status().IsNotFound());
}

TEST(LmdbTest, FullMapIsNoSpaceAndKeepsCommittedData) {
  ScratchDir dir;
  LmdbOptions opts;
  opts.map_size = 1 << 20;  // 1 MiB
  auto env = *LmdbEnv::Open(dir.File("db"), opts);
  auto db = *env->OpenDb("t");
  {
    auto txn = *env->BeginWrite();
    ASSERT_TRUE(txn.Put(db, AsBytes("keep"), AsBytes("me")).ok());
    ASSERT_TRUE(txn.Commit().ok());
  }
  Status s;
  Bytes value(4000, 0xab);
  auto txn = *env->BeginWrite();
  for (int i = 0; i < 10000 && s.ok(); ++i) {
    std::string k = "key" + std::to_string(i);
    s = txn.Put(db, AsBytes(k), value);
  }
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  txn.Abort();
  auto read = *env->BeginRead();
  auto v = read.Get(db, AsBytes("keep"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(AsString(*v), "me");
}

TEST(LmdbTest, GarbageDataFileIsCorruption) {
  ScratchDir dir;
  std::string path = dir.File("db");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  {
    std::ofstream f(path + "/data.mdb", std::ios::binary);
    std::string junk(16384, 'x');
    f << junk;
  }
  auto env = LmdbEnv::Open(path, {});
  EXPECT_EQ(env.status().code(), StatusCode::kCorruption) << env.status().ToString();
}

TEST(LmdbTest, ReadOnlyRefusesWrites) {
  ScratchDir dir;
  {
    auto env = *LmdbEnv::Open(dir.File("db"), {});
    ASSERT_TRUE(env->OpenDb("t").ok());
  }
  LmdbOptions ro;
  ro.read_only = true;
  auto env = LmdbEnv::Open(dir.File("db"), ro);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ((*env)->BeginWrite().status().code(), StatusCode::kPermissionDenied);
}

TEST(LmdbTest, MissingDirectoryWithoutCreateIsNotFound) {
  ScratchDir dir;
  LmdbOptions opts;
  opts.create = false;
  auto env = LmdbEnv::Open(dir.File("nope"), opts);
  EXPECT_EQ(env.status().code(), StatusCode::kNotFound) << env.status().ToString();
}

}  // namespace
}  // namespace cairn::repo
