// The connection-side state the vault's protocol handlers share. Private to
// vault/rpc/.
#ifndef CAIRN_VAULT_RPC_CONNECTION_H_
#define CAIRN_VAULT_RPC_CONNECTION_H_

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>

#include "lib/net/connection.h"
#include "lib/net/on_pool.h"
#include "lib/net/write_gate.h"
#include "lib/proto/messages.h"
#include "vault/rpc/server.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

using net::OnPool;

// One authenticated agent connection (agent or restore role).
struct VaultServer::AgentConnection {
  uint64_t id = 0;
  std::shared_ptr<net::Connection> conn;
  Actor actor;  // the agent: serial, host, department, address
  uint64_t hello_ok_mono = 0;
  // Hello named the restore role: reads only (snapshots, records, deltas),
  // and never a job link.
  bool read_only = false;
  // A restore connection sent restore_begin (strand only): it may read.
  bool restore_announced = false;
  net::WriteGate gate;  // strand only
  bool closed = false;  // strand only; set under the gate before Close()
  // Guarded by VaultServer::connections_mu_:
  bool pinged = false;        // sent ping before any session_begin
  bool in_session = false;    // sent session_begin: a backup connection
  uint64_t job = 0;           // job sent on this client, no job_done yet
  bool job_is_drill = false;  // that job is a restore drill
};

namespace rpc {

// Writes one frame on a client through its gate (the dispatcher writes too).
boost::asio::awaitable<Status> WriteLocked(VaultServer::AgentConnection& client,
                                           proto::MessageType type, ByteView payload);

// The bytes a message goes out as: its encoding, or a payload built in
// place (proto::RecordsPayload) as it stands.
template <typename T>
Bytes WireForm(const T& message) {
  return message.Encode();
}
inline ByteView WireForm(const proto::RecordsPayload& message) { return message.payload(); }

template <typename T>
boost::asio::awaitable<Status> Send(VaultServer::AgentConnection& client, proto::MessageType type,
                                    const T& message) {
  const auto payload = WireForm(message);
  co_return co_await WriteLocked(client, type, payload);
}

template <typename T>
boost::asio::awaitable<Status> Send(net::Connection& conn, proto::MessageType type,
                                    const T& message) {
  const auto payload = WireForm(message);
  co_return co_await conn.WriteFrame(type, payload);
}

// Sends an Error frame; the caller decides whether to close.
boost::asio::awaitable<Status> SendError(VaultServer::AgentConnection& client, const Status& s);
boost::asio::awaitable<Status> SendError(net::Connection& conn, const Status& s);

// Sends a reply: the message when `result` holds one, else the Error frame
// of its status. A refused request is an answer, not the end of the
// connection: only a failed write is returned.
template <typename Conn, typename T>
boost::asio::awaitable<Status> Reply(Conn& conn, proto::MessageType type, const Result<T>& result) {
  if (!result.ok()) co_return co_await SendError(conn, result.status());
  co_return co_await Send(conn, type, *result);
}

inline Status Violation(std::string_view what) { return Status::InvalidArgument(what); }

// The common shape of a request: decode `payload` as Request (a malformed
// one is a violation, returned), run `work(request)` on the blocking pool,
// and Reply with its result.
template <typename Request, typename Conn, typename F>
boost::asio::awaitable<Status> Answer(Conn& conn, boost::asio::thread_pool& pool, ByteView payload,
                                      proto::MessageType reply_type, F work) {
  auto request = Request::Decode(payload);
  if (!request.ok()) co_return request.status();
  auto result = co_await OnPool(pool, [&] { return work(*request); });
  co_return co_await Reply(conn, reply_type, result);
}

}  // namespace rpc
}  // namespace cairn::vault

#endif  // CAIRN_VAULT_RPC_CONNECTION_H_
