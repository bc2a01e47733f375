// The pulling half of replication: a DR vault pulls a source vault's
// snapshots into itself (doc/design.md section 13, doc/protocol.md
// "Replication"). `cairn-replicator run` drives it beside the DR vault's
// listener (vault/daemon.h).
//
// It pulls from the source with a replicator certificate (`cairn-replicator
// enroll`, an identity in lib/client). The source never connects to the DR
// site and no message it can send deletes or overwrites anything there:
// what arrives goes through this vault's VaultService (key escrow, rule 6.3
// before every commit).
//
// One pass:
//   1. set-up (replica_setup): departments and their keys (escrowed: wrapped
//      at once under this vault's master key), agents and revocations, the
//      source CA and a certificate for this vault from it (so the source's
//      agents accept this vault when they fail over), and the agents'
//      ordered vault addresses;
//   2. list the source's snapshots after the cursor, oldest first;
//   3. for each: its manifest; the chunks this vault lacks; those records,
//      fetched as ciphertext in pipelined batches in the order the source
//      keeps them (its packs front to back), each checked (keyless
//      checksum, and the ID it was asked for) and stored; flushed every
//      64 MiB, so a killed or cut-off pass refetches at most that;
//   4. verify: every manifest chunk is in this vault's index, and every
//      record stored by this pass reads back with a good checksum;
//   5. commit the snapshot under its source ID, then move the cursor.
// The cursor only moves past a snapshot that is committed and verified here.
//
// Resumable: what a pass made durable is never fetched again (the index
// says so). Thread-compatible: one pass at a time.
#ifndef CAIRN_VAULT_REPLICATION_PULLER_H_
#define CAIRN_VAULT_REPLICATION_PULLER_H_

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "lib/client/vault_link.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

// DIR/replicator/: the replicator's identity at the source (a client
// identity without department keys; agent.toml names the source).
std::string ReplicatorIdentityDir(const std::string& data_dir);

// Where a pass is, for a progress line.
struct PassProgress {
  uint64_t snapshot = 0, snapshots = 0;  // the one being pulled, of those listed
  uint64_t records = 0, bytes = 0;       // fetched so far by the pass
  uint64_t records_to_fetch = 0;         // by the pass so far, this snapshot included
  double seconds = 0;
};

struct ReplicatorOptions {
  // Where agents reach this vault, in order ("host:port"); sent to the
  // source at set-up. Default: the listen address.
  std::vector<std::string> advertise;
  // Bytes per second fetched from the source, 0 for no limit.
  uint64_t limit_rate = 0;
  // Reply deadline for the source.
  std::chrono::milliseconds deadline{std::chrono::seconds(60)};
  // Called about every 250 ms while records are fetched; may be empty.
  std::function<void(const PassProgress&)> progress;
};

struct PassStats {
  uint64_t snapshots = 0;       // committed here by this pass
  uint64_t records = 0;         // fetched and stored
  uint64_t bytes = 0;           // record bytes fetched
  uint64_t chunks_present = 0;  // manifest chunks already here
  uint64_t bytes_received = 0;  // from the source, frames included
  uint64_t cursor = 0;          // after the pass
  uint64_t source_latest = 0;   // the source's newest snapshot number
  uint64_t pending = 0;         // source snapshots not here yet
  // Seconds from the source's commit to this vault's commit, for the last
  // snapshot this pass committed (-1: none).
  double last_lag_seconds = -1;
  // The recovery point the DR site achieves at the end of the pass: 0 when
  // every source snapshot is here, else the age of the oldest one missing
  // (what losing the source now would lose, beyond its own last backup).
  double lag_seconds = 0;
  // Age of the newest snapshot held here (-1: none).
  double newest_age_seconds = -1;
  double seconds = 0;
  std::vector<std::string> committed;  // snapshot IDs
};

// A pass as JSON ("ok", the figures above; a figure that does not exist
// yet is null): `cairn-replicator run --json` prints it, and the DR vault
// records it (VaultService::RecordReplicationPass) with "time_micros".
boost::json::object PassJson(const PassStats& stats);

// The records of damaged chunks, from the peer this vault replicates
// with: its source (a DR copy) or, at a primary after `cairn-replicator
// enroll` against its DR site, the DR copy (doc/design.md 22.4). Uses the
// replicator identity in DIR/replicator/; NotFound when there is none.
// `describe` is set to the peer's address list.
Result<VaultService::RecordFetcher> PeerRecordFetcher(const std::string& data_dir,
                                                      std::string* describe);

class ReplicationPuller {
 public:
  // `service` is the DR vault's, opened to serve (it has a store).
  // `identity` is the loaded replicator identity; its agent.toml's
  // vault_addresses name the source.
  ReplicationPuller(VaultService* service, client::Identity identity, ReplicatorOptions options);

  // One pass. Fails as a whole when the source cannot be reached or
  // answers wrongly; snapshots committed before the failure stay. A pass
  // that completes is recorded in the catalog (the API, the metrics and the
  // replication-lag alert read it).
  // `setup_only`: the set-up step alone (department keys, agents, trust),
  // which a starting DR vault runs before it serves.
  Result<PassStats> RunPass(bool setup_only = false);

  // Cuts an ongoing pass short between batches (from another thread).
  void Cancel() { cancelled_ = true; }

 private:
  Result<PassStats> Pass(bool setup_only);
  Status Setup(client::VaultLink* link);
  VaultService* service_;
  client::Identity identity_;
  ReplicatorOptions options_;
  std::atomic<bool> cancelled_{false};
  std::string cursor_key_;
  std::unique_ptr<client::VaultLink> link_;  // to the source, during a pass
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_REPLICATION_PULLER_H_
