// MemEnv: files, directories, a clock and randomness, all in memory, for fast
// deterministic tests.
//
// Semantics follow PosixEnv where tests can tell: a file needs an existing
// parent directory, NewWritableFile truncates an existing file in place
// (open readers see it), a removed or renamed-over file stays readable
// through handles opened before, and errors carry the same codes (NotFound
// for a missing file or parent, InvalidArgument for a directory where a file
// is expected). Every operation is durable at once: MemEnv models a disk that
// never loses power; wrap it in FaultInjectionEnv to model one that does.
// Directories cannot be renamed or removed.
//
// Paths are plain strings; trailing slashes and repeated slashes are ignored.
// "/" and "." always exist. There is no symlink, permission or size limit.
//
// The clock starts at MemEnvOptions values and moves only via AdvanceClock().
// FillRandom() is a seeded generator: the same seed gives the same bytes.
//
// Thread safety: one mutex guards everything; any number of threads may use
// one MemEnv. Files hold a reference to the shared state, so they stay valid
// even after the MemEnv is destroyed.
#ifndef CAIRN_LIB_IO_MEM_ENV_H_
#define CAIRN_LIB_IO_MEM_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/io/env.h"

namespace cairn::io {

struct MemEnvOptions {
  // Seed for FillRandom(). Default: a fixed constant, so a test run is
  // reproducible; change it to explore other sequences.
  uint64_t random_seed = 0x636169726e2d6d65;  // "cairn-me"
  // NowMicros() at construction. Default 2024-01-01T00:00:00Z: a plausible
  // date, fixed so that time-dependent code is reproducible.
  uint64_t start_wall_micros = uint64_t{1704067200} * 1'000'000;
  // MonotonicMicros() at construction. Default 1 s (not 0, so "no deadline"
  // sentinels of 0 are never confused with the current time).
  uint64_t start_monotonic_micros = 1'000'000;
};

class MemEnv : public Env {
 public:
  explicit MemEnv(const MemEnvOptions& options = {});
  ~MemEnv() override;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewExclusiveFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;

  bool FileExists(const std::string& path) override;
  Result<uint64_t> GetFileSize(const std::string& path) override;
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status CreateDir(const std::string& path) override;
  Status SyncDir(const std::string& dir) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;

  uint64_t NowMicros() override;
  uint64_t MonotonicMicros() override;
  void FillRandom(MutableByteView out) override;

  // Moves both clocks forward by `micros`.
  void AdvanceClock(uint64_t micros);

  struct State;  // shared with open files; defined in mem_env.cc

 private:
  std::shared_ptr<State> state_;
};

// A fresh MemEnv with default options.
std::unique_ptr<Env> NewMemEnv();

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_MEM_ENV_H_
