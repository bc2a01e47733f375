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

// The names in an open directory (without "." and ".."), sorted bytewise.
// Does not take ownership of `dirfd` (it is duplicated).
Result<std::vector<std::string>> ListDirectory(int dirfd, const std::string& path);

// Extended attributes of `path` (not following a symlink), sorted by name.
// A file system without xattr support gives an empty list; attributes that
// cannot be read (EPERM, ENODATA races) are skipped.
Result<std::vector<repo::Xattr>> ReadXattrs(const std::string& path);

// Holes of an open regular file of `size` bytes, found with
// SEEK_DATA/SEEK_HOLE; sorted, within [0, size). Empty when the file system
// does not report holes (EINVAL) or the file has none.
Result<std::vector<repo::Hole>> FindHoles(int fd, uint64_t size, const std::string& path);

// Whether `relative_path` (relative to the backup root, '/'-separated) or its
// last component matches any fnmatch(3) pattern (flags 0: '*' also matches
// '/' in the relative path).
bool IsExcluded(const std::vector<std::string>& patterns, std::string_view relative_path);

// Nanoseconds since the epoch of a timespec.
inline int64_t ToNanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_SCAN_H_
