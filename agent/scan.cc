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
#include <vector>

#include "lib/base/errno.h"

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

Result<std::vector<std::string>> ListDirectory(int dirfd, const std::string& path) {
  int fd = ::dup(dirfd);
  if (fd < 0) return ErrnoToStatus(errno, "dup " + path);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "opendir " + path);
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
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
    names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
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

}  // namespace cairn::agent
