#include "lib/io/mem_env.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "lib/base/splitmix.h"

namespace cairn::io {

namespace {

struct FileNode {
  Bytes data;
};

}  // namespace

struct MemEnv::State {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<FileNode>> files;
  std::set<std::string> dirs = {"/", "."};
  uint64_t wall_micros;
  uint64_t monotonic_micros;
  uint64_t rng;

  bool IsDir(const std::string& p) const { return dirs.count(p) != 0; }

  std::shared_ptr<FileNode> FindFile(const std::string& p) const {
    auto it = files.find(p);
    return it == files.end() ? nullptr : it->second;
  }

  // NotFound unless the parent of `p` is a directory.
  Status CheckParent(const std::string& p, std::string_view op) const {
    if (IsDir(ParentDir(p))) return Status::OK();
    return Status::NotFound(std::string(op) + " " + p + ": parent directory does not exist");
  }

  uint64_t NextRandom() { return SplitMix64(&rng); }
};

namespace {

using State = MemEnv::State;

Status NotFound(std::string_view op, const std::string& path) {
  return Status::NotFound(std::string(op) + " " + path + ": no such file");
}

class MemWritableFile : public WritableFile {
 public:
  MemWritableFile(std::shared_ptr<State> state, std::shared_ptr<FileNode> node, std::string path)
      : state_(std::move(state)), node_(std::move(node)), path_(std::move(path)) {
    size_ = node_->data.size();
  }

  Status Append(ByteView data) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (closed_) return Status::InvalidArgument("append to closed file " + path_);
    // Write at our own end offset, like PosixWritableFile's pwrite.
    Bytes& d = node_->data;
    if (d.size() < size_ + data.size()) d.resize(size_ + data.size());
    if (!data.empty()) std::memcpy(d.data() + size_, data.data(), data.size());
    size_ += data.size();
    return Status::OK();
  }

  Status Sync() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (closed_) return Status::InvalidArgument("sync of closed file " + path_);
    return Status::OK();
  }

  Status Close() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    closed_ = true;
    return Status::OK();
  }

  uint64_t Size() const override { return size_; }

 private:
  std::shared_ptr<State> state_;
  std::shared_ptr<FileNode> node_;
  std::string path_;
  uint64_t size_;
  bool closed_ = false;
};

class MemRandomAccessFile : public RandomAccessFile {
 public:
  MemRandomAccessFile(std::shared_ptr<State> state, std::shared_ptr<FileNode> node)
      : state_(std::move(state)), node_(std::move(node)) {}

  Result<size_t> Read(uint64_t offset, MutableByteView out) const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    const Bytes& d = node_->data;
    if (offset >= d.size()) return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), d.size() - offset);
    if (n > 0) std::memcpy(out.data(), d.data() + offset, n);
    return n;
  }

  Result<uint64_t> Size() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return static_cast<uint64_t>(node_->data.size());
  }

 private:
  std::shared_ptr<State> state_;
  std::shared_ptr<FileNode> node_;
};

}  // namespace

MemEnv::MemEnv(const MemEnvOptions& options) : state_(std::make_shared<State>()) {
  state_->wall_micros = options.start_wall_micros;
  state_->monotonic_micros = options.start_monotonic_micros;
  state_->rng = options.random_seed;
}

MemEnv::~MemEnv() = default;

Result<std::unique_ptr<WritableFile>> MemEnv::NewWritableFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->IsDir(p)) return Status::InvalidArgument("open " + p + ": is a directory");
  CAIRN_RETURN_IF_ERROR(state_->CheckParent(p, "open"));
  std::shared_ptr<FileNode>& node = state_->files[p];
  if (node == nullptr) {
    node = std::make_shared<FileNode>();
  } else {
    node->data.clear();  // truncate the same file, as O_TRUNC does
  }
  return std::unique_ptr<WritableFile>(std::make_unique<MemWritableFile>(state_, node, p));
}

Result<std::unique_ptr<WritableFile>> MemEnv::NewExclusiveFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->IsDir(p) || state_->FindFile(p) != nullptr) {
    return Status::InvalidArgument("create " + p + ": already exists");
  }
  CAIRN_RETURN_IF_ERROR(state_->CheckParent(p, "create"));
  std::shared_ptr<FileNode>& node = state_->files[p];
  node = std::make_shared<FileNode>();
  return std::unique_ptr<WritableFile>(std::make_unique<MemWritableFile>(state_, node, p));
}

