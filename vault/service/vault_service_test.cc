// VaultService's rules, without a network: a real data directory, the
// service called as the protocol handlers and the command line call it.
#include "vault/service/vault_service.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <set>

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
  const Bytes record = Record(1, &a);
  ASSERT_TRUE(service_->PutRecord(fin, record).ok());
  ASSERT_TRUE(service_->Flush(*session, 1).ok());
  std::vector<crypto::ChunkId> ids = {a};
  EXPECT_TRUE((*service_->HaveChunks(fin, ids))[0]);
  EXPECT_FALSE((*service_->HaveChunks(health, ids))[0]);
  // The reply, read in place, is the Records message of the stored record;
  // an ID the department does not hold ends it.
  crypto::ChunkId missing;
  (void)Record(2, &missing);
  const std::vector<crypto::ChunkId> with_missing = {a, missing, a};
  auto read = service_->ReadRecords(fin.department, with_missing);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  auto decoded = proto::Records::Decode(read->payload());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->records, std::vector<Bytes>{record});
  EXPECT_TRUE(service_->ReadRecords(health.department, ids).status().IsNotFound());
  // Resuming another department's session starts a new one instead.
  auto other = *service_->BeginSession(health, {proto::SessionKind::kFiles, {"/x"}, session->id()},
                                       &resumed);
  EXPECT_FALSE(resumed);
  EXPECT_NE(other->id(), session->id());
}

// Replies of records are built in pooled buffers: the next reply takes the
// buffer the last one gave back, and carries its own records and nothing of
// what the last one (another department's) left there.
TEST_F(VaultServiceTest, RepliesReuseBuffersAndCarryOnlyTheirOwnBytes) {
  ASSERT_TRUE(service_->CreateDepartment(me_, "health").ok());
  Actor fin = Enroll("finance", "fin-srv-01");
  Actor health = Enroll("health", "hospital-db");
  bool resumed = false;
  crypto::ChunkId a, b, missing;
  const Bytes record_a = Record(1, &a), record_b = Record(2, &b);
  (void)Record(3, &missing);
  auto fin_session =
      *service_->BeginSession(fin, {proto::SessionKind::kFiles, {"/srv"}, 0}, &resumed);
  ASSERT_TRUE(service_->PutRecord(fin, record_a).ok());
  ASSERT_TRUE(service_->Flush(*fin_session, 1).ok());
  auto health_session =
      *service_->BeginSession(health, {proto::SessionKind::kFiles, {"/db"}, 0}, &resumed);
  ASSERT_TRUE(service_->PutRecord(health, record_b).ok());
  ASSERT_TRUE(service_->Flush(*health_session, 1).ok());

  const uint8_t* where = nullptr;
  {
    const std::vector<crypto::ChunkId> three = {b, b, b};
    auto read = service_->ReadRecords(health.department, three);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(proto::Records::Decode(read->payload())->records.size(), 3u);
    where = read->payload().data();
  }
  const std::vector<crypto::ChunkId> ids = {a, missing};
  auto read = service_->ReadRecords(fin.department, ids);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->payload().data(), where);
  const ByteView payload = read->payload();
  EXPECT_EQ(Bytes(payload.begin(), payload.end()), proto::Records{{record_a}}.Encode());
  // A sweep frees the kept buffers once a whole sweep went by without a reply.
  EXPECT_EQ(service_->ReleaseIdleBuffers(), 0u);
  read = Status::Cancelled("dropped");  // gives the buffer back
  EXPECT_EQ(service_->ReleaseIdleBuffers(), 1u);
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
  void Set(uint64_t micros) { now_ = micros; }

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

// A crash in the middle of an audit append leaves a torn last line: the
// next append cuts it, records the repair, and the trail verifies.
TEST_F(VaultServiceTest, ACutAuditAppendIsRepairedAndRecorded) {
  const std::string log = vault_->audit()->log_path();
  {
    std::ofstream out(log, std::ios::app | std::ios::binary);
    out << "{\"seq\":99,\"time\":\"2026-";  // no newline: cut mid-write
  }
  ASSERT_TRUE(service_->CreateDepartment(me_, "parks").ok());
  AuditFilter f;
  f.action = "audit.repair";
  auto repairs = vault_->audit()->List(f);
  ASSERT_TRUE(repairs.ok()) << repairs.status().ToString();
  ASSERT_EQ(repairs->size(), 1u);
  EXPECT_EQ((*repairs)[0].details.at("cut").as_string(), "{\"seq\":99,\"time\":\"2026-");
  f.action = "department.create";
  EXPECT_EQ(vault_->audit()->List(f)->size(), 2u);  // finance, then parks
  auto verified = service_->VerifyAudit(me_);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok) << verified->reason;
}

