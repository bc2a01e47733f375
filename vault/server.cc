#include "vault/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>

#include "lib/chunk/rsync_delta.h"
#include "lib/crypto/pki.h"
#include "lib/crypto/random.h"
#include "lib/net/tls.h"
#include "lib/net/write_gate.h"
#include "lib/proto/messages.h"
#include "lib/repo/record.h"

namespace cairn::vault {

namespace asio = boost::asio;
using proto::MessageType;

constexpr int kAgentCertValidityDays = 825;
constexpr size_t kMaxManifestIds = 64u << 20;  // 64M chunks: 64 TiB at 1 MiB
constexpr uint16_t kProtocolVersion = 1;

// State of one backup session; outlives its connection so that an agent
// whose link dropped can resume it.
struct VaultServer::Session {
  uint64_t id = 0;
  uint32_t department = 0;
  std::string host;
  proto::SessionKind kind = proto::SessionKind::kFiles;
  std::vector<std::string> paths;
  std::vector<crypto::ChunkId> manifest;
  uint64_t last_flush = 0;
  uint64_t records_stored = 0, bytes_stored = 0;
  std::optional<proto::CommitOk> committed;  // commit is idempotent
};

namespace {

uint64_t NowMicros() { return io::Env::Posix()->NowMicros(); }
uint64_t MonoMicros() { return io::Env::Posix()->MonotonicMicros(); }

using net::WriteGate;

}  // namespace

// One authenticated agent connection.
struct VaultServer::Link {
  uint64_t id = 0;
  std::shared_ptr<net::Connection> conn;
  std::string serial, host;
  uint32_t department = 0;
  uint64_t hello_ok_mono = 0;
  // Hello named the restore role: reads only (snapshots, records, deltas),
  // and never a job link.
  bool read_only = false;
  WriteGate gate;       // strand only
  bool closed = false;  // strand only; set under the gate before Close()
  // Guarded by VaultServer::links_mu_:
  bool pinged = false;      // sent ping before any session_begin
  bool in_session = false;  // sent session_begin: a backup connection
  uint64_t job = 0;         // job sent on this link, no job_done yet
};

namespace {

asio::awaitable<Status> WriteLocked(VaultServer::Link& link, MessageType type, ByteView payload) {
  co_await link.gate.Lock();
  // Not a conditional expression: g++ 12 mishandles co_await inside one.
  Status s = Status::Unavailable("connection closed");
  if (!link.closed) s = co_await link.conn->WriteFrame(type, payload);
  link.gate.Unlock();
  co_return s;
}

asio::awaitable<Status> SendError(VaultServer::Link& link, const Status& s) {
  Bytes payload = proto::Error::FromStatus(s).Encode();
  co_return co_await WriteLocked(link, MessageType::kError, payload);
}

template <typename T>
asio::awaitable<Status> Send(VaultServer::Link& link, MessageType type, const T& message) {
  Bytes payload = message.Encode();
  co_return co_await WriteLocked(link, type, payload);
}

// Sends an Error frame; the caller decides whether to close.
asio::awaitable<Status> SendError(net::Connection& conn, const Status& s) {
  Bytes payload = proto::Error::FromStatus(s).Encode();
  co_return co_await conn.WriteFrame(MessageType::kError, payload);
}

template <typename T>
asio::awaitable<Status> Send(net::Connection& conn, MessageType type, const T& message) {
  Bytes payload = message.Encode();
  co_return co_await conn.WriteFrame(type, payload);
}

Status Violation(std::string_view what) { return Status::InvalidArgument(what); }

// The records for a prefix of `ids` that fits one frame (at least one), or
// the error of the first ID (doc/protocol.md get_records).
Result<proto::Records> ReadRecords(const ChunkStore& store, uint32_t department,
                                   const std::vector<crypto::ChunkId>& ids) {
  proto::Records reply;
  CAIRN_ASSIGN_OR_RETURN(reply.records, store.ReadPrefix(department, ids,
                                                         proto::kMaxFramePayload - 1024 -
                                                             4 * proto::kMaxRecordsPerMessage));
  return reply;
}

// What a connection in the restore role may send.
bool IsRestoreMessage(MessageType type) {
  switch (type) {
    case MessageType::kPing:
    case MessageType::kPong:
    case MessageType::kListSnapshots:
    case MessageType::kGetRecords:
    case MessageType::kGetDelta:
      return true;
    default:
      return false;
  }
}

// After a fatal Error, keep reading (and dropping) what the client still
// streams, for a few seconds, instead of closing at once: a client that is
// busy writing records would otherwise see only "broken pipe", not the
// vault's reason, which it reads with its next reply.
// What an agent is told about a storage failure: the kind and what to do,
// not the vault's paths (those go to the vault's log).
Status ForAgent(const Status& s) {
  if (s.IsNoSpace()) {
    return Status::NoSpace(
        "the vault is out of disk space; everything stored before is safe, retry once an "
        "operator has freed space");
  }
  return Status(s.code(),
                "the vault could not store the data (" + std::string(StatusCodeName(s.code())) +
                    "); see the vault's log",
                s.retryable());
}

asio::awaitable<Status> FailAndLinger(VaultServer::Link& link, Status s) {
  (void)co_await SendError(link, ForAgent(s));
  const uint64_t until = io::Env::Posix()->MonotonicMicros() + 5'000'000;
  while (io::Env::Posix()->MonotonicMicros() < until) {
    auto f = co_await link.conn->ReadFrame(std::chrono::seconds(2));
    if (!f.ok()) break;
  }
  co_return s;
}

}  // namespace

VaultServer::VaultServer(Vault* vault, ServeOptions options)
    : vault_(vault), options_(std::move(options)) {}

VaultServer::~VaultServer() = default;

Result<uint16_t> VaultServer::Start(asio::io_context& io) {
  net::TlsOptions tls;
  // Its own CA, plus a replication source's (whose agents fail over here).
  tls.ca_pem = vault_->trusted_ca_pem();
  // Leaf then CA: an enrolling agent pins the CA it finds in this chain.
  tls.certificate_pem = vault_->served_chain_pem();
  tls.private_key_pem = vault_->tls_private_key_pem();
  tls.client_certificate = net::ClientCertificate::kOptional;  // enrolment has none
  Catalog* catalog = vault_->catalog();
  tls.is_revoked = [catalog](const crypto::PeerIdentity& peer) {
    return catalog->IsRevokedOrUnknown(peer.serial_hex);
  };
  CAIRN_ASSIGN_OR_RETURN(net::TlsContext ctx, net::MakeServerContext(tls));
  net::ServerOptions so;
  so.connection.read_deadline = options_.idle_deadline;
  server_ = std::make_unique<net::Server>(
      io, ctx, [this](std::shared_ptr<net::Connection> c) { return Handle(std::move(c)); }, so);
  CAIRN_ASSIGN_OR_RETURN(uint16_t port, server_->Listen(options_.listen));
  advertised_ = options_.listen;
  if (auto colon = advertised_.rfind(':'); colon != std::string::npos) {
    advertised_ = advertised_.substr(0, colon + 1) + std::to_string(port);
  }
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
    std::lock_guard<std::mutex> lock(links_mu_);
    for (auto& [id, link] : links_) {
      if (!link->in_session && link->job == 0) {
        link->conn->Cancel(Status::Unavailable("the vault is shutting down"));
      }
    }
  }
  if (server_) co_await server_->Stop(drain);
  if (vault_->store()) {
    Status s = vault_->store()->SealAll();
    if (!s.ok()) spdlog::error("sealing packs at shutdown: {}", s.ToString());
  }
}

