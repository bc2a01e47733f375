// VaultService's rules, without a network: a real data directory, the
// service called as the protocol handlers and the command line call it.
#include "vault/service/vault_service.h"

#include <gtest/gtest.h>

#include "lib/proto/token.h"
#include "lib/repo/record.h"
#include "lib/repo/test_util.h"

namespace cairn::vault {
namespace {

using repo::testing::RandomBytes;
using repo::testing::ScratchDir;

class VaultServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions init;
    init.data_dir = dir_.File("vault");
    ASSERT_TRUE(InitVault(init).ok());
    OpenOptions oo;
    oo.serve = true;
    auto v = Vault::Open(init.data_dir, oo);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    vault_ = std::move(*v);
    service_ = std::make_unique<VaultService>(vault_.get());
    auto d = service_->CreateDepartment(me_, "finance");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    finance_ = *d;
    auto keys = vault_->DepartmentKeys(finance_.id);
    ASSERT_TRUE(keys.ok());
    encoder_ = std::move(*repo::RecordEncoder::Create(*keys, {}));
  }

  // Enrols `host` in `department` as the rpc layer would; returns its actor.
  Actor Enroll(const std::string& department, const std::string& host) {
    auto token = service_->CreateEnrollmentToken(me_, department, 60);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    auto parsed = proto::ParseEnrollmentToken(*token);
    EXPECT_TRUE(parsed.ok());
    auto key = crypto::GenerateKeyPair();
    auto csr = crypto::CreateCsr(key->private_key_pem, host);
    Actor anonymous;
    anonymous.kind = Actor::Kind::kAnonymous;
    anonymous.address = "test";
    auto resp = service_->Enroll(anonymous, {parsed->catalog_token, *csr, host});
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    auto peer = crypto::ParseIdentity(resp->certificate_pem);
    EXPECT_TRUE(peer.ok());
    auto dept = service_->AdmitAgent(*peer);
    EXPECT_TRUE(dept.ok());
    return Actor::FromPeer(*peer, dept->id, "test");
  }

  Bytes Record(uint64_t seed, crypto::ChunkId* id) {
    Bytes plain = RandomBytes(2000, seed), out;
    *id = encoder_->Id(plain);
    EXPECT_TRUE(encoder_->Encode(repo::RecordType::kData, *id, plain, &out).ok());
    return out;
  }

  ScratchDir dir_;
  std::unique_ptr<Vault> vault_;
  std::unique_ptr<VaultService> service_;
  Actor me_ = Actor::Local();
  Department finance_;
  std::unique_ptr<repo::RecordEncoder> encoder_;
};

TEST_F(VaultServiceTest, CommitIsRefusedUntilEveryChunkIsDurable) {
  Actor agent = Enroll("finance", "fin-srv-01");
  bool resumed = true;
  auto session = service_->BeginSession(agent, {proto::SessionKind::kFiles, {"/srv"}, 0}, &resumed);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE(resumed);
  crypto::ChunkId a, b;
  ASSERT_TRUE(service_->PutRecord(agent, Record(1, &a)).ok());
  ASSERT_TRUE(service_->PutRecord(agent, Record(2, &b)).ok());
  ASSERT_TRUE(service_->AddManifestPart(**session, {(*session)->id(), {a, b}}).ok());
  proto::Commit commit{(*session)->id(), a, 2, {}};
  // Put but not flushed: not durable, so no snapshot.
  auto refused = service_->Commit(agent, **session, commit);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().IsNotFound()) << refused.status().ToString();
  EXPECT_TRUE(service_->ListSnapshots("finance")->empty());
  // Flushed, and the manifest sent again: committed, once.
  ASSERT_TRUE(service_->Flush(**session, 1).ok());
  EXPECT_TRUE(service_->Flush(**session, 1).status().IsInvalidArgument());  // not increasing
  ASSERT_TRUE(service_->AddManifestPart(**session, {(*session)->id(), {a, b}}).ok());
  auto ok = service_->Commit(agent, **session, commit);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto again = service_->Commit(agent, **session, commit);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->snapshot_id, ok->snapshot_id);
  EXPECT_EQ(service_->ListSnapshots("finance")->size(), 1u);
}

