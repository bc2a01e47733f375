#include "agent/image_backup.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>
#include <utility>

#include "agent/commit.h"
#include "agent/scan.h"
#include "lib/base/errno.h"
#include "lib/base/parallel.h"
#include "lib/chunk/extent.h"
#include "lib/chunk/rsync_delta.h"
#include "lib/crypto/chunk_id_set.h"
#include "lib/crypto/hash.h"
#include "lib/io/env.h"
#include "lib/io/file_io.h"
#include "lib/io/uring_env.h"
#include "lib/proto/messages.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"

namespace cairn::agent {
namespace {

using crypto::ChunkId;
using crypto::kChunkIdSize;
using Clock = std::chrono::steady_clock;

constexpr uint8_t kExtentStateVersion = 1;
constexpr size_t kPromoteBatch = 256;  // values carry ~20 KiB signatures
constexpr uint64_t kCountMarker = ~0ull;
constexpr size_t kKeySize = sizeof(ImageKey) + 8;
constexpr auto kProgressEvery = std::chrono::milliseconds(250);
// Extent states written to the extent store per transaction: each carries
// a signature of ~20 KiB, so this holds about 1.3 MiB.
constexpr size_t kSaveChangesEvery = 64;

Bytes StoreKey(const ImageKey& image, uint64_t index) {
  Bytes key(image.begin(), image.end());
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<uint8_t>(index >> shift));
  return key;
}

uint64_t IndexOfKey(ByteView key) {
  uint64_t index = 0;
  for (size_t i = sizeof(ImageKey); i < kKeySize; ++i) index = (index << 8) | key[i];
  return index;
}

// One extent of the batch being processed.
struct Slot {
  uint64_t index = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  Bytes data;
  std::optional<ExtentState> prev;
  // Results.
  bool hole = false;
  bool changed = false;
  ChunkId id{};
  repo::RecordType type = repo::RecordType::kData;
  Bytes plaintext;  // what to seal when `type` is kDelta (data otherwise)
  ExtentState next;
  bool upload = false;
  UninitBytes record;
  Status status;
};

struct OpenedImage {
  std::string path;
  std::unique_ptr<io::RandomAccessFile> file;
  io::UniqueFd hint_fd;  // the same file, for read-ahead hints
  uint64_t size = 0;
  ImageKey key{};
  repo::TreeEntry entry;
};

struct PathTrie {
  std::map<std::string, PathTrie> children;
  const repo::TreeEntry* image = nullptr;
};

class ImageEngine {
 public:
  ImageEngine(const crypto::DepartmentKeys& keys, ExtentStore* store, VaultSession* session,
              const ImageBackupOptions& options, uint32_t extent_size)
      : keys_(keys),
        store_(store),
        session_(session),
        options_(options),
        extent_size_(extent_size),
        hasher_(keys.id_key) {}

  Result<ImageBackupResult> Run(const std::vector<std::string>& paths);

 private:
  Result<OpenedImage> Open(const std::string& path);
  Status BackupImage(OpenedImage* image);
  Status ProcessBatch(OpenedImage* image, std::vector<Slot>& batch);
  // Writes the extent store's pending changes gathered so far (one
  // durable transaction per kSaveChangesEvery extents, not per batch).
  Status SaveChanges(const OpenedImage& image);
  void Analyse(unsigned worker, Slot* s);
  // Uploads one tree object unless the vault (or this run) has it already.
  Status PutObject(const ChunkId& id, ByteView plaintext);
  Status Put(ByteView record, uint64_t plain_size, const crypto::ChunkId* base);
  Result<ChunkId> WriteDir(const std::string& abs, const PathTrie& node);
  void ShowProgress(bool final);

  const crypto::DepartmentKeys& keys_;
  ExtentStore* store_;
  VaultSession* session_;
  const ImageBackupOptions& options_;
  const uint32_t extent_size_;
  std::unique_ptr<ParallelRunner> parallel_;  // hashes, diffs and seals a batch
  crypto::ChunkIdHasher hasher_;
  std::vector<std::unique_ptr<repo::RecordEncoder>> encoders_;
  OwnerNames owners_;

