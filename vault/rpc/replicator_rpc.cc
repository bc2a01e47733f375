// The replicator role of doc/protocol.md ("Replication"): a DR site pulls
// every department's snapshots, read-only. Decode, ask VaultService, reply.
#include <spdlog/spdlog.h>

#include "lib/net/on_pool.h"
#include "vault/rpc/connection.h"

namespace cairn::vault {

using net::OnPool;

namespace asio = boost::asio;
using proto::MessageType;
using rpc::Send;
using rpc::Violation;

asio::awaitable<Status> VaultServer::ServeReplicator(net::Connection& conn) {
  const Actor replicator = Actor::FromPeer(*conn.peer(), 0, conn.remote_endpoint());
  spdlog::info("replicator connected: {}", conn.Describe());
  for (;;) {
    auto frame = co_await conn.ReadFrame();
    if (!frame.ok()) co_return frame.status();
    const ByteView payload = frame->payload;
    switch (frame->type) {
      case MessageType::kPing: {
        auto ping = proto::Ping::Decode(payload);
        if (!ping.ok()) co_return ping.status();
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kPong, proto::Pong{ping->nonce}));
        break;
      }
      case MessageType::kPong:
        break;
      case MessageType::kReplicaSetup: {
        auto req = proto::ReplicaSetup::Decode(payload);
        if (!req.ok()) co_return req.status();
        auto ok =
            co_await OnPool(blocking_, [&] { return service_->ReplicaSetup(replicator, *req); });
        Status s = co_await rpc::Reply(conn, MessageType::kReplicaSetupOk, ok);
        if (ok.ok()) {
          for (auto& d : ok->departments) SecureZero(d.keys.data(), d.keys.size());
        }
        CAIRN_CO_RETURN_IF_ERROR(s);
        break;
      }
      case MessageType::kReplicaList:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::ReplicaList>(
            conn, blocking_, payload, MessageType::kReplicaSnapshots,
            [&](const auto& req) { return service_->ReplicaList(req); }));
        break;
      case MessageType::kGetManifest:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::GetManifest>(
            conn, blocking_, payload, MessageType::kManifest,
            [&](const auto& req) { return service_->GetManifest(req); }));
        break;
      case MessageType::kGetReplicaRecords:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::GetReplicaRecords>(
            conn, blocking_, payload, MessageType::kRecords,
            [&](const auto& req) { return service_->ReadReplicaRecords(req); }));
        break;
      case MessageType::kGetReplicaOrder:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::GetReplicaOrder>(
            conn, blocking_, payload, MessageType::kReplicaOrder,
            [&](const auto& req) { return service_->ReadReplicaOrder(req); }));
        break;
      default:
        co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                            " is not allowed for the replicator role");
    }
  }
}

}  // namespace cairn::vault
