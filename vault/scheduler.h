// The scheduler of a serving vault: every second it queues the jobs whose
// slots have come (VaultService::ScheduleDue) and marks missed and failed
// jobs (ExpireJobs); after each retention interval it applies every
// policy's retention. The rules are VaultService's; this is the clock.
#ifndef CAIRN_VAULT_SCHEDULER_H_
#define CAIRN_VAULT_SCHEDULER_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "vault/config.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

class Scheduler {
 public:
  Scheduler(VaultService* service, SchedulerOptions options,
            std::chrono::milliseconds tick = std::chrono::seconds(1));
  ~Scheduler();  // stops
  void Stop();

 private:
  void Run();
  void Tick(uint64_t* last_retention_micros);

  VaultService* service_;
  SchedulerOptions options_;
  std::chrono::milliseconds tick_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_SCHEDULER_H_
