// cairn-agent: flags and wiring only; the logic lives in the cairn_agent
// library (agent/*.h).
//
// Exit codes: 0 success (a backup with warnings still succeeds: the
// warnings are counted in the summary and listed in --json), 1 a failure
// (vault unreachable, refused, storage or network error), 2 bad usage or
// input (malformed token, missing PATH, already enrolled without --force).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>

#include "agent/backup.h"
#include "agent/enroll.h"
#include "agent/file_cache.h"
#include "agent/state.h"
#include "agent/vault_session.h"
#include "lib/base/bytes.h"
#include "lib/base/logging.h"

namespace {

using cairn::Status;

int Fail(bool json, const Status& s) {
  std::cerr << "cairn-agent: " << s.message() << "\n";
  if (json) {
    boost::json::object o{{"ok", false},
                          {"error", std::string(cairn::StatusCodeName(s.code()))},
                          {"message", s.message()}};
    std::cout << boost::json::serialize(o) << "\n";
  }
  return s.code() == cairn::StatusCode::kInvalidArgument ? 2 : 1;
}

int RunEnroll(const cairn::agent::EnrollOptions& options, bool json) {
  auto result = cairn::agent::Enroll(options);
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
    std::cout << boost::json::serialize(o) << "\n";
  } else {
    std::cout << "Enrolled " << c.host << " in department " << c.department << " (vault "
              << c.vault_addresses.front() << "); state in " << options.state_dir << "\n";
  }
  return 0;
}

int RunBackup(const std::string& state_dir, cairn::agent::BackupOptions options, bool json) {
  auto paths = cairn::agent::NormalizeBackupPaths(options.paths);
  if (!paths.ok()) return Fail(json, paths.status());
  auto state = cairn::agent::LoadState(state_dir);
  if (!state.ok()) return Fail(json, state.status());
  auto cache = cairn::agent::FileCache::Open(cairn::agent::StatePaths(state_dir).lmdb());
  if (!cache.ok()) return Fail(json, cache.status().WithContext("open file cache"));
  auto session = cairn::agent::OpenVaultSession(*state, *paths);
  if (!session.ok()) return Fail(json, session.status());
  options.paths = *paths;
  options.progress = !json && ::isatty(STDERR_FILENO);
  auto result = cairn::agent::RunBackup(state->keys, cache->get(), session->get(), options);
  session->reset();  // orderly close
  if (!result.ok()) return Fail(json, result.status().WithContext("backup failed"));
  if (json) {
    boost::json::array warnings;
    for (const auto& w : result->warnings) warnings.emplace_back(w);
    boost::json::object o{{"ok", true},
                          {"snapshot", result->snapshot_id},
                          {"root_tree", cairn::ToHex(result->root_tree)},
                          {"files", result->files},
                          {"dirs", result->dirs},
                          {"bytes", result->bytes},
                          {"new_bytes", result->new_bytes},
                          {"new_chunks", result->new_chunks},
                          {"cache_hits", result->cache_hits},
                          {"warnings", warnings},
                          {"seconds", result->seconds}};
    std::cout << boost::json::serialize(o) << "\n";
  } else {
    for (const auto& w : result->warnings) std::cerr << "warning: " << w << "\n";
    std::printf("%llu files, %llu dirs, %s; %s new in %llu chunks; %zu warning(s); %.1f s\n",
                static_cast<unsigned long long>(result->files),
                static_cast<unsigned long long>(result->dirs),
                cairn::HumanBytes(result->bytes).c_str(),
                cairn::HumanBytes(result->new_bytes).c_str(),
                static_cast<unsigned long long>(result->new_chunks), result->warnings.size(),
                result->seconds);
    std::printf("snapshot %s\n", result->snapshot_id.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::umask(077);  // keys, certificates and the file cache are nobody else's business
  CLI::App app{"cairn-agent: the Cairn backup agent"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  bool json = false;

  cairn::agent::EnrollOptions enroll;
  auto* enroll_cmd = app.add_subcommand("enroll", "Join a department with a one-time token");
  enroll_cmd->add_option("--vault", enroll.vault, "Vault address, host:port")->required();
  enroll_cmd->add_option("--token", enroll.token, "Token from `cairn-vault token create`")
      ->required();
  enroll_cmd->add_option("--state", enroll.state_dir, "State directory (created 0700)")->required();
  enroll_cmd->add_option("--host", enroll.host, "Host name to enrol as (default: this host)");
  enroll_cmd->add_flag("--force", enroll.force, "Replace an existing enrolment");
  enroll_cmd->add_flag("--json", json, "Print the result as one JSON object");

  std::string state_dir;
  cairn::agent::BackupOptions backup;
  auto* backup_cmd = app.add_subcommand("backup", "Back up files and directories now");
  backup_cmd->add_option("--state", state_dir, "State directory of an enrolled agent")->required();
  backup_cmd->add_option("--exclude", backup.excludes,
                         "fnmatch pattern on the path relative to PATH or the name (repeatable)");
  backup_cmd->add_flag("--cross-fs", backup.cross_fs, "Descend into other file systems");
  backup_cmd->add_option("--zstd-level", backup.zstd_level, "zstd level 1..19")
      ->capture_default_str();
  backup_cmd->add_option("--workers", backup.workers, "Worker threads (default: all cores)");
  backup_cmd->add_flag("--json", json, "Print the result as one JSON object");
  backup_cmd->add_option("PATH", backup.paths, "Files or directories to back up")->required();
  // Seams for later: image mode (--image) and `run` service mode.

  CLI11_PARSE(app, argc, argv);
  cairn::LogOptions log;
  log.program = "cairn-agent";
  log.level = log_level;
  if (Status s = cairn::InitLogging(log); !s.ok()) return Fail(false, s);

  if (enroll_cmd->parsed()) return RunEnroll(enroll, json);
  if (backup_cmd->parsed()) return RunBackup(state_dir, backup, json);
  return 2;
}
