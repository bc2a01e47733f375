#include "vault/rpc/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lib/net/address.h"
#include "lib/net/on_pool.h"
#include "lib/net/tls.h"
#include "vault/rpc/connection.h"

namespace cairn::vault {

using net::OnPool;

namespace asio = boost::asio;
using proto::MessageType;
using rpc::Send;
using rpc::SendError;
using rpc::Violation;

namespace rpc {

asio::awaitable<Status> WriteLocked(VaultServer::AgentConnection& client, MessageType type,
                                    ByteView payload) {
  co_await client.gate.Lock();
  // Not a conditional expression: g++ 12 mishandles co_await inside one.
  Status s = Status::Unavailable("connection closed");
  if (!client.closed) s = co_await client.conn->WriteFrame(type, payload);
  client.gate.Unlock();
  co_return s;
}

asio::awaitable<Status> SendError(VaultServer::AgentConnection& client, const Status& s) {
  Bytes payload = proto::Error::FromStatus(s).Encode();
  co_return co_await WriteLocked(client, MessageType::kError, payload);
}

asio::awaitable<Status> SendError(net::Connection& conn, const Status& s) {
  Bytes payload = proto::Error::FromStatus(s).Encode();
  co_return co_await conn.WriteFrame(MessageType::kError, payload);
}

}  // namespace rpc

namespace {
// The highest version both ends speak (the caller checked there is one).
uint16_t Negotiated(const proto::Hello& hello) {
  return std::min(hello.max_version, proto::kProtocolVersion);
}
}  // namespace

VaultServer::VaultServer(VaultService* service, ServeOptions options)
    : service_(service),
      options_(std::move(options)),
      blocking_pool_("the vault's store threads", options_.blocking_threads),
      blocking_(blocking_pool_.pool()) {}

VaultServer::~VaultServer() { blocking_pool_.Stop(); }

uint64_t VaultServer::MonoMicros() const { return service_->vault()->env()->MonotonicMicros(); }

Result<uint16_t> VaultServer::Start(asio::io_context& io) {
  CAIRN_RETURN_IF_ERROR(blocking_pool_.status());
  CAIRN_RETURN_IF_ERROR(service_->PrepareToServe());
  const CertificateAuthority& pki = service_->vault()->pki();
  net::TlsOptions tls;
  // Its own CA, plus a replication source's (whose agents fail over here).
  tls.ca_pem = pki.trusted_ca_pem();
  // Leaf then CA: an enrolling agent pins the CA it finds in this chain.
  tls.certificate_pem = pki.served_chain_pem();
  tls.private_key_pem = pki.tls_private_key_pem();
  tls.client_certificate = net::ClientCertificate::kOptional;  // enrolment has none
  VaultService* service = service_;
  tls.is_revoked = [service](const crypto::PeerIdentity& peer) {
    return service->IsRevokedOrUnknown(peer.serial_hex);
  };
  CAIRN_ASSIGN_OR_RETURN(net::TlsContext ctx, net::MakeServerContext(tls));
  net::ServerOptions so;
  so.connection.read_deadline = options_.idle_deadline;
  server_ = std::make_unique<net::Server>(
      io, ctx, [this](std::shared_ptr<net::Connection> c) { return Handle(std::move(c)); }, so);
  CAIRN_ASSIGN_OR_RETURN(uint16_t port, server_->Listen(options_.listen));
  // What agents are told to dial when no addresses are configured: the
  // listen address with its real port, unless it is a wildcard (0.0.0.0
  // names no host to dial); then an agent keeps the address it enrolled with.
  std::string advertised;
  if (auto hp = net::ParseHostPort(options_.listen); hp.ok() && !net::IsWildcardHost(hp->host)) {
    const bool v6 = hp->host.find(':') != std::string::npos;
    advertised = (v6 ? "[" + hp->host + "]" : hp->host) + ":" + std::to_string(port);
  }
  service_->set_advertised_address(advertised);
  server_->Start();
  asio::co_spawn(io, SweepRevoked(), asio::detached);
  asio::co_spawn(io, DispatchJobs(), asio::detached);
  return port;
}

asio::awaitable<void> VaultServer::Stop(std::chrono::milliseconds drain) {
  stopping_ = true;
  {
    // Idle job links have nothing to drain: end them now, so a restart is
    // quick and their agents start reconnecting at once.
    std::lock_guard<std::mutex> lock(connections_mu_);
    for (auto& [id, client] : connections_) {
      if (!client->in_session && client->job == 0) {
        client->conn->Cancel(Status::Unavailable("the vault is shutting down"));
      }
    }
  }
  if (server_) co_await server_->Stop(drain);
  Status s = co_await OnPool(blocking_, [this] { return service_->SealOpenPacks(); });
  if (!s.ok()) spdlog::error("sealing packs at shutdown: {}", s.ToString());
}

asio::awaitable<void> VaultServer::SweepRevoked() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto last_expiry = std::chrono::steady_clock::now();
  auto last_checkpoint = last_expiry;
  while (!stopping_) {
    timer.expires_after(options_.revocation_sweep);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_ || !server_) break;
    size_t cut = server_->Disconnect([this](const crypto::PeerIdentity& peer) {
      return service_->IsRevokedOrUnknown(peer.serial_hex);
    });
    if (cut > 0) spdlog::warn("disconnected {} connection(s) with a revoked certificate", cut);
    if (std::chrono::steady_clock::now() - last_expiry >= options_.session_sweep) {
      last_expiry = std::chrono::steady_clock::now();
      // A connected agent is seen now, however long ago it connected.
      std::vector<std::string> connected;
      {
        std::lock_guard<std::mutex> lock(connections_mu_);
        for (const auto& [id, client] : connections_) connected.push_back(client->actor.name);
      }
      co_await OnPool(blocking_, [&] {
        for (const auto& serial : connected) service_->NoteAgentSeen(serial);
        return 0;
      });
      co_await OnPool(blocking_, [this] {
        service_->ReleaseIdleBuffers();
        return service_->ExpireSessions();
      });
    }
    if (std::chrono::steady_clock::now() - last_checkpoint >= options_.audit_checkpoint) {
      last_checkpoint = std::chrono::steady_clock::now();
      Status s = co_await OnPool(blocking_, [this] { return service_->CheckpointAudit(); });
      if (!s.ok()) spdlog::error("audit checkpoint: {}", s.ToString());
    }
  }
}