  std::vector<ExtentStore::Change> unsaved_;  // of the image being read
  bool store_failed_ = false;                 // a write failed: record no more
  crypto::ChunkIdSet referenced_;             // the manifest
  // Base chain of every extent ID met in this run (see ProcessBatch).
  std::map<ChunkId, std::vector<ChunkId>> chains_;
  uint64_t since_flush_ = 0;
  ImageBackupResult result_;
  Clock::time_point started_ = Clock::now();
  Clock::time_point last_progress_{};
};

Result<OpenedImage> ImageEngine::Open(const std::string& path) {
  // Read from the view when there is one; the image's own identity names
  // its extent state, so a new clone each time still finds the last one's.
  auto view = options_.read_from.find(path);
  const std::string& read = view == options_.read_from.end() ? path : view->second;
  int fd = ::open(read.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(read.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open image " + read);
  io::UniqueFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoToStatus(errno, "stat image " + read);
  struct stat id = st;
  if (read != path && ::stat(path.c_str(), &id) != 0) {
    return ErrnoToStatus(errno, "stat image " + path);
  }
  OpenedImage image;
  image.path = path;
  if (S_ISREG(st.st_mode)) {
    image.size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
      const off_t end = ::lseek(fd, 0, SEEK_END);
      if (end < 0) return ErrnoToStatus(errno, "size of block device " + path);
      bytes = static_cast<uint64_t>(end);
    }
    image.size = bytes;
  } else {
    return Status::InvalidArgument(path + ": not a regular file or a block device");
  }
  image.key =
      MakeImageKey(path, id.st_dev, id.st_ino, S_ISBLK(id.st_mode) ? id.st_rdev : 0, extent_size_);
  repo::TreeEntry& e = image.entry;
  e.name = std::filesystem::path(path).filename().string();
  if (!repo::IsValidEntryName(e.name)) {
    return Status::InvalidArgument(path + ": name cannot be stored");
  }
  e.type = repo::EntryType::kImage;
  e.mode = id.st_mode & 07777;  // the image's own, not its clone's
  e.uid = id.st_uid;
  e.gid = id.st_gid;
  e.user = owners_.User(id.st_uid);
  e.group = owners_.Group(id.st_gid);
  e.mtime_ns = ToNanos(id.st_mtim);
  e.size = image.size;
  e.extent_size = extent_size_;
  struct stat lst;
  if (::lstat(path.c_str(), &lst) == 0 && !S_ISLNK(lst.st_mode)) {
    Result<std::vector<repo::Xattr>> xattrs = ReadXattrs(path);
    if (xattrs.ok()) {
      e.xattrs = std::move(xattrs).value();
    } else {
      result_.warnings.push_back(path + ": xattrs not recorded: " + xattrs.status().message());
    }
  }
  image.hint_fd = io::UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  image.file = io::UringEnv::Default()->AdoptForReading(std::move(owned), path);
  return image;
}

void ImageEngine::Analyse(unsigned worker, Slot* s) {
  if (chunk::IsAllZero(s->data)) {
    s->hole = true;
    return;
  }
  s->id = encoders_[worker]->Id(s->data);
  if (s->prev && s->prev->id == s->id) return;  // unchanged
  s->changed = true;
  Result<Bytes> signature = chunk::ComputeSignature(s->data);
  if (!signature.ok()) {
    s->status = signature.status().WithContext("signature");
    return;
  }
  s->next.id = s->id;
  s->next.signature = std::move(signature).value();
  s->type = repo::RecordType::kData;
  if (s->prev && !s->prev->signature.empty() && s->prev->chain.size() < kMaxDeltaChain) {
    // Blocks rewritten in place first: a comparison of the two signatures.
    // Only when that finds too much changed does the rolling search look
    // for data that moved.
    Result<Bytes> delta =
        chunk::ComputeAlignedDelta(s->prev->signature, s->next.signature, s->data);
    if (!delta.ok() || delta->size() * kDeltaMaxFraction > s->length) {
      delta = chunk::ComputeDelta(s->prev->signature, s->data);
    }
    if (!delta.ok()) {
      s->status = delta.status().WithContext("delta");
      return;
    }
    if (delta->size() * kDeltaMaxFraction <= s->length) {
      s->type = repo::RecordType::kDelta;
      s->plaintext = EncodeDeltaPlaintext(s->prev->id, *delta);
      s->next.chain = s->prev->chain;
      s->next.chain.push_back(s->prev->id);
    }
  }
}

Status ImageEngine::Put(ByteView record, uint64_t plain_size, const crypto::ChunkId* base) {
  // A delta names its base, so the vault keeps the base while it keeps the
  // delta (doc/design.md 22.2).
  CAIRN_RETURN_IF_ERROR(
      (base != nullptr ? session_->PutDeltaRecord(*base, record) : session_->PutRecord(record))
          .WithContext("upload"));
  result_.new_chunks++;
  result_.new_bytes += plain_size;
  since_flush_ += record.size();
  if (since_flush_ >= options_.flush_every) {
    CAIRN_RETURN_IF_ERROR(session_->Flush().WithContext("flush"));
    since_flush_ = 0;
  }
  return Status::OK();
}

Status ImageEngine::PutObject(const ChunkId& id, ByteView plaintext) {
  if (!referenced_.Insert(id)) return Status::OK();
  Result<std::vector<bool>> present = session_->HaveChunks({id});
  if (!present.ok()) return present.status().WithContext("have_chunks");
  if (present->size() == 1 && (*present)[0]) return Status::OK();
  Bytes record;
  CAIRN_RETURN_IF_ERROR(encoders_[0]->Encode(repo::RecordType::kTree, id, plaintext, &record));
  return Put(record, plaintext.size(), nullptr);
}

Status ImageEngine::ProcessBatch(OpenedImage* image, std::vector<Slot>& batch) {
  // Read the batch as one io_uring submission.
  std::vector<io::ReadRequest> reads(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].data.resize(batch[i].length);
    reads[i].offset = batch[i].offset;
    reads[i].buffer = MutableByteView(batch[i].data.data(), batch[i].length);
  }
  CAIRN_RETURN_IF_ERROR(image->file->ReadBatch(reads).WithContext("read " + image->path));
  for (size_t i = 0; i < batch.size(); ++i) {
    if (reads[i].bytes_read != batch[i].length) {
      return Status::Unavailable(image->path + ": shrank while being read");
    }
    result_.bytes_read += batch[i].length;
    if (store_ != nullptr) {
      CAIRN_ASSIGN_OR_RETURN(batch[i].prev, store_->Lookup(image->key, batch[i].index));
    }
  }
  parallel_->For(batch.size(), [&](unsigned w, size_t i) { Analyse(w, &batch[i]); });

  // Ask the vault about the changed extents this run has not referenced yet.
  std::vector<ChunkId> ask;
  std::vector<Slot*> asked;
  for (Slot& s : batch) {
    CAIRN_RETURN_IF_ERROR(s.status.WithContext(image->path + " extent " + std::to_string(s.index)));
    if (s.hole) continue;
    // The chain of an ID is decided once per run: by the record this run
    // uploads for it, or by the committed state of an unchanged extent.
    const std::vector<ChunkId>& computed = s.changed ? s.next.chain : s.prev->chain;
    auto [known, fresh] = chains_.try_emplace(s.id, computed);
    if (s.changed && !fresh) s.next.chain = known->second;
    for (const ChunkId& base : known->second) referenced_.Insert(base);
    if (referenced_.Insert(s.id) && s.changed) {
      ask.push_back(s.id);
      asked.push_back(&s);
    }
  }
  if (!ask.empty()) {
    Result<std::vector<bool>> present = session_->HaveChunks(ask);
    if (!present.ok()) return present.status().WithContext("have_chunks");
    if (present->size() != asked.size())
      return Status::InvalidArgument("vault answered have_chunks out of step");
    for (size_t i = 0; i < asked.size(); ++i) asked[i]->upload = !(*present)[i];
  }
  parallel_->For(batch.size(), [&](unsigned w, size_t i) {
    Slot& s = batch[i];
    if (!s.upload) return;
    const ByteView plain =
        s.type == repo::RecordType::kDelta ? ByteView(s.plaintext) : ByteView(s.data);
    s.status = encoders_[w]->Encode(s.type, s.id, plain, &s.record).WithContext("seal record");
  });

  for (Slot& s : batch) {
    CAIRN_RETURN_IF_ERROR(s.status);
    result_.extents_total++;
    if (s.hole) {
      result_.extents_hole++;
      if (s.prev) unsaved_.push_back({s.index, std::nullopt});
      repo::TreeEntry& e = image->entry;
      if (!e.holes.empty() && e.holes.back().offset + e.holes.back().length == s.offset) {
        e.holes.back().length += s.length;
      } else {
        e.holes.push_back({s.offset, s.length});
      }
      continue;
    }
    image->entry.content.push_back({repo::RefKind::kData, s.id, s.length});
    if (!s.changed) continue;
    result_.extents_changed++;
    if (s.upload) {
      const uint64_t plain_size =
          s.type == repo::RecordType::kDelta ? s.plaintext.size() : s.data.size();
      const bool delta = s.type == repo::RecordType::kDelta && !s.next.chain.empty();
      CAIRN_RETURN_IF_ERROR(Put(s.record, plain_size, delta ? &s.next.chain.back() : nullptr));
      if (s.type == repo::RecordType::kDelta) {
        result_.extents_delta++;
        result_.delta_bytes += plain_size;
      }
    }
    unsaved_.push_back({s.index, std::move(s.next)});
  }
  if (unsaved_.size() >= kSaveChangesEvery) CAIRN_RETURN_IF_ERROR(SaveChanges(*image));
  ShowProgress(false);
  return Status::OK();
}

Status ImageEngine::SaveChanges(const OpenedImage& image) {
  if (store_ != nullptr && !store_failed_ && !unsaved_.empty()) {
    // The state only spares the next run work (deltas instead of whole
    // extents): a write that fails (its disk is full) costs that, not this
    // backup.
    if (Status s = store_->AddPending(image.key, unsaved_); !s.ok()) {
      store_failed_ = true;
      result_.warnings.push_back("extent state not updated (" + s.message() +
                                 "); the backup goes on, and the next one sends whole the "
                                 "extents it could not record");
    }
  }
  unsaved_.clear();
  return Status::OK();
}

Status ImageEngine::BackupImage(OpenedImage* image) {
  const chunk::ExtentRange extents(image->size, extent_size_);
  const size_t per_batch = std::max(1u, options_.extents_in_flight);
  for (uint64_t first = 0; first < extents.size(); first += per_batch) {
    // The disk reads the next two batches while this one is hashed, diffed
    // and sent: a cold image is read at the disk's pace, not in steps.
    if (image->hint_fd.valid() && first + per_batch < extents.size()) {
      const uint64_t from = extents[first + per_batch].offset;
      const uint64_t to = first + 3 * per_batch < extents.size()
                              ? extents[first + 3 * per_batch].offset
                              : image->size;
      io::WillNeed(image->hint_fd.get(), from, to - from);
    }
    std::vector<Slot> batch(std::min<uint64_t>(per_batch, extents.size() - first));
    for (size_t i = 0; i < batch.size(); ++i) {
      const chunk::Extent x = extents[first + i];
      batch[i].index = first + i;
      batch[i].offset = x.offset;
      batch[i].length = x.length;
    }
    CAIRN_RETURN_IF_ERROR(ProcessBatch(image, batch));
  }
  CAIRN_RETURN_IF_ERROR(SaveChanges(*image));
  if (store_ != nullptr) {
    CAIRN_RETURN_IF_ERROR(
        store_->SetPendingExtentCount(image->key, extents.size()).WithContext("extent store"));
  }
  // A large image keeps its directory entry small: content lists, as files.
  repo::TreeEntry& e = image->entry;
  if (e.content.size() > repo::kMaxInlineChunks) {
    std::vector<repo::ContentRef> lists;
    for (size_t begin = 0; begin < e.content.size(); begin += repo::kMaxChunksPerList) {
      const size_t end = std::min(e.content.size(), begin + repo::kMaxChunksPerList);
      repo::ContentList list;
      list.refs.assign(e.content.begin() + begin, e.content.begin() + end);
      uint64_t length = 0;
      for (const auto& r : list.refs) length += r.length;
      CAIRN_ASSIGN_OR_RETURN(Bytes bytes, repo::EncodeContentList(list));
      const ChunkId id = hasher_.Compute(bytes);
      CAIRN_RETURN_IF_ERROR(PutObject(id, bytes));
      lists.push_back({repo::RefKind::kList, id, length});
    }
    e.content = std::move(lists);
  }
  result_.images++;
  result_.bytes += image->size;
  return Status::OK();
}

Result<ChunkId> ImageEngine::WriteDir(const std::string& abs, const PathTrie& node) {
  std::vector<repo::TreeEntry> entries;
  for (const auto& [name, child] : node.children) {
    const std::string path = abs + "/" + name;
    if (child.image != nullptr) {
      entries.push_back(*child.image);
      continue;
    }
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + path);
    repo::TreeEntry e;
    CAIRN_RETURN_IF_ERROR(ReadEntryMetadata(AT_FDCWD, name, path, st, &owners_, &e));
    e.type = repo::EntryType::kDir;
    CAIRN_ASSIGN_OR_RETURN(e.subtree, WriteDir(path, child));
    entries.push_back(std::move(e));
  }
  std::optional<ChunkId> next;
  auto runs = repo::SplitDirectory(entries);
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    repo::DirPart part;
    part.entries.assign(entries.begin() + it->first, entries.begin() + it->second);
    part.next = next;
    CAIRN_ASSIGN_OR_RETURN(Bytes bytes, repo::EncodeDirPart(part));
    const ChunkId id = hasher_.Compute(bytes);
    CAIRN_RETURN_IF_ERROR(PutObject(id, bytes));
    next = id;
  }
  return *next;
}

