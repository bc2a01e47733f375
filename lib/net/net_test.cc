// End-to-end tests of lib/net on 127.0.0.1 with ephemeral ports, real TLS and
// certificates minted by lib/crypto/pki.h. Each test drives one io_context
// on the test thread through RunSync, so the server and its clients
// interleave deterministically.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/crypto/pki.h"
#include "lib/net/address.h"
#include "lib/net/client.h"
#include "lib/net/connection.h"
#include "lib/net/run_sync.h"
#include "lib/net/server.h"
#include "lib/net/tls.h"
#include "lib/proto/frame.h"

namespace cairn::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// CAIRN_RETURN_IF_ERROR for coroutines.
#define CO_RETURN_IF_ERROR(expr)                \
  do {                                          \
    ::cairn::Status co_status_ = (expr);        \
    if (!co_status_.ok()) co_return co_status_; \
  } while (0)

struct Credentials {
  std::string private_key_pem;
  std::string certificate_pem;
  crypto::PeerIdentity identity;
};

Credentials Mint(const crypto::CaMaterial& ca, const std::string& role,
                 const std::string& department, const std::string& host) {
  Credentials out;
  auto keys = crypto::GenerateKeyPair();
  EXPECT_TRUE(keys.ok());
  auto csr = crypto::CreateCsr(keys->private_key_pem, host);
  EXPECT_TRUE(csr.ok());
  auto cert = crypto::IssueCertificate(ca, *csr, {role, department, host, "", 0}, 30);
  EXPECT_TRUE(cert.ok()) << cert.status().ToString();
  out.private_key_pem = keys->private_key_pem;
  out.certificate_pem = *cert;
  out.identity = *crypto::ParseIdentity(*cert);
  return out;
}

struct Pki {
  crypto::CaMaterial ca;
  crypto::CaMaterial other_ca;
  Credentials vault;
  Credentials agent;
  Credentials agent2;
  Credentials foreign_agent;  // same names, another CA
};

// What the server's handlers saw, shared with the test body.
struct Observed {
  int handlers_started = 0;
  int handlers_finished = 0;
  std::vector<std::optional<crypto::PeerIdentity>> peers;
};

asio::awaitable<void> Sleep(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(kAwait);
}

// Echoes frames until the peer goes away or misbehaves.
asio::awaitable<void> Echo(std::shared_ptr<Connection> c, Observed* seen) {
  ++seen->handlers_started;
  seen->peers.push_back(c->peer());
  for (;;) {
    Result<Frame> frame = co_await c->ReadFrame();
    if (!frame.ok()) break;
    if (!(co_await c->WriteFrame(frame->type, frame->payload)).ok()) break;
  }
  ++seen->handlers_finished;
}

class NetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new Pki;
    pki_->ca = *crypto::CreateCa("Cairn Test CA", 30);
    pki_->other_ca = *crypto::CreateCa("Cairn Test CA", 30);  // same name, other key
    pki_->vault = Mint(pki_->ca, "vault", "site-a", "127.0.0.1");
    pki_->agent = Mint(pki_->ca, "agent", "finance", "fin-01");
    pki_->agent2 = Mint(pki_->ca, "agent", "finance", "fin-02");
    pki_->foreign_agent = Mint(pki_->other_ca, "agent", "finance", "fin-01");
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void TearDown() override {
    if (server_) {
      RunSync(io_, server_->Stop(1s));
      server_.reset();
    }
  }

  static ServerOptions FastOptions() {
    ServerOptions options;
    options.handshake_deadline = 5s;
    options.connection.read_deadline = 5s;
    options.connection.close_deadline = 200ms;
    return options;
  }

  TlsContext ServerContext(ClientCertificate mode = ClientCertificate::kRequired,
                           std::function<bool(const crypto::PeerIdentity&)> is_revoked = {}) {
    TlsOptions tls;
    tls.ca_pem = pki_->ca.certificate_pem;
    tls.certificate_pem = pki_->vault.certificate_pem;
    tls.private_key_pem = pki_->vault.private_key_pem;
    tls.client_certificate = mode;
    tls.is_revoked = std::move(is_revoked);
    auto ctx = MakeServerContext(tls);
    EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
    return *ctx;
  }

  // A client trusting our CA, presenting `who` (nullptr: no certificate).
  TlsContext ClientContext(const Credentials* who) {
    TlsOptions tls;
    tls.ca_pem = pki_->ca.certificate_pem;
    if (who) {
      tls.certificate_pem = who->certificate_pem;
      tls.private_key_pem = who->private_key_pem;
    }
    auto ctx = MakeClientContext(tls);
    EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
    return *ctx;
  }

  void StartServer(TlsContext tls, Server::Handler handler, ServerOptions options = FastOptions()) {
    server_ = std::make_unique<Server>(io_, std::move(tls), std::move(handler), options);
    auto port = server_->Listen("127.0.0.1:0");
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    ASSERT_NE(*port, 0);
    address_ = "127.0.0.1:" + std::to_string(*port);
    server_->Start();
  }

  void StartEchoServer(TlsContext tls, ServerOptions options = FastOptions()) {
    StartServer(
        std::move(tls), [this](std::shared_ptr<Connection> c) { return Echo(c, &seen_); }, options);
  }

  Result<std::shared_ptr<Connection>> ConnectSync(TlsContext tls) {
    return RunSync(io_, Connect(io_.get_executor(), address_, std::move(tls), 5s));
  }

  // Connects, sends a ping, and reads the echo: the first failure, if any.
  Status RoundTrip(TlsContext tls) {
    auto body = [&]() -> asio::awaitable<Status> {
      auto c = co_await Connect(io_.get_executor(), address_, tls, 5s);
      if (!c.ok()) co_return c.status();
      const std::string ping = "ping";
      Status w = co_await (*c)->WriteFrame(proto::MessageType::kPing, AsBytes(ping));
      if (!w.ok()) co_return w;
      auto reply = co_await (*c)->ReadFrame(5s);
      if (!reply.ok()) co_return reply.status();
      if (AsString(reply->payload) != ping) co_return Status::Corruption("bad echo");
      co_await (*c)->Close();
      co_return Status::OK();
    };
    return RunSync(io_, body());
  }

  static Pki* pki_;
  asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::string address_;
  Observed seen_;
};

Pki* NetTest::pki_ = nullptr;

TEST(AddressTest, ParsesHostPortForms) {
  auto v4 = ParseHostPort("vault.city.gov:7420");
  ASSERT_TRUE(v4.ok()) << v4.status().ToString();
  EXPECT_EQ(v4->host, "vault.city.gov");
  EXPECT_EQ(v4->port, 7420);
  auto v6 = ParseHostPort("[::1]:8443");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "::1");
  auto any = ParseHostPort(":7420");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "");
  EXPECT_NE(ParseHostPort("vault").status().ToString().find("the port is missing"),
            std::string::npos);
  EXPECT_NE(ParseHostPort("::1:80").status().ToString().find("[addr]:port"), std::string::npos);
  EXPECT_FALSE(ParseHostPort("h:99999").ok());
  EXPECT_FALSE(ParseHostPort("user@h:1").ok());
}

TEST(AddressTest, WildcardHostsAreNotDialled) {
  for (const char* any : {"", "0.0.0.0", "::"}) EXPECT_TRUE(IsWildcardHost(any)) << any;
  for (const char* one : {"127.0.0.1", "::1", "vault.city.gov", "10.0.2.15"}) {
    EXPECT_FALSE(IsWildcardHost(one)) << one;
  }
}

