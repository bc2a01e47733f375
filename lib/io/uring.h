// IoRing: the one owned io_uring wrapper in Cairn (liburing behind a pimpl,
// so including this header does not pull in <liburing.h>).
//
// Batches of positioned reads and writes are submitted up to queue_depth at a
// time. Each in-flight request is named by its index in the batch
// (user_data). Short reads are resubmitted for the remainder until the buffer
// is full or a read returns 0 (end of file); short writes are resubmitted for
// the remainder; -EAGAIN and -EINTR completions are resubmitted. A negative
// completion result becomes a Status in exactly one place (ErrnoToStatus).
//
// Fallback: when the kernel has no io_uring (io_uring_queue_init fails with
// ENOSYS or EPERM, as under seccomp or io_uring_disabled=2), when the
// environment variable CAIRN_DISABLE_IO_URING=1 is set, or when
// options.force_fallback is true, the ring transparently serves every call
// with pread/pwrite/fdatasync. Results are identical; uses_io_uring() says
// which path is active.
//
// Threading: a ring has ONE owner thread, the thread that called Create().
// Every method must be called from it (asserted in debug builds). Use one
// ring per thread (UringEnv keeps a thread_local ring).
//
// Buffers: every call is synchronous. The buffers in a batch must stay valid
// until the call returns, and are not touched after it returns.
#ifndef CAIRN_LIB_IO_URING_H_
#define CAIRN_LIB_IO_URING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>

#include "lib/base/bytes.h"
#include "lib/base/status.h"
#include "lib/io/env.h"
#include "lib/io/file_io.h"

namespace cairn::io {

struct IoRingOptions {
  // Submission queue entries, and so the most requests in flight at once.
  // Default 64: enough to keep an NVMe device or the page cache busy from
  // one thread; deeper rings cost locked kernel memory (about 64 B per SQE
  // plus 32 B per CQE) and give little beyond ~128 on one device.
  // Sanitize() maps 0 to 64 and caps at 4096.
  uint32_t queue_depth = 64;

  // Use the pread/pwrite fallback even when io_uring works. Default false.
  // For tests that compare both paths, and for operators who suspect a
  // kernel io_uring bug.
  bool force_fallback = false;

  // Honour CAIRN_DISABLE_IO_URING=1 in the environment. Default true; tests
  // that must exercise the real ring regardless may turn it off.
  bool honor_disable_env_var = true;

  // Ask for IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN (kernel
  // >= 6.0), which match the one-owner-thread rule and save an interrupt per
  // completion. Default true; older kernels that reject the flags get a plain
  // ring automatically.
  bool single_issuer_hints = true;

  // Largest transfer one SQE asks for; a bigger request continues as short
  // I/O (the remainder is resubmitted). Default 1 GiB, i.e. effectively
  // unsplit: the kernel caps a transfer at ~2 GiB anyway. Smaller values
  // bound the time one request holds the device, and let tests exercise the
  // resubmission path. Sanitize() maps 0 to the default and rounds down to a
  // multiple of 4096 (at least 4096) so split O_DIRECT requests stay aligned.
  uint32_t max_bytes_per_op = uint32_t{1} << 30;

  // Fills defaults and clamps out-of-range values. Idempotent.
  void Sanitize();
};

// One positioned write within a batch (the write twin of ReadRequest).
struct WriteRequest {
  uint64_t offset = 0;
  ByteView data;             // caller-owned; written in full or the request fails
  size_t bytes_written = 0;  // out: bytes written (== data.size() on success)
  Status status;             // out: per-request result
};

class IoRing {
 public:
  // Sets up a ring (or the fallback, see above). Fails only for errors other
  // than "io_uring is unavailable", e.g. ENOMEM from a tight RLIMIT_MEMLOCK.
  static Result<std::unique_ptr<IoRing>> Create(const IoRingOptions& options = {});

  ~IoRing();
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  // True when requests go through io_uring, false on the pread fallback.
  bool uses_io_uring() const;
  const IoRingOptions& options() const { return options_; }

  // Reads every request from `fd`. Each request's buffer is filled up to its
  // size, or fewer bytes only at end of file; bytes_read and status are set
  // for every request. Returns the first failure in request order (OK if
  // all succeeded). Zero-length buffers complete at once with 0 bytes.
  Status ReadBatch(int fd, std::span<ReadRequest> requests);

  // Like ReadBatch(fd, ...), but request i reads from fds[i]: for reading
  // many files in one batch. fds.size() must equal requests.size().
  Status ReadBatch(std::span<const int> fds, std::span<ReadRequest> requests);

  // Writes every request to `fd` in full. On failure the request's range may
  // hold a prefix of its data. Returns the first failure in request order.
  Status WriteBatch(int fd, std::span<WriteRequest> requests);

  // Like WriteBatch(fd, ...), but request i writes to fds[i]: for writing
  // many files in one batch (restore).
  Status WriteBatch(std::span<const int> fds, std::span<WriteRequest> requests);

  // fdatasync (datasync) or fsync of `fd`, through the ring.
  Status Fsync(int fd, bool datasync);

 private:
  struct Impl;
  struct Op;

  IoRing(const IoRingOptions& options, std::unique_ptr<Impl> impl);
  void CheckOwnerThread() const;
  // Runs `ops` to completion through the ring or the fallback.
  void Run(std::span<Op> ops);
  void RunWithRing(std::span<Op> ops);
  void RunWithFallback(std::span<Op> ops);

  IoRingOptions options_;
  std::unique_ptr<Impl> impl_;  // null on the fallback path
  std::thread::id owner_;
};

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_URING_H_
