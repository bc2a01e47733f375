#include "agent/backup.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "agent/commit.h"
#include "agent/pit.h"
#include "agent/scan.h"
#include "lib/base/errno.h"
#include "lib/base/thread.h"
#include "lib/chunk/fastcdc.h"
#include "lib/crypto/chunk_id_set.h"
#include "lib/crypto/hkdf.h"
#include "lib/io/env.h"
#include "lib/io/file_io.h"
#include "lib/io/uring_env.h"
#include "lib/proto/messages.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"

namespace cairn::agent {
namespace {

using crypto::ChunkId;
using Clock = std::chrono::steady_clock;

constexpr size_t kReadSize = 1u << 20;
// Read-ahead of a directory's small files (Engine::HintReads): how many
// files ahead of the one being read, and the largest file hinted whole
// (larger ones are read 1 MiB at a time with the kernel's own read-ahead).
constexpr size_t kReadAheadFiles = 32;
constexpr off_t kReadAheadMaxFile = 8 << 20;
// A larger file that is not in the page cache is read with O_DIRECT, this
// many kReadSize reads in flight at once (Engine::ReadFile).
constexpr size_t kDirectBatch = 8;
// Read buffers their chunks may keep (SlabPool), from the memory budget:
// a quarter of it in single reads and a third in O_DIRECT batches (24 and 4
// at the default 96 MiB), and never fewer than 2 and 1.
size_t ReadSlabs(uint64_t budget) {
  return static_cast<size_t>(std::clamp<uint64_t>(budget / 4 / kReadSize, 2, 24));
}
size_t DirectSlabs(uint64_t budget) {
  return static_cast<size_t>(std::clamp<uint64_t>(budget / 3 / (kDirectBatch * kReadSize), 1, 4));
}
constexpr size_t kCacheBatch = 1000;
// Chunks a worker hashes at once (Engine::WorkerMain).
constexpr size_t kHashAtOnce = 4;
// A flush commits its records' index entries in one vault transaction,
// which holds one dirty page per entry (each lands in a random leaf) until
// it commits: flushing every so many records, as well as every
// flush_every bytes, bounds the vault's memory for a tree of small files.
constexpr uint64_t kFlushRecords = 16384;
// Bytes sent between two malloc_trim()s (see NetLoop): measured on 10 GB of
// 256 MiB files, the agent's peak RSS was 198 MiB with a trim only every
// 4096 records, 190 with one every 256 MiB and 174 with one every 64 MiB,
// at the same speed.
constexpr uint64_t kTrimBytes = 64ull << 20;
// ...but only when glibc holds more than this much freed memory: a trim
// hands back every free page, and the next chunks fault fresh ones in
// (trimming at every check was 2.8% of the agent's CPU on /usr/lib, in
// page faults and madvise, for 10-15 MiB less RSS).
constexpr size_t kTrimHeldFree = 64u << 20;
// Small files are packed into shared group records (doc/design.md section
// 9, "Groups"): a file smaller than kPackFileMax (the default chunker's
// minimum, so one chunk anyway; a test chunker with a smaller one cuts such
// a file into several pieces, each a member) joins its directory's current
// group, which is cut when the next file would take it past kGroupMax, at
// a subdirectory, at the directory's end, or, once it holds kGroupMin,
// after a file whose content hash has its low two bits clear
// (content-defined, so a file added to a directory moves the cuts after it
// only up to the next such file).
constexpr uint64_t kPackFileMax = 64 << 10;
constexpr size_t kGroupMax = 1 << 20;
constexpr size_t kGroupMin = 512 << 10;
// Small files remembered by content for the run, so that a copy elsewhere
// in the tree becomes a reference to the first (about 100 bytes each).
constexpr size_t kMaxRememberedSlices = 1 << 18;
constexpr auto kKeepAliveAfter = std::chrono::seconds(10);
constexpr auto kProgressEvery = std::chrono::milliseconds(250);

// Plaintext bytes in flight. Acquire blocks while the budget is spent (but
// always admits one chunk when nothing is in flight, so a chunk larger than
// the budget cannot wedge the pipeline); ForceAcquire never blocks (for
// objects made on worker threads, which must never wait on the network).
class Budget {
 public:
  explicit Budget(uint64_t limit) : limit_(limit) {}
  bool Acquire(uint64_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || used_ == 0 || used_ + n <= limit_; });
    if (aborted_) return false;
    Add(n);
    return true;
  }
  void ForceAcquire(uint64_t n) {
    std::lock_guard lock(mu_);
    Add(n);
  }
  void Release(uint64_t n) {
    std::lock_guard lock(mu_);
    used_ -= std::min(used_, n);
    cv_.notify_all();
  }
  void Abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }
  uint64_t peak() const {
    std::lock_guard lock(mu_);
    return peak_;
  }

 private:
  void Add(uint64_t n) {
    used_ += n;
    peak_ = std::max(peak_, used_);
  }
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t limit_;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
  bool aborted_ = false;
};

// A directory whose tree object is not written yet. `entries` is complete
// (and never resized) before any child is processed, so children finishing
// on other threads write distinct elements. `pending` counts children not
// finished plus one for the scan of the directory itself.
struct DirNode {
  DirNode* parent = nullptr;
  size_t index = 0;  // our entry in parent->entries
  std::vector<repo::TreeEntry> entries;
  std::vector<uint8_t> dropped;
  std::atomic<int64_t> pending{1};
};

// A regular file whose chunks are being identified. `refs` is a deque so
// workers can fill elements while the reader appends more.
struct FileState {
  DirNode* dir = nullptr;
  size_t index = 0;
  std::string path;
  FileStamp stamp;
  std::deque<repo::ContentRef> refs;
  std::vector<repo::Hole> holes;
  std::atomic<int64_t> pending{1};  // chunks not identified + 1 for the reader
  std::atomic<bool> failed{false};
  bool cacheable = true;
  bool from_cache = false;
};

// A small file's bytes in a group being packed.
struct GroupMember {
  FileState* file = nullptr;  // notified when its reference is known
  repo::ContentRef* ref = nullptr;
  uint32_t offset = 0;  // in the group's bytes
  uint32_t length = 0;
};

// Read buffers that the chunks cut from them keep (Engine::ReadFile): a
// chunk wholly inside one read is a view into the read's buffer, not a copy
// of it (the copy was ~4% of the agent's CPU), and the buffer comes back
// when the last chunk viewing it is sealed or dropped. The pool holds at
// most `count` buffers: the reader waits for one while all are in use, so
// their memory is bounded whatever becomes of the chunks.
class SlabPool {
 public:
  using Slab = std::shared_ptr<io::AlignedBuffer>;

  SlabPool(size_t slab_size, size_t count) : state_(std::make_shared<State>()) {
    state_->size = slab_size;
    state_->left = count;
  }

  // A buffer of the pool's size (aligned for O_DIRECT); nullptr once
  // aborted, or when memory is exhausted.
  Slab Take() {
    io::AlignedBuffer buffer;
    {
      std::unique_lock lock(state_->mu);
      state_->cv.wait(lock,
                      [&] { return state_->aborted || !state_->free.empty() || state_->left > 0; });
      if (state_->aborted) return nullptr;
      if (!state_->free.empty()) {
        buffer = std::move(state_->free.back());
        state_->free.pop_back();
      } else {
        --state_->left;
      }
    }
    if (buffer.size() == 0) {
      auto fresh = io::AlignedBuffer::Allocate(state_->size);
      if (!fresh.ok()) {
        std::lock_guard lock(state_->mu);
        ++state_->left;
        return nullptr;
      }
      buffer = std::move(fresh).value();
    }
    return Slab(new io::AlignedBuffer(std::move(buffer)), [state = state_](io::AlignedBuffer* b) {
      {
        std::lock_guard lock(state->mu);
        state->free.push_back(std::move(*b));
      }
      state->cv.notify_one();
      delete b;
    });
  }

  void Abort() {
    {
      std::lock_guard lock(state_->mu);
      state_->aborted = true;
    }
    state_->cv.notify_all();
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<io::AlignedBuffer> free;
    size_t size = 0;
    size_t left = 0;  // buffers not allocated yet
    bool aborted = false;
  };
  std::shared_ptr<State> state_;  // outlives the pool while a slab is out
};

