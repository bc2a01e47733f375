// The serving vault's storage clock: garbage collection and scrub at their
// schedules ([storage] in vault.toml), runs asked for by `cairn-vault gc`
// and `cairn-vault scrub` while serve holds the store, and the removal of
// retired packs once reads release them. The rules are VaultService's
// (service/maintenance.cc); this is the clock and the hand-off.
//
// Hand-off (doc/design.md 22.6): a command that finds serve running writes
// the catalog setting `maintenance/request/<id>` (JSON: task, options, who
// asked); this thread takes it (deleting it), runs it, and writes
// `maintenance/result/<id>` (JSON: ok, error or report), which the
// command reads and deletes.
#ifndef CAIRN_VAULT_MAINTENANCE_H_
#define CAIRN_VAULT_MAINTENANCE_H_

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "vault/config.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

// Runs one maintenance task described by `request` (as a command writes
// it) and returns the result object. Shared by the runner and by a
// command that holds the store itself.
boost::json::object RunMaintenanceTask(VaultService* service, const Actor& actor,
                                       const boost::json::object& request,
                                       const MaintenanceOptions& options,
                                       const std::function<bool()>& cancelled,
                                       const std::function<void(const std::string&)>& progress,
                                       const std::function<void(const char*)>& step_for_test = {});

class MaintenanceRunner {
 public:
  MaintenanceRunner(VaultService* service, MaintenanceOptions options,
                    std::chrono::milliseconds tick = std::chrono::seconds(1));
  ~MaintenanceRunner();  // stops; a running task is cancelled between batches
  void Stop();

 private:
  void Run();
  void Tick();

  VaultService* service_;
  MaintenanceOptions options_;
  std::chrono::milliseconds tick_;
  uint64_t next_gc_micros_ = 0, next_scrub_micros_ = 0;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_MAINTENANCE_H_
