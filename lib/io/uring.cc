#include "lib/io/uring.h"

#include <liburing.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/base/errno.h"

namespace cairn::io {
namespace {

constexpr uint32_t kDefaultQueueDepth = 64;
constexpr uint32_t kMaxQueueDepth = 4096;
constexpr uint32_t kMaxBytesPerOp = uint32_t{1} << 30;
constexpr uint32_t kOpAlignment = 4096;
// A request that makes no progress this many times in a row (-EAGAIN,
// -EINTR, or a 0-byte write) fails instead of spinning forever.
constexpr uint32_t kMaxStalledAttempts = 1000;

// The one place where io_uring's negative results become a Status.
Status UringResultToStatus(int res, std::string_view context) {
  return ErrnoToStatus(res, context);
}

bool DisabledByEnvironment() {
  const char* v = std::getenv("CAIRN_DISABLE_IO_URING");
  return v != nullptr && v[0] != '\0' && std::string_view(v) != "0";
}

}  // namespace

void IoRingOptions::Sanitize() {
  if (queue_depth == 0) queue_depth = kDefaultQueueDepth;
  queue_depth = std::min(queue_depth, kMaxQueueDepth);
  if (max_bytes_per_op == 0) max_bytes_per_op = kMaxBytesPerOp;
  max_bytes_per_op =
      std::clamp(max_bytes_per_op / kOpAlignment * kOpAlignment, kOpAlignment, kMaxBytesPerOp);
}

enum class OpKind : uint8_t { kRead, kWrite, kFsync, kFdatasync };

// One request of a batch, tracked until it is finished.
struct IoRing::Op {
  OpKind kind = OpKind::kRead;
  int fd = -1;
  uint64_t offset = 0;
  uint8_t* read_buffer = nullptr;
  const uint8_t* write_buffer = nullptr;
  size_t length = 0;
  size_t done = 0;                // bytes transferred so far
  size_t submitted_length = 0;    // bytes asked of the SQE in flight
  Status* status = nullptr;       // out
  size_t* transferred = nullptr;  // out; may be null
  uint32_t stalled_attempts = 0;
  bool finished = false;

  size_t remaining() const { return length - done; }
  bool is_data() const { return kind == OpKind::kRead || kind == OpKind::kWrite; }

  void Finish(Status s) {
    finished = true;
    if (transferred != nullptr) *transferred = done;
    *status = std::move(s);
  }

  std::string Describe() const {
    const char* name = kind == OpKind::kRead    ? "io_uring read"
                       : kind == OpKind::kWrite ? "io_uring write"
                       : kind == OpKind::kFsync ? "io_uring fsync"
                                                : "io_uring fdatasync";
    std::string s = std::string(name) + " fd " + std::to_string(fd);
    if (is_data()) s += " offset " + std::to_string(offset + done);
    return s;
  }
};

struct IoRing::Impl {
  io_uring ring{};
  // Set when submission failed in a way we cannot reason about. The ring is
  // never entered again with work (entries stuck in its SQ are never
  // submitted) and every later request takes the fallback path.
  bool poisoned = false;
  bool initialized = false;

