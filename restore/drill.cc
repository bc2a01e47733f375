#include "restore/drill.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "lib/base/errno.h"
#include "lib/base/shell_command.h"
#include "lib/client/vault_link.h"
#include "restore/compare.h"

namespace cairn::restore {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

uint64_t MillisSince(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

// A new or empty directory, made 0700.
Status PrepareSandbox(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec)) {
      return Status::InvalidArgument("--sandbox " + dir + " exists and is not a directory");
    }
    if (!std::filesystem::is_empty(dir, ec)) {
      return Status::InvalidArgument("--sandbox " + dir +
                                     " is not empty: a drill restores only into a new or empty "
                                     "directory, which it removes afterwards");
    }
    return Status::OK();
  }
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoToStatus(errno, "create sandbox " + dir);
  return Status::OK();
}

// Reads every regular file under `root` back from disk (no link is
// followed). Returns the bytes read; the first unreadable file fails.
Result<uint64_t> ReadBack(const std::string& root) {
  uint64_t total = 0;
  std::error_code ec;
  std::vector<char> buf(1 << 20);
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::none, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "read back " + it->path().string());
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) total += static_cast<uint64_t>(n);
    const int err = errno;
    ::close(fd);
    if (n < 0) return ErrnoToStatus(err, "read back " + it->path().string());
  }
  if (ec) return Status::IOError("read back " + root + ": " + ec.message());
  return total;
}

// A command with the drill's environment: CAIRN_DRILL_ROOT (the directory
// it runs in) and CAIRN_DRILL_SNAPSHOT.
json::object RunTool(const std::string& command, const std::string& cwd,
                     const std::string& snapshot, std::chrono::seconds timeout) {
  return RunShellCommand(command, cwd,
                         {{"CAIRN_DRILL_ROOT", cwd}, {"CAIRN_DRILL_SNAPSHOT", snapshot}}, timeout);
}

// The system tools live in /usr/sbin, which a service's PATH may lack.
const std::string kSbin = "PATH=/usr/sbin:/sbin:/usr/bin:/bin:$PATH ";

// An image snapshot restored as one file: its file system is checked
// (e2fsck -n -f for ext2/3/4, xfs_repair -n for xfs), mounted read-only on
// a loop device at `mount_point`, and every file in it read. Returns what
// was found; "mounted" tells the caller to unmount.
json::object CheckFilesystem(const std::string& image, const std::string& mount_point,
                             const std::string& snapshot, std::chrono::seconds timeout) {
  json::object fs{{"type", nullptr}, {"fsck", nullptr}, {"mounted", false}, {"ok", false}};
  json::object probe =
      RunTool(kSbin + "blkid -o value -s TYPE " + ShellQuote(image), "/", snapshot, timeout);
  std::string type =
      probe.contains("output_tail") ? std::string(probe["output_tail"].as_string()) : "";
  while (!type.empty() && (type.back() == '\n' || type.back() == ' ')) type.pop_back();
  if (type.empty()) {
    fs["failure"] = "no file system recognised in the image (blkid found none)";
    return fs;
  }
  fs["type"] = type;
  std::string fsck;
  if (type == "ext2" || type == "ext3" || type == "ext4") {
    fsck = kSbin + "e2fsck -n -f " + ShellQuote(image);
  } else if (type == "xfs") {
    fsck = kSbin + "xfs_repair -n -f " + ShellQuote(image);
  }
  if (fsck.empty()) {
    fs["fsck"] = "no checker for " + type;
  } else {
    json::object r = RunTool(fsck, "/", snapshot, timeout);
    fs["fsck"] = r;
    if (!ShellCommandPassed(r)) {
      fs["failure"] = "the file system check found errors (" + fsck + ")";
      return fs;
    }
  }
  if (::geteuid() != 0) {
    fs["failure"] = "not mounted: a loop mount needs root";
    return fs;
  }
  if (::mkdir(mount_point.c_str(), 0700) != 0) {
    fs["failure"] = "mkdir " + mount_point + ": " + ErrnoToStatus(errno, "").message();
    return fs;
  }
  const std::string options = type.starts_with("ext") ? "ro,loop,noload,nodev,nosuid,noexec"
                                                      : "ro,loop,norecovery,nodev,nosuid,noexec";
  json::object mount = RunTool(
      kSbin + "mount -o " + options + " " + ShellQuote(image) + " " + ShellQuote(mount_point), "/",
      snapshot, timeout);
  if (!ShellCommandPassed(mount)) {
    fs["failure"] = "the read-only mount failed: " + std::string(mount["output_tail"].as_string());
    return fs;
  }
  fs["mounted"] = true;
  uint64_t files = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(mount_point, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    ++files;
  }
  auto bytes = ReadBack(mount_point);
  fs["files"] = files;
  if (ec || !bytes.ok()) {
    fs["failure"] =
        "listing the mounted file system failed: " + (ec ? ec.message() : bytes.status().message());
    return fs;
  }
  fs["bytes"] = *bytes;
  fs["ok"] = true;
  return fs;
}

void Unmount(const std::string& mount_point, const std::string& snapshot) {
  (void)RunTool(kSbin + "umount " + ShellQuote(mount_point), "/", snapshot,
                std::chrono::seconds(60));
}

}  // namespace

