#include "agent/vault_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <thread>
#include <utility>

#include "lib/client/dial.h"
#include "lib/client/wire.h"
#include "lib/net/run_sync.h"
#include "lib/net/tls.h"

namespace cairn::agent {
namespace {

namespace asio = boost::asio;
using proto::MessageType;

class NetVaultSession : public VaultSession {
 public:
  NetVaultSession(std::unique_ptr<asio::io_context> io, std::shared_ptr<net::Connection> conn,
                  std::string address, uint64_t session_id, std::chrono::milliseconds deadline)
      : io_(std::move(io)),
        conn_(std::move(conn)),
        address_(std::move(address)),
        session_id_(session_id),
        deadline_(deadline) {}

  ~NetVaultSession() override {
    if (conn_) net::RunSync(*io_, conn_->Close());
  }

  Result<std::vector<bool>> HaveChunks(const std::vector<crypto::ChunkId>& ids) override {
    Result<std::vector<bool>> r = net::RunSync(*io_, HaveAsync(ids));
    if (!r.ok()) return Lost(r.status());
    return r;
  }

  Status PutRecord(ByteView record) override {
    return Lost(net::RunSync(*io_, conn_->WriteFrame(MessageType::kPutRecord, record)));
  }

  Status PutDeltaRecord(const crypto::ChunkId& base, ByteView record) override {
    Bytes payload = proto::PutDeltaRecord::Encode(base, record);
    return Lost(net::RunSync(*io_, conn_->WriteFrame(MessageType::kPutDeltaRecord, payload)));
  }

  Status Flush() override { return Lost(net::RunSync(*io_, FlushAsync())); }

  Status KeepAlive() override { return Lost(net::RunSync(*io_, PingAsync())); }

  Result<std::string> Commit(const crypto::ChunkId& root,
                             const std::vector<crypto::ChunkId>& manifest,
                             const proto::SnapshotStats& stats) override {
    Result<std::string> r = net::RunSync(*io_, CommitAsync(root, manifest, stats));
    if (!r.ok()) return Lost(r.status());
    return r;
  }

 private:
  // A lost connection names the vault and what to do about it.
  Status Lost(Status s) const {
    if (!s.IsUnavailable()) return s;
    return client::LostConnection(
        s, "the vault", address_,
        "what it had flushed is kept: run the backup again once the vault is back");
  }

  asio::awaitable<Result<std::vector<bool>>> HaveAsync(std::vector<crypto::ChunkId> ids) {
    proto::HaveChunks request;
    request.request_id = ++request_id_;
    const size_t count = ids.size();
    request.ids = std::move(ids);
    Bytes payload = request.Encode();
    Status s = co_await conn_->WriteFrame(MessageType::kHaveChunks, payload);
    if (!s.ok()) co_return s;
    Result<UninitBytes> reply =
        co_await client::ReadExpected(*conn_, MessageType::kHaveChunksReply, deadline_);
    if (!reply.ok()) co_return reply.status();
    Result<proto::HaveChunksReply> r = proto::HaveChunksReply::Decode(*reply);
    if (!r.ok()) co_return r.status();
    if (r->request_id != request.request_id || r->present.size() != count) {
      co_return Status::InvalidArgument("vault answered have_chunks out of step");
    }
    co_return std::move(r->present);
  }

  asio::awaitable<Status> FlushAsync() {
    proto::Flush flush{++flush_sequence_};
    Bytes payload = flush.Encode();
    Status s = co_await conn_->WriteFrame(MessageType::kFlush, payload);
    if (!s.ok()) co_return s;
    Result<UninitBytes> reply =
        co_await client::ReadExpected(*conn_, MessageType::kFlushed, deadline_);
    if (!reply.ok()) co_return reply.status();
    Result<proto::Flushed> r = proto::Flushed::Decode(*reply);
    if (!r.ok()) co_return r.status();
    if (r->sequence != flush.sequence) {
      co_return Status::InvalidArgument("vault answered flush out of step");
    }
    co_return Status::OK();
  }

  asio::awaitable<Status> PingAsync() {
    proto::Ping ping{++ping_nonce_};
    Bytes payload = ping.Encode();
    Status s = co_await conn_->WriteFrame(MessageType::kPing, payload);
    if (!s.ok()) co_return s;
    Result<UninitBytes> reply =
        co_await client::ReadExpected(*conn_, MessageType::kPong, deadline_);
    co_return reply.ok() ? Status::OK() : reply.status();
  }

  asio::awaitable<Result<std::string>> CommitAsync(crypto::ChunkId root,
                                                   const std::vector<crypto::ChunkId>& manifest,
                                                   proto::SnapshotStats stats) {
    for (size_t begin = 0; begin < manifest.size(); begin += proto::kMaxManifestIdsPerPart) {
      const size_t end = std::min(manifest.size(), begin + proto::kMaxManifestIdsPerPart);
      proto::ManifestPart part;
      part.session_id = session_id_;
      part.ids.assign(manifest.begin() + begin, manifest.begin() + end);
      Bytes payload = part.Encode();
      Status s = co_await conn_->WriteFrame(MessageType::kManifestPart, payload);
      if (!s.ok()) co_return s;
    }
    proto::Commit commit;
    commit.session_id = session_id_;
    commit.root_tree = root;
    commit.manifest_count = manifest.size();
    commit.stats = stats;
    Bytes payload = commit.Encode();
    Status s = co_await conn_->WriteFrame(MessageType::kCommit, payload);
    if (!s.ok()) co_return s;
    Result<UninitBytes> reply =
        co_await client::ReadExpected(*conn_, MessageType::kCommitOk, deadline_);
    if (!reply.ok()) co_return reply.status();
    Result<proto::CommitOk> ok = proto::CommitOk::Decode(*reply);
    if (!ok.ok()) co_return ok.status();
    co_return ok->snapshot_id;
  }

