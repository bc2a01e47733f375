#include "agent/run.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "lib/client/identity.h"
#include "lib/repo/test_util.h"

namespace cairn::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(BackoffDelayTest, DoublesFromOneSecondToAMinuteWithJitter) {
  EXPECT_EQ(BackoffDelay(0, seconds(1), seconds(60), 1.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(0, seconds(1), seconds(60), 0.0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(1, seconds(1), seconds(60), 1.0), milliseconds(2000));
  EXPECT_EQ(BackoffDelay(5, seconds(1), seconds(60), 1.0), milliseconds(32000));
  EXPECT_EQ(BackoffDelay(6, seconds(1), seconds(60), 1.0), milliseconds(60000));
  EXPECT_EQ(BackoffDelay(30, seconds(1), seconds(60), 1.0), milliseconds(60000));
  EXPECT_EQ(BackoffDelay(30, seconds(1), seconds(60), 0.0), milliseconds(30000));
  // Out-of-range randomness is clamped.
  EXPECT_EQ(BackoffDelay(0, seconds(1), seconds(60), 7.0), milliseconds(1000));
}

TEST(ConfiguredBackupPathsTest, ReadsThePathsArrayOfAgentToml) {
  repo::testing::ScratchDir dir;
  const std::string state = dir.File("state");
  ASSERT_TRUE(client::CreateStateDir(state).ok());
  // No agent.toml, or one without paths: no backup set.
  EXPECT_TRUE(ConfiguredBackupPaths(state)->empty());
  std::ofstream(client::IdentityPaths(state).config()) << "format_version = 1\n";
  EXPECT_TRUE(ConfiguredBackupPaths(state)->empty());
  std::ofstream(client::IdentityPaths(state).config())
      << "format_version = 1\npaths = [\"/srv/data\", \"/etc\"]\n";
  auto paths = ConfiguredBackupPaths(state);
  ASSERT_TRUE(paths.ok()) << paths.status().ToString();
  EXPECT_EQ(*paths, (std::vector<std::string>{"/srv/data", "/etc"}));
  std::ofstream(client::IdentityPaths(state).config()) << "format_version = 1\npaths = \"/srv\"\n";
  EXPECT_TRUE(ConfiguredBackupPaths(state).status().IsCorruption());
  std::ofstream(client::IdentityPaths(state).config()) << "format_version = 1\npaths = [1]\n";
  EXPECT_TRUE(ConfiguredBackupPaths(state).status().IsCorruption());
  std::ofstream(client::IdentityPaths(state).config()) << "paths = [\n";
  EXPECT_TRUE(ConfiguredBackupPaths(state).status().IsCorruption());
}

TEST(AgentServiceTest, NeedsAVaultAddress) {
  client::Identity state;
  AgentService service(state, {});
  EXPECT_EQ(service.Run().code(), StatusCode::kInvalidArgument);
}

TEST(AgentServiceTest, StopEndsRetriesAgainstAnUnreachableVault) {
  repo::testing::ScratchDir dir;
  client::Identity state;
  state.dir = dir.File("state");
  state.config.vault_addresses = {"127.0.0.1:1"};  // nothing listens on port 1
  state.config.host = "test-host";
  RunOptions options;
  options.paths = {"/nonexistent"};
  options.backoff_initial = milliseconds(20);
  options.backoff_max = milliseconds(50);
  options.connect_deadline = milliseconds(500);
  AgentService service(state, options);
  Status result = Status::IOError("not run");
  std::thread runner([&] { result = service.Run(); });
  std::this_thread::sleep_for(milliseconds(300));  // several failed attempts
  const auto stop_at = std::chrono::steady_clock::now();
  service.Stop();
  runner.join();
  // The TLS context needs no certificate to be made; a client without one
  // is simply refused, which the loop treats like any other failure.
  EXPECT_TRUE(result.ok() || result.code() == StatusCode::kInvalidArgument) << result.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, seconds(2));
}

}  // namespace
}  // namespace cairn::agent