TEST_F(NetTest, EchoesFramesBothWaysIncluding16MiB) {
  StartEchoServer(ServerContext());
  auto c = ConnectSync(ClientContext(&pki_->agent));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::shared_ptr<Connection> conn = *c;
  // The client learns who the server is.
  ASSERT_TRUE(conn->peer().has_value());
  EXPECT_EQ(conn->peer()->role, "vault");
  EXPECT_EQ(conn->remote_endpoint(), address_);

  Bytes big(16u << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 131 + (i >> 16));
  auto body = [&]() -> asio::awaitable<Status> {
    for (int round = 0; round < 3; ++round) {
      const std::string text = "hello " + std::to_string(round);
      CO_RETURN_IF_ERROR(co_await conn->WriteFrame(proto::MessageType::kHello, AsBytes(text)));
      auto reply = co_await conn->ReadFrame(5s, proto::kMaxControlPayload);
      if (!reply.ok()) co_return reply.status();
      if (reply->type != proto::MessageType::kHello || AsString(reply->payload) != text) {
        co_return Status::Corruption("small echo differs");
      }
    }
    CO_RETURN_IF_ERROR(co_await conn->WriteFrame(proto::MessageType::kPing, {}));
    auto empty = co_await conn->ReadFrame(5s);
    if (!empty.ok() || !empty->payload.empty()) co_return Status::Corruption("empty echo");
    CO_RETURN_IF_ERROR(co_await conn->WriteFrame(proto::MessageType::kPutRecord, big, 30s));
    auto reply = co_await conn->ReadFrame(30s);
    if (!reply.ok()) co_return reply.status();
    if (reply->type != proto::MessageType::kPutRecord || !Equal(reply->payload, big)) {
      co_return Status::Corruption("16 MiB echo differs");
    }
    co_await conn->Close();
    co_return Status::OK();
  };
  Status status = RunSync(io_, body());
  EXPECT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(seen_.peers.size(), 1u);
  ASSERT_TRUE(seen_.peers[0].has_value());
  EXPECT_EQ(*seen_.peers[0], pki_->agent.identity);
}

TEST_F(NetTest, OversizedWriteIsRefusedLocally) {
  StartEchoServer(ServerContext());
  auto c = ConnectSync(ClientContext(&pki_->agent));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Bytes too_big(proto::kMaxControlPayload + 1);
  Status s = RunSync(io_, (*c)->WriteFrame(proto::MessageType::kHello, too_big));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  // Nothing was sent: the connection still works.
  s = RunSync(io_, (*c)->WriteFrame(proto::MessageType::kPing, {}));
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto reply = RunSync(io_, (*c)->ReadFrame(5s));
  EXPECT_TRUE(reply.ok()) << reply.status().ToString();
}

TEST_F(NetTest, ClientFromAnotherCaIsRefused) {
  StartEchoServer(ServerContext());
  Status s = RoundTrip(ClientContext(&pki_->foreign_agent));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  EXPECT_EQ(seen_.handlers_started, 0);
  EXPECT_TRUE(RoundTrip(ClientContext(&pki_->agent)).ok());
}

TEST_F(NetTest, ServerFromAnotherCaOrWrongHostIsRefused) {
  StartEchoServer(ServerContext());
  // A client that trusts only the other CA must refuse our vault.
  TlsOptions tls;
  tls.ca_pem = pki_->other_ca.certificate_pem;
  tls.certificate_pem = pki_->foreign_agent.certificate_pem;
  tls.private_key_pem = pki_->foreign_agent.private_key_pem;
  auto ctx = MakeClientContext(tls);
  ASSERT_TRUE(ctx.ok());
  auto c = ConnectSync(*ctx);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kPermissionDenied) << c.status().ToString();

  // The vault certificate names 127.0.0.1 only; dialled as localhost it fails.
  const std::string port = address_.substr(address_.rfind(':') + 1);
  auto wrong_host = RunSync(
      io_, Connect(io_.get_executor(), "localhost:" + port, ClientContext(&pki_->agent), 5s));
  ASSERT_FALSE(wrong_host.ok());
  EXPECT_EQ(wrong_host.status().code(), StatusCode::kPermissionDenied)
      << wrong_host.status().ToString();
}

