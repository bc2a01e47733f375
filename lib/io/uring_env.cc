#include "lib/io/uring_env.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace cairn::io {
namespace {

// Ids of UringEnvs alive now, so a thread can release rings of dead ones.
std::mutex& LiveSourcesMutex() {
  static auto* mu = new std::mutex();
  return *mu;
}
std::set<uint64_t>& LiveSources() {
  static auto* ids = new std::set<uint64_t>();
  return *ids;
}

struct ThreadRing {
  uint64_t source_id;
  std::unique_ptr<IoRing> ring;
};
// The calling thread's rings, one per UringEnv it has used. Destroyed, and
// the rings closed, when the thread exits.
thread_local std::vector<ThreadRing> t_rings;

}  // namespace

// Identity and ring options of one UringEnv, shared with its open files.
struct UringEnv::RingSource {
  uint64_t id;
  IoRingOptions options;

  explicit RingSource(const IoRingOptions& opts) : options(opts) {
    static std::atomic<uint64_t> next_id{1};
    id = next_id.fetch_add(1);
    std::lock_guard<std::mutex> lock(LiveSourcesMutex());
    LiveSources().insert(id);
  }
  ~RingSource() {
    std::lock_guard<std::mutex> lock(LiveSourcesMutex());
    LiveSources().erase(id);
  }

  // The calling thread's ring for this source, created on first use.
  Result<IoRing*> ThreadRing() const {
    for (const auto& r : t_rings) {
      if (r.source_id == id) return r.ring.get();
    }
    {
      std::lock_guard<std::mutex> lock(LiveSourcesMutex());
      std::erase_if(t_rings, [](const auto& r) { return LiveSources().count(r.source_id) == 0; });
    }
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<IoRing> ring, IoRing::Create(options));
    IoRing* raw = ring.get();
    t_rings.push_back({id, std::move(ring)});
    return raw;
  }
};

namespace {

using RingSource = UringEnv::RingSource;

class UringWritableFile : public PosixWritableFile {
 public:
  UringWritableFile(std::shared_ptr<const RingSource> source, UniqueFd fd, std::string path,
                    uint64_t size)
      : PosixWritableFile(std::move(fd), std::move(path), size), source_(std::move(source)) {}

 protected:
  Status WriteAt(uint64_t offset, ByteView data) override {
    CAIRN_ASSIGN_OR_RETURN(IoRing * ring, source_->ThreadRing());
    WriteRequest request{.offset = offset, .data = data};
    return ring->WriteBatch(fd(), std::span<WriteRequest>(&request, 1))
        .WithContext("write " + path());
  }

  Status DataSync() override {
    CAIRN_ASSIGN_OR_RETURN(IoRing * ring, source_->ThreadRing());
    return ring->Fsync(fd(), /*datasync=*/true).WithContext("fdatasync " + path());
  }

 private:
  std::shared_ptr<const RingSource> source_;
};

class UringRandomAccessFile : public PosixRandomAccessFile {
 public:
  UringRandomAccessFile(std::shared_ptr<const RingSource> source, UniqueFd fd, std::string path)
      : PosixRandomAccessFile(std::move(fd), std::move(path)), source_(std::move(source)) {}

  Result<size_t> Read(uint64_t offset, MutableByteView out) const override {
    ReadRequest request{.offset = offset, .buffer = out};
    CAIRN_RETURN_IF_ERROR(ReadBatch(std::span<ReadRequest>(&request, 1)));
    return request.bytes_read;
  }

  Status ReadBatch(std::span<ReadRequest> requests) const override {
    Result<IoRing*> ring = source_->ThreadRing();
    if (!ring.ok()) {
      for (ReadRequest& r : requests) {
        r.bytes_read = 0;
        r.status = ring.status();
      }
      return ring.status();
    }
    Status first_error = (*ring)->ReadBatch(fd(), requests);
    if (first_error.ok()) return first_error;
    const std::string context = "read " + path();
    for (ReadRequest& r : requests) r.status = r.status.WithContext(context);
    return first_error.WithContext(context);
  }

 private:
  std::shared_ptr<const RingSource> source_;
};

}  // namespace

UringEnv::UringEnv(const IoRingOptions& options) : source_(std::make_shared<RingSource>(options)) {}

UringEnv::~UringEnv() = default;

UringEnv* UringEnv::Default() {
  static UringEnv* env = new UringEnv();  // never destroyed: usable during exit
  return env;
}

Result<bool> UringEnv::ThreadUsesIoUring() {
  CAIRN_ASSIGN_OR_RETURN(IoRing * ring, source_->ThreadRing());
  return ring->uses_io_uring();
}

std::unique_ptr<WritableFile> UringEnv::WrapWritableFile(UniqueFd fd, std::string path,
                                                         uint64_t size) {
  return std::make_unique<UringWritableFile>(source_, std::move(fd), std::move(path), size);
}

std::unique_ptr<RandomAccessFile> UringEnv::WrapRandomAccessFile(UniqueFd fd, std::string path) {
  return std::make_unique<UringRandomAccessFile>(source_, std::move(fd), std::move(path));
}

std::unique_ptr<Env> NewUringEnv(const IoRingOptions& options) {
  return std::make_unique<UringEnv>(options);
}

}  // namespace cairn::io
