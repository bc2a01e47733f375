// A restore drill (doc/design.md section 23): restore a snapshot into a
// sandbox, check it, run the application's own check, time every step,
// and have the vault sign the report.
//
//   1. the sandbox (a new or empty directory) receives the snapshot under
//      SANDBOX/restored; every chunk is decrypted and its ID recomputed as
//      it is written (the restore's own check), then every restored file is
//      read back from the sandbox's disk and every chunk ID recomputed from
//      those bytes (restore/compare.h), so a bad disk or write path on the
//      drill host fails the drill too;
//   2. the check command (optional) runs with /bin/sh in SANDBOX/restored,
//      with CAIRN_DRILL_ROOT and CAIRN_DRILL_SNAPSHOT set, its own process
//      group, and a timeout (the group is killed); its exit status and the
//      tail of its output are kept;
//   3. the times to first byte, restored, verified and checked are sent to
//      the vault (drill_report), which compares the total with the RTO of the
//      snapshot's policy (or the one asked for), signs and keeps the report;
//   4. the sandbox is removed unless asked to keep it.
// A damaged chunk, a check that fails or hangs, a missed RTO: a failed
// drill (ok false, with the reason), never a crash.
#ifndef CAIRN_RESTORE_DRILL_H_
#define CAIRN_RESTORE_DRILL_H_

#include <boost/json/object.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "restore/restorer.h"

namespace cairn::restore {

struct DrillOptions {
  std::string sandbox;
  std::string check;  // a shell command; empty: none
  std::chrono::seconds check_timeout{600};
  std::optional<uint64_t> rto_seconds;  // when no policy names one
  bool keep = false;
  RestoreOptions restore;  // vaults, connections, filter (target is the sandbox's)
  // A scheduled drill: the vault's job (0: a drill by hand).
  uint64_t job_id = 0;
};

struct DrillOutcome {
  boost::json::object signed_report;  // as the vault signed it
  bool ok = false;
  std::string failure;
  std::string restored_root;  // SANDBOX/restored (gone unless kept)
};

Result<DrillOutcome> RunDrill(const client::Identity& state, const std::string& snapshot,
                              const DrillOptions& options);

}  // namespace cairn::restore

#endif  // CAIRN_RESTORE_DRILL_H_