TEST_F(VaultServiceTest, CommitRefusesAManifestThatDoesNotHoldTogether) {
  Actor agent = Enroll("finance", "fin-srv-01");
  bool resumed = false;
  auto session =
      *service_->BeginSession(agent, {proto::SessionKind::kFiles, {"/srv"}, 0}, &resumed);
  crypto::ChunkId a, b;
  ASSERT_TRUE(service_->PutRecord(agent, Record(1, &a)).ok());
  ASSERT_TRUE(service_->Flush(*session, 1).ok());
  Record(2, &b);
  ASSERT_TRUE(service_->AddManifestPart(*session, {session->id(), {a}}).ok());
  // The count disagrees.
  EXPECT_TRUE(
      service_->Commit(agent, *session, {session->id(), a, 2, {}}).status().IsInvalidArgument());
  // The root tree is not in the manifest.
  ASSERT_TRUE(service_->AddManifestPart(*session, {session->id(), {a}}).ok());
  EXPECT_TRUE(
      service_->Commit(agent, *session, {session->id(), b, 1, {}}).status().IsInvalidArgument());
  // Another session's part.
  EXPECT_TRUE(service_->AddManifestPart(*session, {session->id() + 2, {a}}).IsInvalidArgument());
  EXPECT_TRUE(service_->ListSnapshots("finance")->empty());
}

TEST_F(VaultServiceTest, AnAgentSeesOnlyItsOwnDepartment) {
  ASSERT_TRUE(service_->CreateDepartment(me_, "health").ok());
  Actor fin = Enroll("finance", "fin-srv-01");
  Actor health = Enroll("health", "hospital-db");
  crypto::ChunkId a;
  bool resumed = false;
  auto session = *service_->BeginSession(fin, {proto::SessionKind::kFiles, {"/srv"}, 0}, &resumed);
  ASSERT_TRUE(service_->PutRecord(fin, Record(1, &a)).ok());
  ASSERT_TRUE(service_->Flush(*session, 1).ok());
  std::vector<crypto::ChunkId> ids = {a};
  EXPECT_TRUE((*service_->HaveChunks(fin, ids))[0]);
  EXPECT_FALSE((*service_->HaveChunks(health, ids))[0]);
  EXPECT_TRUE(service_->ReadRecords(fin.department, ids).ok());
  EXPECT_TRUE(service_->ReadRecords(health.department, ids).status().IsNotFound());
  // Resuming another department's session starts a new one instead.
  auto other = *service_->BeginSession(health, {proto::SessionKind::kFiles, {"/x"}, session->id()},
                                       &resumed);
  EXPECT_FALSE(resumed);
  EXPECT_NE(other->id(), session->id());
}

TEST_F(VaultServiceTest, ATokenIsSpentOnceAndRevocationIsImmediate) {
  auto token = *service_->CreateEnrollmentToken(me_, "finance", 60);
  auto parsed = *proto::ParseEnrollmentToken(token);
  auto key = *crypto::GenerateKeyPair();
  auto csr = *crypto::CreateCsr(key.private_key_pem, "h1");
  Actor anonymous;
  ASSERT_TRUE(service_->Enroll(anonymous, {parsed.catalog_token, csr, "h1"}).ok());
  auto reused = service_->Enroll(anonymous, {parsed.catalog_token, csr, "h1"});
  EXPECT_TRUE(reused.status().IsPermissionDenied()) << reused.status().ToString();
  EXPECT_TRUE(service_->CreateEnrollmentToken(me_, "finance", 0).status().IsInvalidArgument());
  EXPECT_TRUE(service_->CreateEnrollmentToken(me_, "nowhere", 60).status().IsNotFound());

  Actor agent = Enroll("finance", "fin-srv-02");
  EXPECT_FALSE(service_->IsRevokedOrUnknown(agent.name));
  ASSERT_TRUE(service_->RevokeAgent(me_, agent.name).ok());
  EXPECT_TRUE(service_->IsRevokedOrUnknown(agent.name));
  EXPECT_TRUE(service_->IsRevokedOrUnknown("00ff"));  // never issued
  EXPECT_TRUE(service_->RevokeAgent(me_, "00ff").IsNotFound());
}

