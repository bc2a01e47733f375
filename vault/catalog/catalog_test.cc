#include "vault/catalog/catalog.h"

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
       std::vector<std::string>{"", "Finance", "-x", "a/b", "a b", "x\"y", std::string(254, 'a')}) {
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
  EXPECT_EQ(dept->department, d.id);
  EXPECT_FALSE(dept->drill_host);
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
  ASSERT_TRUE(catalog_->CommitSnapshot(other, std::vector<crypto::ChunkId>{}).ok());
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

TEST_F(CatalogTest, JobsGoFromQueuedToSentToDoneOrFailed) {
  auto d = catalog_->CreateDepartment("finance", AsBytes("w"), 1);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(catalog_->AddAgent({"aa01", d->id, "fin-01", 1, false, 0}).ok());

  JobRecord by_serial;
  by_serial.agent_serial = "aa01";
  by_serial.paths = {"/srv", "/etc"};
  auto a = catalog_->EnqueueJob(by_serial, 100);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, 1u);
  JobRecord by_host;
  by_host.department_id = d->id;
  by_host.host = "fin-02";  // not enrolled yet: the job waits for it
  by_host.image = true;
  auto b = catalog_->EnqueueJob(by_host, 200);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, 2u);

  auto job = catalog_->FindJob(*a);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->department_id, d->id);  // taken from the agent
  EXPECT_EQ(job->host, "fin-01");
  EXPECT_EQ(job->paths, (std::vector<std::string>{"/srv", "/etc"}));
  EXPECT_EQ(job->created_micros, 100u);
  EXPECT_EQ(catalog_->ListQueuedJobs()->size(), 2u);

  ASSERT_TRUE(catalog_->MarkJobSent(*a, "aa01", 150).ok());
  // Only a queued job can be sent, only a sent one finished.
  EXPECT_EQ(catalog_->MarkJobSent(*a, "aa01", 151).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->FinishJob(*b, true, "x", "", 151).code(), StatusCode::kInvalidArgument);
  auto queued = catalog_->ListQueuedJobs();
  ASSERT_EQ(queued->size(), 1u);
  EXPECT_EQ((*queued)[0].id, *b);
  EXPECT_TRUE((*queued)[0].image);

  // A failed send puts it back in the queue.
  ASSERT_TRUE(catalog_->RequeueJob(*a).ok());
  EXPECT_EQ(catalog_->FindJob(*a)->state, JobState::kQueued);
  EXPECT_EQ(catalog_->FindJob(*a)->sent_micros, 0u);
  ASSERT_TRUE(catalog_->MarkJobSent(*a, "aa01", 160).ok());
  ASSERT_TRUE(catalog_->FinishJob(*a, true, "00000000000000ff", "", 170).ok());
  job = catalog_->FindJob(*a);
  EXPECT_EQ(job->state, JobState::kDone);
  EXPECT_EQ(job->sent_to, "aa01");
  EXPECT_EQ(job->sent_micros, 160u);
  EXPECT_EQ(job->finished_micros, 170u);
  EXPECT_EQ(job->snapshot_id, "00000000000000ff");
  EXPECT_EQ(catalog_->FinishJob(*a, false, "", "again", 180).code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(catalog_->MarkJobSent(*b, "bb02", 300).ok());
  ASSERT_TRUE(catalog_->FinishJob(*b, false, "", "busy", 310).ok());
  EXPECT_EQ(catalog_->FindJob(*b)->state, JobState::kFailed);
  EXPECT_EQ(catalog_->FindJob(*b)->error, "busy");

  auto all = catalog_->ListJobs();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, *a);  // oldest first
  EXPECT_EQ(catalog_->ListJobs(1)->at(0).id, *b);
  EXPECT_TRUE(catalog_->ListQueuedJobs()->empty());
  EXPECT_TRUE(catalog_->FindJob(99).status().IsNotFound());
  EXPECT_EQ(JobStateName(JobState::kFailed), "failed");
}

