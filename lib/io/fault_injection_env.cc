#include "lib/io/fault_injection_env.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace cairn::io {

struct FaultInjectionEnv::FileState {
  // Bytes known durable: the size at the last successful Sync/TruncateFile.
  uint64_t synced_size = 0;
  // Created or renamed into place since the last SyncDir of its parent.
  bool entry_pending = false;
  // When entry_pending came from a rename over a file whose entry was
  // durable: that file's durable content, restored by DropUnsyncedData.
  std::optional<Bytes> replaced_content;
};

// Not in an anonymous namespace: FaultInjectionEnv befriends it by name.
class FaultInjectionWritableFile : public WritableFile {
 public:
  FaultInjectionWritableFile(FaultInjectionEnv* env, std::unique_ptr<WritableFile> base,
                             std::shared_ptr<FaultInjectionEnv::FileState> state,
                             uint64_t generation)
      : env_(env), base_(std::move(base)), state_(std::move(state)), generation_(generation) {}

  Status Append(ByteView data) override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    CAIRN_RETURN_IF_ERROR(env_->BeforeAppend(generation_, data.size()));
    Status s = base_->Append(data);
    if (s.ok()) {
      env_->bytes_appended_ += data.size();
      if (env_->no_space_armed_) env_->no_space_used_ += data.size();
    }
    return s;
  }

  Status Sync() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    CAIRN_RETURN_IF_ERROR(env_->BeforeSync(generation_));
    Status s = base_->Sync();
    if (s.ok()) state_->synced_size = base_->Size();
    return s;
  }

  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultInjectionEnv* const env_;
  std::unique_ptr<WritableFile> base_;
  // Follows the file through renames (the map entry moves, this pointer
  // stays); detached from the map once the file is removed.
  std::shared_ptr<FaultInjectionEnv::FileState> state_;
  const uint64_t generation_;
};

FaultInjectionEnv::FaultInjectionEnv(Env* base) : EnvWrapper(base), base_(base) {}

FaultInjectionEnv::~FaultInjectionEnv() = default;

Status FaultInjectionEnv::BeforeAppend(uint64_t generation, size_t size) {
  ++append_count_;
  if (generation != generation_) {
    return Status::IOError("append: file handle predates a simulated power loss");
  }
  if (writes_until_failure_ > 0 && --writes_until_failure_ == 0) {
    return Status::IOError("append: injected write failure");
  }
  if (no_space_armed_ && no_space_used_ + size > no_space_budget_) {
    return Status::NoSpace("append: injected full disk");
  }
  return Status::OK();
}

