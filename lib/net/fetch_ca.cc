#include "lib/net/fetch_ca.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <exception>
#include <memory>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/openssl_util.h"
#include "lib/net/address.h"
#include "lib/net/asio_error.h"

namespace cairn::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// PEM of `cert`, or empty on an OpenSSL failure.
std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  std::string out;
  if (PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0) out.assign(data, static_cast<size_t>(len));
  }
  BIO_free(bio);
  return out;
}

std::string DerFingerprint(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return "";
  crypto::Sha256Digest digest = crypto::Sha256(ByteView(der, static_cast<size_t>(len)));
  OPENSSL_free(der);
  return ToHex(digest);
}

asio::awaitable<Result<std::string>> FetchImpl(asio::any_io_executor executor,
                                               const std::string& host_port, std::string pin,
                                               std::chrono::milliseconds deadline) {
  using Clock = std::chrono::steady_clock;
  Result<HostPort> target = ParseHostPort(host_port);
  if (!target.ok()) co_return target.status();
  if (target->host.empty()) co_return Status::InvalidArgument("vault address has no host");
  if (pin.size() != 64 || !FromHex(pin).ok()) {
    co_return Status::InvalidArgument("CA fingerprint must be 64 hex digits");
  }
  std::transform(pin.begin(), pin.end(), pin.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const Clock::time_point until = Clock::now() + deadline;
  auto remaining = [until] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
  };

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
    co_return crypto::internal::OpenSslError("TLS: restrict to TLS 1.3");
  }
  // Deliberately unverified: the only thing taken from this connection is a
  // certificate whose hash matches the pin.
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<tcp::socket> stream(executor, ctx);

  // One timer bounds every step; on expiry it closes the socket, which
  // fails the pending operation.
  auto expired = std::make_shared<bool>(false);
  asio::steady_timer timer(executor, remaining());
  timer.async_wait([expired, &stream](error_code ec) {
    if (ec) return;
    *expired = true;
    error_code ignored;
    stream.lowest_layer().close(ignored);
  });
  auto fail = [&](const error_code& ec, const std::string& what) -> Status {
    if (*expired) return Status::Unavailable(what + " " + host_port + ": deadline exceeded");
    return internal::AsioErrorToStatus(ec, what + " " + host_port);
  };

  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  const asio::ip::address literal = asio::ip::make_address(target->host, ec);
  const bool is_ip = !ec;
  if (is_ip) {
    endpoints.emplace_back(literal, target->port);
  } else {
    tcp::resolver resolver(executor);
    auto [resolve_ec, results] =
        co_await resolver.async_resolve(target->host, std::to_string(target->port), kAwait);
    if (resolve_ec) {
      timer.cancel();
      co_return fail(resolve_ec, "resolve");
    }
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    SSL_set_tlsext_host_name(stream.native_handle(), target->host.c_str());
  }
  auto [connect_ec, endpoint] =
      co_await asio::async_connect(stream.lowest_layer(), endpoints, kAwait);
  if (connect_ec) {
    timer.cancel();
    co_return fail(connect_ec, "connect to");
  }
  auto [hs_ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kAwait);
  if (hs_ec) {
    timer.cancel();
    co_return fail(hs_ec, "TLS handshake with");
  }

  std::string found;
  // On the client side the chain includes the peer's leaf.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(stream.native_handle());
  const int n = chain == nullptr ? 0 : sk_X509_num(chain);
  for (int i = 0; i < n && found.empty(); ++i) {
    X509* cert = sk_X509_value(chain, i);
    if (DerFingerprint(cert) == pin) found = ToPem(cert);
  }

  // Orderly goodbye within what is left of the deadline; its outcome does
  // not matter (we send no frames and expect none).
  if (!*expired) co_await stream.async_shutdown(kAwait);
  timer.cancel();
  error_code ignored;
  stream.lowest_layer().close(ignored);
  crypto::internal::ClearOpenSslErrors();

  if (found.empty()) {
    co_return Status::PermissionDenied("the vault at " + host_port +
                                       " does not present the CA this token was issued by");
  }
  co_return found;
}

}  // namespace

asio::awaitable<Result<std::string>> FetchPinnedCa(asio::any_io_executor executor,
                                                   std::string host_port,
                                                   std::string ca_fingerprint_hex,
                                                   std::chrono::milliseconds deadline) {
  std::string failure;
  try {
    co_return co_await FetchImpl(std::move(executor), host_port, std::move(ca_fingerprint_hex),
                                 deadline);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  co_return Status::IOError("fetch CA from " + host_port + ": " + failure);
}

}  // namespace cairn::net
