// The vault's side of doc/protocol.md, in one process: a real VaultServer on
// 127.0.0.1 with a real data directory, and clients speaking raw frames, so
// every rule is checked independently of cairn-agent.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <thread>
#include <tuple>

#include "lib/chunk/rsync_delta.h"
#include "lib/client/vault_link.h"
#include "lib/net/client.h"
#include "lib/net/run_sync.h"
#include "lib/net/tls.h"
#include "lib/proto/messages.h"
#include "lib/proto/token.h"
#include "lib/repo/record.h"
#include "lib/repo/test_util.h"
#include "vault/rpc/server.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {
namespace {

namespace asio = boost::asio;
using proto::MessageType;
using repo::testing::ScratchDir;
using Conn = std::shared_ptr<net::Connection>;

struct Identity {
  std::string cert_pem, key_pem, department;
  crypto::DepartmentKeys keys;
  std::string serial;
};

class VaultProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions init;
    init.data_dir = dir_.File("vault");
    ASSERT_TRUE(InitVault(init).ok());
    OpenOptions oo;
    oo.serve = true;
    vault_ = std::move(*Vault::Open(init.data_dir, oo));
    service_ = std::make_unique<VaultService>(vault_.get());
    ASSERT_TRUE(service_->CreateDepartment(Actor::Local(), "finance").ok());
    ASSERT_TRUE(service_->CreateDepartment(Actor::Local(), "health").ok());
    ServeOptions so;
    so.listen = "127.0.0.1:0";
    so.revocation_sweep = std::chrono::milliseconds(100);
    server_ = std::make_unique<VaultServer>(service_.get(), so);
    auto port = server_->Start(server_io_);
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    address_ = "127.0.0.1:" + std::to_string(*port);
    work_.emplace(server_io_.get_executor());
    thread_ = std::thread([this] { server_io_.run(); });
  }

  void TearDown() override {
    asio::co_spawn(server_io_, server_->Stop(std::chrono::milliseconds(200)), asio::detached);
    work_.reset();
    thread_.join();
    // The server's strands belong to server_io_, which (declared later) is
    // destroyed first: release the server while its io_context still exists.
    server_.reset();
  }

  Result<Conn> Dial(const std::string& cert = "", const std::string& key = "") {
    net::TlsOptions tls;
    tls.ca_pem = vault_->pki().ca().certificate_pem;
    tls.certificate_pem = cert;
    tls.private_key_pem = key;
    CAIRN_ASSIGN_OR_RETURN(net::TlsContext ctx, net::MakeClientContext(tls));
    return net::RunSync(client_io_, net::Connect(client_io_.get_executor(), address_, ctx,
                                                 std::chrono::seconds(5)));
  }

  template <typename T>
  Status Send(Conn& c, MessageType type, const T& m) {
    Bytes payload = m.Encode();
    return net::RunSync(client_io_, c->WriteFrame(type, payload));
  }
  Status SendRaw(Conn& c, MessageType type, ByteView payload) {
    return net::RunSync(client_io_, c->WriteFrame(type, payload));
  }
  Result<net::Frame> Read(Conn& c) {
    return net::RunSync(client_io_, c->ReadFrame(std::chrono::seconds(5)));
  }
  // Reads one frame and decodes it as T; an Error frame becomes its Status.
  template <typename T>
  Result<T> Expect(Conn& c, MessageType type) {
    CAIRN_ASSIGN_OR_RETURN(net::Frame f, Read(c));
    if (f.type == MessageType::kError) {
      CAIRN_ASSIGN_OR_RETURN(proto::Error e, proto::Error::Decode(f.payload));
      return e.ToStatus();
    }
    if (f.type != type)
      return Status::InvalidArgument("unexpected " + std::string(proto::MessageTypeName(f.type)));
    return T::Decode(f.payload);
  }

  Result<Identity> Enroll(const std::string& department, const std::string& host) {
    CAIRN_ASSIGN_OR_RETURN(std::string full,
                           service_->CreateEnrollmentToken(Actor::Local(), department, 60));
    CAIRN_ASSIGN_OR_RETURN(proto::EnrollmentToken parsed, proto::ParseEnrollmentToken(full));
    std::string token = parsed.catalog_token;
    CAIRN_ASSIGN_OR_RETURN(Conn c, Dial());
    CAIRN_RETURN_IF_ERROR(
        Send(c, MessageType::kHello, proto::Hello{1, 1, proto::Role::kEnroll, "test", host}));
    CAIRN_RETURN_IF_ERROR(Expect<proto::HelloOk>(c, MessageType::kHelloOk).status());
    CAIRN_ASSIGN_OR_RETURN(crypto::KeyPairPem kp, crypto::GenerateKeyPair());
    CAIRN_ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(kp.private_key_pem, host));
    CAIRN_RETURN_IF_ERROR(
        Send(c, MessageType::kEnrollRequest, proto::EnrollRequest{token, csr, host}));
    CAIRN_ASSIGN_OR_RETURN(auto resp,
                           Expect<proto::EnrollResponse>(c, MessageType::kEnrollResponse));
    Identity id;
    id.cert_pem = resp.certificate_pem;
    id.key_pem = kp.private_key_pem;
    id.department = resp.department;
    CAIRN_ASSIGN_OR_RETURN(id.keys, crypto::ParseDepartmentKeys(resp.department_keys));
    CAIRN_ASSIGN_OR_RETURN(auto pid, crypto::ParseIdentity(resp.certificate_pem));
    id.serial = pid.serial_hex;
    return id;
  }

  Result<Conn> Agent(const Identity& id) {
    CAIRN_ASSIGN_OR_RETURN(Conn c, Dial(id.cert_pem, id.key_pem));
    CAIRN_RETURN_IF_ERROR(
        Send(c, MessageType::kHello, proto::Hello{1, 1, proto::Role::kAgent, "test", "h"}));
    CAIRN_ASSIGN_OR_RETURN(auto ok, Expect<proto::HelloOk>(c, MessageType::kHelloOk));
    if (ok.department != id.department) return Status::InvalidArgument("wrong department");
    return c;
  }

  // Puts `records` (whose IDs are `ids`) through a new agent connection of
  // `who` and commits them as one snapshot rooted at ids[0].
  Result<proto::CommitOk> StoreSnapshot(const Identity& who,
                                        const std::vector<crypto::ChunkId>& ids,
                                        const std::vector<Bytes>& records) {
    CAIRN_ASSIGN_OR_RETURN(Conn a, Agent(who));
    CAIRN_RETURN_IF_ERROR(Send(a, MessageType::kSessionBegin,
                               proto::SessionBegin{proto::SessionKind::kFiles, {"/a"}, 0}));
    CAIRN_ASSIGN_OR_RETURN(auto session,
                           Expect<proto::SessionBegun>(a, MessageType::kSessionBegun));
    for (const Bytes& rec : records)
      CAIRN_RETURN_IF_ERROR(SendRaw(a, MessageType::kPutRecord, rec));
    CAIRN_RETURN_IF_ERROR(Send(a, MessageType::kFlush, proto::Flush{1}));
    CAIRN_RETURN_IF_ERROR(Expect<proto::Flushed>(a, MessageType::kFlushed).status());
    CAIRN_RETURN_IF_ERROR(
        Send(a, MessageType::kManifestPart, proto::ManifestPart{session.session_id, ids}));
    CAIRN_RETURN_IF_ERROR(
        Send(a, MessageType::kCommit, proto::Commit{session.session_id, ids[0], ids.size(), {}}));
    return Expect<proto::CommitOk>(a, MessageType::kCommitOk);
  }
  Bytes MakeRecord(const Identity& id, uint64_t seed, crypto::ChunkId* chunk,
                   repo::RecordType type = repo::RecordType::kData) {
    auto enc = *repo::RecordEncoder::Create(id.keys, {});
    Bytes plain = repo::testing::RandomBytes(4000, seed), out;
    *chunk = enc->Id(plain);
    EXPECT_TRUE(enc->Encode(type, *chunk, plain, &out).ok());
    return out;
  }

  ScratchDir dir_;
  std::unique_ptr<Vault> vault_;
  std::unique_ptr<VaultService> service_;
  std::unique_ptr<VaultServer> server_;
  asio::io_context server_io_, client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::string address_;
};

