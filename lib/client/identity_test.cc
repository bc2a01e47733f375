#include "lib/client/identity.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "lib/io/env.h"

namespace cairn::client {
namespace {

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/cairn_state_XXXXXX";
  char* d = ::mkdtemp(tmpl.data());
  EXPECT_NE(d, nullptr);
  return tmpl;
}

int ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(IdentityTest, ConfigRoundTrips) {
  IdentityConfig c;
  c.vault_addresses = {"127.0.0.1:7443", "[::1]:7443"};
  c.department = "finance";
  c.department_id = 7;
  c.host = "fin-srv-01";
  Result<IdentityConfig> back = ParseConfig(FormatConfig(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->vault_addresses, c.vault_addresses);
  EXPECT_EQ(back->department, "finance");
  EXPECT_EQ(back->department_id, 7u);
  EXPECT_EQ(back->host, "fin-srv-01");
}

TEST(IdentityTest, NewerFormatIsRefused) {
  Result<IdentityConfig> c = ParseConfig(
      "format_version = 2\nvault_addresses = ['a:1']\n"
      "department_id = 1\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseConfig("format_version = 1\n").ok());  // no vault
  EXPECT_FALSE(ParseConfig("not toml [").ok());
}

TEST(IdentityTest, EnrollmentIsWrittenPrivatelyAndLoads) {
  const std::string dir = TempDir() + "/state";
  EXPECT_FALSE(HoldsEnrollment(dir));
  ASSERT_TRUE(CreateStateDir(dir).ok());
  EXPECT_EQ(ModeOf(dir), 0700);
  auto keys = crypto::DepartmentKeys::Generate();
  ASSERT_TRUE(keys.ok());
  Bytes blob = crypto::SerializeDepartmentKeys(*keys);
  IdentityConfig c;
  c.vault_addresses = {"127.0.0.1:7443"};
  c.department = "hr";
  c.department_id = 3;
  c.host = "h";
  ASSERT_TRUE(WriteEnrollment(dir, c, "CERT", "KEY", "CA", blob).ok());
  EXPECT_TRUE(HoldsEnrollment(dir));
  IdentityPaths p(dir);
  for (const std::string& f : {p.config(), p.certificate(), p.private_key(), p.ca(), p.keys()}) {
    EXPECT_EQ(ModeOf(f), 0600) << f;
  }
  Result<Identity> s = LoadIdentity(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->certificate_pem, "CERT");
  EXPECT_EQ(s->private_key_pem, "KEY");
  EXPECT_EQ(s->ca_pem, "CA");
  EXPECT_EQ(s->keys.id_key, keys->id_key);
  EXPECT_EQ(s->config.department, "hr");
}

TEST(IdentityTest, UnenrolledDirectoryIsNotFound) {
  Result<Identity> s = LoadIdentity(TempDir());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsNotFound());
}

TEST(IdentityTest, DamagedKeysAreCorruption) {
  const std::string dir = TempDir();
  IdentityConfig c;
  c.vault_addresses = {"a:1"};
  ASSERT_TRUE(WriteEnrollment(dir, c, "C", "K", "CA", Bytes(112, 0)).ok());
  Result<Identity> s = LoadIdentity(dir);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
}

}  // namespace
}  // namespace cairn::client