asio::awaitable<void> VaultServer::SweepRevoked() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  Catalog* catalog = vault_->catalog();
  while (!stopping_) {
    timer.expires_after(options_.revocation_sweep);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_ || !server_) break;
    size_t cut = server_->Disconnect([catalog](const crypto::PeerIdentity& peer) {
      return catalog->IsRevokedOrUnknown(peer.serial_hex);
    });
    if (cut > 0) spdlog::warn("disconnected {} connection(s) with a revoked certificate", cut);
  }
}

asio::awaitable<void> VaultServer::Handle(std::shared_ptr<net::Connection> conn) {
  // Until HelloOk only a small Hello is accepted (doc/protocol.md 4.4).
  auto first = co_await conn->ReadFrame(std::chrono::seconds(10), proto::kMaxHelloPayload);
  Status result;
  if (!first.ok()) {
    result = first.status();
  } else if (first->type != MessageType::kHello) {
    result = Violation("expected hello, got " + std::string(proto::MessageTypeName(first->type)));
  } else if (auto hello = proto::Hello::Decode(first->payload); !hello.ok()) {
    result = hello.status();
  } else if (hello->min_version > kProtocolVersion || hello->max_version < kProtocolVersion) {
    result = Status::InvalidArgument("no common protocol version");
    (void)co_await SendError(*conn, result);
  } else if (hello->role == proto::Role::kEnroll) {
    if (conn->peer().has_value()) {
      result = Status::PermissionDenied("an enrolled peer cannot enrol again");
      (void)co_await SendError(*conn, result);
    } else {
      result = co_await Enroll(*conn);
    }
  } else if (!conn->peer().has_value()) {
    result = Status::PermissionDenied("this role needs a client certificate (enrol first)");
    (void)co_await SendError(*conn, result);
  } else if (hello->role == proto::Role::kReplicator &&
             conn->peer()->role == crypto::kRoleReplicator) {
    proto::HelloOk ok{kProtocolVersion, vault_->site(), NowMicros(), "", {}};
    result = co_await Send(*conn, MessageType::kHelloOk, ok);
    if (result.ok()) result = co_await ServeReplicator(*conn);
  } else if ((hello->role != proto::Role::kAgent && hello->role != proto::Role::kRestore) ||
             conn->peer()->role != crypto::kRoleAgent) {
    result =
        Status::PermissionDenied("role " + std::to_string(static_cast<int>(hello->role)) +
                                 " is not allowed for a certificate of role " + conn->peer()->role);
    (void)co_await SendError(*conn, result);
  } else if (auto dept = vault_->catalog()->FindDepartment(conn->peer()->department); !dept.ok()) {
    result = Status::PermissionDenied("certificate names an unknown department");
    (void)co_await SendError(*conn, result);
  } else {
    auto link = std::make_shared<Link>();
    link->conn = conn;
    link->serial = conn->peer()->serial_hex;
    link->host = conn->peer()->host;
    link->department = dept->id;
    link->read_only = hello->role == proto::Role::kRestore;
    proto::HelloOk ok{kProtocolVersion, vault_->site(), NowMicros(), dept->name, AgentAddresses()};
    result = co_await Send(*link, MessageType::kHelloOk, ok);
    if (result.ok()) {
      {
        std::lock_guard<std::mutex> lock(links_mu_);
        link->id = next_link_id_++;
        link->hello_ok_mono = MonoMicros();
        links_[link->id] = link;
      }
      result = co_await ServeAgent(*link, *dept);
      uint64_t unfinished = 0;
      {
        std::lock_guard<std::mutex> lock(links_mu_);
        links_.erase(link->id);
        unfinished = link->job;
      }
      if (unfinished != 0) {
        spdlog::warn(
            "job {}: connection to {} closed before job_done; the job stays sent "
            "until the agent reports it on a later connection",
            unfinished, conn->Describe());
      }
    }
    // A dispatcher write may still be queued on the gate: close after it.
    co_await link->gate.Lock();
    link->closed = true;
    link->gate.Unlock();
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

asio::awaitable<Status> VaultServer::Enroll(net::Connection& conn) {
  proto::HelloOk ok{kProtocolVersion, vault_->site(), NowMicros(), "", {}};
  CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kHelloOk, ok));
  auto frame = co_await conn.ReadFrame(std::chrono::seconds(30), proto::kMaxControlPayload);
  if (!frame.ok()) co_return frame.status();
  if (frame->type != MessageType::kEnrollRequest) {
    co_return Violation("expected enroll_request");
  }
  auto req = proto::EnrollRequest::Decode(frame->payload);
  if (!req.ok()) co_return req.status();
  auto refuse = [&](Status s) -> asio::awaitable<Status> {
    spdlog::warn("enrolment from {} refused: {}", conn.remote_endpoint(), s.message());
    (void)co_await SendError(conn, s);
    co_return s;
  };
  auto department_id = vault_->catalog()->RedeemToken(req->token, NowMicros());
  if (!department_id.ok()) co_return co_await refuse(department_id.status());
  if (*department_id == kReplicatorToken) co_return co_await EnrollReplicator(conn, *req);
  auto dept = vault_->catalog()->FindDepartment(*department_id);
  if (!dept.ok()) co_return co_await refuse(dept.status());
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleAgent);
  id.department = dept->name;
  id.host = req->hostname;
  auto cert = crypto::IssueCertificate(vault_->ca(), req->csr_pem, id, kAgentCertValidityDays);
  if (!cert.ok()) co_return co_await refuse(cert.status());
  auto issued = crypto::ParseIdentity(*cert);
  if (!issued.ok()) co_return co_await refuse(issued.status());
  AgentRecord agent{issued->serial_hex, dept->id, req->hostname, NowMicros(), false, 0};
  if (Status s = vault_->catalog()->AddAgent(agent); !s.ok()) co_return co_await refuse(s);
  auto keys = vault_->DepartmentKeys(dept->id);
  if (!keys.ok()) co_return co_await refuse(keys.status());
  proto::EnrollResponse resp;
  resp.certificate_pem = *cert;
  resp.ca_pem = vault_->served_ca_pem();
  resp.department = dept->name;
  resp.department_id = dept->id;
  resp.department_keys = crypto::SerializeDepartmentKeys(*keys);
  resp.vault_addresses = AgentAddresses();
  Status s = co_await Send(conn, MessageType::kEnrollResponse, resp);
  SecureZero(resp.department_keys.data(), resp.department_keys.size());
  if (s.ok()) {
    spdlog::info("enrolled agent {} of department {} (certificate {})", req->hostname, dept->name,
                 issued->serial_hex);
  }
  co_return s;
}

