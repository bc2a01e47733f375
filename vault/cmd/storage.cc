#include "vault/cmd/storage.h"

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include "lib/crypto/random.h"
#include "vault/cmd/output.h"
#include "vault/config.h"
#include "vault/maintenance.h"
#include "vault/policy/schedule.h"
#include "vault/service/vault_service.h"
#include "vault/vault.h"

namespace cairn::vault::cmd {
namespace {

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream o;
  o.precision(u == 0 ? 0 : 1);
  o << std::fixed << v << " " << units[u];
  return o.str();
}

uint64_t U(const boost::json::object& o, const char* key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64()) return static_cast<uint64_t>(v->as_int64());
  return 0;
}

std::string GcText(const boost::json::object& r) {
  std::ostringstream o;
  const bool dry = r.at("dry_run").as_bool();
  o << (dry ? "Garbage collection (dry run: nothing was changed)\n" : "Garbage collection\n");
  o << "  index entries:      " << U(r, "index_entries") << " (" << U(r, "references")
    << " references from kept snapshots, " << U(r, "delta_bases") << " delta bases)\n";
  o << "  unreferenced:       " << U(r, "entries_removed") << " chunks, "
    << Bytes(U(r, "bytes_unreferenced")) << (dry ? " would be removed" : " removed") << "\n";
  if (!dry) o << "  kept (touched):     " << U(r, "kept_touched") << " used by backups meanwhile\n";
  o << "  packs:              " << U(r, "packs_retired") << (dry ? " would be" : "") << " retired, "
    << U(r, "packs_compacted") << " of them compacted (" << Bytes(U(r, "bytes_copied"))
    << " copied)\n";
  o << "  space freed:        " << Bytes(U(r, "bytes_freed")) << (dry ? " (would be)" : "") << "\n";
  if (U(r, "packs_waiting") > 0)
    o << "  waiting for reads:  " << U(r, "packs_waiting") << " packs (removed shortly)\n";
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%.2f", r.at("false_positive_rate").to_number<double>() * 100);
  o << "  mark filter:        " << Bytes(U(r, "filter_bytes")) << ", false positives ~" << rate
    << " % (garbage kept until a later run, never a live chunk lost)\n";
  o << "\n  department        packs  unique       referenced   reclaimable\n";
  for (const auto& dv : r.at("departments").as_array()) {
    const auto& d = dv.as_object();
    char line[160];
    std::snprintf(line, sizeof(line), "  %-16s %6llu  %-12s %-12s %s\n",
                  std::string(d.at("department").as_string()).c_str(),
                  static_cast<unsigned long long>(U(d, "packs")),
                  Bytes(U(d, "unique_bytes")).c_str(), Bytes(U(d, "referenced_bytes")).c_str(),
                  Bytes(U(d, "reclaimable_bytes")).c_str());
    o << line;
  }
  for (const auto& d : r.at("damaged").as_array()) {
    o << "  not compacted (damaged): " << d.as_string() << "\n";
  }
  return o.str();
}

