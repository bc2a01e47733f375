#include "agent/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "agent/pit.h"
#include "lib/base/errno.h"
#include "lib/base/thread.h"
#include "lib/io/file_io.h"

namespace cairn::agent {

const std::string& OwnerNames::User(uint32_t uid) {
  auto it = users_.find(uid);
  if (it != users_.end()) return it->second;
  std::string name;
  struct passwd pw, *out = nullptr;
  std::vector<char> buf(4096);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &out) == 0 && out != nullptr) {
    name = out->pw_name;
  }
  if (name.size() > repo::kMaxOwnerNameLen) name.clear();
  return users_.emplace(uid, std::move(name)).first->second;
}

const std::string& OwnerNames::Group(uint32_t gid) {
  auto it = groups_.find(gid);
  if (it != groups_.end()) return it->second;
  std::string name;
  struct group gr, *out = nullptr;
  std::vector<char> buf(16384);
  if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &out) == 0 && out != nullptr) {
    name = out->gr_name;
  }
  if (name.size() > repo::kMaxOwnerNameLen) name.clear();
  return groups_.emplace(gid, std::move(name)).first->second;
}

bool EntryTypeOf(mode_t mode, repo::EntryType* type) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      *type = repo::EntryType::kFile;
      return true;
    case S_IFDIR:
      *type = repo::EntryType::kDir;
      return true;
    case S_IFLNK:
      *type = repo::EntryType::kSymlink;
      return true;
    case S_IFIFO:
      *type = repo::EntryType::kFifo;
      return true;
    case S_IFCHR:
      *type = repo::EntryType::kCharDev;
      return true;
    case S_IFBLK:
      *type = repo::EntryType::kBlockDev;
      return true;
    case S_IFSOCK:
      *type = repo::EntryType::kSocket;
      return true;
    default:
      return false;
  }
}

Status ReadEntryMetadata(int dirfd, const std::string& name, const std::string& path,
                         const struct stat& st, OwnerNames* owners, repo::TreeEntry* e) {
  if (!repo::IsValidEntryName(name)) {
    return Status::InvalidArgument(path + ": name cannot be stored");
  }
  e->name = name;
  if (!EntryTypeOf(st.st_mode, &e->type)) {
    return Status::InvalidArgument(path + ": unknown file type");
  }
  e->mode = st.st_mode & 07777;
  e->uid = st.st_uid;
  e->gid = st.st_gid;
  e->user = owners->User(st.st_uid);
  e->group = owners->Group(st.st_gid);
  e->mtime_ns = ToNanos(st.st_mtim);
  if (e->type == repo::EntryType::kSymlink) {
    std::string target(repo::kMaxSymlinkTargetLen + 1, '\0');
    ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoToStatus(errno, "readlink " + path);
    if (n == 0 || static_cast<size_t>(n) > repo::kMaxSymlinkTargetLen) {
      return Status::InvalidArgument(path + ": symlink target cannot be stored");
    }
    target.resize(static_cast<size_t>(n));
    e->symlink_target = std::move(target);
  }
  if (e->type == repo::EntryType::kCharDev || e->type == repo::EntryType::kBlockDev) {
    e->dev_major = major(st.st_rdev);
    e->dev_minor = minor(st.st_rdev);
  }
  CAIRN_ASSIGN_OR_RETURN(e->xattrs, ReadXattrs(path));
  return Status::OK();
}

Result<std::vector<ListedEntry>> ListEntries(int dirfd, const std::string& path,
                                             const std::string& rel,
                                             const std::vector<std::string>& excludes) {
  int fd = ::dup(dirfd);
  if (fd < 0) return ErrnoToStatus(errno, "dup " + path);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "opendir " + path);
  }
  ::rewinddir(dir);
  std::vector<std::pair<ino_t, std::string>> found;
  while (true) {
    errno = 0;
    struct dirent* d = ::readdir(dir);
    if (d == nullptr) {
      int err = errno;
      ::closedir(dir);
      if (err != 0) return ErrnoToStatus(err, "readdir " + path);
      break;
    }
    std::string_view n(d->d_name);
    if (n == "." || n == "..") continue;
    if (!excludes.empty() && IsExcluded(excludes, JoinRel(rel, n))) continue;
    found.emplace_back(d->d_ino, n);
  }
  std::sort(found.begin(), found.end());
  std::vector<ListedEntry> entries(found.size());
  for (size_t i = 0; i < found.size(); ++i) {
    ListedEntry& e = entries[i];
    e.name = std::move(found[i].second);
    if (::fstatat(dirfd, e.name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) e.error = errno;
  }
  std::sort(entries.begin(), entries.end(),
            [](const ListedEntry& a, const ListedEntry& b) { return a.name < b.name; });
  return entries;
}