// --- Policies, the scheduler, retention and locks (doc/design.md section 20)

class ProtectionTest : public AlertsTest {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);
    tzset();
    AlertsTest::SetUp();
    sched_.spread_seconds = 0;
    sched_.missed_after_seconds = 600;
    sched_.deadline_seconds = 3 * 3600;
  }
  // A snapshot of `paths` committed by `agent` now, as a backup would.
  std::string Backup(const Actor& agent, const std::vector<std::string>& paths, uint64_t seed) {
    bool r = false;
    auto s = service_->BeginSession(agent, {proto::SessionKind::kFiles, paths, 0}, &r);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    crypto::ChunkId a;
    EXPECT_TRUE(service_->PutRecord(agent, Record(seed, &a)).ok());
    EXPECT_TRUE(service_->Flush(**s, 1).ok());
    EXPECT_TRUE(service_->AddManifestPart(**s, {(*s)->id(), {a}}).ok());
    auto ok = service_->Commit(agent, **s, {(*s)->id(), a, 1, {}});
    EXPECT_TRUE(ok.ok()) << ok.status().ToString();
    return ok.ok() ? ok->snapshot_id : "";
  }
  Policy Plain(const std::string& name) {
    Policy p;
    p.name = name;
    return p;
  }
  SchedulerOptions sched_;
};

TEST_F(ProtectionTest, TemplatesRefuseWeakerPoliciesAndRefusalsAreAudited) {
  auto t = FindTemplate("level3");
  ASSERT_TRUE(t.ok());
  Policy weak = PolicyFromTemplate(**t, "finance-db");
  weak.keep.daily = 7;
  auto refused = service_->CreatePolicy(me_, weak);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("keep-daily 7"), std::string::npos);
  EXPECT_EQ(Audited("policy.refused"), 1u);
  ASSERT_TRUE(service_->CreatePolicy(me_, PolicyFromTemplate(**t, "finance-db")).ok());
  EXPECT_TRUE(service_->CreatePolicy(me_, PolicyFromTemplate(**t, "finance-db"))
                  .status()
                  .IsInvalidArgument());  // exists
  auto edit = service_->EditPolicy(me_, "finance-db", [](Policy& p) {
    p.offsite = false;
    return Status::OK();
  });
  ASSERT_FALSE(edit.ok());
  EXPECT_NE(edit.status().message().find("off-site"), std::string::npos);
  EXPECT_EQ(Audited("policy.refused"), 2u);
  EXPECT_EQ(Audited("policy.create"), 1u);
}

