// Private to lib/net: the one place where an Asio/Boost error_code becomes a
// Status. errno values go on to ErrnoToStatus(); TLS errors are classified
// here by their OpenSSL reason.
#ifndef CAIRN_LIB_NET_ASIO_ERROR_H_
#define CAIRN_LIB_NET_ASIO_ERROR_H_

#include <boost/system/error_code.hpp>
#include <string_view>

#include "lib/base/status.h"

namespace cairn::net::internal {

// Maps `ec` to a Status:
//  - end of stream (with or without TLS close_notify): Unavailable
//    "peer closed";
//  - operation_aborted: Cancelled (callers that armed a deadline replace it
//    with Unavailable "<what> deadline exceeded");
//  - a refused or failed certificate verification, on either side (local
//    verify failure or the peer's alert: bad/unknown/revoked/expired
//    certificate, unknown CA, certificate required, access denied):
//    PermissionDenied;
//  - a protocol version the other side refuses: InvalidArgument;
//  - other TLS errors (garbage, a non-TLS peer): InvalidArgument;
//  - system errors: ErrnoToStatus (refused/reset connections are retryable
//    Unavailable there); name resolution failures: Unavailable.
// The message is "context: <reason>". ec must be an error.
Status AsioErrorToStatus(const boost::system::error_code& ec, std::string_view context);

}  // namespace cairn::net::internal

#endif  // CAIRN_LIB_NET_ASIO_ERROR_H_
