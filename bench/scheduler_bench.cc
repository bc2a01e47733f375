// The vault's scheduler at city scale: 600 sources (60 departments x 10
// agents) in a real data directory, over a simulated clock.
//   BM_SchedulerTickIdle:    one tick (ScheduleDue + ExpireJobs) when
//                            nothing is due: what the vault spends every
//                            second;
//   BM_SchedulerSimulatedDay: a whole day at one tick per simulated second;
//                            reports the CPU of the day, the jobs queued and
//                            how late each was queued after its start time
//                            (slot + jitter), median and maximum.
// Agents are catalog rows (no processes): this measures the scheduler's own
// cost, not backups. Run: build/main/bench/cairn_scheduler_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "lib/io/env.h"
#include "lib/repo/test_util.h"
#include "vault/service/vault_service.h"
#include "vault/vault.h"

namespace cairn::vault {
namespace {

class SimClock : public io::EnvWrapper {
 public:
  SimClock() : EnvWrapper(io::Env::Posix()) {}
  uint64_t NowMicros() override { return now_; }
  void Set(uint64_t micros) { now_ = micros; }

 private:
  uint64_t now_ = 0;
};

constexpr uint64_t kS = 1'000'000;
constexpr uint64_t kDayStart = 1'796'169'600ull * kS;  // 2026-12-01T00:00:00Z

struct City {
  repo::testing::ScratchDir dir;
  SimClock clock;
  std::unique_ptr<Vault> vault;
  std::unique_ptr<VaultService> service;
  SchedulerOptions options;

  City() {
    setenv("TZ", "UTC", 1);
    tzset();
    clock.Set(kDayStart - 3600 * kS);
    InitOptions init;
    init.data_dir = dir.File("vault");
    init.env = &clock;
    if (!InitVault(init).ok()) std::abort();
    OpenOptions oo;
    oo.env = &clock;
    vault = std::move(*Vault::Open(init.data_dir, oo));
    service = std::make_unique<VaultService>(vault.get());
    const Actor me = Actor::Local();
    Policy nightly;
    nightly.name = "nightly";
    nightly.schedule = "*-*-* 01:00";
    nightly.keep.daily = 14;
    Policy often;
    often.name = "often";
    often.schedule = "every 4h";
    often.keep.hourly = 24;
    if (!service->CreatePolicy(me, nightly).ok() || !service->CreatePolicy(me, often).ok()) {
      std::abort();
    }
    for (int d = 0; d < 60; ++d) {
      auto dept = service->CreateDepartment(me, "dept" + std::to_string(d));
      if (!dept.ok()) std::abort();
      for (int a = 0; a < 10; ++a) {
        AgentRecord agent;
        agent.serial = "serial-" + std::to_string(d) + "-" + std::to_string(a);
        agent.department_id = dept->id;
        agent.host = "host" + std::to_string(a);
        agent.enrolled_micros = clock.NowMicros();
        if (!vault->catalog()->AddAgent(agent).ok()) std::abort();
        VaultService::SourceSpec spec{dept->name,    agent.host, a < 8 ? "nightly" : "often",
                                      {"/srv/data"}, {},         ""};
        if (!service->AddSource(me, spec).ok()) std::abort();
      }
    }
  }
};

void BM_SchedulerTickIdle(benchmark::State& state) {
  City city;
  city.clock.Set(kDayStart + 12 * 3600 * kS + 60 * kS);  // nothing due at 12:01
  (void)city.service->ScheduleDue(city.options);         // the 00:00 slots
  for (auto _ : state) {
    auto queued = city.service->ScheduleDue(city.options);
    auto expired = city.service->ExpireJobs(city.options);
    benchmark::DoNotOptimize(queued);
    benchmark::DoNotOptimize(expired);
  }
  state.counters["sources"] = 600;
}
BENCHMARK(BM_SchedulerTickIdle)->Unit(benchmark::kMillisecond);

void BM_SchedulerSimulatedDay(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    City city;
    state.ResumeTiming();
    std::vector<double> late;
    const clock_t cpu0 = std::clock();
    uint64_t jobs = 0;
    for (uint64_t t = kDayStart; t < kDayStart + 86400 * kS; t += kS) {
      city.clock.Set(t);
      auto queued = city.service->ScheduleDue(city.options);
      if (!queued.ok()) std::abort();
      for (uint64_t id : *queued) {
        auto job = city.service->FindJob(id);
        auto source = city.vault->catalog()->FindSource(job->source_id);
        auto policy = city.vault->catalog()->FindPolicy(source->policy);
        // The start time this job was queued for: its slot (the one the
        // source now records) plus the source's jitter.
        const uint64_t slot = source->last_slot_micros;
        const uint64_t gap = policy->schedule == "every 4h" ? 4 * 3600 : 86400;
        const uint64_t start = slot + VaultService::SourceJitterMicros(*source, gap, city.options);
        late.push_back(static_cast<double>(t - std::min(t, start)) / 1e6);
        ++jobs;
      }
      if (t % (10 * kS) == 0) (void)city.service->ExpireJobs(city.options);
    }
    const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    std::sort(late.begin(), late.end());
    state.counters["jobs"] = static_cast<double>(jobs);
    state.counters["day_cpu_s"] = cpu;
    state.counters["cpu_per_tick_ms"] = cpu * 1000 / 86400;
    state.counters["late_median_s"] = late.empty() ? 0 : late[late.size() / 2];
    state.counters["late_max_s"] = late.empty() ? 0 : late.back();
  }
}
BENCHMARK(BM_SchedulerSimulatedDay)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace
}  // namespace cairn::vault

BENCHMARK_MAIN();
