#include "vault/catalog.h"

#include <gtest/gtest.h>

#include "lib/repo/test_util.h"

namespace cairn::vault {
namespace {

using repo::testing::ScratchDir;

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::move(*repo::LmdbEnv::Open(dir_.File("lmdb"), {}));
    catalog_ = std::move(*Catalog::Open(env_.get()));
  }
  ScratchDir dir_;
  std::unique_ptr<repo::LmdbEnv> env_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, DepartmentsHaveUniqueValidNames) {
  auto a = catalog_->CreateDepartment("finance", AsBytes("wrapped"), 1);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->id, 1u);
  auto b = catalog_->CreateDepartment("health-2", AsBytes("w2"), 2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->id, 2u);
  EXPECT_EQ(catalog_->CreateDepartment("finance", AsBytes("x"), 3).status().code(),
            StatusCode::kInvalidArgument);
  for (std::string bad :
       std::vector<std::string>{"", "Finance", "-x", "a/b", "a b", std::string(65, 'a')}) {
    EXPECT_EQ(catalog_->CreateDepartment(bad, AsBytes("x"), 3).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(catalog_->FindDepartment("health-2")->id, 2u);
  EXPECT_EQ(AsString(catalog_->FindDepartment(1u)->wrapped_keys), "wrapped");
  EXPECT_TRUE(catalog_->FindDepartment("nope").status().IsNotFound());
  EXPECT_EQ(catalog_->ListDepartments()->size(), 2u);
}

TEST_F(CatalogTest, TokensAreOneTimeExpiringAndBoundToTheirDepartment) {
  auto d = *catalog_->CreateDepartment("finance", AsBytes("k"), 0);
  const uint64_t now = 1'000'000'000;
  auto token = catalog_->CreateToken(d.id, now, 60'000'000);
  ASSERT_TRUE(token.ok());
  auto dept = catalog_->RedeemToken(*token, now + 1);
  ASSERT_TRUE(dept.ok()) << dept.status().ToString();
  EXPECT_EQ(*dept, d.id);
  Status reused = catalog_->RedeemToken(*token, now + 2).status();
  EXPECT_EQ(reused.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(reused.message().find("already used"), std::string::npos);

  auto expiring = *catalog_->CreateToken(d.id, now, 60'000'000);
  Status expired = catalog_->RedeemToken(expiring, now + 61'000'000).status();
  EXPECT_NE(expired.message().find("expired"), std::string::npos) << expired.ToString();

  auto good = *catalog_->CreateToken(d.id, now, 60'000'000);
  std::string forged = good;
  forged.back() = forged.back() == '0' ? '1' : '0';  // right ID, wrong secret
  EXPECT_NE(catalog_->RedeemToken(forged, now).status().message().find("unknown"),
            std::string::npos);
  EXPECT_TRUE(catalog_->RedeemToken(good, now).ok());  // the forgery did not spend it
  for (std::string bad : {"", "abc", "zz.zz", "00.00"}) {
    EXPECT_EQ(catalog_->RedeemToken(bad, now).status().code(), StatusCode::kPermissionDenied);
  }
  EXPECT_TRUE(catalog_->CreateToken(99, now, 1).status().IsNotFound());
}

TEST_F(CatalogTest, AgentsCanBeRevoked) {
  AgentRecord a{"0abc", 1, "host-1", 5, false, 0};
  ASSERT_TRUE(catalog_->AddAgent(a).ok());
  EXPECT_FALSE(catalog_->IsRevokedOrUnknown("0abc"));
  EXPECT_TRUE(catalog_->IsRevokedOrUnknown("ffff"));  // never issued
  ASSERT_TRUE(catalog_->RevokeAgent("0abc", 9).ok());
  EXPECT_TRUE(catalog_->IsRevokedOrUnknown("0abc"));
  EXPECT_EQ(catalog_->FindAgent("0abc")->revoked_micros, 9u);
  EXPECT_TRUE(catalog_->RevokeAgent("ffff", 9).IsNotFound());
}

TEST_F(CatalogTest, SnapshotsListNewestFirstWithTheirManifests) {
  std::vector<crypto::ChunkId> manifest(40000);
  for (size_t i = 0; i < manifest.size(); ++i) EncodeFixed64(manifest[i].data(), i);
  for (uint64_t t : {100u, 300u, 200u}) {
    SnapshotRecord s;
    s.department_id = 1;
    s.host = "h";
    s.paths = {"/srv"};
    s.time_micros = t;
    ASSERT_TRUE(catalog_->CommitSnapshot(s, manifest).ok());
  }
  SnapshotRecord other;
  other.department_id = 2;
  ASSERT_TRUE(catalog_->CommitSnapshot(other, {}).ok());
  auto list = catalog_->ListSnapshots(1, 0);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].time_micros, 300u);
  EXPECT_EQ((*list)[2].time_micros, 100u);
  EXPECT_EQ(catalog_->ListSnapshots(1, 2)->size(), 2u);
  auto m = catalog_->Manifest(1, (*list)[1].id);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(*m, manifest);
  // Another department's snapshot is invisible here.
  auto theirs = catalog_->ListSnapshots(2, 0);
  EXPECT_TRUE(catalog_->FindSnapshot(1, (*theirs)[0].id).status().IsNotFound());
}

}  // namespace
}  // namespace cairn::vault
