#include "agent/file_cache.h"

#include <algorithm>

namespace cairn::agent {
namespace {

constexpr uint8_t kCacheValueVersion = 1;
constexpr size_t kBatch = 10000;
constexpr size_t kRefSize = 1 + crypto::kChunkIdSize + 8;

}  // namespace

Bytes EncodeCachedFile(const CachedFile& f) {
  Bytes out;
  out.reserve(1 + 40 + 8 + f.content.size() * kRefSize + f.holes.size() * 16);
  ByteWriter w(&out);
  w.PutU8(kCacheValueVersion);
  w.PutU64(f.stamp.dev);
  w.PutU64(f.stamp.ino);
  w.PutU64(f.stamp.size);
  w.PutU64(static_cast<uint64_t>(f.stamp.mtime_ns));
  w.PutU64(static_cast<uint64_t>(f.stamp.ctime_ns));
  w.PutU32(static_cast<uint32_t>(f.content.size()));
  for (const repo::ContentRef& r : f.content) {
    w.PutU8(static_cast<uint8_t>(r.kind));
    w.PutBytes(r.id);
    w.PutU64(r.length);
    if (r.kind == repo::RefKind::kSlice) {
      w.PutU32(r.offset);
      w.PutBytes(r.slice_id);
    }
  }
  w.PutU32(static_cast<uint32_t>(f.holes.size()));
  for (const repo::Hole& h : f.holes) {
    w.PutU64(h.offset);
    w.PutU64(h.length);
  }
  return out;
}

Result<CachedFile> DecodeCachedFile(ByteView value) {
  ByteReader r(value);
  const Status bad = Status::Corruption("file cache entry is damaged");
  CachedFile f;
  uint8_t version;
  uint64_t mtime, ctime;
  uint32_t count;
  if (!r.ReadU8(&version) || version != kCacheValueVersion || !r.ReadU64(&f.stamp.dev) ||
      !r.ReadU64(&f.stamp.ino) || !r.ReadU64(&f.stamp.size) || !r.ReadU64(&mtime) ||
      !r.ReadU64(&ctime) || !r.ReadU32(&count)) {
    return bad;
  }
  f.stamp.mtime_ns = static_cast<int64_t>(mtime);
  f.stamp.ctime_ns = static_cast<int64_t>(ctime);
  if (static_cast<uint64_t>(count) * kRefSize > r.remaining()) return bad;
  f.content.resize(count);
  for (repo::ContentRef& ref : f.content) {
    uint8_t kind;
    ByteView id;
    if (!r.ReadU8(&kind) || kind < 1 || kind > 3 || !r.ReadView(crypto::kChunkIdSize, &id) ||
        !r.ReadU64(&ref.length)) {
      return bad;
    }
    ref.kind = static_cast<repo::RefKind>(kind);
    std::copy(id.begin(), id.end(), ref.id.begin());
    if (ref.kind == repo::RefKind::kSlice) {
      ByteView slice_id;
      if (!r.ReadU32(&ref.offset) || !r.ReadView(crypto::kChunkIdSize, &slice_id)) return bad;
      std::copy(slice_id.begin(), slice_id.end(), ref.slice_id.begin());
    }
  }
  if (!r.ReadU32(&count) || static_cast<uint64_t>(count) * 16 != r.remaining()) return bad;
  f.holes.resize(count);
  for (repo::Hole& h : f.holes) {
    if (!r.ReadU64(&h.offset) || !r.ReadU64(&h.length)) return bad;
  }
  return f;
}

Result<std::unique_ptr<FileCache>> FileCache::Open(const std::string& lmdb_dir, bool no_sync) {
  repo::LmdbOptions options;
  // The cache holds one entry per file backed up: 4 GiB of address space is
  // tens of millions of files.
  options.map_size = 4ull << 30;
  options.max_dbs = 4;
  options.max_readers = 64;
  options.no_sync = no_sync;
  // A backup looks up every file (one read transaction each) and a full
  // one writes every file: keep the agent's resident set bounded whatever
  // the cache's size (it is read back from the page cache as needed).
  options.unmap = true;
  std::unique_ptr<FileCache> cache(new FileCache());
  CAIRN_ASSIGN_OR_RETURN(cache->env_, repo::LmdbEnv::Open(lmdb_dir, options));
  CAIRN_ASSIGN_OR_RETURN(cache->files_, cache->env_->OpenDb("files"));
  CAIRN_ASSIGN_OR_RETURN(cache->pending_, cache->env_->OpenDb("pending"));
  return cache;
}

FileCache::~FileCache() = default;

Result<std::optional<CachedFile>> FileCache::Lookup(const std::string& path,
                                                    const FileStamp& stamp) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  Result<ByteView> value = txn.Get(files_, AsBytes(path));
  if (!value.ok()) {
    if (value.status().IsNotFound()) return std::optional<CachedFile>();
    return value.status();
  }
  Result<CachedFile> file = DecodeCachedFile(*value);
  if (!file.ok() || !(file->stamp == stamp)) return std::optional<CachedFile>();
  return std::optional<CachedFile>(std::move(file).value());
}

Status FileCache::AddPending(const std::vector<std::pair<std::string, CachedFile>>& files) {
  if (files.empty()) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  for (const auto& [path, file] : files) {
    CAIRN_RETURN_IF_ERROR(txn.Put(pending_, AsBytes(path), EncodeCachedFile(file)));
  }
  return txn.Commit();
}

Status FileCache::ClearDb(repo::LmdbDb db) {
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
    std::vector<Bytes> keys;
    CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(db, {}, [&](ByteView key, ByteView) {
      keys.emplace_back(key.begin(), key.end());
      return keys.size() < kBatch;
    }));
    if (keys.empty()) return Status::OK();
    for (const Bytes& k : keys) CAIRN_RETURN_IF_ERROR(txn.Delete(db, k));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
}

Status FileCache::ClearPending() { return ClearDb(pending_); }

Status FileCache::Clear() {
  CAIRN_RETURN_IF_ERROR(ClearDb(pending_));
  return ClearDb(files_);
}

Status FileCache::PromotePending() {
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
    std::vector<std::pair<Bytes, Bytes>> batch;
    CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(pending_, {}, [&](ByteView key, ByteView value) {
      batch.emplace_back(Bytes(key.begin(), key.end()), Bytes(value.begin(), value.end()));
      return batch.size() < kBatch;
    }));
    if (batch.empty()) return Status::OK();
    for (const auto& [k, v] : batch) {
      CAIRN_RETURN_IF_ERROR(txn.Put(files_, k, v));
      CAIRN_RETURN_IF_ERROR(txn.Delete(pending_, k));
    }
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
}

Result<uint64_t> FileCache::Count() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  return txn.Count(files_);
}

}  // namespace cairn::agent
