// The agent and restore roles of doc/protocol.md: one department, from the
// certificate. Decode, ask VaultService, reply.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "lib/net/on_pool.h"
#include "vault/rpc/connection.h"

namespace cairn::vault {

using net::OnPool;

namespace asio = boost::asio;
using proto::MessageType;
using rpc::Reply;
using rpc::Send;
using rpc::SendError;
using rpc::Violation;

namespace {

// A batch of put_record frames handed to the pool at once: at most this
// many records, or this many bytes (one frame more at most).
constexpr size_t kPutBatchRecords = 256;
constexpr size_t kPutBatchBytes = 4u << 20;

// What a connection in the restore role may send.
bool IsRestoreMessage(MessageType type) {
  switch (type) {
    case MessageType::kPing:
    case MessageType::kPong:
    case MessageType::kListSnapshots:
    case MessageType::kRestoreBegin:
    case MessageType::kDrillReport:
    case MessageType::kGetRecords:
    case MessageType::kGetDelta:
      return true;
    default:
      return false;
  }
}

// After a fatal error, keep reading (and dropping) what the client still
// streams, for a few seconds, instead of closing at once: a client that is
// busy writing records would otherwise see only "broken pipe", not the
// vault's reason, which it reads with its next reply.
asio::awaitable<Status> FailAndLinger(VaultServer::AgentConnection& client, Status s,
                                      io::Env* env) {
  (void)co_await SendError(client, s);
  const uint64_t until = env->MonotonicMicros() + 5'000'000;
  while (env->MonotonicMicros() < until) {
    auto f = co_await client.conn->ReadFrame(std::chrono::seconds(2));
    if (!f.ok()) break;
  }
  co_return s;
}

// What a failed put_record or put_delta_record ends in. A malformed or
// forged record ends the connection with its reason; out of space or an
// I/O error is told to the agent and ends the session (nothing since its
// last flush is kept).
asio::awaitable<Status> RecordNotStored(VaultServer::AgentConnection& client, Status s,
                                        std::string_view what, io::Env* env) {
  if (s.IsCorruption() || s.IsInvalidArgument()) co_return s.WithContext(std::string(what));
  co_return co_await FailAndLinger(client, s, env);
}

}  // namespace

asio::awaitable<Status> VaultServer::ServeAgent(AgentConnection& client, const Department& dept) {
  net::Connection& conn = *client.conn;
  const Actor& agent = client.actor;
  std::shared_ptr<BackupSession> session;
  DeltaContext delta;  // the department's keys, opened on the first get_delta
  auto need_session = [&]() -> Status {
    if (!session) return Violation("no session begun on this connection");
    return Status::OK();
  };
  // Consecutive put_record frames are stored in one hand-off to the pool
  // (a thread switch each way costs more than storing a small record): a
  // batch is stored when it is full, and before any other frame is
  // handled, so every reply reflects every record sent before its request.
  std::vector<UninitBytes> puts;
  size_t put_bytes = 0;
  auto store_puts = [&]() -> asio::awaitable<Status> {
    if (puts.empty()) co_return Status::OK();
    Status s = co_await OnPool(blocking_, [&] {
      for (const UninitBytes& record : puts) {
        CAIRN_RETURN_IF_ERROR(service_->PutRecord(agent, record));
      }
      return Status::OK();
    });
    puts.clear();
    put_bytes = 0;
    if (!s.ok())
      co_return co_await RecordNotStored(client, s, "put_record", service_->vault()->env());
    co_return Status::OK();
  };
  for (;;) {
    auto frame = co_await conn.ReadFrame();
    if (!frame.ok()) co_return frame.status();
    if (frame->type == MessageType::kPutRecord && session) {
      put_bytes += frame->payload.size();
      puts.push_back(std::move(frame->payload));
      if (puts.size() >= kPutBatchRecords || put_bytes >= kPutBatchBytes) {
        CAIRN_CO_RETURN_IF_ERROR(co_await store_puts());
      }
      continue;
    }
    CAIRN_CO_RETURN_IF_ERROR(co_await store_puts());
    const ByteView payload = frame->payload;
    if (client.read_only && !IsRestoreMessage(frame->type)) {
      co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                          " is not allowed for the restore role");
    }
    if (client.read_only && !client.restore_announced &&
        (frame->type == MessageType::kGetRecords || frame->type == MessageType::kGetDelta)) {
      co_return Violation("a restore sends restore_begin before it reads records");
    }
    switch (frame->type) {
      case MessageType::kPing: {
        auto ping = proto::Ping::Decode(payload);
        if (!ping.ok()) co_return ping.status();
        {
          std::lock_guard<std::mutex> lock(connections_mu_);
          if (!client.in_session) client.pinged = true;
        }
        CAIRN_CO_RETURN_IF_ERROR(
            co_await Send(client, MessageType::kPong, proto::Pong{ping->nonce}));
        break;
      }
      case MessageType::kJobDone:
        CAIRN_CO_RETURN_IF_ERROR(co_await OnJobDone(client, payload));
        break;
      case MessageType::kJobProgress: {
        auto progress = proto::JobProgress::Decode(payload);
        if (!progress.ok()) co_return progress.status();
        bool running = false;
        {
          std::lock_guard<std::mutex> lock(connections_mu_);
          running = client.job == progress->job_id;
        }
        // One that crossed its job_done on the wire is dropped.
        if (running) service_->NoteJobProgress(*progress);
        break;
      }
      case MessageType::kPong:
        break;
      case MessageType::kSessionBegin: {
        auto begin = proto::SessionBegin::Decode(payload);
        if (!begin.ok()) co_return begin.status();
        bool job_running = false;
        {
          std::lock_guard<std::mutex> lock(connections_mu_);
          job_running = client.job != 0;
          client.in_session = true;
        }
        if (job_running) co_return Violation("session_begin on a client with a job running");
        bool resumed = false;
        auto begun = co_await OnPool(
            blocking_, [&] { return service_->BeginSession(agent, *begin, &resumed); });
        if (!begun.ok()) {
          (void)co_await SendError(client, begun.status());
          co_return begun.status();
        }
        session = *begun;
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(client, MessageType::kSessionBegun,
                                               proto::SessionBegun{session->id(), resumed}));
        break;
      }
      case MessageType::kHaveChunks:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::HaveChunks>(
            client, blocking_, payload, MessageType::kHaveChunksReply,
            [&](const auto& ask) -> Result<proto::HaveChunksReply> {
              CAIRN_ASSIGN_OR_RETURN(std::vector<bool> present,
                                     service_->HaveChunks(agent, ask.ids));
              return proto::HaveChunksReply{ask.request_id, std::move(present)};
            }));
        break;
      case MessageType::kPutRecord:  // batched above when a session is begun
        co_return need_session();
      case MessageType::kPutDeltaRecord: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto put = proto::PutDeltaRecord::Decode(payload);
        if (!put.ok()) co_return put.status();
        Status s = co_await OnPool(
            blocking_, [&] { return service_->PutRecord(agent, put->record, &put->base); });
        if (!s.ok()) {
          co_return co_await RecordNotStored(client, s, "put_delta_record",
                                             service_->vault()->env());
        }
        break;
      }
      case MessageType::kFlush: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto flush = proto::Flush::Decode(payload);
        if (!flush.ok()) co_return flush.status();
        auto flushed =
            co_await OnPool(blocking_, [&] { return service_->Flush(*session, flush->sequence); });
        if (flushed.status().IsInvalidArgument()) co_return flushed.status();
        if (!flushed.ok()) {
          co_return co_await FailAndLinger(client, flushed.status(), service_->vault()->env());
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(client, MessageType::kFlushed, *flushed));
        break;
      }
      case MessageType::kManifestPart: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto part = proto::ManifestPart::Decode(payload);
        if (!part.ok()) co_return part.status();
        CAIRN_CO_RETURN_IF_ERROR(service_->AddManifestPart(*session, *part));
        break;
      }
      case MessageType::kCommit: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto commit = proto::Commit::Decode(payload);
        if (!commit.ok()) co_return commit.status();
        if (commit->session_id != session->id()) co_return Violation("commit for another session");
        auto ok =
            co_await OnPool(blocking_, [&] { return service_->Commit(agent, *session, *commit); });
        CAIRN_CO_RETURN_IF_ERROR(co_await Reply(client, MessageType::kCommitOk, ok));
        break;
      }
      case MessageType::kListSnapshots:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::ListSnapshots>(
            client, blocking_, payload, MessageType::kSnapshotList,
            [&](const auto& ask) { return service_->ListSnapshots(agent, ask.limit); }));
        break;
      case MessageType::kDrillReport:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::DrillReport>(
            client, blocking_, payload, MessageType::kDrillSigned,
            [&](const auto& ask) -> Result<proto::DrillSigned> {
              CAIRN_ASSIGN_OR_RETURN(boost::json::object report,
                                     service_->RecordDrill(agent, ask.json));
              return proto::DrillSigned{boost::json::serialize(report)};
            }));
        break;
      case MessageType::kRestoreBegin:
        if (!client.read_only) co_return Violation("restore_begin is for the restore role");
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::RestoreBegin>(
            client, blocking_, payload, MessageType::kRestoreBegun,
            [&](const auto& ask) -> Result<proto::RestoreBegun> {
              if (Status s = service_->BeginRestore(agent, ask); !s.ok()) return s;
              client.restore_announced = true;  // the strand awaits this
              return proto::RestoreBegun{ask.snapshot_id};
            }));
        break;
      case MessageType::kGetRecords:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::GetRecords>(
            client, blocking_, payload, MessageType::kRecords,
            [&](const auto& ask) { return service_->ReadRecords(dept.id, ask.ids); }));
        break;
      case MessageType::kGetDelta:
        CAIRN_CO_RETURN_IF_ERROR(co_await rpc::Answer<proto::GetDelta>(
            client, blocking_, payload, MessageType::kDelta, [&](const auto& ask) {
              auto reply = service_->ComputeDelta(agent, ask, &delta);
              if (!reply.ok()) {
                spdlog::warn("department {}: get_delta for chunk {} from {} failed: {}", dept.name,
                             ToHex(ask.id), conn.Describe(), reply.status().ToString());
              }
              return reply;
            }));
        break;
      default:
        co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                            " is not allowed from an agent");
    }
  }
}

}  // namespace cairn::vault