// A chunk's plaintext: bytes of its own, or a view into the read buffer it
// was cut from, which it keeps alive.
class Plain {
 public:
  Plain() = default;
  Plain(Bytes own) : own_(std::move(own)) {}  // NOLINT(google-explicit-constructor)
  Plain(SlabPool::Slab slab, ByteView view) : slab_(std::move(slab)), view_(view) {}

  ByteView view() const { return slab_ ? view_ : ByteView(own_); }
  size_t size() const { return view().size(); }
  // Gives the bytes up (the slab goes back once no other chunk views it).
  void Reset() { *this = Plain(); }

 private:
  Bytes own_;
  SlabPool::Slab slab_;
  ByteView view_;
};

struct Task {
  enum class Kind { kHash, kGroup, kSeal } kind = Kind::kHash;
  Bytes data;   // kGroup: its files end to end
  Plain chunk;  // kHash, kSeal
  repo::RecordType type = repo::RecordType::kData;
  ChunkId id{};
  repo::ContentRef* ref = nullptr;   // kHash: where the ID goes
  FileState* file = nullptr;         // kHash: notified when done
  std::vector<GroupMember> members;  // kGroup
};

struct AskItem {
  ChunkId id;
  Plain data;
  repo::RecordType type;
};

struct OutRecord {
  UninitBytes bytes;
  uint64_t plain_size;
};

// ": vanished during backup; left out" or ": <strerror>; left out".
std::string ErrnoWarning(int err) {
  if (err == ENOENT) return ": vanished during backup; left out";
  return std::string(": ") + std::strerror(err) + "; left out";
}

struct PathTrie {
  std::map<std::string, PathTrie> children;
  bool target = false;
  std::string view;  // a target read from a point-in-time view: where
};

class Engine {
 public:
  Engine(const crypto::DepartmentKeys& keys, FileCache* cache, VaultSession* session,
         const BackupOptions& options, chunk::Chunker chunker)
      : keys_(keys),
        cache_(cache),
        session_(session),
        options_(options),
        chunker_(std::move(chunker)),
        hasher_(keys.id_key),
        budget_(options.memory_budget),
        read_slabs_(kReadSize, ReadSlabs(options.memory_budget)),
        direct_slabs_(kDirectBatch * kReadSize, DirectSlabs(options.memory_budget)) {}

  ~Engine() {
    for (FileState* f : live_files_) delete f;
    for (DirNode* d : live_dirs_) delete d;
  }

  Result<BackupResult> Run(const std::vector<std::string>& paths);

 private:
  // --- scanner thread
  Status ScanAll(const std::vector<std::string>& paths);
  Status VirtualDir(DirNode* node, int dirfd, const std::string& abs, const PathTrie& trie);
  Status ScanDir(DirNode* node, int dirfd, const std::string& abs, const std::string& rel,
                 dev_t root_dev);
  // Processes node->entries[i] (metadata already read) and eventually
  // decrements node->pending once for it. `open_name`: its name in `dirfd`
  // when that is not the entry's (a PATH read from a point-in-time view).
  // `hit`: the file cache's answer for a regular file, when the caller has
  // looked it up already (null: looked up here). `opened`: the file, when
  // HintReads has opened it already.
  Status ProcessChild(DirNode* node, size_t i, int dirfd, const std::string& abs,
                      const std::string& rel, const struct stat& st, dev_t root_dev,
                      const PathTrie* virtual_children, const std::string& open_name = "",
                      std::optional<CachedFile>* hit = nullptr, io::UniqueFd opened = {});
  // Asks the kernel to start reading the files of a directory that are
  // about to be read, so that the disk works on many at once while the
  // scanner reads them one after the other (readahead of a whole small
  // file per posix_fadvise). Hints entries [*hinted, i + kReadAheadFiles),
  // and keeps each hinted file open in (*opened)[j] for ReadFile.
  void HintReads(int dirfd, const DirNode* node, const std::vector<struct stat>& stats,
                 const std::vector<std::optional<CachedFile>>& hits, size_t i, size_t* hinted,
                 std::vector<io::UniqueFd>* opened);
  FileStamp StampOf(const struct stat& st) const {
    return FileStamp{static_cast<uint64_t>(Dev(st.st_dev)), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size), ToNanos(st.st_mtim), ToNanos(st.st_ctim)};
  }
  // The device number the file cache and hard-link groups see: a view's
  // is the live file system's, so an unchanged file stays a cache hit.
  dev_t Dev(dev_t dev) const {
    auto it = dev_alias_.find(dev);
    return it == dev_alias_.end() ? dev : it->second;
  }
  Status ReadFile(FileState* f, int dirfd, const std::string& name, const struct stat& st,
                  io::UniqueFd opened);
  // Reads the next kDirectBatch reads of `f` from *pos (O_DIRECT, all in
  // flight at once) into `buffer` (kDirectBatch * kReadSize bytes, aligned),
  // feeds them to `stream` and moves *pos on. *refused: the reads
  // themselves failed, and nothing was fed.
  Status ReadDirect(io::RandomAccessFile* file, FileState* f, uint64_t* pos, uint8_t* buffer,
                    chunk::StreamChunker* stream, bool* refused);
  // Adds a small file's bytes to the current group (cutting it first when
  // they do not fit, and after them when the content says so).
  Status AddToGroup(FileState* f, ByteView piece);
  // Hands the current group to the workers; nothing when it is empty.
  Status SubmitGroup();
  void Warn(std::string message);

  // --- any thread
  DirNode* NewDir(DirNode* parent, size_t index);
  void DecRef(DirNode* d);
  void FileDone(FileState* f);
  void FinishFile(FileState* f);
  void FinishDir(DirNode* d);
  std::vector<repo::ContentRef> Listify(std::vector<repo::ContentRef> data);
  void SubmitObject(const ChunkId& id, Bytes bytes, repo::RecordType type);
  void DedupAndAsk(const ChunkId& id, Plain data, repo::RecordType type);
  void Reference(const ChunkId& id);
  void Fail(const Status& s);
  bool failed() const { return failed_.load(); }
  void PushTask(Task t);
  void WakeNetwork();

  // --- workers
  void WorkerMain(repo::RecordEncoder* encoder);
  // Identifies a group's files and the group: a file whose bytes an earlier
  // group of this run holds refers to those; one file left is a chunk of
  // its own; more become slices of the group's record.
  void PackGroup(repo::RecordEncoder* encoder, Task& t);
  void HashChunks(repo::RecordEncoder* encoder, std::vector<Task>& tasks);

  // --- network thread
  Status NetLoop();
  bool Done() const { return scan_done_ && root_done_ && outstanding_.load() == 0; }
  Status FlushCachePending(bool all);
  void ShowProgress(bool final);

  const crypto::DepartmentKeys& keys_;
  FileCache* cache_;
  VaultSession* session_;
  const BackupOptions& options_;
  chunk::Chunker chunker_;
  crypto::ChunkIdHasher hasher_;
  Budget budget_;

  // Scanner-only state.
  OwnerNames owners_;
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, std::pair<uint64_t, std::string>>>
      hardlinks_;                               // dev -> ino -> (group, link path)
  std::unordered_map<dev_t, dev_t> dev_alias_;  // view's device -> live device
  StatAhead* ahead_ = nullptr;                  // during ScanAll, unless disabled
  Bytes read_buffer_;                           // a small file's reads
  // The reads of larger files, which their chunks view (Plain): one read,
  // and kDirectBatch O_DIRECT reads.
  SlabPool read_slabs_;
  SlabPool direct_slabs_;
  Bytes group_;  // the small files of the directory being scanned, end to end
  std::vector<GroupMember> group_members_;

  std::mutex slices_mu_;
  std::unordered_map<ChunkId, repo::ContentRef, crypto::ChunkIdHash> slices_;  // by slice ID

  std::mutex live_mu_;
  std::unordered_set<FileState*> live_files_;
  std::unordered_set<DirNode*> live_dirs_;

  std::mutex known_mu_;
  crypto::ChunkIdSet known_;  // every chunk referenced: sent once, and the manifest

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<Task> hash_tasks_, seal_tasks_;
  bool work_closed_ = false;

  std::mutex net_mu_;
  std::condition_variable net_cv_;
  std::deque<AskItem> ask_;
  std::deque<OutRecord> records_;

  std::mutex cache_mu_;
  std::vector<std::pair<std::string, CachedFile>> cache_pending_;
  bool cache_failed_ = false;  // network thread: a write failed, record no more

  std::mutex warn_mu_;
  std::vector<std::string> warnings_;

  std::mutex fail_mu_;
  Status failure_;
  std::atomic<bool> failed_{false};

  std::atomic<int64_t> outstanding_{0};  // chunks with bytes not yet resolved
  std::atomic<bool> scan_done_{false};
  std::atomic<bool> root_done_{false};
  ChunkId root_id_{};

  std::atomic<uint64_t> files_{0}, dirs_{0}, bytes_{0}, bytes_read_{0}, cache_hits_{0};
  std::atomic<uint64_t> bytes_read_direct_{0};
  std::atomic<uint64_t> chunks_hashed_{0}, chunks_sealed_{0};
  uint64_t new_bytes_ = 0, new_chunks_ = 0;  // network thread
  Clock::time_point started_ = Clock::now();
  Clock::time_point last_progress_{};
  // For the ETA: the total size of the regular files under the paths, summed
  // by a cheap lstat-only walk beside the real scan (progress mode only).
  std::atomic<uint64_t> estimated_total_{0};
  std::atomic<bool> estimate_done_{false}, estimate_stop_{false};
};

