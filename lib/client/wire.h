// Reading what a client's conversation with the vault expects next.
#ifndef CAIRN_LIB_CLIENT_WIRE_H_
#define CAIRN_LIB_CLIENT_WIRE_H_

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>

#include "lib/base/status.h"
#include "lib/net/connection.h"
#include "lib/proto/frame.h"

namespace cairn::client {

// Reads frames until one of type `want` arrives, within `deadline` per
// frame. A Ping is answered with a Pong on the way. An Error frame becomes
// its Status ("vault: <message>", code as sent); any other type is a
// protocol violation (InvalidArgument). Must not overlap another read or
// write on `conn` (it may write a Pong).
boost::asio::awaitable<Result<Bytes>> ReadExpected(net::Connection& conn, proto::MessageType want,
                                                   std::chrono::milliseconds deadline);

// The host name of this machine (gethostname), in lower case; "localhost"
// if unknown.
std::string LocalHostName();

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_WIRE_H_
