// cairn-agent: flags and wiring only; the logic lives in the cairn_agent
// library (agent/*.h).
//
// Exit codes (lib/base/cli.h): 0 success; 3 a backup that completed with
// warnings (a file vanished or could not be read: counted in the summary
// and listed in --json); 1 a failure (refused, storage or network error);
// 2 bad usage or input (malformed token, missing PATH, already enrolled
// without --force); 4 no vault reachable; 5 not found.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

#include "agent/backup.h"
#include "agent/consistency.h"
#include "agent/file_cache.h"
#include "agent/image_backup.h"
#include "agent/run.h"
#include "agent/vault_session.h"
#include "lib/base/bytes.h"
#include "lib/base/cli.h"
#include "lib/base/logging.h"
#include "lib/client/enroll.h"
#include "lib/client/identity.h"
#include "restore/drill.h"

namespace {

using cairn::Status;

namespace cli = cairn::cli;

int Fail(bool json, const Status& s) { return cli::Fail("cairn-agent", json, s); }

int RunEnroll(const cairn::client::EnrollOptions& options, bool json) {
  auto result = cairn::client::Enroll(options);
  if (!result.ok()) return Fail(json, result.status());
  const auto& c = result->config;
  if (json) {
    boost::json::array addresses;
    for (const auto& a : c.vault_addresses) addresses.emplace_back(a);
    boost::json::object o{{"ok", true},
                          {"department", c.department},
                          {"department_id", c.department_id},
                          {"host", c.host},
                          {"vault_addresses", addresses},
                          {"ca_fingerprint", result->ca_fingerprint},
                          {"certificate_serial", result->certificate_serial},
                          {"state", options.state_dir}};
    cli::PrintJson(o);
  } else {
    std::cout << "Enrolled " << c.host << " in department " << c.department << " (vault "
              << c.vault_addresses.front() << "); state in " << options.state_dir << "\n";
  }
  return 0;
}

// How progress is shown: a line on a terminal, JSON status lines with
// --json-lines (restic's "status" messages), or not at all.
enum class ProgressOut { kNone, kLine, kJsonLines };

ProgressOut ChooseProgress(bool json, bool json_lines) {
  if (json_lines) return ProgressOut::kJsonLines;
  return !json && ::isatty(STDERR_FILENO) ? ProgressOut::kLine : ProgressOut::kNone;
}

std::function<void(const cairn::agent::BackupProgress&)> Progress(ProgressOut out, bool image) {
  if (out == ProgressOut::kNone) return nullptr;
  if (out == ProgressOut::kJsonLines) {
    return [](const cairn::agent::BackupProgress& p) {
      if (p.final) return;  // the summary follows
      boost::json::object o{
          {"message_type", "status"},
          {"seconds_elapsed", p.seconds},
          {"seconds_remaining",
           p.eta_seconds < 0 ? boost::json::value(nullptr) : boost::json::value(p.eta_seconds)},
          {"bytes_done", p.bytes_covered},
          {"total_bytes", p.bytes_total},
          {"percent_done", p.bytes_total > 0 ? static_cast<double>(p.bytes_covered) /
                                                   static_cast<double>(p.bytes_total)
                                             : 0.0},
          {"bytes_read", p.bytes_read},
          {"files_done", p.files},
          {"dirs_done", p.dirs},
          {"new_bytes", p.new_bytes}};
      cli::PrintJson(o);
    };
  }
  return [image](const cairn::agent::BackupProgress& p) {
    const std::string eta = p.final             ? ""
                            : p.eta_seconds < 0 ? ", ETA ?"
                                                : ", ETA " + cairn::HumanDuration(p.eta_seconds);
    const std::string rate =
        cairn::HumanBytes(static_cast<uint64_t>(static_cast<double>(p.bytes_read) / p.seconds));
    if (image) {
      std::fprintf(
          stderr, "\r\033[K%s read, %llu extents (%llu changed, %llu as deltas), %s/s, %s new%s%s",
          cairn::HumanBytes(p.bytes_read).c_str(), static_cast<unsigned long long>(p.extents),
          static_cast<unsigned long long>(p.extents_changed),
          static_cast<unsigned long long>(p.extents_delta), rate.c_str(),
          cairn::HumanBytes(p.new_bytes).c_str(), eta.c_str(), p.final ? "\n" : "");
    } else {
      std::fprintf(stderr, "\r\033[K%s read, %llu files, %llu dirs, %s/s, %s new%s%s",
                   cairn::HumanBytes(p.bytes_read).c_str(),
                   static_cast<unsigned long long>(p.files),
                   static_cast<unsigned long long>(p.dirs), rate.c_str(),
                   cairn::HumanBytes(p.new_bytes).c_str(), eta.c_str(), p.final ? "\n" : "");
    }
    std::fflush(stderr);
  };
}

// Removes what a killed backup left (agent/pit.h), saying so.
void CleanUpViews(const std::string& state_dir) {
  std::vector<std::string> removed;
  if (Status s = cairn::agent::CleanUpLeftViews(state_dir, &removed); !s.ok()) {
    std::cerr << "cairn-agent: warning: " << s.ToString() << "\n";
  }
  for (const auto& r : removed)
    std::cerr << "cairn-agent: removed what a killed backup left: " << r << "\n";
}

// How the command says what made the backup consistent, or not.
void PrintConsistency(const cairn::agent::ConsistencyLog& log) {
  const std::string text = log.Text(4096);
  if (!text.empty()) std::printf("%s\n", text.c_str());
}

int RunBackup(const std::string& state_dir, cairn::agent::BackupOptions options,
              cairn::agent::ConsistencyOptions consistency, bool json, ProgressOut progress) {
  auto paths = cairn::agent::NormalizeBackupPaths(options.paths);
  if (!paths.ok()) return Fail(json, paths.status());
  auto state = cairn::client::LoadIdentity(state_dir);
  if (!state.ok()) return Fail(json, state.status());
  auto lock = cairn::client::LockIdentity(state_dir, "backup");
  if (!lock.ok()) return Fail(json, lock.status());
  auto cache = cairn::agent::FileCache::Open(cairn::client::IdentityPaths(state_dir).lmdb());
  if (!cache.ok()) return Fail(json, cache.status().WithContext("open file cache"));
  CleanUpViews(state_dir);
  auto session = cairn::agent::OpenVaultSession(*state, *paths);
  if (!session.ok()) return Fail(json, session.status());
  options.paths = *paths;
  options.progress = Progress(progress, /*image=*/false);
  json = json || progress == ProgressOut::kJsonLines;
  consistency.state_dir = state_dir;
  cairn::agent::ConsistencyLog log;
  std::optional<cairn::agent::BackupResult> result;
  auto snapshot = cairn::agent::RunConsistently(
      consistency, *paths, /*image=*/false,
      [&](const cairn::agent::PitView& view) -> cairn::Result<std::string> {
        view.ApplyTo(&options);
        CAIRN_ASSIGN_OR_RETURN(
            result, cairn::agent::RunBackup(state->keys, cache->get(), session->get(), options));
        return result->snapshot_id;
      },
      &log);
  session->reset();  // orderly close
  if (!snapshot.ok()) {
    if (!json) PrintConsistency(log);
    return Fail(json, snapshot.status().WithContext("backup failed"));
  }
  if (json) {
    boost::json::array warnings;
    for (const auto& w : result->warnings) warnings.emplace_back(w);
    boost::json::object o{{"ok", true},
                          {"message_type", "summary"},
                          {"snapshot", result->snapshot_id},
                          {"root_tree", cairn::ToHex(result->root_tree)},
                          {"files", result->files},
                          {"dirs", result->dirs},
                          {"bytes", result->bytes},
                          {"new_bytes", result->new_bytes},
                          {"new_chunks", result->new_chunks},
                          {"cache_hits", result->cache_hits},
                          {"bytes_read", result->bytes_read},
                          {"bytes_read_direct", result->bytes_read_direct},
                          {"peak_bytes_in_flight", result->peak_bytes_in_flight},
                          {"warnings", warnings},
                          {"consistency", log.Json()},
                          {"seconds", result->seconds}};
    cli::PrintJson(o);
  } else {
    for (const auto& w : result->warnings) std::cerr << "warning: " << w << "\n";
    PrintConsistency(log);
    std::printf("%llu files, %llu dirs, %s; %s new in %llu chunks; %zu warning(s); %.1f s\n",
                static_cast<unsigned long long>(result->files),
                static_cast<unsigned long long>(result->dirs),
                cairn::HumanBytes(result->bytes).c_str(),
                cairn::HumanBytes(result->new_bytes).c_str(),
                static_cast<unsigned long long>(result->new_chunks), result->warnings.size(),
                result->seconds);
    std::printf("snapshot %s\n", result->snapshot_id.c_str());
  }
  return result->warnings.empty() ? cli::kExitOk : cli::kExitWarnings;
}

int RunImageBackup(const std::string& state_dir, cairn::agent::ImageBackupOptions options,
                   cairn::agent::ConsistencyOptions consistency, bool json, ProgressOut progress) {
  auto images = cairn::agent::NormalizeImagePaths(options.images);
  if (!images.ok()) return Fail(json, images.status());
  auto state = cairn::client::LoadIdentity(state_dir);
  if (!state.ok()) return Fail(json, state.status());
  auto lock = cairn::client::LockIdentity(state_dir, "backup");
  if (!lock.ok()) return Fail(json, lock.status());
  auto store = cairn::agent::ExtentStore::Open(cairn::client::IdentityPaths(state_dir).lmdb());
  if (!store.ok()) return Fail(json, store.status().WithContext("open extent state"));
  cairn::agent::SessionOptions session_options;
  session_options.kind = cairn::proto::SessionKind::kImage;
  CleanUpViews(state_dir);
  auto session = cairn::agent::OpenVaultSession(*state, *images, session_options);
  if (!session.ok()) return Fail(json, session.status());
  options.images = *images;
  options.progress = Progress(progress, /*image=*/true);
  json = json || progress == ProgressOut::kJsonLines;
  consistency.state_dir = state_dir;
  cairn::agent::ConsistencyLog log;
  std::optional<cairn::agent::ImageBackupResult> result;
  auto snapshot = cairn::agent::RunConsistently(
      consistency, *images, /*image=*/true,
      [&](const cairn::agent::PitView& view) -> cairn::Result<std::string> {
        view.ApplyTo(&options);
        CAIRN_ASSIGN_OR_RETURN(result, cairn::agent::RunImageBackup(state->keys, store->get(),
                                                                    session->get(), options));
        return result->snapshot_id;
      },
      &log);
  session->reset();  // orderly close
  if (!snapshot.ok()) {
    if (!json) PrintConsistency(log);
    return Fail(json, snapshot.status().WithContext("image backup failed"));
  }
  const auto& r = *result;
  if (json) {
    boost::json::array warnings;
    for (const auto& w : r.warnings) warnings.emplace_back(w);
    boost::json::object o{{"ok", true},
                          {"message_type", "summary"},
                          {"snapshot", r.snapshot_id},
                          {"root_tree", cairn::ToHex(r.root_tree)},
                          {"images", r.images},
                          {"bytes", r.bytes},
                          {"new_bytes", r.new_bytes},
                          {"new_chunks", r.new_chunks},
                          {"extents_total", r.extents_total},
                          {"extents_changed", r.extents_changed},
                          {"extents_delta", r.extents_delta},
                          {"extents_hole", r.extents_hole},
                          {"delta_bytes", r.delta_bytes},
                          {"warnings", warnings},
                          {"consistency", log.Json()},
                          {"seconds", r.seconds}};
    cli::PrintJson(o);
  } else {
    for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
    PrintConsistency(log);
    std::printf(
        "%llu image(s), %s; %llu of %llu extents changed, %llu as deltas (%s); "
        "%s new in %llu chunks; %.1f s\n",
        static_cast<unsigned long long>(r.images), cairn::HumanBytes(r.bytes).c_str(),
        static_cast<unsigned long long>(r.extents_changed),
        static_cast<unsigned long long>(r.extents_total),
        static_cast<unsigned long long>(r.extents_delta), cairn::HumanBytes(r.delta_bytes).c_str(),
        cairn::HumanBytes(r.new_bytes).c_str(), static_cast<unsigned long long>(r.new_chunks),
        r.seconds);
    std::printf("snapshot %s\n", r.snapshot_id.c_str());
  }
  return r.warnings.empty() ? cli::kExitOk : cli::kExitWarnings;
}

// A drill job on a drill host (doc/design.md section 23.3): the snapshot
// restored into DIR/job-N (DIR emptied first: what a killed drill left),
// read from the vault addresses the job names (the DR site's), checked,
// and reported to the vault of record, which signs it.
cairn::Result<std::string> RunDrillJob(const std::string& state_dir, const std::string& drill_dir,
                                       const cairn::proto::Job& job) {
  CAIRN_ASSIGN_OR_RETURN(cairn::client::Identity state, cairn::client::LoadIdentity(state_dir));
  std::error_code ec;
  std::filesystem::create_directories(drill_dir, ec);
  if (ec) return cairn::Status::IOError("create " + drill_dir + ": " + ec.message());
  for (const auto& e : std::filesystem::directory_iterator(drill_dir, ec)) {
    std::filesystem::remove_all(e.path(), ec);
    if (ec) {
      return cairn::Status::IOError("remove the leftover drill sandbox " + e.path().string() +
                                    ": " + ec.message());
    }
  }
  cairn::restore::DrillOptions o;
  o.sandbox = drill_dir + "/job-" + std::to_string(job.job_id);
  o.check = job.check;
  if (job.check_timeout_seconds != 0)
    o.check_timeout = std::chrono::seconds(job.check_timeout_seconds);
  if (job.rto_seconds != 0) o.rto_seconds = job.rto_seconds;
  o.restore.vaults = job.read_from;
  o.job_id = job.job_id;
  CAIRN_ASSIGN_OR_RETURN(cairn::restore::DrillOutcome outcome,
                         cairn::restore::RunDrill(state, job.snapshot_id, o));
  if (!outcome.ok) return cairn::Status::Corruption("the drill failed: " + outcome.failure);
  return job.snapshot_id;
}

// A restore job (doc/design.md section 23.2): the snapshot restored into the
// job's target, a new or empty directory (never in place, never over
// anything), every chunk checked; damaged files fail the job, naming them.
cairn::Result<std::string> RunRestoreJob(const std::string& state_dir,
                                         const cairn::proto::Job& job) {
  if (job.target.empty() || job.target.front() != '/') {
    return Status::InvalidArgument("a restore job needs an absolute target");
  }
  CAIRN_ASSIGN_OR_RETURN(cairn::client::Identity state, cairn::client::LoadIdentity(state_dir));
  cairn::restore::RestoreOptions o;
  o.target = job.target;
  o.vaults = job.read_from;
  CAIRN_ASSIGN_OR_RETURN(cairn::restore::RestoreResult r,
                         cairn::restore::Restore(state, job.snapshot_id, o));
  if (!r.damaged.empty()) {
    std::string what;
    for (const auto& d : r.damaged) {
      for (const auto& p : d.paths) what += (what.empty() ? "" : ", ") + p;
    }
    return Status::Corruption("restored with " + std::to_string(r.damaged.size()) +
                              " damaged object(s): " + what.substr(0, 1000));
  }
  spdlog::info("job {}: restored snapshot {} into {}: {} files, {} bytes in {:.1f} s", job.job_id,
               r.snapshot_id, job.target, r.files, r.bytes, r.seconds);
  return r.snapshot_id;
}

}  // namespace

