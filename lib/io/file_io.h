// Raw file-descriptor helpers shared by PosixEnv, UringEnv and IoRing's
// pread/pwrite fallback, so the EINTR and short-I/O loops exist once.
//
// Every failing system call is turned into a Status by cairn::ErrnoToStatus()
// with a context naming the operation and the path ("pread /x/y.pack").
// These helpers are thread-safe in the sense of the system calls they wrap:
// positioned I/O on one descriptor from many threads is fine.
#ifndef CAIRN_LIB_IO_FILE_IO_H_
#define CAIRN_LIB_IO_FILE_IO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::io {

// Owns one file descriptor and closes it on destruction (ignoring the result:
// callers that care about close(2) errors call Close()). Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes now and reports close(2)'s error. EINTR is not retried (on Linux
  // the descriptor is gone either way). Idempotent: OK when already closed.
  Status Close(std::string_view context);

 private:
  int fd_ = -1;
};

// Reads at `offset` until `out` is full or end of file; returns the bytes read.
// Retries EINTR/EAGAIN and short reads (see DirectReadEndedAtEof for O_DIRECT). `context` names the
// file in errors.
Result<size_t> PreadFull(int fd, uint64_t offset, MutableByteView out, std::string_view context);

// Asks the kernel to start reading [offset, offset + length) of `fd` into
// the page cache (POSIX_FADV_WILLNEED), in steps: the kernel starts at most
// the device's read-ahead size (read_ahead_kb, often 128 KiB) per call and
// silently drops the rest of a larger range. A hint: errors are ignored.
void WillNeed(int fd, uint64_t offset, uint64_t length);

// True when most of [offset, offset + length) of `fd` is not in the page
// cache (mincore(2) over a mapping that is never touched, so a file that
// shrinks meanwhile cannot fault). False when it cannot tell.
bool MostlyUncached(int fd, uint64_t offset, uint64_t length);

// The file system holding `path`, or the open `fd`: what an unprivileged
// writer may still use (f_bavail) and its size, in bytes (statvfs(3)).
struct FileSystemSpace {
  uint64_t free_bytes = 0;
  uint64_t size_bytes = 0;
};
Result<FileSystemSpace> SpaceOf(const std::string& path);
Result<FileSystemSpace> SpaceOf(int fd, std::string_view context);

// Opens `path` with openat2(2) without following a symbolic link anywhere on
// the way, and, unless `dir` is AT_FDCWD, without leaving the directory `dir`
// (no "..", no absolute path). Returns the descriptor, or -1 with errno set
// (ELOOP: a symbolic link on the way; EXDEV: the path leaves `dir`). An
// empty `path` opens `dir` itself. Where openat2 is missing (ENOSYS, or
// EPERM from a seccomp filter), one openat per component with O_NOFOLLOW,
// refusing "." and "..": ELOOP or ENOTDIR for a symbolic link on the way.
// Not for O_CREAT (EINVAL): it passes no mode.
int OpenNoSymlinks(int dir, const std::string& path, int flags);
namespace internal {
// Makes OpenNoSymlinks take the path without openat2, as on an old kernel.
void DisableOpenat2ForTest(bool off);
}  // namespace internal

// Turns O_DIRECT on or off for an open descriptor; false when the file
// system refuses. Reads must then be aligned as AlignedBuffer describes.
bool SetDirectIo(int fd, bool on);

// For a read that returned fewer bytes than asked, ending at `end_offset`:
// true when `fd` is O_DIRECT and `end_offset` is not a multiple of
// AlignedBuffer::kAlignment. A direct read can only end unaligned at end of
// file, and asking for the rest would fail with EINVAL (unaligned offset), so
// the short read is final. Costs one fcntl(2), only on unaligned short reads.
bool DirectReadEndedAtEof(int fd, uint64_t end_offset);

// Writes all of `data` at `offset`, retrying EINTR/EAGAIN and short writes. On
// error a prefix of `data` may have been written. ENOSPC/EDQUOT/EFBIG give
// kNoSpace.
Status PwriteFull(int fd, uint64_t offset, ByteView data, std::string_view context);

// fdatasync(2) when `datasync`, else fsync(2); retries EINTR.
Status SyncFd(int fd, bool datasync, std::string_view context);

// A read-only descriptor and whether it bypasses the page cache.
struct OpenedFile {
  UniqueFd fd;
  // True when opened with O_DIRECT: every read must then use a buffer,
  // offset and length aligned to AlignedBuffer::kAlignment (EOF may still
  // return fewer bytes).
  bool direct_io = false;
};

// Opens `path` read-only with O_CLOEXEC. With `try_direct_io`, asks for
// O_DIRECT first; a filesystem that refuses it (EINVAL, e.g. some FUSE or
// overlay mounts) gets a buffered open instead and direct_io == false.
Result<OpenedFile> OpenForRead(const std::string& path, bool try_direct_io = false);
inline Result<OpenedFile> OpenForDirectRead(const std::string& path) {
  return OpenForRead(path, /*try_direct_io=*/true);
}

// An owned heap buffer whose start and size are multiples of kAlignment, as
// O_DIRECT requires. Move-only; the memory is freed on destruction.
class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;

  // Allocates at least `size` bytes (rounded up to kAlignment), zero-filled.
  // InvalidArgument for size 0; NoSpace when memory is exhausted.
  static Result<AlignedBuffer> Allocate(size_t size);

  AlignedBuffer() = default;
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  // The rounded-up size: always a multiple of kAlignment.
  size_t size() const { return size_; }
  MutableByteView span() { return MutableByteView(data_, size_); }
  ByteView view() const { return ByteView(data_, size_); }

 private:
  AlignedBuffer(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_FILE_IO_H_
