// `cairn-agent run`: the agent as a service. It keeps one persistent mutual
// TLS connection (role agent) to its vault and runs the jobs the vault sends
// on it (doc/protocol.md section 7, "Jobs").
//
//   - Addresses come from the state directory and are tried in order.
//   - After HelloOk the agent sends Ping at once (which tells the vault this
//     is a job link, not a backup connection) and again whenever it has sent
//     nothing for `ping_interval`; it answers the vault's Ping with Pong.
//   - After any drop (vault restart, network cut, deadline) it reconnects
//     with exponential backoff: `backoff_initial` doubling to `backoff_max`,
//     each delay drawn uniformly from [d/2, d] (jitter), reset after a
//     successful connection. Every state change is logged (spdlog, info).
//   - A Job runs a backup on its own, separate connection (RunBackup over
//     OpenVaultSession) on a job thread, then JobDone goes back on the
//     persistent connection; if that connection dropped meanwhile, JobDone
//     is sent on the next one. One job at a time: a Job that arrives while
//     one runs is answered at once with JobDone{ok=false, "busy: ..."}.
//     A failed job is reported and the service carries on.
//   - Stop() (or SIGINT/SIGTERM with handle_signals) lets the running job
//     finish, reports it if connected, closes the connection and makes
//     Run() return OK.
//
// Threading: Run() drives everything on one io_context on the calling
// thread, plus one thread per running job. Stop() may be called from any
// thread.
#ifndef CAIRN_AGENT_RUN_H_
#define CAIRN_AGENT_RUN_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/backup.h"
#include "lib/base/status.h"
#include "lib/client/identity.h"
#include "lib/proto/messages.h"

namespace cairn::agent {

struct RunOptions {
  // The configured backup set, used by a job that names no paths. Default
  // empty: then agent.toml's `paths = [...]` (ConfiguredBackupPaths).
  std::vector<std::string> paths;
  // Template for every job's backup (excludes, workers, zstd level...);
  // `paths` and `progress` are replaced per job.
  BackupOptions backup;
  // Send Ping after this long without sending anything. Default 10 s
  // (doc/protocol.md section 5).
  std::chrono::milliseconds ping_interval{std::chrono::seconds(10)};
  // Deadline of each wait for the vault's next frame. Default 30 s: with
  // pings every 10 s a healthy vault always answers well within it.
  std::chrono::milliseconds read_deadline{std::chrono::seconds(30)};
  // Bound on connecting and on HelloOk. Default 10 s.
  std::chrono::milliseconds connect_deadline{std::chrono::seconds(10)};
  // Reconnection backoff. Defaults 1 s and 60 s.
  std::chrono::milliseconds backoff_initial{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(60)};
  // Stop on SIGINT and SIGTERM. Default false (the CLI sets it).
  bool handle_signals = false;
  // Runs one job and returns the snapshot ID. Default (empty): a file
  // backup of `paths` with RunBackup on a new OpenVaultSession. Called on
  // the job thread. Test seam.
  std::function<Result<std::string>(const proto::Job& job, const std::vector<std::string>& paths)>
      run_job;
  // Runs a restore drill job (JobKind::kDrill, sent only to a drill host)
  // and returns the drilled snapshot's ID when the drill passed; a failed
  // drill is an error saying why (the signed report is at the vault).
  // Empty: drill jobs fail. cairn-agent sets it from restore/drill.h (the
  // agent library itself does not restore).
  std::function<Result<std::string>(const proto::Job& job)> run_drill;
  // Runs a restore job (JobKind::kRestore) into job.target and returns the
  // snapshot's ID. Empty: restore jobs fail. cairn-agent sets it.
  std::function<Result<std::string>(const proto::Job& job)> run_restore;
};

// The `paths = [...]` array of DIR/agent.toml; empty when it has none.
// Corruption when agent.toml does not parse or `paths` is not an array of
// strings.
Result<std::vector<std::string>> ConfiguredBackupPaths(const std::string& state_dir);

// `allow_job_hooks = true` in DIR/agent.toml: the agent runs the pre- and
// post-commands that a job from the vault names (doc/design.md section 24).
// Default false: a person who may edit sources at the vault must not get to
// run commands on every department server. Corruption when it is not a
// boolean.
Result<bool> ConfiguredJobHooks(const std::string& state_dir);

// The reconnection delay before attempt `attempt` (0 for the first retry
// after a drop): min(initial * 2^attempt, max), scaled by a factor in
// [0.5, 1] taken from `unit_random` (in [0, 1]).
std::chrono::milliseconds BackoffDelay(int attempt, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max, double unit_random);

class AgentService {
 public:
  AgentService(client::Identity state, RunOptions options);
  ~AgentService();
  AgentService(const AgentService&) = delete;
  AgentService& operator=(const AgentService&) = delete;

  // Runs until Stop(). Returns OK after a clean stop; an error only when the
  // service cannot start (no vault address, no usable certificate).
  Status Run();
  // Asks Run() to finish: the running job completes and is reported first.
  // Thread-safe; may be called before Run() starts or after it returned.
  void Stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::agent

#endif  // CAIRN_AGENT_RUN_H_
