#include "lib/client/vault_link.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <utility>

#include "lib/client/dial.h"
#include "lib/client/wire.h"
#include "lib/net/run_sync.h"
#include "lib/net/tls.h"
#include "lib/proto/frame.h"

namespace cairn::client {

namespace asio = boost::asio;
using proto::MessageType;

struct VaultLink::Impl {
  std::unique_ptr<asio::io_context> io;
  std::shared_ptr<net::Connection> conn;
  std::chrono::milliseconds deadline;

  ~Impl() {
    if (conn) net::RunSync(*io, conn->Close());
  }
};

VaultLink::VaultLink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VaultLink::~VaultLink() = default;

Result<std::unique_ptr<VaultLink>> VaultLink::Open(const Identity& identity,
                                                   const std::vector<std::string>& addresses,
                                                   const Options& options) {
  CAIRN_ASSIGN_OR_RETURN(net::TlsContext tls, ClientTls(identity));
  DialOptions dial = IdentityDialOptions(identity);
  dial.role = options.role;
  dial.software = options.software;
  dial.deadline = options.connect_deadline;
  auto io = std::make_unique<asio::io_context>();
  CAIRN_ASSIGN_OR_RETURN(Dialed dialed,
                         net::RunSync(*io, Dial(io->get_executor(), tls, addresses, dial)));
  auto impl = std::make_unique<Impl>();
  impl->io = std::move(io);
  impl->conn = std::move(dialed.conn);
  impl->deadline = options.deadline;
  std::unique_ptr<VaultLink> link(new VaultLink(std::move(impl)));
  link->address_ = dialed.address;
  link->site_ = dialed.hello_ok.site;
  link->version_ = dialed.hello_ok.version;
  return link;
}

Status VaultLink::failure() const { return impl_->conn->failure(); }

Result<VaultLink::Ticket> VaultLink::Begin(MessageType type, MessageType reply, ByteView payload) {
  CAIRN_RETURN_IF_ERROR(net::RunSync(*impl_->io, impl_->conn->WriteFrame(type, payload)));
  bytes_sent_ += proto::kFrameHeaderSize + payload.size();
  Ticket t = next_ticket_++;
  expected_[t] = reply;
  return t;
}

Result<UninitBytes> VaultLink::Await(Ticket ticket) {
  while (!ready_.contains(ticket)) {
    auto it = expected_.find(next_reply_);
    if (it == expected_.end()) return Status::InvalidArgument("awaiting an unknown ticket");
    Result<UninitBytes> r =
        net::RunSync(*impl_->io, ReadExpected(*impl_->conn, it->second, impl_->deadline));
    if (r.ok()) bytes_received_ += proto::kFrameHeaderSize + r->size();
    ready_.emplace(next_reply_, std::move(r));
    expected_.erase(it);
    ++next_reply_;
  }
  auto node = ready_.extract(ticket);
  return std::move(node.mapped());
}

Status VaultLink::BeginRestore(const proto::RestoreBegin& begin) {
  return Call<proto::RestoreBegun>(proto::MessageType::kRestoreBegin, begin,
                                   proto::MessageType::kRestoreBegun)
      .status();
}

Result<std::vector<proto::SnapshotInfo>> VaultLink::ListSnapshots() {
  Bytes payload = proto::ListSnapshots{0}.Encode();
  CAIRN_ASSIGN_OR_RETURN(Ticket t,
                         Begin(MessageType::kListSnapshots, MessageType::kSnapshotList, payload));
  CAIRN_ASSIGN_OR_RETURN(UninitBytes reply, Await(t));
  CAIRN_ASSIGN_OR_RETURN(proto::SnapshotList list, proto::SnapshotList::Decode(reply));
  return std::move(list.snapshots);
}

Result<VaultLink::Ticket> VaultLink::BeginGetRecords(const std::vector<crypto::ChunkId>& ids) {
  proto::GetRecords ask;
  ask.ids = ids;
  Bytes payload = ask.Encode();
  return Begin(MessageType::kGetRecords, MessageType::kRecords, payload);
}

Result<VaultLink::RecordBatch> VaultLink::AwaitRecords(Ticket ticket) {
  RecordBatch batch;
  CAIRN_ASSIGN_OR_RETURN(batch.payload, Await(ticket));
  CAIRN_ASSIGN_OR_RETURN(proto::RecordViews views, proto::RecordViews::Decode(batch.payload));
  if (views.records.empty()) return Status::InvalidArgument("vault sent no record");
  batch.records = std::move(views.records);
  return batch;
}

Result<Bytes> VaultLink::FetchRecord(const crypto::ChunkId& id) {
  CAIRN_ASSIGN_OR_RETURN(Ticket t, BeginGetRecords({id}));
  CAIRN_ASSIGN_OR_RETURN(RecordBatch batch, AwaitRecords(t));
  return Bytes(batch.records.front().begin(), batch.records.front().end());
}

Result<std::vector<Result<Bytes>>> VaultLink::FetchRecords(
    const std::vector<crypto::ChunkId>& ids) {
  RecordStream stream(this);
  for (const crypto::ChunkId& id : ids) stream.Add(id);
  std::vector<Result<Bytes>> out;
  out.reserve(ids.size());
  while (!stream.done()) {
    CAIRN_ASSIGN_OR_RETURN(Result<Bytes> record, stream.Next());
    out.push_back(std::move(record));
  }
  return out;
}

Status VaultLink::RecordStream::Send(std::vector<crypto::ChunkId> ids, bool first) {
  CAIRN_ASSIGN_OR_RETURN(Ticket t, link_->BeginGetRecords(ids));
  Request r{t, std::move(ids)};
  if (first) {
    flight_.push_front(std::move(r));
  } else {
    flight_.push_back(std::move(r));
  }
  return Status::OK();
}

Status VaultLink::RecordStream::SendWaiting(bool partial) {
  while (flight_.size() < kInFlight &&
         waiting_.size() >= (partial ? 1 : proto::kMaxRecordsPerMessage)) {
    const size_t n = std::min(waiting_.size(), proto::kMaxRecordsPerMessage);
    CAIRN_RETURN_IF_ERROR(Send({waiting_.begin(), waiting_.begin() + n}, false));
    waiting_.erase(waiting_.begin(), waiting_.begin() + n);
  }
  return Status::OK();
}

Result<Result<Bytes>> VaultLink::RecordStream::Next() {
  // Whole requests go out whenever there is room, so the vault keeps
  // reading while the caller decodes; a partial one only once the caller
  // has nothing left to read.
  CAIRN_RETURN_IF_ERROR(SendWaiting(/*partial=*/false));
  while (ready_.empty()) {
    CAIRN_RETURN_IF_ERROR(SendWaiting(/*partial=*/true));
    if (flight_.empty()) return Status::InvalidArgument("RecordStream::Next: nothing to read");
    Request r = std::move(flight_.front());
    flight_.pop_front();
    Result<RecordBatch> batch = link_->AwaitRecords(r.ticket);
    size_t done;
    if (!batch.ok()) {
      if (!link_->failure().ok()) return batch.status();  // the link is gone
      ready_.push_back(batch.status());
      done = 1;
    } else {
      done = std::min(batch->records.size(), r.ids.size());
      for (size_t k = 0; k < done; ++k) {
        ready_.emplace_back(Bytes(batch->records[k].begin(), batch->records[k].end()));
      }
    }
    if (done < r.ids.size()) {
      CAIRN_RETURN_IF_ERROR(Send({r.ids.begin() + done, r.ids.end()}, true));
    }
  }
  Result<Bytes> next = std::move(ready_.front());
  ready_.pop_front();
  return next;
}

Result<proto::DeltaReply> VaultLink::GetDelta(const crypto::ChunkId& id, ByteView signature,
                                              const crypto::ChunkId& have) {
  proto::GetDelta ask;
  ask.request_id = ++next_request_id_;
  ask.id = id;
  ask.signature.assign(signature.begin(), signature.end());
  ask.have = have;
  Bytes payload = ask.Encode();
  CAIRN_ASSIGN_OR_RETURN(Ticket t, Begin(MessageType::kGetDelta, MessageType::kDelta, payload));
  CAIRN_ASSIGN_OR_RETURN(UninitBytes reply, Await(t));
  CAIRN_ASSIGN_OR_RETURN(proto::DeltaReply delta, proto::DeltaReply::Decode(reply));
  if (delta.request_id != ask.request_id) {
    return Status::InvalidArgument("vault answered get_delta out of step");
  }
  return delta;
}

}  // namespace cairn::client