TEST_F(NetTest, RevokedSerialIsRefusedAtHandshake) {
  const std::string revoked = pki_->agent.identity.serial_hex;
  std::atomic<int> asked{0};
  StartEchoServer(ServerContext(ClientCertificate::kRequired, [&](const crypto::PeerIdentity& id) {
    ++asked;
    return id.serial_hex == revoked;
  }));
  Status s = RoundTrip(ClientContext(&pki_->agent));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  EXPECT_EQ(seen_.handlers_started, 0);
  EXPECT_TRUE(RoundTrip(ClientContext(&pki_->agent2)).ok());
  EXPECT_GE(asked.load(), 2);
}

TEST_F(NetTest, DisconnectEndsRunningSessionsOfAPeer) {
  StartEchoServer(ServerContext());
  auto c = ConnectSync(ClientContext(&pki_->agent));
  ASSERT_TRUE(c.ok());
  // Let the server finish its side of the handshake.
  ASSERT_TRUE(RunSync(io_, (*c)->WriteFrame(proto::MessageType::kPing, {})).ok());
  ASSERT_TRUE(RunSync(io_, (*c)->ReadFrame(5s)).ok());
  const std::string serial = pki_->agent.identity.serial_hex;
  EXPECT_EQ(
      server_->Disconnect([&](const crypto::PeerIdentity& id) { return id.serial_hex == serial; }),
      1u);
  auto after = RunSync(io_, (*c)->ReadFrame(5s));
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status().ToString();
}

TEST_F(NetTest, ClientWithoutCertificateRefusedWhenRequired) {
  StartEchoServer(ServerContext(ClientCertificate::kRequired));
  Status s = RoundTrip(ClientContext(nullptr));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
  EXPECT_EQ(seen_.handlers_started, 0);
}

TEST_F(NetTest, ClientWithoutCertificateAcceptedWhenOptional) {
  StartEchoServer(ServerContext(ClientCertificate::kOptional));
  Status s = RoundTrip(ClientContext(nullptr));
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(RoundTrip(ClientContext(&pki_->agent)).ok());
  // A certificate, if presented, must still verify.
  EXPECT_EQ(RoundTrip(ClientContext(&pki_->foreign_agent)).code(), StatusCode::kPermissionDenied);
  ASSERT_EQ(seen_.peers.size(), 2u);
  EXPECT_FALSE(seen_.peers[0].has_value());  // enrolment: no identity
  ASSERT_TRUE(seen_.peers[1].has_value());
  EXPECT_EQ(seen_.peers[1]->host, "fin-01");
}

TEST_F(NetTest, Tls12ClientIsRefused) {
  StartEchoServer(ServerContext());
  TlsContext ctx = ClientContext(&pki_->agent);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  auto c = ConnectSync(ctx);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << c.status().ToString();
  EXPECT_EQ(seen_.handlers_started, 0);
}

// Sends `bytes` over a raw TLS stream (no framing) and waits until the server
// ends the connection. Returns how the read ended.
asio::awaitable<boost::system::error_code> SendRawAndWaitForClose(TlsContext tls,
                                                                  std::string address,
                                                                  std::string bytes) {
  auto executor = co_await asio::this_coro::executor;
  asio::ssl::stream<tcp::socket> stream(executor, *tls);
  const auto colon = address.rfind(':');
  tcp::endpoint endpoint(asio::ip::make_address(address.substr(0, colon)),
                         static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  auto [connect_ec] = co_await stream.lowest_layer().async_connect(endpoint, kAwait);
  if (connect_ec) co_return connect_ec;
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream.native_handle()), "127.0.0.1");
  auto [handshake_ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kAwait);
  if (handshake_ec) co_return handshake_ec;
  auto [write_ec, written] = co_await asio::async_write(stream, asio::buffer(bytes), kAwait);
  if (write_ec) co_return write_ec;
  char buf[64];
  auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(buf), kAwait);
  co_return read_ec;
}