void ImageEngine::ShowProgress(bool final) {
  if (!options_.progress) return;
  const auto now = Clock::now();
  if (!final && now - last_progress_ < kProgressEvery) return;
  last_progress_ = now;
  BackupProgress p;
  p.seconds = std::max(1e-3, std::chrono::duration<double>(now - started_).count());
  p.bytes_read = result_.bytes_read;
  p.bytes_covered = result_.bytes_read;
  p.bytes_total = result_.bytes;
  p.new_bytes = result_.new_bytes;
  p.extents = result_.extents_total;
  p.extents_changed = result_.extents_changed;
  p.extents_delta = result_.extents_delta;
  p.final = final;
  // Every extent of the images begun so far is read (holes are skipped, so
  // the ETA errs long).
  if (final) {
    p.eta_seconds = 0;
  } else if (result_.bytes_read > 0) {
    const uint64_t left =
        result_.bytes > result_.bytes_read ? result_.bytes - result_.bytes_read : 0;
    p.eta_seconds = static_cast<double>(left) / (result_.bytes_read / p.seconds);
  }
  options_.progress(p);
}

Result<ImageBackupResult> ImageEngine::Run(const std::vector<std::string>& paths) {
  io::Env* const clock = options_.clock != nullptr ? options_.clock : io::Env::Posix();
  const uint64_t started_micros = clock->NowMicros();
  unsigned n = options_.workers != 0 ? options_.workers : std::thread::hardware_concurrency();
  const unsigned threads = std::clamp(n, 1u, std::max(1u, options_.extents_in_flight));
  parallel_ = std::make_unique<ParallelRunner>(threads);
  repo::RecordEncoder::Options enc_options;
  enc_options.zstd_level = options_.zstd_level;
  for (unsigned i = 0; i < threads; ++i) {
    CAIRN_ASSIGN_OR_RETURN(auto enc, repo::RecordEncoder::Create(keys_, enc_options));
    encoders_.push_back(std::move(enc));
  }
  if (store_ != nullptr) CAIRN_RETURN_IF_ERROR(store_->ClearPending().WithContext("extent store"));

  std::vector<OpenedImage> images;
  for (const std::string& p : paths) {
    CAIRN_ASSIGN_OR_RETURN(OpenedImage image, Open(p));
    images.push_back(std::move(image));
  }
  PathTrie trie;
  uint64_t dirs = 0;
  for (OpenedImage& image : images) {
    CAIRN_RETURN_IF_ERROR(BackupImage(&image));
    PathTrie* node = &trie;
    size_t start = 1;
    while (start <= image.path.size()) {
      size_t slash = image.path.find('/', start);
      if (slash == std::string::npos) slash = image.path.size();
      auto [it, inserted] = node->children.try_emplace(image.path.substr(start, slash - start));
      if (inserted && slash != image.path.size()) dirs++;
      node = &it->second;
      start = slash + 1;
    }
    node->image = &image.entry;
  }
  CAIRN_ASSIGN_OR_RETURN(result_.root_tree, WriteDir("", trie));
  ShowProgress(true);

  CAIRN_RETURN_IF_ERROR(session_->Flush().WithContext("final flush"));
  std::vector<ChunkId> manifest = referenced_.TakeSorted();
  result_.manifest_size = manifest.size();
  proto::SnapshotStats stats;
  stats.files = result_.images;
  stats.dirs = dirs;
  stats.bytes = result_.bytes;
  stats.new_bytes = result_.new_bytes;
  stats.new_chunks = result_.new_chunks;
  stats.warnings = result_.warnings.size();
  stats.started_micros = started_micros;
  stats.finished_micros = clock->NowMicros();
  stats.pit_method = options_.pit_method;
  stats.pit_micros = options_.pit_micros;
  CAIRN_ASSIGN_OR_RETURN(result_.snapshot_id,
                         FinishCommit(session_->Commit(result_.root_tree, manifest, stats), store_,
                                      "extent state", &result_.warnings));
  result_.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  return result_;
}

}  // namespace