asio::awaitable<void> VaultServer::Handle(std::shared_ptr<net::Connection> conn) {
  // Until HelloOk only a small Hello is accepted (doc/protocol.md 4.4).
  auto first = co_await conn->ReadFrame(std::chrono::seconds(10), proto::kMaxHelloPayload);
  const std::string site = service_->vault()->site();
  const uint64_t now = service_->vault()->env()->NowMicros();
  Status result;
  if (!first.ok()) {
    result = first.status();
  } else if (first->type != MessageType::kHello) {
    result = Violation("expected hello, got " + std::string(proto::MessageTypeName(first->type)));
  } else if (auto hello = proto::Hello::Decode(first->payload); !hello.ok()) {
    result = hello.status();
  } else if (hello->min_version > proto::kProtocolVersion ||
             hello->max_version < proto::kMinProtocolVersion) {
    result = Status::InvalidArgument("no common protocol version");
    (void)co_await SendError(*conn, result);
  } else if (hello->role == proto::Role::kEnroll) {
    if (conn->peer().has_value()) {
      result = Status::PermissionDenied("an enrolled peer cannot enrol again");
      (void)co_await SendError(*conn, result);
    } else {
      result = co_await Enroll(*conn, Negotiated(*hello));
    }
  } else if (!conn->peer().has_value()) {
    result = Status::PermissionDenied("this role needs a client certificate (enrol first)");
    (void)co_await SendError(*conn, result);
  } else if (hello->role == proto::Role::kReplicator &&
             conn->peer()->role == crypto::kRoleReplicator) {
    proto::HelloOk ok{Negotiated(*hello), site, now, "", {}};
    result = co_await Send(*conn, MessageType::kHelloOk, ok);
    const std::string serial = conn->peer()->serial_hex;
    co_await OnPool(blocking_, [&] {
      service_->NoteAgentSeen(serial);
      return 0;
    });
    if (result.ok()) result = co_await ServeReplicator(*conn);
  } else if ((hello->role != proto::Role::kAgent && hello->role != proto::Role::kRestore) ||
             conn->peer()->role != crypto::kRoleAgent) {
    result =
        Status::PermissionDenied("role " + std::to_string(static_cast<int>(hello->role)) +
                                 " is not allowed for a certificate of role " + conn->peer()->role);
    (void)co_await SendError(*conn, result);
  } else if (auto dept = service_->AdmitAgent(*conn->peer()); !dept.ok()) {
    result = dept.status();
    (void)co_await SendError(*conn, result);
  } else {
    auto client = std::make_shared<AgentConnection>();
    client->conn = conn;
    client->actor = Actor::FromPeer(*conn->peer(), dept->id, conn->remote_endpoint());
    client->read_only = hello->role == proto::Role::kRestore;
    proto::HelloOk ok{Negotiated(*hello), site, now, dept->name, service_->AgentAddresses()};
    result = co_await Send(*client, MessageType::kHelloOk, ok);
    co_await OnPool(blocking_, [&] {
      service_->NoteAgentSeen(client->actor.name);
      return 0;
    });
    if (result.ok()) {
      {
        std::lock_guard<std::mutex> lock(connections_mu_);
        client->id = next_connection_id_++;
        client->hello_ok_mono = MonoMicros();
        connections_[client->id] = client;
      }
      result = co_await ServeAgent(*client, *dept);
      uint64_t unfinished = 0;
      {
        std::lock_guard<std::mutex> lock(connections_mu_);
        connections_.erase(client->id);
        unfinished = client->job;
      }
      if (unfinished != 0) {
        spdlog::warn(
            "job {}: connection to {} closed before job_done; the job stays sent "
            "until the agent reports it on a later connection",
            unfinished, conn->Describe());
      }
    }
    // A dispatcher write may still be queued on the gate: close after it.
    co_await client->gate.Lock();
    client->closed = true;
    client->gate.Unlock();
  }
  if (!result.ok() && !result.IsCancelled()) {
    bool quiet = result.code() == StatusCode::kUnavailable;  // peer went away
    if (quiet) {
      spdlog::debug("closing {}: {}", conn->Describe(), result.ToString());
    } else {
      spdlog::warn("closing {}: {}", conn->Describe(), result.ToString());
    }
  }
  co_await conn->Close();
}