TEST_F(NetTest, ProtocolViolationClosesOnlyThatConnection) {
  StartEchoServer(ServerContext());
  auto good = ConnectSync(ClientContext(&pki_->agent2));
  ASSERT_TRUE(good.ok());

  const std::string bad_magic = "XXXXXXXXpayload";
  Bytes oversized(proto::kFrameHeaderSize);
  proto::EncodeFrameHeader({proto::MessageType::kHello, 2u << 20}, oversized.data());
  for (const std::string& garbage : {bad_magic, std::string(AsString(oversized))}) {
    auto ec = RunSync(io_, SendRawAndWaitForClose(ClientContext(&pki_->agent), address_, garbage));
    // The server ended the connection (close_notify or a reset), without
    // waiting for any deadline.
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
                ec == asio::error::connection_reset)
        << ec.message();

    // The other client is unaffected.
    auto body = [&]() -> asio::awaitable<Status> {
      CO_RETURN_IF_ERROR(co_await (*good)->WriteFrame(proto::MessageType::kPing, AsBytes("x")));
      auto reply = co_await (*good)->ReadFrame(5s);
      co_return reply.ok() ? Status::OK() : reply.status();
    };
    Status s = RunSync(io_, body());
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(seen_.handlers_finished, 2);
}

TEST_F(NetTest, HandlerThatThrowsAffectsOnlyItsConnection) {
  int calls = 0;
  StartServer(ServerContext(), [&](std::shared_ptr<Connection> c) -> asio::awaitable<void> {
    if (calls++ == 0) throw std::runtime_error("boom");
    return Echo(c, &seen_);
  });
  Status first = RoundTrip(ClientContext(&pki_->agent));
  EXPECT_EQ(first.code(), StatusCode::kUnavailable) << first.ToString();
  EXPECT_TRUE(RoundTrip(ClientContext(&pki_->agent)).ok());
}

TEST_F(NetTest, SilentPeersAreDroppedAfterTheDeadline) {
  ServerOptions options = FastOptions();
  options.handshake_deadline = 300ms;
  options.connection.read_deadline = 300ms;
  StartEchoServer(ServerContext(), options);

  // A TCP peer that never starts TLS.
  auto silent_tcp = [&]() -> asio::awaitable<boost::system::error_code> {
    tcp::socket socket(co_await asio::this_coro::executor);
    const auto colon = address_.rfind(':');
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                           static_cast<uint16_t>(std::stoi(address_.substr(colon + 1))));
    auto [ec] = co_await socket.async_connect(endpoint, kAwait);
    if (ec) co_return ec;
    char buf[16];
    auto [read_ec, n] = co_await socket.async_read_some(asio::buffer(buf), kAwait);
    co_return read_ec;
  };
  Clock::time_point start = Clock::now();
  boost::system::error_code ec = RunSync(io_, silent_tcp());
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 3s);

  // A TLS peer that completes the handshake and then sends nothing.
  auto c = ConnectSync(ClientContext(&pki_->agent));
  ASSERT_TRUE(c.ok());
  start = Clock::now();
  auto frame = RunSync(io_, (*c)->ReadFrame(10s));
  elapsed = Clock::now() - start;
  ASSERT_FALSE(frame.ok());
  EXPECT_EQ(frame.status().code(), StatusCode::kUnavailable) << frame.status().ToString();
  EXPECT_LT(elapsed, 3s);

  // Our own read deadline, on the client side.
  auto c2 = ConnectSync(ClientContext(&pki_->agent2));
  ASSERT_TRUE(c2.ok());
  auto timed_out = RunSync(io_, (*c2)->ReadFrame(50ms));
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.status().message(), "read deadline exceeded");
  EXPECT_TRUE(timed_out.status().retryable());
}