std::vector<std::string> VaultServer::AgentAddresses() const {
  std::vector<std::string> out = vault_->AgentAddresses();
  if (out.empty()) out.push_back(advertised_);
  return out;
}

asio::awaitable<Status> VaultServer::EnrollReplicator(net::Connection& conn,
                                                      const proto::EnrollRequest& req) {
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleReplicator);
  id.department = "replication";
  id.host = req.hostname;
  auto refuse = [&](Status s) -> asio::awaitable<Status> {
    spdlog::warn("replicator enrolment from {} refused: {}", conn.remote_endpoint(), s.message());
    (void)co_await SendError(conn, s);
    co_return s;
  };
  auto cert = crypto::IssueCertificate(vault_->ca(), req.csr_pem, id, kAgentCertValidityDays);
  if (!cert.ok()) co_return co_await refuse(cert.status());
  auto issued = crypto::ParseIdentity(*cert);
  if (!issued.ok()) co_return co_await refuse(issued.status());
  // Known to the catalog (department 0), so it can be listed and revoked.
  AgentRecord record{issued->serial_hex, 0, req.hostname, NowMicros(), false, 0};
  if (Status s = vault_->catalog()->AddAgent(record); !s.ok()) co_return co_await refuse(s);
  proto::EnrollResponse resp;
  resp.certificate_pem = *cert;
  resp.ca_pem = vault_->served_ca_pem();
  resp.department = "";
  resp.department_id = 0;
  resp.vault_addresses = {advertised_};
  Status s = co_await Send(conn, MessageType::kEnrollResponse, resp);
  if (s.ok()) {
    spdlog::info("enrolled replicator {} (certificate {})", req.hostname, issued->serial_hex);
  }
  co_return s;
}

