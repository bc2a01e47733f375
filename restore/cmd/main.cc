// cairn-restore: flags and wiring only; the logic lives in the
// cairn_restore library (restore/*.h).
//
// Exit codes (lib/base/cli.h): 0 success; 1 a failure (refused, a write
// error on the target) or a restore that found damage (the damaged files
// are listed, everything else is restored); 2 bad usage or input (an
// ambiguous snapshot prefix, a non-empty target without --overwrite or
// --in-place, an in-place restore of another host's series); 4 no vault
// reachable; 5 no such snapshot; 130 interrupted. `plan run`: 0 every
// system passed, 1 one failed, 2 a plan that is not valid (nothing
// restored), 5 no such plan file.
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>
#include <thread>

#include "lib/base/bytes.h"
#include "lib/base/cli.h"
#include "lib/base/errno.h"
#include "lib/base/logging.h"
#include "lib/base/names.h"
#include "lib/base/shell_command.h"
#include "lib/base/thread.h"
#include "lib/client/identity.h"
#include "lib/client/snapshot_json.h"
#include "lib/client/vault_link.h"
#include "lib/repo/record.h"
#include "restore/drill.h"
#include "restore/plan.h"
#include "restore/restorer.h"
#include "restore/snapshot_tree.h"

namespace {

using cairn::Status;
namespace json = boost::json;

namespace cli = cairn::cli;

int Fail(bool json, const Status& s) { return cli::Fail("cairn-restore", json, s); }

std::string LocalTime(uint64_t micros) {
  std::time_t t = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

struct Common {
  std::string state_dir;
  std::vector<std::string> vaults;
  bool json = false;
  // The series "latest" means (--host, --path); the host defaults to this
  // one's.
  std::string host;
  std::vector<std::string> paths;
  bool json_lines = false;  // restore: stream status lines, then the summary

  cairn::restore::SnapshotFilter Filter(const cairn::client::Identity& identity) const {
    cairn::restore::SnapshotFilter f;
    f.host = host == "*" ? "" : host.empty() ? identity.config.host : host;
    f.paths = paths;
    return f;
  }
};

cairn::Result<std::unique_ptr<cairn::client::VaultLink>> Connect(
    const cairn::client::Identity& state, const Common& c) {
  return cairn::client::VaultLink::Open(
      state, c.vaults.empty() ? state.config.vault_addresses : c.vaults, {});
}

// The snapshots that `--host`/`--path` select; every host's when neither is
// given (the listing shows whose each is).
std::vector<cairn::proto::SnapshotInfo> Selected(const std::vector<cairn::proto::SnapshotInfo>& all,
                                                 const Common& c) {
  cairn::restore::SnapshotFilter f;
  f.host = c.host == "*" ? "" : c.host;
  f.paths = c.paths;
  std::vector<cairn::proto::SnapshotInfo> out;
  for (const auto& s : all) {
    if (cairn::restore::MatchesFilter(s, f)) out.push_back(s);
  }
  return out;
}

int RunSnapshots(const Common& c) {
  auto state = cairn::client::LoadIdentity(c.state_dir);
  if (!state.ok()) return Fail(c.json, state.status());
  auto link = Connect(*state, c);
  if (!link.ok()) return Fail(c.json, link.status());
  auto all = (*link)->ListSnapshots();
  if (!all.ok()) return Fail(c.json, all.status());
  const auto list = Selected(*all, c);
  if (c.json) {
    json::array a;
    for (const auto& s : list) a.push_back(cairn::client::SnapshotJson(s));
    cli::PrintJson(json::object{{"ok", true},
                                {"vault", (*link)->address()},
                                {"host", state->config.host},
                                {"snapshots", a}});
    return 0;
  }
  if (list.empty()) {
    std::printf("no snapshots (vault %s)\n", (*link)->address().c_str());
    return 0;
  }
  std::printf("%-8s  %-19s  %-20s  %5s  %-7s  %10s  %8s  %s\n", "ID", "TIME", "HOST", "KIND",
              "READ", "SIZE", "FILES", "PATHS");
  for (const auto& s : list) {
    const std::string host =
        s.hostname + (s.hostname == state->config.host ? std::string(" *") : std::string());
    std::printf("%-8s  %-19s  %-20s  %5s  %-7s  %10s  %8llu  %s\n",
                cairn::client::ShortSnapshotId(s.id).c_str(), LocalTime(s.time_micros).c_str(),
                cairn::EscapeForLog(host).c_str(),
                s.kind == cairn::proto::SessionKind::kImage ? "image" : "files",
                cairn::client::PointInTimeText(s.stats).c_str(),
                cairn::HumanBytes(s.stats.bytes).c_str(),
                static_cast<unsigned long long>(s.stats.files),
                cairn::EscapeForLog(Join(s.paths, ", ")).c_str());
  }
  std::printf(
      "(* this host, %s: `latest` is its newest snapshot; READ: the point-in-time view "
      "the agent read, or live)\n",
      state->config.host.c_str());
  return 0;
}

std::string ModeString(const cairn::repo::TreeEntry& e) {
  using cairn::repo::EntryType;
  char type = '-';
  switch (e.type) {
    case EntryType::kDir:
      type = 'd';
      break;
    case EntryType::kSymlink:
      type = 'l';
      break;
    case EntryType::kFifo:
      type = 'p';
      break;
    case EntryType::kCharDev:
      type = 'c';
      break;
    case EntryType::kBlockDev:
    case EntryType::kImage:
      type = 'b';
      break;
    case EntryType::kSocket:
      type = 's';
      break;
    default:
      break;
  }
  std::string m(1, type);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) m += (e.mode & (0400u >> i)) ? rwx[i] : '-';
  return m;
}

std::atomic<bool> g_interrupted{false};

// "4h", "90m", "45s", "2d", a sum of them ("1h30m"), or plain seconds.
cairn::Result<uint64_t> ParseSeconds(const std::string& text) {
  if (text.empty()) return Status::InvalidArgument("--rto: empty");
  uint64_t total = 0, n = 0;
  bool digits = false;
  for (char ch : text) {
    if (ch >= '0' && ch <= '9') {
      n = n * 10 + static_cast<uint64_t>(ch - '0');
      digits = true;
      if (n > 100ull * 365 * 86400)
        return Status::InvalidArgument("--rto '" + text + "': too long");
      continue;
    }
    const uint64_t unit = ch == 's' ? 1 : ch == 'm' ? 60 : ch == 'h' ? 3600 : ch == 'd' ? 86400 : 0;
    if (unit == 0 || !digits) {
      return Status::InvalidArgument("--rto '" + text + "': expected a duration such as 4h or 90m");
    }
    total += n * unit;
    n = 0;
    digits = false;
  }
  return total + n;
}

int RunDrill(const Common& c, const std::string& snapshot, cairn::restore::DrillOptions options,
             const std::string& rto, const std::string& report_file) {
  auto state = cairn::client::LoadIdentity(c.state_dir);
  if (!state.ok()) return Fail(c.json, state.status());
  if (!rto.empty()) {
    auto seconds = ParseSeconds(rto);
    if (!seconds.ok()) return Fail(c.json, seconds.status());
    options.rto_seconds = *seconds;
  }
  options.restore.vaults = c.vaults;
  options.restore.filter = c.Filter(*state);
  options.restore.cancel = &g_interrupted;
  auto outcome = cairn::restore::RunDrill(*state, snapshot, options);
  if (!outcome.ok()) return Fail(c.json, outcome.status());
  const std::string text = boost::json::serialize(outcome->signed_report);
  if (!report_file.empty()) {
    std::FILE* f = std::fopen(report_file.c_str(), "w");
    if (f == nullptr || std::fwrite(text.data(), 1, text.size(), f) != text.size() ||
        std::fputc('\n', f) == EOF || std::fclose(f) != 0) {
      return Fail(c.json, cairn::ErrnoToStatus(errno, "write " + report_file));
    }
  }
  if (c.json) {
    std::cout << text << "\n";
  } else {
    const auto& r = outcome->signed_report.at("report").as_object();
    const auto& ms = r.at("millis").as_object();
    auto secs = [&](const char* k) {
      char b[32];
      std::snprintf(b, sizeof(b), "%.1f s",
                    static_cast<double>(ms.at(k).to_number<uint64_t>()) / 1000);
      return std::string(b);
    };
    std::cout << "Drill " << r.at("drill").to_number<uint64_t>() << " of snapshot "
              << std::string(r.at("snapshot").as_string()) << " ("
              << std::string(r.at("department").as_string()) << ", "
              << std::string(r.at("snapshot_host").as_string())
              << "): " << (outcome->ok ? "PASSED" : "FAILED: " + outcome->failure) << "\n"
              << "  files " << r.at("files").to_number<uint64_t>() << ", bytes "
              << cairn::HumanBytes(r.at("bytes").to_number<uint64_t>()) << "\n"
              << "  first byte " << secs("first_byte") << ", restored " << secs("restored")
              << ", verified " << secs("verified") << ", checked " << secs("checked") << "\n";
    if (r.at("rto_seconds").is_number()) {
      std::cout << "  RTO " << r.at("rto_seconds").to_number<uint64_t>() << " s ("
                << std::string(r.at("rto_source").as_string())
                << "): " << (r.at("rto_met").as_bool() ? "met" : "MISSED") << "\n";
    } else {
      std::cout << "  RTO: none set (no policy names one; --rto gives one)\n";
    }
    if (const auto& fs = r.at("filesystem"); fs.is_object()) {
      const auto& f = fs.as_object();
      std::cout << "  file system: "
                << (f.at("type").is_string() ? std::string(f.at("type").as_string()) : "unknown")
                << (f.at("ok").as_bool()
                        ? ", checked clean, mounted read-only, " +
                              boost::json::serialize(f.at("files")) + " entries read"
                        : ": " + (f.contains("failure") ? std::string(f.at("failure").as_string())
                                                        : std::string("not sound")))
                << "\n";
    }
    if (const auto& chk = r.at("check"); chk.is_object()) {
      const auto& co = chk.as_object();
      std::cout << "  check: " << std::string(co.at("command").as_string()) << ": "
                << (co.at("timed_out").as_bool() ? std::string("timed out")
                    : co.at("exit").is_null()    ? std::string("did not run")
                                                 : "exit " + boost::json::serialize(co.at("exit")))
                << "\n";
    }
    for (const auto& d : r.at("damaged").as_array()) {
      std::cout << "  DAMAGED: " << boost::json::serialize(d) << "\n";
    }
    std::cout << "  signed by the vault; check with `cairn-vault report verify FILE`"
              << (report_file.empty() ? " (save it with --report FILE)" : "") << "\n";
  }
  return outcome->ok ? 0 : 1;
}

std::string Seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f s", s);
  return b;
}