TEST_F(VaultProtocolTest, EnrolmentIssuesACertificateAndSpendsTheToken) {
  auto id = Enroll("finance", "fin-srv-01");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->department, "finance");
  auto agent = vault_->catalog()->FindAgent(id->serial);
  ASSERT_TRUE(agent.ok());
  EXPECT_EQ(agent->host, "fin-srv-01");
  // The keys the agent got are the department's.
  EXPECT_TRUE(id->keys.id_key == vault_->DepartmentKeys(1)->id_key);

  // A token works once.
  std::string full = *service_->CreateEnrollmentToken(Actor::Local(), "finance", 60);
  std::string token = proto::ParseEnrollmentToken(full)->catalog_token;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Conn c = *Dial();
    ASSERT_TRUE(
        Send(c, MessageType::kHello, proto::Hello{1, 1, proto::Role::kEnroll, "t", "h"}).ok());
    ASSERT_TRUE(Expect<proto::HelloOk>(c, MessageType::kHelloOk).ok());
    auto kp = *crypto::GenerateKeyPair();
    std::string csr = *crypto::CreateCsr(kp.private_key_pem, "h");
    ASSERT_TRUE(Send(c, MessageType::kEnrollRequest, proto::EnrollRequest{token, csr, "h"}).ok());
    auto resp = Expect<proto::EnrollResponse>(c, MessageType::kEnrollResponse);
    if (attempt == 0) {
      EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    } else {
      EXPECT_EQ(resp.status().code(), StatusCode::kPermissionDenied);
      EXPECT_NE(resp.status().message().find("already used"), std::string::npos);
    }
  }
}