TEST_F(CatalogTest, EnqueueJobChecksItsTarget) {
  auto d = catalog_->CreateDepartment("finance", AsBytes("w"), 1);
  auto h = catalog_->CreateDepartment("health", AsBytes("w"), 1);
  ASSERT_TRUE(d.ok() && h.ok());
  ASSERT_TRUE(catalog_->AddAgent({"aa01", d->id, "fin-01", 1, false, 0}).ok());
  ASSERT_TRUE(catalog_->AddAgent({"dead", d->id, "fin-09", 1, false, 0}).ok());
  ASSERT_TRUE(catalog_->RevokeAgent("dead", 2).ok());
  JobRecord j;
  EXPECT_EQ(catalog_->EnqueueJob(j, 1).status().code(), StatusCode::kInvalidArgument);
  j.agent_serial = "nope";
  EXPECT_TRUE(catalog_->EnqueueJob(j, 1).status().IsNotFound());
  j.agent_serial = "dead";
  EXPECT_EQ(catalog_->EnqueueJob(j, 1).status().code(), StatusCode::kPermissionDenied);
  j.agent_serial = "aa01";
  j.department_id = h->id;  // the agent is finance's
  EXPECT_EQ(catalog_->EnqueueJob(j, 1).status().code(), StatusCode::kPermissionDenied);
  j.department_id = 0;
  j.kind = 4;  // 1 backup, 2 drill, 3 restore
  EXPECT_EQ(catalog_->EnqueueJob(j, 1).status().code(), StatusCode::kInvalidArgument);
  j.kind = 1;
  j.paths = {""};
  EXPECT_EQ(catalog_->EnqueueJob(j, 1).status().code(), StatusCode::kInvalidArgument);
  j.paths = {std::string("a\0b", 3)};
  EXPECT_EQ(catalog_->EnqueueJob(j, 1).status().code(), StatusCode::kInvalidArgument);
  j.paths = {};
  JobRecord by_host;
  by_host.host = "fin-01";
  by_host.department_id = 77;  // no such department
  EXPECT_TRUE(catalog_->EnqueueJob(by_host, 1).status().IsNotFound());
  EXPECT_TRUE(catalog_->ListJobs()->empty());
  EXPECT_TRUE(catalog_->EnqueueJob(j, 1).ok());
}

}  // namespace
// Replication: departments imported under their source IDs, snapshots
// committed under their source IDs, listed across departments in commit
// order; the local counters move past what was imported.
TEST_F(CatalogTest, ReplicasKeepSourceIdsAndCountersMovePastThem) {
  ASSERT_TRUE(catalog_->ImportDepartment(7, "finance", Bytes(10, 1), 5).ok());
  // Idempotent for the same ID and name; refused for a clash.
  EXPECT_TRUE(catalog_->ImportDepartment(7, "finance", Bytes(10, 1), 5).ok());
  EXPECT_EQ(catalog_->ImportDepartment(7, "health", Bytes(10, 1), 5).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->ImportDepartment(8, "finance", Bytes(10, 1), 5).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->ImportDepartment(0, "zero", Bytes(10, 1), 5).status().code(),
            StatusCode::kInvalidArgument);
  // A department created here afterwards gets a higher ID.
  auto local = catalog_->CreateDepartment("health", Bytes(10, 2), 6);
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->id, 8u);

  std::vector<crypto::ChunkId> manifest(3);
  for (size_t i = 0; i < manifest.size(); ++i) EncodeFixed64(manifest[i].data(), i + 1);
  SnapshotRecord s;
  s.id = "0000000000000009";
  s.department_id = 7;
  s.time_micros = 1000;
  auto first = catalog_->CommitReplica(s, manifest);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  EXPECT_FALSE(*catalog_->CommitReplica(s, manifest));  // already there: unchanged
  EXPECT_EQ(*catalog_->Manifest(7, s.id), manifest);
  s.id = "not-hex";
  EXPECT_EQ(catalog_->CommitReplica(s, manifest).status().code(), StatusCode::kInvalidArgument);
  // A local snapshot after it sorts after it.
  SnapshotRecord mine;
  mine.department_id = 8;
  mine.time_micros = 500;  // an earlier clock does not matter: the number orders
  auto committed = catalog_->CommitSnapshot(mine, std::vector<crypto::ChunkId>{});
  ASSERT_TRUE(committed.ok());
  // A random 8-digit tag, then the counter past the replica's.
  EXPECT_EQ(committed->id.size(), 24u);
  EXPECT_EQ(committed->id.substr(8), "000000000000000a");
  EXPECT_EQ(SnapshotNumber(committed->id), 10u);
  auto all = catalog_->ListSnapshotsAfter(0, 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "0000000000000009");
  EXPECT_EQ((*all)[1].id, committed->id);
  EXPECT_EQ(catalog_->ListSnapshotsAfter(9, 0)->size(), 1u);
  EXPECT_EQ(catalog_->ListSnapshotsAfter(10, 0)->size(), 0u);
  EXPECT_EQ(catalog_->ListSnapshotsAfter(0, 1)->size(), 1u);
  EXPECT_EQ(*catalog_->LatestSnapshotNumber(), 10u);
  EXPECT_EQ(SnapshotNumber("000000000000000a"), 10u);
  EXPECT_EQ(SnapshotNumber("00000000000000A"), 0u);
  EXPECT_EQ(SnapshotNumber("zz"), 0u);

  EXPECT_TRUE(catalog_->GetSetting("x").status().IsNotFound());
  ASSERT_TRUE(catalog_->PutSetting("x", "1").ok());
  EXPECT_EQ(*catalog_->GetSetting("x"), "1");
  ASSERT_TRUE(catalog_->DeleteSetting("x").ok());
  EXPECT_TRUE(catalog_->GetSetting("x").status().IsNotFound());
  EXPECT_TRUE(catalog_->DeleteSetting("x").ok());
}

}  // namespace cairn::vault
