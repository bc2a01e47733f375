// File-system primitives of the backup scanner: reading one entry's
// metadata into a repo::TreeEntry, listing a directory, sparse-file holes,
// owner names and exclude patterns. Nothing here follows a symbolic link:
// entries are read with fstatat(AT_SYMLINK_NOFOLLOW) relative to an open
// directory descriptor, and opened with O_NOFOLLOW.
//
// Thread safety: free functions are thread-safe; OwnerNames is not (one per
// scanner thread).
#ifndef CAIRN_AGENT_SCAN_H_
#define CAIRN_AGENT_SCAN_H_

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/base/status.h"
#include "lib/repo/tree.h"

namespace cairn::agent {

// uid/gid -> name, cached (getpwuid_r/getgrgid_r are slow with NSS).
class OwnerNames {
 public:
  // "" when the id has no name (or the name is longer than 255 bytes).
  const std::string& User(uint32_t uid);
  const std::string& Group(uint32_t gid);

 private:
  std::unordered_map<uint32_t, std::string> users_, groups_;
};

// The entry type of a stat mode; false for anything unknown.
bool EntryTypeOf(mode_t mode, repo::EntryType* type);

// Fills `entry` (name, type, mode, owner, mtime, symlink target, device
// numbers, xattrs) for `name` in the directory `dirfd`, whose full path is
// `path` (used for the xattr calls and in messages). `st` is the entry's
// lstat. Size, content, subtree and link fields are left for the caller.
// NotFound when the entry vanished, PermissionDenied when unreadable;
// InvalidArgument for a name a tree cannot hold or an unknown file type.
Status ReadEntryMetadata(int dirfd, const std::string& name, const std::string& path,
                         const struct stat& st, OwnerNames* owners, repo::TreeEntry* entry);

// One entry of a directory: its name and its lstat, or the errno of the
// lstat (`st` is meaningful only when `error` is 0).
struct ListedEntry {
  std::string name;
  int error = 0;
  struct stat st {};
};

// The entries of an open directory (without "." and ".."), sorted by name
// bytewise, each with its lstat. The lstats are taken in inode order (the
// order of the inode tables on disk). Entries whose path relative to the
// backup root, `rel` + "/" + name, IsExcluded are left out. `path` names the
// directory in messages. Does not take ownership of `dirfd`.
Result<std::vector<ListedEntry>> ListEntries(int dirfd, const std::string& path,
                                             const std::string& rel,
                                             const std::vector<std::string>& excludes);

// Extended attributes of `path` (not following a symlink), sorted by name.
// A file system without xattr support gives an empty list; attributes that
// cannot be read (EPERM, ENODATA races) are skipped.
Result<std::vector<repo::Xattr>> ReadXattrs(const std::string& path);

// Holes of an open regular file of `size` bytes, found with
// SEEK_DATA/SEEK_HOLE; sorted, within [0, size). Empty when the file system
// does not report holes (EINVAL) or the file has none.
Result<std::vector<repo::Hole>> FindHoles(int fd, uint64_t size, const std::string& path);

// `dir` + "/" + `name`, an absolute path below a directory ("/" gives "/name").
std::string JoinPath(std::string_view dir, std::string_view name);
// A path relative to the backup root: `name` at the root (`rel` empty), else
// `rel` + "/" + `name`. What excludes match and the file cache is keyed by.
std::string JoinRel(std::string_view rel, std::string_view name);

// Whether `relative_path` (relative to the backup root, '/'-separated) or its
// last component matches any fnmatch(3) pattern (flags 0: '*' also matches
// '/' in the relative path).
bool IsExcluded(const std::vector<std::string>& patterns, std::string_view relative_path);

// Lists the directories of a tree ahead of the scanner. A few threads
// read directories (ListEntries) in the order the scanner will come to them
// (depth first, names sorted bytewise), so that a cold walk keeps the disk
// busy with many directories and inodes at once, and the scanner takes each
// listing when it comes to that directory. The walk stays at most `window`
// entries ahead of what the scanner has taken, and does not descend where
// the scanner does not: excluded paths, other file systems (unless
// cross_fs) and point-in-time views (pit.h). It opens directories by path
// with RESOLVE_NO_SYMLINKS (openat2), so it follows no link either. A
// directory it cannot read is left to the scanner, whose own read reports
// why.
class StatAhead {
 public:
  struct Options {
    unsigned threads = 8;
    uint64_t window = 16384;
    std::vector<std::string> excludes;  // as IsExcluded
    bool cross_fs = false;
  };
  struct Listing {
    dev_t dev = 0;  // the directory read, which the scanner compares
    ino_t ino = 0;  // with the one it has open
    std::vector<ListedEntry> entries;
  };

  explicit StatAhead(Options options);
  StatAhead(const StatAhead&) = delete;
  StatAhead& operator=(const StatAhead&) = delete;
  ~StatAhead();  // stops the walk and joins its threads

  // False when not one of its threads could be started: nothing would
  // ever be listed, and the scanner must read the directories itself.
  bool running() const;

  // Walks the tree under the directory `path` (opened as is: a view's
  // path for a point-in-time backup). `order`: the path the scanner knows
  // it by; `dev`: the tree's file system.
  void AddRoot(const std::string& path, const std::string& order, dev_t dev);
  // The listing of the directory the scanner knows as `order`, waiting
  // while it is queued or being read. nullopt when the walk has none: not
  // under a root, passed over, or unreadable. Directories before `order` in
  // the walk's order are given up: the scanner has passed them.
  std::optional<Listing> Take(const std::string& order);

 private:
  struct State;
  void Main();
  std::unique_ptr<State> state_;
};

// Whether path `a` comes before `b` in a depth-first walk that visits
// names in bytewise order ('/' sorts before every other byte).
bool DepthFirstLess(std::string_view a, std::string_view b);

// Nanoseconds since the epoch of a timespec.
inline int64_t ToNanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_SCAN_H_
