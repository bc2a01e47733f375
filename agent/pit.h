// Point-in-time views: what a backup reads instead of data that changes
// under it (doc/design.md section 24).
//
// A view is taken just before the backup reads and removed just after:
//   btrfs    a read-only snapshot of each subvolume holding a PATH, named
//            SUBVOLUME/.cairn-pit-<nonce> (one ioctl; atomic per subvolume);
//            the backup reads PATH from inside it and records PATH;
//   reflink  an unnamed clone (O_TMPFILE + FICLONE) of each image file, on
//            the image's own file system (btrfs, xfs): atomic per file, and
//            nothing to remove, since the clone has no name;
//   lvm      a copy-on-write snapshot of each logical volume (lvcreate -s),
//            with the volume's file system frozen (FIFREEZE) only while the
//            snapshot is made. Needs the kernel's device-mapper.
// `auto` takes the best the host offers for every PATH or image and says
// which; `none` reads the live data, as does `auto` where nothing applies
// (the view's note then says why the backup is not point-in-time).
//
// A view that needs removing (a btrfs snapshot, an LVM snapshot, a frozen
// file system) is first written to STATE/pit/<nonce>, held with flock(2)
// by the process that made it. CleanUpLeftViews(), at every agent start,
// removes what the record of a dead process names: a killed agent's
// snapshot does not outlive its next start.
#ifndef CAIRN_AGENT_PIT_H_
#define CAIRN_AGENT_PIT_H_

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/backup.h"
#include "agent/image_backup.h"
#include "lib/base/status.h"

namespace cairn::agent {

enum class PitMethod : uint8_t { kNone = 0, kAuto = 1, kBtrfs = 2, kReflink = 3, kLvm = 4 };

// "none", "auto", "btrfs", "reflink", "lvm".
std::string_view PitMethodName(PitMethod method);
// InvalidArgument naming the choices for anything else.
Result<PitMethod> ParsePitMethod(std::string_view name);

// Whether directory entry `name` (with `st`) is a btrfs snapshot a view
// made: a backup of the subvolume never descends into another's view.
bool IsPitSnapshot(const std::string& name, const struct stat& st);

class PitView {
 public:
  // Takes a view of the normalised `paths` of a files backup. An explicit
  // method that cannot apply to a PATH fails (InvalidArgument saying
  // why); `auto` falls back to reading live.
  static Result<std::unique_ptr<PitView>> ForPaths(const std::string& state_dir, PitMethod method,
                                                   const std::vector<std::string>& paths);
  // The same for the normalised `images` of an image backup.
  static Result<std::unique_ptr<PitView>> ForImages(const std::string& state_dir, PitMethod method,
                                                    const std::vector<std::string>& images);
  // Removes what the view made (Release's status is logged, not returned).
  ~PitView();
  PitView(const PitView&) = delete;
  PitView& operator=(const PitView&) = delete;

  // Removes the view now; the status says whether it all went.
  Status Release();

  // What was used: kNone when the data is read live.
  PitMethod method() const { return method_; }
  // When the view was taken (the last of its snapshots), 0 for none.
  uint64_t taken_micros() const { return taken_micros_; }
  // For people: what was done, or why the backup is not point-in-time.
  const std::string& note() const { return note_; }

  // Files: the PATHs read from a view (the others are read live).
  const std::vector<ViewedPath>& viewed_paths() const { return viewed_; }
  // Images: image path -> what to read it from (the others are read live).
  const std::map<std::string, std::string>& image_reads() const { return image_reads_; }

  // Makes a backup read through the view and record its method and time.
  void ApplyTo(BackupOptions* options) const;
  void ApplyTo(ImageBackupOptions* options) const;

  struct Undo;  // one thing to remove (pit.cc)

 private:
  PitView() = default;
  PitMethod method_ = PitMethod::kNone;
  uint64_t taken_micros_ = 0;
  std::string note_;
  std::vector<ViewedPath> viewed_;
  std::map<std::string, std::string> image_reads_;
  std::vector<int> fds_;  // reflink clones, open until Release
  std::vector<Undo> undo_;
  std::string record_path_;  // STATE/pit/<nonce>, "" when nothing to undo
  int record_fd_ = -1;
};

// Removes the views that agents which are no longer running left behind
// (their records in STATE/pit). `removed` (may be null) gets a line for
// each thing removed. Errors only when a record cannot be read or a view
// cannot be removed; the record then stays for the next start.
Status CleanUpLeftViews(const std::string& state_dir, std::vector<std::string>* removed);

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_PIT_H_
