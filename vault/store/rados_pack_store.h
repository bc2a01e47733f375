// A PackStore in a Ceph RADOS pool (librados, Debian 12's ceph 16.2).
//
// Each pack is one object, named like the local store's file
// ("<16 hex>.pack"), in the namespace "<prefix><department>". A department
// is registered by an empty object named after it in the namespace
// "<prefix>departments", so ListDepartments is one short listing. The
// prefix ("v-<8 hex>/", chosen at `cairn-vault init`) keeps vaults that
// share a pool apart.
//
// How pack_store.h's contract maps onto RADOS (doc/design.md section 26):
//   - NewExclusiveFile is a write op with LIBRADOS_CREATE_EXCLUSIVE: -EEXIST
//     when the object exists, which is never touched;
//   - Append buffers; writes go out as asynchronous writes at explicit
//     offsets of at most `write_chunk` bytes, and Sync() returns once every
//     one is acknowledged. An OSD acknowledges a write once it is durable on
//     every replica of the placement group (acting set), so "synced" means
//     on disk on `size` OSDs;
//   - an object exists from the create op's acknowledgement: SyncDir is a
//     no-op;
//   - TruncateFile is one op, durable on acknowledgement;
//   - reads are ranged; ReadBatch sends every request at once (rados_aio_read)
//     and waits for all, so a restore keeps many reads in flight;
//   - sealed packs are never written again: immutability is the vault's
//     convention (no overwrite API is used on them).
// Every operation gives up after `op_timeout` (librados's rados_osd_op_timeout
// and rados_mon_op_timeout): a dead OSD fails a backup with a clear error
// instead of hanging it.
#ifndef CAIRN_VAULT_STORE_RADOS_PACK_STORE_H_
#define CAIRN_VAULT_STORE_RADOS_PACK_STORE_H_

#include <chrono>
#include <memory>
#include <string>

#include "lib/base/status.h"
#include "vault/store/pack_store.h"

namespace cairn::vault {

struct RadosStoreOptions {
  std::string pool;       // an existing pool
  std::string ceph_conf;  // ceph.conf naming the monitors (and the keyring)
  std::string user;       // the client's name without "client.": "cairn"
  std::string prefix;     // namespace prefix of this vault's objects
  // Every RADOS operation fails after this long. Default 30 s.
  std::chrono::seconds op_timeout{30};
  // Largest single write. Default 4 MiB.
  size_t write_chunk = 4u << 20;
};

// Connects to the cluster and checks the pool. Unavailable with the
// cluster's reason when it cannot be reached.
Result<std::unique_ptr<PackStore>> OpenRadosPackStore(const RadosStoreOptions& options);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_STORE_RADOS_PACK_STORE_H_
