// Reading what a client's conversation with the vault expects next.
#ifndef CAIRN_LIB_CLIENT_WIRE_H_
#define CAIRN_LIB_CLIENT_WIRE_H_

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "lib/base/status.h"
#include "lib/net/connection.h"
#include "lib/proto/frame.h"

namespace cairn::client {

// Reads frames until one of type `want` arrives, within `deadline` per
// frame. A Ping is answered with a Pong on the way. An Error frame becomes
// its Status ("vault: <message>", code as sent); any other type is a
// protocol violation (InvalidArgument). Must not overlap another read or
// write on `conn` (it may write a Pong).
boost::asio::awaitable<Result<UninitBytes>> ReadExpected(net::Connection& conn,
                                                         proto::MessageType want,
                                                         std::chrono::milliseconds deadline);

// What a client reports when its connection to a vault broke, said the same
// way by every client: which vault (`peer`: "the vault", "the source
// vault"), at which address, what went wrong (`cause`'s message, less a
// leading "vault ADDRESS: " that would name it twice) and what becomes of
// the work (`next`). Keeps `cause`'s code and retryability.
Status LostConnection(const Status& cause, std::string_view peer, const std::string& address,
                      std::string_view next);

// The host name of this machine (gethostname), in lower case; "localhost"
// if unknown.
std::string LocalHostName();

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_WIRE_H_