int main(int argc, char** argv) {
  ::umask(077);  // keys, certificates and the file cache are nobody else's business
  CLI::App app{
      "cairn-agent: the Cairn backup agent of a department server. It enrols once, then backs\n"
      "up files and block devices to its vault, by hand or as a service running the vault's\n"
      "jobs. Environment: CAIRN_STATE (--state), CAIRN_VAULT (enroll --vault),\n"
      "CAIRN_DISABLE_IO_URING=1 (read with pread instead of io_uring)."};
  cli::CommonFlags flags;
  cli::AddCommonFlags(app, &flags, "cairn-agent");
  app.require_subcommand(1);
  bool& json = flags.json;

  cairn::client::EnrollOptions enroll;
  auto* enroll_cmd = app.add_subcommand("enroll", "Join a department with a one-time token");
  enroll_cmd->add_option("--vault", enroll.vault, "Vault address, host:port")
      ->envname("CAIRN_VAULT")
      ->required();
  enroll_cmd->add_option("--token", enroll.token, "Token from `cairn-vault token create`")
      ->required();
  enroll_cmd->add_option("--state", enroll.state_dir, "State directory (created 0700)")
      ->envname("CAIRN_STATE")
      ->required();
  enroll_cmd->add_option("--host", enroll.host,
                         "Host name to enrol as (default: this host's name, lower case)");
  enroll_cmd->add_flag("--force", enroll.force, "Replace an existing enrolment");
  enroll.software = cli::VersionString("cairn-agent");
  cli::AddJsonFlag(enroll_cmd, &flags);
  cli::Examples(enroll_cmd,
                "Example:\n  cairn-agent enroll --vault vault.city.gov:7420 --token cairn1-... "
                "--state /var/lib/cairn-agent");

  std::string state_dir;
  std::vector<std::string> paths;
  bool image_mode = false;
  cairn::agent::BackupOptions backup;
  auto* backup_cmd = app.add_subcommand("backup", "Back up files, directories or images now");
  backup_cmd->add_option("--state", state_dir, "State directory of an enrolled agent")
      ->envname("CAIRN_STATE")
      ->required();
  backup_cmd->add_flag("--image", image_mode,
                       "Image mode: each PATH is a block device or image file, backed up as "
                       "fixed extents with block deltas");
  backup_cmd->add_option("--exclude", backup.excludes,
                         "fnmatch pattern on the path relative to PATH or the name (repeatable)");
  backup_cmd->add_flag("--cross-fs", backup.cross_fs, "Descend into other file systems");
  backup_cmd->add_option("--zstd-level", backup.zstd_level, "zstd level, 1 (fast) to 19 (small)")
      ->capture_default_str()
      ->check(CLI::Range(1, 19));
  backup_cmd->add_option("--workers", backup.workers, "Worker threads (default: all cores)")
      ->check(CLI::Range(0, 256));
  backup_cmd
      ->add_option("--walk-threads", backup.stat_ahead,
                   "Threads listing directories ahead of the scan, so that a cold disk works "
                   "on many at once; 0: none (a network file system that suffers parallel "
                   "lookups)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  std::string pit = "auto";
  backup_cmd
      ->add_option("--pit", pit,
                   "Point-in-time view to read: auto (the best this host offers, and says "
                   "which), btrfs (snapshot), reflink (clone of image files), lvm (snapshot of "
                   "a logical volume), none (read live)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "none", "btrfs", "reflink", "lvm"}));
  cairn::agent::ConsistencyOptions consistency;
  backup_cmd->add_option("--pre-command", consistency.pre_command,
                         "Run by /bin/sh before the view is taken (quiesce the application); "
                         "a failure fails the backup");
  backup_cmd->add_option("--post-command", consistency.post_command,
                         "Run by /bin/sh once the view is taken (or after a live read), "
                         "whatever happened");
  int hook_timeout = 600;
  backup_cmd->add_option("--hook-timeout", hook_timeout, "Seconds each hook may take")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  std::string on_hook_failure = "fail";
  backup_cmd
      ->add_option("--on-hook-failure", on_hook_failure,
                   "A failed pre-command: fail the backup, or continue crash-consistent")
      ->capture_default_str()
      ->check(CLI::IsMember({"fail", "continue"}));
  cli::AddJsonFlag(backup_cmd, &flags);
  bool json_lines = false;
  backup_cmd->add_flag(
      "--json-lines", json_lines,
      "Stream progress as JSON lines on stdout ({\"message_type\":\"status\"...}), "
      "then the result as a \"summary\" line");
  backup_cmd->add_option("PATH", paths, "Files, directories, or (--image) devices and images")
      ->required();
  cli::Examples(backup_cmd,
                "Examples:\n"
                "  cairn-agent backup --state /var/lib/cairn-agent /etc /srv/data\n"
                "  cairn-agent backup --state /var/lib/cairn-agent --pit btrfs \\\n"
                "    --pre-command /etc/cairn/hooks/pg-pre --post-command /etc/cairn/hooks/pg-post "
                "/var/lib/postgresql\n"
                "  cairn-agent backup --state /var/lib/cairn-agent --image /dev/vdb --json");

  cairn::agent::RunOptions run;
  bool json_log = false;
  auto* run_cmd = app.add_subcommand("run", "Service: keep a link to the vault and run its jobs");
  run_cmd->add_option("--state", state_dir, "State directory of an enrolled agent")
      ->envname("CAIRN_STATE")
      ->required();
  run_cmd->add_option("--paths", run.paths,
                      "Backup set for jobs that name no paths (default: agent.toml paths)");
  run_cmd->add_flag("--json-log", json_log, "Log one JSON object per line");
  std::string drill_dir;
  run_cmd->add_option("--drill-sandbox", drill_dir,
                      "Where a drill host restores its drills (default: STATE/drills; emptied "
                      "before each drill)");
  cli::Examples(run_cmd,
                "Example:\n  cairn-agent run --state /var/lib/cairn-agent --paths /srv/data");

  if (int rc = cli::Parse(app, argc, argv, "cairn-agent"); rc >= 0) return rc;
  cairn::LogOptions log;
  log.program = "cairn-agent";
  // A service logs its state changes; a command only what goes wrong.
  log.level = flags.Level(run_cmd->parsed() ? "info" : "warn");
  log.json = json_log;
  if (Status s = cairn::InitLogging(log); !s.ok()) return Fail(json, s);

  if (enroll_cmd->parsed()) return RunEnroll(enroll, json);
  if (auto method = cairn::agent::ParsePitMethod(pit); method.ok()) consistency.pit = *method;
  consistency.hook_timeout = std::chrono::seconds(hook_timeout);
  consistency.continue_on_hook_failure = on_hook_failure == "continue";
  if (backup_cmd->parsed() && image_mode) {
    if (!backup.excludes.empty() || backup.cross_fs) {
      return Fail(json, Status::InvalidArgument("--image takes no --exclude or --cross-fs"));
    }
    cairn::agent::ImageBackupOptions image;
    image.images = paths;
    image.zstd_level = backup.zstd_level;
    image.workers = backup.workers;
    return RunImageBackup(state_dir, image, consistency, json, ChooseProgress(json, json_lines));
  }
  if (backup_cmd->parsed()) {
    backup.paths = paths;
    return RunBackup(state_dir, backup, consistency, json, ChooseProgress(json, json_lines));
  }
  if (run_cmd->parsed()) {
    auto state = cairn::client::LoadIdentity(state_dir);
    if (!state.ok()) return Fail(false, state.status());
    auto lock = cairn::client::LockIdentity(state_dir, "run");
    if (!lock.ok()) return Fail(false, lock.status());
    run.handle_signals = true;
    if (drill_dir.empty()) drill_dir = state_dir + "/drills";
    run.run_drill = [state_dir, drill_dir](const cairn::proto::Job& job) {
      return RunDrillJob(state_dir, drill_dir, job);
    };
    run.run_restore = [state_dir](const cairn::proto::Job& job) {
      return RunRestoreJob(state_dir, job);
    };
    cairn::agent::AgentService service(std::move(*state), std::move(run));
    Status s = service.Run();
    return s.ok() ? 0 : Fail(false, s);
  }
  return cli::kExitUsage;
}