std::string ScrubText(const boost::json::object& r) {
  std::ostringstream o;
  o << "Scrub" << (r.at("cancelled").as_bool() ? " (stopped before the end)" : "") << "\n";
  o << "  packs:        " << U(r, "packs") << " read (" << Bytes(U(r, "bytes_read")) << ", "
    << U(r, "records") << " records, "
    << Bytes(static_cast<uint64_t>(r.at("rate_bytes_per_second").to_number<double>())) << "/s)\n";
  o << "  damaged:      " << r.at("damaged").as_array().size() << " records kept snapshots need";
  if (U(r, "garbage_damaged") > 0) o << ", " << U(r, "garbage_damaged") << " garbage records";
  o << "\n";
  for (const auto& dv : r.at("damaged").as_array()) {
    const auto& d = dv.as_object();
    o << "    " << d.at("department").as_string() << " chunk "
      << std::string(d.at("chunk").as_string()).substr(0, 16) << " (pack " << U(d, "pack")
      << "): " << d.at("problem").as_string() << "\n";
  }
  const std::string source(r.at("repair_source").as_string());
  if (!source.empty()) {
    o << "  repaired:     " << U(r, "repaired") << " from " << source << "\n";
  } else if (const auto* note = r.if_contains("repair_note");
             note && !r.at("damaged").as_array().empty()) {
    o << "  repair:       not possible: " << note->as_string() << "\n";
  }
  if (U(r, "packs_rebuilt") > 0) {
    o << "  rebuilt:      " << U(r, "packs_rebuilt")
      << " packs with a damaged header or footer (their records moved)\n";
  }
  for (const auto& u : r.at("unrepaired").as_array())
    o << "  unrepaired:   " << u.as_string() << "\n";
  for (const auto& sv : r.at("damaged_snapshots").as_array()) {
    const auto& s = sv.as_object();
    o << "  DAMAGED snapshot " << s.at("snapshot").as_string() << " of "
      << s.at("department").as_string() << " (" << s.at("host").as_string()
      << "): " << U(s, "chunks") << " chunks\n";
  }
  for (const auto& c : r.at("cleared_snapshots").as_array()) {
    o << "  sound again:  " << c.as_string() << "\n";
  }
  if (r.at("damaged").as_array().empty() && r.at("damaged_snapshots").as_array().empty()) {
    o << "  every record read back whole and matches the index.\n";
  }
  return o.str();
}

}  // namespace