std::string Short(const std::string& snapshot) {
  return snapshot.empty() ? "-" : cairn::client::ShortSnapshotId(snapshot);
}

// One line per system as it finishes.
void PrintSystemLine(const cairn::restore::SystemReport& r) {
  using cairn::restore::SystemStatus;
  std::string line = "  " +
                     std::string(r.status == SystemStatus::kPassed   ? "passed "
                                 : r.status == SystemStatus::kFailed ? "FAILED "
                                                                     : "skipped") +
                     "  " + r.name + std::string(r.name.size() < 16 ? 16 - r.name.size() : 0, ' ') +
                     "  priority " + std::to_string(r.priority);
  if (r.started_micros != 0) {
    line += "  snapshot " + Short(r.snapshot) + "  " + std::to_string(r.files) + " files  " +
            cairn::HumanBytes(r.bytes) + "  " + Seconds(r.seconds_total) + " (restore " +
            Seconds(r.seconds_restore);
    if (r.check.is_object()) line += ", check " + Seconds(r.seconds_check);
    line += ")";
    if (r.check.is_object()) {
      line += cairn::ShellCommandPassed(r.check.as_object()) ? "  check passed" : "";
    } else if (r.status == SystemStatus::kPassed) {
      line += "  no check";
    }
  }
  if (!r.failure.empty()) line += ": " + r.failure;
  std::printf("%s\n", cairn::EscapeForLog(line).c_str());
  std::fflush(stdout);
}

