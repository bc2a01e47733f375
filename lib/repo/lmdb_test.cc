#include "lib/repo/lmdb.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>

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