Result<proto::ReplicaSetupOk> VaultServer::ReplicaSetup(net::Connection& conn,
                                                        const proto::ReplicaSetup& req) {
  Catalog* catalog = vault_->catalog();
  proto::ReplicaSetupOk ok;
  ok.site = vault_->site();
  // A vault that is not itself a replica is the root of trust of its
  // agents: it names its CA, and, when the DR site says where agents reach
  // it, certifies the DR vault's TLS key (so that they accept it when they
  // fail over) and adds that address to the agents' list.
  if (!vault_->IsReplica()) ok.ca_pem = vault_->ca().certificate_pem;
  if (!vault_->IsReplica() && !req.addresses.empty()) {
    std::vector<std::string> hosts;
    for (const std::string& a : req.addresses) {
      auto colon = a.rfind(':');
      std::string host = a.substr(0, colon);
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      if (!host.empty() && std::find(hosts.begin(), hosts.end(), host) == hosts.end()) {
        hosts.push_back(host);
      }
    }
    if (hosts.empty()) return Status::InvalidArgument("replica_setup names no usable DR address");
    for (const char* local : {"127.0.0.1", "::1", "localhost"}) {
      if (std::find(hosts.begin(), hosts.end(), local) == hosts.end()) hosts.push_back(local);
    }
    crypto::PeerIdentity id;
    id.role = std::string(crypto::kRoleVault);
    id.department = req.site.empty() ? "dr" : req.site;
    id.host = hosts.front();
    CAIRN_ASSIGN_OR_RETURN(
        ok.server_cert_pem,
        crypto::IssueCertificate(vault_->ca(), req.server_csr_pem, id, 825,
                                 std::vector<std::string>(hosts.begin() + 1, hosts.end())));
    std::vector<std::string> addresses = AgentAddresses();
    for (const std::string& a : req.addresses) {
      if (std::find(addresses.begin(), addresses.end(), a) == addresses.end() &&
          addresses.size() < proto::kMaxVaultAddresses) {
        addresses.push_back(a);
      }
    }
    CAIRN_RETURN_IF_ERROR(vault_->SetAgentAddresses(addresses));
  }
  ok.vault_addresses = AgentAddresses();
  CAIRN_ASSIGN_OR_RETURN(auto departments, catalog->ListDepartments());
  size_t released = 0;
  for (const Department& d : departments) {
    proto::ReplicaDepartment rd{d.id, d.name, d.created_micros, {}};
    if (std::find(req.known_departments.begin(), req.known_departments.end(), d.id) ==
        req.known_departments.end()) {
      CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, vault_->DepartmentKeys(d.id));
      rd.keys = crypto::SerializeDepartmentKeys(keys);
      ++released;
    }
    ok.departments.push_back(std::move(rd));
  }
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
  for (const AgentRecord& a : agents) {
    if (a.department_id == 0) continue;  // replicators stay here
    ok.agents.push_back(
        {a.serial, a.department_id, a.host, a.enrolled_micros, a.revoked, a.revoked_micros});
  }
  if (released > 0) {
    spdlog::warn("replication set-up from {}: keys of {} department(s) escrowed to site {}",
                 conn.Describe(), released, req.site);
  }
  return ok;
}