Result<std::unique_ptr<WritableFile>> MemEnv::NewAppendableFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->IsDir(p)) return Status::InvalidArgument("open " + p + ": is a directory");
  std::shared_ptr<FileNode> node = state_->FindFile(p);
  if (node == nullptr) return NotFound("open", p);
  return std::unique_ptr<WritableFile>(std::make_unique<MemWritableFile>(state_, node, p));
}

Result<std::unique_ptr<RandomAccessFile>> MemEnv::NewRandomAccessFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  std::shared_ptr<FileNode> node = state_->FindFile(p);
  if (node == nullptr) return NotFound("open", p);
  return std::unique_ptr<RandomAccessFile>(std::make_unique<MemRandomAccessFile>(state_, node));
}

bool MemEnv::FileExists(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->IsDir(p) || state_->FindFile(p) != nullptr;
}

Result<uint64_t> MemEnv::GetFileSize(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  std::shared_ptr<FileNode> node = state_->FindFile(p);
  if (node == nullptr) {
    if (state_->IsDir(p)) return Status::InvalidArgument("stat " + p + ": is a directory");
    return NotFound("stat", p);
  }
  return static_cast<uint64_t>(node->data.size());
}

Result<std::vector<std::string>> MemEnv::GetChildren(const std::string& dir) {
  const std::string d = NormalizePath(dir);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->IsDir(d)) {
    if (state_->FindFile(d) != nullptr) {
      return Status::NotFound("opendir " + d + ": not a directory");  // ENOTDIR, as PosixEnv
    }
    return NotFound("opendir", d);
  }
  std::vector<std::string> names;
  auto add_if_child = [&](const std::string& p) {
    if (p == d || ParentDir(p) != d) return;
    size_t slash = p.rfind('/');
    names.push_back(slash == std::string::npos ? p : p.substr(slash + 1));
  };
  for (const auto& [p, node] : state_->files) add_if_child(p);
  for (const std::string& p : state_->dirs) {
    if (p != "." && p != "/") add_if_child(p);
  }
  return names;
}

Status MemEnv::RemoveFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->IsDir(p)) return Status::InvalidArgument("unlink " + p + ": is a directory");
  if (state_->files.erase(p) == 0) return NotFound("unlink", p);
  return Status::OK();
}

Status MemEnv::RenameFile(const std::string& from, const std::string& to) {
  const std::string f = NormalizePath(from);
  const std::string t = NormalizePath(to);
  const std::string context = "rename " + f + " -> " + t;
  std::lock_guard<std::mutex> lock(state_->mu);
  std::shared_ptr<FileNode> node = state_->FindFile(f);
  if (node == nullptr) {
    if (state_->IsDir(f)) {
      return Status::InvalidArgument(context + ": MemEnv cannot rename directories");
    }
    return Status::NotFound(context + ": no such file");
  }
  if (state_->IsDir(t)) return Status::InvalidArgument(context + ": target is a directory");
  CAIRN_RETURN_IF_ERROR(state_->CheckParent(t, "rename"));
  if (f == t) return Status::OK();
  state_->files[t] = std::move(node);
  state_->files.erase(f);
  return Status::OK();
}

Status MemEnv::CreateDir(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->IsDir(p)) return Status::OK();
  if (state_->FindFile(p) != nullptr) {
    return Status::InvalidArgument("mkdir " + p + ": a file exists there");
  }
  CAIRN_RETURN_IF_ERROR(state_->CheckParent(p, "mkdir"));
  state_->dirs.insert(p);
  return Status::OK();
}

Status MemEnv::SyncDir(const std::string& dir) {
  const std::string d = NormalizePath(dir);
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->IsDir(d)) return NotFound("syncdir", d);
  return Status::OK();
}

Status MemEnv::TruncateFile(const std::string& path, uint64_t size) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(state_->mu);
  std::shared_ptr<FileNode> node = state_->FindFile(p);
  if (node == nullptr) return NotFound("truncate", p);
  node->data.resize(size);
  return Status::OK();
}

uint64_t MemEnv::NowMicros() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->wall_micros;
}

uint64_t MemEnv::MonotonicMicros() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->monotonic_micros;
}

void MemEnv::FillRandom(MutableByteView out) {
  std::lock_guard<std::mutex> lock(state_->mu);
  size_t i = 0;
  while (i < out.size()) {
    uint64_t r = state_->NextRandom();
    size_t n = std::min(out.size() - i, sizeof(r));
    std::memcpy(out.data() + i, &r, n);
    i += n;
  }
}

void MemEnv::AdvanceClock(uint64_t micros) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->wall_micros += micros;
  state_->monotonic_micros += micros;
}

std::unique_ptr<Env> NewMemEnv() { return std::make_unique<MemEnv>(); }

}  // namespace cairn::io