Result<DrillOutcome> RunDrill(const client::Identity& state, const std::string& snapshot,
                              const DrillOptions& o) {
  if (o.sandbox.empty()) return Status::InvalidArgument("--sandbox is required");
  CAIRN_RETURN_IF_ERROR(PrepareSandbox(o.sandbox));
  DrillOutcome outcome;
  outcome.restored_root = o.sandbox + "/restored";
  const auto start = Clock::now();
  std::optional<uint64_t> first_byte;
  RestoreOptions ro = o.restore;
  ro.target = outcome.restored_root;
  ro.in_place = ro.overwrite = ro.verify_only = ro.force = false;
  ro.follow_target_symlink = false;
  ro.keep_tree = true;
  ro.progress = [&](const RestoreProgress& p) {
    if (!first_byte && p.bytes_done > 0) first_byte = MillisSince(start);
  };
  auto restored = Restore(state, snapshot, ro);
  auto cleanup = [&] {
    if (!o.keep) {
      std::error_code ec;
      std::filesystem::remove_all(o.sandbox, ec);
    }
  };
  if (!restored.ok()) {
    cleanup();
    return restored.status().WithContext("drill restore");
  }
  const uint64_t restored_ms = MillisSince(start);
  if (!first_byte) first_byte = restored_ms;
  // Read back from the sandbox's disk, every chunk's ID recomputed (the
  // restore checked what the vault sent; this checks what the disk holds).
  json::array damaged;
  auto add_damage = [&](const Damage& d) {
    damaged.push_back(json::object{{"what", d.what},
                                   {"error", d.error},
                                   {"paths", json::array(d.paths.begin(), d.paths.end())}});
  };
  std::set<std::string> reported;
  for (const Damage& d : restored->damaged) {
    add_damage(d);
    reported.insert(d.paths.begin(), d.paths.end());
  }
  CompareTarget compare_target{outcome.restored_root, "", std::move(reported)};
  if (restored->image_target) std::swap(compare_target.root, compare_target.image_file);
  CompareResult compared;
  if (restored->tree != nullptr) {
    auto c = CompareWithTree(*restored->tree, state.keys.id_key, compare_target);
    if (!c.ok()) {
      add_damage({"sandbox", c.status().message(), {}});
    } else {
      compared = std::move(*c);
    }
  }
  for (const Damage& d : compared.mismatches) add_damage(d);
  // An image: its file system checked, mounted read-only and listed; the
  // check command then runs in the mount.
  json::value filesystem = nullptr;
  std::string check_dir = outcome.restored_root;
  const std::string mount_point = o.sandbox + "/mnt";
  bool mounted = false;
  if (restored->image_target && damaged.empty()) {
    json::object fs =
        CheckFilesystem(outcome.restored_root, mount_point, restored->snapshot_id, o.check_timeout);
    mounted = fs["mounted"].as_bool();
    check_dir = mounted ? mount_point : o.sandbox;
    filesystem = fs;
  }
  const uint64_t verified_ms = MillisSince(start);
  json::value check = nullptr;
  if (!o.check.empty()) {
    check = RunTool(o.check, check_dir, restored->snapshot_id, o.check_timeout);
  }
  if (mounted) Unmount(mount_point, restored->snapshot_id);
  const uint64_t checked_ms = MillisSince(start);
  json::object measured{
      {"snapshot", restored->snapshot_id},
      {"files", restored->files},
      {"bytes", restored->bytes},
      {"read_back_bytes", compared.bytes},
      {"read_back_chunks", compared.chunks},
      {"damaged", damaged},
      {"millis", json::object{{"first_byte", *first_byte},
                              {"restored", restored_ms},
                              {"verified", verified_ms},
                              {"checked", checked_ms},
                              {"total", checked_ms}}},
      {"check", check},
      {"filesystem", filesystem},
      {"rto_seconds", o.rto_seconds ? json::value(*o.rto_seconds) : json::value(nullptr)},
      {"served_by", restored->vault},
      {"job", o.job_id != 0 ? json::value(o.job_id) : json::value(nullptr)}};
  cleanup();
  // The vault of record (the agent's first reachable one: the primary,
  // unless it is lost) checks, signs and keeps it, whichever vault served
  // the data.
  client::VaultLink::Options link_options;
  link_options.deadline = o.restore.deadline;
  std::vector<std::string> report_to = state.config.vault_addresses;
  if (std::find(report_to.begin(), report_to.end(), restored->vault) == report_to.end()) {
    report_to.push_back(restored->vault);
  }
  CAIRN_ASSIGN_OR_RETURN(auto link, client::VaultLink::Open(state, report_to, link_options));
  proto::DrillReport ask{json::serialize(measured)};
  CAIRN_ASSIGN_OR_RETURN(proto::DrillSigned signed_reply,
                         (link->Call<proto::DrillSigned>(proto::MessageType::kDrillReport, ask,
                                                         proto::MessageType::kDrillSigned)));
  boost::system::error_code ec;
  json::value v = json::parse(signed_reply.json, ec);
  if (ec || !v.is_object() || !v.as_object().contains("report")) {
    return Status::Corruption("the vault answered a malformed drill report");
  }
  outcome.signed_report = v.as_object();
  const json::object& r = outcome.signed_report["report"].as_object();
  outcome.ok = r.contains("ok") && r.at("ok").is_bool() && r.at("ok").as_bool();
  if (const auto* f = r.if_contains("failure"); f && f->is_string()) {
    outcome.failure = std::string(f->as_string());
  }
  return outcome;
}

}  // namespace cairn::restore
