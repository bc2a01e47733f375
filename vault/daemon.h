// The life of a serving vault process, shared by `cairn-vault serve` and a
// DR site's `cairn-replicator run`: open the data directory to serve (the
// serve lock, recovery of open packs), prepare, listen, run, and on SIGINT
// or SIGTERM stop in order: the task first, then the listener (stop
// accepting, drain connections for `drain`), then seal the open packs.
#ifndef CAIRN_VAULT_DAEMON_H_
#define CAIRN_VAULT_DAEMON_H_

#include <chrono>
#include <string>

#include "lib/base/status.h"
#include "vault/api/rest_api.h"
#include "vault/notify/monitor.h"
#include "vault/rpc/server.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

// Work a daemon does beside its listener (the replicator's pull loop).
class DaemonTask {
 public:
  virtual ~DaemonTask() = default;
  // Before the listener starts, so that it starts with what this sets up
  // (a DR vault's trust). An error ends the daemon before it listens.
  virtual Status Prepare(VaultService* service) = 0;
  // Runs on the calling thread until it is done or Stop() is called; its
  // status is the daemon's.
  virtual Status Run(VaultService* service) = 0;
  // Asks Run() to return soon. Any thread.
  virtual void Stop() = 0;
};

struct DaemonOptions {
  std::string data_dir;
  // Listen on serve.listen; empty: no listener (a replicator that only pulls).
  ServeOptions serve;
  // The service's bounds (backup sessions).
  ServiceOptions service;
  // The REST API and console, "host:port"; empty: none.
  std::string http_listen;
  ApiOptions api;
  // The built web console served at `/` (lib/http/static_files.h); empty:
  // the first of /usr/share/cairn/web and the source tree's web-ui/dist
  // that holds an index.html.
  std::string web_root;
  // Alerts, and the audit trail's syslog and webhook followers.
  MonitorOptions monitor;
  // The scheduler (policies' jobs, missed and failed jobs, retention).
  SchedulerOptions scheduler;
  // GC, compaction and scrub, and the runs commands ask for ([storage]).
  MaintenanceOptions storage;
  // I/O threads for the listeners; 0 (default) = one per CPU core. More
  // threads than cores only add wake-ups: Asio's scheduler wakes an idle
  // thread for each handler it queues (4 on 2 cores cost a full backup 18%
  // more vault CPU than 2, BENCHMARKS.md).
  int threads = 0;
  // How long stopping waits for connections to finish. Default 5 s.
  std::chrono::milliseconds drain{std::chrono::seconds(5)};
  // Pack target size (tests); 0 for the default.
  uint64_t pack_target_size = 0;
  // Name in the start and stop log lines ("vault", "DR vault").
  std::string what = "vault";
  // The start line says "<what> (site S) <serving> <address> (port N) from
  // DIR"; scripts wait for it.
  std::string serving = "serving agents on";
};

// Runs a daemon until a signal (or, with a task, until the task returns).
// Errors: the vault cannot be opened (not a vault, locked by another
// server), the listener cannot bind, or the task's own.
Status RunDaemon(const DaemonOptions& options, DaemonTask* task = nullptr);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_DAEMON_H_
