// UringEnv: PosixEnv with its data path on io_uring.
//
// Every metadata operation (open, stat, rename, SyncDir, ...) is PosixEnv's.
// RandomAccessFile::Read/ReadBatch and WritableFile::Append/Sync go through
// an IoRing owned by the calling thread: each thread lazily creates its own
// ring on first use (per UringEnv instance), which keeps IoRing's
// one-owner-thread rule without any locking. A RandomAccessFile may therefore
// be read from many threads at once, each on its own ring. Where io_uring is
// unavailable the rings fall back to pread/pwrite (see lib/io/uring.h), so
// semantics, durability and error codes are exactly PosixEnv's.
//
// Lifetime: files do not depend on the UringEnv that opened them. A thread's
// ring lives until the thread exits; rings of UringEnvs destroyed meanwhile
// are released the next time that thread creates a ring.
//
// Failure: if a thread cannot create its ring (e.g. ENOMEM under a tight
// RLIMIT_MEMLOCK), its reads and writes fail with that status.
#ifndef CAIRN_LIB_IO_URING_ENV_H_
#define CAIRN_LIB_IO_URING_ENV_H_

#include <memory>
#include <string>

#include "lib/io/posix_env.h"
#include "lib/io/uring.h"

namespace cairn::io {

class UringEnv : public PosixEnv {
 public:
  // `options` configures every ring this Env creates (queue depth, fallback).
  explicit UringEnv(const IoRingOptions& options = {});
  ~UringEnv() override;

  // Process-wide UringEnv with default options; never destroyed.
  static UringEnv* Default();

  // Whether the calling thread's ring uses io_uring (creating it if needed).
  Result<bool> ThreadUsesIoUring();

  // Reads a descriptor the caller opened itself (say with openat(2) and
  // O_NOFOLLOW relative to a directory) through this Env's rings. Takes
  // ownership of `fd`; `path` is for error messages.
  std::unique_ptr<RandomAccessFile> AdoptForReading(UniqueFd fd, std::string path) {
    return WrapRandomAccessFile(std::move(fd), std::move(path));
  }

  struct RingSource;  // shared with the files; defined in uring_env.cc

 protected:
  std::unique_ptr<WritableFile> WrapWritableFile(UniqueFd fd, std::string path,
                                                 uint64_t size) override;
  std::unique_ptr<RandomAccessFile> WrapRandomAccessFile(UniqueFd fd, std::string path) override;

 private:
  std::shared_ptr<RingSource> source_;
};

// A new UringEnv; for tests and for callers that want their own ring options.
std::unique_ptr<Env> NewUringEnv(const IoRingOptions& options = {});

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_URING_ENV_H_
