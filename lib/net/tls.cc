#include "lib/net/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <exception>
#include <string>
#include <utility>

#include "lib/base/bytes.h"
#include "lib/crypto/openssl_util.h"

namespace cairn::net {
namespace {

namespace asio = boost::asio;

// Never prompt on a terminal for a passphrase: an encrypted key is an error.
int NoPassword(char*, int, int, void*) { return -1; }

Status Checked(const boost::system::error_code& ec, std::string_view what) {
  if (!ec) return Status::OK();
  crypto::internal::ClearOpenSslErrors();
  return Status::InvalidArgument(std::string(what) + ": " + ec.message());
}

// Runs at every certificate of the peer's chain, after OpenSSL's own check
// (`preverified`). At the leaf it reads the Cairn identity and asks
// is_revoked. Never throws: it runs inside OpenSSL.
bool VerifyPeer(bool preverified, asio::ssl::verify_context& verify, bool server,
                const std::function<bool(const crypto::PeerIdentity&)>& is_revoked) {
  X509_STORE_CTX* store = verify.native_handle();
  if (!preverified) return false;
  if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
  try {
    X509* cert = X509_STORE_CTX_get_current_cert(store);
    unsigned char* der = nullptr;
    int len = i2d_X509(cert, &der);
    if (len <= 0) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return false;
    }
    Result<crypto::PeerIdentity> id =
        crypto::ParseIdentityDer(ByteView(der, static_cast<size_t>(len)));
    OPENSSL_free(der);
    if (!id.ok()) {
      // The vault authorises clients by their identity: one without is no
      // Cairn peer. A vault certificate from a city CA may lack it; the chain
      // and the host name were checked, which is what a client needs.
      if (!server) return true;
      X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
      return false;
    }
    if (is_revoked && is_revoked(*id)) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REVOKED);
      return false;
    }
    return true;
  } catch (...) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return false;
  }
}

Result<TlsContext> MakeContext(const TlsOptions& options, bool server) {
  if (options.ca_pem.empty()) return Status::InvalidArgument("TLS: ca_pem is required");
  // asio silently accepts a CA buffer holding no certificate: check first.
  Result<std::string> ca_check = crypto::CertificateFingerprint(options.ca_pem);
  if (!ca_check.ok()) return ca_check.status().WithContext("TLS ca_pem");
  const bool has_cert = !options.certificate_pem.empty();
  if (has_cert != !options.private_key_pem.empty()) {
    return Status::InvalidArgument("TLS: certificate_pem and private_key_pem go together");
  }
  if (server && !has_cert) {
    return Status::InvalidArgument("TLS: a server needs certificate_pem and private_key_pem");
  }

  try {
    auto ctx = std::make_shared<asio::ssl::context>(server ? asio::ssl::context::tls_server
                                                           : asio::ssl::context::tls_client);
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
      return crypto::internal::OpenSslError("TLS: restrict to TLS 1.3");
    }
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    SSL_CTX_set_default_passwd_cb(native, NoPassword);
    if (server) {
      // No resumption: every handshake verifies the certificate afresh.
      SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
      if (SSL_CTX_set_num_tickets(native, 0) != 1) {
        return crypto::internal::OpenSslError("TLS: disable session tickets");
      }
    }

    boost::system::error_code ec;
    ctx->add_certificate_authority(asio::buffer(options.ca_pem), ec);
    CAIRN_RETURN_IF_ERROR(Checked(ec, "TLS ca_pem"));
    if (has_cert) {
      ctx->use_certificate_chain(asio::buffer(options.certificate_pem), ec);
      CAIRN_RETURN_IF_ERROR(Checked(ec, "TLS certificate_pem"));
      ctx->use_private_key(asio::buffer(options.private_key_pem), asio::ssl::context::pem, ec);
      CAIRN_RETURN_IF_ERROR(Checked(ec, "TLS private_key_pem"));
      if (SSL_CTX_check_private_key(native) != 1) {
        crypto::internal::ClearOpenSslErrors();
        return Status::InvalidArgument("TLS: private key does not match the certificate");
      }
    }

    int mode = asio::ssl::verify_peer;
    if (!server || options.client_certificate == ClientCertificate::kRequired) {
      mode |= asio::ssl::verify_fail_if_no_peer_cert;
    }
    ctx->set_verify_mode(mode, ec);
    CAIRN_RETURN_IF_ERROR(Checked(ec, "TLS verify mode"));
    ctx->set_verify_callback(
        [server, is_revoked = options.is_revoked](bool preverified,
                                                  asio::ssl::verify_context& verify) {
          return VerifyPeer(preverified, verify, server, is_revoked);
        },
        ec);
    CAIRN_RETURN_IF_ERROR(Checked(ec, "TLS verify callback"));
    return ctx;
  } catch (const std::exception& e) {
    crypto::internal::ClearOpenSslErrors();
    return Status::IOError(std::string("TLS context: ") + e.what());
  }
}

}  // namespace

Result<TlsContext> MakeServerContext(const TlsOptions& options) {
  return MakeContext(options, /*server=*/true);
}

Result<TlsContext> MakeClientContext(const TlsOptions& options) {
  return MakeContext(options, /*server=*/false);
}

Status ExpectServerName(ssl_st* ssl, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      return Status::InvalidArgument("cannot verify IP " + host);
    }
  } else if (SSL_set1_host(ssl, host.c_str()) != 1 ||
             SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
    return Status::InvalidArgument("cannot verify host " + host);
  }
  return Status::OK();
}

}  // namespace cairn::net