void AddStorageCommands(CLI::App& app, StorageCommands* c, std::string* data_dir,
                        cli::CommonFlags* flags) {
  c->gc = app.add_subcommand(
      "gc", "Free what no kept snapshot references: garbage collection and compaction");
  c->gc->add_option("--data", *data_dir, "Vault data directory")->envname("CAIRN_DATA")->required();
  c->gc->add_flag("--dry-run", c->dry_run,
                  "Say what would be freed, per department; change nothing");
  c->gc->add_option("--wait", c->wait_seconds,
                    "When serve runs it: give up waiting after this many seconds (0: no limit)");
  cli::AddJsonFlag(c->gc, flags);
  cli::Examples(c->gc,
                "Runs beside backups, restores and replication, in bounded memory. When\n"
                "`cairn-vault serve` holds the directory, the serving vault runs it.\n"
                "Examples:\n  cairn-vault gc --data /var/lib/cairn/vault --dry-run\n"
                "  cairn-vault gc --data /var/lib/cairn/vault --json");
  c->scrub = app.add_subcommand(
      "scrub", "Re-read every pack, check it against the index, and repair from the DR copy");
  c->scrub->add_option("--data", *data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  c->scrub->add_option("--department", c->department, "Only this department's packs");
  c->scrub
      ->add_option("--rate", c->rate,
                   "Read at most this many bytes per second (100M, 1G; 0: no limit; "
                   "default [storage] scrub_rate_bytes)")
      ->transform(CLI::AsSizeValue(false));
  c->scrub->add_flag("--no-repair", c->no_repair, "Report damage only; do not fetch copies");
  c->scrub->add_option("--wait", c->wait_seconds,
                       "When serve runs it: give up waiting after this many seconds (0: no limit)");
  cli::AddJsonFlag(c->scrub, flags);
  cli::Examples(c->scrub,
                "Damaged records are fetched from the peer (the DR copy; at a DR site, its\n"
                "source) through DIR/replicator/, checked and rewritten. What cannot be\n"
                "repaired marks the snapshots that need it damaged.\n"
                "Examples:\n  cairn-vault scrub --data /var/lib/cairn/vault --rate 50M\n"
                "  cairn-vault scrub --data /var/lib/cairn/vault --department finance --json");
}

std::optional<int> RunStorageCommand(StorageCommands& c, const std::string& data_dir, bool json) {
  if (!*c.gc && !*c.scrub) return std::nullopt;
  boost::json::object request{{"task", *c.gc ? "gc" : "scrub"}};
  if (*c.gc) request["dry_run"] = c.dry_run;
  if (*c.scrub) {
    if (!c.department.empty()) request["department"] = c.department;
    if (c.no_repair) request["repair"] = false;
    if (c.scrub->count("--rate") > 0) request["rate_bytes"] = static_cast<int64_t>(c.rate);
  }
  const Actor me = Actor::Local();
  auto config = LoadConfig(data_dir + "/vault.toml");
  if (!config.ok() && !config.status().IsNotFound()) return Fail(json, config.status());
  const MaintenanceOptions options = config.ok() ? config->storage : MaintenanceOptions{};

  boost::json::object result;
  OpenOptions oo;
  oo.serve = true;
  oo.pack_target_size = options.pack_target_bytes;
  auto vault = Vault::Open(data_dir, oo);
  if (vault.ok()) {
    // No serve: this process holds the store.
    VaultService service(vault->get());
    auto progress = [json](const std::string& line) {
      if (!json) std::cerr << "  " << line << "\n";
    };
    // Crash tests (tests/e2e/gc_crash_test.sh): SIGKILL this process right
    // after the Nth step that changes the store, or after the last when the
    // run has fewer (before the open packs are sealed).
    std::function<void(const char*)> kill_at;
    if (const char* at = std::getenv("CAIRN_TEST_KILL_GC_AT_STEP"); at != nullptr) {
      const long n = std::atol(at);
      kill_at = [n, count = 0L](const char*) mutable {
        if (++count == n) ::raise(SIGKILL);
      };
    }
    result = RunMaintenanceTask(&service, me, request, options, {}, progress, kill_at);
    if (kill_at) ::raise(SIGKILL);
    if (Status s = service.SealOpenPacks(); !s.ok()) return Fail(json, s);
  } else if (vault.status().IsUnavailable()) {
    // serve holds it: hand the run over and wait for the result.
    auto admin = Vault::Open(data_dir, {});
    if (!admin.ok()) return Fail(json, admin.status());
    VaultService service(admin->get());
    auto id = service.RequestMaintenance(me, request);
    if (!id.ok()) return Fail(json, id.status());
    if (!json) std::cerr << "cairn-vault serve holds " << data_dir << "; it runs this, waiting\n";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(c.wait_seconds);
    while (true) {
      auto state = service.MaintenanceState(me, *id);
      if (!state.ok()) return Fail(json, state.status());
      if ((*state)["state"] == "done") {
        (void)(*admin)->catalog()->DeleteSetting("maintenance/result/" + *id);
        result = (*state)["result"].as_object();
        break;
      }
      if (c.wait_seconds > 0 && std::chrono::steady_clock::now() >= deadline) {
        const bool taken = (*state)["state"] != "queued";
        if (!taken) (void)(*admin)->catalog()->DeleteSetting("maintenance/request/" + *id);
        return Fail(json, Status::Unavailable(
                              taken ? "the serving vault is still running it; its result will "
                                      "be in the audit trail and the API"
                                    : "the serving vault did not take the request (is it "
                                      "stopping?); nothing was done"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  } else {
    return Fail(json, vault.status());
  }
  if (!result["ok"].as_bool()) {
    const std::string code = result.contains("code") ? std::string(result["code"].as_string()) : "";
    Status s(code == "unavailable"         ? StatusCode::kUnavailable
             : code == "permission_denied" ? StatusCode::kPermissionDenied
             : code == "invalid_argument"  ? StatusCode::kInvalidArgument
             : code == "not_found"         ? StatusCode::kNotFound
                                           : StatusCode::kIOError,
             std::string(result["error"].as_string()));
    return Fail(json, s);
  }
  const boost::json::object& report = result["report"].as_object();
  Print(json, report, *c.gc ? GcText(report) : ScrubText(report));
  if (*c.scrub && !report.at("damaged_snapshots").as_array().empty()) return 1;
  return 0;
}

}  // namespace cairn::vault::cmd