TEST_F(VaultServiceTest, BadNamesAreRefusedAndNeverStored) {
  for (const char* bad : {"", "a b", "dr \"west\"", "x\n2026 FORGED", "\x1b[2J", "../etc", "-x"}) {
    EXPECT_TRUE(service_->CreateDepartment(me_, bad).status().IsInvalidArgument()) << bad;
  }
  EXPECT_EQ(service_->ListDepartments()->size(), 1u);
  auto token = *service_->CreateEnrollmentToken(me_, "finance", 60);
  auto parsed = *proto::ParseEnrollmentToken(token);
  auto key = *crypto::GenerateKeyPair();
  auto csr = *crypto::CreateCsr(key.private_key_pem, "x");
  auto forged = service_->Enroll(Actor(), {parsed.catalog_token, csr, "x\n2026-01-01 FORGED"});
  EXPECT_TRUE(forged.status().IsInvalidArgument()) << forged.status().ToString();
  EXPECT_TRUE(service_->ListAgents()->empty());
}

TEST_F(VaultServiceTest, PromotionNeedsADrCopyAndDemotionAPromotedOne) {
  bool already = false;
  // A primary has nothing to promote.
  EXPECT_TRUE(service_->Promote(me_, "alice", "drill", &already).status().IsInvalidArgument());
  EXPECT_TRUE(service_->Demote(me_, "alice", "").IsInvalidArgument());
  // Become a DR copy, as a replication set-up does.
  proto::ReplicaSetupOk setup;
  setup.site = "primary";
  setup.ca_pem = vault_->pki().ca().certificate_pem;
  ASSERT_TRUE(service_->ApplyReplicaSetup(setup).ok());
  ASSERT_TRUE(service_->IsReplica());
  Actor agent = Enroll("finance", "fin-srv-01");
  bool resumed = false;
  auto refused = service_->BeginSession(agent, {proto::SessionKind::kFiles, {"/srv"}, 0}, &resumed);
  EXPECT_TRUE(refused.status().IsPermissionDenied()) << refused.status().ToString();
  // Who decides is required.
  EXPECT_TRUE(service_->Promote(me_, "", "", &already).status().IsInvalidArgument());
  auto line = service_->Promote(me_, "alice", "primary flooded", &already);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_FALSE(already);
  EXPECT_NE(line->find("promoted by alice"), std::string::npos);
  auto log = io::ReadFileToBytes(vault_->env(), vault_->promotions_log());
  ASSERT_TRUE(log.ok());
  EXPECT_NE(std::string(AsString(*log)).find("primary flooded"), std::string::npos);
  ASSERT_TRUE(service_->Promote(me_, "bob", "", &already).ok());
  EXPECT_TRUE(already);
  EXPECT_TRUE(
      service_->BeginSession(agent, {proto::SessionKind::kFiles, {"/srv"}, 0}, &resumed).ok());
  ASSERT_TRUE(service_->Demote(me_, "alice", "failback done").ok());
  EXPECT_FALSE(service_->IsPromoted());
  EXPECT_TRUE(service_->Demote(me_, "alice", "").IsInvalidArgument());
}

TEST_F(VaultServiceTest, JobsMoveQueuedSentDoneAndOnlyTheirAgentFinishesThem) {
  Actor agent = Enroll("finance", "fin-srv-01");
  Actor other = Enroll("finance", "fin-srv-02");
  EXPECT_TRUE(service_->StartJob(me_, "nobody", "", {}, false).status().IsNotFound());
  auto id = service_->StartJob(me_, "fin-srv-01", "", {"/srv"}, false);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(service_->FindJob(*id)->state, JobState::kQueued);
  ASSERT_EQ(service_->QueuedJobs()->size(), 1u);
  ASSERT_TRUE(service_->MarkJobSent(*id, agent.name).ok());
  EXPECT_TRUE(service_->MarkJobSent(*id, agent.name).IsInvalidArgument());  // not queued now
  EXPECT_TRUE(service_->QueuedJobs()->empty());
  // Sent back to the queue when the send failed.
  ASSERT_TRUE(service_->RequeueJob(*id).ok());
  ASSERT_TRUE(service_->MarkJobSent(*id, agent.name).ok());
  // Another agent cannot finish it.
  EXPECT_TRUE(
      service_->ReportJobDone(other, {*id, true, "0000000000000001", ""}).IsInvalidArgument());
  EXPECT_EQ(service_->FindJob(*id)->state, JobState::kSent);
  ASSERT_TRUE(service_->ReportJobDone(agent, {*id, false, "", "disk on fire"}).ok());
  auto done = service_->FindJob(*id);
  EXPECT_EQ(done->state, JobState::kFailed);
  EXPECT_EQ(done->error, "disk on fire");
  // A repeated report changes nothing.
  ASSERT_TRUE(service_->ReportJobDone(agent, {*id, true, "0000000000000009", ""}).ok());
  EXPECT_EQ(service_->FindJob(*id)->state, JobState::kFailed);
}

