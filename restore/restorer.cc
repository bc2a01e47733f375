#include "restore/restorer.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "lib/base/errno.h"
#include "lib/base/thread.h"
#include "lib/chunk/extent.h"
#include "lib/chunk/rsync_delta.h"
#include "lib/client/vault_link.h"
#include "lib/client/wire.h"
#include "lib/crypto/chunk_id.h"
#include "lib/io/file_io.h"
#include "lib/io/uring.h"
#include "lib/repo/record.h"
#include "restore/compare.h"
#include "restore/snapshot_tree.h"

namespace cairn::restore {

using client::VaultLink;
namespace {

using crypto::ChunkId;
using Clock = std::chrono::steady_clock;

constexpr size_t kBatchBytes = 8u << 20;
// Files a worker holds open with writes queued: a group of small files
// places hundreds, so the writes go out (and the files are finished and
// closed) every so many placements instead of once per batch.
constexpr size_t kMaxQueuedFiles = 256;
constexpr uint32_t kBlock = 4096;  // unit of in-place comparison and signatures
constexpr auto kProgressEvery = std::chrono::milliseconds(250);
// In place: while a worker reads one range of the target, the kernel is
// asked to read the range this far ahead (the workers take ranges in order,
// so the disk works ahead of all of them).
constexpr uint64_t kReconcileAhead = 32u << 20;
// From this many directories on, their metadata is set on several threads.
constexpr size_t kParallelDirs = 256;
constexpr const char* kDamagedSuffix = ".cairn-damaged";
// Files are written under "<prefix><pid>-<n>" and renamed into place.
constexpr const char* kTempPrefix = ".cairn-restore-";

Status SysError(std::string_view what, std::string_view path) {
  return ErrnoToStatus(errno, std::string(what) + " " + std::string(path));
}

struct DirHandle {
  explicit DirHandle(int f, bool made = false) : fd(f), fresh(made) {}
  ~DirHandle() {
    if (fd >= 0) ::close(fd);
  }
  DirHandle(const DirHandle&) = delete;
  DirHandle& operator=(const DirHandle&) = delete;
  int fd;
  // Made by this restore (mkdirat succeeded): nothing but what it writes
  // is in it, and it stays mode 0700 until its contents are complete, so
  // files are written under their own names, without a temporary one.
  bool fresh;
};
using DirRef = std::shared_ptr<DirHandle>;

// Opens the directory `rel` below `root` without following any symlink.
Result<int> OpenBeneath(int root, const std::string& rel) {
  const int fd = io::OpenNoSymlinks(root, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError("open directory", rel);
  return fd;
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Writes for the chunk bytes [begin, end) of `content`, mapped to the file
// through the chunk's segments (a chunk may straddle holes).
void AddWrites(const std::vector<Segment>& segs, ByteView content, uint64_t begin, uint64_t end,
               std::vector<io::WriteRequest>* out) {
  for (const Segment& seg : segs) {
    const uint64_t lo = std::max(begin, seg.chunk_offset);
    const uint64_t hi = std::min(end, seg.chunk_offset + seg.length);
    if (lo >= hi) continue;
    io::WriteRequest w;
    w.offset = seg.file_offset + (lo - seg.chunk_offset);
    w.data = content.subspan(lo, hi - lo);
    out->push_back(w);
  }
}

timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    ts.tv_sec -= 1;
  }
  return ts;
}

// A file being restored (or verified). Owned by the Engine's registry until
// finalised by whichever thread drops `pending` to zero.
struct FileJob {
  const TreeNode* node = nullptr;
  DirRef dir;  // null when verifying only
  std::string name, path;
  std::string tmp;  // the temporary name; empty: written under `name` (a fresh directory)
  int fd = -1;
  bool in_place = false;  // fd is the target itself (no temporary name)
  bool device = false;    // a block device: no truncate, no metadata
  uint64_t old_size = 0;
  std::mutex mu;  // fd creation
  const std::string& OpenName() const { return tmp.empty() ? name : tmp; }
  std::atomic<int64_t> pending{1};
  std::atomic<bool> damaged{false};
};

// Where bytes [chunk_offset, chunk_offset + length) of a fetched chunk go:
// at data offset `offset` of the file (TreeNode::Data::offset).
struct Placement {
  FileJob* file;
  uint64_t offset;
  uint64_t chunk_offset = 0;
  uint64_t length = 0;
};

struct FetchItem {
  ChunkId id;
  // The chunk's exact length; 0 for a group fetched for its slices, which
  // need only hold every slice.
  uint64_t length = 0;
  std::vector<Placement> places;
};

// The writes of one fetched batch, submitted to io_uring together (one
// system call for many small files). The contents stay here until then.
struct PendingWrites {
  std::vector<UninitBytes> contents;
  std::vector<int> fds;
  std::vector<io::WriteRequest> requests;
  std::vector<std::pair<FileJob*, uint64_t>> done;  // file, bytes placed
};

struct Work {
  enum class Kind { kFetch, kReconcile } kind = Kind::kFetch;
  std::vector<FetchItem> items;  // kFetch
  FileJob* file = nullptr;       // kReconcile: one range of an in-place file
  TreeNode::Data range;
  bool hole = false;
};

// A bounded queue of work: Push blocks while full, Pop while empty.
class WorkQueue {
 public:
  explicit WorkQueue(size_t cap) : cap_(cap) {}
  bool Push(Work w) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || q_.size() < cap_; });
    if (aborted_) return false;
    q_.push_back(std::move(w));
    cv_.notify_all();
    return true;
  }
  std::optional<Work> Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || closed_ || !q_.empty(); });
    if (aborted_ || q_.empty()) return std::nullopt;
    Work w = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return w;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  void Abort() {
    std::lock_guard lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> q_;
  size_t cap_;
  bool closed_ = false;
  bool aborted_ = false;
};

class Engine {
 public:
  Engine(const client::Identity& state, const RestoreOptions& options, RestoreResult* result)
      : state_(state), options_(options), result_(result), queue_(2 * Workers()) {}
  ~Engine();

  Status Run(const std::string& wanted);

 private:
  size_t Workers() const { return static_cast<size_t>(std::max(1, options_.connections)); }

  // --- planning (calling thread)
  void Select(const SnapshotTree& tree);
  Status PrepareTarget(const proto::SnapshotInfo& snap);
  // An in-place restore overwrites what is there: only this host's own
  // series may (unless --force).
  Status CheckSeries(const proto::SnapshotInfo& snap,
                     const std::vector<proto::SnapshotInfo>& list) const;
  void PlanChildren(const std::vector<uint32_t>& children, const DirRef& dir);
  void PlanNode(uint32_t index, const DirRef& dir);
  Result<DirRef> MakeDir(const DirRef& parent, const std::string& name, const std::string& path);
  void PlanFile(const TreeNode& node, const DirRef& dir, const std::string& name, bool device_fd,
                int fd);
  void MakeSpecial(const TreeNode& node, const DirRef& dir);
  void AddPlacement(const ChunkId& id, uint64_t length, Placement p);
  // A slice of group `id` (none: one that needs no fetch): the group is
  // fetched once, when the last slice the plan holds of it has been planned
  // (CountSlices counted them).
  void AddSlice(const ChunkId& id, std::optional<Placement> p);
  void CountSlices();
  void AddItem(FetchItem item, uint64_t bytes);
  // An in-place file's slice whose bytes are on disk already.
  bool SliceOnDisk(FileJob* f, size_t index);
  void FlushBatch();
  void PushWork(Work w);
  void FinishTree();
  void ApplyDirMetadata();
  void MaybeProgress(bool force = false);

  // --- workers
  void WorkerMain(size_t k);
  void ProcessFetch(size_t k, Work& work, Result<VaultLink::Ticket> ticket);
  // Decodes `records` (items[i].id's for each i, from a reply) and places
  // their contents where the items' files want them.
  void HandleChunks(size_t k, std::span<const FetchItem> items, std::span<const ByteView> records,
                    PendingWrites* out);
  // The same for one record, decoded on its own (a delta record's bases are
  // fetched).
  void HandleChunk(size_t k, const FetchItem& item, ByteView record, PendingWrites* out);
  // Places a decoded chunk (`s` its decoding's outcome).
  void PlaceChunk(size_t k, const FetchItem& item, UninitBytes content, Status s,
                  PendingWrites* out);
  UninitBytes SpareBuffer(size_t k);
  void SubmitWrites(size_t k, PendingWrites* out);
  void Reconcile(size_t k, Work& work);
  void FailChunk(const FetchItem& item, const Status& s);

