#include "vault/maintenance.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "vault/policy/schedule.h"
#include "vault/replication/puller.h"

namespace cairn::vault {
namespace {

// The next slot of `spec` after now; 0 for "off" or a bad schedule.
uint64_t NextSlot(const std::string& spec, uint64_t now_micros) {
  if (spec.empty() || spec == "off") return 0;
  auto s = Schedule::Parse(spec);
  return s.ok() ? s->NextAfter(now_micros) : 0;
}

}  // namespace

boost::json::object RunMaintenanceTask(VaultService* service, const Actor& actor,
                                       const boost::json::object& request,
                                       const MaintenanceOptions& options,
                                       const std::function<bool()>& cancelled,
                                       const std::function<void(const std::string&)>& progress,
                                       const std::function<void(const char*)>& step_for_test) {
  boost::json::object out;
  const boost::json::value* task = request.if_contains("task");
  const std::string name = task && task->is_string() ? std::string(task->as_string()) : "";
  auto flag = [&](const char* key, bool dflt) {
    const boost::json::value* v = request.if_contains(key);
    return v && v->is_bool() ? v->as_bool() : dflt;
  };
  auto fail = [&](const Status& s) {
    out["ok"] = false;
    out["error"] = s.message();
    out["code"] = std::string(StatusCodeName(s.code()));
    return out;
  };
  auto departments = service->ListDepartments();
  const std::vector<Department> names = departments.ok() ? *departments : std::vector<Department>{};
  if (name == "gc") {
    VaultService::GcRequest r;
    r.dry_run = flag("dry_run", false);
    r.compact_below = static_cast<double>(options.compact_below_percent) / 100.0;
    r.fence_timeout = std::chrono::seconds(options.gc_session_wait_seconds);
    r.cancelled = cancelled;
    r.progress = progress;
    r.step_for_test = step_for_test;
    auto report = service->CollectGarbage(actor, r);
    if (!report.ok()) return fail(report.status());
    out["ok"] = true;
    out["report"] = VaultService::GcReportToJson(*report, names);
    return out;
  }
  if (name == "scrub") {
    VaultService::ScrubRequest r;
    if (const auto* d = request.if_contains("department"); d && d->is_string()) {
      r.department = std::string(d->as_string());
    }
    r.rate_bytes = options.scrub_rate_bytes;
    if (const auto* v = request.if_contains("rate_bytes");
        v && v->is_int64() && v->as_int64() >= 0) {
      r.rate_bytes = static_cast<uint64_t>(v->as_int64());
    }
    std::string note;
    r.repair = flag("repair", options.scrub_repair);
    if (r.repair) {
      std::string from;
      auto fetch = PeerRecordFetcher(service->vault()->data_dir(), &from);
      if (fetch.ok()) {
        r.fetch = std::move(*fetch);
        r.fetch_from = from;
      } else {
        note = fetch.status().message();
      }
    }
    r.cancelled = cancelled;
    r.progress = progress;
    auto report = service->Scrub(actor, r);
    if (!report.ok()) return fail(report.status());
    out["ok"] = true;
    boost::json::object json = VaultService::ScrubReportToJson(*report, names);
    if (!note.empty()) json["repair_note"] = note;
    out["report"] = std::move(json);
    return out;
  }
  return fail(Status::InvalidArgument("unknown maintenance task '" + name + "'"));
}

MaintenanceRunner::MaintenanceRunner(VaultService* service, MaintenanceOptions options,
                                     std::chrono::milliseconds tick)
    : service_(service), options_(std::move(options)), tick_(tick) {
  const uint64_t now = service_->vault()->env()->NowMicros();
  next_gc_micros_ = NextSlot(options_.gc_schedule, now);
  next_scrub_micros_ = NextSlot(options_.scrub_schedule, now);
  thread_ = std::thread([this] { Run(); });
}

MaintenanceRunner::~MaintenanceRunner() { Stop(); }

void MaintenanceRunner::Stop() {
  stopping_ = true;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MaintenanceRunner::Tick() {
  ChunkStore* store = service_->vault()->store();
  if (store != nullptr) {
    if (auto freed = store->ReclaimRetired(); !freed.ok()) {
      spdlog::error("removing retired packs: {}", freed.status().ToString());
    }
  }
  Catalog* catalog = service_->vault()->catalog();
  auto cancelled = [this] { return stopping_.load(); };
  auto progress = [](const std::string& line) { spdlog::info("storage: {}", line); };
  // Runs commands asked for.
  auto requests = catalog->ListSettings("maintenance/request/");
  if (requests.ok()) {
    for (const auto& [key, value] : *requests) {
      if (stopping_) return;
      const std::string id = key.substr(std::string("maintenance/request/").size());
      // Each state is written before the previous one is removed, so a
      // command following the request (MaintenanceState) always finds one.
      (void)catalog->PutSetting("maintenance/running/" + id, value);
      (void)catalog->DeleteSetting(key);
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(value, ec);
      boost::json::object result;
      if (ec || !v.is_object()) {
        result = {{"ok", false}, {"error", "malformed maintenance request"}};
      } else {
        // Who asked was authorised when the request was made
        // (RequestMaintenance); the run is recorded under that name.
        Actor actor = Actor::Local();
        if (const auto* by = v.as_object().if_contains("by"); by && by->is_string()) {
          std::string name(by->as_string());
          if (name.starts_with("user:")) {
            actor.kind = Actor::Kind::kUser;
            actor.role = "admin";
            actor.name = name.substr(5);
          } else {
            actor.name = name.starts_with("local:") ? name.substr(6) : name;
          }
        }
        spdlog::info("storage: running {} asked for by {}", value, actor.name);
        result = RunMaintenanceTask(service_, actor, v.as_object(), options_, cancelled, progress);
      }
      (void)catalog->PutSetting("maintenance/result/" + id, boost::json::serialize(result));
      (void)catalog->DeleteSetting("maintenance/running/" + id);
    }
  }
  // And the schedules.
  const uint64_t now = service_->vault()->env()->NowMicros();
  for (auto [next, spec, task] : {std::tuple<uint64_t*, const std::string*, const char*>{
                                      &next_gc_micros_, &options_.gc_schedule, "gc"},
                                  {&next_scrub_micros_, &options_.scrub_schedule, "scrub"}}) {
    if (*next == 0 || now < *next || stopping_) continue;
    *next = NextSlot(*spec, now);
    boost::json::object request{{"task", task}};
    boost::json::object result =
        RunMaintenanceTask(service_, Actor::Self(), request, options_, cancelled, progress);
    if (!result["ok"].as_bool()) {
      spdlog::warn("storage: scheduled {}: {}", task, boost::json::serialize(result["error"]));
    }
  }
}

void MaintenanceRunner::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Tick();
    lock.lock();
    wake_.wait_for(lock, tick_, [this] { return stopping_.load(); });
  }
}

}  // namespace cairn::vault