int RunPlanCommand(bool json, const std::string& file, bool dry_run,
                   const std::vector<std::string>& vaults) {
  auto plan = cairn::restore::LoadPlan(file);
  if (!plan.ok()) return Fail(json, plan.status());
  cairn::restore::PlanOptions options;
  options.dry_run = dry_run;
  options.vaults = vaults;
  options.cancel = &g_interrupted;
  const bool tty = !json && ::isatty(STDERR_FILENO);
  bool progress_shown = false;
  auto clear_progress = [&] {
    if (progress_shown) std::fprintf(stderr, "\r\033[K");
    progress_shown = false;
  };
  if (!json) {
    options.on_start = [&](const cairn::restore::PlanReport& r) {
      std::set<int> priorities;
      for (const auto& s : r.systems) priorities.insert(s.priority);
      std::printf(
          "Plan \"%s\" (%s): %zu system(s) in %zu priorit%s, up to %d at a time, on "
          "failure %s%s\n",
          cairn::EscapeForLog(r.name).c_str(), cairn::EscapeForLog(r.file).c_str(),
          r.systems.size(), priorities.size(), priorities.size() == 1 ? "y" : "ies", r.parallel,
          r.on_failure == cairn::restore::OnFailure::kStop ? "stop" : "continue",
          r.dry_run ? " (dry run: nothing is restored)" : "");
      int current = -1;
      for (const auto& s : r.systems) {
        if (s.priority != current) {
          current = s.priority;
          std::printf("  priority %d:", current);
          for (const auto& t : r.systems) {
            if (t.priority == current) std::printf(" %s", t.name.c_str());
          }
          std::printf("\n");
        }
      }
      std::fflush(stdout);
    };
    options.on_finished = [&](const cairn::restore::SystemReport& r) {
      clear_progress();
      PrintSystemLine(r);
    };
  }
  if (tty) {
    options.progress = [&](const cairn::restore::PlanProgress& p) {
      const auto& t = p.total;
      std::string names;
      for (const auto& n : p.running) names += (names.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "\r\033[K%zu/%zu done; %s: %s of %s, %llu of %llu files", p.systems_done,
                   p.systems_total, names.c_str(), cairn::HumanBytes(t.bytes_done).c_str(),
                   cairn::HumanBytes(t.bytes_total).c_str(),
                   static_cast<unsigned long long>(t.files_done),
                   static_cast<unsigned long long>(t.files_total));
      progress_shown = true;
    };
  }
  auto report = cairn::restore::RunPlan(*plan, options);
  clear_progress();
  if (!report.ok()) return Fail(json, report.status());
  const auto& r = *report;
  if (json) {
    cli::PrintJson(cairn::restore::PlanReportJson(r));
  } else {
    std::printf("\n%-20s %5s  %-7s  %-8s  %8s  %10s  %9s  %9s  %9s\n", "SYSTEM", "PRIO", "STATUS",
                "SNAPSHOT", "FILES", "BYTES", "RESTORE", "CHECK", "TOTAL");
    size_t passed = 0, failed = 0, skipped = 0;
    for (const auto& s : r.systems) {
      passed += s.status == cairn::restore::SystemStatus::kPassed;
      failed += s.status == cairn::restore::SystemStatus::kFailed;
      skipped += s.status == cairn::restore::SystemStatus::kSkipped;
      const bool ran = s.started_micros != 0;
      std::printf("%-20s %5d  %-7s  %-8s  %8s  %10s  %9s  %9s  %9s\n", s.name.c_str(), s.priority,
                  std::string(cairn::restore::SystemStatusName(s.status)).c_str(),
                  Short(s.snapshot).c_str(), ran ? std::to_string(s.files).c_str() : "-",
                  ran ? cairn::HumanBytes(s.bytes).c_str() : "-",
                  ran ? Seconds(s.seconds_restore).c_str() : "-",
                  ran && s.check.is_object() ? Seconds(s.seconds_check).c_str() : "-",
                  ran ? Seconds(s.seconds_total).c_str() : "-");
    }
    if (r.dry_run) {
      for (const auto& s : r.systems) {
        if (s.snapshot.empty()) {
          std::printf("%s: %s\n", s.name.c_str(), cairn::EscapeForLog(s.failure).c_str());
        } else {
          std::printf("%s: snapshot %s of %s, %s, from %s, onto %s\n", s.name.c_str(),
                      s.snapshot.c_str(), cairn::EscapeForLog(s.snapshot_host).c_str(),
                      LocalTime(s.snapshot_time_micros).c_str(), s.vault.c_str(),
                      cairn::EscapeForLog(s.target).c_str());
        }
      }
      std::printf("dry run: nothing restored; %s\n",
                  r.ok ? "every snapshot resolved" : "a snapshot could not be resolved");
    } else {
      std::printf("total %s (wall clock, %s to %s): %zu passed, %zu failed, %zu skipped%s\n",
                  Seconds(r.total_seconds).c_str(), LocalTime(r.started_micros).c_str(),
                  LocalTime(r.finished_micros).c_str(), passed, failed, skipped,
                  r.cancelled ? " (interrupted)" : "");
    }
  }
  if (r.cancelled) return 130;
  return r.ok ? 0 : 1;
}