  // --- any thread
  Status EnsureOpen(FileJob* f);
  Status WriteAll(size_t k, FileJob* f, std::vector<io::WriteRequest>& writes);
  void FileDone(FileJob* f);
  void Finalize(FileJob* f);
  // `created`: the file was made by this restore with its permission bits.
  void ApplyMetadata(int fd, const repo::TreeEntry& e, const std::string& path,
                     bool created = false);
  void SetXattrsByPath(const std::string& proc_path, const repo::TreeEntry& e,
                       const std::string& path);
  void AddDamage(std::string what, const Status& s, std::vector<std::string> paths);
  void Warn(std::string message);
  void Fatal(const Status& s);
  // `s`, the first fatal error, reworded when a vault connection was lost.
  Status LostVault(const Status& s) const;
  // Run, whose own failures after the workers start already say what is
  // left (LostVault, TargetFull).
  Status Restore(const std::string& wanted);
  // A restore to a new place is refused before anything is written when
  // its file system cannot hold the selected files' data.
  Status CheckSpace() const;
  // A full target file system at the end: says what is kept.
  Status TargetFull(const Status& s) const;
  // What a restore that stopped early leaves at the target, and how to
  // finish it once `ready` ("the vault is back").
  std::string WhatIsLeft(std::string_view ready) const;
  bool aborted() const { return aborted_.load(); }
  bool fetching_ = false;  // the workers have started (set once, before them)

  const client::Identity& state_;
  const RestoreOptions& options_;
  RestoreResult* result_;
  WorkQueue queue_;
  std::vector<std::unique_ptr<VaultLink>> links_;
  std::vector<std::unique_ptr<repo::RecordDecoder>> decoders_;
  std::vector<std::unique_ptr<crypto::ChunkIdHasher>> hashers_;
  std::vector<std::unique_ptr<io::IoRing>> rings_;
  // A worker's buffers for Reconcile, kept between extents: allocated anew,
  // each 4 MiB buffer came from mmap and cost a thousand page faults and
  // their zeroing (a third of a failback's time).
  struct Scratch {
    Bytes local, rebuilt, spare;
    std::vector<UninitBytes> contents;  // fetched chunks' buffers, written and free again
  };
  std::vector<Scratch> scratch_;
  std::unique_ptr<SnapshotTree> tree_;
  std::vector<uint8_t> included_, needed_;

  bool root_ = ::geteuid() == 0;
  uid_t uid_ = ::geteuid();
  gid_t gid_ = ::getegid();
  bool image_target_ = false;
  bool image_to_device_ = false;  // an image written straight to a block device
  uint32_t image_node_ = kNoParent;
  DirRef root_dir_;                  // tree mode: the target directory
  std::vector<uint32_t> dirs_;       // in creation order, for their metadata
  std::vector<uint32_t> hardlinks_;  // created after every file
  uint64_t tmp_counter_ = 0;

  Work batch_;  // the fetch batch being filled
  std::unordered_map<ChunkId, size_t, crypto::ChunkIdHash> batch_index_;
  uint64_t batch_bytes_ = 0;
  // Groups whose slices are being gathered, with the slices still to come.
  struct PendingGroup {
    FetchItem item;
    uint64_t slices_left = 0;
    uint64_t end = 0;  // the furthest byte a slice needs
  };
  std::unordered_map<ChunkId, PendingGroup, crypto::ChunkIdHash> groups_;
  std::unique_ptr<crypto::ChunkIdHasher> plan_hasher_;  // SliceOnDisk
  Bytes plan_buffer_;

  std::mutex mu_;  // guards what follows
  std::unordered_set<FileJob*> live_;
  std::condition_variable idle_;                  // live_ became empty, or the restore aborted
  std::map<uint64_t, std::string> link_sources_;  // link group -> restored path
  Status fatal_;
  std::atomic<bool> aborted_{false};

  std::atomic<uint64_t> bytes_done_{0}, files_done_{0}, chunks_{0}, written_{0}, unchanged_{0},
      deltas_{0};
  uint64_t bytes_total_ = 0, files_total_ = 0;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_progress_ = start_;
};

Engine::~Engine() {
  // Files left unfinished by a fatal error: never leave a temporary behind.
  for (FileJob* f : live_) {
    if (f->fd >= 0) ::close(f->fd);
    if (!f->in_place && f->fd >= 0 && f->dir) ::unlinkat(f->dir->fd, f->OpenName().c_str(), 0);
    delete f;
  }
}

void Engine::Warn(std::string message) {
  std::lock_guard lock(mu_);
  if (result_->warnings.size() < 1000) result_->warnings.push_back(std::move(message));
}

void Engine::AddDamage(std::string what, const Status& s, std::vector<std::string> paths) {
  std::lock_guard lock(mu_);
  result_->damaged.push_back({std::move(what), s.ToString(), std::move(paths)});
}

Status Engine::LostVault(const Status& s) const {
  std::string address;
  for (const auto& l : links_) {
    if (!l->failure().ok()) address = l->address();
  }
  if (address.empty()) return s;
  // A lost vault names itself and what to do, as the agent's does.
  return client::LostConnection(s, "the vault", address, WhatIsLeft("the vault is back"));
}

std::string Engine::WhatIsLeft(std::string_view ready) const {
  // A verification writes nothing. An image restored to a file goes to a
  // temporary name that ~Engine removes, so the target is as it was; a
  // device holds what was written, and a directory the files finished
  // whole (~Engine removes the unfinished ones).
  const std::string again = "run the same command again once " + std::string(ready);
  if (!fetching_) return "nothing was restored: " + again;
  if (options_.verify_only) return "nothing was written: " + again;
  if (options_.in_place) return "what was written is kept: " + again + ", and it finishes the job";
  const std::string overwrite = "run the command again with --overwrite once " + std::string(ready);
  if (image_to_device_) return "the device holds a partial restore: " + overwrite;
  if (image_target_) return "the target is as it was (the partial image is removed): " + again;
  return "the files restored whole are kept and the unfinished ones removed: " + overwrite;
}

void Engine::Fatal(const Status& s) {
  {
    std::lock_guard lock(mu_);  // idle_'s waiter sees aborted_ before it waits, or is woken
    if (fatal_.ok()) fatal_ = s;
    aborted_ = true;
  }
  queue_.Abort();
  idle_.notify_all();
}

// --- selection ---------------------------------------------------------

void Engine::Select(const SnapshotTree& tree) {
  const size_t n = tree.nodes.size();
  included_.assign(n, options_.includes.empty() ? 1 : 0);
  needed_.assign(n, 0);
  std::vector<std::string> patterns;
  for (std::string p : options_.includes) {
    while (!p.empty() && p.front() == '/') p.erase(p.begin());
    while (!p.empty() && p.back() == '/') p.pop_back();
    patterns.push_back(p);
  }
  // Parents come before their children in `nodes` (loaded level by level).
  for (size_t i = 0; i < n && !patterns.empty(); ++i) {
    const TreeNode& node = tree.nodes[i];
    bool match = node.parent != kNoParent && included_[node.parent];
    for (const std::string& p : patterns) {
      match = match || ::fnmatch(p.c_str(), node.path.c_str(), 0) == 0;
    }
    included_[i] = match;
  }
  for (size_t i = n; i-- > 0;) {
    needed_[i] = needed_[i] || included_[i];
    if (needed_[i] && tree.nodes[i].parent != kNoParent) needed_[tree.nodes[i].parent] = 1;
  }
  for (size_t i = 0; i < n; ++i) {
    const repo::TreeEntry& e = tree.nodes[i].entry;
    if (!included_[i]) continue;
    if (e.type == repo::EntryType::kFile || e.type == repo::EntryType::kImage) {
      bytes_total_ += e.size;
      ++files_total_;
    }
  }
}

// --- target ------------------------------------------------------------

Status Engine::CheckSeries(const proto::SnapshotInfo& snap,
                           const std::vector<proto::SnapshotInfo>& list) const {
  const std::string& me = state_.config.host;
  if (snap.hostname != me) {
    return Status::InvalidArgument(
        "snapshot " + snap.id + " is of host " + snap.hostname + ", and this is host " + me +
        ": an in-place restore would overwrite this host's data with another host's; restore "
        "it elsewhere (without --in-place), or pass --force if that is what you mean");
  }
  if (snap.kind != proto::SessionKind::kImage || options_.target.empty()) return Status::OK();
  std::error_code ec;
  const std::string target =
      std::filesystem::absolute(options_.target, ec).lexically_normal().string();
  auto has_target = [&](const proto::SnapshotInfo& s) {
    return std::find(s.paths.begin(), s.paths.end(), target) != s.paths.end();
  };
  if (has_target(snap)) return Status::OK();
  for (const auto& s : list) {
    if (s.hostname == me && s.kind == proto::SessionKind::kImage && has_target(s)) {
      std::string paths;
      for (const auto& p : snap.paths) paths += (paths.empty() ? "" : ", ") + p;
      return Status::InvalidArgument(
          "snapshot " + snap.id + " is of " + paths + ", but " + target +
          " is another image this host backs up: an in-place restore would overwrite it with "
          "the wrong disk; pass --force if that is what you mean");
    }
  }
  return Status::OK();
}

