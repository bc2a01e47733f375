#include "lib/io/posix_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "lib/base/errno.h"

namespace cairn::io {
namespace {

std::string Context(std::string_view op, std::string_view path) {
  std::string s(op);
  s += ' ';
  s += path;
  return s;
}

Result<UniqueFd> OpenFd(const std::string& path, int flags, mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoToStatus(errno, Context("open", path));
  return UniqueFd(fd);
}

Result<uint64_t> FdSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoToStatus(errno, Context("fstat", path));
  return static_cast<uint64_t>(st.st_size);
}

uint64_t ClockMicros(clockid_t clock) {
  struct timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// A file written as a stream (a pack) starts the writeback of every this
// many bytes as they are appended, so that Sync() waits for the last few
// MiB instead of writing out everything appended since the last one: with
// the kernel's default dirty thresholds nothing is written before, and a
// vault's flush of 256 MiB of pack stalled the agent ~0.1 s each time.
constexpr uint64_t kWritebackEvery = 8 << 20;

}  // namespace

// ---------------------------------------------------------------------------
// PosixWritableFile

PosixWritableFile::PosixWritableFile(UniqueFd fd, std::string path, uint64_t size)
    : fd_(std::move(fd)), path_(std::move(path)), size_(size), writeback_from_(size) {}

PosixWritableFile::~PosixWritableFile() { (void)fd_.Close(path_); }

Status PosixWritableFile::Append(ByteView data) {
  if (!fd_.valid()) return Status::InvalidArgument(Context("append to closed file", path_));
  if (data.empty()) return Status::OK();
  CAIRN_RETURN_IF_ERROR(WriteAt(size_, data));
  size_ += data.size();
  if (size_ - writeback_from_ >= kWritebackEvery) {
    // A hint: it starts the writes and does not wait for them; a failure
    // here shows again in Sync(), which makes the bytes durable.
    (void)::sync_file_range(fd_.get(), static_cast<off_t>(writeback_from_),
                            static_cast<off_t>(size_ - writeback_from_), SYNC_FILE_RANGE_WRITE);
    writeback_from_ = size_;
  }
  return Status::OK();
}

Status PosixWritableFile::Sync() {
  if (!fd_.valid()) return Status::InvalidArgument(Context("sync of closed file", path_));
  return DataSync();
}

Status PosixWritableFile::Close() { return fd_.Close(path_); }

Status PosixWritableFile::WriteAt(uint64_t offset, ByteView data) {
  return PwriteFull(fd_.get(), offset, data, path_);
}

Status PosixWritableFile::DataSync() { return SyncFd(fd_.get(), /*datasync=*/true, path_); }

// ---------------------------------------------------------------------------
// PosixRandomAccessFile

PosixRandomAccessFile::PosixRandomAccessFile(UniqueFd fd, std::string path)
    : fd_(std::move(fd)), path_(std::move(path)) {}

Result<size_t> PosixRandomAccessFile::Read(uint64_t offset, MutableByteView out) const {
  return PreadFull(fd_.get(), offset, out, path_);
}

Result<uint64_t> PosixRandomAccessFile::Size() const { return FdSize(fd_.get(), path_); }

void PosixRandomAccessFile::WillNeed(uint64_t offset, uint64_t length) const {
  io::WillNeed(fd_.get(), offset, length);
}

// ---------------------------------------------------------------------------
// PosixEnv

Env* Env::Posix() {
  static PosixEnv* env = new PosixEnv();  // never destroyed: usable during exit
  return env;
}

std::unique_ptr<WritableFile> PosixEnv::WrapWritableFile(UniqueFd fd, std::string path,
                                                         uint64_t size) {
  return std::make_unique<PosixWritableFile>(std::move(fd), std::move(path), size);
}

std::unique_ptr<RandomAccessFile> PosixEnv::WrapRandomAccessFile(UniqueFd fd, std::string path) {
  return std::make_unique<PosixRandomAccessFile>(std::move(fd), std::move(path));
}

Result<std::unique_ptr<WritableFile>> PosixEnv::NewWritableFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_WRONLY | O_CREAT | O_TRUNC));
  return WrapWritableFile(std::move(fd), path, 0);
}

Result<std::unique_ptr<WritableFile>> PosixEnv::NewExclusiveFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_WRONLY | O_CREAT | O_EXCL));
  return WrapWritableFile(std::move(fd), path, 0);
}

Result<std::unique_ptr<WritableFile>> PosixEnv::NewAppendableFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_WRONLY));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, FdSize(fd.get(), path));
  return WrapWritableFile(std::move(fd), path, size);
}

Result<std::unique_ptr<RandomAccessFile>> PosixEnv::NewRandomAccessFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_RDONLY));
  return WrapRandomAccessFile(std::move(fd), path);
}

bool PosixEnv::FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Result<uint64_t> PosixEnv::GetFileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, Context("stat", path));
  return static_cast<uint64_t>(st.st_size);
}

Result<std::vector<std::string>> PosixEnv::GetChildren(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());  // glibc opens directories O_CLOEXEC
  if (d == nullptr) return ErrnoToStatus(errno, Context("opendir", dir));
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      int err = errno;
      ::closedir(d);
      if (err != 0) return ErrnoToStatus(err, Context("readdir", dir));
      return names;
    }
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
}

Status PosixEnv::RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return ErrnoToStatus(errno, Context("unlink", path));
  return Status::OK();
}

Status PosixEnv::RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoToStatus(errno, Context("rename", from + " -> " + to));
  }
  return Status::OK();
}

Status PosixEnv::CreateDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::OK();
  int err = errno;
  if (err == EEXIST) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::OK();
  }
  return ErrnoToStatus(err, Context("mkdir", path));
}

Status PosixEnv::SyncDir(const std::string& dir) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(dir, O_RDONLY | O_DIRECTORY));
  CAIRN_RETURN_IF_ERROR(SyncFd(fd.get(), /*datasync=*/false, dir));
  return fd.Close(dir);
}

Status PosixEnv::TruncateFile(const std::string& path, uint64_t size) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(path, O_WRONLY));
  int rc;
  do {
    rc = ::ftruncate(fd.get(), static_cast<off_t>(size));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoToStatus(errno, Context("ftruncate", path));
  CAIRN_RETURN_IF_ERROR(SyncFd(fd.get(), /*datasync=*/false, path));
  return fd.Close(path);
}

uint64_t PosixEnv::NowMicros() { return ClockMicros(CLOCK_REALTIME); }

uint64_t PosixEnv::MonotonicMicros() { return ClockMicros(CLOCK_MONOTONIC); }

void PosixEnv::FillRandom(MutableByteView out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // getrandom(2) without flags cannot fail on Linux >= 3.17 once the pool
      // is initialised; there is no way to report it through this signature,
      // and continuing with unfilled bytes would be worse than stopping.
      std::fprintf(stderr, "cairn: getrandom failed: %s\n",
                   ErrnoToStatus(errno, "getrandom").ToString().c_str());
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace cairn::io
