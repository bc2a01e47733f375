#include "lib/client/wire.h"

#include <unistd.h>

#include <cctype>
#include <string>

#include "lib/proto/messages.h"

namespace cairn::client {

boost::asio::awaitable<Result<UninitBytes>> ReadExpected(net::Connection& conn,
                                                         proto::MessageType want,
                                                         std::chrono::milliseconds deadline) {
  while (true) {
    Result<net::Frame> frame = co_await conn.ReadFrame(deadline);
    if (!frame.ok()) co_return frame.status();
    if (frame->type == want) co_return std::move(frame->payload);
    if (frame->type == proto::MessageType::kPing) {
      Result<proto::Ping> ping = proto::Ping::Decode(frame->payload);
      if (!ping.ok()) co_return ping.status();
      Bytes pong = proto::Pong{ping->nonce}.Encode();
      Status s = co_await conn.WriteFrame(proto::MessageType::kPong, pong);
      if (!s.ok()) co_return s;
      continue;
    }
    if (frame->type == proto::MessageType::kPong) continue;  // answer to our keep-alive
    if (frame->type == proto::MessageType::kError) {
      Result<proto::Error> error = proto::Error::Decode(frame->payload);
      if (!error.ok()) co_return error.status();
      Status s = error->ToStatus();
      co_return Status(s.code(), "vault: " + s.message(), s.retryable());
    }
    co_return Status::InvalidArgument(std::string("vault sent ") +
                                      std::string(proto::MessageTypeName(frame->type)) + " where " +
                                      std::string(proto::MessageTypeName(want)) + " was expected");
  }
}

Status LostConnection(const Status& cause, std::string_view peer, const std::string& address,
                      std::string_view next) {
  std::string_view what = cause.message();
  const std::string named = "vault " + address + ": ";
  if (what.starts_with(named)) what.remove_prefix(named.size());
  std::string message = "lost the connection to ";
  message.append(peer).append(" at ").append(address).append(" (").append(what).append("); ");
  message.append(next);
  return Status(cause.code(), message, cause.retryable());
}

std::string LocalHostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string name = buf;
  // Host names are case-blind; Cairn's name rule keeps them in lower case.
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace cairn::client
