// Recovery plans (`cairn-restore plan run PLAN`, doc/design.md section
// 23.1): an ordered list of systems, each restored from its department's
// vault onto a new target on this machine, then checked, with the time of
// every system and of the whole plan. The same tool moves systems to new
// hosts (restore, then run the check after the move).
//
// A plan is a TOML file:
//
//   format = 1                  # optional; the only version there is
//   name = "Finance department recovery"
//   parallel = 2                # systems of one priority at once (1..64, default 1)
//   on_failure = "stop"         # or "continue" (default "stop")
//   connections = 4             # vault connections per system (1..64, default 4)
//   vaults = ["dr.city:7443"]   # optional: for systems that name none
//   [[system]]
//   name = "fin-db"             # unique; letters, digits, '.', '_', '-'
//   priority = 1                # 1..1000, lower first
//   state = "/var/lib/cairn-agent-fin"   # an enrolled agent state directory
//   snapshot = "latest"         # or an ID or unique prefix (default latest)
//   host = "fin-db-01"          # the series latest is taken from (default:
//                               # the state's host; "*" any host)
//   paths = ["/srv/db"]         # ... that includes these paths
//   target = "/srv/new/fin-db"  # absolute; new, or an empty directory
//   check = "test -f srv/db/PG_VERSION"  # optional, /bin/sh in the target
//   check_timeout = 600         # seconds (1..86400, default 600)
//   vaults = ["dr.city:7443"]   # optional; default the plan's, else the state's
//   connections = 8             # optional; default the plan's
//
// Run order (normative): priorities run one after another, lowest first; a
// priority starts only when every system of the one before has finished.
// Within a priority up to `parallel` systems run at once, taken in file
// order. A system fails when its snapshot cannot be resolved, its restore
// fails or finds damage, or its check does not exit 0 in time. With
// on_failure "stop", no priority after a failed system's starts (the rest
// of its own priority still runs), and a snapshot that cannot be resolved
// stops the plan before anything is restored; with "continue" everything
// else runs.
//
// Nothing is restored from a plan that is not valid: ParsePlan refuses
// unknown keys, wrong types, bad values, duplicate names and overlapping
// targets; RunPlan then checks, before it restores anything, that every
// state directory loads and every target is new or an empty directory, and
// resolves every system's snapshot ("latest" is fixed at the start, so a
// backup that commits while the plan runs does not change what it
// restores). The check runs as a drill's does (lib/base/shell_command.h), with
// CAIRN_PLAN_SYSTEM, CAIRN_PLAN_TARGET and CAIRN_PLAN_SNAPSHOT set.
//
// RunPlan blocks until the plan ends; it runs up to `parallel` restores on
// threads of its own and joins them before it returns. A failed system's
// target keeps what was restored into it: a plan is not resumed, and run
// again it refuses the targets already filled.
#ifndef CAIRN_RESTORE_PLAN_H_
#define CAIRN_RESTORE_PLAN_H_

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"
#include "restore/restorer.h"