int RunLs(const Common& c, const std::string& snapshot, std::string path) {
  auto state = cairn::client::LoadIdentity(c.state_dir);
  if (!state.ok()) return Fail(c.json, state.status());
  auto link = Connect(*state, c);
  if (!link.ok()) return Fail(c.json, link.status());
  auto list = (*link)->ListSnapshots();
  if (!list.ok()) return Fail(c.json, list.status());
  auto snap = cairn::restore::FindSnapshot(*list, snapshot, c.Filter(*state));
  if (!snap.ok()) return Fail(c.json, snap.status());
  cairn::proto::RestoreBegin begin;
  begin.purpose = "browse";
  begin.snapshot_id = snap->id;
  if (Status s = (*link)->BeginRestore(begin); !s.ok()) return Fail(c.json, s);
  auto decoder = cairn::repo::RecordDecoder::Create(state->keys);
  if (!decoder.ok()) return Fail(c.json, decoder.status());
  auto tree = cairn::restore::LoadTree(link->get(), decoder->get(), snap->root_tree);
  if (!tree.ok()) return Fail(c.json, tree.status());
  while (!path.empty() && path.front() == '/') path.erase(path.begin());
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::vector<uint32_t> shown;
  if (path.empty()) {
    shown = tree->top;
  } else {
    uint32_t n = cairn::restore::FindNode(*tree, path);
    if (n == cairn::restore::kNoParent) {
      return Fail(c.json, Status::NotFound("no " + path + " in snapshot " + snap->id));
    }
    shown = tree->nodes[n].entry.type == cairn::repo::EntryType::kDir ? tree->nodes[n].children
                                                                      : std::vector<uint32_t>{n};
  }
  if (c.json) {
    json::array a;
    for (uint32_t i : shown) {
      const auto& e = tree->nodes[i].entry;
      json::object o{
          {"name", e.name},
          {"path", tree->nodes[i].path},
          {"type", std::string(cairn::repo::EntryTypeName(e.type))},
          {"mode", e.mode},
          {"uid", e.uid},
          {"gid", e.gid},
          {"user", e.user},
          {"group", e.group},
          {"size", e.size},
          {"mtime", cli::Rfc3339(static_cast<uint64_t>(std::max<int64_t>(0, e.mtime_ns / 1000)))},
          {"mtime_ns", e.mtime_ns}};
      if (e.type == cairn::repo::EntryType::kSymlink) o["target"] = e.symlink_target;
      if (e.type == cairn::repo::EntryType::kHardlink) o["link"] = e.link_path;
      a.push_back(std::move(o));
    }
    json::array problems;
    for (const auto& p : tree->problems) {
      problems.push_back(json::object{{"path", p.path}, {"error", p.status.ToString()}});
    }
    cli::PrintJson(json::object{{"ok", tree->problems.empty()},
                                {"snapshot", snap->id},
                                {"entries", a},
                                {"problems", problems}});
  } else {
    for (uint32_t i : shown) {
      const auto& e = tree->nodes[i].entry;
      std::string owner = e.user.empty() ? std::to_string(e.uid) : e.user;
      std::string group = e.group.empty() ? std::to_string(e.gid) : e.group;
      std::string name = e.name;
      if (e.type == cairn::repo::EntryType::kDir) name += "/";
      if (e.type == cairn::repo::EntryType::kSymlink) name += " -> " + e.symlink_target;
      if (e.type == cairn::repo::EntryType::kHardlink) name += " => " + e.link_path;
      std::printf("%s  %-8s %-8s %12llu  %s  %s\n", ModeString(e).c_str(),
                  cairn::EscapeForLog(owner).c_str(), cairn::EscapeForLog(group).c_str(),
                  static_cast<unsigned long long>(e.size),
                  LocalTime(static_cast<uint64_t>(std::max<int64_t>(0, e.mtime_ns / 1000))).c_str(),
                  cairn::EscapeForLog(name).c_str());
    }
    for (const auto& p : tree->problems) {
      std::fprintf(stderr, "error: %s: %s\n", p.path.empty() ? "/" : p.path.c_str(),
                   p.status.ToString().c_str());
    }
  }
  return tree->problems.empty() ? 0 : 1;
}

