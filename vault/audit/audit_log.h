// The audit trail: every state change of the vault, appended as one line to
// DIR/audit/log, hash-chained, with Ed25519-signed checkpoints
// (doc/design.md section 17 is normative for the bytes).
//
//   {"seq":7,"time":"2026-12-02T09:30:00.123Z","time_micros":...,"actor":"user alice",
//    "address":"10.0.0.9:51234","action":"department.create","department":"finance",
//    "object":"finance","details":{...},"prev":"<64 hex>","hash":"<64 hex>"}
//
// `hash` is the SHA-256 of the line's bytes before `,"hash":"`, which
// include `prev`, the hash of the entry before (64 zeros for the first). A
// checkpoint is an entry of action "audit.checkpoint" whose details hold the
// vault's signature over ("cairn-audit-checkpoint-v1", its seq, its prev):
// it seals everything before it. A checkpoint is written after every
// kCheckpointEvery entries and by the server at least every few minutes.
//
// Appending is safe from several processes at once (the server and a
// command): the file is locked for each append, which reads the last entry,
// writes the next line and fdatasyncs it before returning. The head (seq and
// hash of the newest entry) is also kept in the catalog, so that a log
// truncated after its last checkpoint does not verify either.
#ifndef CAIRN_VAULT_AUDIT_AUDIT_LOG_H_
#define CAIRN_VAULT_AUDIT_AUDIT_LOG_H_

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/io/env.h"
#include "vault/catalog/catalog.h"

namespace cairn::vault {

inline constexpr uint64_t kCheckpointEvery = 64;

struct AuditEntry {
  uint64_t seq = 0;
  uint64_t time_micros = 0;
  std::string actor;    // "user alice", "agent <serial> (host)", "local:root", ...
  std::string address;  // the remote endpoint, or "local"
  std::string action;   // "department.create", "snapshot.commit", ...
  std::string department;
  std::string object;
  boost::json::object details;
  std::string prev, hash;  // hex
  std::string line;        // as stored (without the newline)
};

struct AuditFilter {
  uint64_t since_micros = 0, until_micros = 0;  // 0: open
  std::string actor, department, action;        // substring of actor; exact others
  size_t limit = 0;                             // the newest `limit` (0: all)
};

struct AuditVerification {
  bool ok = true;
  uint64_t entries = 0, checkpoints = 0;
  uint64_t last_checkpoint_seq = 0;
  // The first entry that does not hold: its seq (0 for the log as a whole),
  // line number and what is wrong with it.
  uint64_t broken_seq = 0, broken_line = 0;
  std::string reason;
};

class AuditLog {
 public:
  // Creates DIR/audit/ and its signing key pair (init).
  static Status Create(io::Env* env, const std::string& data_dir);
  // `catalog` keeps the head; may be null (offline verification of a
  // copy without its catalog, say). A data directory made before the audit
  // trail gets its directory and key here.
  static Result<std::unique_ptr<AuditLog>> Open(io::Env* env, const std::string& data_dir,
                                                Catalog* catalog);

  // Appends one entry (and a checkpoint after every kCheckpointEvery).
  // Durable on return.
  Status Append(std::string actor, std::string address, std::string action, std::string department,
                std::string object, boost::json::object details);
  // Appends a checkpoint if anything was appended since the last one.
  Status Checkpoint();

  // Entries in order (checkpoints included), filtered.
  Result<std::vector<AuditEntry>> List(const AuditFilter& filter) const;
  // Calls `sink` with every entry after `after_seq`, in order, until it
  // returns false (the syslog forwarder).
  Status ForEachAfter(uint64_t after_seq, const std::function<bool(const AuditEntry&)>& sink) const;

  // Up to `max` entries from byte `offset` of the log (the start of a
  // line), in order; `*next` is the offset after the last one read. A line
  // still being written (no newline yet) is left for the next call. Lets a
  // follower (the syslog forwarder) read on without rescanning the log.
  Status ReadFrom(uint64_t offset, size_t max, std::vector<AuditEntry>* out, uint64_t* next) const;
  // The newest entry's seq as the catalog recorded it (0: none, or no
  // catalog).
  uint64_t HeadSeq() const;

  std::string log_path() const;
  std::string public_key_path() const;
  // The Ed25519 signature of `message` with the trail's signing key: the
  // vault's evidence key, which signs drill reports too.
  Result<Bytes> Sign(ByteView message) const;

  // Verifies the log at `data_dir` without opening a vault: every line
  // parses, seq counts up from 1, each prev is the hash before, each hash
  // is the line's own, every checkpoint's signature holds under
  // `public_key_pem` (default: the one in the directory), and the log is
  // not shorter than the head the catalog recorded (`head_seq`, 0: unknown).
  static AuditVerification Verify(io::Env* env, const std::string& data_dir,
                                  const std::string& public_key_pem, uint64_t head_seq,
                                  const std::string& head_hash);

 private:
  AuditLog() = default;
  Status AppendLocked(int fd, AuditEntry entry);

  io::Env* env_ = nullptr;
  std::string data_dir_;
  Catalog* catalog_ = nullptr;
  std::string signing_key_pem_;
  std::mutex mu_;  // one append at a time in this process (flock for others)
};

// Parses one stored line. InvalidArgument naming what is wrong.
Result<AuditEntry> ParseAuditLine(std::string_view line);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_AUDIT_AUDIT_LOG_H_
