#include "vault/service/manifest_buffer.h"

#include <algorithm>

namespace cairn::vault {

namespace {
constexpr size_t kReadBatch = 32768;  // IDs per read of the spill file (1 MiB)
}  // namespace

ManifestBuffer::ManifestBuffer(io::Env* env, std::string spill_path, size_t memory_ids)
    : env_(env), spill_path_(std::move(spill_path)), memory_ids_(std::max<size_t>(1, memory_ids)) {}

ManifestBuffer::~ManifestBuffer() { Clear(); }

Status ManifestBuffer::Append(std::span<const crypto::ChunkId> ids) {
  if (memory_.size() + ids.size() <= memory_ids_) {
    memory_.insert(memory_.end(), ids.begin(), ids.end());
    return Status::OK();
  }
  if (!spill_) {
    CAIRN_RETURN_IF_ERROR(env_->CreateDir(io::ParentDir(spill_path_)));
    CAIRN_ASSIGN_OR_RETURN(spill_, env_->NewWritableFile(spill_path_));
  }
  for (auto part : {std::span<const crypto::ChunkId>(memory_), ids}) {
    if (part.empty()) continue;
    CAIRN_RETURN_IF_ERROR(
        spill_->Append(ByteView(part.front().data(), part.size() * crypto::kChunkIdSize)));
    spilled_ += part.size();
  }
  memory_.clear();
  memory_.shrink_to_fit();
  return Status::OK();
}

ManifestReader ManifestBuffer::Reader() const {
  return [this](const std::function<Status(std::span<const crypto::ChunkId>)>& sink) -> Status {
    if (spilled_ > 0) {
      CAIRN_ASSIGN_OR_RETURN(auto file, env_->NewRandomAccessFile(spill_path_));
      std::vector<crypto::ChunkId> batch;
      for (uint64_t done = 0; done < spilled_;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kReadBatch, spilled_ - done));
        batch.resize(n);
        MutableByteView out(batch.front().data(), n * crypto::kChunkIdSize);
        CAIRN_ASSIGN_OR_RETURN(size_t got, file->Read(done * crypto::kChunkIdSize, out));
        if (got != out.size()) return Status::IOError(spill_path_ + ": manifest spill cut short");
        CAIRN_RETURN_IF_ERROR(sink(batch));
        done += n;
      }
    }
    if (!memory_.empty()) return sink(memory_);
    return Status::OK();
  };
}

void ManifestBuffer::Clear() {
  memory_.clear();
  memory_.shrink_to_fit();
  if (spill_) {
    (void)spill_->Close();
    spill_.reset();
    (void)env_->RemoveFile(spill_path_);
  }
  spilled_ = 0;
}

}  // namespace cairn::vault
