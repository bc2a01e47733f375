#include "vault/store/rados_pack_store.h"

#include <rados/librados.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "lib/base/errno.h"

namespace cairn::vault {
namespace {

constexpr char kDepartments[] = "departments";
// Asynchronous writes one file keeps in flight before Append waits.
constexpr size_t kWritesInFlight = 8;

// The client, and when an operation last timed out. librados sends
// operations to the OSD addresses of the newest OSD map it has; in a small
// cluster no peer reports a killed OSD down, so when it restarts elsewhere
// the client learns of it only by asking. After a timeout the store asks
// the monitors every second for the newest map until an operation reaches
// an OSD again.
struct Cluster {
  rados_t handle = nullptr;
  std::atomic<bool> suspect{false};

  // An operation reached an OSD: the map the client has works.
  void Answered() { suspect.store(false, std::memory_order_relaxed); }

  Status Error(int r, std::string_view what) {
    if (r == -ETIMEDOUT) {
      suspect = true;
      return Status::Unavailable(std::string(what) +
                                 ": the Ceph cluster did not answer in time (is an OSD down?)");
    }
    return ErrnoToStatus(r, what);
  }
};

// One asynchronous operation; released on destruction.
class Completion {
 public:
  Completion() { rados_aio_create_completion2(nullptr, nullptr, &c_); }
  ~Completion() {
    if (c_ != nullptr) {
      rados_aio_wait_for_complete(c_);
      rados_aio_release(c_);
    }
  }
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  rados_completion_t get() const { return c_; }
  int Wait() {
    rados_aio_wait_for_complete(c_);
    return rados_aio_get_return_value(c_);
  }

 private:
  rados_completion_t c_ = nullptr;
};

// Parses "/<department>" and "/<department>/<name>".
bool ParsePath(const std::string& path, std::string* dept, std::string* name) {
  if (path.size() < 2 || path[0] != '/') return false;
  const size_t slash = path.find('/', 1);
  *dept = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
  *name = slash == std::string::npos ? std::string() : path.substr(slash + 1);
  if (dept->empty() || dept->find_first_not_of("0123456789") != std::string::npos) return false;
  return name->find('/') == std::string::npos;
}

class RadosEnv;

class RadosWritableFile : public io::WritableFile {
 public:
  RadosWritableFile(Cluster* cluster, rados_ioctx_t io, std::string oid, uint64_t size,
                    size_t chunk)
      : cluster_(cluster),
        io_(io),
        oid_(std::move(oid)),
        size_(size),
        flushed_(size),
        chunk_(chunk) {}
  ~RadosWritableFile() override { (void)Close(); }

  // After a failed write the object may have a hole where it failed: every
  // later call fails with that error (the pack is poisoned, as after a
  // failed fsync).
  Status Append(ByteView data) override {
    if (!failed_.ok()) return failed_;
    if (closed_) return Status::InvalidArgument(oid_ + ": append after close");
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    size_ += data.size();
    while (buffer_.size() >= chunk_) CAIRN_RETURN_IF_ERROR(Send(chunk_));
    return Status::OK();
  }

  Status Sync() override {
    if (!failed_.ok()) return failed_;
    if (!buffer_.empty()) CAIRN_RETURN_IF_ERROR(Send(buffer_.size()));
    while (!in_flight_.empty()) CAIRN_RETURN_IF_ERROR(WaitOldest());
    return Status::OK();
  }

  Status Close() override {
    if (closed_) return Status::OK();
    Status s = Sync();
    closed_ = true;
    return s;
  }

  uint64_t Size() const override { return size_; }

 private:
  struct Write {
    std::unique_ptr<Completion> done;
    Bytes data;
  };

  Status Send(size_t n) {
    if (in_flight_.size() >= kWritesInFlight) CAIRN_RETURN_IF_ERROR(WaitOldest());
    Write w{std::make_unique<Completion>(), {}};
    if (n == buffer_.size()) {
      w.data.swap(buffer_);  // the whole buffer: no copy
    } else {
      w.data.assign(buffer_.begin(), buffer_.begin() + n);
      buffer_.erase(buffer_.begin(), buffer_.begin() + n);
    }
    const int r =
        rados_aio_write(io_, oid_.c_str(), w.done->get(),
                        reinterpret_cast<const char*>(w.data.data()), w.data.size(), flushed_);
    if (r < 0) return failed_ = cluster_->Error(r, "write " + oid_);
    flushed_ += n;
    in_flight_.push_back(std::move(w));
    return Status::OK();
  }

  Status WaitOldest() {
    Write w = std::move(in_flight_.front());
    in_flight_.pop_front();
    const int r = w.done->Wait();
    if (r < 0) return failed_ = cluster_->Error(r, "write " + oid_);
    cluster_->Answered();
    return Status::OK();
  }