TEST_F(VaultProtocolTest, BackupSequenceCommitsOnlyWhenEveryChunkIsDurable) {
  auto id = *Enroll("finance", "fin-srv-01");
  Conn c = *Agent(id);
  ASSERT_TRUE(Send(c, MessageType::kSessionBegin,
                   proto::SessionBegin{proto::SessionKind::kFiles, {"/srv"}, 0})
                  .ok());
  auto begun = Expect<proto::SessionBegun>(c, MessageType::kSessionBegun);
  ASSERT_TRUE(begun.ok()) << begun.status().ToString();

  std::vector<crypto::ChunkId> ids(5);
  std::vector<Bytes> records;
  for (int i = 0; i < 5; ++i) records.push_back(MakeRecord(id, i, &ids[i]));
  crypto::ChunkId root;
  Bytes root_rec = MakeRecord(id, 99, &root, repo::RecordType::kTree);
  ASSERT_TRUE(Send(c, MessageType::kHaveChunks, proto::HaveChunks{1, ids}).ok());
  auto have = Expect<proto::HaveChunksReply>(c, MessageType::kHaveChunksReply);
  ASSERT_TRUE(have.ok());
  EXPECT_EQ(have->present, std::vector<bool>(5, false));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(SendRaw(c, MessageType::kPutRecord, records[i]).ok());
  ASSERT_TRUE(SendRaw(c, MessageType::kPutRecord, root_rec).ok());
  ASSERT_TRUE(Send(c, MessageType::kFlush, proto::Flush{1}).ok());
  auto flushed = Expect<proto::Flushed>(c, MessageType::kFlushed);
  ASSERT_TRUE(flushed.ok()) << flushed.status().ToString();
  EXPECT_EQ(flushed->records_stored, 5u);

  // Chunk 4 was never sent: the commit is refused, the session stays open.
  std::vector<crypto::ChunkId> manifest = ids;
  manifest.push_back(root);
  ASSERT_TRUE(
      Send(c, MessageType::kManifestPart, proto::ManifestPart{begun->session_id, manifest}).ok());
  proto::Commit commit{begun->session_id, root, manifest.size(), {}};
  ASSERT_TRUE(Send(c, MessageType::kCommit, commit).ok());
  auto refused = Expect<proto::CommitOk>(c, MessageType::kCommitOk);
  EXPECT_TRUE(refused.status().IsNotFound()) << refused.status().ToString();
  EXPECT_TRUE(vault_->catalog()->ListSnapshots(1, 0)->empty());

  ASSERT_TRUE(SendRaw(c, MessageType::kPutRecord, records[4]).ok());
  ASSERT_TRUE(Send(c, MessageType::kFlush, proto::Flush{2}).ok());
  ASSERT_TRUE(Expect<proto::Flushed>(c, MessageType::kFlushed).ok());
  ASSERT_TRUE(
      Send(c, MessageType::kManifestPart, proto::ManifestPart{begun->session_id, manifest}).ok());
  ASSERT_TRUE(Send(c, MessageType::kCommit, commit).ok());
  auto ok = Expect<proto::CommitOk>(c, MessageType::kCommitOk);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  // Committing again answers the same snapshot (idempotent).
  ASSERT_TRUE(Send(c, MessageType::kCommit, commit).ok());
  EXPECT_EQ(Expect<proto::CommitOk>(c, MessageType::kCommitOk)->snapshot_id, ok->snapshot_id);

  ASSERT_TRUE(Send(c, MessageType::kListSnapshots, proto::ListSnapshots{0}).ok());
  auto list = Expect<proto::SnapshotList>(c, MessageType::kSnapshotList);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->snapshots.size(), 1u);
  EXPECT_EQ(list->snapshots[0].id, ok->snapshot_id);
  EXPECT_EQ(list->snapshots[0].hostname, "fin-srv-01");
  // Records come back byte for byte.
  ASSERT_TRUE(Send(c, MessageType::kGetRecords, proto::GetRecords{{ids[2], root}}).ok());
  auto recs = Expect<proto::Records>(c, MessageType::kRecords);
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->records.size(), 2u);
  EXPECT_EQ(recs->records[0], records[2]);
}