TEST_F(VaultServiceTest, AHostThatIsAlsoAReplicatorIsOneJobTarget) {
  Actor agent = Enroll("finance", "dr-host");
  auto token = *service_->CreateReplicatorToken(me_, 60);
  auto parsed = *proto::ParseEnrollmentToken(token);
  auto key = *crypto::GenerateKeyPair();
  auto csr = *crypto::CreateCsr(key.private_key_pem, "dr-host");
  ASSERT_TRUE(service_->Enroll(Actor(), {parsed.catalog_token, csr, "dr-host"}).ok());
  auto target = service_->ResolveJobTarget("dr-host", "");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(target->department_id, agent.department);
}

// A clock the test moves (the Env seam).
class SimClock : public io::EnvWrapper {
 public:
  SimClock() : EnvWrapper(io::Env::Posix()) {}
  uint64_t NowMicros() override { return now_; }
  void Advance(uint64_t seconds) { now_ += seconds * 1'000'000; }

 private:
  uint64_t now_ = 1'796'000'000'000'000ull;
};

class SessionBoundsTest : public VaultServiceTest {
 protected:
  void SetUp() override {
    VaultServiceTest::SetUp();
    service_.reset();
    vault_.reset();
    OpenOptions oo;
    oo.serve = true;
    oo.env = &clock_;
    vault_ = std::move(*Vault::Open(dir_.File("vault"), oo));
    ServiceOptions so;
    so.session_idle = std::chrono::seconds(600);
    so.max_sessions_per_agent = 3;
    so.manifest_memory_ids = 10;
    service_ = std::make_unique<VaultService>(vault_.get(), so);
    ASSERT_TRUE(service_->PrepareToServe().ok());
  }

  std::shared_ptr<BackupSession> Begin(const Actor& agent, uint64_t resume = 0,
                                       bool* resumed = nullptr) {
    bool r = false;
    auto s = service_->BeginSession(agent, {proto::SessionKind::kFiles, {"/srv"}, resume}, &r);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (resumed) *resumed = r;
    return s.ok() ? *s : nullptr;
  }

  size_t SpillFiles() {
    auto names = vault_->env()->GetChildren(vault_->data_dir() + "/sessions");
    return names.ok() ? names->size() : 0;
  }

  SimClock clock_;
};

TEST_F(SessionBoundsTest, AManifestPastTheMemoryBoundSpillsAndStillCommits) {
  Actor agent = Enroll("finance", "fin-srv-01");
  auto session = Begin(agent);
  std::vector<crypto::ChunkId> ids;
  for (int i = 0; i < 100; ++i) {
    crypto::ChunkId id;
    ASSERT_TRUE(service_->PutRecord(agent, Record(100 + i, &id)).ok());
    ids.push_back(id);
  }
  ASSERT_TRUE(service_->Flush(*session, 1).ok());
  for (size_t i = 0; i < ids.size(); i += 7) {
    std::vector<crypto::ChunkId> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + 7));
    ASSERT_TRUE(service_->AddManifestPart(*session, {session->id(), part}).ok());
  }
  EXPECT_LE(session->manifest.in_memory(), 10u);  // the rest is on disk
  EXPECT_EQ(session->manifest.size(), 100u);
  EXPECT_EQ(SpillFiles(), 1u);
  auto ok = service_->Commit(agent, *session, {session->id(), ids[42], 100, {}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(SpillFiles(), 0u);  // removed once committed
  auto manifest = vault_->catalog()->Manifest(agent.department, ok->snapshot_id);
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(*manifest, ids);  // every ID, in order
}

TEST_F(SessionBoundsTest, AbandonedSessionsExpireAndTakeTheirSpillWithThem) {
  Actor agent = Enroll("finance", "fin-srv-01");
  {
    auto held = Begin(agent);  // a connection still holds this one
    for (int k = 0; k < 2; ++k) {
      auto abandoned = Begin(agent);
      std::vector<crypto::ChunkId> ids(50);
      for (auto& id : ids) id[0] = static_cast<uint8_t>(k);
      ASSERT_TRUE(service_->AddManifestPart(*abandoned, {abandoned->id(), ids}).ok());
    }
    EXPECT_EQ(service_->open_sessions(), 3u);
    EXPECT_EQ(SpillFiles(), 2u);
    clock_.Advance(300);
    EXPECT_EQ(service_->ExpireSessions(), 0u);  // not idle long enough
    clock_.Advance(400);
    EXPECT_EQ(service_->ExpireSessions(), 2u);  // the held one stays
    EXPECT_EQ(service_->open_sessions(), 1u);
    EXPECT_EQ(SpillFiles(), 0u);
  }
  clock_.Advance(700);
  EXPECT_EQ(service_->ExpireSessions(), 1u);
  EXPECT_TRUE(vault_->catalog()->ListSessions()->empty());
}

TEST_F(SessionBoundsTest, AnAgentHoldsABoundedNumberOfSessions) {
  Actor agent = Enroll("finance", "fin-srv-01");
  std::vector<std::shared_ptr<BackupSession>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(Begin(agent));
    clock_.Advance(1);
  }
  // All three in use: a fourth is refused, with the reason.
  bool resumed = false;
  auto refused = service_->BeginSession(agent, {proto::SessionKind::kFiles, {"/x"}, 0}, &resumed);
  EXPECT_TRUE(refused.status().IsUnavailable()) << refused.status().ToString();
  // One let go: the least recently used idle one makes room.
  const uint64_t oldest = held[0]->id();
  held.erase(held.begin());
  auto fourth = Begin(agent);
  ASSERT_NE(fourth, nullptr);
  EXPECT_EQ(service_->open_sessions(), 3u);
  EXPECT_TRUE(vault_->catalog()->FindSession(oldest).status().IsNotFound());
}