  Cluster* const cluster_;
  const rados_ioctx_t io_;
  const std::string oid_;
  uint64_t size_;
  uint64_t flushed_;  // bytes handed to RADOS (acknowledged or in flight)
  const size_t chunk_;
  Bytes buffer_;
  std::deque<Write> in_flight_;
  Status failed_;
  bool closed_ = false;
};

class RadosRandomAccessFile : public io::RandomAccessFile {
 public:
  RadosRandomAccessFile(Cluster* cluster, rados_ioctx_t io, std::string oid)
      : cluster_(cluster), io_(io), oid_(std::move(oid)) {}

  Result<size_t> Read(uint64_t offset, MutableByteView out) const override {
    io::ReadRequest r{offset, out};
    CAIRN_RETURN_IF_ERROR(ReadBatch(std::span<io::ReadRequest>(&r, 1)));
    return r.bytes_read;
  }

  // Every request in flight at once (reads larger than one op are split).
  Status ReadBatch(std::span<io::ReadRequest> requests) const override {
    struct Piece {
      io::ReadRequest* request;
      size_t at;  // offset within the request's buffer
      size_t len;
      Completion done;
    };
    constexpr size_t kMaxRead = 16u << 20;
    std::vector<std::unique_ptr<Piece>> pieces;
    Status first;
    for (io::ReadRequest& req : requests) {
      req.bytes_read = 0;
      req.status = Status::OK();
      for (size_t at = 0; at < req.buffer.size(); at += kMaxRead) {
        auto p = std::make_unique<Piece>();
        p->request = &req;
        p->at = at;
        p->len = std::min(kMaxRead, req.buffer.size() - at);
        const int r = rados_aio_read(io_, oid_.c_str(), p->done.get(),
                                     reinterpret_cast<char*>(req.buffer.data() + at), p->len,
                                     req.offset + at);
        if (r < 0) {
          req.status = cluster_->Error(r, "read " + oid_);
          if (first.ok()) first = req.status;
          break;
        }
        pieces.push_back(std::move(p));
      }
    }
    // A short piece means end of object; later pieces of that request then
    // read nothing, and bytes_read counts the contiguous prefix.
    std::map<io::ReadRequest*, bool> ended;
    for (auto& p : pieces) {
      const int r = p->done.Wait();
      io::ReadRequest& req = *p->request;
      if (r < 0) {
        if (req.status.ok()) req.status = cluster_->Error(r, "read " + oid_);
        if (first.ok()) first = req.status;
        continue;
      }
      cluster_->Answered();
      if (!ended[&req] && p->at == req.bytes_read) req.bytes_read += static_cast<size_t>(r);
      if (static_cast<size_t>(r) < p->len) ended[&req] = true;
    }
    return first;
  }

  Result<uint64_t> Size() const override {
    uint64_t size = 0;
    time_t mtime = 0;
    const int r = rados_stat(io_, oid_.c_str(), &size, &mtime);
    if (r < 0) return cluster_->Error(r, "stat " + oid_);
    return size;
  }

 private:
  Cluster* const cluster_;
  const rados_ioctx_t io_;
  const std::string oid_;
};

// The Env of pack names: "/<department>/<object>" in the department's
// namespace, "/<department>" for its namespace. Time and randomness come
// from the POSIX Env.
class RadosEnv : public io::EnvWrapper {
 public:
  RadosEnv(Cluster* cluster, std::string pool, std::string prefix, size_t chunk)
      : io::EnvWrapper(io::Env::Posix()),
        cluster_(cluster),
        pool_(std::move(pool)),
        prefix_(std::move(prefix)),
        chunk_(chunk) {}

  ~RadosEnv() override {
    for (auto& [ns, io] : ioctx_) rados_ioctx_destroy(io);
  }

  // The I/O context of one namespace (made once; thread-safe to use).
  Result<rados_ioctx_t> Namespace(const std::string& suffix) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ioctx_.find(suffix);
    if (it != ioctx_.end()) return it->second;
    rados_ioctx_t io = nullptr;
    const int r = rados_ioctx_create(cluster_->handle, pool_.c_str(), &io);
    if (r < 0) return cluster_->Error(r, "open pool " + pool_);
    rados_ioctx_set_namespace(io, (prefix_ + suffix).c_str());
    ioctx_.emplace(suffix, io);
    return io;
  }