void Engine::Warn(std::string message) {
  std::lock_guard lock(warn_mu_);
  warnings_.push_back(std::move(message));
}

void Engine::Fail(const Status& s) {
  {
    std::lock_guard lock(fail_mu_);
    if (failed_) return;
    failure_ = s;
    failed_ = true;
  }
  budget_.Abort();
  read_slabs_.Abort();
  direct_slabs_.Abort();
  {
    std::lock_guard lock(work_mu_);
    work_cv_.notify_all();
  }
  WakeNetwork();
}

void Engine::WakeNetwork() {
  std::lock_guard lock(net_mu_);
  net_cv_.notify_one();
}

void Engine::PushTask(Task t) {
  std::lock_guard lock(work_mu_);
  if (t.kind == Task::Kind::kSeal) {
    seal_tasks_.push_back(std::move(t));
  } else {
    hash_tasks_.push_back(std::move(t));
  }
  work_cv_.notify_one();
}

DirNode* Engine::NewDir(DirNode* parent, size_t index) {
  auto* d = new DirNode();
  d->parent = parent;
  d->index = index;
  std::lock_guard lock(live_mu_);
  live_dirs_.insert(d);
  return d;
}

void Engine::DecRef(DirNode* d) {
  if (d->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) FinishDir(d);
}

void Engine::FileDone(FileState* f) {
  if (f->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) FinishFile(f);
}

void Engine::Reference(const ChunkId& id) {
  std::lock_guard lock(known_mu_);
  known_.Insert(id);
}

void Engine::DedupAndAsk(const ChunkId& id, Plain data, repo::RecordType type) {
  bool inserted;
  {
    std::lock_guard lock(known_mu_);
    inserted = known_.Insert(id);
  }
  if (!inserted || failed()) {
    budget_.Release(data.size());
    outstanding_.fetch_sub(1);
    WakeNetwork();
    return;
  }
  std::lock_guard lock(net_mu_);
  ask_.push_back({id, std::move(data), type});
  net_cv_.notify_one();
}

void Engine::SubmitObject(const ChunkId& id, Bytes bytes, repo::RecordType type) {
  budget_.ForceAcquire(bytes.size());
  outstanding_.fetch_add(1);
  DedupAndAsk(id, std::move(bytes), type);
}

std::vector<repo::ContentRef> Engine::Listify(std::vector<repo::ContentRef> data) {
  if (data.size() <= repo::kMaxInlineChunks) return data;
  std::vector<repo::ContentRef> lists;
  for (size_t begin = 0; begin < data.size(); begin += repo::kMaxChunksPerList) {
    const size_t end = std::min(data.size(), begin + repo::kMaxChunksPerList);
    repo::ContentList list;
    list.refs.assign(data.begin() + begin, data.begin() + end);
    uint64_t length = 0;
    for (const auto& r : list.refs) length += r.length;
    Result<Bytes> bytes = repo::EncodeContentList(list);
    if (!bytes.ok()) {
      Fail(bytes.status());
      return {};
    }
    ChunkId id = hasher_.Compute(*bytes);
    SubmitObject(id, std::move(bytes).value(), repo::RecordType::kTree);
    lists.push_back({repo::RefKind::kList, id, length});
  }
  return lists;
}

void Engine::FinishFile(FileState* f) {
  DirNode* dir = f->dir;
  const size_t index = f->index;
  if (!f->failed) {
    std::vector<repo::ContentRef> data(f->refs.begin(), f->refs.end());
    uint64_t total = 0;
    for (const auto& r : data) total += r.length;
    for (const auto& h : f->holes) total += h.length;
    if (total != f->stamp.size) {
      Warn(f->path + ": changed size while being read; left out");
      dir->dropped[index] = 1;
    } else {
      if (f->cacheable && !f->from_cache && cache_ != nullptr) {
        std::lock_guard lock(cache_mu_);
        cache_pending_.push_back({f->path, CachedFile{f->stamp, data, f->holes}});
      }
      repo::TreeEntry& e = dir->entries[index];
      e.size = f->stamp.size;
      e.holes = f->holes;
      e.content = Listify(std::move(data));
    }
  } else {
    dir->dropped[index] = 1;
  }
  {
    std::lock_guard lock(live_mu_);
    live_files_.erase(f);
  }
  delete f;
  DecRef(dir);
}

void Engine::FinishDir(DirNode* d) {
  std::vector<repo::TreeEntry> entries;
  entries.reserve(d->entries.size());
  for (size_t i = 0; i < d->entries.size(); ++i) {
    if (!d->dropped[i]) entries.push_back(std::move(d->entries[i]));
  }
  std::optional<ChunkId> next;
  auto runs = repo::SplitDirectory(entries);
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    repo::DirPart part;
    part.entries.assign(std::make_move_iterator(entries.begin() + it->first),
                        std::make_move_iterator(entries.begin() + it->second));
    part.next = next;
    Result<Bytes> bytes = repo::EncodeDirPart(part);
    if (!bytes.ok()) {
      Fail(bytes.status().WithContext("encode directory tree"));
      return;
    }
    ChunkId id = hasher_.Compute(*bytes);
    SubmitObject(id, std::move(bytes).value(), repo::RecordType::kTree);
    next = id;
  }
  DirNode* parent = d->parent;
  const size_t index = d->index;
  {
    std::lock_guard lock(live_mu_);
    live_dirs_.erase(d);
  }
  delete d;
  if (parent != nullptr) {
    parent->entries[index].subtree = *next;
    DecRef(parent);
  } else {
    root_id_ = *next;
    root_done_ = true;
    WakeNetwork();
  }
}

