// PosixEnv: the Env of real files, through pread/pwrite/fdatasync.
//
// Most code wants Env::Posix() and never names this class. It is public so
// that UringEnv can reuse every metadata operation and swap only the data
// path, through the two protected Wrap* hooks and the file classes' WriteAt/
// DataSync/Read overrides.
//
// Every descriptor is opened with O_CLOEXEC. Every errno becomes a Status
// through ErrnoToStatus() with the operation and path as context
// ("open /x/y.pack: No such file or directory"); ENOSPC, EDQUOT and EFBIG are
// kNoSpace.
#ifndef CAIRN_LIB_IO_POSIX_ENV_H_
#define CAIRN_LIB_IO_POSIX_ENV_H_

#include <memory>
#include <string>
#include <vector>

#include "lib/io/env.h"
#include "lib/io/file_io.h"

namespace cairn::io {

// Appends with pwrite at the tracked end offset, and starts the writeback of
// every 8 MiB appended (sync_file_range) so that Sync() has little left to
// write. One writer at a time.
// Size() counts only appends that succeeded; after a failed Append the file
// may hold more bytes than Size() says and the next Append overwrites them.
class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(UniqueFd fd, std::string path, uint64_t size);
  ~PosixWritableFile() override;

  Status Append(ByteView data) override;
  Status Sync() override;
  Status Close() override;
  uint64_t Size() const override { return size_; }

 protected:
  // The data-path seam: write all of `data` at `offset`; make data durable.
  virtual Status WriteAt(uint64_t offset, ByteView data);
  virtual Status DataSync();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  UniqueFd fd_;
  std::string path_;
  uint64_t size_;
  uint64_t writeback_from_;  // appended bytes from here on are not being written out yet
};

// Reads with pread; safe to use from many threads at once.
class PosixRandomAccessFile : public RandomAccessFile {
 public:
  PosixRandomAccessFile(UniqueFd fd, std::string path);

  Result<size_t> Read(uint64_t offset, MutableByteView out) const override;
  Result<uint64_t> Size() const override;
  void WillNeed(uint64_t offset, uint64_t length) const override;  // posix_fadvise

 protected:
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  UniqueFd fd_;
  std::string path_;
};

class PosixEnv : public Env {
 public:
  PosixEnv() = default;

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

 protected:
  // Turn an open descriptor into a file object; subclasses choose the data
  // path. `size` is the file's size at open time.
  virtual std::unique_ptr<WritableFile> WrapWritableFile(UniqueFd fd, std::string path,
                                                         uint64_t size);
  virtual std::unique_ptr<RandomAccessFile> WrapRandomAccessFile(UniqueFd fd, std::string path);
};

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_POSIX_ENV_H_