TEST_F(ProtectionTest, LockedSnapshotsCannotBeForgottenByAnyoneUntilTheirDate) {
  Actor agent = Enroll("finance", "fin-db");
  Policy p = Plain("locked");
  p.lock_seconds = 30 * 86400;
  p.keep.last = 1;
  ASSERT_TRUE(service_->CreatePolicy(me_, p).ok());
  VaultService::SourceSpec spec{"finance", "fin-db", "locked", {"/srv/db/"}, {}, ""};
  auto source = service_->AddSource(me_, spec);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ(source->paths, std::vector<std::string>{"/srv/db"});
  const std::string first = Backup(agent, {"/srv/db"}, 1);
  clock_.Advance(3600);
  const std::string second = Backup(agent, {"/srv/db"}, 2);
  auto snap = service_->FindSnapshot(me_, "finance", first);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->locked_until_micros, snap->time_micros + 30ull * 86400 * 1'000'000);

  // Retention keeps the last one, and the locked older one anyway.
  auto plans = service_->ApplyRetentionRules(me_, "finance", /*dry_run=*/false);
  ASSERT_TRUE(plans.ok()) << plans.status().ToString();
  ASSERT_EQ(plans->size(), 1u);
  ASSERT_EQ((*plans)[0].decisions.size(), 2u);
  EXPECT_TRUE((*plans)[0].decisions[1].keep);
  EXPECT_EQ((*plans)[0].decisions[1].reasons.back().rfind("locked until", 0), 0u);
  // Nobody forgets it: not the local admin, not an admin by the API.
  Actor admin;
  admin.kind = Actor::Kind::kUser;
  admin.role = "admin";
  admin.name = "alice";
  for (const Actor& who : {me_, admin}) {
    auto r = service_->ForgetSnapshots(who, "finance", {first}, false);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE((*r)[0].forgotten);
    EXPECT_EQ((*r)[0].refusal.rfind("locked until", 0), 0u);
  }
  // Nor by shortening the lock.
  auto shorter = service_->EditPolicy(me_, "locked", [](Policy& q) {
    q.lock_seconds = 86400;
    return Status::OK();
  });
  ASSERT_FALSE(shorter.ok());
  EXPECT_TRUE(shorter.status().IsPermissionDenied());
  EXPECT_NE(shorter.status().message().find("locked until"), std::string::npos);
  // Nor does an operator of another department see it.
  Actor op;
  op.kind = Actor::Kind::kUser;
  op.role = "operator";
  op.name = "bob";
  op.departments = {"parks"};
  ASSERT_TRUE(service_->CreateDepartment(me_, "parks").ok());
  EXPECT_TRUE(service_->ForgetSnapshots(op, "finance", {first}, false).status().IsNotFound());

  // After the date (both are unlocked): forgetting and shortening work.
  clock_.Advance(31 * 86400);
  auto gone = service_->ForgetSnapshots(admin, "finance", {first}, false);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE((*gone)[0].forgotten);
  EXPECT_TRUE(service_
                  ->EditPolicy(me_, "locked",
                               [](Policy& q) {
                                 q.lock_seconds = 86400;
                                 return Status::OK();
                               })
                  .ok());
  EXPECT_EQ(service_->ListSnapshots("finance")->size(), 1u);
  EXPECT_EQ(service_->ListSnapshots("finance")->front().id, second);
  EXPECT_EQ(Audited("snapshot.forget"), 1u);
  EXPECT_EQ(Audited("snapshot.forget_refused"), 2u);
}