Result<std::vector<repo::Xattr>> ReadXattrs(const std::string& path) {
  std::vector<repo::Xattr> out;
  std::vector<char> list;
  while (true) {
    ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP || errno == ENOSYS) return out;
      return ErrnoToStatus(errno, "llistxattr " + path);
    }
    if (n == 0) return out;
    list.resize(static_cast<size_t>(n));
    n = ::llistxattr(path.c_str(), list.data(), list.size());
    if (n < 0 && errno == ERANGE) continue;  // grew meanwhile
    if (n < 0) return ErrnoToStatus(errno, "llistxattr " + path);
    list.resize(static_cast<size_t>(n));
    break;
  }
  size_t pos = 0;
  while (pos < list.size()) {
    std::string name(list.data() + pos);
    pos += name.size() + 1;
    if (name.empty() || name.size() > repo::kMaxXattrNameLen) continue;
    Bytes value;
    while (true) {
      ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (n < 0) break;
      value.resize(static_cast<size_t>(n));
      if (n == 0) break;
      n = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (n < 0 && errno == ERANGE) continue;
      if (n < 0) {
        value.clear();
        break;
      }
      value.resize(static_cast<size_t>(n));
      break;
    }
    if (value.size() > repo::kMaxXattrValueLen) continue;
    out.push_back({std::move(name), std::move(value)});
  }
  std::sort(out.begin(), out.end(),
            [](const repo::Xattr& a, const repo::Xattr& b) { return a.name < b.name; });
  out.erase(
      std::unique(out.begin(), out.end(),
                  [](const repo::Xattr& a, const repo::Xattr& b) { return a.name == b.name; }),
      out.end());
  return out;
}

Result<std::vector<repo::Hole>> FindHoles(int fd, uint64_t size, const std::string& path) {
  std::vector<repo::Hole> holes;
  off_t pos = 0;
  const off_t end = static_cast<off_t>(size);
  while (pos < end) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {  // no data from pos on: the rest is a hole
        holes.push_back({static_cast<uint64_t>(pos), static_cast<uint64_t>(end - pos)});
        break;
      }
      if (errno == EINVAL || errno == ENOTSUP) return std::vector<repo::Hole>();
      return ErrnoToStatus(errno, "lseek SEEK_DATA " + path);
    }
    if (data >= end) {
      holes.push_back({static_cast<uint64_t>(pos), static_cast<uint64_t>(end - pos)});
      break;
    }
    if (data > pos)
      holes.push_back({static_cast<uint64_t>(pos), static_cast<uint64_t>(data - pos)});
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return ErrnoToStatus(errno, "lseek SEEK_HOLE " + path);
    pos = hole;
  }
  ::lseek(fd, 0, SEEK_SET);
  return holes;
}

bool IsExcluded(const std::vector<std::string>& patterns, std::string_view relative_path) {
  if (patterns.empty()) return false;
  const std::string rel(relative_path);
  const size_t slash = rel.rfind('/');
  const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  for (const std::string& p : patterns) {
    if (::fnmatch(p.c_str(), rel.c_str(), 0) == 0) return true;
    if (::fnmatch(p.c_str(), base.c_str(), 0) == 0) return true;
  }
  return false;
}

bool DepthFirstLess(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    if (a[i] == '/') return true;
    if (b[i] == '/') return false;
    return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir == "/" ? "" : dir);
  out += '/';
  out += name;
  return out;
}

std::string JoinRel(std::string_view rel, std::string_view name) {
  if (rel.empty()) return std::string(name);
  std::string out(rel);
  out += '/';
  out += name;
  return out;
}

struct StatAhead::State {
  struct Dir {
    std::string path;  // to open
    std::string rel;   // relative to the root, for the exclude patterns
    dev_t dev;         // the root's file system
  };
  struct DepthFirst {
    bool operator()(const std::string& a, const std::string& b) const {
      return DepthFirstLess(a, b);
    }
  };

  explicit State(Options o) : options(std::move(o)) {}

  // Gives up what comes before `order` in the walk. Under mu.
  void Pass(const std::string& order) {
    queue.erase(queue.begin(), queue.lower_bound(order));
    for (auto it = done.begin(); it != done.end() && DepthFirstLess(it->first, order);) {
      if (it->second.has_value()) taken += it->second->entries.size();
      it = done.erase(it);
    }
  }