TEST_F(SessionBoundsTest, ASessionResumesAfterAVaultRestart) {
  Actor agent = Enroll("finance", "fin-srv-01");
  uint64_t id = 0;
  {
    auto session = Begin(agent);
    id = session->id();
    crypto::ChunkId a;
    ASSERT_TRUE(service_->PutRecord(agent, Record(7, &a)).ok());
    ASSERT_TRUE(service_->Flush(*session, 1).ok());
  }
  // A new service over the same data directory: the process restarted.
  service_ = std::make_unique<VaultService>(vault_.get(), service_->options());
  bool resumed = false;
  auto session = Begin(agent, id, &resumed);
  ASSERT_NE(session, nullptr);
  EXPECT_TRUE(resumed);
  EXPECT_EQ(session->id(), id);
  EXPECT_EQ(session->record.records_stored, 1u);
  EXPECT_EQ(session->record.last_flush, 1u);
}

// The alert rules over a clock the test moves: each condition fires once,
// resolves when it clears, and both are audited.
class AlertsTest : public SessionBoundsTest {
 protected:
  std::vector<std::string> Evaluate() {
    auto changes = service_->EvaluateAlerts(thresholds_, {});
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    std::vector<std::string> out;
    if (!changes.ok()) return out;
    for (const auto& a : *changes) out.push_back((a.firing() ? "fire " : "resolve ") + a.key);
    return out;
  }
  size_t Audited(const std::string& action) {
    AuditFilter f;
    f.action = action;
    auto list = vault_->audit()->List(f);
    return list.ok() ? list->size() : 0;
  }
  AlertThresholds thresholds_ = [] {
    AlertThresholds t;
    t.agent_unseen_seconds = 3600;
    t.job_missed_seconds = 600;
    t.disk_free_percent = 0;  // the test machine's disk is not the test's business
    t.replication_lag_seconds = 60;
    return t;
  }();
};

TEST_F(AlertsTest, AnUnseenAgentFiresOnceAndResolvesWhenItConnects) {
  Actor agent = Enroll("finance", "fin-srv-01");
  EXPECT_TRUE(Evaluate().empty());
  clock_.Advance(3000);
  EXPECT_TRUE(Evaluate().empty());
  clock_.Advance(700);
  EXPECT_EQ(Evaluate(), std::vector<std::string>{"fire agent_unseen:" + agent.name});
  EXPECT_TRUE(Evaluate().empty());  // still firing: not again
  auto firing = service_->ListAlerts(me_, true, 0);
  ASSERT_EQ(firing->size(), 1u);
  EXPECT_EQ((*firing)[0].department, "finance");
  EXPECT_NE((*firing)[0].summary.find("fin-srv-01"), std::string::npos);
  service_->NoteAgentSeen(agent.name);
  EXPECT_EQ(Evaluate(), std::vector<std::string>{"resolve agent_unseen:" + agent.name});
  EXPECT_TRUE(service_->ListAlerts(me_, true, 0)->empty());
  auto history = service_->ListAlerts(me_, false, 10);
  ASSERT_EQ(history->size(), 1u);
  EXPECT_FALSE((*history)[0].firing());
  EXPECT_EQ(Audited("alert.fire"), 1u);
  EXPECT_EQ(Audited("alert.resolve"), 1u);
  // A revoked agent is not missed.
  clock_.Advance(7200);
  ASSERT_TRUE(service_->RevokeAgent(me_, agent.name).ok());
  EXPECT_TRUE(Evaluate().empty());
}