asio::awaitable<Status> VaultServer::ServeReplicator(net::Connection& conn) {
  Catalog* catalog = vault_->catalog();
  ChunkStore* store = vault_->store();
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
        auto ok = ReplicaSetup(conn, *req);
        if (!ok.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, ok.status()));
          break;
        }
        Status s = co_await Send(conn, MessageType::kReplicaSetupOk, *ok);
        for (auto& d : ok->departments) SecureZero(d.keys.data(), d.keys.size());
        CAIRN_CO_RETURN_IF_ERROR(s);
        break;
      }
      case MessageType::kReplicaList: {
        auto req = proto::ReplicaList::Decode(payload);
        if (!req.ok()) co_return req.status();
        size_t limit = req->limit == 0 ? proto::kMaxSnapshotsPerList : req->limit;
        auto list = catalog->ListSnapshotsAfter(req->after, limit);
        auto latest = catalog->LatestSnapshotNumber();
        if (!list.ok() || !latest.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(
              co_await SendError(conn, !list.ok() ? list.status() : latest.status()));
          break;
        }
        proto::ReplicaSnapshots reply;
        reply.latest = *latest;
        std::map<uint32_t, std::string> names;
        size_t budget = proto::kMaxControlPayload - 1024;
        for (const auto& s : *list) {
          if (!names.contains(s.department_id)) {
            auto d = catalog->FindDepartment(s.department_id);
            names[s.department_id] = d.ok() ? d->name : "";
          }
          proto::ReplicaSnapshot r;
          r.department_id = s.department_id;
          r.department = names[s.department_id];
          r.info = ToSnapshotInfo(s);
          r.manifest_count = s.manifest_count;
          size_t size = 300 + s.host.size() + r.department.size();
          for (const auto& p : s.paths) size += 4 + p.size();
          if (size > budget) break;
          budget -= size;
          reply.snapshots.push_back(std::move(r));
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kReplicaSnapshots, reply));
        break;
      }
      case MessageType::kGetManifest: {
        auto req = proto::GetManifest::Decode(payload);
        if (!req.ok()) co_return req.status();
        auto manifest = catalog->Manifest(req->department_id, req->snapshot_id);
        if (!manifest.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, manifest.status()));
          break;
        }
        proto::Manifest reply;
        reply.total = manifest->size();
        reply.offset = std::min<uint64_t>(req->offset, manifest->size());
        const uint64_t end =
            std::min<uint64_t>(manifest->size(), reply.offset + proto::kMaxManifestIdsPerPart);
        reply.ids.assign(manifest->begin() + static_cast<long>(reply.offset),
                         manifest->begin() + static_cast<long>(end));
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kManifest, reply));
        break;
      }
      case MessageType::kGetReplicaRecords: {
        auto ask = proto::GetReplicaRecords::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        auto reply = ReadRecords(*store, ask->department_id, ask->ids);
        if (!reply.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, reply.status()));
          break;
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kRecords, *reply));
        break;
      }
      default:
        co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                            " is not allowed for the replicator role");
    }
  }
}

