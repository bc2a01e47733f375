#include "lib/net/asio_error.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <string>

#include "lib/base/errno.h"

namespace cairn::net::internal {
namespace {

namespace asio = boost::asio;

std::string Join(std::string_view context, std::string_view reason) {
  std::string msg(context);
  msg += ": ";
  msg += reason;
  return msg;
}

Status TlsErrorToStatus(int reason, const std::string& msg) {
  switch (reason) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return Status::Unavailable("peer closed");
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return Status::PermissionDenied(msg);
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
      return Status::InvalidArgument(msg + " (Cairn speaks TLS 1.3 only)");
    default:
      return Status::InvalidArgument(msg);
  }
}

}  // namespace

Status AsioErrorToStatus(const boost::system::error_code& ec, std::string_view context) {
  if (!ec) return Status::IOError(Join(context, "unexpected success"));
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return Status::Unavailable("peer closed");
  }
  if (ec == asio::error::operation_aborted) return Status::Cancelled(Join(context, "cancelled"));
  if (ec.category() == asio::error::get_ssl_category()) {
    // The value is OpenSSL's packed error code; the reason tells what failed.
    unsigned long err = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
    return TlsErrorToStatus(ERR_GET_REASON(err), Join(context, ec.message()));
  }
  if (ec.category() == asio::error::get_netdb_category() ||
      ec.category() == asio::error::get_addrinfo_category()) {
    return Status::Unavailable(Join(context, ec.message()));
  }
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return ErrnoToStatus(ec.value(), context);
  }
  return Status::IOError(Join(context, ec.message()));
}

}  // namespace cairn::net::internal
