#include "vault/scheduler.h"

#include <spdlog/spdlog.h>

namespace cairn::vault {

Scheduler::Scheduler(VaultService* service, SchedulerOptions options,
                     std::chrono::milliseconds tick)
    : service_(service), options_(options), tick_(tick) {
  thread_ = std::thread([this] { Run(); });
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Tick(uint64_t* last_retention_micros) {
  if (auto queued = service_->ScheduleDue(options_); !queued.ok()) {
    spdlog::error("scheduler: {}", queued.status().ToString());
  }
  if (auto drills = service_->ScheduleDrills(options_); !drills.ok()) {
    spdlog::error("scheduler: drills: {}", drills.status().ToString());
  }
  if (auto expired = service_->ExpireJobs(options_); !expired.ok()) {
    spdlog::error("scheduler: expiring jobs: {}", expired.status().ToString());
  }
  const uint64_t now = service_->vault()->env()->NowMicros();
  if (now >= *last_retention_micros + options_.retention_interval_seconds * 1'000'000) {
    *last_retention_micros = now;
    auto applied = service_->ApplyRetentionRules(Actor::Self(), "", /*dry_run=*/false);
    if (!applied.ok()) {
      spdlog::error("scheduler: retention: {}", applied.status().ToString());
    }
  }
}

void Scheduler::Run() {
  uint64_t last_retention = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Tick(&last_retention);
    lock.lock();
    wake_.wait_for(lock, tick_, [this] { return stopping_; });
  }
}

}  // namespace cairn::vault