asio::awaitable<Status> VaultServer::ServeAgent(Link& link, const Department& dept) {
  net::Connection& conn = *link.conn;
  ChunkStore* store = vault_->store();
  std::shared_ptr<Session> session;
  // Opened on the first get_delta: the only time the vault uses a
  // department's keys on its data (an in-place restore, doc/protocol.md).
  std::unique_ptr<repo::RecordDecoder> delta_decoder;
  auto need_session = [&]() -> Status {
    if (!session) return Violation("no session begun on this connection");
    return Status::OK();
  };
  for (;;) {
    auto frame = co_await conn.ReadFrame();
    if (!frame.ok()) co_return frame.status();
    const ByteView payload = frame->payload;
    if (link.read_only && !IsRestoreMessage(frame->type)) {
      co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                          " is not allowed for the restore role");
    }
    switch (frame->type) {
      case MessageType::kPing: {
        auto ping = proto::Ping::Decode(payload);
        if (!ping.ok()) co_return ping.status();
        {
          std::lock_guard<std::mutex> lock(links_mu_);
          if (!link.in_session) link.pinged = true;
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kPong, proto::Pong{ping->nonce}));
        break;
      }
      case MessageType::kJobDone:
        CAIRN_CO_RETURN_IF_ERROR(co_await OnJobDone(link, dept, payload));
        break;
      case MessageType::kPong:
        break;
      case MessageType::kSessionBegin: {
        auto begin = proto::SessionBegin::Decode(payload);
        if (!begin.ok()) co_return begin.status();
        bool job_running = false;
        {
          std::lock_guard<std::mutex> lock(links_mu_);
          job_running = link.job != 0;
          link.in_session = true;
        }
        if (job_running) co_return Violation("session_begin on a link with a job running");
        if (vault_->IsReplica() && !vault_->IsPromoted()) {
          Status refused = Status::PermissionDenied(
              "this is the disaster-recovery copy (site " + vault_->site() +
              ") and it has not been promoted: back up to the primary vault, or, if the primary "
              "is lost, promote this one with `cairn-vault promote` (doc/dr-runbook.md)");
          spdlog::warn("backup from {} refused: not promoted", conn.Describe());
          (void)co_await SendError(link, refused);
          co_return refused;
        }
        proto::SessionBegun reply;
        {
          std::lock_guard<std::mutex> lock(sessions_mu_);
          auto it = sessions_.find(begin->resume_session_id);
          if (begin->resume_session_id != 0 && it != sessions_.end() &&
              it->second->department == dept.id) {
            session = it->second;
            session->manifest.clear();  // the manifest is re-sent before commit
            reply.resumed = true;
          } else {
            session = std::make_shared<Session>();
            uint8_t r[8];
            (void)crypto::SecureRandom(MutableByteView(r, 8));
            session->id = DecodeFixed64(r) | 1;
            session->department = dept.id;
            session->host = conn.peer()->host;
            session->kind = begin->kind;
            session->paths = begin->paths;
            sessions_[session->id] = session;
          }
        }
        reply.session_id = session->id;
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kSessionBegun, reply));
        break;
      }
      case MessageType::kHaveChunks: {
        auto ask = proto::HaveChunks::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        auto present = store->Contains(dept.id, ask->ids);
        if (!present.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(link, present.status()));
          break;
        }
        proto::HaveChunksReply reply{ask->request_id, std::move(*present)};
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kHaveChunksReply, reply));
        break;
      }
      case MessageType::kPutRecord: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        CAIRN_CO_RETURN_IF_ERROR(proto::CheckPutRecord(payload));
        Status s = store->Put(dept.id, payload);
        if (s.IsCorruption()) co_return s.WithContext("put_record");  // a bad record: violation
        if (!s.ok()) {
          // Out of space or an I/O error: tell the agent and end the
          // session; nothing since its last flushed is kept.
          spdlog::error("department {}: storing a record failed: {}", dept.name, s.ToString());
          co_return co_await FailAndLinger(link, s);
        }
        break;
      }
      case MessageType::kFlush: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto flush = proto::Flush::Decode(payload);
        if (!flush.ok()) co_return flush.status();
        if (flush->sequence <= session->last_flush)
          co_return Violation("flush sequence not increasing");
        auto r = store->Flush(dept.id);
        if (!r.ok()) {
          spdlog::error("department {}: flush failed: {}", dept.name, r.status().ToString());
          co_return co_await FailAndLinger(link, r.status());
        }
        session->last_flush = flush->sequence;
        session->records_stored += r->records;
        session->bytes_stored += r->bytes;
        proto::Flushed reply{flush->sequence, session->records_stored, session->bytes_stored};
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kFlushed, reply));
        break;
      }
      case MessageType::kManifestPart: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto part = proto::ManifestPart::Decode(payload);
        if (!part.ok()) co_return part.status();
        if (part->session_id != session->id)
          co_return Violation("manifest_part for another session");
        if (session->manifest.size() + part->ids.size() > kMaxManifestIds) {
          co_return Violation("manifest too large");
        }
        session->manifest.insert(session->manifest.end(), part->ids.begin(), part->ids.end());
        break;
      }
      case MessageType::kCommit: {
        CAIRN_CO_RETURN_IF_ERROR(need_session());
        auto commit = proto::Commit::Decode(payload);
        if (!commit.ok()) co_return commit.status();
        if (commit->session_id != session->id) co_return Violation("commit for another session");
        if (session->committed) {
          CAIRN_CO_RETURN_IF_ERROR(
              co_await Send(link, MessageType::kCommitOk, *session->committed));
          break;
        }
        Status check;
        if (commit->manifest_count != session->manifest.size()) {
          check = Status::InvalidArgument("commit says " + std::to_string(commit->manifest_count) +
                                          " manifest IDs, " +
                                          std::to_string(session->manifest.size()) + " were sent");
        }
        // Rule 6.3: every referenced chunk durable, or no snapshot.
        uint64_t missing = 0;
        for (size_t i = 0; check.ok() && i < session->manifest.size(); i += 32768) {
          size_t n = std::min<size_t>(32768, session->manifest.size() - i);
          auto present = store->Contains(
              dept.id, std::span<const crypto::ChunkId>(session->manifest.data() + i, n));
          if (!present.ok()) {
            check = present.status();
            break;
          }
          for (bool p : *present) missing += !p;
        }
        bool has_root = false;
        for (const auto& id : session->manifest) has_root |= id == commit->root_tree;
        if (check.ok() && missing > 0) {
          check = Status::NotFound(std::to_string(missing) +
                                   " chunks of the manifest are not stored; upload and flush them");
        } else if (check.ok() && !has_root) {
          check = Status::InvalidArgument("the root tree is not in the manifest");
        }
        if (!check.ok()) {
          session->manifest.clear();
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(link, check));
          break;
        }
        SnapshotRecord snap;
        snap.department_id = dept.id;
        snap.host = session->host;
        snap.paths = session->paths;
        snap.kind = static_cast<uint8_t>(session->kind);
        snap.time_micros = NowMicros();
        snap.root_tree = commit->root_tree;
        SetStats(&snap, commit->stats);
        auto stored = vault_->catalog()->CommitSnapshot(snap, session->manifest);
        if (!stored.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(link, stored.status()));
          break;
        }
        session->committed = proto::CommitOk{stored->id, stored->time_micros};
        session->manifest.clear();
        session->manifest.shrink_to_fit();
        spdlog::info("department {}: snapshot {} committed from {} ({} files, {} new bytes)",
                     dept.name, stored->id, snap.host, snap.files, snap.new_bytes);
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kCommitOk, *session->committed));
        break;
      }
      case MessageType::kListSnapshots: {
        auto ask = proto::ListSnapshots::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        size_t limit = ask->limit == 0 ? proto::kMaxSnapshotsPerList : ask->limit;
        auto list = vault_->catalog()->ListSnapshots(dept.id, limit);
        if (!list.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(link, list.status()));
          break;
        }
        proto::SnapshotList reply;
        size_t budget = proto::kMaxControlPayload - 1024;
        for (const auto& s : *list) {
          proto::SnapshotInfo info = ToSnapshotInfo(s);
          size_t size = 200 + s.host.size();
          for (const auto& p : s.paths) size += 4 + p.size();
          if (size > budget) break;
          budget -= size;
          reply.snapshots.push_back(std::move(info));
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kSnapshotList, reply));
        break;
      }
      case MessageType::kGetRecords: {
        auto ask = proto::GetRecords::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        auto reply = ReadRecords(*store, dept.id, ask->ids);
        if (!reply.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(link, reply.status()));
          break;
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kRecords, *reply));
        break;
      }
      case MessageType::kGetDelta: {
        auto ask = proto::GetDelta::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        auto reply = ComputeDeltaFor(dept, *ask, &delta_decoder);
        if (!reply.ok()) {
          spdlog::warn("department {}: get_delta for chunk {} from {} failed: {}", dept.name,
                       ToHex(ask->id), conn.Describe(), reply.status().ToString());
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(link, reply.status()));
          break;
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(link, MessageType::kDelta, *reply));
        break;
      }
      default:
        co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                            " is not allowed from an agent");
    }
  }
}

