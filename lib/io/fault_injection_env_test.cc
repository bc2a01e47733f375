#include "lib/io/fault_injection_env.h"

#include <gtest/gtest.h>

#include "lib/io/io_test_util.h"
#include "lib/io/mem_env.h"
#include "lib/io/posix_env.h"

namespace cairn::io {
namespace {

class FaultInjectionEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env_.CreateDir("/d").ok());
    ASSERT_TRUE(env_.SyncDir("/").ok());
  }

  std::unique_ptr<WritableFile> Create(const std::string& path) {
    auto file = env_.NewWritableFile(path);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? std::move(*file) : nullptr;
  }

  std::string Content(const std::string& path) {
    auto bytes = ReadFileToBytes(&env_, path);
    return bytes.ok() ? std::string(AsString(*bytes)) : "<" + bytes.status().ToString() + ">";
  }

  MemEnv mem_;
  FaultInjectionEnv env_{&mem_};
};

TEST_F(FaultInjectionEnvTest, UnsyncedDataIsDroppedSyncedKept) {
  auto file = Create("/d/f");
  ASSERT_TRUE(file->Append(AsBytes("durable")).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append(AsBytes("+volatile")).ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  EXPECT_EQ(Content("/d/f"), "durable+volatile") << "before the crash, reads see everything";

  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/f"), "durable");
  EXPECT_FALSE(file->Append(AsBytes("x")).ok()) << "handles die with the power";
  EXPECT_FALSE(file->Sync().ok());
}

TEST_F(FaultInjectionEnvTest, FileCreatedWithoutSyncDirDisappears) {
  auto lost = Create("/d/lost");
  ASSERT_TRUE(lost->Append(AsBytes("synced data, unsynced name")).ok());
  ASSERT_TRUE(lost->Sync().ok());
  auto kept = Create("/d/kept");
  ASSERT_TRUE(kept->Append(AsBytes("abc")).ok());
  ASSERT_TRUE(kept->Sync().ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());  // covers both so far...
  auto late = Create("/d/late");         // ...but not this one
  ASSERT_TRUE(late->Append(AsBytes("late")).ok());
  ASSERT_TRUE(late->Sync().ok());
  ASSERT_TRUE(env_.RemoveFile("/d/lost").ok());

  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/kept"), "abc");
  EXPECT_FALSE(env_.FileExists("/d/late"));
  EXPECT_FALSE(env_.FileExists("/d/lost"));
}

TEST_F(FaultInjectionEnvTest, SyncDirOfAnotherDirectoryDoesNotHelp) {
  ASSERT_TRUE(env_.CreateDir("/e").ok());
  auto file = Create("/d/f");
  ASSERT_TRUE(file->Append(AsBytes("x")).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(env_.SyncDir("/e").ok());
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_FALSE(env_.FileExists("/d/f"));
}

TEST_F(FaultInjectionEnvTest, UnsyncedRenameBringsBackTheOldFile) {
  ASSERT_TRUE(WriteFileAtomically(&env_, "/d/config", AsBytes("old")).ok());
  // By hand, the same steps as WriteFileAtomically minus the final SyncDir.
  auto tmp = Create("/d/config.tmp");
  ASSERT_TRUE(tmp->Append(AsBytes("new")).ok());
  ASSERT_TRUE(tmp->Sync().ok());
  ASSERT_TRUE(tmp->Close().ok());
  ASSERT_TRUE(env_.RenameFile("/d/config.tmp", "/d/config").ok());
  EXPECT_EQ(Content("/d/config"), "new");

  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/config"), "old");
  EXPECT_FALSE(env_.FileExists("/d/config.tmp"));
}

TEST_F(FaultInjectionEnvTest, WriteFileAtomicallySurvivesPowerLoss) {
  ASSERT_TRUE(WriteFileAtomically(&env_, "/d/config", AsBytes("v1")).ok());
  ASSERT_TRUE(WriteFileAtomically(&env_, "/d/config", AsBytes("v2")).ok());
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/config"), "v2");
  auto children = env_.GetChildren("/d");
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{"config"});
}

TEST_F(FaultInjectionEnvTest, TruncateIsDurable) {
  auto file = Create("/d/f");
  ASSERT_TRUE(file->Append(AsBytes("0123456789")).ok());
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE(env_.TruncateFile("/d/f", 4).ok());
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/f"), "0123");
}

TEST_F(FaultInjectionEnvTest, NthWriteFailsOnceAndWritesNothing) {
  auto file = Create("/d/f");
  env_.FailNthWrite(2);
  EXPECT_TRUE(file->Append(AsBytes("one")).ok());
  Status s = file->Append(AsBytes("two"));
  EXPECT_EQ(s.code(), StatusCode::kIOError) << s.ToString();
  EXPECT_EQ(file->Size(), 3u);
  EXPECT_TRUE(file->Append(AsBytes("three")).ok()) << "one-shot";
  EXPECT_EQ(Content("/d/f"), "onethree");
  EXPECT_EQ(env_.append_count(), 3u);
  EXPECT_EQ(env_.bytes_appended(), 8u);
}

TEST_F(FaultInjectionEnvTest, NthSyncFailsOnceAndDoesNotMakeDataDurable) {
  auto file = Create("/d/f");
  ASSERT_TRUE(env_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append(AsBytes("a")).ok());
  ASSERT_TRUE(file->Sync().ok());
  env_.FailNthSync(1);
  ASSERT_TRUE(file->Append(AsBytes("b")).ok());
  EXPECT_EQ(file->Sync().code(), StatusCode::kIOError);
  EXPECT_EQ(env_.sync_count(), 2u);
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/f"), "a");

  auto again = env_.NewAppendableFile("/d/f");
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Append(AsBytes("c")).ok());
  EXPECT_TRUE((*again)->Sync().ok()) << "one-shot";
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/f"), "ac");
}