Status Engine::PrepareTarget(const proto::SnapshotInfo& snap) {
  const std::string& target = options_.target;
  if (options_.in_place && options_.overwrite) {
    return Status::InvalidArgument("--in-place and --overwrite exclude each other");
  }
  struct stat lst {};
  if (!target.empty() && !options_.verify_only && ::lstat(target.c_str(), &lst) == 0 &&
      S_ISLNK(lst.st_mode) && !options_.follow_target_symlink) {
    std::error_code ec;
    const auto points_to = std::filesystem::read_symlink(target, ec);
    return Status::InvalidArgument(
        "target " + target + " is a symbolic link" +
        (ec ? std::string() : " (to " + points_to.string() + ")") +
        "; name the real directory, or pass --follow-symlink to restore where it points");
  }
  struct stat st {};
  const bool exists = !target.empty() && ::stat(target.c_str(), &st) == 0;
  // An image snapshot with one selected image restores to a file or device
  // named by --target, unless that is an existing directory.
  if (snap.kind == proto::SessionKind::kImage) {
    std::vector<uint32_t> images;
    for (size_t i = 0; i < tree_->nodes.size(); ++i) {
      if (included_[i] && tree_->nodes[i].entry.type == repo::EntryType::kImage) {
        images.push_back(static_cast<uint32_t>(i));
      }
    }
    if (images.size() == 1 && !(exists && S_ISDIR(st.st_mode))) {
      image_target_ = true;
      image_node_ = images.front();
    }
  }
  result_->image_target = image_target_;
  if (options_.verify_only) return Status::OK();
  if (target.empty()) return Status::InvalidArgument("--target is required (or --verify-only)");

  if (image_target_) {
    std::string parent = std::filesystem::path(target).parent_path().string();
    if (parent.empty()) parent = ".";
    int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) return SysError("open directory", parent);
    root_dir_ = std::make_shared<DirHandle>(pfd);
    if (!exists) return CheckSpace();
    if (S_ISBLK(st.st_mode) || S_ISREG(st.st_mode)) {
      if (!options_.in_place && !options_.overwrite) {
        return Status::InvalidArgument("target " + target +
                                       " exists; pass --in-place to write only what differs, or " +
                                       "--overwrite to replace it");
      }
      return Status::OK();
    }
    return Status::InvalidArgument("target " + target +
                                   " is neither a directory, a regular file nor a block device");
  }

  if (!exists) {
    std::error_code ec;
    std::filesystem::create_directories(target, ec);
    if (ec) return Status::IOError("create target " + target + ": " + ec.message());
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("target " + target + " exists and is not a directory");
  }
  int fd = ::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError("open target", target);
  root_dir_ = std::make_shared<DirHandle>(fd);
  if (exists) {
    // A restore that was killed (SIGKILL, power loss) left its temporaries.
    auto removed = RemoveRestoreLeftovers(target);
    if (!removed.ok()) return removed.status();
    if (*removed > 0) {
      Warn("removed " + std::to_string(*removed) +
           " temporary file(s) left in the target by an interrupted restore");
    }
  }
  if (exists && !options_.in_place && !options_.overwrite) {
    std::error_code ec;
    if (!std::filesystem::is_empty(target, ec) || ec) {
      return Status::InvalidArgument(
          "target " + target +
          " is not empty; pass --overwrite to restore over it, or --in-place to update the "
          "files in it");
    }
  }
  if (options_.in_place || options_.overwrite) return Status::OK();
  return CheckSpace();
}

Status Engine::CheckSpace() const {
  uint64_t needed = 0;  // data bytes: holes take no space, a hard link none
  for (size_t i = 0; i < tree_->nodes.size(); ++i) {
    const repo::TreeEntry& e = tree_->nodes[i].entry;
    if (!included_[i]) continue;
    if (e.type != repo::EntryType::kFile && e.type != repo::EntryType::kImage) continue;
    uint64_t data = e.size;
    for (const repo::Hole& h : e.holes) data -= std::min(data, h.length);
    needed += data;
  }
  // btrfs may compress what it stores, and its free figure is an estimate.
  struct statfs fs {};
  if (::fstatfs(root_dir_->fd, &fs) == 0 && fs.f_type == BTRFS_SUPER_MAGIC) return Status::OK();
  Result<io::FileSystemSpace> space = io::SpaceOf(root_dir_->fd, options_.target);
  if (!space.ok()) return Status::OK();  // no answer: let the writes tell
  const uint64_t available = space->free_bytes;
  if (needed <= available) return Status::OK();
  return Status::NoSpace("the target's file system has " + HumanBytes(available) +
                         " free, and the files selected need " + HumanBytes(needed) +
                         "; nothing was restored: free space, restore elsewhere, or select less "
                         "with --include");
}

Status Engine::TargetFull(const Status& s) const {
  return Status::NoSpace("the target's file system is full (" + s.message() + "); " +
                         WhatIsLeft("there is free space"));
}

// --- planning ----------------------------------------------------------

void Engine::MaybeProgress(bool force) {
  if (options_.cancel != nullptr && options_.cancel->load() && !aborted()) {
    Fatal(Status::Cancelled("interrupted; unfinished files were removed"));
  }
  if (!options_.progress) return;
  auto now = Clock::now();
  if (!force && now - last_progress_ < kProgressEvery) return;
  last_progress_ = now;
  RestoreProgress p;
  p.bytes_done = bytes_done_;
  p.bytes_total = bytes_total_;
  p.files_done = files_done_;
  p.files_total = files_total_;
  for (const auto& l : links_) p.bytes_received += l->bytes_received();
  p.seconds = std::chrono::duration<double>(now - start_).count();
  options_.progress(p);
}