  const Options options;
  std::mutex mu;
  std::condition_variable work_cv;  // the walk's threads wait here
  std::condition_variable take_cv;  // the scanner waits here
  // By the scanner's path (the walk's order): directories to read, those
  // being read, and those read (nullopt: unreadable).
  std::map<std::string, Dir, DepthFirst> queue;
  std::set<std::string, DepthFirst> reading;
  std::map<std::string, std::optional<Listing>, DepthFirst> done;
  std::string demand;   // the directory the scanner waits for
  uint64_t listed = 0;  // entries read
  uint64_t taken = 0;   // entries taken or given up
  bool paused = false;  // a window ahead; until half of it is taken
  bool stop = false;
  std::vector<std::thread> threads;
};

StatAhead::StatAhead(Options options) : state_(std::make_unique<State>(std::move(options))) {
  const unsigned n = std::max(1u, state_->options.threads);
  // Fewer when the system will not start them all; none at all: running().
  state_->threads = StartThreads("a stat-ahead thread", n, [this](size_t) { Main(); });
}

bool StatAhead::running() const { return !state_->threads.empty(); }

StatAhead::~StatAhead() {
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  state_->work_cv.notify_all();
  for (std::thread& t : state_->threads) t.join();
}

void StatAhead::AddRoot(const std::string& path, const std::string& order, dev_t dev) {
  {
    std::lock_guard lock(state_->mu);
    state_->queue.emplace(order, State::Dir{path, "", dev});
  }
  state_->work_cv.notify_one();
}

std::optional<StatAhead::Listing> StatAhead::Take(const std::string& order) {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  s.Pass(order);
  while (true) {
    if (auto it = s.done.find(order); it != s.done.end()) {
      std::optional<Listing> listing = std::move(it->second);
      s.done.erase(it);
      s.demand.clear();
      if (listing.has_value()) s.taken += listing->entries.size();
      // A paused walk goes on when half its window is taken: the threads
      // wake for a run of directories, not for each one.
      const bool resume = s.paused && s.listed < s.taken + s.options.window / 2;
      if (resume) s.paused = false;
      lock.unlock();
      if (resume) s.work_cv.notify_all();
      return listing;
    }
    if (!s.queue.contains(order) && !s.reading.contains(order)) {
      s.demand.clear();
      return std::nullopt;
    }
    s.demand = order;
    s.work_cv.notify_one();  // past the window, it is read now
    s.take_cv.wait(lock);
  }
}

void StatAhead::Main() {
  State& s = *state_;
  std::unique_lock lock(s.mu);
  while (true) {
    auto next = s.queue.end();
    s.work_cv.wait(lock, [&] {
      if (s.stop) return true;
      if (!s.demand.empty()) next = s.queue.find(s.demand);
      if (s.listed >= s.taken + s.options.window) s.paused = true;
      if (next == s.queue.end() && !s.queue.empty() && !s.paused) next = s.queue.begin();
      return next != s.queue.end();
    });
    if (s.stop) return;
    const std::string order = next->first;
    const State::Dir dir = std::move(next->second);
    s.queue.erase(next);
    s.reading.insert(order);
    lock.unlock();

    std::optional<Listing> listing;
    std::vector<std::pair<std::string, State::Dir>> subdirs;
    io::UniqueFd fd(io::OpenNoSymlinks(AT_FDCWD, dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat self;
    if (fd.valid() && ::fstat(fd.get(), &self) == 0) {
      Result<std::vector<ListedEntry>> entries =
          ListEntries(fd.get(), order, dir.rel, s.options.excludes);
      if (entries.ok()) {
        listing = Listing{self.st_dev, self.st_ino, std::move(entries).value()};
        for (const ListedEntry& e : listing->entries) {
          if (e.error != 0 || !S_ISDIR(e.st.st_mode)) continue;
          if ((!s.options.cross_fs && e.st.st_dev != dir.dev) || IsPitSnapshot(e.name, e.st)) {
            continue;
          }
          subdirs.push_back(
              {JoinPath(order, e.name),
               State::Dir{JoinPath(dir.path, e.name), JoinRel(dir.rel, e.name), dir.dev}});
        }
      }
    }
    fd = io::UniqueFd();

    lock.lock();
    s.reading.erase(order);
    if (listing.has_value()) s.listed += listing->entries.size();
    const bool wanted = order == s.demand;
    s.done.emplace(order, std::move(listing));
    for (auto& [sub_order, sub] : subdirs) s.queue.emplace(std::move(sub_order), std::move(sub));
    if (wanted) s.take_cv.notify_one();
    if (subdirs.size() > 1) s.work_cv.notify_all();
    if (subdirs.size() == 1) s.work_cv.notify_one();
  }
}

}  // namespace cairn::agent