  Result<std::vector<std::string>> List(const std::string& suffix) {
    CAIRN_ASSIGN_OR_RETURN(rados_ioctx_t io, Namespace(suffix));
    rados_list_ctx_t ctx = nullptr;
    int r = rados_nobjects_list_open(io, &ctx);
    if (r < 0) return cluster_->Error(r, "list " + pool_ + "/" + prefix_ + suffix);
    std::vector<std::string> names;
    const char* entry = nullptr;
    while ((r = rados_nobjects_list_next(ctx, &entry, nullptr, nullptr)) == 0) {
      names.emplace_back(entry);
    }
    rados_nobjects_list_close(ctx);
    if (r != -ENOENT) return cluster_->Error(r, "list " + pool_ + "/" + prefix_ + suffix);
    return names;
  }

  Result<std::unique_ptr<io::WritableFile>> NewWritableFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    rados_write_op_t op = rados_create_write_op();
    rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, nullptr);
    rados_write_op_truncate(op, 0);
    const int r = rados_write_op_operate(op, o.io, o.oid.c_str(), nullptr, 0);
    rados_release_write_op(op);
    if (r < 0) return cluster_->Error(r, "create " + path);
    return std::unique_ptr<io::WritableFile>(
        std::make_unique<RadosWritableFile>(cluster_, o.io, o.oid, 0, chunk_));
  }

  Result<std::unique_ptr<io::WritableFile>> NewExclusiveFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    rados_write_op_t op = rados_create_write_op();
    rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, nullptr);
    const int r = rados_write_op_operate(op, o.io, o.oid.c_str(), nullptr, 0);
    rados_release_write_op(op);
    if (r == -EEXIST) return Status::InvalidArgument(path + " already exists");
    if (r < 0) return cluster_->Error(r, "create " + path);
    cluster_->Answered();
    return std::unique_ptr<io::WritableFile>(
        std::make_unique<RadosWritableFile>(cluster_, o.io, o.oid, 0, chunk_));
  }

  Result<std::unique_ptr<io::WritableFile>> NewAppendableFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, GetFileSize(path));
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    return std::unique_ptr<io::WritableFile>(
        std::make_unique<RadosWritableFile>(cluster_, o.io, o.oid, size, chunk_));
  }

  Result<std::unique_ptr<io::RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    CAIRN_RETURN_IF_ERROR(GetFileSize(path).status());  // NotFound for a missing pack
    return std::unique_ptr<io::RandomAccessFile>(
        std::make_unique<RadosRandomAccessFile>(cluster_, o.io, o.oid));
  }

  bool FileExists(const std::string& path) override {
    std::string dept, name;
    if (!ParsePath(path, &dept, &name)) return false;
    if (name.empty()) return true;  // namespaces need no making
    return GetFileSize(path).ok();
  }

  Result<uint64_t> GetFileSize(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    uint64_t size = 0;
    time_t mtime = 0;
    const int r = rados_stat(o.io, o.oid.c_str(), &size, &mtime);
    if (r < 0) return cluster_->Error(r, "stat " + path);
    return size;
  }

  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    std::string dept, name;
    if (!ParsePath(dir, &dept, &name) || !name.empty()) {
      return Status::InvalidArgument("rados store: " + dir + " is not a department");
    }
    return List(dept);
  }

  Status RemoveFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    const int r = rados_remove(o.io, o.oid.c_str());
    if (r < 0) return cluster_->Error(r, "remove " + path);
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string&) override {
    return Status::InvalidArgument("rados store: objects are never renamed (" + from + ")");
  }

  Status CreateDir(const std::string& path) override {
    std::string dept, name;
    if (!ParsePath(path, &dept, &name) || !name.empty()) {
      return Status::InvalidArgument("rados store: " + path + " is not a department");
    }
    return Status::OK();
  }

  // Every acknowledged op is durable.
  Status SyncDir(const std::string&) override { return Status::OK(); }

  Status TruncateFile(const std::string& path, uint64_t size) override {
    CAIRN_ASSIGN_OR_RETURN(Object o, Resolve(path));
    const int r = rados_trunc(o.io, o.oid.c_str(), size);
    if (r < 0) return cluster_->Error(r, "truncate " + path);
    return Status::OK();
  }

 private:
  struct Object {
    rados_ioctx_t io;
    std::string oid;
  };

  Result<Object> Resolve(const std::string& path) {
    std::string dept, name;
    if (!ParsePath(path, &dept, &name) || name.empty()) {
      return Status::InvalidArgument("rados store: " + path + " names no pack");
    }
    CAIRN_ASSIGN_OR_RETURN(rados_ioctx_t io, Namespace(dept));
    return Object{io, name};
  }

  Cluster* const cluster_;
  const std::string pool_;
  const std::string prefix_;
  const size_t chunk_;
  std::mutex mu_;
  std::map<std::string, rados_ioctx_t> ioctx_;
};

