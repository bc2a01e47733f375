#include "agent/pit.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "lib/base/bytes.h"
#include "lib/base/errno.h"
#include "lib/crypto/random.h"
#include "lib/io/file_io.h"

extern char** environ;

namespace cairn::agent {

// One thing a view made and must remove, as its record line says it:
// "btrfs DIR NAME" (a snapshot NAME in DIR), "lvm VG/LV", "thaw MOUNT".
struct PitView::Undo {
  std::string kind;
  std::string a, b;
  std::string Line() const { return kind + "\t" + a + (b.empty() ? "" : "\t" + b) + "\n"; }
};

namespace {

constexpr const char* kSnapshotPrefix = ".cairn-pit-";
constexpr uint64_t kBtrfsFirstFreeObjectId = 256;  // a subvolume's root directory

uint64_t WallMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string Nonce() {
  Bytes b(6);
  if (!crypto::SecureRandom(b).ok()) {
    // Uniqueness among this host's views is all that matters here.
    const uint64_t v = WallMicros() ^ (static_cast<uint64_t>(::getpid()) << 40);
    std::memcpy(b.data(), &v, b.size());
  }
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

std::string Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string FileSystemName(const std::string& path) {
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0) return "an unknown file system";
  switch (static_cast<uint64_t>(fs.f_type)) {
    case BTRFS_SUPER_MAGIC:
      return "btrfs";
    case EXT4_SUPER_MAGIC:
      return "ext4";
    case XFS_SUPER_MAGIC:
      return "xfs";
    case TMPFS_MAGIC:
      return "tmpfs";
    case OVERLAYFS_SUPER_MAGIC:
      return "overlayfs";
    case NFS_SUPER_MAGIC:
      return "nfs";
    default:
      return "a file system without snapshots";
  }
}

bool IsBtrfs(const std::string& path) {
  struct statfs fs;
  return ::statfs(path.c_str(), &fs) == 0 && static_cast<uint64_t>(fs.f_type) == BTRFS_SUPER_MAGIC;
}

// The root of the btrfs subvolume holding `path`: the nearest directory
// upwards, on the same device, whose inode is the subvolume's first.
Result<std::string> SubvolumeRoot(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + path);
  const dev_t dev = st.st_dev;
  std::string at = S_ISDIR(st.st_mode) ? path : Parent(path);
  for (;;) {
    if (::stat(at.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + at);
    if (st.st_dev != dev) break;
    if (st.st_ino == kBtrfsFirstFreeObjectId) return at;
    if (at == "/") break;
    at = Parent(at);
  }
  return Status::InvalidArgument(path + ": no btrfs subvolume root found above it");
}

Status BtrfsSnapshot(const std::string& subvolume, const std::string& name) {
  io::UniqueFd src(::open(subvolume.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src.valid()) return ErrnoToStatus(errno, "open subvolume " + subvolume);
  struct btrfs_ioctl_vol_args_v2 args;
  std::memset(&args, 0, sizeof args);
  args.fd = src.get();
  args.flags = BTRFS_SUBVOL_RDONLY;
  std::memcpy(args.name, name.data(), name.size());
  if (::ioctl(src.get(), BTRFS_IOC_SNAP_CREATE_V2, &args) != 0) {
    return ErrnoToStatus(errno, "btrfs snapshot of " + subvolume);
  }
  return Status::OK();
}

Status BtrfsDelete(const std::string& dir, const std::string& name) {
  io::UniqueFd parent(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent.valid()) {
    return errno == ENOENT ? Status::OK() : ErrnoToStatus(errno, "open " + dir);
  }
  struct btrfs_ioctl_vol_args args;
  std::memset(&args, 0, sizeof args);
  std::memcpy(args.name, name.data(), std::min(name.size(), sizeof args.name - 1));
  if (::ioctl(parent.get(), BTRFS_IOC_SNAP_DESTROY, &args) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, "delete btrfs snapshot " + dir + "/" + name);
  }
  return Status::OK();
}

// Runs argv[0] from PATH with the agent's own output; OK when it exits 0.
Status Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (int err = ::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ); err != 0) {
    return ErrnoToStatus(err, "run " + argv[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoToStatus(errno, "wait for " + argv[0]);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    return Status::IOError(line + " failed (status " + std::to_string(status) + ")");
  }
  return Status::OK();
}

Status Freeze(const std::string& mount, bool freeze) {
  io::UniqueFd fd(::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoToStatus(errno, "open " + mount);
  if (::ioctl(fd.get(), freeze ? FIFREEZE : FITHAW, 0) != 0) {
    // Thawing what is not frozen is EINVAL: nothing left to undo.
    if (!freeze && errno == EINVAL) return Status::OK();
    return ErrnoToStatus(errno, std::string(freeze ? "freeze " : "thaw ") + mount);
  }
  return Status::OK();
}

Status UndoOne(const PitView::Undo& u) {
  if (u.kind == "btrfs") return BtrfsDelete(u.a, u.b);
  if (u.kind == "thaw") return Freeze(u.a, false);
  if (u.kind == "lvm") return Run({"lvremove", "-f", u.a});
  return Status::Corruption("unknown view record '" + u.kind + "'");
}

// The major number of the kernel's device-mapper, 0 when it has none.
unsigned DeviceMapperMajor() {
  std::ifstream in("/proc/devices");
  std::string line;
  bool block = false;
  while (std::getline(in, line)) {
    if (line.rfind("Block devices:", 0) == 0) block = true;
    unsigned major = 0;
    char name[64] = {0};
    if (block && std::sscanf(line.c_str(), "%u %63s", &major, name) == 2 &&
        std::strcmp(name, "device-mapper") == 0) {
      return major;
    }
  }
  return 0;
}

// Where the file system on block device `rdev` is mounted, "" when it is not.
std::string MountPointOf(dev_t rdev) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string want = std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, devno, root, mount;
    if (f >> id >> parent >> devno >> root >> mount && devno == want) return mount;
  }
  return "";
}

}  // namespace

