// A pipelined request/reply connection to a vault: cairn-restore's, in the
// restore role (doc/protocol.md, "Snapshots and restore": the agent's
// certificate, read requests only), and the DR site's replicator's, in the
// replicator role.
//
// Requests are pipelined: Begin*() sends a request and returns its ticket at
// once; Await*(ticket) returns that request's reply, reading (and keeping)
// the replies of earlier tickets on the way, since the vault answers in
// order. So a caller can keep a request in flight while it decodes the
// previous reply, and still fetch a delta base synchronously in between.
//
// A VaultLink is used from one thread at a time. Restore opens several, one
// per worker, to fetch in parallel. Byte counters include frame headers.
#ifndef CAIRN_LIB_CLIENT_VAULT_LINK_H_
#define CAIRN_LIB_CLIENT_VAULT_LINK_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "lib/crypto/chunk_id.h"
#include "lib/proto/messages.h"

namespace cairn::client {

class VaultLink {
 public:
  struct Options {
    // Bound on each reply. A get_delta of a 16 MiB chunk makes the vault
    // decrypt a chain and run librsync: allow for it.
    std::chrono::milliseconds deadline{std::chrono::seconds(120)};
    // Bound on connecting to one address: TCP, the TLS handshake and
    // HelloOk. Default 10 s: a vault that accepts and then says nothing is
    // given up on quickly, naming its address, and the next one is tried.
    std::chrono::milliseconds connect_deadline{std::chrono::seconds(10)};
    // The role named in Hello: restore (agent certificate, read-only), or
    // replicator (replicator certificate, every department).
    proto::Role role = proto::Role::kRestore;
    // Hello's software string, for the vault's logs.
    std::string software = "cairn-restore 0.1.0";
  };

  // Connects to the first of `addresses` that answers, with `identity`. Unavailable listing every
  // address's failure when none does; PermissionDenied (no retry elsewhere) when a vault refuses
  // the certificate.
  static Result<std::unique_ptr<VaultLink>> Open(const Identity& identity,
                                                 const std::vector<std::string>& addresses,
                                                 const Options& options);
  ~VaultLink();
  VaultLink(const VaultLink&) = delete;
  VaultLink& operator=(const VaultLink&) = delete;

  // The address that answered, and the site and department it named.
  const std::string& address() const { return address_; }
  const std::string& site() const { return site_; }
  // The protocol version the vault chose (proto::kProtocolVersion or lower).
  uint16_t version() const { return version_; }

  // Newest first.
  Result<std::vector<proto::SnapshotInfo>> ListSnapshots();

  // Announces a restore, a verification or a browse of a snapshot
  // (restore_begin): the vault audits it, and reads records on this link
  // only after it.
  Status BeginRestore(const proto::RestoreBegin& begin);

  using Ticket = uint64_t;
  Result<Ticket> BeginGetRecords(const std::vector<crypto::ChunkId>& ids);
  // A Records reply, decoded in place: each of `records` points into
  // `payload`. Moving the batch keeps them valid (the payload's storage
  // moves with it); copying it does not.
  struct RecordBatch {
    UninitBytes payload;
    std::vector<ByteView> records;
  };
  // The records for a prefix of the ticket's IDs (at least one), or the
  // vault's error for the first of them.
  Result<RecordBatch> AwaitRecords(Ticket ticket);

  // One record, synchronously (pipelined requests stay in step).
  Result<Bytes> FetchRecord(const crypto::ChunkId& id);

  // Every record of `ids`, one result per ID (through a RecordStream): an
  // ID the vault refuses gets that error without failing the others. Fails
  // as a whole only when the connection does.
  Result<std::vector<Result<Bytes>>> FetchRecords(const std::vector<crypto::ChunkId>& ids);

  // Records in the order their IDs were added, with up to kInFlight
  // requests of kMaxRecordsPerMessage IDs kept ahead of the reader (a
  // shorter one goes out only when the reader has nothing left to read):
  // the vault reads the next records while the caller decodes these, and
  // the caller may add IDs as it reads (a directory's subdirectories). A
  // short reply, or one that refuses its first ID, has the rest of its IDs
  // asked for again ahead of the later requests, so the order holds.
  class RecordStream {
   public:
    static constexpr size_t kInFlight = 4;
    explicit RecordStream(VaultLink* link) : link_(link) {}
    void Add(const crypto::ChunkId& id) { waiting_.push_back(id); }
    // True when every record added has been read.
    bool done() const { return waiting_.empty() && flight_.empty() && ready_.empty(); }
    // The next record (done() must be false), or the vault's refusal of
    // it. Fails only when the link does.
    Result<Result<Bytes>> Next();

   private:
    struct Request {
      Ticket ticket;
      std::vector<crypto::ChunkId> ids;
    };
    Status Send(std::vector<crypto::ChunkId> ids, bool first);
    // Asks for waiting IDs while fewer than kInFlight requests are out:
    // whole requests only, or (partial) down to the last ID.
    Status SendWaiting(bool partial);
    VaultLink* link_;
    std::deque<crypto::ChunkId> waiting_;  // not yet asked for
    std::deque<Request> flight_;           // asked for, in reading order
    std::deque<Result<Bytes>> ready_;      // read, not yet returned
  };

  // get_delta (lib/proto/messages.h): `signature` may be empty when `have`
  // (the ID of the client's bytes) is given.
  Result<proto::DeltaReply> GetDelta(const crypto::ChunkId& id, ByteView signature,
                                     const crypto::ChunkId& have = {});

  // One request and its reply (Reply::Decode of the `reply` frame), in
  // step with pipelined requests. For the replication messages.
  template <typename Reply, typename Request>
  Result<Reply> Call(proto::MessageType type, const Request& request, proto::MessageType reply) {
    Bytes payload = request.Encode();
    CAIRN_ASSIGN_OR_RETURN(Ticket t, Begin(type, reply, payload));
    CAIRN_ASSIGN_OR_RETURN(UninitBytes bytes, Await(t));
    return Reply::Decode(bytes);
  }
  // Pipelined record fetches of any request type answered by Records.
  Result<Ticket> BeginRequest(proto::MessageType type, ByteView payload, proto::MessageType reply) {
    return Begin(type, reply, payload);
  }

  // OK while the connection works; after a transport failure (the vault
  // went away, a deadline passed) every later request fails with this.
  // An Error reply to one request is not a failure of the link.
  Status failure() const;

  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  struct Impl;
  explicit VaultLink(std::unique_ptr<Impl> impl);
  Result<Ticket> Begin(proto::MessageType type, proto::MessageType reply, ByteView payload);
  Result<UninitBytes> Await(Ticket ticket);

  std::unique_ptr<Impl> impl_;
  std::string address_;
  std::string site_;
  uint16_t version_ = 0;
  Ticket next_ticket_ = 0;
  Ticket next_reply_ = 0;
  std::map<Ticket, proto::MessageType> expected_;  // ticket -> reply type, not yet read
  std::map<Ticket, Result<UninitBytes>> ready_;    // read, not yet awaited
  uint32_t next_request_id_ = 0;
  uint64_t bytes_sent_ = 0;
  uint64_t bytes_received_ = 0;
};

}  // namespace cairn::client

#endif  // CAIRN_LIB_CLIENT_VAULT_LINK_H_