Result<DirRef> Engine::MakeDir(const DirRef& parent, const std::string& name,
                               const std::string& path) {
  bool made = true;
  if (::mkdirat(parent->fd, name.c_str(), 0700) != 0) {
    made = false;
    if (errno != EEXIST) return SysError("create directory", path);
    struct stat st {};
    if (::fstatat(parent->fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return SysError("stat", path);
    }
    if (!S_ISDIR(st.st_mode)) {
      // Only reachable with --overwrite or --in-place (the target was not
      // empty): whatever is in the way (a symlink, say) is replaced, never
      // followed.
      if (::unlinkat(parent->fd, name.c_str(), 0) != 0) return SysError("remove", path);
      if (::mkdirat(parent->fd, name.c_str(), 0700) != 0) {
        return SysError("create directory", path);
      }
    }
  }
  int fd = ::openat(parent->fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return SysError("open directory", path);
  return std::make_shared<DirHandle>(fd, made);
}

void Engine::PushWork(Work w) {
  if (!queue_.Push(std::move(w))) return;  // aborted: the fatal error is reported
  MaybeProgress();
}

void Engine::FlushBatch() {
  if (batch_.items.empty()) return;
  Work w = std::move(batch_);
  batch_ = Work{};
  batch_index_.clear();
  batch_bytes_ = 0;
  PushWork(std::move(w));
}

void Engine::AddPlacement(const ChunkId& id, uint64_t length, Placement p) {
  p.length = length;
  auto it = batch_index_.find(id);
  if (it != batch_index_.end() && batch_.items[it->second].length == length) {
    batch_.items[it->second].places.push_back(p);
    return;
  }
  AddItem({id, length, {p}}, length);
  batch_index_[id] = batch_.items.size() - 1;
}

void Engine::AddItem(FetchItem item, uint64_t bytes) {
  if (batch_.items.size() >= proto::kMaxRecordsPerMessage ||
      (!batch_.items.empty() && batch_bytes_ + bytes > kBatchBytes)) {
    FlushBatch();
  }
  batch_.items.push_back(std::move(item));
  batch_bytes_ += bytes;
}

void Engine::CountSlices() {
  for (size_t i = 0; i < tree_->nodes.size(); ++i) {
    if (!needed_[i] || tree_->nodes[i].entry.type != repo::EntryType::kFile) continue;
    for (const TreeNode::Data& d : tree_->nodes[i].data) {
      if (d.slice) groups_[d.id].slices_left++;
    }
  }
}

void Engine::AddSlice(const ChunkId& id, std::optional<Placement> p) {
  PendingGroup& g = groups_[id];
  if (p) {
    g.item.id = id;
    g.item.places.push_back(*p);
    g.end = std::max(g.end, p->chunk_offset + p->length);
  }
  if (g.slices_left > 1) {
    --g.slices_left;
    return;
  }
  // The last slice the plan holds of this group.
  if (!g.item.places.empty()) AddItem(std::move(g.item), g.end);
  groups_.erase(id);
}

bool Engine::SliceOnDisk(FileJob* f, size_t index) {
  // A read that fails is a difference: the slice is then written.
  Result<bool> whole = ReadDataOnDisk(f->fd, *f->node, index, f->path, &plan_buffer_);
  return whole.ok() && *whole && plan_hasher_->Compute(plan_buffer_) == DataIdOf(*f->node, index);
}

void Engine::PlanChildren(const std::vector<uint32_t>& children, const DirRef& dir) {
  for (uint32_t c : children) {
    if (aborted()) return;
    if (needed_[c]) PlanNode(c, dir);
  }
}

void Engine::PlanNode(uint32_t index, const DirRef& dir) {
  const TreeNode& node = tree_->nodes[index];
  const repo::TreeEntry& e = node.entry;
  if (!repo::IsValidEntryName(e.name)) {  // the loader refused these; never reached
    AddDamage("tree entry", Status::Corruption("invalid entry name"), {node.path});
    return;
  }
  switch (e.type) {
    case repo::EntryType::kDir: {
      DirRef sub;
      if (!options_.verify_only) {
        auto made = MakeDir(dir, e.name, node.path);
        if (!made.ok()) return Fatal(made.status());
        sub = *made;
      }
      dirs_.push_back(index);
      ++result_->dirs;
      PlanChildren(node.children, sub);
      return;
    }
    case repo::EntryType::kFile:
    case repo::EntryType::kImage:
      return PlanFile(node, dir, e.name, false, -1);
    case repo::EntryType::kHardlink:
      hardlinks_.push_back(index);
      return;
    default:
      return MakeSpecial(node, dir);
  }
}

void Engine::PlanFile(const TreeNode& node, const DirRef& dir, const std::string& name,
                      bool device_fd, int fd) {
  const repo::TreeEntry& e = node.entry;
  auto* f = new FileJob;
  f->node = &node;
  f->dir = dir;
  f->name = name;
  f->path = node.path;
  if (!node.complete) f->damaged = true;  // a content list is missing: reported by the loader
  {
    std::lock_guard lock(mu_);
    live_.insert(f);
    if (e.link_group != 0) link_sources_[e.link_group] = "";
  }
  ++result_->files;
  bool reconcile = false;
  if (device_fd) {
    f->fd = fd;
    f->device = true;
    f->in_place = true;
    reconcile = true;
    uint64_t size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) return Fatal(SysError("size of", options_.target));
    f->old_size = size;
    if (size < e.size) {
      return Fatal(Status::InvalidArgument("block device " + options_.target + " holds " +
                                           HumanBytes(size) + ", the image " + HumanBytes(e.size)));
    }
  } else if (!options_.verify_only && dir->fresh && !options_.in_place) {
    // Nothing is in the way in a directory this restore made: the file is
    // created under its own name when its first bytes arrive.
  } else if (!options_.verify_only) {
    struct stat st {};
    const bool exists = ::fstatat(dir->fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
      AddDamage("target", Status::InvalidArgument("a directory is in the way of the file"),
                {node.path});
      f->damaged = true;
      std::lock_guard lock(mu_);
      live_.erase(f);
      delete f;
      if (live_.empty()) idle_.notify_all();
      return;
    }
    if (options_.in_place) {
      f->in_place = true;
      if (exists && S_ISREG(st.st_mode)) {
        f->fd = ::openat(dir->fd, name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (f->fd < 0) return Fatal(SysError("open", node.path));
        f->old_size = static_cast<uint64_t>(st.st_size);
        reconcile = true;
      } else {
        if (exists && ::unlinkat(dir->fd, name.c_str(), 0) != 0) {
          return Fatal(SysError("remove", node.path));
        }
        f->fd = ::openat(dir->fd, name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f->fd < 0) return Fatal(SysError("create", node.path));
        if (::ftruncate(f->fd, static_cast<off_t>(e.size)) != 0) {
          return Fatal(SysError("size", node.path));
        }
      }
    } else {
      char tmp[40];
      std::snprintf(tmp, sizeof(tmp), "%s%d-%llu", kTempPrefix, static_cast<int>(::getpid()),
                    static_cast<unsigned long long>(++tmp_counter_));
      f->tmp = tmp;
    }
  }
  if (reconcile) {
    for (size_t i = 0; i < node.data.size(); ++i) {
      const TreeNode::Data& d = node.data[i];
      if (d.slice) {
        // A small file's bytes: checked here, fetched with their group
        // only when they differ.
        if (SliceOnDisk(f, i)) {
          unchanged_ += d.length;
          bytes_done_ += d.length;
          AddSlice(d.id, std::nullopt);
          continue;
        }
        f->pending.fetch_add(1);
        AddSlice(d.id, Placement{f, d.offset, d.chunk_offset, d.length});
        continue;
      }
      f->pending.fetch_add(1);
      Work w;
      w.kind = Work::Kind::kReconcile;
      w.file = f;
      w.range = d;
      PushWork(std::move(w));
    }
    for (const repo::Hole& h : e.holes) {
      if (h.offset >= f->old_size) continue;
      f->pending.fetch_add(1);
      Work w;
      w.kind = Work::Kind::kReconcile;
      w.file = f;
      w.range = {ChunkId{}, h.offset, h.length};
      w.hole = true;
      PushWork(std::move(w));
    }
  } else {
    for (const TreeNode::Data& d : node.data) {
      f->pending.fetch_add(1);
      if (d.slice) {
        AddSlice(d.id, Placement{f, d.offset, d.chunk_offset, d.length});
      } else {
        AddPlacement(d.id, d.length, {f, d.offset});
      }
    }
  }
  FileDone(f);
}

void Engine::MakeSpecial(const TreeNode& node, const DirRef& dir) {
  const repo::TreeEntry& e = node.entry;
  if (e.type == repo::EntryType::kSocket) {
    ++result_->specials;  // a socket is made by the program that listens on it
    return;
  }
  if ((e.type == repo::EntryType::kCharDev || e.type == repo::EntryType::kBlockDev) && !root_) {
    Warn(node.path + ": device node not restored (needs root)");
    return;
  }
  if (e.type == repo::EntryType::kSymlink) {
    ++result_->symlinks;
  } else {
    ++result_->specials;
  }
  if (options_.verify_only) return;
  const char* name = e.name.c_str();
  struct stat st {};
  if (::fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      AddDamage("target", Status::InvalidArgument("a directory is in the way"), {node.path});
      return;
    }
    if (::unlinkat(dir->fd, name, 0) != 0) return Fatal(SysError("remove", node.path));
  }
  int rc = 0;
  switch (e.type) {
    case repo::EntryType::kSymlink:
      rc = ::symlinkat(e.symlink_target.c_str(), dir->fd, name);
      break;
    case repo::EntryType::kFifo:
      rc = ::mkfifoat(dir->fd, name, 0600);
      break;
    case repo::EntryType::kCharDev:
      rc = ::mknodat(dir->fd, name, S_IFCHR | 0600, makedev(e.dev_major, e.dev_minor));
      break;
    case repo::EntryType::kBlockDev:
      rc = ::mknodat(dir->fd, name, S_IFBLK | 0600, makedev(e.dev_major, e.dev_minor));
      break;
    default:
      return;
  }
  if (rc != 0) return Fatal(SysError("create", node.path));
  if (root_ && ::fchownat(dir->fd, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    Warn(node.path + ": owner not restored: " + std::strerror(errno));
  }
  if (e.type != repo::EntryType::kSymlink &&
      ::fchmodat(dir->fd, name, e.mode & 07777, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOTSUP) {
    Warn(node.path + ": mode not restored: " + std::strerror(errno));
  }
  if (!e.xattrs.empty()) {
    SetXattrsByPath("/proc/self/fd/" + std::to_string(dir->fd) + "/" + e.name, e, node.path);
  }
  timespec ts[2] = {ToTimespec(e.mtime_ns), ToTimespec(e.mtime_ns)};
  if (::utimensat(dir->fd, name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
    Warn(node.path + ": time not restored: " + std::strerror(errno));
  }
}

// --- files -------------------------------------------------------------

Status Engine::EnsureOpen(FileJob* f) {
  std::lock_guard lock(f->mu);
  if (f->fd >= 0 || options_.verify_only) return Status::OK();
  // Created with its final permission bits (cairn-restore runs with umask
  // 0), so only set-ID and sticky bits need a chmod later.
  f->fd =
      ::openat(f->dir->fd, f->OpenName().c_str(),
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->node->entry.mode & 0777);
  if (f->fd < 0) return SysError("create", f->path);
  // A sparse file is sized first: the ranges never written stay holes.
  if (!f->node->entry.holes.empty() &&
      ::ftruncate(f->fd, static_cast<off_t>(f->node->entry.size)) != 0) {
    return SysError("size", f->path);
  }
  return Status::OK();
}

Status Engine::WriteAll(size_t k, FileJob* f, std::vector<io::WriteRequest>& writes) {
  if (writes.empty()) return Status::OK();
  Status s = rings_[k]->WriteBatch(f->fd, writes);
  if (!s.ok()) return s.WithContext("write " + f->path);
  for (const auto& w : writes) written_ += w.data.size();
  return Status::OK();
}

void Engine::FileDone(FileJob* f) {
  if (f->pending.fetch_sub(1) == 1) Finalize(f);
}

void Engine::SetXattrsByPath(const std::string& proc_path, const repo::TreeEntry& e,
                             const std::string& path) {
  for (const repo::Xattr& x : e.xattrs) {
    if (::lsetxattr(proc_path.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
      Warn(path + ": xattr " + x.name + " not restored: " + std::strerror(errno));
    }
  }
}

void Engine::ApplyMetadata(int fd, const repo::TreeEntry& e, const std::string& path,
                           bool created) {
  const bool chown = root_ && (!created || e.uid != uid_ || e.gid != gid_);
  if (chown && ::fchown(fd, e.uid, e.gid) != 0) {
    Warn(path + ": owner not restored: " + std::strerror(errno));
  }
  // After fchown, which clears set-user-ID and set-group-ID bits.
  if ((!created || (e.mode & 07000) != 0) && ::fchmod(fd, e.mode & 07777) != 0) {
    Warn(path + ": mode not restored: " + std::strerror(errno));
  }
  for (const repo::Xattr& x : e.xattrs) {
    if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
      Warn(path + ": xattr " + x.name + " not restored: " + std::strerror(errno));
    }
  }
  timespec ts[2] = {ToTimespec(e.mtime_ns), ToTimespec(e.mtime_ns)};
  if (::futimens(fd, ts) != 0) Warn(path + ": time not restored: " + std::strerror(errno));
}

void Engine::Finalize(FileJob* f) {
  const repo::TreeEntry& e = f->node->entry;
  std::string final_path = f->path;
  if (aborted()) return;  // left to ~Engine, which removes the temporary
  if (!options_.verify_only) {
    Status s = EnsureOpen(f);
    if (!s.ok()) return Fatal(s);
    const bool resize = f->in_place ? f->old_size != e.size : f->damaged.load();
    if (!f->device && resize && ::ftruncate(f->fd, static_cast<off_t>(e.size)) != 0) {
      return Fatal(SysError("size", f->path));
    }
    if (!f->device) ApplyMetadata(f->fd, e, f->path, /*created=*/!f->in_place);
    ::close(f->fd);
    f->fd = -1;
    if (!f->in_place) {
      std::string final_name = f->name;
      if (f->damaged) {
        final_name += kDamagedSuffix;
        final_path += kDamagedSuffix;
      }
      if (final_name != f->OpenName() &&
          ::renameat(f->dir->fd, f->OpenName().c_str(), f->dir->fd, final_name.c_str()) != 0) {
        Status err = SysError("rename into place", final_path);
        ::unlinkat(f->dir->fd, f->OpenName().c_str(), 0);
        AddDamage("target", err, {f->path});
      }
    }
  }
  ++files_done_;
  std::lock_guard lock(mu_);
  if (e.link_group != 0) link_sources_[e.link_group] = f->damaged ? "" : final_path;
  live_.erase(f);
  delete f;
  if (live_.empty()) idle_.notify_all();
}

// --- workers -----------------------------------------------------------

void Engine::FailChunk(const FetchItem& item, const Status& s) {
  std::vector<std::string> paths;
  for (const Placement& p : item.places) {
    if (paths.empty() || paths.back() != p.file->path) paths.push_back(p.file->path);
  }
  AddDamage("chunk " + ToHex(item.id), s, std::move(paths));
  for (const Placement& p : item.places) {
    p.file->damaged = true;
    FileDone(p.file);
  }
}

// A buffer a finished batch gave back: decoding into memory already touched
// spares a page fault per 4 KiB of every chunk. The largest: the decoder
// sizes the buffer where it stands (and does not zero-fill it).
UninitBytes Engine::SpareBuffer(size_t k) {
  std::vector<UninitBytes>& spares = scratch_[k].contents;
  UninitBytes content;
  if (!spares.empty()) {
    auto largest = std::max_element(
        spares.begin(), spares.end(),
        [](const UninitBytes& a, const UninitBytes& b) { return a.capacity() < b.capacity(); });
    content = std::move(*largest);
    *largest = std::move(spares.back());
    spares.pop_back();
  }
  return content;
}

void Engine::HandleChunks(size_t k, std::span<const FetchItem> items,
                          std::span<const ByteView> records, PendingWrites* out) {
  // Runs of whole records (not deltas) are decoded together, so that their
  // IDs are checked two at a time (RecordDecoder::DecodeMany), a run ending
  // after kBatchBytes of content: the contents wait for their writes
  // anyway, and SubmitWrites keeps that much for the next batch.
  std::vector<ByteView> run;
  std::vector<ChunkId> ids;
  std::vector<UninitBytes> contents;
  std::vector<Status> results;
  for (size_t i = 0; i < items.size();) {
    size_t end = i;
    uint64_t bytes = 0;
    run.clear();
    ids.clear();
    while (end < items.size() && bytes < kBatchBytes) {
      auto h = repo::ParseRecordHeader(records[end]);
      if (!h.ok() || h->type == repo::RecordType::kDelta) break;
      run.push_back(records[end]);
      ids.push_back(items[end].id);
      bytes += h->plain_size;
      ++end;
    }
    if (end == i) {  // a delta (or a record ReadChunk will refuse): on its own
      HandleChunk(k, items[i], records[i], out);
      ++i;
      continue;
    }
    contents.resize(run.size());
    for (UninitBytes& c : contents) c = SpareBuffer(k);
    results.assign(run.size(), Status::OK());
    Status decoded = decoders_[k]->DecodeMany(run, ids, contents, results);
    for (size_t j = 0; j < run.size(); ++j) {
      const FetchItem& item = items[i + j];
      Status s = decoded.ok() ? std::move(results[j]) : decoded;
      if (s.ok() && item.length != 0)
        s = repo::CheckChunkSize(item.id, contents[j].size(), item.length);
      if (!s.ok()) {
        SecureZero(contents[j].data(), contents[j].size());
        contents[j].clear();
      }
      PlaceChunk(k, item, std::move(contents[j]), std::move(s), out);
    }
    i = end;
  }
}

void Engine::HandleChunk(size_t k, const FetchItem& item, ByteView record, PendingWrites* out) {
  VaultLink* link = links_[k].get();
  repo::RecordSource bases = [link](const ChunkId& id) { return link->FetchRecord(id); };
  UninitBytes content = SpareBuffer(k);
  const size_t max_output = item.length != 0 ? item.length : repo::kMaxRecordPlainSize;
  Status s = repo::ReadChunk(decoders_[k].get(), item.id, record, bases, max_output, &content);
  PlaceChunk(k, item, std::move(content), std::move(s), out);
}

void Engine::PlaceChunk(size_t k, const FetchItem& item, UninitBytes content, Status s,
                        PendingWrites* out) {
  VaultLink* link = links_[k].get();
  if (s.ok() && item.length != 0 && content.size() != item.length) {
    s = Status::Corruption("chunk holds " + std::to_string(content.size()) +
                           " bytes where the tree says " + std::to_string(item.length));
  }
  if (!s.ok() && !link->failure().ok()) {
    // A delta's base could not be fetched because the vault went away:
    // that is a lost vault, not a damaged chunk.
    return Fatal(s.WithContext("vault " + link->address()));
  }
  if (!s.ok()) return FailChunk(item, s);
  ++chunks_;
  for (const Placement& p : item.places) {
    if (p.chunk_offset + p.length > content.size()) {  // a slice past its group's end
      AddDamage("chunk " + ToHex(item.id),
                Status::Corruption("chunk holds " + std::to_string(content.size()) +
                                   " bytes; the tree takes a slice up to byte " +
                                   std::to_string(p.chunk_offset + p.length)),
                {p.file->path});
      p.file->damaged = true;
      FileDone(p.file);
      continue;
    }
    if (options_.verify_only || aborted()) {
      bytes_done_ += p.length;
      FileDone(p.file);
      continue;
    }
    Status w = EnsureOpen(p.file);
    if (!w.ok()) return Fatal(w);
    const ByteView bytes(content.data() + p.chunk_offset, p.length);
    AddWrites(SegmentsOf(p.file->node->entry, p.offset, p.length), bytes, 0, p.length,
              &out->requests);
    out->fds.resize(out->requests.size(), p.file->fd);
    out->done.emplace_back(p.file, p.length);
    if (out->done.size() >= kMaxQueuedFiles) SubmitWrites(k, out);  // `content` stays ours
  }
  if (options_.verify_only || aborted()) return;
  out->contents.push_back(std::move(content));  // the views above stay valid
}

void Engine::SubmitWrites(size_t k, PendingWrites* out) {
  if (!out->requests.empty() && !aborted()) {
    Status s = rings_[k]->WriteBatch(out->fds, out->requests);
    if (!s.ok()) {
      // Name the file the first failed write belongs to.
      for (size_t i = 0; i < out->requests.size(); ++i) {
        if (!out->requests[i].status.ok()) {
          for (const auto& [f, n] : out->done) {
            if (f->fd == out->fds[i]) {
              s = out->requests[i].status.WithContext("write " + f->path);
              break;
            }
          }
          break;
        }
      }
      Fatal(s);
    } else {
      for (const auto& w : out->requests) written_ += w.data.size();
    }
  }
  for (const auto& [f, n] : out->done) {
    bytes_done_ += n;
    FileDone(f);
  }
  // Keep the buffers for the next batch, as much capacity as one batch needs.
  std::vector<UninitBytes>& spares = scratch_[k].contents;
  size_t kept = 0;
  for (const UninitBytes& b : spares) kept += b.capacity();
  for (UninitBytes& b : out->contents) {
    if (kept + b.capacity() > kBatchBytes) continue;
    kept += b.capacity();
    spares.push_back(std::move(b));
  }
  *out = PendingWrites{};
}

void Engine::ProcessFetch(size_t k, Work& work, Result<VaultLink::Ticket> ticket) {
  VaultLink* link = links_[k].get();
  PendingWrites writes;
  size_t done = 0;
  if (ticket.ok()) {
    auto records = link->AwaitRecords(*ticket);
    if (records.ok()) {
      done = std::min(records->records.size(), work.items.size());
      HandleChunks(k, std::span<const FetchItem>(work.items).first(done),
                   std::span<const ByteView>(records->records).first(done), &writes);
    } else if (link->failure().ok()) {
      FailChunk(work.items[0], records.status());  // the vault refused the first ID
      done = 1;
    } else {
      Fatal(records.status().WithContext("vault " + link->address()));
      return SubmitWrites(k, &writes);
    }
  }
  if (done == work.items.size()) return SubmitWrites(k, &writes);
  std::vector<ChunkId> rest;
  for (size_t i = done; i < work.items.size(); ++i) rest.push_back(work.items[i].id);
  auto fetched =
      ticket.ok() ? link->FetchRecords(rest) : Result<std::vector<Result<Bytes>>>(ticket.status());
  if (!fetched.ok()) {
    Fatal(fetched.status().WithContext("vault " + link->address()));
    return SubmitWrites(k, &writes);
  }
  for (size_t i = 0; i < rest.size(); ++i) {
    const FetchItem& item = work.items[done + i];
    if ((*fetched)[i].ok()) {
      HandleChunk(k, item, *(*fetched)[i], &writes);
    } else {
      FailChunk(item, (*fetched)[i].status());
    }
  }
  SubmitWrites(k, &writes);
}

void Engine::Reconcile(size_t k, Work& work) {
  FileJob* f = work.file;
  const TreeNode::Data& r = work.range;
  auto finish = [&] { FileDone(f); };
  auto fail = [&](const Status& s) {
    AddDamage(work.hole ? "hole" : "chunk " + ToHex(r.id), s, {f->path});
    f->damaged = true;
    finish();
  };
  // The target's current bytes where the chunk goes (for a hole: the range).
  const std::vector<Segment> segs = work.hole ? std::vector<Segment>{{r.offset, 0, r.length}}
                                              : SegmentsOf(f->node->entry, r.offset, r.length);
  Scratch& scratch = scratch_[k];
  Bytes& local = scratch.local;
  local.clear();
  if (r.offset + kReconcileAhead < f->old_size) {
    io::WillNeed(f->fd, r.offset + kReconcileAhead, r.length);
  }
  for (const Segment& seg : segs) {
    if (seg.file_offset >= f->old_size) break;
    const uint64_t n = std::min(seg.length, f->old_size - seg.file_offset);
    const size_t at = local.size();
    local.resize(at + n);
    auto got = io::PreadFull(f->fd, seg.file_offset, MutableByteView(&local[at], n), f->path);
    if (!got.ok()) return Fatal(got.status());
    local.resize(at + *got);
    if (*got < seg.length) break;
  }
  if (work.hole) {
    if (!chunk::IsAllZero(local)) {
      // Punch the range out; a device (or a file system without punching)
      // gets zeros written.
      if (f->device ||
          ::fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(r.offset), static_cast<off_t>(local.size())) != 0) {
        Bytes zeros(local.size(), 0);
        std::vector<io::WriteRequest> writes;
        AddWrites(segs, zeros, 0, zeros.size(), &writes);
        Status s = WriteAll(k, f, writes);
        if (!s.ok()) return Fatal(s);
      } else {
        written_ += local.size();
      }
    } else {
      unchanged_ += local.size();
    }
    bytes_done_ += r.length;
    return finish();
  }
  // The ID of the target's bytes: whether they are the chunk already, and
  // otherwise (even at another length: the last extent of a resized image)
  // which earlier version the vault may hold a delta chain from.
  const ChunkId local_id = hashers_[k]->Compute(local);
  if (local.size() == r.length && local_id == r.id) {
    unchanged_ += r.length;
    bytes_done_ += r.length;
    return finish();
  }
  VaultLink* link = links_[k].get();
  Bytes& content = scratch.rebuilt;
  content.clear();
  bool verified = false;  // content is checked against r.id already
  // Zeros where the chunk goes (a hole in the old image: the extent was
  // empty when the old version was backed up) hold nothing a delta could
  // use. No stored chain starts from them, and a delta against their
  // signature would carry every byte of the chunk, uncompressed, after the
  // vault had opened the record and searched it: the record itself is no
  // larger, and the vault only reads it.
  const bool worth_a_delta = local.size() >= kBlock && !chunk::IsAllZero(local);
  if (worth_a_delta) {
    // First, whether the vault holds the deltas from these very bytes (an
    // earlier version of the extent) to the chunk: then nothing is
    // computed on either side. A result that is not the chunk (the bytes
    // were not what their ID says, or a damaged delta) is not written: the
    // signature below is asked for instead.
    auto chained = link->GetDelta(r.id, {}, local_id);
    if (!chained.ok() && !link->failure().ok()) {
      return Fatal(chained.status().WithContext("vault " + link->address()));
    }
    if (chained.ok() && chained->kind == proto::DeltaKind::kDeltas) {
      // Each delta applies to the last one's result: content and spare
      // take turns, the first applying to the target's bytes.
      Status applied;
      for (size_t i = 0; i < chained->deltas.size() && applied.ok(); ++i) {
        const ByteView basis = i == 0 ? ByteView(local) : ByteView(scratch.spare);
        applied = chunk::ApplyDelta(basis, chained->deltas[i], r.length, &content);
        if (i + 1 < chained->deltas.size()) std::swap(content, scratch.spare);
      }
      if (applied.ok() && content.size() == r.length && hashers_[k]->Compute(content) == r.id) {
        deltas_ += chained->deltas.size();
        verified = true;
      } else {
        content.clear();
      }
    }
  }
  if (!verified && worth_a_delta) {
    auto sig = chunk::ComputeSignature(local, kBlock);
    if (!sig.ok()) return Fatal(sig.status());
    auto reply = link->GetDelta(r.id, *sig);
    if (!reply.ok()) {
      if (!link->failure().ok()) {
        return Fatal(reply.status().WithContext("vault " + link->address()));
      }
      return fail(reply.status());
    }
    if (reply->kind == proto::DeltaKind::kDelta) {
      Status applied = chunk::ApplyDelta(local, reply->data, r.length, &content);
      if (!applied.ok()) return fail(applied);
      ++deltas_;
    } else {
      content = std::move(reply->data);
    }
  } else if (!verified) {
    auto record = link->FetchRecord(r.id);
    if (!record.ok()) {
      if (!link->failure().ok()) {
        return Fatal(record.status().WithContext("vault " + link->address()));
      }
      return fail(record.status());
    }
    repo::RecordSource bases = [link](const ChunkId& id) { return link->FetchRecord(id); };
    Status s = repo::ReadChunk(decoders_[k].get(), r.id, *record, bases, r.length, &content);
    if (!s.ok()) return fail(s);
  }
  // The vault is trusted for nothing: the result must be the chunk.
  if (!verified && (content.size() != r.length || hashers_[k]->Compute(content) != r.id)) {
    return fail(Status::Corruption("rebuilt content does not match its chunk ID"));
  }
  ++chunks_;
  if (!options_.verify_only) {
    // Write back only the blocks that differ, as runs.
    std::vector<io::WriteRequest> writes;
    for (const auto& [begin, end] : DifferingBlocks(content, local, kBlock)) {
      AddWrites(segs, content, begin, end, &writes);
    }
    Status s = WriteAll(k, f, writes);
    if (!s.ok()) return Fatal(s);
  }
  bytes_done_ += r.length;
  finish();
}

void Engine::WorkerMain(size_t k) {
  auto ring = io::IoRing::Create();
  if (!ring.ok()) return Fatal(ring.status());
  rings_[k] = std::move(*ring);
  VaultLink* link = links_[k].get();
  std::optional<Work> cur = queue_.Pop();
  Result<VaultLink::Ticket> ticket = Status::Unavailable("no request");
  if (cur && cur->kind == Work::Kind::kFetch) {
    std::vector<ChunkId> ids;
    for (const auto& item : cur->items) ids.push_back(item.id);
    ticket = link->BeginGetRecords(ids);
  }
  while (cur && !aborted()) {
    // Keep the next request in flight while this reply is processed.
    std::optional<Work> next = queue_.Pop();
    Result<VaultLink::Ticket> next_ticket = Status::Unavailable("no request");
    if (next && next->kind == Work::Kind::kFetch) {
      std::vector<ChunkId> ids;
      for (const auto& item : next->items) ids.push_back(item.id);
      next_ticket = link->BeginGetRecords(ids);
    }
    if (cur->kind == Work::Kind::kFetch) {
      ProcessFetch(k, *cur, std::move(ticket));
    } else {
      Reconcile(k, *cur);
    }
    cur = std::move(next);
    ticket = std::move(next_ticket);
  }
}

// --- the whole restore -------------------------------------------------

void Engine::FinishTree() {
  if (options_.verify_only || image_target_) {
    for (uint32_t i : hardlinks_) {
      const TreeNode& node = tree_->nodes[i];
      if (!link_sources_.contains(node.entry.link_group)) {
        Warn(node.path + ": hard link to " + node.entry.link_path +
             ", which is not part of this restore; skipped");
      } else {
        ++result_->hardlinks;
      }
    }
    return;
  }
  for (uint32_t i : hardlinks_) {
    const TreeNode& node = tree_->nodes[i];
    auto it = link_sources_.find(node.entry.link_group);
    if (it == link_sources_.end()) {
      Warn(node.path + ": hard link to " + node.entry.link_path +
           ", which is not part of this restore; skipped");
      continue;
    }
    if (it->second.empty()) {
      AddDamage("hard link", Status::Corruption("its first name was not restored whole"),
                {node.path});
      continue;
    }
    auto src = OpenBeneath(root_dir_->fd, Dirname(it->second));
    auto dst = OpenBeneath(root_dir_->fd, Dirname(node.path));
    Status s = !src.ok() ? src.status() : dst.status();
    if (s.ok()) {
      const std::string name = node.entry.name;
      struct stat st {};
      if (::fstatat(*dst, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        ::unlinkat(*dst, name.c_str(), 0);
      }
      if (::linkat(*src, Basename(it->second).c_str(), *dst, name.c_str(), 0) != 0) {
        s = SysError("link", node.path);
      } else {
        ++result_->hardlinks;
      }
    }
    if (src.ok()) ::close(*src);
    if (dst.ok()) ::close(*dst);
    if (!s.ok()) AddDamage("target", s, {node.path});
  }
  ApplyDirMetadata();
}

void Engine::ApplyDirMetadata() {
  // Directory metadata last, children before parents, so that creating the
  // contents did not change their times and a read-only directory was
  // writable while it was filled: the deepest directories first, one depth
  // at a time, each depth spread over the threads.
  std::vector<std::vector<uint32_t>> by_depth;
  for (uint32_t i : dirs_) {
    const std::string& path = tree_->nodes[i].path;
    const size_t depth = std::count(path.begin(), path.end(), '/');
    if (by_depth.size() <= depth) by_depth.resize(depth + 1);
    by_depth[depth].push_back(i);
  }
  std::reverse(by_depth.begin(), by_depth.end());
  auto apply = [this](uint32_t i) {
    const TreeNode& node = tree_->nodes[i];
    auto fd = OpenBeneath(root_dir_->fd, node.path);
    if (!fd.ok()) {
      Warn(node.path + ": directory metadata not restored: " + fd.status().message());
      return;
    }
    ApplyMetadata(*fd, node.entry, node.path);
    ::close(*fd);
  };
  const size_t threads =
      dirs_.size() < kParallelDirs
          ? 1
          : std::min<size_t>(Workers(), std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::atomic<size_t>> taken(by_depth.size());  // per depth: the next to take
  for (auto& t : taken) t.store(0);
  std::barrier depth_done(static_cast<ptrdiff_t>(threads));
  auto run = [&] {
    for (size_t d = 0; d < by_depth.size(); ++d) {
      for (size_t k; (k = taken[d].fetch_add(1)) < by_depth[d].size();) apply(by_depth[d][k]);
      depth_done.arrive_and_wait();
    }
  };
  std::vector<std::thread> helpers =
      StartThreads("a directory metadata thread", threads - 1, [&run](size_t) { run(); });
  // One thread fewer at every depth for each that could not be started.
  for (size_t t = helpers.size() + 1; t < threads; ++t) depth_done.arrive_and_drop();
  run();
  for (auto& t : helpers) t.join();
}

Status Engine::Run(const std::string& wanted) {
  Status s = Restore(wanted);
  bool reported;
  {
    std::lock_guard lock(mu_);
    reported = !fatal_.ok();
  }
  // A vault that went away before the workers started (the listing, the
  // trees) is named as one lost later is; the text says nothing was restored.
  return s.ok() || reported ? s : LostVault(s);
}

Status Engine::Restore(const std::string& wanted) {
  std::vector<std::string> addresses =
      options_.vaults.empty() ? state_.config.vault_addresses : options_.vaults;
  VaultLink::Options link_options;
  link_options.deadline = options_.deadline;
  // The first link picks the vault; the others go to the same one.
  CAIRN_ASSIGN_OR_RETURN(auto first, VaultLink::Open(state_, addresses, link_options));
  result_->vault = first->address();
  links_.push_back(std::move(first));
  CAIRN_ASSIGN_OR_RETURN(auto list, links_[0]->ListSnapshots());
  SnapshotFilter filter = options_.filter;
  if (options_.in_place && filter.prefer_path.empty()) filter.prefer_path = options_.target;
  CAIRN_ASSIGN_OR_RETURN(proto::SnapshotInfo snap, FindSnapshot(list, wanted, filter));
  result_->snapshot_id = snap.id;
  if (options_.in_place && !options_.force) CAIRN_RETURN_IF_ERROR(CheckSeries(snap, list));
  // Who restores what to where goes on the vault's audit trail.
  proto::RestoreBegin begin;
  begin.purpose = options_.verify_only ? "verify" : "restore";
  begin.snapshot_id = snap.id;
  if (!options_.verify_only) {
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(options_.target, ec);
    begin.target = ec ? options_.target : absolute.lexically_normal().string();
  }
  begin.in_place = options_.in_place;
  CAIRN_RETURN_IF_ERROR(links_[0]->BeginRestore(begin));
  begin.continuation = true;

  // The other connections open (TLS) while the first loads the tree,
  // instead of one after another once it has; they join the restore (its
  // audit entry) only once there is something to restore.
  std::vector<std::unique_ptr<VaultLink>> more_links;
  std::vector<std::unique_ptr<repo::RecordDecoder>> more_decoders;
  Status more_status;
  std::atomic<bool> give_up{false};  // the restore failed before it needed them
  // Where the system will not start the thread that opens them, the
  // restore runs on the first connection alone.
  Result<std::thread> started_opener = StartThread("the restore's connection thread", [&] {
    for (size_t k = 1; k < Workers() && !give_up.load(); ++k) {
      auto link = VaultLink::Open(state_, {result_->vault}, link_options);
      auto d = link.ok() ? repo::RecordDecoder::Create(state_.keys)
                         : Result<std::unique_ptr<repo::RecordDecoder>>(link.status());
      if (!d.ok()) {
        more_status = d.status();
        return;
      }
      more_links.push_back(std::move(*link));
      more_decoders.push_back(std::move(*d));
    }
  });
  std::thread opener = started_opener.ok() ? std::move(*started_opener) : std::thread();
  // On an early return, the failure is reported after at most the dial
  // under way, not after every remaining one (each up to its timeout).
  struct Joiner {
    std::thread& t;
    std::atomic<bool>& give_up;
    ~Joiner() {
      give_up.store(true);
      if (t.joinable()) t.join();
    }
  } joiner{opener, give_up};

  CAIRN_ASSIGN_OR_RETURN(auto decoder, repo::RecordDecoder::Create(state_.keys));
  CAIRN_ASSIGN_OR_RETURN(SnapshotTree tree,
                         LoadTree(links_[0].get(), decoder.get(), snap.root_tree));
  tree_ = std::make_unique<SnapshotTree>(std::move(tree));
  for (const TreeProblem& p : tree_->problems) {
    AddDamage("tree object " + ToHex(p.id), p.status, {p.path.empty() ? "/" : p.path});
  }
  Select(*tree_);
  if (!options_.includes.empty() && files_total_ == 0 &&
      std::none_of(needed_.begin(), needed_.end(), [](uint8_t n) { return n != 0; })) {
    return Status::NotFound("nothing in snapshot " + snap.id + " matches the --include patterns");
  }
  CAIRN_RETURN_IF_ERROR(PrepareTarget(snap));

  decoders_.push_back(std::move(decoder));
  if (opener.joinable()) opener.join();
  CAIRN_RETURN_IF_ERROR(more_status);
  const size_t links = 1 + more_links.size();
  for (size_t k = 0; k < links; ++k) {
    if (k > 0) {
      CAIRN_RETURN_IF_ERROR(more_links[k - 1]->BeginRestore(begin));
      links_.push_back(std::move(more_links[k - 1]));
      decoders_.push_back(std::move(more_decoders[k - 1]));
    }
    hashers_.push_back(std::make_unique<crypto::ChunkIdHasher>(state_.keys.id_key));
  }
  rings_.resize(links);  // each worker makes its own (one owner thread per ring)
  scratch_.resize(links);
  fetching_ = true;
  // One worker per connection; a worker that cannot be started leaves its
  // connection idle (the others share the work), but one is needed.
  Status no_workers;
  std::vector<std::thread> workers = StartThreads(
      "the restore's worker threads", links, [this](size_t k) { WorkerMain(k); }, &no_workers);
  if (workers.empty()) return no_workers;

  if (image_target_) {
    const TreeNode& node = tree_->nodes[image_node_];
    struct stat st {};
    const std::string name = Basename(options_.target);
    image_to_device_ =
        !options_.verify_only && ::stat(options_.target.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    if (image_to_device_) {
      int fd = ::open(options_.target.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) {
        Fatal(SysError("open", options_.target));
      } else {
        PlanFile(node, root_dir_, name, true, fd);
      }
    } else {
      PlanFile(node, root_dir_, name, false, -1);
    }
  } else {
    plan_hasher_ = std::make_unique<crypto::ChunkIdHasher>(state_.keys.id_key);
    CountSlices();
    PlanChildren(tree_->top, root_dir_);
    // Groups some of whose slices were not planned (a file that could not
    // be created): fetched for the slices that were.
    for (auto& [id, g] : groups_) {
      if (!g.item.places.empty()) AddItem(std::move(g.item), g.end);
    }
    groups_.clear();
  }
  FlushBatch();
  queue_.Close();
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (idle_.wait_for(lock, std::chrono::milliseconds(20),
                         [&] { return live_.empty() || aborted(); })) {
        break;
      }
    }
    MaybeProgress();
  }
  for (auto& t : workers) t.join();
  MaybeProgress(true);
  {
    std::lock_guard lock(mu_);
    if (fatal_.code() == StatusCode::kNoSpace) return TargetFull(fatal_);
    if (!fatal_.ok()) return LostVault(fatal_);
  }
  FinishTree();

  for (const auto& l : links_) {
    result_->bytes_received += l->bytes_received();
    result_->bytes_sent += l->bytes_sent();
  }
  result_->bytes = bytes_done_;
  result_->chunks = chunks_;
  result_->bytes_written = written_;
  result_->bytes_unchanged = unchanged_;
  result_->chunks_delta = deltas_;
  result_->seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  if (options_.keep_tree) result_->tree = std::shared_ptr<const SnapshotTree>(std::move(tree_));
  return Status::OK();
}

}  // namespace

std::vector<std::pair<uint64_t, uint64_t>> DifferingBlocks(ByteView want, ByteView have,
                                                           uint32_t block) {
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  for (uint64_t b = 0; b < want.size(); b += block) {
    const uint64_t n = std::min<uint64_t>(block, want.size() - b);
    const bool same = b + n <= have.size() && std::memcmp(&want[b], &have[b], n) == 0;
    if (same) continue;
    if (!runs.empty() && runs.back().second == b) {
      runs.back().second = b + n;
    } else {
      runs.emplace_back(b, b + n);
    }
  }
  return runs;
}

bool MatchesFilter(const proto::SnapshotInfo& snap, const SnapshotFilter& filter) {
  if (!filter.host.empty() && snap.hostname != filter.host) return false;
  for (const std::string& p : filter.paths) {
    if (std::find(snap.paths.begin(), snap.paths.end(), p) == snap.paths.end()) return false;
  }
  return true;
}

Result<proto::SnapshotInfo> FindSnapshot(const std::vector<proto::SnapshotInfo>& list,
                                         std::string_view wanted, const SnapshotFilter& filter) {
  if (list.empty()) return Status::NotFound("the vault holds no snapshot for this department");
  if (wanted == "latest") {
    const proto::SnapshotInfo* newest = nullptr;
    const proto::SnapshotInfo* preferred = nullptr;
    for (const auto& s : list) {  // newest first
      if (!MatchesFilter(s, filter)) continue;
      if (newest == nullptr) newest = &s;
      if (preferred == nullptr && !filter.prefer_path.empty() &&
          std::find(s.paths.begin(), s.paths.end(), filter.prefer_path) != s.paths.end()) {
        preferred = &s;
      }
    }
    if (preferred != nullptr) return *preferred;
    if (newest != nullptr) return *newest;
    std::string series = filter.host.empty() ? std::string("any host") : "host " + filter.host;
    for (const auto& p : filter.paths) series += ", path " + p;
    std::set<std::string> hosts;
    for (const auto& s : list) hosts.insert(s.hostname);
    std::string others;
    for (const auto& h : hosts) others += (others.empty() ? "" : ", ") + h;
    return Status::NotFound("no snapshot of " + series + " (the department has snapshots of " +
                            others + "; name one with --host and --path, or by its ID)");
  }
  const proto::SnapshotInfo* found = nullptr;
  for (const auto& s : list) {
    if (s.id == wanted) return s;
    if (!wanted.empty() && s.id.starts_with(wanted)) {
      if (found != nullptr) {
        return Status::InvalidArgument("snapshot prefix " + std::string(wanted) +
                                       " is ambiguous (" + found->id + ", " + s.id + ", ...)");
      }
      found = &s;
    }
  }
  if (found == nullptr) {
    return Status::NotFound("no snapshot " + std::string(wanted) +
                            " (see cairn-restore snapshots)");
  }
  return *found;
}

Result<uint64_t> RemoveRestoreLeftovers(const std::string& dir) {
  uint64_t removed = 0;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(
      dir, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec) return Status::IOError("scan " + dir + ": " + ec.message());
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IOError("scan " + dir + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (!name.starts_with(kTempPrefix)) continue;
    // Exactly ".cairn-restore-<digits>-<digits>", a regular file, not a link.
    const std::string rest = name.substr(std::strlen(kTempPrefix));
    const auto dash = rest.find('-');
    auto digits = [](std::string_view v) {
      return !v.empty() &&
             std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (dash == std::string::npos || !digits(std::string_view(rest).substr(0, dash)) ||
        !digits(std::string_view(rest).substr(dash + 1))) {
      continue;
    }
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    if (std::filesystem::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

Result<RestoreResult> Restore(const client::Identity& state, const std::string& snapshot,
                              const RestoreOptions& options) {
  RestoreResult result;
  Status s;
  {
    Engine engine(state, options, &result);
    s = engine.Run(snapshot);
  }
  if (!s.ok()) return s;
  return result;
}

}  // namespace cairn::restore