TEST_F(VaultProtocolTest, ADepartmentSeesNothingOfAnother) {
  auto fin = *Enroll("finance", "fin-srv-01");
  auto health = *Enroll("health", "hl-srv-01");
  Conn a = *Agent(fin);
  ASSERT_TRUE(Send(a, MessageType::kSessionBegin,
                   proto::SessionBegin{proto::SessionKind::kFiles, {"/a"}, 0})
                  .ok());
  auto sa = *Expect<proto::SessionBegun>(a, MessageType::kSessionBegun);
  crypto::ChunkId secret;
  Bytes rec = MakeRecord(fin, 7, &secret, repo::RecordType::kTree);
  ASSERT_TRUE(SendRaw(a, MessageType::kPutRecord, rec).ok());
  ASSERT_TRUE(Send(a, MessageType::kFlush, proto::Flush{1}).ok());
  ASSERT_TRUE(Expect<proto::Flushed>(a, MessageType::kFlushed).ok());
  ASSERT_TRUE(
      Send(a, MessageType::kManifestPart, proto::ManifestPart{sa.session_id, {secret}}).ok());
  ASSERT_TRUE(Send(a, MessageType::kCommit, proto::Commit{sa.session_id, secret, 1, {}}).ok());
  ASSERT_TRUE(Expect<proto::CommitOk>(a, MessageType::kCommitOk).ok());

  Conn b = *Agent(health);
  // Asking about finance's chunk: not present.
  ASSERT_TRUE(Send(b, MessageType::kHaveChunks, proto::HaveChunks{1, {secret}}).ok());
  EXPECT_EQ(Expect<proto::HaveChunksReply>(b, MessageType::kHaveChunksReply)->present,
            std::vector<bool>{false});
  // Reading it: not found.
  ASSERT_TRUE(Send(b, MessageType::kGetRecords, proto::GetRecords{{secret}}).ok());
  EXPECT_TRUE(Expect<proto::Records>(b, MessageType::kRecords).status().IsNotFound());
  // Listing: nothing.
  ASSERT_TRUE(Send(b, MessageType::kListSnapshots, proto::ListSnapshots{0}).ok());
  EXPECT_TRUE(Expect<proto::SnapshotList>(b, MessageType::kSnapshotList)->snapshots.empty());
  // Taking over finance's session: a new session of its own instead.
  ASSERT_TRUE(Send(b, MessageType::kSessionBegin,
                   proto::SessionBegin{proto::SessionKind::kFiles, {"/b"}, sa.session_id})
                  .ok());
  auto sb = *Expect<proto::SessionBegun>(b, MessageType::kSessionBegun);
  EXPECT_FALSE(sb.resumed);
  EXPECT_NE(sb.session_id, sa.session_id);
  // Committing finance's chunk into health's snapshot: refused, the chunk is not health's.
  ASSERT_TRUE(
      Send(b, MessageType::kManifestPart, proto::ManifestPart{sb.session_id, {secret}}).ok());
  ASSERT_TRUE(Send(b, MessageType::kCommit, proto::Commit{sb.session_id, secret, 1, {}}).ok());
  EXPECT_TRUE(Expect<proto::CommitOk>(b, MessageType::kCommitOk).status().IsNotFound());
  // Writing a record: it lands in health's own space, finance's stays untouched.
  ASSERT_TRUE(SendRaw(b, MessageType::kPutRecord, rec).ok());
  ASSERT_TRUE(Send(b, MessageType::kFlush, proto::Flush{1}).ok());
  ASSERT_TRUE(Expect<proto::Flushed>(b, MessageType::kFlushed).ok());
  EXPECT_EQ(*vault_->store()->index()->CountForDepartment(1), 1u);
}

// Agents are append-only (doc/design.md section 20): whatever an agent
// sends, of every message type, well-formed or not, no snapshot goes and no
// lock moves; retention and forgetting are not reachable from the protocol.
TEST_F(VaultProtocolTest, NoMessageOfAnAgentForgetsOrUnlocksAnything) {
  const Actor me = Actor::Local();
  Policy policy;
  policy.name = "locked";
  policy.keep.last = 1;
  policy.lock_seconds = 3600;
  ASSERT_TRUE(service_->CreatePolicy(me, policy).ok());
  auto fin = *Enroll("finance", "fin-srv-01");
  ASSERT_TRUE(service_->AddSource(me, {"finance", "fin-srv-01", "locked", {"/a"}, {}, ""}).ok());
  Conn a = *Agent(fin);
  for (uint64_t seed : {1, 2}) {
    ASSERT_TRUE(Send(a, MessageType::kSessionBegin,
                     proto::SessionBegin{proto::SessionKind::kFiles, {"/a"}, 0})
                    .ok());
    auto begun = *Expect<proto::SessionBegun>(a, MessageType::kSessionBegun);
    crypto::ChunkId id;
    ASSERT_TRUE(SendRaw(a, MessageType::kPutRecord, MakeRecord(fin, seed, &id)).ok());
    ASSERT_TRUE(Send(a, MessageType::kFlush, proto::Flush{seed}).ok());
    ASSERT_TRUE(Expect<proto::Flushed>(a, MessageType::kFlushed).ok());
    ASSERT_TRUE(
        Send(a, MessageType::kManifestPart, proto::ManifestPart{begun.session_id, {id}}).ok());
    ASSERT_TRUE(Send(a, MessageType::kCommit, proto::Commit{begun.session_id, id, 1, {}}).ok());
    ASSERT_TRUE(Expect<proto::CommitOk>(a, MessageType::kCommitOk).ok());
  }
  auto before = *service_->ListSnapshots("finance");
  ASSERT_EQ(before.size(), 2u);
  for (const auto& snap : before) ASSERT_GT(snap.locked_until_micros, snap.time_micros);

  const uint8_t last = static_cast<uint8_t>(MessageType::kJobProgress);
  int sent = 0;
  for (uint8_t t = 1; t <= last; ++t) {
    for (size_t size : {size_t{0}, size_t{64}, size_t{4096}}) {
      auto c = Agent(fin);
      ASSERT_TRUE(c.ok());
      Bytes payload = repo::testing::RandomBytes(size, t * 31 + size);
      if (!SendRaw(*c, static_cast<MessageType>(t), payload).ok()) continue;
      ++sent;
      // A ping after it: its pong (or the connection's end) says the vault
      // has dealt with the message.
      (void)Send(*c, MessageType::kPing, proto::Ping{7});
      for (int i = 0; i < 8; ++i) {
        auto f = Read(*c);
        if (!f.ok() || f->type == MessageType::kPong) break;
      }
    }
  }
  EXPECT_GE(sent, 3 * static_cast<int>(last) - 3);
  auto after = *service_->ListSnapshots("finance");
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].locked_until_micros, before[i].locked_until_micros);
  }
}

