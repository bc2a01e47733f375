// Env: the one seam between Cairn and the operating system for files, the
// clock and randomness (after leveldb's Env).
//
// Implementations:
//   PosixEnv            plain pread/pwrite/fdatasync (Env::Posix()).
//   UringEnv            the same files, with reads and writes through a
//                       per-thread IoRing (lib/io/uring.h); falls back to
//                       pread/pwrite where the kernel has no io_uring.
//   MemEnv              everything in memory, for fast deterministic tests.
//   EnvWrapper          forwards everything to another Env; the base of the
//                       Envs that change one aspect of another:
//   FaultInjectionEnv   wraps another Env; fails the Nth write or sync on
//                       request, reports a full disk, and on DropUnsyncedData()
//                       forgets everything not yet synced, like a power cut.
//
// Durability contract: data passed to WritableFile::Append() is durable only
// after Sync() returns OK. A newly created, renamed or removed directory entry
// is durable only after SyncDir() on its parent returns OK.
//
// Thread safety: an Env may be shared by any number of threads. A
// WritableFile has one writer at a time; a RandomAccessFile may be read from
// many threads at once.
#ifndef CAIRN_LIB_IO_ENV_H_
#define CAIRN_LIB_IO_ENV_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::io {

// A file written front to back (pack files, journals).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends data at the end. On error the file may hold a prefix of `data`;
  // callers that care (PackWriter) track their own logical size and truncate.
  virtual Status Append(ByteView data) = 0;
  // Makes every appended byte and the file size durable (fdatasync).
  virtual Status Sync() = 0;
  // Closes the file. Does not sync. Idempotent.
  virtual Status Close() = 0;
  // Bytes appended so far, including any that existed when it was opened.
  virtual uint64_t Size() const = 0;
};

// One positioned read within a batch.
struct ReadRequest {
  uint64_t offset = 0;
  MutableByteView buffer;  // caller-owned; filled up to its size or EOF
  size_t bytes_read = 0;   // out: bytes placed in buffer (short only at EOF)
  Status status;           // out: per-request result
};

// A file read at arbitrary offsets. Safe to read from many threads.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to out.size() bytes at `offset` and returns how many were read.
  // Fewer than asked means end of file was reached; never a short read
  // otherwise.
  virtual Result<size_t> Read(uint64_t offset, MutableByteView out) const = 0;
  // Runs every request; returns the first failure (each request also carries
  // its own status). The default runs them one by one; UringEnv submits them
  // as one batch.
  virtual Status ReadBatch(std::span<ReadRequest> requests) const;
  virtual Result<uint64_t> Size() const = 0;
  // A hint that [offset, offset + length) will be read soon: a file on a
  // local disk starts reading it into the page cache. Default: nothing.
  virtual void WillNeed(uint64_t offset, uint64_t length) const {
    (void)offset;
    (void)length;
  }
};

class Env {
 public:
  virtual ~Env() = default;

  // Process-wide POSIX Env; never destroyed.
  static Env* Posix();

  // Creates or truncates `path` for writing.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Creates `path`, which must not exist (O_CREAT|O_EXCL): InvalidArgument
  // "already exists" otherwise, and the existing file is untouched. For files
  // that must never be clobbered by a racing writer (packs).
  virtual Result<std::unique_ptr<WritableFile>> NewExclusiveFile(const std::string& path) = 0;
  // Opens an existing file to append at its end (NotFound if absent).
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<uint64_t> GetFileSize(const std::string& path) = 0;
  // Names (not paths) of the entries in `dir`, without "." and "..".
  virtual Result<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Creates one directory; OK if it already exists as a directory.
  virtual Status CreateDir(const std::string& path) = 0;
  // Creates `path` and every missing parent.
  Status CreateDirs(const std::string& path);
  // Makes entries created, renamed or removed in `dir` durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Cuts `path` to `size` bytes and makes the new size durable.
  virtual Status TruncateFile(const std::string& path, uint64_t size) = 0;

  // Wall-clock time in microseconds since the Unix epoch.
  virtual uint64_t NowMicros() = 0;
  // Monotonic time in microseconds, for durations and deadlines.
  virtual uint64_t MonotonicMicros() = 0;
  // Fills `out` with random bytes (getrandom(2) for PosixEnv). Not a key
  // source: keys come from lib/crypto's SecureRandom.
  virtual void FillRandom(MutableByteView out) = 0;
};

// An Env that forwards every call to `target` (after leveldb's
// EnvWrapper): a test or a policy Env overrides only what it changes (the
// fault-injection Env, a simulated clock). `target` is not owned and must
// outlive the wrapper and its files.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  Result<std::unique_ptr<WritableFile>> NewExclusiveFile(const std::string& path) override {
    return target_->NewExclusiveFile(path);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    return target_->NewAppendableFile(path);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    return target_->NewRandomAccessFile(path);
  }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }
  Result<uint64_t> GetFileSize(const std::string& path) override {
    return target_->GetFileSize(path);
  }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    return target_->GetChildren(dir);
  }
  Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  Status CreateDir(const std::string& path) override { return target_->CreateDir(path); }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  Status TruncateFile(const std::string& path, uint64_t size) override {
    return target_->TruncateFile(path, size);
  }
  uint64_t NowMicros() override { return target_->NowMicros(); }
  uint64_t MonotonicMicros() override { return target_->MonotonicMicros(); }
  void FillRandom(MutableByteView out) override { target_->FillRandom(out); }

 private:
  Env* const target_;
};

// Reads a whole file into memory; for small files (keys, configs) only.
Result<Bytes> ReadFileToBytes(Env* env, const std::string& path);
// Writes `data` to `path` via a temporary name, syncs it, renames it into
// place and syncs the directory: either the old or the new content survives
// a crash, never a mix.
Status WriteFileAtomically(Env* env, const std::string& path, ByteView data);

// The directory holding `path`: "a/b" for "a/b/c", "/" for "/c", "." for "c".
// Trailing slashes of `path` are ignored. Pure string work; no I/O.
std::string ParentDir(std::string_view path);
// `path` with repeated slashes collapsed and trailing slashes dropped ("a//b/"
// -> "a/b"; "/" stays "/"). Lexical only: no "." or ".." resolution.
std::string NormalizePath(std::string_view path);

}  // namespace cairn::io

#endif  // CAIRN_LIB_IO_ENV_H_