asio::awaitable<Status> VaultServer::Enroll(net::Connection& conn, uint16_t version) {
  proto::HelloOk ok{
      version, service_->vault()->site(), service_->vault()->env()->NowMicros(), "", {}};
  CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kHelloOk, ok));
  auto frame = co_await conn.ReadFrame(std::chrono::seconds(30), proto::kMaxControlPayload);
  if (!frame.ok()) co_return frame.status();
  if (frame->type != MessageType::kEnrollRequest) co_return Violation("expected enroll_request");
  auto req = proto::EnrollRequest::Decode(frame->payload);
  if (!req.ok()) co_return req.status();
  Actor actor;
  actor.kind = Actor::Kind::kAnonymous;
  actor.address = conn.remote_endpoint();
  auto resp = co_await OnPool(blocking_, [&] { return service_->Enroll(actor, *req); });
  if (!resp.ok()) {
    spdlog::warn("enrolment from {} refused: {}", conn.remote_endpoint(), resp.status().message());
    (void)co_await SendError(conn, resp.status());
    co_return resp.status();
  }
  Status s = co_await Send(conn, MessageType::kEnrollResponse, *resp);
  SecureZero(resp->department_keys.data(), resp->department_keys.size());
  co_return s;
}

// --- Jobs --------------------------------------------------------------------

asio::awaitable<Status> VaultServer::OnJobDone(AgentConnection& client, ByteView payload) {
  auto done = proto::JobDone::Decode(payload);
  if (!done.ok()) co_return done.status();
  {
    std::lock_guard<std::mutex> lock(connections_mu_);
    if (client.job == done->job_id) client.job = 0;
  }
  co_return co_await OnPool(blocking_,
                            [&] { return service_->ReportJobDone(client.actor, *done); });
}

size_t VaultServer::connections() const { return server_ ? server_->active_connections() : 0; }

size_t VaultServer::job_links() {
  std::lock_guard<std::mutex> lock(connections_mu_);
  const uint64_t now = MonoMicros();
  size_t n = 0;
  for (const auto& [id, client] : connections_) n += IsJobLink(*client, now);
  return n;
}