TEST_F(VaultProtocolTest, RevocationCutsALiveConnectionAndRefusesNewOnes) {
  auto id = *Enroll("finance", "fin-srv-01");
  Conn c = *Agent(id);
  ASSERT_TRUE(vault_->catalog()->RevokeAgent(id.serial, 1).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto r = Read(c);
  EXPECT_FALSE(r.ok());  // cut by the sweeper
  auto again = Agent(id);
  EXPECT_FALSE(again.ok());
}

TEST_F(VaultProtocolTest, ACertificateFromAnotherCaIsRefused) {
  auto other = *crypto::CreateCa("impostor", 10);
  auto kp = *crypto::GenerateKeyPair();
  std::string csr = *crypto::CreateCsr(kp.private_key_pem, "evil");
  crypto::PeerIdentity who{"agent", "finance", "evil", "", 0};
  std::string cert = *crypto::IssueCertificate(other, csr, who, 10);
  auto c = Agent(Identity{cert, kp.private_key_pem, "finance", {}, ""});
  EXPECT_FALSE(c.ok());
}

TEST_F(VaultProtocolTest, MalformedFramesCloseOnlyThatConnection) {
  auto id = *Enroll("finance", "fin-srv-01");
  Conn bad = *Agent(id);
  Conn good = *Agent(id);
  // A record that fails its checksum is a protocol violation.
  crypto::ChunkId x;
  Bytes rec = MakeRecord(id, 1, &x);
  rec[100] ^= 1;
  ASSERT_TRUE(Send(bad, MessageType::kSessionBegin,
                   proto::SessionBegin{proto::SessionKind::kFiles, {"/"}, 0})
                  .ok());
  ASSERT_TRUE(Expect<proto::SessionBegun>(bad, MessageType::kSessionBegun).ok());
  ASSERT_TRUE(SendRaw(bad, MessageType::kPutRecord, rec).ok());
  EXPECT_FALSE(Read(bad).ok());  // closed
  // A message the agent may not send.
  Conn bad2 = *Agent(id);
  ASSERT_TRUE(Send(bad2, MessageType::kEnrollResponse, proto::EnrollResponse{}).ok());
  EXPECT_FALSE(Read(bad2).ok());
  // The other agent carries on.
  ASSERT_TRUE(Send(good, MessageType::kPing, proto::Ping{42}).ok());
  auto pong = Expect<proto::Pong>(good, MessageType::kPong);
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->nonce, 42u);
}

TEST_F(VaultProtocolTest, WrongProtocolVersionIsRefusedWithAReason) {
  Conn c = *Dial();
  ASSERT_TRUE(
      Send(c, MessageType::kHello, proto::Hello{7, 9, proto::Role::kEnroll, "future", "h"}).ok());
  auto r = Expect<proto::HelloOk>(c, MessageType::kHelloOk);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("protocol version"), std::string::npos);
}

// The vault answers with the highest version both ends speak: a client of
// version 1 (no get_replica_order) still gets version 1.
TEST_F(VaultProtocolTest, VersionIsTheHighestBothSpeak) {
  for (auto [lo, hi, want] : {std::tuple<uint16_t, uint16_t, uint16_t>{1, 1, 1},
                              {1, 2, 2},
                              {2, 2, 2},
                              {1, 9, proto::kProtocolVersion}}) {
    Conn c = *Dial();
    ASSERT_TRUE(
        Send(c, MessageType::kHello, proto::Hello{lo, hi, proto::Role::kEnroll, "t", "h"}).ok());
    auto ok = Expect<proto::HelloOk>(c, MessageType::kHelloOk);
    ASSERT_TRUE(ok.ok()) << lo << ".." << hi << ": " << ok.status().ToString();
    EXPECT_EQ(ok->version, want) << lo << ".." << hi;
  }
}

