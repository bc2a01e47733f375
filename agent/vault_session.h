// The agent's side of one backup session with the vault, behind an
// interface so the backup pipeline (backup.h) can be tested without a vault.
//
// A VaultSession is used from one thread (the pipeline's network thread):
// calls block until the vault answered. NetVaultSession speaks the backup
// sequence of doc/protocol.md over mutual TLS: Hello{agent} -> HelloOk ->
// SessionBegin -> SessionBegun when opened, then HaveChunks, PutRecord,
// Flush, ManifestPart and Commit as the pipeline asks.
#ifndef CAIRN_AGENT_VAULT_SESSION_H_
#define CAIRN_AGENT_VAULT_SESSION_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "lib/crypto/chunk_id.h"
#include "lib/proto/messages.h"

namespace cairn::agent {

// The software string the agent sends in Hello.
inline constexpr const char* kAgentSoftware = "cairn-agent 0.1.0";

class VaultSession {
 public:
  virtual ~VaultSession() = default;

  // Whether the vault holds each ID durably (1..proto::kMaxIdsPerMessage
  // IDs). A chunk reported present is never sent.
  virtual Result<std::vector<bool>> HaveChunks(const std::vector<crypto::ChunkId>& ids) = 0;

  // Streams one record (no reply). It is durable only after a later Flush
  // returned OK.
  virtual Status PutRecord(ByteView record) = 0;
  // A delta record and the ID of its base, which the vault keeps while it
  // keeps the delta. Sessions that do not carry bases send the record alone.
  virtual Status PutDeltaRecord(const crypto::ChunkId& base, ByteView record) {
    (void)base;
    return PutRecord(record);
  }

  // Durability barrier: OK means every record put so far is durable and
  // indexed at the vault.
  virtual Status Flush() = 0;

  // Called when the session has been idle for a while (the pipeline calls
  // it after 10 s without another call), so the vault's idle deadline does
  // not drop a session whose agent is busy reading a slow disk.
  virtual Status KeepAlive() = 0;

  // Sends the manifest (every ID the snapshot references, each once) in
  // parts, then Commit; returns the snapshot ID from CommitOk. NotFound
  // when the vault lacks a manifest chunk.
  virtual Result<std::string> Commit(const crypto::ChunkId& root_tree,
                                     const std::vector<crypto::ChunkId>& manifest,
                                     const proto::SnapshotStats& stats) = 0;
};

struct SessionOptions {
  // Bound on each reply. Default 60 s: a Flush may wait for the vault to
  // fsync a pack under load.
  std::chrono::milliseconds deadline{std::chrono::seconds(60)};
  // Bound on connecting to one address (TCP, TLS handshake, HelloOk).
  // Default 10 s.
  std::chrono::milliseconds connect_deadline{std::chrono::seconds(10)};
  // The session's kind in session_begin (image mode sends kImage).
  proto::SessionKind kind = proto::SessionKind::kFiles;
};

// Dials the identity's vault addresses (lib/client/dial.h) in the agent
// role, adopts the vault's address advice, and begins a session (files or
// image, options.kind) for `paths`. Unavailable when no vault answers (each
// address's failure in the message); PermissionDenied when the vault
// refuses the certificate.
Result<std::unique_ptr<VaultSession>> OpenVaultSession(const client::Identity& identity,
                                                       const std::vector<std::string>& paths,
                                                       const SessionOptions& options = {});

// The clock a bandwidth limit waits on; empty members mean the real one.
struct RateClock {
  std::function<uint64_t()> now_micros;
  std::function<void(uint64_t micros)> sleep;
};

// A session that sends records at most `bytes_per_second` on average (a
// policy's bandwidth limit, doc/design.md section 20): PutRecord waits
// while the records sent run ahead of the rate, after a burst of one
// second's worth (at least 1 MiB). The wait slows the whole pipeline, whose
// memory stays bounded as before. Other calls pass through.
std::unique_ptr<VaultSession> LimitBandwidth(std::unique_ptr<VaultSession> inner,
                                             uint64_t bytes_per_second, RateClock clock = {});

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_VAULT_SESSION_H_