TEST_F(ProtectionTest, RetentionOverAYearOfSimulatedBackupsLeavesExactlyTheExpectedSet) {
  Enroll("finance", "fin-files");
  Policy p = Plain("gfs");
  p.keep = {2, 6, 7, 4, 12, 2};  // last, hourly, daily, weekly, monthly, yearly
  ASSERT_TRUE(service_->CreatePolicy(me_, p).ok());
  ASSERT_TRUE(
      service_->AddSource(me_, {"finance", "fin-files", "gfs", {"/srv/files"}, {}, ""}).ok());
  // Every 5 hours for a year and a day, retention applied once a day: a
  // period that does not divide a day, so hours and days shift.
  const uint64_t start = 1'767'225'600'000'000ull;  // 2026-01-01T00:00:00Z
  const uint64_t step = 5 * 3600 * 1'000'000ull;
  std::vector<uint64_t> times;
  uint64_t last_retention = start;
  for (uint64_t t = start; t < start + 366ull * 86400 * 1'000'000; t += step) {
    clock_.Set(t);
    SnapshotRecord s;
    s.department_id = finance_.id;
    s.host = "fin-files";
    s.paths = {"/srv/files"};
    s.time_micros = t;
    ASSERT_TRUE(vault_->catalog()->CommitSnapshot(s, std::vector<crypto::ChunkId>{}).ok());
    times.push_back(t);
    if (t >= last_retention + 86400ull * 1'000'000) {
      ASSERT_TRUE(service_->ApplyRetentionRules(me_, "", false).ok());
      last_retention = t;
    }
  }
  ASSERT_TRUE(service_->ApplyRetentionRules(me_, "", false).ok());

  // What should be left, computed from every time directly: the newest of
  // each of the N most recent periods, per rule.
  auto period = [](uint64_t micros, const char* fmt) {
    time_t secs = static_cast<time_t>(micros / 1'000'000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[32];
    strftime(buf, sizeof buf, fmt, &tm);
    return std::string(buf);
  };
  std::set<uint64_t> expected;
  for (size_t i = 0; i < 2; ++i) expected.insert(times[times.size() - 1 - i]);
  for (auto [fmt, count] : {std::pair{"%Y-%m-%d %H", 6}, std::pair{"%Y-%m-%d", 7},
                            std::pair{"%G-W%V", 4}, std::pair{"%Y-%m", 12}, std::pair{"%Y", 2}}) {
    std::set<std::string> seen;
    for (auto it = times.rbegin(); it != times.rend() && static_cast<int>(seen.size()) < count;
         ++it) {
      if (seen.insert(period(*it, fmt)).second) expected.insert(*it);
    }
  }
  std::set<uint64_t> left;
  auto remaining = service_->ListSnapshots("finance");
  ASSERT_TRUE(remaining.ok());
  for (const auto& s : *remaining) left.insert(s.time_micros);
  EXPECT_EQ(left, expected);
  // 2 last + 6 hourly (overlapping) + 7 daily + 4 weekly + 12 monthly + 2
  // yearly, less what they share.
  EXPECT_GE(left.size(), 20u);
  EXPECT_LE(left.size(), 33u);
  EXPECT_GT(Audited("snapshot.forget"), 1000u);
}

TEST_F(ProtectionTest, TheSchedulerQueuesEachSlotOnceCatchesUpOnceAndMarksMissedJobs) {
  Actor agent = Enroll("finance", "fin-app");
  Policy p = Plain("hourly");
  p.schedule = "every 1h";
  p.rpo_seconds = 2 * 3600;
  ASSERT_TRUE(service_->CreatePolicy(me_, p).ok());
  ASSERT_TRUE(
      service_->AddSource(me_, {"finance", "fin-app", "hourly", {"/srv/app"}, {}, ""}).ok());
  // Align to an hour, then nothing is due until the next one.
  clock_.Set((clock_.NowMicros() / 3'600'000'000ull + 1) * 3'600'000'000ull + 1'000'000);
  ASSERT_TRUE(
      service_->AddSource(me_, {"finance", "fin-app", "hourly", {"/srv/other"}, {}, ""}).ok());
  auto before = service_->ScheduleDue(sched_);
  ASSERT_TRUE(before.ok());
  const size_t first_round = before->size();  // the first source's slot has come
  EXPECT_EQ(first_round, 1u);
  EXPECT_TRUE(service_->ScheduleDue(sched_)->empty());  // a slot is queued once
  clock_.Advance(3600);
  EXPECT_EQ(service_->ScheduleDue(sched_)->size(), 2u);
  // The vault is down five hours: each source catches up once, not five times.
  clock_.Advance(5 * 3600);
  EXPECT_EQ(service_->ScheduleDue(sched_)->size(), 2u);
  // A restarted service (the same catalog) queues nothing again.
  VaultService restarted(vault_.get());
  EXPECT_TRUE(restarted.ScheduleDue(sched_)->empty());
  auto jobs = service_->ListJobs();
  ASSERT_EQ(jobs->size(), 5u);
  for (const auto& j : *jobs) {
    EXPECT_NE(j.source_id, 0u);
    EXPECT_EQ(j.state, JobState::kQueued);
  }

  // The agent never connected: past missed_after its jobs are missed, with
  // the reason, and the alerts fire (a missed job; a breached RPO).
  clock_.Advance(601);
  auto expired = service_->ExpireJobs(sched_);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 5u);
  auto after = service_->ListJobs();
  ASSERT_TRUE(after.ok());
  for (const auto& j : *after) {
    EXPECT_EQ(j.state, JobState::kMissed);
    EXPECT_NE(j.error.find("was not connected"), std::string::npos)
        << "job " << j.id << " error [" << j.error << "]";
  }
  EXPECT_EQ(Audited("job.missed"), 5u);
  auto fired = Evaluate();
  EXPECT_NE(std::find(fired.begin(), fired.end(),
                      "fire job_missed:" + std::to_string(finance_.id) + "/host:fin-app"),
            fired.end());
  EXPECT_EQ(
      std::count_if(fired.begin(), fired.end(),
                    [](const std::string& s) { return s.rfind("fire rpo_breached:", 0) == 0; }),
      2);
  auto report = service_->ProtectionStatus(me_, "finance", sched_);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->sources.size(), 2u);
  EXPECT_EQ(report->sources[0].rpo, "breached");
  EXPECT_EQ(report->sources[0].last_failure.rfind("missed: ", 0), 0u);
  EXPECT_NE(report->sources[0].next_run_micros, 0u);

  // The agent returns: the next slot's job is sent and done; its source's
  // RPO is met and the breach resolves.
  service_->NoteAgentSeen(agent.name);
  clock_.Advance(3600);
  auto next = service_->ScheduleDue(sched_);
  ASSERT_EQ(next->size(), 2u);
  ASSERT_TRUE(service_->MarkJobSent((*next)[0], agent.name).ok());
  const std::string snap = Backup(agent, {"/srv/app"}, 7);
  ASSERT_TRUE(service_->ReportJobDone(agent, {(*next)[0], true, snap, ""}).ok());
  report = service_->ProtectionStatus(me_, "finance", sched_);
  EXPECT_EQ(report->sources[0].rpo, "met");
  EXPECT_EQ(report->sources[0].last_good_snapshot, snap);
  // A sent job past its deadline fails.
  ASSERT_TRUE(service_->MarkJobSent((*next)[1], agent.name).ok());
  clock_.Advance(3 * 3600 + 1);
  service_->NoteAgentSeen(agent.name);
  EXPECT_GE(*service_->ExpireJobs(sched_), 1u);
  EXPECT_EQ(service_->FindJob((*next)[1])->state, JobState::kFailed);
  EXPECT_NE(service_->FindJob((*next)[1])->error.find("deadline"), std::string::npos);
}

}  // namespace
// Compliance under a clock the test moves (doc/design.md section 23.4): a
// source backed up hourly meets its RPO of 2 h until its backups stop, and
// breaches it 2 h after the last one, at the second; a past date shows the
// state as it was then; a drill slower than the RTO misses it, and a drill
// older than the policy's frequency is no longer fresh.
TEST_F(ProtectionTest, ComplianceFollowsTheClockRpoRtoAndDrillFreshness) {
  Actor agent = Enroll("finance", "fin-db");
  Actor drill_host = Enroll("finance", "dr-drill");
  Policy p = Plain("hourly");
  p.schedule = "every 1h";
  p.rpo_seconds = 2 * 3600;
  p.rto_seconds = 3600;
  p.drill_every_seconds = 86400;
  ASSERT_TRUE(service_->CreatePolicy(me_, p).ok());
  VaultService::SourceSpec spec{"finance", "fin-db", "hourly", {"/srv/db"}, {}, ""};
  ASSERT_TRUE(service_->AddSource(me_, spec).ok());
  auto row = [&](uint64_t to_micros) -> boost::json::object {
    auto c = service_->Compliance(me_, "finance", 0, to_micros, sched_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok() || c->at("sources").as_array().empty()) return {};
    return c->at("sources").as_array()[0].as_object();
  };
  const uint64_t start = clock_.NowMicros();
  std::string last;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    clock_.Advance(3600);
    last = Backup(agent, {"/srv/db"}, seed);  // at start + 1 h, 2 h, 3 h
  }
  const uint64_t last_backup = clock_.NowMicros();
  clock_.Advance(3600);
  boost::json::object r = row(UINT64_MAX);
  EXPECT_EQ(r["rpo_state"].as_string(), "met");
  EXPECT_EQ(r["rpo_achieved_seconds"].to_number<uint64_t>(), 3600u);
  EXPECT_EQ(r["newest_good_snapshot"].as_string(), last);
  // Backups stop. At 2 h after the last one the RPO still holds; a second
  // later it is breached.
  clock_.Set(last_backup + 2 * 3600 * 1'000'000ull);
  EXPECT_EQ(row(UINT64_MAX)["rpo_state"].as_string(), "met");
  clock_.Advance(1);
  r = row(UINT64_MAX);
  EXPECT_EQ(r["rpo_state"].as_string(), "breached");
  EXPECT_FALSE(r["compliant"].as_bool());
  // The same vault asked about a past date: as it stood then.
  r = row(start + 2 * 3600 * 1'000'000ull + 1);
  EXPECT_EQ(r["rpo_state"].as_string(), "met");
  EXPECT_EQ(r["rpo_achieved_seconds"].to_number<uint64_t>(), 0u);
  r = row(start + 1'000'000);  // before the first backup: no snapshot yet
  EXPECT_TRUE(r["newest_good_snapshot"].as_string().empty());
  // A drill that took 70 minutes against an RTO of an hour.
  auto measured = [&](uint64_t total_ms) {
    return boost::json::serialize(boost::json::object{{"snapshot", last},
                                                      {"files", 1},
                                                      {"bytes", 2000},
                                                      {"millis",
                                                       {{"first_byte", 10},
                                                        {"restored", 20},
                                                        {"verified", 30},
                                                        {"checked", total_ms},
                                                        {"total", total_ms}}}});
  };
  auto slow = service_->RecordDrill(drill_host, measured(70 * 60 * 1000));
  ASSERT_TRUE(slow.ok()) << slow.status().ToString();
  const boost::json::object& report = slow->at("report").as_object();
  EXPECT_FALSE(report.at("rto_met").as_bool());
  EXPECT_FALSE(report.at("ok").as_bool());
  EXPECT_NE(report.at("failure").as_string().find("RTO was missed"), std::string::npos);
  EXPECT_EQ(report.at("rto_source").as_string(), "policy hourly");
  r = row(UINT64_MAX);
  EXPECT_FALSE(r["last_drill"].as_object()["rto_met"].as_bool());
  EXPECT_EQ(r["last_drill"].as_object()["total_seconds"].to_number<uint64_t>(), 4200u);
  EXPECT_TRUE(r["drill_fresh"].as_bool());
  // A quick one passes; a day and a second later it is no longer fresh,
  // while the state at the time of the drill still shows it fresh.
  clock_.Advance(60);
  ASSERT_TRUE(service_->RecordDrill(drill_host, measured(5 * 60 * 1000)).ok());
  const uint64_t drilled = clock_.NowMicros();
  r = row(UINT64_MAX);
  EXPECT_TRUE(r["last_drill"].as_object()["rto_met"].as_bool());
  clock_.Advance(86400 + 1);
  EXPECT_FALSE(row(UINT64_MAX)["drill_fresh"].as_bool());
  EXPECT_TRUE(row(drilled + 1)["drill_fresh"].as_bool());
  // Before the slow drill, there was no drill to show.
  EXPECT_TRUE(row(last_backup)["last_drill"].is_null());
}