bool VaultServer::IsJobLink(const AgentConnection& client, uint64_t now_mono_micros) const {
  if (client.in_session || client.read_only) return false;
  if (client.pinged) return true;
  const uint64_t idle = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(options_.job_link_idle).count());
  return now_mono_micros - client.hello_ok_mono >= idle;
}

asio::awaitable<void> VaultServer::DispatchJobs() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!stopping_) {
    timer.expires_after(options_.job_poll);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_ || !server_) break;
    {
      // Nothing to do without a job link; skip the catalog read.
      std::lock_guard<std::mutex> lock(connections_mu_);
      if (connections_.empty()) continue;
    }
    co_await OnPool(blocking_, [this] {
      DispatchOnce();
      return 0;
    });
  }
}

void VaultServer::DispatchOnce() {
  auto queued = service_->QueuedJobs();
  if (!queued.ok()) {
    spdlog::error("job dispatcher: reading queued jobs failed: {}", queued.status().ToString());
    return;
  }
  for (const JobRecord& job : *queued) {
    std::shared_ptr<AgentConnection> target;
    {
      std::lock_guard<std::mutex> lock(connections_mu_);
      const uint64_t now = MonoMicros();
      // At most max_running_jobs at once on this vault; the rest wait.
      size_t running = 0;
      for (const auto& [id, client] : connections_) running += client->job != 0;
      if (running >= options_.max_running_jobs) break;
      for (const auto& [id, client] : connections_) {
        if (client->actor.department != job.department_id) continue;
        if (job.agent_serial.empty() ? client->actor.host != job.host
                                     : client->actor.name != job.agent_serial) {
          continue;
        }
        if (!IsJobLink(*client, now)) continue;
        // One job at a time per agent, whichever of its connections carries
        // it; one drill at a time per host, whichever department's agent
        // on it runs it.
        bool busy = false;
        for (const auto& [other_id, other] : connections_) {
          busy |=
              other->job != 0 &&
              (other->actor.name == client->actor.name ||
               (job.kind == 2 && other->job_is_drill && other->actor.host == client->actor.host));
        }
        if (busy) continue;
        target = client;
        break;
      }
      if (target) {
        target->job = job.id;
        target->job_is_drill = job.kind == 2;
      }
    }
    if (!target) continue;  // not connected (or busy): stays queued
    if (Status s = service_->MarkJobSent(job.id, target->actor.name); !s.ok()) {
      std::lock_guard<std::mutex> lock(connections_mu_);
      target->job = 0;
      spdlog::warn("job {}: not sent: {}", job.id, s.ToString());
      continue;
    }
    proto::Job message{job.id,       static_cast<proto::JobKind>(job.kind),
                       job.paths,    job.image,
                       job.excludes, job.zstd_level,
                       job.bandwidth};
    message.snapshot_id = job.read_snapshot;
    message.check = job.drill_check;
    message.check_timeout_seconds = job.drill_check_timeout;
    message.rto_seconds = job.drill_rto;
    message.read_from = job.read_from;
    message.target = job.restore_target;
    message.pit = job.pit;
    message.pre_command = job.pre_command;
    message.post_command = job.post_command;
    message.hook_timeout_seconds = job.hook_timeout;
    message.hook_failure_continue = job.hook_continue;
    asio::co_spawn(target->conn->executor(), SendJob(target, std::move(message)), asio::detached);
  }
}

asio::awaitable<void> VaultServer::SendJob(std::shared_ptr<AgentConnection> client,
                                           proto::Job job) {
  Status s = co_await Send(*client, MessageType::kJob, job);
  if (s.ok()) {
    spdlog::info("job {} sent to {}", job.job_id, client->conn->Describe());
    co_return;
  }
  // The connection is gone; the agent cannot have started the job.
  {
    std::lock_guard<std::mutex> lock(connections_mu_);
    if (client->job == job.job_id) client->job = 0;
  }
  spdlog::warn("job {}: sending to {} failed ({}); queued again", job.job_id,
               client->conn->Describe(), s.ToString());
  Status r = co_await OnPool(blocking_, [&] { return service_->RequeueJob(job.job_id); });
  if (!r.ok()) spdlog::error("job {}: re-queueing failed: {}", job.job_id, r.ToString());
}

}  // namespace cairn::vault