Result<proto::DeltaReply> VaultServer::ComputeDeltaFor(
    const Department& dept, const proto::GetDelta& ask,
    std::unique_ptr<repo::RecordDecoder>* decoder) {
  if (!*decoder) {
    CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, vault_->DepartmentKeys(dept.id));
    CAIRN_ASSIGN_OR_RETURN(*decoder, repo::RecordDecoder::Create(keys));
    spdlog::info("department {}: keys opened to serve an in-place restore", dept.name);
  }
  ChunkStore* store = vault_->store();
  repo::RecordSource source = [&](const crypto::ChunkId& id) -> Result<Bytes> {
    Bytes record;
    CAIRN_RETURN_IF_ERROR(store->Read(dept.id, id, &record));
    return record;
  };
  Bytes content;
  CAIRN_RETURN_IF_ERROR(
      repo::ReadChunk(decoder->get(), ask.id, source, proto::kMaxDeltaReplyLen, &content));
  proto::DeltaReply reply;
  reply.request_id = ask.request_id;
  auto delta = chunk::ComputeDelta(ask.signature, content);
  if (!delta.ok()) {
    SecureZero(content.data(), content.size());
    // A signature librsync would not accept is the client's fault.
    return Status::InvalidArgument("get_delta: " + delta.status().message());
  }
  if (delta->size() < content.size()) {
    reply.kind = proto::DeltaKind::kDelta;
    reply.data = std::move(*delta);
    SecureZero(content.data(), content.size());
  } else {
    reply.kind = proto::DeltaKind::kWhole;
    reply.data = std::move(content);
  }
  return reply;
}