  std::unique_ptr<asio::io_context> io_;
  std::shared_ptr<net::Connection> conn_;
  const std::string address_;
  uint64_t session_id_;
  std::chrono::milliseconds deadline_;
  uint32_t request_id_ = 0;
  uint64_t flush_sequence_ = 0;
  uint64_t ping_nonce_ = 0;
};

// SessionBegin on a dialled connection; returns the session ID.
asio::awaitable<Result<uint64_t>> BeginSession(net::Connection& c, std::vector<std::string> paths,
                                               proto::SessionKind kind,
                                               std::chrono::milliseconds deadline) {
  proto::SessionBegin begin;
  begin.kind = kind;
  begin.paths = std::move(paths);
  Bytes begin_bytes = begin.Encode();
  Status s = co_await c.WriteFrame(MessageType::kSessionBegin, begin_bytes);
  if (!s.ok()) co_return s;
  Result<UninitBytes> reply =
      co_await client::ReadExpected(c, MessageType::kSessionBegun, deadline);
  if (!reply.ok()) co_return reply.status();
  Result<proto::SessionBegun> begun = proto::SessionBegun::Decode(*reply);
  if (!begun.ok()) co_return begun.status();
  co_return begun->session_id;
}

}  // namespace

Result<std::unique_ptr<VaultSession>> OpenVaultSession(const client::Identity& identity,
                                                       const std::vector<std::string>& paths,
                                                       const SessionOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(net::TlsContext tls, client::ClientTls(identity));
  client::DialOptions dial = client::IdentityDialOptions(identity);
  dial.role = proto::Role::kAgent;
  dial.software = kAgentSoftware;
  dial.deadline = options.connect_deadline;
  auto io = std::make_unique<asio::io_context>();
  CAIRN_ASSIGN_OR_RETURN(client::Dialed dialed,
                         net::RunSync(*io, client::Dial(io->get_executor(), tls,
                                                        identity.config.vault_addresses, dial)));
  client::Identity updated = identity;
  auto changed = client::AdoptVaultAddresses(&updated, dialed.hello_ok.vault_addresses);
  if (!changed.ok()) {
    spdlog::warn("could not record the vault's addresses: {}", changed.status().message());
  }
  Result<uint64_t> session =
      net::RunSync(*io, BeginSession(*dialed.conn, paths, options.kind, options.deadline));
  if (!session.ok()) {
    net::RunSync(*io, dialed.conn->Close());
    return session.status().WithContext(dialed.address);
  }
  return std::unique_ptr<VaultSession>(std::make_unique<NetVaultSession>(
      std::move(io), std::move(dialed.conn), dialed.address, *session, options.deadline));
}

namespace {

class RateLimitedSession : public VaultSession {
 public:
  RateLimitedSession(std::unique_ptr<VaultSession> inner, uint64_t rate, RateClock clock)
      : inner_(std::move(inner)), rate_(rate), clock_(std::move(clock)) {
    if (!clock_.now_micros) {
      clock_.now_micros = [] {
        return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count());
      };
    }
    if (!clock_.sleep) {
      clock_.sleep = [](uint64_t micros) {
        std::this_thread::sleep_for(std::chrono::microseconds(micros));
      };
    }
  }

  Result<std::vector<bool>> HaveChunks(const std::vector<crypto::ChunkId>& ids) override {
    return inner_->HaveChunks(ids);
  }
  Status PutRecord(ByteView record) override {
    Wait(record.size());
    return inner_->PutRecord(record);
  }
  Status PutDeltaRecord(const crypto::ChunkId& base, ByteView record) override {
    Wait(record.size());
    return inner_->PutDeltaRecord(base, record);
  }
  Status Flush() override { return inner_->Flush(); }
  Status KeepAlive() override { return inner_->KeepAlive(); }
  Result<std::string> Commit(const crypto::ChunkId& root_tree,
                             const std::vector<crypto::ChunkId>& manifest,
                             const proto::SnapshotStats& stats) override {
    return inner_->Commit(root_tree, manifest, stats);
  }

 private:
  // A token bucket: credit accrues at the rate up to one burst; a record
  // beyond the credit waits for the rest.
  void Wait(size_t bytes) {
    const uint64_t now = clock_.now_micros();
    const double burst = static_cast<double>(std::max<uint64_t>(rate_, 1 << 20));
    if (last_ == 0) {
      last_ = now;
      tokens_ = burst;
    }
    if (now > last_) {
      tokens_ = std::min(
          burst, tokens_ + static_cast<double>(now - last_) * static_cast<double>(rate_) / 1e6);
      last_ = now;
    }
    tokens_ -= static_cast<double>(bytes);
    if (tokens_ < 0) {
      const auto wait = static_cast<uint64_t>(-tokens_ * 1e6 / static_cast<double>(rate_));
      clock_.sleep(wait);
      last_ = now + wait;
      tokens_ = 0;
    }
  }

  std::unique_ptr<VaultSession> inner_;
  const uint64_t rate_;
  RateClock clock_;
  uint64_t last_ = 0;
  double tokens_ = 0;
};

}  // namespace

std::unique_ptr<VaultSession> LimitBandwidth(std::unique_ptr<VaultSession> inner,
                                             uint64_t bytes_per_second, RateClock clock) {
  if (bytes_per_second == 0) return inner;
  return std::make_unique<RateLimitedSession>(std::move(inner), bytes_per_second, std::move(clock));
}

}  // namespace cairn::agent