TEST_F(NetTest, StopDrainsInFlightHandlerThenRefusesConnects) {
  std::atomic<bool> handler_done{false};
  StartServer(ServerContext(), [&](std::shared_ptr<Connection> c) -> asio::awaitable<void> {
    return [](std::shared_ptr<Connection> conn, std::atomic<bool>* done) -> asio::awaitable<void> {
      auto request = co_await conn->ReadFrame(5s);
      if (!request.ok()) co_return;
      co_await Sleep(300ms);  // work in flight while Stop() is called
      (void)co_await conn->WriteFrame(proto::MessageType::kPong, request->payload);
      *done = true;
    }(c, &handler_done);
  });

  bool stopped = false;
  auto body = [&]() -> asio::awaitable<Status> {
    auto c = co_await Connect(io_.get_executor(), address_, ClientContext(&pki_->agent), 5s);
    if (!c.ok()) co_return c.status();
    CO_RETURN_IF_ERROR(co_await (*c)->WriteFrame(proto::MessageType::kPing, AsBytes("work")));
    co_await Sleep(50ms);  // the handler has the request
    asio::co_spawn(io_, server_->Stop(5s), [&](std::exception_ptr) { stopped = true; });
    co_await Sleep(20ms);
    // New connects are refused while the server drains.
    auto refused = co_await Connect(io_.get_executor(), address_, ClientContext(&pki_->agent2), 2s);
    if (refused.ok()) co_return Status::Corruption("connect during drain succeeded");
    auto reply = co_await (*c)->ReadFrame(5s);
    if (!reply.ok()) co_return reply.status();
    if (reply->type != proto::MessageType::kPong) co_return Status::Corruption("not a pong");
    while (!stopped) co_await Sleep(10ms);
    auto after = co_await Connect(io_.get_executor(), address_, ClientContext(&pki_->agent2), 2s);
    if (after.ok()) co_return Status::Corruption("connect after stop succeeded");
    if (after.status().code() != StatusCode::kUnavailable) co_return after.status();
    co_return Status::OK();
  };
  const Clock::time_point start = Clock::now();
  Status s = RunSync(io_, body());
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(handler_done);
  EXPECT_LT(Clock::now() - start, 4s);  // Stop returned once drained, not at 5 s
  EXPECT_EQ(server_->active_connections(), 0u);
}

TEST_F(NetTest, StopCancelsHandlersStillRunningAfterTheDrain) {
  StartServer(ServerContext(), [&](std::shared_ptr<Connection> c) -> asio::awaitable<void> {
    return Echo(c, &seen_);
  });
  auto c = ConnectSync(ClientContext(&pki_->agent));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(RunSync(io_, (*c)->WriteFrame(proto::MessageType::kPing, {})).ok());
  ASSERT_TRUE(RunSync(io_, (*c)->ReadFrame(5s)).ok());  // handler is now waiting
  const Clock::time_point start = Clock::now();
  RunSync(io_, server_->Stop(200ms));
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(server_->active_connections(), 0u);
  EXPECT_EQ(seen_.handlers_finished, 1);
  auto after = RunSync(io_, (*c)->ReadFrame(5s));
  EXPECT_FALSE(after.ok());
}

TEST(NetConfigTest, BadInputsAreInvalidArgument) {
  TlsOptions tls;
  EXPECT_EQ(MakeServerContext(tls).status().code(), StatusCode::kInvalidArgument);
  tls.ca_pem = "garbage";
  EXPECT_EQ(MakeClientContext(tls).status().code(), StatusCode::kInvalidArgument);
  auto ca = crypto::CreateCa("CA", 30);
  ASSERT_TRUE(ca.ok());
  tls.ca_pem = ca->certificate_pem;
  EXPECT_EQ(MakeServerContext(tls).status().code(), StatusCode::kInvalidArgument);  // no cert
  Credentials vault = Mint(*ca, "vault", "site", "127.0.0.1");
  tls.certificate_pem = vault.certificate_pem;
  tls.private_key_pem = crypto::GenerateKeyPair()->private_key_pem;  // not its key
  auto mismatch = MakeServerContext(tls);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  tls.private_key_pem = vault.private_key_pem;
  ASSERT_TRUE(MakeServerContext(tls).ok());

  asio::io_context io;
  Server server(io, *MakeServerContext(tls), [](std::shared_ptr<Connection>) {
    return [](std::shared_ptr<Connection>) -> asio::awaitable<void> { co_return; }(nullptr);
  });
  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", "localhost:0", "::1:0", "1.2.3.4:x"}) {
    EXPECT_EQ(server.Listen(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto bad_connect =
      RunSync(io, Connect(io.get_executor(), "nocolon", *MakeClientContext(tls), 1s));
  EXPECT_EQ(bad_connect.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::net