bool IsPitSnapshot(const std::string& name, const struct stat& st) {
  return S_ISDIR(st.st_mode) && st.st_ino == kBtrfsFirstFreeObjectId &&
         name.rfind(kSnapshotPrefix, 0) == 0;
}

std::string_view PitMethodName(PitMethod method) {
  switch (method) {
    case PitMethod::kNone:
      return "none";
    case PitMethod::kAuto:
      return "auto";
    case PitMethod::kBtrfs:
      return "btrfs";
    case PitMethod::kReflink:
      return "reflink";
    case PitMethod::kLvm:
      return "lvm";
  }
  return "none";
}

Result<PitMethod> ParsePitMethod(std::string_view name) {
  for (PitMethod m : {PitMethod::kNone, PitMethod::kAuto, PitMethod::kBtrfs, PitMethod::kReflink,
                      PitMethod::kLvm}) {
    if (name == PitMethodName(m)) return m;
  }
  return Status::InvalidArgument("point-in-time method '" + std::string(name) +
                                 "': expected auto, none, btrfs, reflink or lvm");
}

// A record for undo lines: created and locked on the first one.
class ViewRecord {
 public:
  static Status Add(const std::string& state_dir, std::string* path, int* fd,
                    const PitView::Undo& u) {
    if (*fd < 0) {
      const std::string dir = state_dir + "/pit";
      if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoToStatus(errno, "create " + dir);
      }
      *path = dir + "/" + Nonce();
      *fd = ::open(path->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
      if (*fd < 0) return ErrnoToStatus(errno, "create " + *path);
      if (::flock(*fd, LOCK_EX) != 0) return ErrnoToStatus(errno, "lock " + *path);
      // The directory entry must outlive a crash, or the view would too.
      io::UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (d.valid()) (void)::fsync(d.get());
    }
    const std::string line = u.Line();
    if (::write(*fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return ErrnoToStatus(errno, "write " + *path);
    }
    return io::SyncFd(*fd, true, *path);
  }
};

Result<std::unique_ptr<PitView>> PitView::ForPaths(const std::string& state_dir, PitMethod method,
                                                   const std::vector<std::string>& paths) {
  std::unique_ptr<PitView> view(new PitView());
  if (method == PitMethod::kNone) {
    view->note_ = "read live: no point-in-time view was asked for";
    return view;
  }
  if (method == PitMethod::kReflink || method == PitMethod::kLvm) {
    return Status::InvalidArgument(
        "point-in-time method " + std::string(PitMethodName(method)) +
        " is for image backups; a files backup takes btrfs snapshots (or auto)");
  }
  // The subvolumes to snapshot, and the PATHs read live (auto only).
  std::map<std::string, std::vector<std::string>> by_subvolume;
  std::vector<std::string> live;
  for (const std::string& p : paths) {
    if (!IsBtrfs(p)) {
      if (method == PitMethod::kBtrfs) {
        return Status::InvalidArgument(p + " is on " + FileSystemName(p) +
                                       ", not btrfs: no btrfs snapshot can be taken of it");
      }
      live.push_back(p + " (" + FileSystemName(p) + ")");
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::string root, SubvolumeRoot(p));
    by_subvolume[root].push_back(p);
  }
  const std::string nonce = Nonce();
  for (const auto& [root, under] : by_subvolume) {
    struct stat live_st;
    if (::stat(root.c_str(), &live_st) != 0) return ErrnoToStatus(errno, "stat " + root);
    const std::string name = kSnapshotPrefix + nonce;
    Undo u{"btrfs", root, name};
    CAIRN_RETURN_IF_ERROR(ViewRecord::Add(state_dir, &view->record_path_, &view->record_fd_, u));
    view->undo_.push_back(u);
    CAIRN_RETURN_IF_ERROR(BtrfsSnapshot(root, name));
    view->taken_micros_ = WallMicros();
    const std::string snap = (root == "/" ? "" : root) + "/" + name;
    for (const std::string& p : under) {
      view->viewed_.push_back({p, snap + p.substr(root == "/" ? 0 : root.size()),
                               static_cast<uint64_t>(live_st.st_dev)});
    }
  }
  if (by_subvolume.empty()) {
    std::string what;
    for (const auto& l : live) what += (what.empty() ? "" : ", ") + l;
    view->note_ = "not point-in-time: " + what + " offers no snapshot, so files were read live";
    return view;
  }
  view->method_ = PitMethod::kBtrfs;
  std::string roots;
  for (const auto& [root, under] : by_subvolume) roots += (roots.empty() ? "" : ", ") + root;
  view->note_ = "point-in-time: btrfs snapshot of subvolume " + roots;
  if (!live.empty()) {
    std::string what;
    for (const auto& l : live) what += (what.empty() ? "" : ", ") + l;
    view->note_ += "; read live (not point-in-time): " + what;
  }
  return view;
}

Result<std::unique_ptr<PitView>> PitView::ForImages(const std::string& state_dir, PitMethod method,
                                                    const std::vector<std::string>& images) {
  std::unique_ptr<PitView> view(new PitView());
  if (method == PitMethod::kNone) {
    view->note_ = "read live: no point-in-time view was asked for";
    return view;
  }
  if (method == PitMethod::kBtrfs) {
    return Status::InvalidArgument(
        "point-in-time method btrfs is for files backups; an image file takes a reflink "
        "copy and a logical volume an LVM snapshot (or auto)");
  }
  std::vector<std::string> live;
  std::set<PitMethod> used;
  const std::string nonce = Nonce();
  for (const std::string& image : images) {
    struct stat st;
    if (::stat(image.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat image " + image);
    if (S_ISREG(st.st_mode)) {
      if (method == PitMethod::kLvm) {
        return Status::InvalidArgument(image + " is a file, not a logical volume: use reflink");
      }
      io::UniqueFd src(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
      if (!src.valid()) return ErrnoToStatus(errno, "open image " + image);
      io::UniqueFd clone(::open(Parent(image).c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
      int err = clone.valid() ? 0 : errno;
      if (err == 0 && ::ioctl(clone.get(), FICLONE, src.get()) != 0) err = errno;
      if (err != 0) {
        const std::string why = image + " on " + FileSystemName(image) + " cannot be cloned (" +
                                std::strerror(err) + ")";
        if (method == PitMethod::kReflink) {
          return Status::InvalidArgument(why + ": no reflink copy can be taken of it");
        }
        live.push_back(why);
        continue;
      }
      view->taken_micros_ = WallMicros();
      view->image_reads_[image] = "/proc/self/fd/" + std::to_string(clone.get());
      view->fds_.push_back(clone.Release());
      used.insert(PitMethod::kReflink);
      continue;
    }
    if (!S_ISBLK(st.st_mode)) {
      return Status::InvalidArgument(image + ": not a regular file or a block device");
    }
    if (method == PitMethod::kReflink) {
      return Status::InvalidArgument(image +
                                     " is a block device: reflink copies are for "
                                     "image files; a logical volume takes lvm");
    }
    const unsigned dm = DeviceMapperMajor();
    if (dm == 0 || major(st.st_rdev) != dm) {
      const std::string why =
          dm == 0 ? image +
                        ": LVM snapshots need the kernel's device-mapper, which this kernel "
                        "does not have"
                  : image + " is not a device-mapper (LVM) volume";
      if (method == PitMethod::kLvm) return Status::InvalidArgument(why);
      live.push_back(why);
      continue;
    }
    // An LVM snapshot (copy-on-write space: 20% of the origin), with the
    // volume's file system frozen only while it is made.
    const std::string snap = "cairn-pit-" + nonce + "-" + std::to_string(view->undo_.size());
    std::string vg_lv;
    {
      char path[PATH_MAX];
      if (::realpath(image.c_str(), path) == nullptr) return ErrnoToStatus(errno, image);
      const std::string dm_name = std::string(path).substr(std::string(path).rfind('/') + 1);
      std::ifstream in("/sys/block/" + dm_name + "/dm/name");
      std::string name;
      std::getline(in, name);
      // dm names are VG-LV with '-' inside a name doubled.
      for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '-' && i + 1 < name.size() && name[i + 1] == '-') {
          vg_lv += '-';
          ++i;
        } else if (name[i] == '-' && vg_lv.find('/') == std::string::npos) {
          vg_lv += '/';
        } else {
          vg_lv += name[i];
        }
      }
      if (vg_lv.find('/') == std::string::npos) {
        return Status::InvalidArgument(image + ": not an LVM logical volume");
      }
    }
    const std::string mount = MountPointOf(st.st_rdev);
    const std::string vg = vg_lv.substr(0, vg_lv.find('/'));
    Undo remove{"lvm", vg + "/" + snap, ""};
    CAIRN_RETURN_IF_ERROR(
        ViewRecord::Add(state_dir, &view->record_path_, &view->record_fd_, remove));
    view->undo_.push_back(remove);
    Status made;
    if (!mount.empty()) {
      Undo thaw{"thaw", mount, ""};
      CAIRN_RETURN_IF_ERROR(
          ViewRecord::Add(state_dir, &view->record_path_, &view->record_fd_, thaw));
      CAIRN_RETURN_IF_ERROR(Freeze(mount, true));
      made = Run({"lvcreate", "--quiet", "-s", "-l", "20%ORIGIN", "-n", snap, vg_lv});
      CAIRN_RETURN_IF_ERROR(Freeze(mount, false));
    } else {
      made = Run({"lvcreate", "--quiet", "-s", "-l", "20%ORIGIN", "-n", snap, vg_lv});
    }
    CAIRN_RETURN_IF_ERROR(made);
    view->taken_micros_ = WallMicros();
    view->image_reads_[image] = "/dev/" + vg + "/" + snap;
    used.insert(PitMethod::kLvm);
  }
  std::string what;
  for (const auto& l : live) what += (what.empty() ? "" : "; ") + l;
  if (used.empty()) {
    view->note_ = "not point-in-time, read live: " + what;
    return view;
  }
  view->method_ = *used.rbegin();
  view->note_ = "point-in-time: " + std::string(PitMethodName(view->method_)) + " copy of " +
                std::to_string(view->image_reads_.size()) + " image(s)";
  if (!live.empty()) view->note_ += "; read live (not point-in-time): " + what;
  return view;
}

void PitView::ApplyTo(BackupOptions* options) const {
  options->views = viewed_;
  options->pit_method = method_ == PitMethod::kNone ? "" : std::string(PitMethodName(method_));
  options->pit_micros = taken_micros_;
}

void PitView::ApplyTo(ImageBackupOptions* options) const {
  options->read_from = image_reads_;
  options->pit_method = method_ == PitMethod::kNone ? "" : std::string(PitMethodName(method_));
  options->pit_micros = taken_micros_;
}

Status PitView::Release() {
  Status first;
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    Status s = UndoOne(*it);
    if (!s.ok() && first.ok()) first = s;
  }
  undo_.clear();
  for (int fd : fds_) ::close(fd);
  fds_.clear();
  viewed_.clear();
  image_reads_.clear();
  if (record_fd_ >= 0) {
    if (first.ok()) ::unlink(record_path_.c_str());  // else the next start retries
    ::close(record_fd_);
    record_fd_ = -1;
  }
  return first;
}

PitView::~PitView() {
  if (Status s = Release(); !s.ok()) {
    spdlog::error("point-in-time view not fully removed (the next start retries): {}",
                  s.ToString());
  }
}

Status CleanUpLeftViews(const std::string& state_dir, std::vector<std::string>* removed) {
  const std::string dir = state_dir + "/pit";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT ? Status::OK() : ErrnoToStatus(errno, "open " + dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  Status first;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    io::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) continue;
    // A record its maker still holds is a view in use.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    std::ifstream in(path);
    std::vector<PitView::Undo> undo;
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::istringstream ls(line);
      std::string field;
      while (std::getline(ls, field, '\t')) f.push_back(field);
      if (f.size() < 2) continue;  // a line cut by the crash: nothing was made yet
      undo.push_back({f[0], f[1], f.size() > 2 ? f[2] : ""});
    }
    // Thaw first: a frozen file system stops everything else.
    std::stable_partition(undo.begin(), undo.end(),
                          [](const PitView::Undo& u) { return u.kind == "thaw"; });
    Status s;
    for (const auto& u : undo) {
      Status one = UndoOne(u);
      if (!one.ok()) {
        if (s.ok()) s = one;
        continue;
      }
      if (removed != nullptr) {
        removed->push_back(u.kind == "btrfs" ? "btrfs snapshot " + u.a + "/" + u.b
                           : u.kind == "lvm" ? "LVM snapshot " + u.a
                                             : "thawed " + u.a);
      }
    }
    if (s.ok()) {
      ::unlink(path.c_str());
    } else if (first.ok()) {
      first = s;
    }
  }
  return first;
}

}  // namespace cairn::agent