Bytes EncodeExtentState(const ExtentState& state) {
  Bytes out;
  out.reserve(2 + kChunkIdSize * (1 + state.chain.size()) + state.signature.size());
  ByteWriter w(&out);
  w.PutU8(kExtentStateVersion);
  w.PutBytes(state.id);
  w.PutU8(static_cast<uint8_t>(state.chain.size()));
  for (const ChunkId& id : state.chain) w.PutBytes(id);
  w.PutBytes(state.signature);
  return out;
}

Result<ExtentState> DecodeExtentState(ByteView value) {
  const Status bad = Status::Corruption("extent state is damaged");
  ByteReader r(value);
  ExtentState s;
  uint8_t version, depth;
  ByteView id;
  if (!r.ReadU8(&version) || version != kExtentStateVersion || !r.ReadView(kChunkIdSize, &id) ||
      !r.ReadU8(&depth) || depth > kMaxDeltaChain) {
    return bad;
  }
  std::copy(id.begin(), id.end(), s.id.begin());
  s.chain.resize(depth);
  for (ChunkId& c : s.chain) {
    if (!r.ReadView(kChunkIdSize, &id)) return bad;
    std::copy(id.begin(), id.end(), c.begin());
  }
  ByteView rest;
  if (!r.ReadView(r.remaining(), &rest)) return bad;
  s.signature.assign(rest.begin(), rest.end());
  return s;
}

