// Helpers shared by the agent's conversations with the vault (enrolment,
// backup sessions): reading the reply a sequence expects.
#ifndef CAIRN_AGENT_WIRE_H_
#define CAIRN_AGENT_WIRE_H_

#include <boost/asio/awaitable.hpp>
#include <chrono>

#include "lib/base/status.h"
#include "lib/net/connection.h"
#include "lib/proto/frame.h"

namespace cairn::agent {

// The software string sent in Hello.
inline constexpr const char* kAgentSoftware = "cairn-agent 0.1.0";

// Reads frames until one of type `want` arrives, within `deadline` per
// frame. A Ping is answered with a Pong on the way. An Error frame becomes
// its Status ("vault: <message>", code as sent); any other type is a
// protocol violation (InvalidArgument). Must not overlap another read or
// write on `conn` (it may write a Pong).
boost::asio::awaitable<Result<Bytes>> ReadExpected(net::Connection& conn, proto::MessageType want,
                                                   std::chrono::milliseconds deadline);

// The host name of this machine (gethostname), "localhost" if unknown.
std::string LocalHostName();

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_WIRE_H_