namespace cairn::restore {

inline constexpr int kPlanFormatVersion = 1;
inline constexpr int kMaxPlanParallel = 64;
inline constexpr int kMaxPlanPriority = 1000;
inline constexpr size_t kMaxPlanSystems = 10000;

enum class OnFailure { kStop, kContinue };

// One [[system]] of a plan.
struct PlanSystem {
  std::string name;
  int priority = 0;
  std::string state;  // an enrolled agent state directory
  std::string snapshot = "latest";
  std::string host;                // empty: the state's host; "*": any host
  std::vector<std::string> paths;  // the series must include these paths
  std::string target;              // absolute
  std::string check;               // a shell command; empty: none
  std::chrono::seconds check_timeout{600};
  std::vector<std::string> vaults;  // empty: the plan's, else the state's addresses
  int connections = 0;              // 0: the plan's
  int line = 0;                     // of its [[system]] header, for messages
};

struct Plan {
  std::string file;  // where it was read from, for messages and the report
  std::string name;
  // Systems of one priority restored at the same time. Default 1: one
  // after another; more is faster when the vault and this machine's disks
  // have room, each system using `connections` connections.
  int parallel = 1;
  // Default stop: later priorities usually depend on earlier ones (the
  // application on its database), so restoring them is wasted time.
  OnFailure on_failure = OnFailure::kStop;
  int connections = 4;  // per system, when it names none
  // Vault addresses for systems that name none (the DR site for a whole
  // plan); empty: each state's own addresses.
  std::vector<std::string> vaults;
  std::vector<PlanSystem> systems;  // in file order
};

// Parses and checks a plan (pure: the file system is not looked at).
// InvalidArgument naming the file, the line, the system and the key, for
// TOML that does not parse, an unknown key, a wrong type, a missing key, a
// bad value, or a duplicate system name; every problem found is listed, one
// per line.
Result<Plan> ParsePlan(std::string_view text, const std::string& file);
// Reads `file` and parses it. NotFound when there is no such file.
Result<Plan> LoadPlan(const std::string& file);

// The order the systems run in: one group per priority, lowest first, each
// holding indexes into plan.systems in file order.
std::vector<std::vector<size_t>> PlanOrder(const Plan& plan);

// Whether `target` may receive a restore: it does not exist (its parent
// may not either), or it is an empty directory, and it is not a symbolic
// link. InvalidArgument saying what is in the way.
Status CheckPlanTarget(const std::string& target);

// The checks RunPlan makes before it restores anything, for callers that
// only validate: every target new or empty, no target inside another, and
// every state directory loadable. InvalidArgument naming the file, system
// and key; every problem is listed.
Status CheckPlanOnHost(const Plan& plan);

// kReady: its snapshot is resolved and it has not run (yet, or at all in a
// dry run); kSkipped: it did not run because an earlier priority failed
// (on_failure "stop") or the plan was interrupted.
enum class SystemStatus { kReady, kPassed, kFailed, kSkipped };
std::string_view SystemStatusName(SystemStatus s);  // "ready", "passed", ...

struct SystemReport {
  std::string name;
  int priority = 0;
  std::string state, target;
  SystemStatus status = SystemStatus::kReady;
  std::string failure;  // why it failed or was skipped; empty when it passed
  // The resolved snapshot: empty when it could not be resolved.
  std::string snapshot, snapshot_host, vault;
  uint64_t snapshot_time_micros = 0;
  bool image = false;  // an image snapshot restored as one file
  uint64_t files = 0, dirs = 0, bytes = 0;
  std::vector<Damage> damaged;
  std::vector<std::string> warnings;
  // Wall-clock start and end of its restore and check (0: did not run).
  uint64_t started_micros = 0, finished_micros = 0;
  double seconds_restore = 0, seconds_check = 0, seconds_total = 0;
  boost::json::value check = nullptr;  // RunShellCommand's result, or null
  // Passed, or (a dry run) ready to run.
  bool ok() const { return status == SystemStatus::kPassed || status == SystemStatus::kReady; }
};

struct PlanReport {
  std::string file, name;
  int parallel = 1;
  OnFailure on_failure = OnFailure::kStop;
  bool dry_run = false;
  bool cancelled = false;  // interrupted: what had not finished did not pass
  uint64_t started_micros = 0, finished_micros = 0;
  double total_seconds = 0;           // wall time of the whole plan
  std::vector<SystemReport> systems;  // in run order
  // Every system passed (a dry run: every snapshot resolved).
  bool ok = false;
};

// The progress of the systems restoring now (for a terminal).
struct PlanProgress {
  std::vector<std::string> running;
  RestoreProgress total;  // summed over them; seconds since the plan began
  size_t systems_done = 0, systems_total = 0;
};

struct PlanOptions {
  // Validate and resolve every snapshot; restore nothing, run no check.
  bool dry_run = false;
  // When not empty, every system reads from these vault addresses instead
  // of the plan's or its own (a rehearsed plan run against the DR site).
  std::vector<std::string> vaults;
  // Set from another thread (a signal): running restores stop (their
  // unfinished files removed), nothing more starts, and the report comes
  // back with `cancelled`.
  const std::atomic<bool>* cancel = nullptr;
  // Each called with RunPlan's lock held (never two at once, from any of
  // its threads); may be empty. `on_start`: the plan is valid on this
  // machine and every snapshot resolved (or failed to): the report so far,
  // systems in run order, before anything is restored. `on_finished`: a
  // system passed, failed or was skipped (not in a dry run). `progress`:
  // about every 250 ms while restores run.
  std::function<void(const PlanReport&)> on_start;
  std::function<void(const SystemReport&)> on_finished;
  std::function<void(const PlanProgress&)> progress;
};

// Runs `plan`: CheckPlanOnHost, snapshot resolution, then every priority in
// turn. Fails as a whole (nothing restored) only when the plan is not valid
// on this machine (InvalidArgument); what happens to each system is in the
// report, and `ok` says whether every one passed. A system's target keeps
// what was restored into it, also when the system failed.
Result<PlanReport> RunPlan(const Plan& plan, const PlanOptions& options);

// The report as one JSON object (doc/design.md section 23.1): plan, file,
// ok, dry_run, cancelled, parallel, on_failure, started, finished (RFC 3339),
// total_seconds, passed, failed, skipped and systems [...].
boost::json::object PlanReportJson(const PlanReport& report);

}  // namespace cairn::restore

#endif  // CAIRN_RESTORE_PLAN_H_
