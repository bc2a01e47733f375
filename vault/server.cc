#include "vault/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lib/crypto/pki.h"
#include "lib/crypto/random.h"
#include "lib/net/tls.h"
#include "lib/proto/messages.h"

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

asio::awaitable<Status> FailAndLinger(net::Connection& conn, Status s) {
  (void)co_await SendError(conn, ForAgent(s));
  const uint64_t until = io::Env::Posix()->MonotonicMicros() + 5'000'000;
  while (io::Env::Posix()->MonotonicMicros() < until) {
    auto f = co_await conn.ReadFrame(std::chrono::seconds(2));
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
  tls.ca_pem = vault_->ca().certificate_pem;
  // Leaf then CA: an enrolling agent pins the CA it finds in this chain.
  tls.certificate_pem = vault_->tls_certificate_pem() + vault_->ca().certificate_pem;
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
  return port;
}

asio::awaitable<void> VaultServer::Stop(std::chrono::milliseconds drain) {
  stopping_ = true;
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
  } else if (hello->role != proto::Role::kAgent || conn->peer()->role != crypto::kRoleAgent) {
    result =
        Status::PermissionDenied("role " + std::to_string(static_cast<int>(hello->role)) +
                                 " is not allowed for a certificate of role " + conn->peer()->role);
    (void)co_await SendError(*conn, result);
  } else if (auto dept = vault_->catalog()->FindDepartment(conn->peer()->department); !dept.ok()) {
    result = Status::PermissionDenied("certificate names an unknown department");
    (void)co_await SendError(*conn, result);
  } else {
    proto::HelloOk ok{kProtocolVersion, vault_->site(), NowMicros(), dept->name};
    result = co_await Send(*conn, MessageType::kHelloOk, ok);
    if (result.ok()) result = co_await ServeAgent(*conn, *dept);
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
  proto::HelloOk ok{kProtocolVersion, vault_->site(), NowMicros(), ""};
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
  resp.ca_pem = vault_->ca().certificate_pem;
  resp.department = dept->name;
  resp.department_id = dept->id;
  resp.department_keys = crypto::SerializeDepartmentKeys(*keys);
  resp.vault_addresses = {advertised_};
  Status s = co_await Send(conn, MessageType::kEnrollResponse, resp);
  SecureZero(resp.department_keys.data(), resp.department_keys.size());
  if (s.ok()) {
    spdlog::info("enrolled agent {} of department {} (certificate {})", req->hostname, dept->name,
                 issued->serial_hex);
  }
  co_return s;
}

asio::awaitable<Status> VaultServer::ServeAgent(net::Connection& conn, const Department& dept) {
  ChunkStore* store = vault_->store();
  std::shared_ptr<Session> session;
  auto need_session = [&]() -> Status {
    if (!session) return Violation("no session begun on this connection");
    return Status::OK();
  };
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
      case MessageType::kSessionBegin: {
        auto begin = proto::SessionBegin::Decode(payload);
        if (!begin.ok()) co_return begin.status();
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
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kSessionBegun, reply));
        break;
      }
      case MessageType::kHaveChunks: {
        auto ask = proto::HaveChunks::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        auto present = store->Contains(dept.id, ask->ids);
        if (!present.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, present.status()));
          break;
        }
        proto::HaveChunksReply reply{ask->request_id, std::move(*present)};
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kHaveChunksReply, reply));
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
          co_return co_await FailAndLinger(conn, s);
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
          co_return co_await FailAndLinger(conn, r.status());
        }
        session->last_flush = flush->sequence;
        session->records_stored += r->records;
        session->bytes_stored += r->bytes;
        proto::Flushed reply{flush->sequence, session->records_stored, session->bytes_stored};
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kFlushed, reply));
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
              co_await Send(conn, MessageType::kCommitOk, *session->committed));
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
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, check));
          break;
        }
        SnapshotRecord snap;
        snap.department_id = dept.id;
        snap.host = session->host;
        snap.paths = session->paths;
        snap.kind = static_cast<uint8_t>(session->kind);
        snap.time_micros = NowMicros();
        snap.root_tree = commit->root_tree;
        const auto& st = commit->stats;
        snap.files = st.files;
        snap.dirs = st.dirs;
        snap.bytes = st.bytes;
        snap.new_bytes = st.new_bytes;
        snap.new_chunks = st.new_chunks;
        snap.warnings = st.warnings;
        snap.started_micros = st.started_micros;
        snap.finished_micros = st.finished_micros;
        auto stored = vault_->catalog()->CommitSnapshot(snap, session->manifest);
        if (!stored.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, stored.status()));
          break;
        }
        session->committed = proto::CommitOk{stored->id, stored->time_micros};
        session->manifest.clear();
        session->manifest.shrink_to_fit();
        spdlog::info("department {}: snapshot {} committed from {} ({} files, {} new bytes)",
                     dept.name, stored->id, snap.host, snap.files, snap.new_bytes);
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kCommitOk, *session->committed));
        break;
      }
      case MessageType::kListSnapshots: {
        auto ask = proto::ListSnapshots::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        size_t limit = ask->limit == 0 ? proto::kMaxSnapshotsPerList : ask->limit;
        auto list = vault_->catalog()->ListSnapshots(dept.id, limit);
        if (!list.ok()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, list.status()));
          break;
        }
        proto::SnapshotList reply;
        size_t budget = proto::kMaxControlPayload - 1024;
        for (const auto& s : *list) {
          proto::SnapshotInfo info;
          info.id = s.id;
          info.hostname = s.host;
          info.paths = s.paths;
          info.kind = static_cast<proto::SessionKind>(s.kind);
          info.time_micros = s.time_micros;
          info.root_tree = s.root_tree;
          info.stats = {s.files,      s.dirs,     s.bytes,          s.new_bytes,
                        s.new_chunks, s.warnings, s.started_micros, s.finished_micros};
          size_t size = 200 + s.host.size();
          for (const auto& p : s.paths) size += 4 + p.size();
          if (size > budget) break;
          budget -= size;
          reply.snapshots.push_back(std::move(info));
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kSnapshotList, reply));
        break;
      }
      case MessageType::kGetRecords: {
        auto ask = proto::GetRecords::Decode(payload);
        if (!ask.ok()) co_return ask.status();
        proto::Records reply;
        size_t budget = proto::kMaxFramePayload - 1024;
        Status s;
        for (const auto& id : ask->ids) {
          Bytes rec;
          s = store->Read(dept.id, id, &rec);
          if (!s.ok()) break;
          if (rec.size() + 4 > budget && !reply.records.empty()) break;
          budget -= std::min(budget, rec.size() + 4);
          reply.records.push_back(std::move(rec));
        }
        if (!s.ok() && reply.records.empty()) {
          CAIRN_CO_RETURN_IF_ERROR(co_await SendError(conn, s));
          break;
        }
        CAIRN_CO_RETURN_IF_ERROR(co_await Send(conn, MessageType::kRecords, reply));
        break;
      }
      default:
        co_return Violation(std::string(proto::MessageTypeName(frame->type)) +
                            " is not allowed from an agent");
    }
  }
}

}  // namespace cairn::vault