TEST_F(AlertsTest, JobsMissedAndFailedFireAndResolve) {
  Actor agent = Enroll("finance", "fin-srv-01");
  auto id = service_->StartJob(me_, "fin-srv-01", "", {"/srv"}, false);
  ASSERT_TRUE(id.ok());
  clock_.Advance(601);
  service_->NoteAgentSeen(agent.name);
  EXPECT_EQ(Evaluate(), std::vector<std::string>{"fire job_missed:" + std::to_string(*id)});
  ASSERT_TRUE(service_->MarkJobSent(*id, agent.name).ok());
  ASSERT_TRUE(service_->ReportJobDone(agent, {*id, false, "", "disk on fire"}).ok());
  const std::string target = "job_failed:" + std::to_string(agent.department) + "/" + agent.name;
  EXPECT_EQ(Evaluate(), (std::vector<std::string>{"resolve job_missed:" + std::to_string(*id),
                                                  "fire " + target}));
  auto firing = *service_->ListAlerts(me_, true, 0);
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_NE(firing[0].summary.find("disk on fire"), std::string::npos);
  // An operator of another department does not see it; finance's does.
  ASSERT_TRUE(service_->CreateDepartment(me_, "health").ok());
  Actor health;
  health.kind = Actor::Kind::kUser;
  health.role = "operator";
  health.departments = {"health"};
  EXPECT_TRUE(service_->ListAlerts(health, true, 0)->empty());
  health.departments = {"finance"};
  EXPECT_EQ(service_->ListAlerts(health, true, 0)->size(), 1u);
  // The next job of the target succeeds: resolved.
  auto next = service_->StartJob(me_, "fin-srv-01", "", {"/srv"}, false);
  ASSERT_TRUE(service_->MarkJobSent(*next, agent.name).ok());
  ASSERT_TRUE(service_->ReportJobDone(agent, {*next, true, "0000000000000001", ""}).ok());
  EXPECT_EQ(Evaluate(), std::vector<std::string>{"resolve " + target});
}

TEST_F(AlertsTest, ReplicationLagGrowsWhilePassesFailAndAuditBacklogFires) {
  EXPECT_FALSE(service_->ReplicationLagSeconds().has_value());  // not a DR copy
  ASSERT_TRUE(vault_->catalog()->PutSetting("replica_of", "primary").ok());
  ASSERT_TRUE(
      service_
          ->RecordReplicationPass(
              {{"lag_seconds", 5.0}, {"pending", 1}, {"time_micros", vault_->env()->NowMicros()}})
          .ok());
  EXPECT_DOUBLE_EQ(*service_->ReplicationLagSeconds(), 5.0);
  EXPECT_TRUE(Evaluate().empty());
  clock_.Advance(60);  // no good pass since: 65 s behind
  EXPECT_DOUBLE_EQ(*service_->ReplicationLagSeconds(), 65.0);
  EXPECT_EQ(Evaluate(), std::vector<std::string>{"fire replication_lag"});
  ASSERT_TRUE(
      service_
          ->RecordReplicationPass(
              {{"lag_seconds", 0}, {"pending", 0}, {"time_micros", vault_->env()->NowMicros()}})
          .ok());
  EXPECT_EQ(Evaluate(), std::vector<std::string>{"resolve replication_lag"});

  thresholds_.audit_backlog_entries = 10;
  auto changes = service_->EvaluateAlerts(thresholds_, {.audit_backlog = 12});
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].rule, "audit_backlog");
  // The backlog drained: resolved. Under a 100 % threshold the disk fires.
  thresholds_.disk_free_percent = 100;
  changes = service_->EvaluateAlerts(thresholds_, {.audit_backlog = 0});
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].rule, "audit_backlog");
  EXPECT_FALSE((*changes)[0].firing());
  EXPECT_EQ((*changes)[1].rule, "disk_free");  // below 100 % free: always
}

}  // namespace
}  // namespace cairn::vault
