#include "lib/http/server.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <mutex>
#include <set>

#include "lib/base/cli.h"
#include "lib/crypto/pki.h"
#include "lib/net/address.h"
#include "lib/net/on_pool.h"

namespace cairn::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

struct Server::State : std::enable_shared_from_this<Server::State> {
  State(asio::io_context& io_in, ServerOptions options_in, Handler handler_in)
      : io(io_in),
        options(std::move(options_in)),
        handler(std::move(handler_in)),
        acceptor(io_in),
        tls(asio::ssl::context::tls_server),
        blocking("the REST API's handler threads", options.handler_threads),
        pool(blocking.pool()) {}

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  asio::ssl::context tls;
  net::BlockingPool blocking;
  asio::thread_pool& pool;  // blocking's
  std::atomic<bool> stopping{false};
  std::mutex mu;
  size_t connections = 0;                       // mu
  std::map<std::string, size_t> per_address;    // mu
  std::set<std::shared_ptr<tcp::socket>> live;  // mu; closed at Stop

  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(std::shared_ptr<tcp::socket> socket, std::string remote);
  Response Handle(Request request);
};

namespace {

std::string Remote(const tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  const auto addr = ep.address();
  return (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) + ":" +
         std::to_string(ep.port());
}

std::string AddressOf(const std::string& remote) { return remote.substr(0, remote.rfind(':')); }

bhttp::response<bhttp::string_body> ToBeast(const Response& r, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
  res.set(bhttp::field::server, "cairn-vault");
  res.set(bhttp::field::content_type, r.content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set(bhttp::field::strict_transport_security, "max-age=31536000");
  // A handler's header replaces a default of the same name (the console's
  // files are cacheable); Set-Cookie may repeat.
  for (const auto& [k, v] : r.headers) {
    if (res.find(k) != res.end() && !boost::beast::iequals(k, "Set-Cookie")) {
      res.set(k, v);
    } else {
      res.insert(k, v);
    }
  }
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

std::string SubjectField(X509* cert, int nid) {
  char text[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, text, sizeof(text) - 1);
  return n > 0 ? std::string(text, static_cast<size_t>(n)) : std::string();
}

// The verified peer certificate, if any: CN, OU, and the fingerprint of the
// CA its verified chain ends in.
Request::ClientCertificate VerifiedClient(SSL* ssl) {
  Request::ClientCertificate c;
  if (SSL_get_verify_result(ssl) != X509_V_OK) return c;
  X509* cert = SSL_get0_peer_certificate(ssl);
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
  if (cert == nullptr || chain == nullptr || sk_X509_num(chain) == 0) return c;
  X509* root = sk_X509_value(chain, sk_X509_num(chain) - 1);
  BIO* bio = BIO_new(BIO_s_mem());
  std::string root_pem;
  if (bio != nullptr && PEM_write_bio_X509(bio, root) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    root_pem.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  auto fingerprint = crypto::CertificateFingerprint(root_pem);
  if (!fingerprint.ok()) return c;
  c.cn = SubjectField(cert, NID_commonName);
  c.ou = SubjectField(cert, NID_organizationalUnitName);
  c.root_fingerprint = *fingerprint;
  return c;
}

}  // namespace

Response Server::State::Handle(Request request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    spdlog::error("REST {} {}: handler threw: {}", request.method, request.target.path, e.what());
  } catch (...) {
    spdlog::error("REST {} {}: handler threw", request.method, request.target.path);
  }
  return JsonError(500, "internal", "the vault could not answer; see its log");
}

asio::awaitable<void> Server::State::Serve(std::shared_ptr<tcp::socket> socket,
                                           std::string remote) {
  auto self = shared_from_this();
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(*socket)), tls);
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(options.handshake_timeout);
  auto [hs_ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kAwait);
  if (!hs_ec) {
    const Request::ClientCertificate client = options.client_ca_pem.empty()
                                                  ? Request::ClientCertificate{}
                                                  : VerifiedClient(stream.native_handle());
    beast::flat_buffer buffer;
    bool first = true;
    for (;;) {
      BeastParser parser;
      ApplyLimits(parser, options.limits);
      // Quiet between requests up to idle_timeout, then the request itself
      // within request_timeout of its start.
      lowest.expires_after(first ? options.request_timeout : options.idle_timeout);
      auto [hdr_ec, hdr_n] = co_await bhttp::async_read_header(stream, buffer, parser, kAwait);
      (void)hdr_n;
      Response error;
      bool fail = false;
      if (hdr_ec == bhttp::error::end_of_stream || hdr_ec == asio::ssl::error::stream_truncated ||
          (hdr_ec && buffer.size() == 0 && !first)) {
        break;
      }
      if (!hdr_ec) {
        lowest.expires_after(options.request_timeout);
        auto [body_ec, body_n] = co_await bhttp::async_read(stream, buffer, parser, kAwait);
        (void)body_n;
        hdr_ec = body_ec;
      }
      if (hdr_ec) {
        fail = true;
        error = ReadError(hdr_ec, options.limits);
      }
      first = false;
      const auto& req = parser.get();
      const unsigned version = fail ? 11 : req.version();
      bool keep_alive = !fail && req.keep_alive();
      Response response;
      if (fail) {
        response = error;
      } else {
        auto parsed = ToRequest(req);
        if (auto* bad = std::get_if<Response>(&parsed)) {
          response = std::move(*bad);
          keep_alive = false;
        } else {
          Request& r = std::get<Request>(parsed);
          r.remote = remote;
          r.client_certificate = client;
          response = co_await net::OnPool(pool, [&] { return Handle(std::move(r)); });
        }
      }
      lowest.expires_after(options.request_timeout);
      auto res = ToBeast(response, version, keep_alive);
      auto [wr_ec, wr_n] = co_await bhttp::async_write(stream, res, kAwait);
      (void)wr_n;
      if (wr_ec || !keep_alive || stopping) break;
    }
    lowest.expires_after(std::chrono::seconds(2));
    (void)co_await stream.async_shutdown(kAwait);
  }
  lowest.close();
  std::lock_guard<std::mutex> lock(mu);
  --connections;
  if (--per_address[AddressOf(remote)] == 0) per_address.erase(AddressOf(remote));
  live.erase(socket);
}