asio::awaitable<Status> VaultServer::OnJobDone(Link& link, const Department& dept,
                                               ByteView payload) {
  auto done = proto::JobDone::Decode(payload);
  if (!done.ok()) co_return done.status();
  {
    std::lock_guard<std::mutex> lock(links_mu_);
    if (link.job == done->job_id) link.job = 0;
  }
  Catalog* catalog = vault_->catalog();
  auto job = catalog->FindJob(done->job_id);
  if (!job.ok() && !job.status().IsNotFound()) {
    spdlog::error("job {}: reading it failed: {}", done->job_id, job.status().ToString());
    co_return Status::OK();  // the vault's problem, not the agent's
  }
  // A job of another agent (or department) is answered like an unknown one.
  if (!job.ok() || job->department_id != dept.id || job->sent_to != link.serial) {
    co_return Violation("job_done for job " + std::to_string(done->job_id) +
                        ", which was not sent to this agent");
  }
  if (job->state != JobState::kSent) {
    // A report repeated after a reconnection: already recorded.
    spdlog::info("job {}: repeated job_done ignored (job is {})", job->id,
                 JobStateName(job->state));
    co_return Status::OK();
  }
  Status s = catalog->FinishJob(job->id, done->ok, done->snapshot_id, done->error, NowMicros());
  if (!s.ok()) {
    spdlog::error("job {}: recording job_done failed: {}", job->id, s.ToString());
  } else if (done->ok) {
    spdlog::info("job {} done by {}: snapshot {}", job->id, link.conn->Describe(),
                 done->snapshot_id);
  } else {
    spdlog::warn("job {} failed on {}: {}", job->id, link.conn->Describe(), done->error);
  }
  co_return Status::OK();
}

size_t VaultServer::job_links() {
  std::lock_guard<std::mutex> lock(links_mu_);
  const uint64_t now = MonoMicros();
  size_t n = 0;
  for (const auto& [id, link] : links_) n += IsJobLink(*link, now);
  return n;
}

bool VaultServer::IsJobLink(const Link& link, uint64_t now_mono_micros) const {
  if (link.in_session || link.read_only) return false;
  if (link.pinged) return true;
  const uint64_t idle = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(options_.job_link_idle).count());
  return now_mono_micros - link.hello_ok_mono >= idle;
}

asio::awaitable<void> VaultServer::DispatchJobs() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!stopping_) {
    timer.expires_after(options_.job_poll);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_ || !server_) break;
    DispatchOnce();
  }
}

void VaultServer::DispatchOnce() {
  Catalog* catalog = vault_->catalog();
  {
    // Nothing to do without a job link; skip the catalog read.
    std::lock_guard<std::mutex> lock(links_mu_);
    if (links_.empty()) return;
  }
  auto queued = catalog->ListQueuedJobs();
  if (!queued.ok()) {
    spdlog::error("job dispatcher: reading queued jobs failed: {}", queued.status().ToString());
    return;
  }
  for (const JobRecord& job : *queued) {
    std::shared_ptr<Link> target;
    {
      std::lock_guard<std::mutex> lock(links_mu_);
      const uint64_t now = MonoMicros();
      for (const auto& [id, link] : links_) {
        if (link->department != job.department_id) continue;
        if (job.agent_serial.empty() ? link->host != job.host : link->serial != job.agent_serial) {
          continue;
        }
        if (!IsJobLink(*link, now)) continue;
        // One job at a time per agent, whichever of its links carries it.
        bool busy = false;
        for (const auto& [other_id, other] : links_)
          busy |= other->serial == link->serial && other->job != 0;
        if (busy) continue;
        target = link;
        break;
      }
      if (target) target->job = job.id;
    }
    if (!target) continue;  // not connected (or busy): stays queued
    if (Status s = catalog->MarkJobSent(job.id, target->serial, NowMicros()); !s.ok()) {
      std::lock_guard<std::mutex> lock(links_mu_);
      target->job = 0;
      spdlog::warn("job {}: not sent: {}", job.id, s.ToString());
      continue;
    }
    proto::Job message{job.id, static_cast<proto::JobKind>(job.kind), job.paths, job.image};
    asio::co_spawn(target->conn->executor(), SendJob(target, std::move(message)), asio::detached);
  }
}

asio::awaitable<void> VaultServer::SendJob(std::shared_ptr<Link> link, proto::Job job) {
  Status s = co_await Send(*link, MessageType::kJob, job);
  if (s.ok()) {
    spdlog::info("job {} sent to {}", job.job_id, link->conn->Describe());
    co_return;
  }
  // The connection is gone; the agent cannot have started the job.
  {
    std::lock_guard<std::mutex> lock(links_mu_);
    if (link->job == job.job_id) link->job = 0;
  }
  spdlog::warn("job {}: sending to {} failed ({}); queued again", job.job_id,
               link->conn->Describe(), s.ToString());
  if (Status r = vault_->catalog()->RequeueJob(job.job_id); !r.ok()) {
    spdlog::error("job {}: re-queueing failed: {}", job.job_id, r.ToString());
  }
}

}  // namespace cairn::vault
