#include "lib/io/file_io.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "lib/base/errno.h"

namespace cairn::io {
namespace {

// Linux transfers at most 0x7ffff000 bytes per call; asking for less keeps
// the loop arithmetic obviously in range.
constexpr size_t kMaxBytesPerCall = size_t{1} << 30;

std::string Context(std::string_view op, std::string_view what) {
  std::string s(op);
  s += ' ';
  s += what;
  return s;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Status UniqueFd::Close(std::string_view context) {
  if (fd_ < 0) return Status::OK();
  int fd = Release();
  if (::close(fd) != 0 && errno != EINTR) return ErrnoToStatus(errno, Context("close", context));
  return Status::OK();
}

void WillNeed(int fd, uint64_t offset, uint64_t length) {
  constexpr uint64_t kStep = 128u << 10;
  for (uint64_t at = offset; at < offset + length; at += kStep) {
    (void)::posix_fadvise(fd, static_cast<off_t>(at),
                          static_cast<off_t>(std::min(kStep, offset + length - at)),
                          POSIX_FADV_WILLNEED);
  }
}

Result<size_t> PreadFull(int fd, uint64_t offset, MutableByteView out, std::string_view context) {
  size_t done = 0;
  while (done < out.size()) {
    size_t want = std::min(out.size() - done, kMaxBytesPerCall);
    ssize_t n = ::pread(fd, out.data() + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoToStatus(errno, Context("pread", context));
    }
    if (n == 0) break;  // end of file
    done += static_cast<size_t>(n);
    if (done < out.size() && static_cast<size_t>(n) < want &&
        DirectReadEndedAtEof(fd, offset + done)) {
      break;
    }
  }
  return done;
}

bool MostlyUncached(int fd, uint64_t offset, uint64_t length) {
  if (length == 0) return false;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;
  const size_t span = static_cast<size_t>(offset + length - start);
  void* map = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  if (map == MAP_FAILED) return false;
  std::vector<unsigned char> resident((span + page - 1) / page);
  const bool known = ::mincore(map, span, resident.data()) == 0;
  ::munmap(map, span);
  if (!known) return false;
  size_t cached = 0;
  for (unsigned char r : resident) cached += r & 1;
  return cached * 2 < resident.size();
}

namespace {
FileSystemSpace SpaceFrom(const struct statvfs& fs) {
  return {static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize,
          static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize};
}
}  // namespace

Result<FileSystemSpace> SpaceOf(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return ErrnoToStatus(errno, Context("statvfs", path));
  return SpaceFrom(fs);
}

Result<FileSystemSpace> SpaceOf(int fd, std::string_view context) {
  struct statvfs fs {};
  if (::fstatvfs(fd, &fs) != 0) return ErrnoToStatus(errno, Context("statvfs", context));
  return SpaceFrom(fs);
}

namespace {

std::atomic<bool> openat2_off{false};  // internal::DisableOpenat2ForTest

// OpenNoSymlinks without openat2: one openat per component, each with
// O_NOFOLLOW, refusing "." and ".." (and, below `dir`, an absolute path) as
// RESOLVE_BENEATH would.
int OpenByComponents(int dir, const std::string& path, int flags) {
  size_t start = 0;
  int cur;
  if (!path.empty() && path[0] == '/') {
    if (dir != AT_FDCWD) {
      errno = EXDEV;
      return -1;
    }
    cur = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else if (dir == AT_FDCWD) {
    cur = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    cur = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  }
  if (cur < 0) return -1;
  std::vector<std::string> names;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) names.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  if (names.empty()) {  // `dir` itself, opened as asked
    const int fd = ::openat(cur, ".", flags | O_CLOEXEC);
    const int err = errno;
    ::close(cur);
    errno = err;
    return fd;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "." || names[i] == "..") {
      ::close(cur);
      errno = EXDEV;
      return -1;
    }
    const bool last = i + 1 == names.size();
    const int next =
        ::openat(cur, names[i].c_str(),
                 last ? flags | O_NOFOLLOW : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int err = errno;
    ::close(cur);
    if (next < 0) {
      errno = err;
      return -1;
    }
    cur = next;
  }
  return cur;
}

}  // namespace

namespace internal {
void DisableOpenat2ForTest(bool off) { openat2_off.store(off); }
}  // namespace internal

int OpenNoSymlinks(int dir, const std::string& path, int flags) {
  if ((flags & O_CREAT) != 0) {  // no mode to give: not for creating files
    errno = EINVAL;
    return -1;
  }
  if (!openat2_off.load(std::memory_order_relaxed)) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags);
    how.resolve =
        RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (dir == AT_FDCWD ? 0 : RESOLVE_BENEATH);
    const char* p = path.empty() ? "." : path.c_str();
    const int fd = static_cast<int>(::syscall(SYS_openat2, dir, p, &how, sizeof(how)));
    // Kernels before 5.6, and seccomp filters that do not know openat2.
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
  }
  return OpenByComponents(dir, path, flags);
}

bool SetDirectIo(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  return ::fcntl(fd, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
}

bool DirectReadEndedAtEof(int fd, uint64_t end_offset) {
  if (end_offset % AlignedBuffer::kAlignment == 0) return false;
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_DIRECT) != 0;
}

Status PwriteFull(int fd, uint64_t offset, ByteView data, std::string_view context) {
  size_t done = 0;
  while (done < data.size()) {
    size_t want = std::min(data.size() - done, kMaxBytesPerCall);
    ssize_t n = ::pwrite(fd, data.data() + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoToStatus(errno, Context("pwrite", context));
    }
    if (n == 0) return Status::IOError(Context("pwrite", context) + ": no progress");
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status SyncFd(int fd, bool datasync, std::string_view context) {
  for (;;) {
    int rc = datasync ? ::fdatasync(fd) : ::fsync(fd);
    if (rc == 0) return Status::OK();
    if (errno != EINTR)
      return ErrnoToStatus(errno, Context(datasync ? "fdatasync" : "fsync", context));
  }
}

Result<OpenedFile> OpenForRead(const std::string& path, bool try_direct_io) {
  OpenedFile file;
  if (try_direct_io) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd >= 0) {
      file.fd = UniqueFd(fd);
      file.direct_io = true;
      return file;
    }
    // EINVAL: this filesystem does not do O_DIRECT; read through the cache.
    if (errno != EINVAL) return ErrnoToStatus(errno, Context("open O_DIRECT", path));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, Context("open", path));
  file.fd = UniqueFd(fd);
  return file;
}

Result<AlignedBuffer> AlignedBuffer::Allocate(size_t size) {
  if (size == 0) return Status::InvalidArgument("AlignedBuffer of size 0");
  size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < size) return Status::InvalidArgument("AlignedBuffer size overflows");
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) return Status::NoSpace("AlignedBuffer: out of memory");
  std::memset(p, 0, rounded);
  return AlignedBuffer(static_cast<uint8_t*>(p), rounded);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

}  // namespace cairn::io