asio::awaitable<void> Server::State::Accept() {
  auto self = shared_from_this();
  while (!stopping) {
    auto socket = std::make_shared<tcp::socket>(io);
    auto [ec] = co_await acceptor.async_accept(*socket, kAwait);
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) break;
      spdlog::warn("REST listener: accept failed: {}", ec.message());
      continue;
    }
    const std::string remote = Remote(*socket);
    bool admitted = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      size_t& mine = per_address[AddressOf(remote)];
      if (connections < options.max_connections && mine < options.max_connections_per_address) {
        ++connections;
        ++mine;
        live.insert(socket);
        admitted = true;
      } else if (mine == 0) {
        per_address.erase(AddressOf(remote));
      }
    }
    if (!admitted) {
      // No TLS spent on a flood: the connection is closed at once.
      spdlog::warn("REST listener: refusing {}: too many connections", remote);
      boost::system::error_code ignored;
      socket->close(ignored);
      continue;
    }
    asio::co_spawn(asio::make_strand(io), Serve(socket, remote), asio::detached);
  }
}

Server::Server(asio::io_context& io, ServerOptions options, Handler handler)
    : state_(std::make_shared<State>(io, std::move(options), std::move(handler))) {}

Server::~Server() { state_->blocking.Stop(); }

Result<uint16_t> Server::Start() {
  State& s = *state_;
  CAIRN_RETURN_IF_ERROR(s.blocking.status());
  try {
    s.tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::no_tlsv1_2);
    s.tls.use_certificate_chain(asio::buffer(s.options.certificate_chain_pem));
    s.tls.use_private_key(asio::buffer(s.options.private_key_pem), asio::ssl::context::pem);
    if (!s.options.client_ca_pem.empty()) {
      s.tls.add_certificate_authority(asio::buffer(s.options.client_ca_pem));
      // Asked for, not required: a password login needs none.
      s.tls.set_verify_mode(asio::ssl::verify_peer);
      s.tls.set_verify_callback([](bool preverified, asio::ssl::verify_context&) {
        (void)preverified;
        return true;  // judged per request (ClientCn reads the verify result)
      });
      // With peer verification on, OpenSSL refuses to resume a session
      // (a browser's second, parallel connection) unless the context names
      // its sessions: without this, every resumption fails the handshake.
      static constexpr unsigned char kSessionContext[] = "cairn-http";
      SSL_CTX_set_session_id_context(s.tls.native_handle(), kSessionContext,
                                     sizeof(kSessionContext) - 1);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("REST listener TLS: ") + e.what());
  }
  CAIRN_ASSIGN_OR_RETURN(net::HostPort hp, net::ParseHostPort(s.options.listen));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp.host.empty() ? "0.0.0.0" : hp.host, ec);
  if (ec) return Status::InvalidArgument("--http " + s.options.listen + ": not a numeric address");
  tcp::endpoint ep(address, hp.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("REST listener on " + s.options.listen + ": " + ec.message());
  const uint16_t port = s.acceptor.local_endpoint().port();
  asio::co_spawn(s.io, s.Accept(), asio::detached);
  return port;
}

asio::awaitable<void> Server::Stop() {
  State& s = *state_;
  s.stopping = true;
  boost::system::error_code ec;
  s.acceptor.close(ec);
  std::set<std::shared_ptr<tcp::socket>> live;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    live = s.live;
  }
  for (const auto& socket : live) {
    asio::post(socket->get_executor(), [socket] {
      boost::system::error_code ignored;
      socket->cancel(ignored);
    });
  }
  co_return;
}

}  // namespace cairn::http