TEST_F(ProtectionTest, SourcesCarryTheirPointInTimeMethodAndHooksIntoTheirJobs) {
  Enroll("finance", "fin-db");
  Policy p = Plain("db");
  p.hook_failure_continue = true;
  ASSERT_TRUE(service_->CreatePolicy(me_, p).ok());
  // A method must fit the source: btrfs for files, reflink or lvm for an image.
  VaultService::SourceSpec bad{"finance", "fin-db", "db", {}, {}, "/dev/vdb", "btrfs"};
  EXPECT_TRUE(service_->AddSource(me_, bad).status().IsInvalidArgument());
  bad = {"finance", "fin-db", "db", {"/srv/db"}, {}, "", "reflink"};
  EXPECT_TRUE(service_->AddSource(me_, bad).status().IsInvalidArgument());
  bad = {"finance", "fin-db", "db", {"/srv/db"}, {}, "", "zfs"};
  EXPECT_TRUE(service_->AddSource(me_, bad).status().IsInvalidArgument());
  // The default is auto.
  auto plain = service_->AddSource(me_, {"finance", "fin-db", "db", {"/srv/plain"}, {}, ""});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->pit, "auto");

  VaultService::SourceSpec spec{
      "finance",   "fin-db", "db",    {"/srv/db"},
      {},          "",       "btrfs", "/usr/share/doc/cairn/hooks/postgresql-checkpoint",
      "echo done", 30};
  auto source = service_->AddSource(me_, spec);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto id = service_->StartSourceJob(me_, source->id);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto job = service_->FindJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->pit, "btrfs");
  EXPECT_EQ(job->pre_command, "/usr/share/doc/cairn/hooks/postgresql-checkpoint");
  EXPECT_EQ(job->post_command, "echo done");
  EXPECT_EQ(job->hook_timeout, 30u);
  EXPECT_TRUE(job->hook_continue);  // the policy's choice
  // The source survives a reopen of the catalog row (trailing fields).
  auto listed = service_->ListSources(me_);
  ASSERT_TRUE(listed.ok());
  bool found = false;
  for (const auto& s : *listed) {
    if (s.id == source->id) {
      found = true;
      EXPECT_EQ(s.pit, "btrfs");
      EXPECT_EQ(s.post_command, "echo done");
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace cairn::vault
