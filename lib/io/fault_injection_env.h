// FaultInjectionEnv: wraps another Env (normally a MemEnv) to fail writes and
// syncs on request, report a full disk, and simulate power loss.
//
// Power-loss model (DropUnsyncedData):
//   * File data is durable up to the size at its last successful Sync() (or
//     TruncateFile()). Files this Env never opened for writing count as fully
//     durable. NewWritableFile on an existing file makes its durable size 0.
//   * A file created, or renamed into place, through this Env is durable as a
//     directory entry only after SyncDir() of its parent. If it is not, power
//     loss removes it; if the rename replaced a file whose entry was durable,
//     that file's durable content comes back instead.
//   Not modelled: removals and renames are not undone beyond the above (a
//   removed file does not reappear, a rename's source does not come back), and
//   directories are durable as soon as they are created.
//
// Faults are one-shot or budgeted and apply to files opened through this Env:
//   FailNthWrite(n) / FailNthSync(n): the n-th Append / Sync from now
//   (1-based, counted across all files) fails with IOError and writes or syncs
//   nothing. SetNoSpaceAfter(b): once the bytes appended since the call would
//   exceed b, Append fails with NoSpace and writes nothing.
//
// After DropUnsyncedData(), writable files opened before it are dead, as after
// a real crash: Append and Sync on them fail with IOError.
//
// Thread safety: all methods may be called from any thread; one mutex
// serialises fault bookkeeping (and the base Env's Append/Sync under it).
// Ownership: `base` is not owned and must outlive this Env and its files.
#ifndef CAIRN_LIB_IO_FAULT_INJECTION_ENV_H_
#define CAIRN_LIB_IO_FAULT_INJECTION_ENV_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/io/env.h"

namespace cairn::io {

class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* base);
  ~FaultInjectionEnv() override;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewExclusiveFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;

  // Simulates power loss (see the model above). Returns the first error of
  // the base Env while rewinding; the bookkeeping is reset either way.
  Status DropUnsyncedData();

  // 0 disables. Replaces any earlier setting of the same kind.
  void FailNthWrite(uint64_t n);
  void FailNthSync(uint64_t n);
  void SetNoSpaceAfter(uint64_t bytes);
  // Removes every pending fault (not the durability bookkeeping).
  void ClearFaults();

  // Calls to Append / Sync on files of this Env, failed ones included, and
  // bytes that Append actually passed to the base Env.
  uint64_t append_count() const;
  uint64_t sync_count() const;
  uint64_t bytes_appended() const;
  void ResetCounters();

  struct FileState;  // durability bookkeeping of one file

 private:
  friend class FaultInjectionWritableFile;

  // Called by files, under mu_.
  Status BeforeAppend(uint64_t generation, size_t size);
  Status BeforeSync(uint64_t generation);

  Env* const base_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_;  // by normalized path
  uint64_t generation_ = 0;                                  // bumped by DropUnsyncedData

  uint64_t writes_until_failure_ = 0;  // 0: no write fault armed
  uint64_t syncs_until_failure_ = 0;   // 0: no sync fault armed
  bool no_space_armed_ = false;
  uint64_t no_space_budget_ = 0;
  uint64_t no_space_used_ = 0;

  uint64_t append_count_ = 0;
  uint64_t sync_count_ = 0;
  uint64_t bytes_appended_ = 0;
};

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_FAULT_INJECTION_ENV_H_