void PrintProgress(const cairn::restore::RestoreProgress& p) {
  double rate = p.seconds > 0 ? static_cast<double>(p.bytes_done) / p.seconds : 0;
  std::string eta = "?";
  if (rate > 0 && p.bytes_total >= p.bytes_done) {
    eta = cairn::HumanDuration(static_cast<double>(p.bytes_total - p.bytes_done) / rate);
  }
  std::fprintf(stderr, "\r\033[K%s of %s, %llu of %llu files, %s/s, ETA %s",
               cairn::HumanBytes(p.bytes_done).c_str(), cairn::HumanBytes(p.bytes_total).c_str(),
               static_cast<unsigned long long>(p.files_done),
               static_cast<unsigned long long>(p.files_total),
               cairn::HumanBytes(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
}

int RunRestore(const Common& c, const std::string& snapshot,
               cairn::restore::RestoreOptions options) {
  auto state = cairn::client::LoadIdentity(c.state_dir);
  if (!state.ok()) return Fail(c.json, state.status());
  options.vaults = c.vaults;
  options.filter = c.Filter(*state);
  options.cancel = &g_interrupted;
  const bool tty = !c.json && !c.json_lines && ::isatty(STDERR_FILENO);
  if (tty) options.progress = PrintProgress;
  if (c.json_lines) {
    options.progress = [](const cairn::restore::RestoreProgress& p) {
      const double rate = p.seconds > 0 ? static_cast<double>(p.bytes_done) / p.seconds : 0;
      json::value eta = nullptr;
      if (rate > 0 && p.bytes_total >= p.bytes_done) {
        eta = static_cast<double>(p.bytes_total - p.bytes_done) / rate;
      }
      cli::PrintJson(
          json::object{{"message_type", "status"},
                       {"seconds_elapsed", p.seconds},
                       {"seconds_remaining", eta},
                       {"bytes_done", p.bytes_done},
                       {"total_bytes", p.bytes_total},
                       {"percent_done", p.bytes_total > 0 ? static_cast<double>(p.bytes_done) /
                                                                static_cast<double>(p.bytes_total)
                                                          : 0.0},
                       {"files_done", p.files_done},
                       {"total_files", p.files_total},
                       {"bytes_received", p.bytes_received}});
    };
  }
  auto result = cairn::restore::Restore(*state, snapshot, options);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!result.ok()) {
    const int rc =
        Fail(c.json,
             result.status().WithContext(options.verify_only ? "verify failed" : "restore failed"));
    return result.status().IsCancelled() ? 130 : rc;
  }
  const auto& r = *result;
  const bool ok = r.damaged.empty();
  if (c.json || c.json_lines) {
    json::array damaged;
    for (const auto& d : r.damaged) {
      json::array paths;
      for (const auto& p : d.paths) paths.emplace_back(p);
      damaged.push_back(json::object{{"what", d.what}, {"error", d.error}, {"paths", paths}});
    }
    json::array warnings;
    for (const auto& w : r.warnings) warnings.emplace_back(w);
    cli::PrintJson(json::object{{"ok", ok},
                                {"message_type", "summary"},
                                {"snapshot", r.snapshot_id},
                                {"vault", r.vault},
                                {"verify_only", options.verify_only},
                                {"in_place", options.in_place},
                                {"image_target", r.image_target},
                                {"files", r.files},
                                {"dirs", r.dirs},
                                {"symlinks", r.symlinks},
                                {"hardlinks", r.hardlinks},
                                {"specials", r.specials},
                                {"bytes", r.bytes},
                                {"chunks", r.chunks},
                                {"chunks_delta", r.chunks_delta},
                                {"bytes_received", r.bytes_received},
                                {"bytes_sent", r.bytes_sent},
                                {"bytes_written", r.bytes_written},
                                {"bytes_unchanged", r.bytes_unchanged},
                                {"damaged", damaged},
                                {"warnings", warnings},
                                {"seconds", r.seconds}});
  } else {
    for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (const auto& d : r.damaged) {
      std::fprintf(stderr, "DAMAGED: %s: %s\n", d.what.c_str(), d.error.c_str());
      for (const auto& p : d.paths) {
        std::fprintf(stderr, "  affects %s\n", cairn::EscapeForLog(p).c_str());
      }
    }
    const double secs = r.seconds > 0 ? r.seconds : 1e-9;
    std::printf(
        "%s snapshot %s from %s: %llu files, %llu dirs, %s in %.1f s (%s/s)\n",
        options.verify_only ? "verified" : "restored", r.snapshot_id.c_str(), r.vault.c_str(),
        static_cast<unsigned long long>(r.files), static_cast<unsigned long long>(r.dirs),
        cairn::HumanBytes(r.bytes).c_str(), r.seconds,
        cairn::HumanBytes(static_cast<uint64_t>(static_cast<double>(r.bytes) / secs)).c_str());
    std::printf("received %s, written %s", cairn::HumanBytes(r.bytes_received).c_str(),
                cairn::HumanBytes(r.bytes_written).c_str());
    if (options.in_place) {
      std::printf(", unchanged %s, %llu range(s) as deltas",
                  cairn::HumanBytes(r.bytes_unchanged).c_str(),
                  static_cast<unsigned long long>(r.chunks_delta));
    }
    std::printf("\n");
    if (!ok) {
      std::printf("%zu problem(s): the paths listed above are not restored whole%s\n",
                  r.damaged.size(),
                  options.verify_only ? "" : " (damaged files are kept as NAME.cairn-damaged)");
    } else if (options.verify_only) {
      std::printf("every chunk verified: no damage\n");
    }
  }
  return ok ? 0 : 1;
}

// Many files are written at once; allow as many descriptors as the system does.
void RaiseFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// SIGINT and SIGTERM stop a restore cleanly: unfinished files are removed.
// Where the watching thread cannot be started they keep their default
// action (the process ends; the next restore with --overwrite redoes what
// was unfinished), rather than being blocked with nobody to take them.
void WatchSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // every thread started after this inherits it
  cairn::Result<std::thread> watcher = cairn::StartThread("the signal watcher", [set] {
    int sig = 0;
    if (sigwait(&set, &sig) == 0) {
      g_interrupted = true;
      std::fprintf(stderr, "\ncairn-restore: interrupted; removing unfinished files\n");
    }
  });
  if (watcher.ok()) {
    watcher->detach();
  } else {
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cairn-restore: list, browse, restore and verify snapshots, from the vault or the DR\n"
      "site; drills and recovery plans. Identity: an enrolled agent's state directory (its\n"
      "certificate and keys).\n"
      "SNAPSHOT is an ID, a unique prefix of one (the 8 digits `snapshots` shows), or\n"
      "`latest`: this host's newest snapshot (--host and --path choose another series).\n"
      "Environment: CAIRN_STATE (--state), CAIRN_VAULT (--vault)."};
  cli::CommonFlags flags;
  cli::AddCommonFlags(app, &flags, "cairn-restore");
  app.require_subcommand(1);

  Common c;
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--state", c.state_dir, "State directory of an enrolled agent")
        ->envname("CAIRN_STATE")
        ->required();
    cmd->add_option("--vault", c.vaults,
                    "Vault address host:port, repeatable; the first that answers is used "
                    "(default: the agent's)")
        ->envname("CAIRN_VAULT");
    cmd->add_option("--host", c.host,
                    "Snapshots of this host, * for any (default for latest: this host)");
    cmd->add_option("--path", c.paths, "Snapshots that include this path (repeatable)");
    cli::AddJsonFlag(cmd, &flags);
  };

  auto* snapshots_cmd = app.add_subcommand("snapshots", "List the department's snapshots");
  add_common(snapshots_cmd);
  cli::Examples(snapshots_cmd,
                "Examples:\n  cairn-restore snapshots --state /var/lib/cairn-agent\n"
                "  cairn-restore snapshots --state /var/lib/cairn-agent --host db01 --json");

  std::string snapshot, ls_path;
  auto* ls_cmd = app.add_subcommand("ls", "List a directory of a snapshot");
  ls_cmd->add_option("SNAPSHOT", snapshot, "Snapshot ID, unique prefix, or latest")->required();
  ls_cmd->add_option("PATH", ls_path, "Directory or file in the snapshot (default: its root)");
  add_common(ls_cmd);
  cli::Examples(ls_cmd, "Example:\n  cairn-restore ls latest /etc --state /var/lib/cairn-agent");

  cairn::restore::RestoreOptions options;
  auto* restore_cmd = app.add_subcommand("restore", "Restore or verify a snapshot");
  restore_cmd->add_option("SNAPSHOT", snapshot, "Snapshot ID, unique prefix, or latest")
      ->required();
  add_common(restore_cmd);
  restore_cmd->add_option("--target", options.target,
                          "Directory to restore into (created if missing); for an image "
                          "snapshot, an image file or block device");
  restore_cmd->add_option("--include", options.includes,
                          "Restore only paths matching this pattern (fnmatch, on paths from "
                          "the snapshot root; a directory brings its contents), repeatable");
  restore_cmd->add_flag("--in-place", options.in_place,
                        "Update existing files and devices in place, fetching only the "
                        "blocks that differ (failback)");
  restore_cmd->add_flag("--overwrite", options.overwrite,
                        "Restore into a non-empty target, replacing what is in the way");
  restore_cmd->add_flag("--verify-only", options.verify_only,
                        "Fetch, decrypt and check every chunk; write nothing");
  restore_cmd->add_flag("--force", options.force,
                        "Allow an in-place restore of another host's (or another image's) "
                        "snapshot onto this target");
  restore_cmd->add_flag("--json-lines", c.json_lines,
                        "Stream progress as JSON lines on stdout, then the result as a "
                        "\"summary\" line");
  restore_cmd->add_flag("--follow-symlink", options.follow_target_symlink,
                        "Restore where a --target that is a symbolic link points");
  restore_cmd
      ->add_option("--connections", options.connections,
                   "Parallel connections to the vault (and decoding threads)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cli::Examples(
      restore_cmd,
      "Examples:\n"
      "  cairn-restore restore latest --state /var/lib/cairn-agent --target /srv/restore\n"
      "  cairn-restore restore latest --state /var/lib/cairn-agent --verify-only\n"
      "  cairn-restore restore 3fa2c81e --state /var/lib/cairn-agent --target /dev/vdb "
      "--in-place");

  cairn::restore::DrillOptions drill;
  std::string drill_rto, drill_report;
  uint64_t check_timeout = 600;
  auto* drill_cmd = app.add_subcommand(
      "drill", "A restore drill: restore into a sandbox, check, time it, and get a signed report");
  drill_cmd->add_option("SNAPSHOT", snapshot, "Snapshot ID, unique prefix, or latest")->required();
  add_common(drill_cmd);
  drill_cmd
      ->add_option("--sandbox", drill.sandbox,
                   "A new or empty directory; removed afterwards unless --keep")
      ->required();
  drill_cmd->add_option("--check", drill.check,
                        "A shell command run in the restored tree (CAIRN_DRILL_ROOT); it must "
                        "exit 0 within --check-timeout");
  drill_cmd->add_option("--check-timeout", check_timeout, "Seconds the check may take")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  drill_cmd->add_option("--rto", drill_rto,
                        "Recovery time objective (4h, 90m) when the snapshot's policy sets none");
  drill_cmd->add_flag("--keep", drill.keep, "Keep the sandbox afterwards");
  drill_cmd->add_option("--report", drill_report, "Write the signed report (JSON) here");
  drill_cmd
      ->add_option("--connections", drill.restore.connections, "Parallel connections to the vault")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cli::Examples(
      drill_cmd,
      "Exit 0 when the drill passed, 1 when it failed (damage, a failing or hanging "
      "check, a missed RTO).\nExamples:\n"
      "  cairn-restore drill latest --state /var/lib/cairn-agent --sandbox /srv/drill\n"
      "  cairn-restore drill latest --state /var/lib/cairn-agent --sandbox /srv/drill \\\n"
      "    --check 'test -s etc/hostname' --rto 4h --report drill.json");

  std::string plan_file;
  bool plan_dry_run = false;
  auto* plan_cmd = app.add_subcommand(
      "plan", "Recovery plans: a department's or the city's systems restored in order");
  plan_cmd->require_subcommand(1);
  auto* plan_run = plan_cmd->add_subcommand(
      "run",
      "Restore every system of a plan onto new targets, priority by priority, check each, and "
      "time it");
  plan_run->add_option("PLAN", plan_file, "The plan: a TOML file (doc/design.md section 23.1)")
      ->required();
  plan_run->add_flag("--dry-run", plan_dry_run,
                     "Check the plan, its state directories and targets, and resolve each "
                     "system's snapshot; restore nothing");
  std::vector<std::string> plan_vaults;
  plan_run->add_option("--vault", plan_vaults,
                       "Vault address host:port, repeatable: every system reads from it instead "
                       "of the addresses in the plan or its state directory (the DR site)");
  cli::AddJsonFlag(plan_run, &flags);
  cli::Examples(
      plan_run,
      "Exit 0 when every system passed, 1 when any failed (its restore, damage, or its check), "
      "2 for a plan\nthat is not valid (then nothing is restored), 130 when interrupted.\n"
      "A plan (every key in doc/design.md section 23.1):\n"
      "  name = \"Finance department recovery\"\n"
      "  parallel = 2               # systems of one priority at once\n"
      "  on_failure = \"stop\"        # or \"continue\"\n"
      "  [[system]]\n"
      "  name = \"fin-db\"\n"
      "  priority = 1               # lower first\n"
      "  state = \"/var/lib/cairn-agent-fin\"\n"
      "  host = \"fin-db-01\"         # latest of this host's series\n"
      "  target = \"/srv/new/fin-db\"\n"
      "  check = \"test -s srv/db/PG_VERSION\"\n"
      "Examples:\n"
      "  cairn-restore plan run /etc/cairn/plans/finance.toml --dry-run\n"
      "  cairn-restore plan run /etc/cairn/plans/city.toml --vault DR_HOST:7420 --json "
      ">recovery.json");

  if (int rc = cli::Parse(app, argc, argv, "cairn-restore"); rc >= 0) return rc;
  c.json = flags.json;
  cairn::LogOptions log;
  log.program = "cairn-restore";
  log.level = flags.Level("warn");
  if (Status s = cairn::InitLogging(log); !s.ok()) return Fail(c.json, s);
  // Restored files get exactly the permission bits the snapshot recorded.
  ::umask(0);
  RaiseFileLimit();
  WatchSignals();

  if (plan_run->parsed()) return RunPlanCommand(c.json, plan_file, plan_dry_run, plan_vaults);
  if (snapshots_cmd->parsed()) return RunSnapshots(c);
  if (ls_cmd->parsed()) return RunLs(c, snapshot, ls_path);
  if (drill_cmd->parsed()) {
    drill.check_timeout = std::chrono::seconds(check_timeout);
    return RunDrill(c, snapshot, drill, drill_rto, drill_report);
  }
  if (restore_cmd->parsed()) {
    if (options.target.empty() && !options.verify_only) {
      return Fail(c.json, Status::InvalidArgument("--target is required (or --verify-only)"));
    }
    return RunRestore(c, snapshot, options);
  }
  return cli::kExitUsage;
}