ImageKey MakeImageKey(const std::string& abs_path, uint64_t dev, uint64_t ino, uint64_t rdev,
                      uint32_t extent_size) {
  Bytes in;
  ByteWriter w(&in);
  w.PutBytes(AsBytes(std::string_view("cairn/v1/image")));
  w.PutU64(dev);
  w.PutU64(ino);
  w.PutU64(rdev);
  w.PutU32(extent_size);
  w.PutU32(static_cast<uint32_t>(abs_path.size()));
  w.PutBytes(AsBytes(abs_path));
  const crypto::Sha256Digest digest = crypto::Sha256(in);
  ImageKey key;
  std::copy(digest.begin(), digest.begin() + key.size(), key.begin());
  return key;
}

// ---- ExtentStore ----

Result<std::unique_ptr<ExtentStore>> ExtentStore::Open(const std::string& lmdb_dir, bool no_sync) {
  repo::LmdbOptions options;
  // Address space, not disk: signatures take ~0.5% of the imaged bytes
  // (20 KiB per 4 MiB extent), so 64 GiB covers ~12 TiB of images.
  options.map_size = 64ull << 30;
  options.max_dbs = 8;
  options.max_readers = 64;
  options.no_sync = no_sync;
  std::unique_ptr<ExtentStore> store(new ExtentStore());
  CAIRN_ASSIGN_OR_RETURN(store->env_, repo::LmdbEnv::Open(lmdb_dir, options));
  CAIRN_ASSIGN_OR_RETURN(store->extents_, store->env_->OpenDb("extents"));
  CAIRN_ASSIGN_OR_RETURN(store->pending_, store->env_->OpenDb("extents_pending"));
  return store;
}

