// PackStore: where a vault's pack files live.
//
// A pack is named by (department, pack id) and written front to back,
// synced, sealed, then only read (lib/repo/pack.h). The vault never names a
// file itself: it asks its PackStore for the Env that holds packs and for
// the name of a pack in it, and lib/repo's PackWriter, PackReader and
// RecoverPack do the rest through that Env. So the store is a seam in the
// leveldb sense: the local store is a directory tree on this machine
// (packs/<department>/<pack id, 16 hex>.pack, through io_uring), a test
// plugs a fault-injection or in-memory Env beneath it, and a distributed
// store (Ceph RADOS: one object per pack, one namespace per department)
// implements the same few Env calls for its own names.
//
// The contract every PackStore keeps (tests: pack_store_test.cc, one suite
// run against each implementation):
//   - NewExclusiveFile on a pack name never replaces an existing pack;
//   - data appended is durable once the file's Sync() returns OK, and a new
//     pack's name once SyncDir(PackDir(department)) returns OK (PackWriter
//     does both at its first Sync);
//   - TruncateFile is durable on return (recovery cuts torn tails);
//   - reads at any offset, from any thread, of any pack, sealed or open;
//   - ListPacks names every pack whose name is durable, and no other.
//
// Thread-safe: any thread may use a PackStore and its Env at once.
#ifndef CAIRN_VAULT_STORE_PACK_STORE_H_
#define CAIRN_VAULT_STORE_PACK_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/status.h"
#include "lib/io/env.h"

namespace cairn::vault {

class PackStore {
 public:
  virtual ~PackStore() = default;

  // The Env through which pack files are created, read, synced, truncated
  // and removed. Owned by the store (or by whoever made it); lives as long.
  virtual io::Env* env() = 0;
  // The name of a pack in env(), and the directory its name lives in.
  virtual std::string PackPath(uint32_t department, uint64_t pack_id) const = 0;
  virtual std::string PackDir(uint32_t department) const = 0;
  // Makes PackDir(department) exist (idempotent) before a pack is created.
  virtual Status PrepareDepartment(uint32_t department) = 0;
  // Pack IDs of a department, ascending; empty for a department with none.
  virtual Result<std::vector<uint64_t>> ListPacks(uint32_t department) = 0;
  // Departments that hold at least one pack directory, ascending.
  virtual Result<std::vector<uint32_t>> ListDepartments() = 0;
  // "local:/srv/cairn/packs", for logs and status.
  virtual std::string Describe() const = 0;
};

// The naming every store shares: a pack's file or object name
// ("<16 hex>.pack"), and the pack or department IDs in a listing of names
// (other names ignored), ascending.
std::string PackName(uint64_t pack_id);
std::vector<uint64_t> PackIdsIn(const std::vector<std::string>& names);
std::vector<uint32_t> DepartmentIdsIn(const std::vector<std::string>& names);

// Packs under `root` in `env` (created if missing): root/<department>/<16
// hex>.pack. `env` is not owned.
Result<std::unique_ptr<PackStore>> OpenLocalPackStore(io::Env* env, std::string root);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_STORE_PACK_STORE_H_