Status FaultInjectionEnv::BeforeSync(uint64_t generation) {
  ++sync_count_;
  if (generation != generation_) {
    return Status::IOError("sync: file handle predates a simulated power loss");
  }
  if (syncs_until_failure_ > 0 && --syncs_until_failure_ == 0) {
    return Status::IOError("sync: injected sync failure");
  }
  return Status::OK();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(mu_);
  const bool existed = base_->FileExists(p);
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->NewWritableFile(p));
  std::shared_ptr<FileState>& state = files_[p];
  if (state == nullptr) {
    state = std::make_shared<FileState>();
    state->entry_pending = !existed;
  }
  state->synced_size = 0;  // the truncation itself is not durable data
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultInjectionWritableFile>(this, std::move(file), state, generation_));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewExclusiveFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->NewExclusiveFile(p));
  auto state = std::make_shared<FileState>();
  state->entry_pending = true;  // a new name is durable only after SyncDir
  files_[p] = state;
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultInjectionWritableFile>(this, std::move(file), state, generation_));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(
    const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, base_->NewAppendableFile(p));
  std::shared_ptr<FileState>& state = files_[p];
  if (state == nullptr) {
    state = std::make_shared<FileState>();
    state->synced_size = file->Size();  // untracked so far: fully durable
  }
  return std::unique_ptr<WritableFile>(
      std::make_unique<FaultInjectionWritableFile>(this, std::move(file), state, generation_));
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(mu_);
  CAIRN_RETURN_IF_ERROR(base_->RemoveFile(p));
  files_.erase(p);
  return Status::OK();
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  const std::string f = NormalizePath(from);
  const std::string t = NormalizePath(to);
  std::lock_guard<std::mutex> lock(mu_);
  if (f == t) return base_->RenameFile(f, t);

  // What a crash before SyncDir(parent of t) would bring back at `t`.
  std::optional<Bytes> replaced;
  if (base_->FileExists(t)) {
    auto it = files_.find(t);
    if (it == files_.end()) {
      CAIRN_ASSIGN_OR_RETURN(replaced, ReadFileToBytes(base_, t));  // untracked: all durable
    } else if (!it->second->entry_pending) {
      CAIRN_ASSIGN_OR_RETURN(Bytes content, ReadFileToBytes(base_, t));
      content.resize(std::min<uint64_t>(content.size(), it->second->synced_size));
      replaced = std::move(content);
    } else {
      replaced = it->second->replaced_content;  // itself not durable yet
    }
  }
  CAIRN_RETURN_IF_ERROR(base_->RenameFile(f, t));

  std::shared_ptr<FileState> state;
  if (auto it = files_.find(f); it != files_.end()) {
    state = std::move(it->second);
    files_.erase(it);
  } else {
    // Never written through us: its data is durable, its new name is not.
    state = std::make_shared<FileState>();
    CAIRN_ASSIGN_OR_RETURN(state->synced_size, base_->GetFileSize(t));
  }
  state->entry_pending = true;
  state->replaced_content = std::move(replaced);
  files_[t] = std::move(state);
  return Status::OK();
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  const std::string d = NormalizePath(dir);
  std::lock_guard<std::mutex> lock(mu_);
  CAIRN_RETURN_IF_ERROR(base_->SyncDir(d));
  for (auto& [path, state] : files_) {
    if (ParentDir(path) == d) {
      state->entry_pending = false;
      state->replaced_content.reset();
    }
  }
  return Status::OK();
}

Status FaultInjectionEnv::TruncateFile(const std::string& path, uint64_t size) {
  const std::string p = NormalizePath(path);
  std::lock_guard<std::mutex> lock(mu_);
  CAIRN_RETURN_IF_ERROR(base_->TruncateFile(p, size));
  if (auto it = files_.find(p); it != files_.end()) it->second->synced_size = size;
  return Status::OK();
}

Status FaultInjectionEnv::DropUnsyncedData() {
  std::lock_guard<std::mutex> lock(mu_);
  Status first_error;
  auto note = [&first_error](Status s) {
    if (first_error.ok() && !s.ok()) first_error = std::move(s);
  };
  for (auto& [path, state] : files_) {
    if (state->entry_pending) {
      if (state->replaced_content.has_value()) {
        // The rename never became durable: the old file is back.
        Result<std::unique_ptr<WritableFile>> file = base_->NewWritableFile(path);
        if (!file.ok()) {
          note(file.status());
          continue;
        }
        note((*file)->Append(*state->replaced_content));
        note((*file)->Sync());
        note((*file)->Close());
      } else {
        Status s = base_->RemoveFile(path);
        if (!s.IsNotFound()) note(s);
      }
      continue;
    }
    Result<uint64_t> size = base_->GetFileSize(path);
    if (!size.ok()) {
      if (!size.status().IsNotFound()) note(size.status());
      continue;
    }
    if (*size > state->synced_size) note(base_->TruncateFile(path, state->synced_size));
  }
  // Everything left is now exactly its durable self.
  files_.clear();
  ++generation_;
  return first_error;
}

void FaultInjectionEnv::FailNthWrite(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  writes_until_failure_ = n;
}

void FaultInjectionEnv::FailNthSync(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  syncs_until_failure_ = n;
}

void FaultInjectionEnv::SetNoSpaceAfter(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  no_space_armed_ = true;
  no_space_budget_ = bytes;
  no_space_used_ = 0;
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  writes_until_failure_ = 0;
  syncs_until_failure_ = 0;
  no_space_armed_ = false;
  no_space_budget_ = 0;
  no_space_used_ = 0;
}

uint64_t FaultInjectionEnv::append_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return append_count_;
}

uint64_t FaultInjectionEnv::sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_count_;
}

uint64_t FaultInjectionEnv::bytes_appended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_appended_;
}

void FaultInjectionEnv::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  append_count_ = 0;
  sync_count_ = 0;
  bytes_appended_ = 0;
}

}  // namespace cairn::io
