// A consistent backup of a running system (doc/design.md section 24): the
// application's pre-command, a point-in-time view (agent/pit.h), the
// post-command, and the backup reading the view.
//
// Order:
//   1. the pre-command (quiesce: pg_backup_start(), FLUSH TABLES WITH READ
//      LOCK, a script). When it fails the backup fails with its output,
//      unless `continue_on_hook_failure`: then it goes on crash-consistent
//      and the log says so;
//   2. the view is taken (when a method applies);
//   3. the post-command: at once when a view was taken, so the application
//      is held only for the instant of the snapshot; after the backup when
//      the data is read live. It runs whatever happened, failure included;
//   4. the backup reads the view (or the live data);
//   5. the view is removed.
// Both commands run by /bin/sh in / with CAIRN_PATHS (the PATHs, one a
// line), CAIRN_HOOK ("pre" or "post") and, for the post-command,
// CAIRN_BACKUP_STATUS ("ok", "failed", or "pending" when it runs before the
// backup read the view).
#ifndef CAIRN_AGENT_CONSISTENCY_H_
#define CAIRN_AGENT_CONSISTENCY_H_

#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/pit.h"
#include "lib/base/status.h"
#include "lib/proto/messages.h"

namespace cairn::agent {

struct ConsistencyOptions {
  PitMethod pit = PitMethod::kNone;
  std::string pre_command;   // empty: none
  std::string post_command;  // empty: none
  std::chrono::seconds hook_timeout{600};
  // A failed pre-command: false (default) fails the backup; true goes on
  // crash-consistent.
  bool continue_on_hook_failure = false;
  // The agent's state directory (where views are recorded).
  std::string state_dir;
};

// What happened, for the job's record and the command's summary.
struct ConsistencyLog {
  std::string pit_method;  // what was used; "" = read live
  uint64_t pit_micros = 0;
  std::string pit_note;                     // for people
  boost::json::value pre = nullptr;         // RunShellCommand's result, or null
  boost::json::value post = nullptr;        // likewise
  bool crash_consistent_by_choice = false;  // the pre-command failed; policy said go on
  // {"point_in_time": {"method", "taken"} or null, "note", "pre", "post",
  //  "crash_consistent_by_choice"}.
  boost::json::object Json() const;
  // One line a hook, at most `limit` bytes, for the job's record.
  std::string Text(size_t limit) const;
};

// The options a backup job carries (proto::Job's pit, hooks and timeout).
// InvalidArgument for an unknown method.
Result<ConsistencyOptions> ConsistencyOf(const proto::Job& job, const std::string& state_dir);

// Runs `backup` (which reads through the view it is given) between the
// hooks, over a view of `paths` (files) or of `paths` as images. The
// result is the backup's, or the failure of a hook or of taking the view.
Result<std::string> RunConsistently(
    const ConsistencyOptions& options, const std::vector<std::string>& paths, bool image,
    const std::function<Result<std::string>(const PitView& view)>& backup, ConsistencyLog* log);

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_CONSISTENCY_H_
