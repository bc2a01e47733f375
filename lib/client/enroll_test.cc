// Enrolment against a small in-process vault stand-in (lib/net's Server
// speaking the enrol sequence of doc/protocol.md); the real vault is
// exercised by tests/e2e.
#include "lib/client/enroll.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <thread>

#include "lib/crypto/keys.h"
#include "lib/crypto/pki.h"
#include "lib/net/run_sync.h"
#include "lib/net/server.h"
#include "lib/net/tls.h"
#include "lib/proto/messages.h"
#include "lib/proto/token.h"

namespace cairn::client {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/cairn_enroll_XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

class FakeVault {
 public:
  FakeVault() {
    ca_ = *crypto::CreateCa("Test CA", 30);
    auto key = *crypto::GenerateKeyPair();
    auto csr = *crypto::CreateCsr(key.private_key_pem, "127.0.0.1");
    auto cert = *crypto::IssueCertificate(ca_, csr, {"vault", "site", "127.0.0.1"}, 30);
    keys_ = *crypto::DepartmentKeys::Generate();
    net::TlsOptions tls;
    tls.ca_pem = ca_.certificate_pem;
    // The chain includes the CA so an enrolling agent can pin it.
    tls.certificate_pem = cert + ca_.certificate_pem;
    tls.private_key_pem = key.private_key_pem;
    tls.client_certificate = net::ClientCertificate::kOptional;
    net::ServerOptions options;
    options.connection.read_deadline = 5s;
    server_ = std::make_unique<net::Server>(
        io_, *net::MakeServerContext(tls),
        [this](std::shared_ptr<net::Connection> c) { return Handle(c); }, options);
    port_ = *server_->Listen("127.0.0.1:0");
    server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeVault() {
    asio::io_context stopper;
    std::atomic<bool> done{false};
    asio::co_spawn(io_, server_->Stop(1s), [&](std::exception_ptr) { done = true; });
    while (!done) std::this_thread::sleep_for(10ms);
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Token(std::string catalog = "ab.cd") const {
    return proto::FormatEnrollmentToken(*crypto::CertificateFingerprint(ca_.certificate_pem),
                                        catalog);
  }
  const crypto::DepartmentKeys& keys() const { return keys_; }

 private:
  asio::awaitable<void> Handle(std::shared_ptr<net::Connection> c) {
    auto hello = co_await c->ReadFrame(5s, proto::kMaxHelloPayload);
    if (!hello.ok() || hello->type != proto::MessageType::kHello) co_return;
    Bytes ok = proto::HelloOk{1, "site", 0, ""}.Encode();
    if (!(co_await c->WriteFrame(proto::MessageType::kHelloOk, ok)).ok()) co_return;
    auto req = co_await c->ReadFrame(5s);
    if (!req.ok()) co_return;
    auto r = proto::EnrollRequest::Decode(req->payload);
    if (!r.ok()) co_return;
    if (r->token != "ab.cd" || used_) {
      Bytes e = proto::Error::FromStatus(
                    Status::PermissionDenied("enrolment token refused: unknown token"))
                    .Encode();
      co_await c->WriteFrame(proto::MessageType::kError, e);
      co_return;
    }
    used_ = true;
    proto::EnrollResponse resp;
    resp.certificate_pem =
        *crypto::IssueCertificate(ca_, r->csr_pem, {"agent", "finance", r->hostname}, 30);
    resp.ca_pem = ca_.certificate_pem;
    resp.department = "finance";
    resp.department_id = 4;
    resp.department_keys = crypto::SerializeDepartmentKeys(keys_);
    resp.vault_addresses = {address()};
    Bytes payload = resp.Encode();
    co_await c->WriteFrame(proto::MessageType::kEnrollResponse, payload);
    co_await c->ReadFrame(2s);  // until the agent closes
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  crypto::CaMaterial ca_;
  crypto::DepartmentKeys keys_;
  std::unique_ptr<net::Server> server_;
  uint16_t port_ = 0;
  std::thread thread_;
  bool used_ = false;
};

TEST(EnrollTest, EnrolsAndStoresEverything) {
  FakeVault vault;
  EnrollOptions o;
  o.vault = vault.address();
  o.token = vault.Token();
  o.state_dir = TempDir() + "/state";
  o.host = "fin-01";
  o.deadline = 10s;
  auto r = Enroll(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.department, "finance");
  auto state = LoadIdentity(o.state_dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->keys.id_key, vault.keys().id_key);
  EXPECT_EQ(state->config.host, "fin-01");
  EXPECT_EQ(state->config.department_id, 4u);
  auto id = crypto::ParseIdentity(state->certificate_pem);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->host, "fin-01");

  // Enrolling the same directory again is refused without --force ...
  auto again = Enroll(o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  // ... and with --force the vault's refusal of the used token is shown,
  // and the existing enrolment stays.
  o.force = true;
  again = Enroll(o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(again.status().message().find("unknown token"), std::string::npos)
      << again.status().message();
  EXPECT_TRUE(LoadIdentity(o.state_dir).ok());
}

TEST(EnrollTest, WrongFingerprintIsRefusedBeforeSendingAnything) {
  FakeVault vault;
  EnrollOptions o;
  o.vault = vault.address();
  o.token = proto::FormatEnrollmentToken(std::string(64, 'a'), "ab.cd");
  o.state_dir = TempDir() + "/state";
  o.deadline = 10s;
  auto r = Enroll(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("does not present the CA"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(o.state_dir));
}

TEST(EnrollTest, UnreachableVaultIsUnavailable) {
  EnrollOptions o;
  {
    FakeVault vault;  // learn a port, then close it
    o.vault = vault.address();
    o.token = vault.Token();
  }
  o.state_dir = TempDir() + "/state";
  o.deadline = 5s;
  auto r = Enroll(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
}

TEST(EnrollTest, MalformedTokenIsInvalidArgument) {
  EnrollOptions o;
  o.vault = "127.0.0.1:1";
  o.token = "cairn1-nope";
  o.state_dir = TempDir();
  auto r = Enroll(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::client