ExtentStore::~ExtentStore() = default;

Result<std::optional<ExtentState>> ExtentStore::Lookup(const ImageKey& image,
                                                       uint64_t index) const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  Result<ByteView> value = txn.Get(extents_, StoreKey(image, index));
  if (!value.ok()) {
    if (value.status().IsNotFound()) return std::optional<ExtentState>();
    return value.status();
  }
  Result<ExtentState> state = DecodeExtentState(*value);
  if (!state.ok()) return std::optional<ExtentState>();
  return std::optional<ExtentState>(std::move(state).value());
}

Status ExtentStore::AddPending(const ImageKey& image, const std::vector<Change>& changes) {
  if (changes.empty()) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  for (const Change& c : changes) {
    // An empty value is a tombstone: forget the extent on promotion.
    const Bytes value = c.state ? EncodeExtentState(*c.state) : Bytes();
    CAIRN_RETURN_IF_ERROR(txn.Put(pending_, StoreKey(image, c.index), value));
  }
  return txn.Commit();
}

Status ExtentStore::SetPendingExtentCount(const ImageKey& image, uint64_t extent_count) {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
  Bytes value;
  ByteWriter(&value).PutU64(extent_count);
  CAIRN_RETURN_IF_ERROR(txn.Put(pending_, StoreKey(image, kCountMarker), value));
  return txn.Commit();
}