class RadosPackStore : public PackStore {
 public:
  RadosPackStore(rados_t handle, const RadosStoreOptions& o)
      : describe_("rados:" + o.pool + "/" + o.prefix) {
    cluster_.handle = handle;
    env_ = std::make_unique<RadosEnv>(&cluster_, o.pool, o.prefix, o.write_chunk);
    watcher_ = std::thread([this] { Watch(); });
  }

  ~RadosPackStore() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    watcher_.join();
    env_.reset();
    rados_shutdown(cluster_.handle);
  }

  io::Env* env() override { return env_.get(); }

  std::string PackPath(uint32_t department, uint64_t pack_id) const override {
    return PackDir(department) + "/" + PackName(pack_id);
  }

  std::string PackDir(uint32_t department) const override {
    return "/" + std::to_string(department);
  }

  Status PrepareDepartment(uint32_t department) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (known_.count(department) > 0) return Status::OK();
    }
    CAIRN_ASSIGN_OR_RETURN(rados_ioctx_t io, env_->Namespace(kDepartments));
    rados_write_op_t op = rados_create_write_op();
    rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, nullptr);
    const int r = rados_write_op_operate(op, io, std::to_string(department).c_str(), nullptr, 0);
    rados_release_write_op(op);
    if (r < 0) return cluster_.Error(r, "register department " + std::to_string(department));
    std::lock_guard<std::mutex> lock(mu_);
    known_.insert(department);
    return Status::OK();
  }

  Result<std::vector<uint64_t>> ListPacks(uint32_t department) override {
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->List(std::to_string(department)));
    return PackIdsIn(names);
  }

  Result<std::vector<uint32_t>> ListDepartments() override {
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->List(kDepartments));
    return DepartmentIdsIn(names);
  }

  std::string Describe() const override { return describe_; }

 private:
  // After a timeout: the newest OSD map, every second, until an operation
  // reaches an OSD again.
  void Watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_ || !cluster_.suspect) continue;
      lock.unlock();
      rados_wait_for_latest_osdmap(cluster_.handle);
      lock.lock();
    }
  }

  Cluster cluster_;
  std::unique_ptr<RadosEnv> env_;
  const std::string describe_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread watcher_;
  std::set<uint32_t> known_;
};

}  // namespace

Result<std::unique_ptr<PackStore>> OpenRadosPackStore(const RadosStoreOptions& o) {
  if (o.pool.empty()) return Status::InvalidArgument("rados store: no pool named");
  if (o.ceph_conf.empty()) return Status::InvalidArgument("rados store: no ceph.conf named");
  if (o.user.empty()) return Status::InvalidArgument("rados store: no Ceph user named");
  rados_t cluster = nullptr;
  const std::string name = "client." + o.user;
  int r = rados_create2(&cluster, "ceph", name.c_str(), 0);
  if (r < 0) return ErrnoToStatus(r, "rados store: create a client");
  auto fail = [&](Status s) {
    rados_shutdown(cluster);
    return s;
  };
  r = rados_conf_read_file(cluster, o.ceph_conf.c_str());
  if (r < 0) return fail(ErrnoToStatus(r, "rados store: read " + o.ceph_conf));
  const std::string timeout = std::to_string(o.op_timeout.count());
  rados_conf_set(cluster, "rados_osd_op_timeout", timeout.c_str());
  rados_conf_set(cluster, "rados_mon_op_timeout", timeout.c_str());
  rados_conf_set(cluster, "client_mount_timeout", timeout.c_str());
  rados_conf_set(cluster, "log_to_stderr", "false");
  rados_conf_set(cluster, "err_to_stderr", "false");
  r = rados_connect(cluster);
  const std::string where = "rados store: connect to the cluster of " + o.ceph_conf + " as " + name;
  if (r == -ENOENT) {
    return fail(Status::NotFound(where + ": no keyring for " + name + " (the keyring setting of " +
                                 o.ceph_conf + ")"));
  }
  if (r == -EACCES || r == -EPERM) {
    return fail(Status::PermissionDenied(where + ": the cluster refused " + name + "'s key"));
  }
  if (r == -ETIMEDOUT) {
    return fail(Status::Unavailable(where + ": no monitor answered within " + timeout + " s"));
  }
  if (r < 0) return fail(ErrnoToStatus(r, where));
  if (rados_pool_lookup(cluster, o.pool.c_str()) < 0) {
    rados_shutdown(cluster);
    return Status::NotFound("rados store: the cluster has no pool \"" + o.pool +
                            "\" (create it: ceph osd pool create " + o.pool + ")");
  }
  return std::unique_ptr<PackStore>(std::make_unique<RadosPackStore>(cluster, o));
}

}  // namespace cairn::vault