TEST_F(FaultInjectionEnvTest, NoSpaceBudget) {
  auto file = Create("/d/f");
  env_.SetNoSpaceAfter(10);
  EXPECT_TRUE(file->Append(AsBytes("123456")).ok());
  Status s = file->Append(AsBytes("78901"));  // 11 > 10
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_EQ(file->Size(), 6u) << "a refused append writes nothing";
  EXPECT_EQ(*env_.GetFileSize("/d/f"), 6u);
  EXPECT_TRUE(file->Append(AsBytes("7890")).ok()) << "exactly the budget fits";
  EXPECT_EQ(file->Append(AsBytes("x")).code(), StatusCode::kNoSpace);
  env_.ClearFaults();
  EXPECT_TRUE(file->Append(AsBytes("x")).ok());
  EXPECT_EQ(Content("/d/f"), "1234567890x");
}

TEST_F(FaultInjectionEnvTest, CountersAndReset) {
  auto file = Create("/d/f");
  ASSERT_TRUE(file->Append(AsBytes("ab")).ok());
  ASSERT_TRUE(file->Append(AsBytes("c")).ok());
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_EQ(env_.append_count(), 2u);
  EXPECT_EQ(env_.sync_count(), 1u);
  EXPECT_EQ(env_.bytes_appended(), 3u);
  env_.ResetCounters();
  EXPECT_EQ(env_.append_count(), 0u);
  EXPECT_EQ(env_.sync_count(), 0u);
}

TEST_F(FaultInjectionEnvTest, FilesOutsideItsKnowledgeAreDurable) {
  // Written straight into the base Env: as if it existed before the test.
  ASSERT_TRUE(WriteFileAtomically(&mem_, "/d/pre", AsBytes("existing")).ok());
  auto file = env_.NewAppendableFile("/d/pre");
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append(AsBytes("+more")).ok());
  ASSERT_TRUE(env_.DropUnsyncedData().ok());
  EXPECT_EQ(Content("/d/pre"), "existing");
}

// The wrapper is not tied to MemEnv: the same power-loss model over real files.
TEST(FaultInjectionOverPosixTest, DropsUnsyncedTail) {
  testing::TempDir dir;
  FaultInjectionEnv env(Env::Posix());
  const std::string path = dir.Child("f");
  auto file = env.NewWritableFile(path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append(AsBytes("keep")).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE(env.SyncDir(dir.path()).ok());
  ASSERT_TRUE((*file)->Append(AsBytes("lose")).ok());
  ASSERT_TRUE(env.DropUnsyncedData().ok());
  auto bytes = ReadFileToBytes(Env::Posix(), path);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(AsString(*bytes), "keep");
}

}  // namespace
}  // namespace cairn::io