  ~Impl() {
    if (initialized) io_uring_queue_exit(&ring);
  }
};

Result<std::unique_ptr<IoRing>> IoRing::Create(const IoRingOptions& options) {
  IoRingOptions opts = options;
  opts.Sanitize();
  if (opts.force_fallback || (opts.honor_disable_env_var && DisabledByEnvironment())) {
    return std::unique_ptr<IoRing>(new IoRing(opts, nullptr));
  }
  auto impl = std::make_unique<Impl>();
  unsigned flags = 0;
  if (opts.single_issuer_hints) flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init(opts.queue_depth, &impl->ring, flags);
  if (rc == -EINVAL && flags != 0) {
    rc = io_uring_queue_init(opts.queue_depth, &impl->ring, 0);  // pre-6.0 kernel
  }
  if (rc == -ENOSYS || rc == -EPERM) {
    // No io_uring here (old kernel, seccomp, io_uring_disabled sysctl).
    return std::unique_ptr<IoRing>(new IoRing(opts, nullptr));
  }
  if (rc < 0) return UringResultToStatus(rc, "io_uring_queue_init");
  impl->initialized = true;
  return std::unique_ptr<IoRing>(new IoRing(opts, std::move(impl)));
}

IoRing::IoRing(const IoRingOptions& options, std::unique_ptr<Impl> impl)
    : options_(options), impl_(std::move(impl)), owner_(std::this_thread::get_id()) {}

IoRing::~IoRing() = default;

bool IoRing::uses_io_uring() const { return impl_ != nullptr && !impl_->poisoned; }

void IoRing::CheckOwnerThread() const {
  assert(std::this_thread::get_id() == owner_ && "IoRing used from a thread other than its owner");
}

Status IoRing::ReadBatch(int fd, std::span<ReadRequest> requests) {
  std::vector<int> fds(requests.size(), fd);
  return ReadBatch(fds, requests);
}

Status IoRing::ReadBatch(std::span<const int> fds, std::span<ReadRequest> requests) {
  CheckOwnerThread();
  if (fds.size() != requests.size()) {
    Status s = Status::InvalidArgument("IoRing::ReadBatch: fds and requests differ in length");
    for (ReadRequest& r : requests) {
      r.bytes_read = 0;
      r.status = s;
    }
    return s;
  }
  std::vector<Op> ops(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ReadRequest& r = requests[i];
    ops[i] = Op{.kind = OpKind::kRead,
                .fd = fds[i],
                .offset = r.offset,
                .read_buffer = r.buffer.data(),
                .length = r.buffer.size(),
                .status = &r.status,
                .transferred = &r.bytes_read};
  }
  Run(ops);
  for (const ReadRequest& r : requests) {
    if (!r.status.ok()) return r.status;
  }
  return Status::OK();
}

Status IoRing::WriteBatch(int fd, std::span<WriteRequest> requests) {
  std::vector<int> fds(requests.size(), fd);
  return WriteBatch(fds, requests);
}

Status IoRing::WriteBatch(std::span<const int> fds, std::span<WriteRequest> requests) {
  CheckOwnerThread();
  if (fds.size() != requests.size()) {
    Status s = Status::InvalidArgument("IoRing::WriteBatch: fds and requests differ in length");
    for (WriteRequest& w : requests) {
      w.bytes_written = 0;
      w.status = s;
    }
    return s;
  }
  std::vector<Op> ops(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    WriteRequest& w = requests[i];
    ops[i] = Op{.kind = OpKind::kWrite,
                .fd = fds[i],
                .offset = w.offset,
                .write_buffer = w.data.data(),
                .length = w.data.size(),
                .status = &w.status,
                .transferred = &w.bytes_written};
  }
  Run(ops);
  for (const WriteRequest& w : requests) {
    if (!w.status.ok()) return w.status;
  }
  return Status::OK();
}

Status IoRing::Fsync(int fd, bool datasync) {
  CheckOwnerThread();
  Status status;
  Op op{.kind = datasync ? OpKind::kFdatasync : OpKind::kFsync, .fd = fd, .status = &status};
  Run(std::span<Op>(&op, 1));
  return status;
}

void IoRing::Run(std::span<Op> ops) {
  if (uses_io_uring()) RunWithRing(ops);
  // Anything the ring did not finish (it was never ring-backed, or it was
  // poisoned mid-batch before these were submitted) runs on the fallback.
  RunWithFallback(ops);
}

void IoRing::RunWithFallback(std::span<Op> ops) {
  for (Op& op : ops) {
    if (op.finished) continue;
    const std::string context = "fd " + std::to_string(op.fd);
    switch (op.kind) {
      case OpKind::kRead: {
        Result<size_t> n =
            PreadFull(op.fd, op.offset + op.done,
                      MutableByteView(op.read_buffer + op.done, op.remaining()), context);
        if (n.ok()) op.done += *n;
        op.Finish(n.ok() ? Status::OK() : n.status());
        break;
      }
      case OpKind::kWrite: {
        Status s = PwriteFull(op.fd, op.offset + op.done,
                              ByteView(op.write_buffer + op.done, op.remaining()), context);
        if (s.ok()) op.done = op.length;
        op.Finish(std::move(s));
        break;
      }
      case OpKind::kFsync:
      case OpKind::kFdatasync:
        op.Finish(SyncFd(op.fd, op.kind == OpKind::kFdatasync, context));
        break;
    }
  }
}

void IoRing::RunWithRing(std::span<Op> ops) {
  io_uring* ring = &impl_->ring;
  const uint32_t depth = options_.queue_depth;

  size_t next_new = 0;             // ops[next_new..] were never prepared
  std::vector<uint32_t> to_retry;  // resubmit these (short I/O, -EAGAIN)
  std::vector<uint32_t> in_sq;     // prepared, not yet accepted by the kernel
  uint32_t in_kernel = 0;          // accepted by the kernel, not yet completed
  uint32_t stalled_submits = 0;

  auto handle_completion = [&](Op& op, int res, uint32_t index) {
    // Nothing here cancels a request: the kernel does when it cannot start
    // an io-wq worker to run one it would block on (a full pids cgroup).
    // Left unfinished, it runs on the fallback, with its progress, below.
    if (res == -ECANCELED) return;
    if (res < 0) {
      if ((res == -EAGAIN || res == -EINTR) && ++op.stalled_attempts < kMaxStalledAttempts) {
        to_retry.push_back(index);
      } else {
        op.Finish(UringResultToStatus(res, op.Describe()));
      }
      return;
    }
    if (!op.is_data()) {
      op.Finish(Status::OK());
      return;
    }
    if (res == 0) {
      if (op.kind == OpKind::kRead) {
        op.Finish(Status::OK());  // end of file: a short read is the answer
      } else if (++op.stalled_attempts < kMaxStalledAttempts) {
        to_retry.push_back(index);
      } else {
        op.Finish(Status::IOError(op.Describe() + ": no progress"));
      }
      return;
    }
    op.done += static_cast<size_t>(res);
    op.stalled_attempts = 0;
    const bool short_transfer = static_cast<size_t>(res) < op.submitted_length;
    if (op.remaining() == 0 || (op.kind == OpKind::kRead && short_transfer &&
                                DirectReadEndedAtEof(op.fd, op.offset + op.done))) {
      op.Finish(Status::OK());
    } else {
      to_retry.push_back(index);  // short read or write: ask for the rest
    }
  };

  for (;;) {
    // 1. Fill the submission queue up to the depth.
    while (!impl_->poisoned && in_kernel + in_sq.size() < depth) {
      uint32_t index;
      if (!to_retry.empty()) {
        index = to_retry.back();
        to_retry.pop_back();
      } else if (next_new < ops.size()) {
        index = static_cast<uint32_t>(next_new++);
      } else {
        break;
      }
      Op& op = ops[index];
      if (op.is_data() && op.remaining() == 0) {
        op.Finish(Status::OK());
        continue;
      }
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (sqe == nullptr) {  // SQ full; cannot happen with depth == entries
        to_retry.push_back(index);
        break;
      }
      const size_t len = std::min<size_t>(op.remaining(), options_.max_bytes_per_op);
      op.submitted_length = len;
      switch (op.kind) {
        case OpKind::kRead:
          io_uring_prep_read(sqe, op.fd, op.read_buffer + op.done, static_cast<unsigned>(len),
                             op.offset + op.done);
          break;
        case OpKind::kWrite:
          io_uring_prep_write(sqe, op.fd, op.write_buffer + op.done, static_cast<unsigned>(len),
                              op.offset + op.done);
          break;
        case OpKind::kFsync:
          io_uring_prep_fsync(sqe, op.fd, 0);
          break;
        case OpKind::kFdatasync:
          io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
          break;
      }
      io_uring_sqe_set_data64(sqe, index);
      in_sq.push_back(index);
    }

    if (in_kernel == 0 && in_sq.empty()) break;  // all finished (or poisoned)

    // 2. Hand the prepared entries to the kernel.
    if (!in_sq.empty() && !impl_->poisoned) {
      int rc = io_uring_submit(ring);
      if (rc > 0) {
        // The kernel consumes the SQ in order.
        in_sq.erase(in_sq.begin(), in_sq.begin() + rc);
        in_kernel += static_cast<uint32_t>(rc);
        stalled_submits = 0;
      } else if ((rc == 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) &&
                 ++stalled_submits < kMaxStalledAttempts) {
        // Transient: reap completions (if any) and try again.
      } else {
        // Unknown failure: stop using the ring. Entries still in its SQ are
        // never submitted; those ops are finished by the fallback in Run().
        impl_->poisoned = true;
        in_sq.clear();
      }
    }
    if (impl_->poisoned && in_kernel == 0) break;

    // 3. Wait for at least one completion, then drain all that are ready.
    if (in_kernel > 0) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(ring, &cqe);
      if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == -ETIME) continue;
      if (rc < 0) {
        // The kernel still owns caller buffers and we cannot learn when it
        // lets go: returning would invite it to write into freed memory.
        std::fprintf(stderr, "cairn: %s\n",
                     UringResultToStatus(rc, "io_uring_wait_cqe").ToString().c_str());
        std::abort();
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(ring, head, cqe) {
        const auto index = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
        ++seen;
        --in_kernel;
        handle_completion(ops[index], cqe->res, index);
      }
      io_uring_cq_advance(ring, seen);
    }
  }
  // Poisoned with retries pending: those ops are unfinished and go to the
  // fallback with their progress (op.done) intact.
}

}  // namespace cairn::io