Status Engine::ScanAll(const std::vector<std::string>& paths) {
  PathTrie trie;
  bool whole_root = false;
  std::map<std::string, std::string> views;
  for (const ViewedPath& v : options_.views) {
    views[v.path] = v.view;
    struct stat st;
    if (::stat(v.view.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat view " + v.view);
    dev_alias_[st.st_dev] = static_cast<dev_t>(v.live_dev);
  }
  for (const std::string& p : paths) {
    if (p == "/") {
      whole_root = true;
      continue;
    }
    PathTrie* node = &trie;
    size_t start = 1;
    while (start <= p.size()) {
      size_t slash = p.find('/', start);
      if (slash == std::string::npos) slash = p.size();
      node = &node->children[p.substr(start, slash - start)];
      start = slash + 1;
    }
    node->target = true;
    if (auto it = views.find(p); it != views.end()) node->view = it->second;
  }
  const std::string root_view = views.contains("/") ? views["/"] : "/";
  int rootfd = ::open(whole_root ? root_view.c_str() : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return ErrnoToStatus(errno, "open /");
  std::optional<StatAhead> ahead;
  if (options_.stat_ahead > 0) {
    StatAhead::Options o;
    o.threads = options_.stat_ahead;
    o.excludes = options_.excludes;
    o.cross_fs = options_.cross_fs;
    ahead.emplace(std::move(o));
    if (!ahead->running()) ahead.reset();
  }
  if (ahead) {
    ahead_ = &*ahead;
    for (const std::string& p : whole_root ? std::vector<std::string>{"/"} : paths) {
      const auto view = views.find(p);
      const std::string& open = whole_root ? root_view : view != views.end() ? view->second : p;
      struct stat st;
      if (::lstat(open.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        ahead->AddRoot(open, p, st.st_dev);
    }
  }
  DirNode* root = NewDir(nullptr, 0);
  Status s;
  if (whole_root) {
    struct stat st;
    if (::fstat(rootfd, &st) != 0) {
      s = ErrnoToStatus(errno, "stat /");
    } else {
      s = ScanDir(root, rootfd, "/", "", st.st_dev);
    }
  } else {
    s = VirtualDir(root, rootfd, "", trie);
  }
  ::close(rootfd);
  ahead_ = nullptr;
  // A scan that stopped early can leave a group behind: its files are
  // then abandoned with the backup (SubmitGroup fails them).
  Status g = SubmitGroup();
  if (s.ok() && !g.IsCancelled()) s = g;
  DecRef(root);
  return s;
}

// The directories above the PATHs: only the components leading to them.
Status Engine::VirtualDir(DirNode* node, int dirfd, const std::string& abs, const PathTrie& trie) {
  std::vector<struct stat> stats;
  std::vector<const PathTrie*> subs;
  // A target read from a view: its parent directory there, and its name.
  std::vector<io::UniqueFd> view_dirs;
  std::vector<std::pair<int, std::string>> opens;
  for (const auto& [name, sub] : trie.children) {
    const std::string path = abs + "/" + name;
    int at = dirfd;
    std::string at_name = name;
    if (!sub.view.empty()) {
      const size_t slash = sub.view.rfind('/');
      const std::string parent = slash == 0 ? "/" : sub.view.substr(0, slash);
      io::UniqueFd fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoToStatus(errno, "open view " + parent);
      at = fd.get();
      at_name = sub.view.substr(slash + 1);
      view_dirs.push_back(std::move(fd));
    }
    struct stat st;
    if (::fstatat(at, at_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      const int err = errno;
      Warn(path + ": " + std::strerror(err) + "; left out");
      continue;
    }
    repo::TreeEntry e;
    Status s = ReadEntryMetadata(at, at_name, path, st, &owners_, &e);
    if (!s.ok()) {
      Warn(s.message() + "; left out");
      continue;
    }
    e.name = name;  // as the user named it, not the view's
    node->entries.push_back(std::move(e));
    stats.push_back(st);
    subs.push_back(&sub);
    opens.emplace_back(at, at_name);
  }
  node->dropped.assign(node->entries.size(), 0);
  node->pending.fetch_add(static_cast<int64_t>(node->entries.size()));
  for (size_t i = 0; i < node->entries.size(); ++i) {
    if (failed()) return Status::OK();
    const std::string path = abs + "/" + node->entries[i].name;
    if (node->entries[i].type == repo::EntryType::kDir) CAIRN_RETURN_IF_ERROR(SubmitGroup());
    CAIRN_RETURN_IF_ERROR(ProcessChild(node, i, opens[i].first, path, "", stats[i], stats[i].st_dev,
                                       subs[i]->target ? nullptr : subs[i], opens[i].second));
  }
  return SubmitGroup();
}

Status Engine::ScanDir(DirNode* node, int dirfd, const std::string& abs, const std::string& rel,
                       dev_t root_dev) {
  // The stat-ahead's listing when it read this very directory; else read
  // here (no stat-ahead, or the directory was replaced since).
  std::vector<ListedEntry> listing;
  std::optional<StatAhead::Listing> ahead =
      ahead_ != nullptr ? ahead_->Take(abs) : std::optional<StatAhead::Listing>();
  struct stat self;
  if (ahead.has_value() && ::fstat(dirfd, &self) == 0 && self.st_dev == ahead->dev &&
      self.st_ino == ahead->ino) {
    listing = std::move(ahead->entries);
  } else {
    Result<std::vector<ListedEntry>> read = ListEntries(dirfd, abs, rel, options_.excludes);
    if (!read.ok()) {
      Warn(read.status().message() + "; directory recorded as empty");
      return Status::OK();
    }
    listing = std::move(read).value();
  }
  const std::string prefix = abs == "/" ? "/" : abs + "/";
  std::vector<struct stat> stats;
  for (const ListedEntry& le : listing) {
    const std::string path = prefix + le.name;
    if (le.error != 0) {
      Warn(path + ErrnoWarning(le.error));
      continue;
    }
    if (IsPitSnapshot(le.name, le.st)) continue;  // another backup's view (pit.h)
    repo::TreeEntry e;
    Status s = ReadEntryMetadata(dirfd, le.name, path, le.st, &owners_, &e);
    if (!s.ok()) {
      Warn(s.message() + "; left out");
      continue;
    }
    node->entries.push_back(std::move(e));
    stats.push_back(le.st);
  }
  std::vector<ListedEntry>().swap(listing);  // a large directory's: not held while it is read
  node->dropped.assign(node->entries.size(), 0);
  // The file cache's answers for the whole directory first: the read-ahead
  // hints only what will be read.
  std::vector<std::optional<CachedFile>> hits(node->entries.size());
  if (cache_ != nullptr) {
    for (size_t i = 0; i < node->entries.size(); ++i) {
      if (node->entries[i].type != repo::EntryType::kFile) continue;
      Result<std::optional<CachedFile>> hit =
          cache_->Lookup(prefix + node->entries[i].name, StampOf(stats[i]));
      if (!hit.ok()) return hit.status().WithContext("file cache");
      hits[i] = std::move(hit).value();
    }
  }
  node->pending.fetch_add(static_cast<int64_t>(node->entries.size()));
  size_t hinted = 0;
  std::vector<io::UniqueFd> opened(node->entries.size());
  for (size_t i = 0; i < node->entries.size(); ++i) {
    if (failed()) return Status::OK();
    const std::string& name = node->entries[i].name;
    if (node->entries[i].type == repo::EntryType::kFile && !hits[i].has_value()) {
      HintReads(dirfd, node, stats, hits, i, &hinted, &opened);
    } else if (node->entries[i].type == repo::EntryType::kDir) {
      // Files hinted ahead are read again by name: at most one directory
      // (the one being scanned) holds files open, whatever the depth.
      for (size_t j = i + 1; j < hinted; ++j) opened[j] = io::UniqueFd();
      // A group never spans a subdirectory: its files stay together in
      // the restorer's depth-first walk, and at most one group is held.
      CAIRN_RETURN_IF_ERROR(SubmitGroup());
    }
    CAIRN_RETURN_IF_ERROR(
        ProcessChild(node, i, dirfd, prefix + name, JoinRel(rel, name), stats[i], root_dev, nullptr,
                     "", cache_ != nullptr ? &hits[i] : nullptr, std::move(opened[i])));
  }
  return SubmitGroup();
}

void Engine::HintReads(int dirfd, const DirNode* node, const std::vector<struct stat>& stats,
                       const std::vector<std::optional<CachedFile>>& hits, size_t i, size_t* hinted,
                       std::vector<io::UniqueFd>* opened) {
  const size_t end = std::min(node->entries.size(), i + kReadAheadFiles);
  for (size_t j = std::max(*hinted, i); j < end; ++j) {
    const struct stat& st = stats[j];
    if (node->entries[j].type != repo::EntryType::kFile || hits[j].has_value() || st.st_size <= 0 ||
        st.st_size > kReadAheadMaxFile || st.st_nlink > 1) {
      continue;
    }
    // O_NONBLOCK: a file replaced by a FIFO since its stat must not block.
    int fd = ::openat(dirfd, node->entries[j].name.c_str(),
                      O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME | O_NONBLOCK);
    if (fd < 0) continue;  // a hint only: ReadFile reports what is wrong
    io::WillNeed(fd, 0, static_cast<uint64_t>(st.st_size));
    (*opened)[j] = io::UniqueFd(fd);
  }
  *hinted = std::max(*hinted, end);
}

Status Engine::ProcessChild(DirNode* node, size_t i, int dirfd, const std::string& abs,
                            const std::string& rel, const struct stat& st, dev_t root_dev,
                            const PathTrie* virtual_children, const std::string& open_name,
                            std::optional<CachedFile>* hit, io::UniqueFd opened) {
  repo::TreeEntry& e = node->entries[i];
  const std::string name = open_name.empty() ? e.name : open_name;
  switch (e.type) {
    case repo::EntryType::kDir: {
      dirs_++;
      DirNode* child = NewDir(node, i);
      if (virtual_children == nullptr && !options_.cross_fs && st.st_dev != root_dev) {
        DecRef(child);  // a mount point: recorded empty
        return Status::OK();
      }
      int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      const int open_errno = errno;
      struct stat now;
      if (fd < 0 || ::fstat(fd, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
        Warn(abs + (fd < 0 ? ErrnoWarning(open_errno) : ": replaced during backup; left out"));
        if (fd >= 0) ::close(fd);
        node->dropped[i] = 1;
        {
          std::lock_guard lock(live_mu_);
          live_dirs_.erase(child);
        }
        delete child;
        DecRef(node);
        return Status::OK();
      }
      Status s = virtual_children != nullptr ? VirtualDir(child, fd, abs, *virtual_children)
                                             : ScanDir(child, fd, abs, rel, root_dev);
      ::close(fd);
      DecRef(child);
      return s;
    }
    case repo::EntryType::kFile: {
      files_++;
      bytes_ += static_cast<uint64_t>(st.st_size);
      uint64_t group = 0;
      if (st.st_nlink > 1) {
        auto& by_ino = hardlinks_[Dev(st.st_dev)];
        auto it = by_ino.find(st.st_ino);
        const std::string link_path = abs.substr(1);  // relative to the snapshot root
        if (it != by_ino.end()) {
          e.type = repo::EntryType::kHardlink;
          e.size = static_cast<uint64_t>(st.st_size);
          e.link_group = it->second.first;
          e.link_path = it->second.second;
          DecRef(node);
          return Status::OK();
        }
        // An opaque key stable while the inode lives: dedups unchanged trees.
        group = (static_cast<uint64_t>(Dev(st.st_dev)) * 0x9E3779B97F4A7C15ull) ^ st.st_ino;
        if (group == 0) group = 1;
        by_ino.emplace(st.st_ino, std::make_pair(group, link_path));
      }
      e.link_group = group;
      auto* f = new FileState();
      {
        std::lock_guard lock(live_mu_);
        live_files_.insert(f);
      }
      f->dir = node;
      f->index = i;
      f->path = abs;
      f->stamp = StampOf(st);
      std::optional<CachedFile> looked_up;
      if (cache_ != nullptr && hit == nullptr) {
        Result<std::optional<CachedFile>> answer = cache_->Lookup(abs, f->stamp);
        if (!answer.ok()) return answer.status().WithContext("file cache");
        looked_up = std::move(answer).value();
        hit = &looked_up;
      }
      if (hit != nullptr && hit->has_value()) {
        cache_hits_++;
        f->from_cache = true;
        f->refs.assign((*hit)->content.begin(), (*hit)->content.end());
        f->holes = std::move((*hit)->holes);
        hit->reset();
        for (const auto& r : f->refs) Reference(r.id);
        FileDone(f);
        return Status::OK();
      }
      return ReadFile(f, dirfd, name, st, std::move(opened));
    }
    default:
      DecRef(node);
      return Status::OK();
  }
}

Status Engine::ReadDirect(io::RandomAccessFile* file, FileState* f, uint64_t* pos, uint8_t* buffer,
                          chunk::StreamChunker* stream, bool* refused) {
  constexpr size_t kAlign = io::AlignedBuffer::kAlignment;
  std::array<io::ReadRequest, kDirectBatch> requests;
  size_t n = 0;
  for (uint64_t at = *pos; n < kDirectBatch && at < f->stamp.size; ++n, at += kReadSize) {
    const uint64_t want = std::min<uint64_t>(kReadSize, f->stamp.size - at);
    requests[n].offset = at;
    requests[n].buffer =
        MutableByteView(buffer + n * kReadSize, (want + kAlign - 1) / kAlign * kAlign);
  }
  if (!file->ReadBatch(std::span<io::ReadRequest>(requests.data(), n)).ok()) {
    *refused = true;
    return Status::OK();
  }
  // The reads lie end to end in the buffer: the chunker takes them as one
  // piece, up to the first short one.
  size_t got = 0;
  bool shrank = false;
  for (size_t i = 0; i < n && !shrank; ++i) {
    const uint64_t want = std::min<uint64_t>(kReadSize, f->stamp.size - requests[i].offset);
    const size_t read = static_cast<size_t>(std::min<uint64_t>(requests[i].bytes_read, want));
    got += read;
    shrank = read < want;
  }
  bytes_read_ += got;
  bytes_read_direct_ += got;
  CAIRN_RETURN_IF_ERROR(stream->Write(ByteView(buffer, got)));
  *pos += got;
  return shrank ? Status::Unavailable("shrank while being read") : Status::OK();
}

Status Engine::ReadFile(FileState* f, int dirfd, const std::string& name, const struct stat& st,
                        io::UniqueFd opened) {
  if (options_.before_read_for_test) {
    options_.before_read_for_test(f->path);
    opened = io::UniqueFd();  // the test changes the file: open it now
  }
  int fd = opened.Release();
  // Opened by HintReads with O_NONBLOCK (against a FIFO put in its place):
  // io_uring would answer EAGAIN for uncached pages of such a file.
  if (fd >= 0) (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (fd < 0) fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM)
    fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    Warn(f->path + ErrnoWarning(errno));
    f->failed = true;
    FileDone(f);
    return Status::OK();
  }
  struct stat now;
  if (::fstat(fd, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev ||
      !S_ISREG(now.st_mode)) {
    ::close(fd);
    Warn(f->path + ": replaced during backup; left out");
    f->failed = true;
    FileDone(f);
    return Status::OK();
  }
  // The listing's lstat can be seconds older than this open (the stat-ahead
  // lists ahead of the scanner): read, check and record the file as opened.
  if (const FileStamp opened_as = StampOf(now); opened_as != f->stamp) {
    f->stamp = opened_as;
    f->dir->entries[f->index].mtime_ns = opened_as.mtime_ns;
  }
  // A file whose allocated blocks cover its size has no holes: skip the
  // SEEK_DATA/SEEK_HOLE probe (two system calls per file; most files).
  // Reading a hole as zeros would still be correct, only less sparse.
  const bool fully_allocated = static_cast<uint64_t>(now.st_blocks) * 512 >= f->stamp.size;
  Result<std::vector<repo::Hole>> holes =
      fully_allocated ? Result<std::vector<repo::Hole>>(std::vector<repo::Hole>())
                      : FindHoles(fd, f->stamp.size, f->path);
  if (!holes.ok()) {
    ::close(fd);
    Warn(holes.status().message() + "; left out");
    f->failed = true;
    FileDone(f);
    return Status::OK();
  }
  f->holes = std::move(holes).value();
  // A file larger than the read-ahead hints cover, and not in the page
  // cache, is read with O_DIRECT: the device fills our buffer, which spares
  // the copy out of the cache and the cache's own upkeep (together ~9% of
  // the agent's CPU on /usr/lib), and a backup does not evict the server's
  // working set. A cached file (just written, a hot database) is read
  // through the cache, as is any file the file system will not read so.
  bool direct = f->holes.empty() && f->stamp.size > kReadAheadMaxFile &&
                io::MostlyUncached(fd, 0, kDirectBatch * kReadSize) && io::SetDirectIo(fd, true);
  std::unique_ptr<io::RandomAccessFile> file =
      io::UringEnv::Default()->AdoptForReading(io::UniqueFd(fd), f->path);

  bool aborted = false;
  const bool pack = f->stamp.size < kPackFileMax && f->holes.empty();
  // The buffer being chunked, when it is a slab: a chunk wholly inside it
  // (most of them; not one the chunker assembled across two reads) views
  // it instead of copying it.
  SlabPool::Slab slab;
  chunk::StreamChunker stream(&chunker_, [&](uint64_t, ByteView piece) -> Status {
    if (pack) {
      Status s = AddToGroup(f, piece);
      if (s.IsCancelled()) aborted = true;
      return s;
    }
    if (!budget_.Acquire(piece.size())) {
      aborted = true;
      return Status::Cancelled("backup aborted");
    }
    outstanding_.fetch_add(1);
    f->refs.push_back({repo::RefKind::kData, {}, piece.size()});
    f->pending.fetch_add(1);
    Task t;
    t.kind = Task::Kind::kHash;
    if (slab && piece.data() >= slab->data() &&
        piece.data() + piece.size() <= slab->data() + slab->size()) {
      t.chunk = Plain(slab, piece);
    } else {
      t.chunk = Bytes(piece.begin(), piece.end());
    }
    t.ref = &f->refs.back();
    t.file = f;
    PushTask(std::move(t));
    return Status::OK();
  });
  read_buffer_.resize(kReadSize);
  Status s;
  uint64_t pos = 0;
  size_t next_hole = 0;
  while (s.ok() && pos < f->stamp.size) {
    if (next_hole < f->holes.size() && f->holes[next_hole].offset == pos) {
      pos += f->holes[next_hole++].length;
      continue;
    }
    if (direct || !pack) {
      slab = (direct ? direct_slabs_ : read_slabs_).Take();
      if (!slab && failed()) {
        aborted = true;
        break;
      }
    }
    if (direct && slab) {
      bool refused = false;
      s = ReadDirect(file.get(), f, &pos, slab->data(), &stream, &refused);
      slab.reset();  // the chunks cut from it keep it
      if (refused) {
        // The file system took O_DIRECT but not these reads: the rest goes
        // through the cache (a real read error shows there again).
        direct = false;
        if (!io::SetDirectIo(fd, false)) s = Status::IOError("cannot turn O_DIRECT off");
      }
      continue;
    }
    if (direct) {  // no memory for its buffer: through the cache instead
      direct = false;
      if (!io::SetDirectIo(fd, false)) s = Status::IOError("cannot turn O_DIRECT off");
      continue;
    }
    uint64_t end = next_hole < f->holes.size() ? f->holes[next_hole].offset : f->stamp.size;
    size_t want = static_cast<size_t>(std::min<uint64_t>(kReadSize, end - pos));
    uint8_t* buffer = slab ? slab->data() : read_buffer_.data();
    Result<size_t> got = file->Read(pos, MutableByteView(buffer, want));
    if (!got.ok()) {
      s = got.status();
      break;
    }
    bytes_read_ += *got;
    s = stream.Write(ByteView(buffer, *got));
    slab.reset();
    if (*got < want) {
      if (s.ok()) s = Status::Unavailable("shrank while being read");
      break;
    }
    pos += *got;
  }
  if (s.ok()) s = stream.Finish();
  if (aborted) {
    f->failed = true;
    FileDone(f);
    return Status::Cancelled("backup aborted");
  }
  if (!s.ok()) {
    Warn(f->path + ": " + s.message() + "; left out");
    f->failed = true;
  } else {
    struct stat after;
    if (::fstatat(dirfd, name.c_str(), &after, AT_SYMLINK_NOFOLLOW) != 0 ||
        after.st_ino != st.st_ino || ToNanos(after.st_mtim) != f->stamp.mtime_ns ||
        ToNanos(after.st_ctim) != f->stamp.ctime_ns ||
        static_cast<uint64_t>(after.st_size) != f->stamp.size) {
      Warn(f->path + ": changed while being read; its content may be inconsistent");
      f->cacheable = false;
    }
  }
  FileDone(f);
  return Status::OK();
}

Status Engine::AddToGroup(FileState* f, ByteView piece) {
  if (!group_.empty() && group_.size() + piece.size() > kGroupMax) {
    CAIRN_RETURN_IF_ERROR(SubmitGroup());
  }
  f->refs.push_back({repo::RefKind::kSlice, {}, piece.size()});
  f->pending.fetch_add(1);
  group_members_.push_back({f, &f->refs.back(), static_cast<uint32_t>(group_.size()),
                            static_cast<uint32_t>(piece.size())});
  group_.insert(group_.end(), piece.begin(), piece.end());
  if (group_.size() >= kGroupMin && (XXH3_64bits(piece.data(), piece.size()) & 3) == 0) {
    return SubmitGroup();
  }
  return Status::OK();
}

Status Engine::SubmitGroup() {
  if (group_members_.empty()) return Status::OK();
  Task t;
  t.kind = Task::Kind::kGroup;
  t.data = std::move(group_);
  t.members = std::move(group_members_);
  group_ = Bytes();
  group_members_.clear();
  if (!budget_.Acquire(t.data.size())) {
    for (const GroupMember& m : t.members) {
      m.file->failed = true;  // abandoned with the backup
      FileDone(m.file);
    }
    return Status::Cancelled("backup aborted");
  }
  outstanding_.fetch_add(1);
  PushTask(std::move(t));
  return Status::OK();
}

void Engine::PackGroup(repo::RecordEncoder* encoder, Task& t) {
  auto done = [&] {
    for (const GroupMember& m : t.members) FileDone(m.file);
  };
  if (failed()) {
    budget_.Release(t.data.size());
    outstanding_.fetch_sub(1);
    for (const GroupMember& m : t.members) m.file->failed = true;
    return done();
  }
  // Each file's own ID, and the files an earlier group already holds. A
  // second copy within this group is kept once: `copies` pairs it with the
  // member whose reference it takes when the group's references are made.
  std::vector<GroupMember*> kept;
  std::vector<std::pair<GroupMember*, const GroupMember*>> copies;
  std::unordered_map<ChunkId, const GroupMember*, crypto::ChunkIdHash> in_group;
  // The whole group's ID is computed with its members' (the two lanes of
  // ComputeMany take the group beside the files), for the usual case where
  // every member is kept and the group's bytes stay as they are.
  std::vector<ByteView> to_hash;
  for (const GroupMember& m : t.members) {
    to_hash.push_back(ByteView(t.data.data() + m.offset, m.length));
  }
  const size_t whole_size = t.data.size();
  if (t.members.size() > 1) to_hash.push_back(t.data);
  std::vector<ChunkId> member_ids(to_hash.size());
  encoder->Ids(to_hash, member_ids);
  chunks_hashed_ += t.members.size();
  for (size_t i = 0; i < t.members.size(); ++i) {
    GroupMember& m = t.members[i];
    const ChunkId& id = member_ids[i];
    if (auto it = in_group.find(id); it != in_group.end()) {
      copies.emplace_back(&m, it->second);
      continue;
    }
    std::lock_guard lock(slices_mu_);
    if (auto it = slices_.find(id); it != slices_.end()) {
      *m.ref = it->second;
    } else {
      m.ref->slice_id = id;
      kept.push_back(&m);
      in_group.emplace(id, &m);
    }
  }
  // Close the gaps the copies left.
  uint32_t size = 0;
  for (GroupMember* m : kept) {
    if (m->offset != size) {
      std::memmove(t.data.data() + size, t.data.data() + m->offset, m->length);
      m->offset = size;
    }
    size += m->length;
  }
  budget_.Release(t.data.size() - size);
  t.data.resize(size);
  if (kept.empty()) {  // and so no copies: each copy's first is kept
    outstanding_.fetch_sub(1);
    WakeNetwork();
    return done();
  }
  ChunkId id;
  if (kept.size() == 1) {
    // One file: a chunk of its own, the same as without packing.
    repo::ContentRef& r = *kept[0]->ref;
    id = r.slice_id;
    r = {repo::RefKind::kData, id, r.length};
  } else {
    id = kept.size() == t.members.size() && size == whole_size ? member_ids.back()
                                                               : encoder->Id(t.data);
    chunks_hashed_++;
    for (GroupMember* m : kept) {
      m->ref->id = id;
      m->ref->offset = m->offset;
    }
  }
  for (auto& [copy, first] : copies) *copy->ref = *first->ref;
  {
    std::lock_guard lock(slices_mu_);
    for (GroupMember* m : kept) {
      if (slices_.size() >= kMaxRememberedSlices) break;
      const repo::ContentRef& r = *m->ref;
      slices_.emplace(r.kind == repo::RefKind::kSlice ? r.slice_id : r.id, r);
    }
  }
  DedupAndAsk(id, Plain(std::move(t.data)), repo::RecordType::kData);
  done();
}

void Engine::HashChunks(repo::RecordEncoder* encoder, std::vector<Task>& tasks) {
  if (failed()) {
    for (Task& t : tasks) {
      budget_.Release(t.chunk.size());
      outstanding_.fetch_sub(1);
      t.file->failed = true;  // the file is abandoned with the backup
      FileDone(t.file);
    }
    return;
  }
  std::vector<ByteView> data;
  for (const Task& t : tasks) data.push_back(t.chunk.view());
  std::vector<ChunkId> ids(tasks.size());
  encoder->Ids(data, ids);
  chunks_hashed_ += tasks.size();
  for (size_t i = 0; i < tasks.size(); ++i) {
    Task& t = tasks[i];
    t.ref->id = ids[i];
    FileState* file = t.file;
    DedupAndAsk(ids[i], std::move(t.chunk), repo::RecordType::kData);
    FileDone(file);
  }
}

void Engine::WorkerMain(repo::RecordEncoder* encoder) {
  std::vector<Task> batch;
  while (true) {
    batch.clear();
    {
      std::unique_lock lock(work_mu_);
      work_cv_.wait(lock,
                    [&] { return work_closed_ || !seal_tasks_.empty() || !hash_tasks_.empty(); });
      if (!seal_tasks_.empty()) {
        batch.push_back(std::move(seal_tasks_.front()));
        seal_tasks_.pop_front();
      } else if (!hash_tasks_.empty()) {
        // Chunks to hash are taken a few at a time (ChunkIdHasher hashes
        // them two side by side), but no more than half of those waiting,
        // so that the other worker has its share.
        const size_t most = std::clamp<size_t>((hash_tasks_.size() + 1) / 2, 1, kHashAtOnce);
        do {
          batch.push_back(std::move(hash_tasks_.front()));
          hash_tasks_.pop_front();
        } while (batch.size() < most && batch[0].kind == Task::Kind::kHash &&
                 !hash_tasks_.empty() && hash_tasks_.front().kind == Task::Kind::kHash);
      } else {
        return;  // closed and drained
      }
    }
    Task& t = batch[0];
    if (t.kind == Task::Kind::kGroup) {
      PackGroup(encoder, t);
    } else if (t.kind == Task::Kind::kHash) {
      HashChunks(encoder, batch);
    } else {
      const uint64_t plain = t.chunk.size();
      if (failed()) {
        budget_.Release(plain);
        outstanding_.fetch_sub(1);
        continue;
      }
      UninitBytes record;
      Status s = encoder->Encode(t.type, t.id, t.chunk.view(), &record);
      if (!s.ok()) {
        Fail(s.WithContext("seal record"));
        budget_.Release(plain);
        outstanding_.fetch_sub(1);
        continue;
      }
      chunks_sealed_++;
      t.chunk.Reset();
      std::lock_guard lock(net_mu_);
      records_.push_back({std::move(record), plain});
      net_cv_.notify_one();
    }
  }
}

Status Engine::FlushCachePending(bool all) {
  std::vector<std::pair<std::string, CachedFile>> batch;
  {
    std::lock_guard lock(cache_mu_);
    if (cache_pending_.empty() || (!all && cache_pending_.size() < kCacheBatch)) {
      return Status::OK();
    }
    batch.swap(cache_pending_);
  }
  if (cache_failed_) return Status::OK();
  // The cache only spares the next run work: a write that fails (its disk
  // is full) costs the next run those files' reads, not this backup.
  if (Status s = cache_->AddPending(batch); !s.ok()) {
    cache_failed_ = true;
    Warn("file cache not updated (" + s.message() +
         "); the backup goes on, and the next one reads again the files it could not record");
  }
  return Status::OK();
}

void Engine::ShowProgress(bool final) {
  if (!options_.progress) return;
  const auto now = Clock::now();
  if (!final && now - last_progress_ < kProgressEvery) return;
  last_progress_ = now;
  BackupProgress p;
  p.seconds = std::max(1e-3, std::chrono::duration<double>(now - started_).count());
  p.bytes_read = bytes_read_.load();
  // Progress through the tree counts every scanned file's size, read or
  // answered by the file cache; the ETA extrapolates its rate.
  p.bytes_covered = bytes_.load();
  p.files = files_.load();
  p.dirs = dirs_.load();
  p.new_bytes = new_bytes_;
  p.final = final;
  if (estimate_done_) p.bytes_total = std::max(estimated_total_.load(), p.bytes_covered);
  if (!final && estimate_done_ && p.bytes_covered > 0) {
    p.eta_seconds = static_cast<double>(p.bytes_total - p.bytes_covered) /
                    (static_cast<double>(p.bytes_covered) / p.seconds);
  }
  if (final) {
    p.bytes_total = p.bytes_covered;
    p.eta_seconds = 0;
  }
  options_.progress(p);
}

Status Engine::NetLoop() {
  auto last_call = Clock::now();
  uint64_t since_flush = 0;
  uint64_t records_since_flush = 0;
  uint64_t trim_count = 0;
  uint64_t trim_bytes = 0;
  while (true) {
    std::deque<OutRecord> records;
    std::vector<AskItem> batch;
    {
      std::unique_lock lock(net_mu_);
      net_cv_.wait_for(lock, std::chrono::milliseconds(100),
                       [&] { return failed() || !records_.empty() || !ask_.empty() || Done(); });
      if (failed()) break;
      records.swap(records_);
      const size_t n = std::min(ask_.size(), proto::kMaxIdsPerMessage);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(ask_.front()));
        ask_.pop_front();
      }
    }
    for (OutRecord& r : records) {
      Status s = session_->PutRecord(r.bytes);
      if (!s.ok()) return s.WithContext("upload");
      since_flush += r.bytes.size();
      records_since_flush++;
      new_chunks_++;
      new_bytes_ += r.plain_size;
      // The record's memory goes with its share of the budget: `records`
      // lives until the last of them is sent, and the scanner reads on as
      // soon as the budget allows (keeping them doubled the agent's peak
      // on large files: 96 MiB of chunks plus up to 96 MiB of records).
      r.bytes = UninitBytes();
      budget_.Release(r.plain_size);
      outstanding_.fetch_sub(1);
      last_call = Clock::now();
      if (since_flush >= options_.flush_every || records_since_flush >= kFlushRecords) {
        CAIRN_RETURN_IF_ERROR(session_->Flush().WithContext("flush"));
        since_flush = 0;
        records_since_flush = 0;
      }
      // glibc keeps the pages of freed chunks in its arenas (fragmented
      // between the scanner's and the workers'); handing them back now and
      // then keeps the agent's RSS near its budget (-25 MiB on /usr/share,
      // where records are small: hence by count as well as by bytes).
      trim_bytes += r.plain_size;
      if (++trim_count % 4096 == 0 || trim_bytes >= kTrimBytes) {
        if (mallinfo2().fordblks > kTrimHeldFree) malloc_trim(0);
        trim_bytes = 0;
      }
    }
    if (!batch.empty()) {
      std::vector<ChunkId> ids;
      ids.reserve(batch.size());
      for (const AskItem& a : batch) ids.push_back(a.id);
      Result<std::vector<bool>> present = session_->HaveChunks(ids);
      if (!present.ok()) return present.status().WithContext("have_chunks");
      last_call = Clock::now();
      for (size_t i = 0; i < batch.size(); ++i) {
        if ((*present)[i]) {
          const uint64_t plain = batch[i].data.size();
          batch[i].data.Reset();
          budget_.Release(plain);
          outstanding_.fetch_sub(1);
        } else {
          Task t;
          t.kind = Task::Kind::kSeal;
          t.id = batch[i].id;
          t.type = batch[i].type;
          t.chunk = std::move(batch[i].data);
          PushTask(std::move(t));
        }
      }
    }
    if (cache_ != nullptr) CAIRN_RETURN_IF_ERROR(FlushCachePending(false));
    if (records.empty() && batch.empty() && Clock::now() - last_call >= kKeepAliveAfter) {
      CAIRN_RETURN_IF_ERROR(session_->KeepAlive().WithContext("keep-alive"));
      last_call = Clock::now();
    }
    ShowProgress(false);
    if (Done()) {
      std::lock_guard lock(net_mu_);
      if (records_.empty() && ask_.empty()) break;
    }
  }
  if (failed()) {
    std::lock_guard lock(fail_mu_);
    return failure_;
  }
  return Status::OK();
}

Result<BackupResult> Engine::Run(const std::vector<std::string>& paths) {
  io::Env* const clock = options_.clock != nullptr ? options_.clock : io::Env::Posix();
  const uint64_t started_micros = clock->NowMicros();
  unsigned n = options_.workers != 0 ? options_.workers : std::thread::hardware_concurrency();
  n = std::max(1u, n);
  std::vector<std::unique_ptr<repo::RecordEncoder>> encoders;
  repo::RecordEncoder::Options enc_options;
  enc_options.zstd_level = options_.zstd_level;
  for (unsigned i = 0; i < n; ++i) {
    CAIRN_ASSIGN_OR_RETURN(auto enc, repo::RecordEncoder::Create(keys_, enc_options));
    encoders.push_back(std::move(enc));
  }
  if (cache_ != nullptr) CAIRN_RETURN_IF_ERROR(cache_->ClearPending().WithContext("file cache"));

  // Threads are started in the order they are needed: one worker and the
  // scanner, without which there is no backup ("cannot start ..."), then
  // the other workers (fewer of them when the system will not start them
  // all: they share one queue), then the progress estimate (left out
  // without its thread).
  auto work = [this, &encoders](size_t i) { WorkerMain(encoders[i].get()); };
  Status no_worker;
  std::vector<std::thread> workers =
      StartThreads("the backup's worker threads", 1, work, &no_worker);
  if (workers.empty()) return no_worker;
  auto stop_workers = [&] {
    {
      std::lock_guard lock(work_mu_);
      work_closed_ = true;
      work_cv_.notify_all();
    }
    for (auto& w : workers) w.join();
  };
  Result<std::thread> started_scanner = StartThread("the backup's scanner thread", [this, &paths] {
    Status s = ScanAll(paths);
    if (!s.ok()) Fail(s);
    scan_done_ = true;
    WakeNetwork();
  });
  if (!started_scanner.ok()) {
    stop_workers();
    return started_scanner.status();
  }
  std::thread scanner = std::move(*started_scanner);
  for (std::thread& t :
       StartThreads("the backup's worker threads", n - 1, [&work](size_t i) { work(i + 1); })) {
    workers.push_back(std::move(t));
  }
  std::thread estimator;
  if (options_.progress) {
    Result<std::thread> e = StartThread("the backup's progress estimate", [this, &paths] {
      uint64_t total = 0;
      for (const std::string& root : paths) {
        std::error_code ec;
        auto st = std::filesystem::symlink_status(root, ec);
        if (ec) continue;
        if (std::filesystem::is_regular_file(st)) {
          total += std::filesystem::file_size(root, ec);
          continue;
        }
        std::filesystem::recursive_directory_iterator it(
            root, std::filesystem::directory_options::skip_permission_denied, ec);
        for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
          if (estimate_stop_) return;
          std::error_code fec;
          if (it->is_regular_file(fec) && !it->is_symlink(fec)) total += it->file_size(fec);
        }
      }
      estimated_total_ = total;
      estimate_done_ = true;
    });
    if (e.ok()) estimator = std::move(*e);
  }

  Status s = NetLoop();
  if (!s.ok()) Fail(s);
  scanner.join();
  estimate_stop_ = true;
  if (estimator.joinable()) estimator.join();
  stop_workers();
  if (failed()) {
    std::lock_guard lock(fail_mu_);
    return failure_;
  }
  ShowProgress(true);

  CAIRN_RETURN_IF_ERROR(session_->Flush().WithContext("final flush"));
  if (cache_ != nullptr) CAIRN_RETURN_IF_ERROR(FlushCachePending(true));
  std::vector<ChunkId> manifest = known_.TakeSorted();

  BackupResult result;
  result.root_tree = root_id_;
  result.files = files_;
  result.dirs = dirs_;
  result.bytes = bytes_;
  result.new_bytes = new_bytes_;
  result.new_chunks = new_chunks_;
  result.warnings = warnings_;
  result.bytes_read = bytes_read_;
  result.bytes_read_direct = bytes_read_direct_;
  result.cache_hits = cache_hits_;
  result.chunks_hashed = chunks_hashed_;
  result.chunks_sealed = chunks_sealed_;
  result.peak_bytes_in_flight = budget_.peak();
  result.manifest_size = manifest.size();

  proto::SnapshotStats stats;
  stats.files = result.files;
  stats.dirs = result.dirs;
  stats.bytes = result.bytes;
  stats.new_bytes = result.new_bytes;
  stats.new_chunks = result.new_chunks;
  stats.warnings = result.warnings.size();
  stats.started_micros = started_micros;
  stats.finished_micros = clock->NowMicros();
  stats.pit_method = options_.pit_method;
  stats.pit_micros = options_.pit_micros;
  CAIRN_ASSIGN_OR_RETURN(result.snapshot_id,
                         FinishCommit(session_->Commit(root_id_, manifest, stats), cache_,
                                      "file cache", &result.warnings));
  result.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  return result;
}

}  // namespace

Result<std::vector<std::string>> NormalizeBackupPaths(const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::InvalidArgument("nothing to back up: give at least one PATH");
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    if (p.empty()) return Status::InvalidArgument("empty PATH");
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(p, ec);
    if (ec) return Status::InvalidArgument(p + ": " + ec.message());
    abs = abs.lexically_normal();
    std::string s = abs.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    struct stat st;
    if (::lstat(s.c_str(), &st) != 0) return ErrnoToStatus(errno, "PATH " + s);
    // Resolve symlinks in the parent only: the PATH itself is backed up as
    // what it is (a symlink stays a symlink).
    if (s != "/") {
      std::filesystem::path parent = std::filesystem::path(s).parent_path();
      std::filesystem::path real = std::filesystem::canonical(parent, ec);
      if (ec) return Status::InvalidArgument(parent.string() + ": " + ec.message());
      std::string name = std::filesystem::path(s).filename().string();
      s = JoinPath(real.string(), name);
    }
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  std::vector<std::string> kept;
  for (const std::string& s : out) {
    bool nested = false;
    for (const std::string& k : kept) {
      if (k == "/" ||
          (s.size() > k.size() && s.compare(0, k.size(), k) == 0 && s[k.size()] == '/')) {
        nested = true;
        break;
      }
    }
    if (!nested) kept.push_back(s);
  }
  return kept;
}

Result<BackupResult> RunBackup(const crypto::DepartmentKeys& keys, FileCache* cache,
                               VaultSession* session, const BackupOptions& options) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> paths, NormalizeBackupPaths(options.paths));
  CAIRN_ASSIGN_OR_RETURN(uint64_t seed, crypto::DeriveGearSeed(keys.id_key));
  chunk::ChunkerOptions chunker_options;
  chunker_options.gear_seed = seed;
  chunker_options.avg_size = options.chunk_avg_size;
  CAIRN_ASSIGN_OR_RETURN(chunk::Chunker chunker, chunk::Chunker::Create(chunker_options));
  BackupOptions sanitized = options;
  if (sanitized.memory_budget == 0) sanitized.memory_budget = 128ull << 20;
  if (sanitized.flush_every == 0) sanitized.flush_every = 256ull << 20;
  auto engine = std::make_unique<Engine>(keys, cache, session, sanitized, std::move(chunker));
  return engine->Run(paths);
}

}  // namespace cairn::agent