TEST_F(VaultProtocolTest, NoCertificateMeansEnrolOnly) {
  Conn c = *Dial();
  ASSERT_TRUE(Send(c, MessageType::kHello, proto::Hello{1, 1, proto::Role::kAgent, "t", "h"}).ok());
  EXPECT_EQ(Expect<proto::HelloOk>(c, MessageType::kHelloOk).status().code(),
            StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace cairn::vault

namespace cairn::vault {
namespace {

// Polls job `id` until it leaves `state` or 5 s pass.
Result<JobRecord> JobAfter(Catalog* catalog, uint64_t id, JobState state) {
  for (int i = 0; i < 100; ++i) {
    CAIRN_ASSIGN_OR_RETURN(JobRecord j, catalog->FindJob(id));
    if (j.state != state) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return catalog->FindJob(id);
}

TEST_F(VaultProtocolTest, AJobReachesAnAgentInRunModeAndJobDoneFinishesIt) {
  auto id = Enroll("finance", "fin-01");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto absent = Enroll("finance", "fin-02");
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  Catalog* catalog = vault_->catalog();
  const uint64_t now = io::Env::Posix()->NowMicros();

  // A job for an agent that is not connected stays queued, visibly.
  JobRecord for_absent;
  for_absent.agent_serial = absent->serial;
  auto absent_job = catalog->EnqueueJob(for_absent, now);
  ASSERT_TRUE(absent_job.ok()) << absent_job.status().ToString();

  // The agent in run mode: Hello, then Ping (which makes it a job link).
  auto c = Agent(*id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(Send(*c, MessageType::kPing, proto::Ping{7}).ok());
  auto pong = Expect<proto::Pong>(*c, MessageType::kPong);
  ASSERT_TRUE(pong.ok()) << pong.status().ToString();
  EXPECT_EQ(pong->nonce, 7u);

  // A job by host name within the department.
  JobRecord by_host;
  by_host.department_id = catalog->FindDepartment("finance")->id;
  by_host.host = "fin-01";
  by_host.paths = {"/srv/data"};
  auto job_id = catalog->EnqueueJob(by_host, now);
  ASSERT_TRUE(job_id.ok()) << job_id.status().ToString();
  auto job = Expect<proto::Job>(*c, MessageType::kJob);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->job_id, *job_id);
  EXPECT_EQ(job->kind, proto::JobKind::kBackupNow);
  EXPECT_EQ(job->paths, std::vector<std::string>{"/srv/data"});
  EXPECT_FALSE(job->image);
  auto sent = catalog->FindJob(*job_id);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->state, JobState::kSent);
  EXPECT_EQ(sent->sent_to, id->serial);

  ASSERT_TRUE(
      Send(*c, MessageType::kJobDone, proto::JobDone{*job_id, true, "00000000000000aa", ""}).ok());
  auto done = JobAfter(catalog, *job_id, JobState::kSent);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->state, JobState::kDone);
  EXPECT_EQ(done->snapshot_id, "00000000000000aa");
  EXPECT_GT(done->finished_micros, 0u);

  // A second job, by serial, that fails; the link stays up for the next.
  JobRecord by_serial;
  by_serial.agent_serial = id->serial;
  auto second = catalog->EnqueueJob(by_serial, now);
  ASSERT_TRUE(second.ok());
  job = Expect<proto::Job>(*c, MessageType::kJob);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->job_id, *second);
  EXPECT_TRUE(job->paths.empty());
  ASSERT_TRUE(
      Send(*c, MessageType::kJobDone, proto::JobDone{*second, false, "", "disk on fire"}).ok());
  auto failed = JobAfter(catalog, *second, JobState::kSent);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state, JobState::kFailed);
  EXPECT_EQ(failed->error, "disk on fire");
  ASSERT_TRUE(Send(*c, MessageType::kPing, proto::Ping{8}).ok());
  EXPECT_TRUE(Expect<proto::Pong>(*c, MessageType::kPong).ok());

  // The absent agent's job was never sent.
  auto still = catalog->FindJob(*absent_job);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->state, JobState::kQueued);
  EXPECT_EQ(still->sent_micros, 0u);
  EXPECT_EQ(catalog->ListQueuedJobs()->size(), 1u);
}