Status ExtentStore::ClearDb(repo::LmdbDb db) {
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
    std::vector<Bytes> keys;
    CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(db, {}, [&](ByteView key, ByteView) {
      keys.emplace_back(key.begin(), key.end());
      return keys.size() < 10000;
    }));
    if (keys.empty()) return Status::OK();
    for (const Bytes& k : keys) CAIRN_RETURN_IF_ERROR(txn.Delete(db, k));
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
}

Status ExtentStore::ClearPending() { return ClearDb(pending_); }

Status ExtentStore::Clear() {
  CAIRN_RETURN_IF_ERROR(ClearDb(pending_));
  return ClearDb(extents_);
}

Status ExtentStore::PromotePending() {
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginWrite());
    std::vector<std::pair<Bytes, Bytes>> batch;
    CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(pending_, {}, [&](ByteView key, ByteView value) {
      batch.emplace_back(Bytes(key.begin(), key.end()), Bytes(value.begin(), value.end()));
      return batch.size() < kPromoteBatch;
    }));
    if (batch.empty()) return Status::OK();
    for (const auto& [k, v] : batch) {
      if (k.size() == kKeySize && IndexOfKey(k) == kCountMarker) {
        // Forget committed extents at or past the image's new end.
        ByteReader r(v);
        uint64_t count = 0;
        if (r.ReadU64(&count)) {
          std::vector<Bytes> stale;
          CAIRN_RETURN_IF_ERROR(txn.ForEachPrefix(
              extents_, ByteView(k.data(), sizeof(ImageKey)), [&](ByteView key, ByteView) {
                if (key.size() == kKeySize && IndexOfKey(key) >= count) {
                  stale.emplace_back(key.begin(), key.end());
                }
                return true;
              }));
          for (const Bytes& s : stale) CAIRN_RETURN_IF_ERROR(txn.Delete(extents_, s));
        }
      } else if (v.empty()) {
        Status s = txn.Delete(extents_, k);
        if (!s.ok() && !s.IsNotFound()) return s;
      } else {
        CAIRN_RETURN_IF_ERROR(txn.Put(extents_, k, v));
      }
      CAIRN_RETURN_IF_ERROR(txn.Delete(pending_, k));
    }
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
}