TEST_F(VaultProtocolTest, ABackupConnectionGetsNoJobAndForeignJobDoneIsAViolation) {
  auto id = Enroll("finance", "fin-01");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  Catalog* catalog = vault_->catalog();
  // A backup connection: session_begin right after hello_ok.
  auto backup = Agent(*id);
  ASSERT_TRUE(backup.ok());
  ASSERT_TRUE(Send(*backup, MessageType::kSessionBegin,
                   proto::SessionBegin{proto::SessionKind::kFiles, {"/x"}, 0})
                  .ok());
  ASSERT_TRUE(Expect<proto::SessionBegun>(*backup, MessageType::kSessionBegun).ok());
  JobRecord spec;
  spec.agent_serial = id->serial;
  auto job_id = catalog->EnqueueJob(spec, io::Env::Posix()->NowMicros());
  ASSERT_TRUE(job_id.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(catalog->FindJob(*job_id)->state, JobState::kQueued);
  // A job_done for a job this agent was never sent closes the connection.
  ASSERT_TRUE(Send(*backup, MessageType::kJobDone, proto::JobDone{*job_id, true, "x", ""}).ok());
  EXPECT_FALSE(Read(*backup).ok());
  EXPECT_EQ(catalog->FindJob(*job_id)->state, JobState::kQueued);
}

// The restore's record stream (client::VaultLink::RecordStream) against a
// real vault: records come back in the order their IDs were added, across
// requests, while IDs are added during the reading (as a tree's
// subdirectories are); a reply the frame size cuts short and one that stops
// at an unknown ID are asked for again in place, and only the unknown ID is
// refused.
TEST_F(VaultProtocolTest, ARecordStreamReturnsRecordsInTheOrderTheirIdsWereAdded) {
  auto fin = *Enroll("finance", "fin-srv-01");
  auto enc = *repo::RecordEncoder::Create(fin.keys, {});
  // 180 records; 20 of them of 1 MiB, which do not fit one reply frame.
  std::vector<crypto::ChunkId> ids;
  std::vector<Bytes> records;
  for (int i = 0; i < 180; ++i) {
    const size_t size = i >= 100 && i < 120 ? 1u << 20 : 3000 + i;
    Bytes content = repo::testing::RandomBytes(size, 1000 + i), rec;
    ids.push_back(enc->Id(content));
    ASSERT_TRUE(enc->Encode(repo::RecordType::kData, ids.back(), content, &rec).ok());
    records.push_back(std::move(rec));
  }
  auto committed = StoreSnapshot(fin, ids, records);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();

  client::Identity me;
  me.config.vault_addresses = {address_};
  me.config.department = fin.department;
  me.certificate_pem = fin.cert_pem;
  me.private_key_pem = fin.key_pem;
  me.ca_pem = vault_->pki().ca().certificate_pem;
  me.keys = fin.keys;
  auto link = client::VaultLink::Open(me, {address_}, {});
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  ASSERT_TRUE((*link)->BeginRestore({"verify", committed->snapshot_id, "", false, false}).ok());

  // The reading order: every record once, an unknown ID inside the second
  // request, and the first one again at the end. -1 is the unknown ID.
  std::vector<int> order;
  for (int i = 0; i < 180; ++i) {
    order.push_back(i);
    if (i == 70) order.push_back(-1);
  }
  order.push_back(0);
  const crypto::ChunkId unknown{0xee};
  client::VaultLink::RecordStream stream(link->get());
  size_t added = 0;
  auto add = [&] {
    stream.Add(order[added] < 0 ? unknown : ids[order[added]]);
    ++added;
  };
  for (int i = 0; i < 10; ++i) add();
  for (size_t read = 0; read < order.size(); ++read) {
    ASSERT_FALSE(stream.done());
    auto got = stream.Next();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (order[read] < 0) {
      EXPECT_TRUE(got->status().IsNotFound()) << read << ": " << got->status().ToString();
    } else {
      ASSERT_TRUE(got->ok()) << read << ": " << got->status().ToString();
      EXPECT_EQ(**got, records[order[read]]) << "record " << read << " out of order";
    }
    // Two IDs join for each record read, until all are in.
    for (int k = 0; k < 2 && added < order.size(); ++k) add();
  }
  EXPECT_TRUE(stream.done());
  EXPECT_TRUE((*link)->failure().ok());
  // FetchRecords, which reads through one, gives the same.
  auto all = (*link)->FetchRecords({ids[5], unknown, ids[110], ids[111]});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].value(), records[5]);
  EXPECT_TRUE((*all)[1].status().IsNotFound());
  EXPECT_EQ((*all)[2].value(), records[110]);
  EXPECT_EQ((*all)[3].value(), records[111]);
}

}  // namespace
// The restore role: reads only, never a job link; get_delta answers with a
// delta the client can check, within the department only.
TEST_F(VaultProtocolTest, RestoreRoleReadsAndGetsDeltasButCannotWrite) {
  auto fin = *Enroll("finance", "fin-srv-01");
  auto health = *Enroll("health", "hl-srv-01");
  // Store one 64 KiB chunk through an agent connection.
  auto enc = *repo::RecordEncoder::Create(fin.keys, {});
  Bytes content = repo::testing::RandomBytes(64 * 1024, 5), rec;
  const crypto::ChunkId id = enc->Id(content);
  ASSERT_TRUE(enc->Encode(repo::RecordType::kData, id, content, &rec).ok());
  auto committed = StoreSnapshot(fin, {id}, {rec});
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();

  auto restore_conn = [&](const Identity& who) -> Conn {
    Conn c = *Dial(who.cert_pem, who.key_pem);
    EXPECT_TRUE(
        Send(c, MessageType::kHello, proto::Hello{1, 1, proto::Role::kRestore, "test", "r"}).ok());
    EXPECT_TRUE(Expect<proto::HelloOk>(c, MessageType::kHelloOk).ok());
    return c;
  };
  // Reading before restore_begin is a violation that closes the connection.
  Conn early = restore_conn(fin);
  ASSERT_TRUE(Send(early, MessageType::kGetRecords, proto::GetRecords{{id}}).ok());
  auto refused = Read(early);
  if (refused.ok()) {
    EXPECT_EQ(refused->type, MessageType::kError);
    refused = Read(early);
  }
  EXPECT_FALSE(refused.ok());
  // A restore says what and where; the vault audits it.
  Conn r = restore_conn(fin);
  ASSERT_TRUE(Send(r, MessageType::kRestoreBegin,
                   proto::RestoreBegin{"restore", committed->snapshot_id, "/srv/back", true, false})
                  .ok());
  ASSERT_TRUE(Expect<proto::RestoreBegun>(r, MessageType::kRestoreBegun).ok());
  AuditFilter restores;
  restores.action = "restore";
  auto audited = vault_->audit()->List(restores);
  ASSERT_EQ(audited->size(), 1u);
  EXPECT_EQ((*audited)[0].object, committed->snapshot_id);
  EXPECT_EQ((*audited)[0].details.at("target").as_string(), "/srv/back");
  // Reads work.
  ASSERT_TRUE(Send(r, MessageType::kGetRecords, proto::GetRecords{{id}}).ok());
  auto recs = Expect<proto::Records>(r, MessageType::kRecords);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  EXPECT_EQ(recs->records.at(0), rec);
  // A delta against a stale copy: one 4 KiB block differs.
  Bytes stale = content;
  for (size_t i = 8192; i < 12288; ++i) stale[i] ^= 0x5a;
  auto sig = chunk::ComputeSignature(stale, 4096);
  ASSERT_TRUE(sig.ok());
  ASSERT_TRUE(Send(r, MessageType::kGetDelta, proto::GetDelta{7, id, *sig}).ok());
  auto delta = Expect<proto::DeltaReply>(r, MessageType::kDelta);
  ASSERT_TRUE(delta.ok()) << delta.status().ToString();
  EXPECT_EQ(delta->request_id, 7u);
  EXPECT_EQ(delta->kind, proto::DeltaKind::kDelta);
  EXPECT_LT(delta->data.size(), 8192u);  // about the one block, not the chunk
  auto rebuilt = chunk::ApplyDelta(stale, delta->data, content.size());
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, content);
  // The client's bytes named by their ID: this chunk is stored whole, so
  // there is no chain of deltas from them; without a signature, no_chain.
  ASSERT_TRUE(
      Send(r, MessageType::kGetDelta, proto::GetDelta{10, id, Bytes(), crypto::ChunkId{1}}).ok());
  auto no_chain = Expect<proto::DeltaReply>(r, MessageType::kDelta);
  ASSERT_TRUE(no_chain.ok()) << no_chain.status().ToString();
  EXPECT_EQ(no_chain->kind, proto::DeltaKind::kNoChain);
  // With one, the delta as before.
  ASSERT_TRUE(
      Send(r, MessageType::kGetDelta, proto::GetDelta{11, id, *sig, crypto::ChunkId{1}}).ok());
  auto computed = Expect<proto::DeltaReply>(r, MessageType::kDelta);
  ASSERT_TRUE(computed.ok()) << computed.status().ToString();
  EXPECT_EQ(computed->kind, proto::DeltaKind::kDelta);
  // A signature librsync would not take: invalid_argument, connection kept.
  ASSERT_TRUE(Send(r, MessageType::kGetDelta, proto::GetDelta{8, id, Bytes(20, 1)}).ok());
  EXPECT_EQ(Expect<proto::DeltaReply>(r, MessageType::kDelta).status().code(),
            StatusCode::kInvalidArgument);
  // An unknown chunk: not_found.
  crypto::ChunkId unknown{};
  ASSERT_TRUE(Send(r, MessageType::kGetDelta, proto::GetDelta{9, unknown, *sig}).ok());
  EXPECT_TRUE(Expect<proto::DeltaReply>(r, MessageType::kDelta).status().IsNotFound());
  // Another department's restore sees nothing of it: not its snapshot.
  Conn h = restore_conn(health);
  ASSERT_TRUE(Send(h, MessageType::kRestoreBegin,
                   proto::RestoreBegin{"verify", committed->snapshot_id, "", false, false})
                  .ok());
  EXPECT_TRUE(Expect<proto::RestoreBegun>(h, MessageType::kRestoreBegun).status().IsNotFound());
  // ... nor its chunks, from a snapshot of its own.
  EXPECT_TRUE(vault_->catalog()->ListSnapshots(2, 0)->empty());
  // An idle restore connection never becomes a job link.
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(server_->job_links(), 0u);
  // Writing is a protocol violation that closes the connection.
  ASSERT_TRUE(SendRaw(r, MessageType::kPutRecord, rec).ok());
  auto closed = Read(r);
  if (closed.ok()) {
    EXPECT_EQ(closed->type, MessageType::kError);
    closed = Read(r);
  }
  EXPECT_FALSE(closed.ok());
}

}  // namespace cairn::vault