Result<uint64_t> ExtentStore::Count() const {
  CAIRN_ASSIGN_OR_RETURN(repo::LmdbTxn txn, env_->BeginRead());
  return txn.Count(extents_);
}

// ---- entry points ----

Result<std::vector<std::string>> NormalizeImagePaths(const std::vector<std::string>& images) {
  if (images.empty()) return Status::InvalidArgument("nothing to back up: give at least one image");
  std::vector<std::string> out;
  for (const std::string& p : images) {
    if (p.empty()) return Status::InvalidArgument("empty image path");
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(p, ec);
    if (ec) return Status::InvalidArgument(p + ": " + ec.message());
    std::string s = abs.lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    struct stat st;
    if (::stat(s.c_str(), &st) != 0) return ErrnoToStatus(errno, "image " + s);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
      return Status::InvalidArgument(s + ": not a regular file or a block device");
    }
    // Resolve symlinks in the parent only: the image keeps the name it was
    // given (/dev/disk/by-id/... stays stable across reboots).
    std::filesystem::path parent = std::filesystem::path(s).parent_path();
    std::filesystem::path real = std::filesystem::canonical(parent, ec);
    if (ec) return Status::InvalidArgument(parent.string() + ": " + ec.message());
    const std::string name = std::filesystem::path(s).filename().string();
    out.push_back(JoinPath(real.string(), name));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<ImageBackupResult> RunImageBackup(const crypto::DepartmentKeys& keys, ExtentStore* store,
                                         VaultSession* session, const ImageBackupOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> paths, NormalizeImagePaths(options.images));
  chunk::ExtentOptions extent_options;
  extent_options.extent_size = options.extent_size;
  CAIRN_RETURN_IF_ERROR(extent_options.Sanitize());
  ImageBackupOptions sanitized = options;
  if (sanitized.flush_every == 0) sanitized.flush_every = 256ull << 20;
  if (sanitized.extents_in_flight == 0) sanitized.extents_in_flight = 4;
  sanitized.extents_in_flight = std::min<unsigned>(sanitized.extents_in_flight, 64);
  auto engine =
      std::make_unique<ImageEngine>(keys, store, session, sanitized, extent_options.extent_size);
  return engine->Run(paths);
}

}  // namespace cairn::agent
