// cairn-vault: flags and wiring only; the logic lives in the cairn_vault
// library (vault/service/vault_service.h holds its rules).
//
// Exit codes (lib/base/cli.h): 0 success; 1 a failure; 2 bad usage or
// input (a malformed name, a DR vault that is not one); 5 not found (a
// department, an agent, a job).
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>

#include "lib/base/cli.h"
#include "lib/base/logging.h"
#include "lib/base/names.h"
#include "lib/client/snapshot_json.h"
#include "lib/crypto/hash.h"
#include "lib/io/env.h"
#include "lib/repo/lmdb.h"
#include "vault/api/rest_api.h"
#include "vault/cmd/output.h"
#include "vault/cmd/protection.h"
#include "vault/cmd/storage.h"
#include "vault/config.h"
#include "vault/daemon.h"
#include "vault/drill/monthly.h"
#include "vault/drill/report.h"
#include "vault/service/vault_service.h"
#include "vault/vault.h"

namespace {

using cairn::Status;

namespace cli = cairn::cli;

using cairn::vault::cmd::Fail;
using cairn::vault::cmd::Print;

using cairn::vault::JobRecord;
using cairn::vault::JobState;

// The department names by ID, for output.
std::map<uint32_t, std::string> DepartmentNames(const cairn::vault::VaultService& service) {
  std::map<uint32_t, std::string> names;
  if (auto list = service.ListDepartments(); list.ok()) {
    for (const auto& d : *list) names[d.id] = d.name;
  }
  return names;
}

std::string NameOf(const std::map<uint32_t, std::string>& names, uint32_t id) {
  auto it = names.find(id);
  return it == names.end() ? "?" : it->second;
}

// A job as the API shows it, with what scripts polling the command line
// also use: raw microsecond times, the address it was sent to, how long a
// queued job has waited. The API's "error" is "message" here: "error" is
// the command's own error code (lib/base/cli.h).
boost::json::object JobJson(const std::map<uint32_t, std::string>& names, const JobRecord& j,
                            uint64_t now) {
  boost::json::object o = cairn::vault::JobJson(j, NameOf(names, j.department_id));
  o["created_micros"] = j.created_micros;
  o["sent_micros"] = j.sent_micros;
  o["finished_micros"] = j.finished_micros;
  o["sent_to"] = j.sent_to;
  if (j.state == JobState::kQueued) o["waiting_seconds"] = (now - j.created_micros) / 1'000'000;
  if (auto* error = o.if_contains("error")) {
    o["message"] = std::move(*error);
    o.erase("error");
  }
  return o;
}

// Polls job `id` until it is done or failed, or `seconds` pass.
int WaitForJob(const cairn::vault::VaultService& service, uint64_t id, double seconds, bool json) {
  auto* env = service.vault()->env();
  const auto names = DepartmentNames(service);
  const uint64_t deadline = env->MonotonicMicros() + static_cast<uint64_t>(seconds * 1e6);
  const bool progress = !json && ::isatty(STDERR_FILENO);
  struct ClearLine {
    bool on;
    ~ClearLine() {
      if (on) std::fprintf(stderr, "\r\033[K");
    }
  } clear{progress};
  for (;;) {
    auto j = service.FindJob(id);
    if (!j.ok()) return Fail(json, j.status());
    const uint64_t now = env->NowMicros();
    if (j->state == JobState::kDone) {
      boost::json::object o = JobJson(names, *j, now);
      o["ok"] = true;
      Print(json, o, "snapshot " + j->snapshot_id + "\n" + (j->log.empty() ? "" : j->log + "\n"));
      return 0;
    }
    const bool ended = j->state == JobState::kFailed || j->state == JobState::kMissed;
    if (ended || env->MonotonicMicros() >= deadline) {
      std::string message =
          ended
              ? "job " + std::to_string(id) + " " +
                    std::string(cairn::vault::JobStateName(j->state)) + ": " + j->error
              : "job " + std::to_string(id) + " is still " +
                    std::string(cairn::vault::JobStateName(j->state)) + " after " +
                    std::to_string(static_cast<int>(seconds)) + " s" +
                    (j->state == JobState::kQueued ? " (is the agent running and connected?)" : "");
      std::cerr << "cairn-vault: " << message << "\n";
      if (!json && !j->log.empty()) std::cerr << j->log << "\n";
      if (json) {
        boost::json::object o = JobJson(names, *j, now);
        o["ok"] = false;
        o["error"] = ended ? "job_" + std::string(cairn::vault::JobStateName(j->state)) : "timeout";
        o["message"] = message;
        cli::PrintJson(o);
      }
      return 1;
    }
    if (progress) {
      const uint64_t since = j->state == JobState::kQueued ? j->created_micros : j->sent_micros;
      std::fprintf(
          stderr, "\r\033[Kjob %llu: %s%s, %s", static_cast<unsigned long long>(id),
          std::string(cairn::vault::JobStateName(j->state)).c_str(),
          j->state == JobState::kSent ? (" to " + j->host).c_str() : "",
          cairn::HumanDuration(static_cast<double>(now - std::min(now, since)) / 1e6).c_str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// "2026-12-01", "2026-12-01T09:30:00Z" or "2026-12-01 09:30:00" (UTC).
cairn::Result<uint64_t> ParseTime(const std::string& text) {
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"}) {
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), format, &tm);
    if (end == nullptr) continue;
    while (*end == 'Z' || *end == 'z') ++end;
    if (*end != '\0' && *end != '.') continue;
    return static_cast<uint64_t>(::timegm(&tm)) * 1'000'000;
  }
  return Status::InvalidArgument("'" + text + "' is not a time (use 2026-12-01 or RFC 3339)");
}

std::string CsvField(const std::string& v) {
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// `audit verify`: offline, on the directory's files alone.
// `cairn-vault report verify FILE`: a signed drill report checked offline
// against the vault's evidence key (the audit public key).
int ReportVerify(const std::string& file, const std::string& data_dir, const std::string& key_file,
                 bool json) {
  auto* env = cairn::io::Env::Posix();
  const std::string key_path = !key_file.empty()   ? key_file
                               : !data_dir.empty() ? data_dir + "/audit/signing.pub"
                                                   : "";
  if (key_path.empty()) {
    return Fail(json, Status::InvalidArgument(
                          "give the vault's public key (--public-key, from `cairn-vault audit "
                          "key`) or its data directory (--data)"));
  }
  auto key = cairn::io::ReadFileToBytes(env, key_path);
  if (!key.ok()) return Fail(json, key.status());
  auto text = cairn::io::ReadFileToBytes(env, file);
  if (!text.ok()) return Fail(json, text.status());
  boost::system::error_code ec;
  boost::json::value v;
  Status s;
  // A monthly report (HTML): its signed report, and the page it signs.
  const std::string content(cairn::AsString(*text));
  std::string html_body;
  bool html = content.starts_with("<!doctype html");
  if (html) {
    auto parts = cairn::vault::SplitMonthlyHtml(content);
    if (!parts.ok()) return Fail(json, parts.status().WithContext(file));
    v = std::move(parts->signed_report);
    html_body = std::move(parts->body);
  } else {
    v = boost::json::parse(content, ec);
    if (ec || !v.is_object()) {
      return Fail(json, Status::InvalidArgument(file + ": not JSON: " + ec.message()));
    }
  }
  s = cairn::vault::VerifyReport(v.as_object(), std::string(cairn::AsString(*key)));
  if (s.ok() && html) {
    const auto* r = v.as_object().at("report").as_object().if_contains("html_sha256");
    if (r == nullptr || !r->is_string() ||
        std::string(r->as_string()) !=
            cairn::ToHex(cairn::crypto::Sha256(cairn::AsBytes(html_body)))) {
      s = Status::Corruption("the page was changed after the vault signed it");
    }
  }
  if (!s.ok()) {
    if (json) {
      cli::PrintJson({{"ok", false}, {"file", file}, {"reason", s.message()}});
      return 1;
    }
    std::cerr << "cairn-vault: " << file << ": NOT VERIFIED: " << s.message() << "\n";
    return 1;
  }
  const auto& r = v.as_object().at("report").as_object();
  if (html) {
    if (json) {
      cli::PrintJson({{"ok", true},
                      {"file", file},
                      {"department", r.at("department")},
                      {"month", r.at("month")}});
    } else {
      std::cout << file << ": verified: monthly report of "
                << std::string(r.at("department").as_string()) << " for "
                << std::string(r.at("month").as_string()) << ", signed by the vault\n";
    }
    return 0;
  }
  if (json) {
    cli::PrintJson({{"ok", true},
                    {"file", file},
                    {"drill", r.at("drill")},
                    {"snapshot", r.at("snapshot")},
                    {"passed", r.at("ok")}});
  } else {
    std::cout << file << ": verified: drill " << boost::json::serialize(r.at("drill"))
              << " of snapshot " << std::string(r.at("snapshot").as_string()) << " ("
              << std::string(r.at("department").as_string()) << "), "
              << (r.at("ok").as_bool() ? "passed" : "failed") << ", signed by the vault\n";
  }
  return 0;
}

int AuditVerify(const std::string& data_dir, const std::string& key_file, bool json) {
  auto* env = cairn::io::Env::Posix();
  std::string key;
  if (!key_file.empty()) {
    auto k = cairn::io::ReadFileToBytes(env, key_file);
    if (!k.ok()) return Fail(json, k.status());
    key = std::string(cairn::AsString(*k));
  }
  uint64_t head_seq = 0;
  std::string head_hash;
  if (auto lmdb = cairn::repo::LmdbEnv::Open(data_dir + "/lmdb", {}); lmdb.ok()) {
    if (auto catalog = cairn::vault::Catalog::Open(lmdb->get()); catalog.ok()) {
      if (auto head = (*catalog)->GetSetting("audit_head"); head.ok()) {
        head_seq = std::strtoull(head->c_str(), nullptr, 10);
        head_hash = head->substr(head->find(' ') + 1);
      }
    }
  }
  auto v = cairn::vault::AuditLog::Verify(env, data_dir, key, head_seq, head_hash);
  if (json) {
    boost::json::object o{{"ok", v.ok},
                          {"entries", v.entries},
                          {"checkpoints", v.checkpoints},
                          {"last_checkpoint", v.last_checkpoint_seq}};
    if (!v.ok) {
      o["first_broken"] =
          boost::json::object{{"seq", v.broken_seq}, {"line", v.broken_line}, {"reason", v.reason}};
    }
    cli::PrintJson(o);
  } else if (v.ok) {
    std::cout << "audit trail intact: " << v.entries << " entries, " << v.checkpoints
              << " signed checkpoints (the last at entry " << v.last_checkpoint_seq << ")\n";
  }
  if (!v.ok) {
    std::cerr << "cairn-vault: audit trail broken at entry " << v.broken_seq << " (line "
              << v.broken_line << "): " << v.reason << "\n";
    return cli::kExitFailure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::umask(077);  // keys, packs and the catalog are nobody else's business
  CLI::App app{
      "cairn-vault: the Cairn backup vault. `serve` runs it; the other commands manage it\n"
      "beside a running server. Environment: CAIRN_DATA (--data)."};
  app.require_subcommand(1);
  std::string data_dir, site = "primary";
  cli::CommonFlags flags;
  cli::AddCommonFlags(app, &flags, "cairn-vault");
  bool& json = flags.json;

  auto* init = app.add_subcommand("init", "Create a new vault: CA, master key, first admin");
  init->add_option("--data", data_dir, "Data directory (new or empty)")
      ->envname("CAIRN_DATA")
      ->required();
  init->add_option("--site", site, "Site name, e.g. primary or dr")->capture_default_str();
  std::vector<std::string> hosts;
  init->add_option("--host", hosts,
                   "Name or address agents use to reach this vault (repeatable; default "
                   "127.0.0.1, ::1, localhost)");
  std::string store_spec, ceph_conf = "/etc/ceph/ceph.conf", ceph_user = "admin";
  init->add_option("--store", store_spec,
                   "Where the packs go: local (DATA/packs, the default) or rados:POOL (a Ceph "
                   "pool; the catalog and index stay in DATA)");
  init->add_option("--ceph-conf", ceph_conf, "With --store rados:POOL: the cluster's ceph.conf")
      ->capture_default_str();
  init->add_option("--ceph-user", ceph_user,
                   "With --store rados:POOL: the Ceph client name, without \"client.\"")
      ->capture_default_str();
  init->add_flag("--json", flags.json, "Print the result as one JSON object");

  auto* serve = app.add_subcommand("serve", "Run the vault: TLS listener for agents");
  std::string listen = "127.0.0.1:7420", http, web_root;
  int threads = 0;
  serve->add_option("--data", data_dir, "Vault data directory")->envname("CAIRN_DATA")->required();
  serve->add_option("--listen", listen, "host:port for agents")->capture_default_str();
  serve->add_option("--http", http, "host:port for the REST API and web console");
  serve->add_option("--web-root", web_root,
                    "The built web console (default: /usr/share/cairn/web, else the source "
                    "tree's web-ui/dist)");
  int session_idle = 3600, console_idle = 900;
  serve
      ->add_option("--console-session-idle", console_idle,
                   "Seconds after which an unused console or API login session ends")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  serve
      ->add_option("--session-idle", session_idle,
                   "Seconds after which a backup session nobody uses is forgotten")
      ->capture_default_str()
      ->check(CLI::Range(1, 7 * 86400));
  serve->add_option("--threads", threads, "I/O threads (default: one per CPU core)")
      ->check(CLI::Range(1, 64));
  std::string config_path;
  serve->add_option("--config", config_path,
                    "Configuration file: listeners, syslog, webhook, alert thresholds "
                    "(default DATA/vault.toml; flags win over it)");

  auto* dept = app.add_subcommand("department", "Manage departments");
  dept->require_subcommand(1);
  auto* dept_create = dept->add_subcommand("create", "Create a department and its keys");
  std::string name;
  dept_create->add_option("NAME", name, "Department name: a-z, 0-9, '-'")->required();
  dept_create->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  dept_create->add_flag("--json", flags.json, "Print the result as one JSON object");
  auto* dept_list = dept->add_subcommand("list", "List departments");
  dept_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  dept_list->add_flag("--json", flags.json, "Print the result as one JSON object");

  auto* token = app.add_subcommand("token", "Enrolment tokens");
  token->require_subcommand(1);
  auto* token_create = token->add_subcommand("create", "Create a one-time enrolment token");
  uint64_t ttl = 3600;
  bool replicator_token = false, drill_host_token = false;
  auto* token_department =
      token_create->add_option("--department", name, "Department the agent will belong to");
  token_create
      ->add_flag("--replicator", replicator_token,
                 "A token for a DR site's cairn-replicator instead (reads every department)")
      ->excludes(token_department);
  token_create
      ->add_flag("--drill-host", drill_host_token,
                 "The agent it enrols runs the department's scheduled restore drills (at the DR "
                 "site, preferably)")
      ->needs(token_department);
  token_create->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  token_create->add_option("--ttl", ttl, "Seconds until the token expires")->capture_default_str();
  token_create->add_flag("--json", flags.json, "Print the result as one JSON object");

  std::string promoted_by, promote_reason;
  auto* promote = app.add_subcommand(
      "promote", "Failover: make this DR vault accept backups from the replicated departments");
  promote->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  promote->add_option("--by", promoted_by, "Who decides the failover (recorded)")->required();
  promote->add_option("--reason", promote_reason, "Why (recorded)");
  promote->add_flag("--json", flags.json, "Print the result as one JSON object");

  auto* demote = app.add_subcommand(
      "demote", "After failback: make this DR vault refuse backups again (recorded)");
  demote->add_option("--data", data_dir, "Vault data directory")->envname("CAIRN_DATA")->required();
  demote->add_option("--by", promoted_by, "Who decides (recorded)")->required();
  demote->add_option("--reason", promote_reason, "Why (recorded)");
  demote->add_flag("--json", flags.json, "Print the result as one JSON object");

  auto* snapshot = app.add_subcommand("snapshot", "Snapshots");
  snapshot->require_subcommand(1);
  auto* snapshot_list =
      snapshot->add_subcommand("list", "List a department's snapshots, newest first");
  snapshot_list->add_option("--department", name, "Department")->required();
  snapshot_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  snapshot_list->add_flag("--json", flags.json, "Print the result as one JSON object");

  auto* agent = app.add_subcommand("agent", "Enrolled agents");
  agent->require_subcommand(1);
  auto* agent_list = agent->add_subcommand("list", "List enrolled agents");
  agent_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  agent_list->add_flag("--json", flags.json, "Print the result as one JSON object");
  auto* agent_revoke = agent->add_subcommand("revoke", "Revoke an agent's certificate at once");
  std::string serial;
  agent_revoke->add_option("SERIAL", serial, "Certificate serial (see `agent list`)")->required();
  agent_revoke->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  agent_revoke->add_flag("--json", flags.json, "Print the result as one JSON object");

  auto* job = app.add_subcommand("job", "Jobs sent to agents in run mode");
  job->require_subcommand(1);
  auto* job_start = job->add_subcommand("start", "Queue a backup job for an agent");
  std::string job_agent;
  std::vector<std::string> job_paths;
  bool job_image = false;
  double job_wait = 0;
  uint64_t job_source = 0;
  auto* agent_opt =
      job_start->add_option("--agent", job_agent, "Agent certificate serial or host name");
  job_start
      ->add_option("--source", job_source,
                   "Back up this source now, with its policy (instead of --agent and --path)")
      ->excludes(agent_opt);
  job_start->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  job_start->add_option("--department", name, "Department of the host (when ambiguous)");
  job_start->add_option("--path", job_paths,
                        "Path to back up (repeatable; default: the agent's backup set)");
  job_start->add_flag("--image", job_image, "Image backup");
  job_start->add_option("--wait", job_wait, "Wait up to SECONDS for the job to finish")
      ->check(CLI::Range(0.0, 31.0 * 86400));
  job_start->add_flag("--json", flags.json, "Print the result as one JSON object");
  auto* job_list = job->add_subcommand("list", "List jobs, oldest first");
  job_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  job_list->add_flag("--json", flags.json, "Print the result as one JSON object");

  cli::Examples(init,
                "Example:\n  cairn-vault init --data /var/lib/cairn/vault --site primary --host "
                "vault.city.gov");
  cli::Examples(serve,
                "Example:\n  cairn-vault serve --data /var/lib/cairn/vault --listen 0.0.0.0:7420");
  cli::Examples(dept_create,
                "Example:\n  cairn-vault department create finance --data /var/lib/cairn/vault");
  cli::Examples(dept_list,
                "Example:\n  cairn-vault department list --data /var/lib/cairn/vault --json");
  cli::Examples(
      token_create,
      "Examples:\n  cairn-vault token create --department finance --data /var/lib/cairn/vault\n"
      "  cairn-vault token create --replicator --ttl 600 --data /var/lib/cairn/vault");
  cli::Examples(promote,
                "Example:\n  cairn-vault promote --data /srv/cairn-dr --by \"Li Wei\" --reason "
                "\"primary lost\"");
  cli::Examples(demote, "Example:\n  cairn-vault demote --data /srv/cairn-dr --by \"Li Wei\"");
  cli::Examples(
      snapshot_list,
      "Example:\n  cairn-vault snapshot list --department finance --data /var/lib/cairn/vault");
  cli::Examples(agent_list,
                "Example:\n  cairn-vault agent list --data /var/lib/cairn/vault --json");
  cli::Examples(agent_revoke,
                "Example:\n  cairn-vault agent revoke 3f2a9c01d4e5 --data /var/lib/cairn/vault");
  cli::Examples(job_start,
                "Examples:\n  cairn-vault job start --agent fin-srv-01 --wait 600 --data "
                "/var/lib/cairn/vault\n"
                "  cairn-vault job start --source 12 --wait 600 --data /var/lib/cairn/vault");
  cli::Examples(job_list, "Example:\n  cairn-vault job list --data /var/lib/cairn/vault --json");

  auto* user = app.add_subcommand("user", "People who use the console and the API");
  user->require_subcommand(1);
  std::string user_name, user_role, token_label;
  std::vector<std::string> user_departments;
  bool password_stdin = false;
  auto* user_create = user->add_subcommand(
      "create",
      "Create a named account; its password is printed once (or read with --password-stdin)");
  user_create->add_option("NAME", user_name, "Account name (a-z, 0-9, '.', '-', '_')")->required();
  user_create->add_option("--role", user_role, "admin, operator, dr or auditor")
      ->required()
      ->check(CLI::IsMember({"admin", "operator", "dr", "auditor"}));
  user_create->add_option("--department", user_departments,
                          "An operator's department (repeatable)");
  user_create->add_flag("--password-stdin", password_stdin, "Read the password from stdin");
  user_create->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::AddJsonFlag(user_create, &flags);
  cli::Examples(
      user_create,
      "Examples:\n  cairn-vault user create li.wei --role operator --department finance "
      "--data /var/lib/cairn/vault\n"
      "  cairn-vault user create zhang --role auditor --data /var/lib/cairn/vault --json");
  auto* user_list = user->add_subcommand("list", "List accounts");
  user_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::AddJsonFlag(user_list, &flags);
  cli::Examples(user_list, "Example:\n  cairn-vault user list --data /var/lib/cairn/vault");
  auto* user_disable =
      user->add_subcommand("disable", "Disable an account (sessions and tokens stop)");
  auto* user_enable = user->add_subcommand("enable", "Enable a disabled account");
  auto* user_passwd = user->add_subcommand(
      "passwd", "Set a new password (printed once, or read with --password-stdin)");
  auto* user_token =
      user->add_subcommand("token", "Create an API token for scripts (printed once)");
  for (auto* cmd : {user_disable, user_enable, user_passwd, user_token}) {
    cmd->add_option("NAME", user_name, "Account name")->required();
    cmd->add_option("--data", data_dir, "Vault data directory")->envname("CAIRN_DATA")->required();
    cli::AddJsonFlag(cmd, &flags);
  }
  user_passwd->add_flag("--password-stdin", password_stdin, "Read the password from stdin");
  user_token->add_option("--label", token_label, "What the token is for");
  std::string token_id;
  auto* user_revoke_token = user->add_subcommand("revoke-token", "Revoke an API token");
  user_revoke_token->add_option("ID", token_id, "The token's ID (the 16 digits after cairn-api-)")
      ->required();
  user_revoke_token->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::AddJsonFlag(user_revoke_token, &flags);
  auto* user_cert = user->add_subcommand(
      "cert", "Issue a certificate for console logins from the vault's CA (PEM on stdout)");
  std::string csr_file;
  int cert_days = 365;
  user_cert->add_option("NAME", user_name, "Account name")->required();
  user_cert->add_option("--csr", csr_file, "The person's certificate request (PEM)")->required();
  user_cert->add_option("--days", cert_days, "Validity")
      ->capture_default_str()
      ->check(CLI::Range(1, 825));
  user_cert->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::AddJsonFlag(user_cert, &flags);
  cli::Examples(user_cert,
                "Example:\n  openssl req -new -newkey ed25519 -nodes -keyout li.wei.key -subj "
                "/CN=li.wei -out li.wei.csr\n  cairn-vault user cert li.wei --csr li.wei.csr "
                "--data /var/lib/cairn/vault > li.wei.pem");
  auto* ca = app.add_subcommand("ca", "The certificate authorities the vault trusts");
  ca->require_subcommand(1);
  auto* ca_import = ca->add_subcommand(
      "import",
      "Trust a CA (the city's) for people's console certificates; serve reads it at start");
  std::string ca_file;
  ca_import->add_option("FILE", ca_file, "The CA certificate (PEM)")->required();
  ca_import->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::AddJsonFlag(ca_import, &flags);
  cli::Examples(ca_import,
                "Example:\n  cairn-vault ca import /etc/cairn/city-people-ca.pem --data "
                "/var/lib/cairn/vault");
  cli::Examples(user_disable,
                "Example:\n  cairn-vault user disable li.wei --data /var/lib/cairn/vault");
  cli::Examples(user_enable,
                "Example:\n  cairn-vault user enable li.wei --data /var/lib/cairn/vault");
  cli::Examples(user_passwd,
                "Example:\n  echo 'a long new password' | cairn-vault user passwd li.wei "
                "--password-stdin --data /var/lib/cairn/vault");
  cli::Examples(user_token,
                "Example:\n  cairn-vault user token prometheus --label metrics --data "
                "/var/lib/cairn/vault");
  cli::Examples(user_revoke_token,
                "Example:\n  cairn-vault user revoke-token 3f2a9c01d4e5b6a7 --data "
                "/var/lib/cairn/vault");

  auto* audit =
      app.add_subcommand("audit", "The audit trail: who did what, hash-chained and signed");
  audit->require_subcommand(1);
  auto* report = app.add_subcommand("report", "Evidence: signed drill reports");
  report->require_subcommand(1);
  auto* report_verify = report->add_subcommand(
      "verify", "Check a signed drill or monthly report offline; exit 1 if it does not hold");
  std::string report_file, report_key;
  report_verify
      ->add_option("FILE", report_file, "The report (JSON), as cairn-restore drill wrote it")
      ->required();
  report_verify->add_option("--public-key", report_key,
                            "The vault's public key (cairn-vault audit key)");
  report_verify->add_option("--data", data_dir, "Or the vault's data directory")
      ->envname("CAIRN_DATA");
  cli::AddJsonFlag(report_verify, &flags);
  cli::Examples(report_verify,
                "Examples:\n  cairn-vault report verify drill.json --public-key vault-audit.pub\n"
                "  cairn-vault report verify drill.json --data /var/lib/cairn/vault");
  auto* compliance = report->add_subcommand(
      "compliance", "Recovery objectives against what was achieved, per source (auditors)");
  compliance->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  std::string comp_department, comp_from, comp_to;
  bool comp_csv = false;
  compliance->add_option("--department", comp_department, "Only this department");
  compliance->add_option("--from", comp_from,
                         "Backups counted from this time (default: 30 days ago)");
  compliance->add_option("--to", comp_to, "... up to this time (default: now)");
  compliance->add_flag("--csv", comp_csv, "Print CSV (for spreadsheets)");
  cli::AddJsonFlag(compliance, &flags);
  cli::Examples(compliance,
                "Examples:\n  cairn-vault report compliance --data /var/lib/cairn/vault\n"
                "  cairn-vault report compliance --data /var/lib/cairn/vault --department finance "
                "--from 2026-11-01 --to 2026-12-01 --csv");
  auto* monthly = report->add_subcommand(
      "monthly", "A department's printable monthly evidence report (HTML, signed)");
  monthly->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  std::string monthly_month, monthly_out;
  monthly->add_option("--department", comp_department, "The department")->required();
  monthly->add_option("--month", monthly_month, "The month, such as 2026-11 (default: last month)");
  monthly->add_option("--out", monthly_out, "Write it here (default: cairn-DEPARTMENT-MONTH.html)");
  cli::AddJsonFlag(monthly, &flags);
  cli::Examples(monthly,
                "Example:\n  cairn-vault report monthly --data /var/lib/cairn/vault --department "
                "finance --month 2026-11\n  (check it with: cairn-vault report verify "
                "cairn-finance-2026-11.html --data /var/lib/cairn/vault)");
  auto* drill_list = report->add_subcommand("drills", "List drill reports, newest first");
  drill_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::AddJsonFlag(drill_list, &flags);
  cli::Examples(drill_list,
                "Example:\n  cairn-vault report drills --data /var/lib/cairn/vault --json");
  auto* audit_verify = audit->add_subcommand(
      "verify",
      "Check the audit trail offline (also on a copy); exit 1 names the first broken entry");
  audit_verify->add_option("--data", data_dir, "Vault data directory (or a copy of it)")
      ->envname("CAIRN_DATA")
      ->required();
  std::string public_key;
  audit_verify->add_option("--public-key", public_key,
                           "The vault's audit public key, as exported (default: the one in the "
                           "directory; pass the exported one to trust nothing in the copy)");
  cli::AddJsonFlag(audit_verify, &flags);
  cli::Examples(audit_verify,
                "Examples:\n  cairn-vault audit verify --data /var/lib/cairn/vault\n"
                "  cairn-vault audit verify --data /mnt/copy --public-key audit.pub --json");
  auto* alert = app.add_subcommand("alert", "The vault's alerts");
  alert->require_subcommand(1);
  auto* alert_list =
      alert->add_subcommand("list", "List firing alerts (with --all, recent ones too)");
  alert_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  bool alert_all = false;
  size_t alert_limit = 100;
  alert_list->add_flag("--all", alert_all, "Resolved alerts too, newest first");
  alert_list->add_option("--limit", alert_limit, "With --all: at most this many")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  alert_list->add_flag("--json", flags.json, "Print the result as one JSON object");
  cli::Examples(alert_list, "Example:\n  cairn-vault alert list --data /var/lib/cairn/vault --all");

  cairn::vault::cmd::ProtectionCommands protection;
  cairn::vault::cmd::AddProtectionCommands(app, snapshot, &protection, &data_dir, &flags);
  cairn::vault::cmd::StorageCommands storage;
  cairn::vault::cmd::AddStorageCommands(app, &storage, &data_dir, &flags);

  auto* audit_list = audit->add_subcommand("list", "List audit entries, oldest first");
  audit_list->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  std::string since, until;
  cairn::vault::AuditFilter audit_filter;
  bool csv = false;
  audit_list->add_option("--since", since, "From this time (2026-12-01 or RFC 3339)");
  audit_list->add_option("--until", until, "Up to this time");
  audit_list->add_option("--actor", audit_filter.actor, "Entries whose actor contains this");
  audit_list->add_option("--department", audit_filter.department, "Entries of this department");
  audit_list->add_option("--action", audit_filter.action,
                         "This action, or family (user, snapshot.commit, ...)");
  audit_list->add_option("--limit", audit_filter.limit, "Only the newest N");
  cli::AddJsonFlag(audit_list, &flags);
  audit_list->add_flag("--csv", csv, "Print CSV (for spreadsheets)");
  cli::Examples(audit_list,
                "Examples:\n  cairn-vault audit list --data /var/lib/cairn/vault --action user\n"
                "  cairn-vault audit list --data /var/lib/cairn/vault --since 2026-12-01 --csv");
  auto* audit_key = audit->add_subcommand("key", "Print the audit trail's public key (PEM)");
  audit_key->add_option("--data", data_dir, "Vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  cli::Examples(audit_key,
                "Example:\n  cairn-vault audit key --data /var/lib/cairn/vault > audit.pub");

  if (int rc = cli::Parse(app, argc, argv, "cairn-vault"); rc >= 0) return rc;
  cairn::LogOptions log;
  log.program = "cairn-vault";
  // The daemon logs its state changes; a command only what goes wrong.
  log.level = flags.Level(*serve ? "info" : "warn");
  if (Status s = cairn::InitLogging(log); !s.ok()) return Fail(json, s);

  if (*init) {
    cairn::vault::InitOptions opts{data_dir, site, hosts};
    opts.actor = cairn::vault::Actor::Local().AuditName();
    if (store_spec.starts_with("rados:")) {
      opts.rados.pool = store_spec.substr(6);
      opts.rados.ceph_conf = ceph_conf;
      opts.rados.user = ceph_user;
      if (opts.rados.pool.empty()) {
        return Fail(json, cairn::Status::InvalidArgument("--store rados:POOL names no pool"));
      }
    } else if (!store_spec.empty() && store_spec != "local") {
      return Fail(json, cairn::Status::InvalidArgument(
                            "--store must be local or rados:POOL, not \"" + store_spec + "\""));
    }
    auto r = cairn::vault::InitVault(opts);
    if (!r.ok()) return Fail(json, r.status());
    Print(json,
          {{"ok", true},
           {"data", data_dir},
           {"site", site},
           {"admin_user", r->admin_user},
           {"admin_password", r->admin_password},
           {"ca_fingerprint", r->ca_fingerprint},
           {"pack_store", r->pack_store}},
          "Vault created in " + data_dir + " (site " + site + ")\n" +
              "  CA fingerprint:  " + r->ca_fingerprint + "\n" +
              "  packs:           " + r->pack_store + "\n" + "  admin user:      " + r->admin_user +
              "\n" + "  admin password:  " + r->admin_password + "\n" +
              "The password is shown only now; store it safely.\n");
    return 0;
  }

  if (*serve) {
    const std::string file = config_path.empty() ? data_dir + "/vault.toml" : config_path;
    auto config = cairn::vault::LoadConfig(file);
    if (!config.ok() && !(config.status().IsNotFound() && config_path.empty())) {
      return Fail(false, config.status());
    }
    const cairn::vault::VaultConfig c = config.ok() ? *config : cairn::vault::VaultConfig{};
    // A flag given on the command line wins; else the file; else the default.
    auto pick = [&](const char* flag, auto flag_value, auto file_value, bool file_set) {
      return serve->count(flag) > 0 || !file_set ? flag_value : file_value;
    };
    cairn::vault::DaemonOptions daemon;
    daemon.data_dir = data_dir;
    daemon.serve.listen = pick("--listen", listen, c.listen, !c.listen.empty());
    daemon.threads = pick("--threads", threads, c.threads, c.threads > 0);
    daemon.service.session_idle =
        std::chrono::seconds(pick("--session-idle", static_cast<uint64_t>(session_idle),
                                  c.session_idle_seconds, c.session_idle_seconds > 0));
    daemon.http_listen = pick("--http", http, c.http, !c.http.empty());
    daemon.web_root = pick("--web-root", web_root, c.web_root, !c.web_root.empty());
    daemon.api.session_idle = std::chrono::seconds(
        pick("--console-session-idle", static_cast<uint64_t>(console_idle),
             c.console_session_idle_seconds, c.console_session_idle_seconds > 0));
    auto monitor = cairn::vault::MonitorOptionsFrom(c);
    if (!monitor.ok()) return Fail(false, monitor.status().WithContext(file));
    daemon.monitor = std::move(*monitor);
    daemon.scheduler = c.scheduler;
    daemon.storage = c.storage;
    daemon.pack_target_size = c.storage.pack_target_bytes;
    daemon.service.anomaly_lock_seconds = c.alerts.anomaly_lock_seconds;
    daemon.api.scheduler = c.scheduler;
    Status s = cairn::vault::RunDaemon(daemon);
    return s.ok() ? 0 : Fail(false, s);
  }

  if (*audit_verify) return AuditVerify(data_dir, public_key, json);
  if (*report_verify) return ReportVerify(report_file, data_dir, report_key, json);
  if (auto rc = cairn::vault::cmd::RunStorageCommand(storage, data_dir, json)) return *rc;

  auto vault = cairn::vault::Vault::Open(data_dir, {});
  if (!vault.ok()) return Fail(json, vault.status());
  cairn::vault::VaultService service(vault->get());
  const cairn::vault::Actor me = cairn::vault::Actor::Local();

  if (*dept_create) {
    auto d = service.CreateDepartment(me, name);
    if (!d.ok()) return Fail(json, d.status());
    Print(json, {{"ok", true}, {"department", d->name}, {"id", d->id}},
          "Department " + d->name + " created (id " + std::to_string(d->id) + ")\n");
    return 0;
  }
  if (*dept_list) {
    auto list = service.ListDepartments();
    if (!list.ok()) return Fail(json, list.status());
    boost::json::array arr;
    std::string text;
    for (const auto& d : *list) {
      arr.push_back({{"id", d.id}, {"name", d.name}});
      text += std::to_string(d.id) + "\t" + d.name + "\n";
    }
    Print(json, {{"ok", true}, {"departments", arr}}, text);
    return 0;
  }
  if (*token_create && replicator_token) {
    auto t = service.CreateReplicatorToken(me, ttl);
    if (!t.ok()) return Fail(json, t.status());
    Print(json, {{"ok", true}, {"replicator", true}, {"token", *t}, {"expires_in_seconds", ttl}},
          *t + "\n");
    return 0;
  }
  if (*token_create && name.empty()) {
    return Fail(json,
                cairn::Status::InvalidArgument("token create needs --department or --replicator"));
  }
  if (*promote) {
    bool already = false;
    auto line = service.Promote(me, promoted_by, promote_reason, &already);
    if (!line.ok()) return Fail(json, line.status());
    if (already) {
      Print(json, {{"ok", true}, {"already_promoted", true}}, "already promoted: " + *line);
      return 0;
    }
    Print(json, {{"ok", true}, {"promoted_by", promoted_by}},
          "promoted: this vault now accepts backups from the replicated departments' agents "
          "(recorded in " +
              data_dir + "/promotions.log)\n");
    return 0;
  }
  if (*demote) {
    if (auto s = service.Demote(me, promoted_by, promote_reason); !s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"demoted_by", promoted_by}},
          "demoted: this vault refuses backups again (recorded in " + data_dir +
              "/promotions.log)\n");
    return 0;
  }
  if (*token_create) {
    auto t = service.CreateEnrollmentToken(me, name, ttl, drill_host_token);
    if (!t.ok()) return Fail(json, t.status());
    Print(json,
          {{"ok", true},
           {"department", name},
           {"token", *t},
           {"expires_in_seconds", ttl},
           {"drill_host", drill_host_token}},
          *t + "\n");
    return 0;
  }
  if (*snapshot_list) {
    auto list = service.ListSnapshots(name);
    if (!list.ok()) return Fail(json, list.status());
    boost::json::array arr;
    std::string text;
    for (const auto& s : *list) {
      arr.push_back(cairn::vault::SnapshotRecordJson(s, name));
      text += cairn::client::ShortSnapshotId(s.id) + "\t" + cli::Rfc3339(s.time_micros) + "\t" +
              s.host + "\t" + (s.pit_method.empty() ? "live" : s.pit_method) + "\t" +
              std::to_string(s.files) + " files\t" + cairn::HumanBytes(s.bytes) + "\t" +
              (s.paths.empty() ? "" : s.paths[0]) + (s.damaged_micros != 0 ? "\tDAMAGED" : "") +
              "\n";
    }
    Print(json, {{"ok", true}, {"department", name}, {"snapshots", arr}}, text);
    return 0;
  }
  if (*drill_list) {
    auto drills = service.ListDrills(me, 0);
    if (!drills.ok()) return Fail(json, drills.status());
    boost::json::array arr;
    std::string text;
    for (const auto& d : *drills) {
      arr.push_back(d);
      const auto& r = d.at("report").as_object();
      text += boost::json::serialize(r.at("drill")) + "\t" +
              std::string(r.at("finished").as_string()) + "\t" +
              std::string(r.at("department").as_string()) + "\t" +
              std::string(r.at("snapshot").as_string()) + "\t" +
              (r.at("ok").as_bool() ? std::string("passed")
                                    : "FAILED: " + std::string(r.at("failure").as_string())) +
              "\n";
    }
    Print(json, {{"ok", true}, {"drills", arr}}, text);
    return 0;
  }
  if (*agent_list) {
    auto list = service.ListAgents();
    if (!list.ok()) return Fail(json, list.status());
    const auto names = DepartmentNames(service);
    boost::json::array arr;
    std::string text;
    for (const auto& a : *list) {
      std::string dname = a.department_id == 0 ? "(replicator)" : NameOf(names, a.department_id);
      arr.push_back({{"serial", a.serial},
                     {"department", dname},
                     {"host", a.host},
                     {"revoked", a.revoked},
                     {"drill_host", a.drill_host}});
      text += a.serial + "\t" + dname + "\t" + a.host + (a.drill_host ? "\tdrill host" : "") +
              (a.revoked ? "\trevoked" : "") + "\n";
    }
    Print(json, {{"ok", true}, {"agents", arr}}, text);
    return 0;
  }
  if (*job_start) {
    if (job_source == 0 && job_agent.empty()) {
      return Fail(json, Status::InvalidArgument("give --agent (and --path) or --source"));
    }
    if (job_source != 0 && (!job_paths.empty() || job_image)) {
      return Fail(json, Status::InvalidArgument("--source takes its paths from the source"));
    }
    auto id = job_source != 0 ? service.StartSourceJob(me, job_source)
                              : service.StartJob(me, job_agent, name, job_paths, job_image);
    if (!id.ok()) return Fail(json, id.status());
    if (job_wait <= 0) {
      Print(json, {{"ok", true}, {"job", *id}, {"state", "queued"}},
            "job " + std::to_string(*id) + " queued\n");
      return 0;
    }
    return WaitForJob(service, *id, job_wait, json);
  }
  if (*monthly) {
    auto config = cairn::vault::LoadConfig(data_dir + "/vault.toml");
    const auto scheduler = config.ok() ? config->scheduler : cairn::vault::SchedulerOptions{};
    // The month [first day, first day of the next) in UTC.
    int year = 0, mon = 0;
    if (monthly_month.empty()) {
      const std::time_t t = std::time(nullptr);
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      year = tm.tm_year + 1900;
      mon = tm.tm_mon;  // last month, 1-based
      if (mon == 0) {
        mon = 12;
        --year;
      }
    } else if (std::sscanf(monthly_month.c_str(), "%4d-%2d", &year, &mon) != 2 || mon < 1 ||
               mon > 12 || year < 2000 || year > 9999 || monthly_month.size() != 7) {
      return Fail(json, Status::InvalidArgument("--month '" + monthly_month +
                                                "' is not a month (use 2026-11)"));
    }
    char first[32], next[32];
    std::snprintf(first, sizeof(first), "%04d-%02d-01", year, mon);
    std::snprintf(next, sizeof(next), "%04d-%02d-01", mon == 12 ? year + 1 : year,
                  mon == 12 ? 1 : mon + 1);
    const std::string month = std::string(first).substr(0, 7);
    auto from = ParseTime(first);
    auto to = ParseTime(next);
    if (!from.ok() || !to.ok()) return Fail(json, Status::InvalidArgument("bad --month"));
    auto html = service.MonthlyReport(me, comp_department, month, *from, *to, scheduler);
    if (!html.ok()) return Fail(json, html.status());
    if (monthly_out.empty()) monthly_out = "cairn-" + comp_department + "-" + month + ".html";
    if (Status s = cairn::io::WriteFileAtomically(cairn::io::Env::Posix(), monthly_out,
                                                  cairn::AsBytes(*html));
        !s.ok()) {
      return Fail(json, s);
    }
    Print(json,
          {{"ok", true}, {"file", monthly_out}, {"department", comp_department}, {"month", month}},
          "wrote " + monthly_out + " (" + comp_department + ", " + month +
              "), signed; check it with `cairn-vault report verify " + monthly_out + "`\n");
    return 0;
  }
  if (*compliance) {
    auto config = cairn::vault::LoadConfig(data_dir + "/vault.toml");
    const auto scheduler = config.ok() ? config->scheduler : cairn::vault::SchedulerOptions{};
    const uint64_t now = cairn::io::Env::Posix()->NowMicros();
    uint64_t from = now - std::min<uint64_t>(now, 30ull * 86400 * 1'000'000), to = now + 1;
    for (auto [text, out] : {std::pair{&comp_from, &from}, std::pair{&comp_to, &to}}) {
      if (text->empty()) continue;
      auto micros = ParseTime(*text);
      if (!micros.ok()) return Fail(json, micros.status());
      *out = *micros;
    }
    auto r = service.Compliance(me, comp_department, from, to, scheduler);
    if (!r.ok()) return Fail(json, r.status());
    auto num = [](const boost::json::value& v) {
      return v.is_null() ? std::string("-") : boost::json::serialize(v);
    };
    auto str = [](const boost::json::value& v) {
      return v.is_string() ? std::string(v.as_string()) : std::string("-");
    };
    if (comp_csv) {
      std::cout << "department,source,host,what,policy,rpo_seconds,rpo_achieved_seconds,rpo_state,"
                   "offsite,rto_seconds,last_drill_seconds,last_drill_rto_met,drill_fresh,"
                   "backups_done,backups_failed,backups_missed,backup_success_percent,"
                   "damaged_snapshots,department_stored_bytes,compliant\n";
    }
    std::string text =
        "SOURCE\tDEPARTMENT\tHOST\tPOLICY\tRPO\tACHIEVED\tRTO\tLAST DRILL\tDRILL FRESH\t"
        "BACKUPS OK\tCOMPLIANT\n";
    for (const auto& v : (*r)["sources"].as_array()) {
      const auto& s = v.as_object();
      std::string what;
      for (const auto& p : s.at("paths").as_array())
        what += (what.empty() ? "" : " ") + std::string(p.as_string());
      const auto& drill = s.at("last_drill");
      const std::string drill_s =
          drill.is_null() ? "-" : num(drill.as_object().at("total_seconds")) + "s";
      const std::string drill_met = drill.is_null() ? "-" : num(drill.as_object().at("rto_met"));
      const auto& b = s.at("backups").as_object();
      if (comp_csv) {
        std::cout << CsvField(str(s.at("department"))) << "," << num(s.at("source")) << ","
                  << CsvField(str(s.at("host"))) << "," << CsvField(what) << ","
                  << CsvField(str(s.at("policy"))) << "," << num(s.at("rpo_seconds")) << ","
                  << num(s.at("rpo_achieved_seconds")) << "," << CsvField(str(s.at("rpo_state")))
                  << "," << CsvField(str(s.at("offsite"))) << "," << num(s.at("rto_seconds")) << ","
                  << (drill.is_null() ? "" : num(drill.as_object().at("total_seconds"))) << ","
                  << drill_met << "," << num(s.at("drill_fresh")) << "," << num(b.at("done")) << ","
                  << num(b.at("failed")) << "," << num(b.at("missed")) << ","
                  << num(s.at("backup_success_percent")) << "," << num(s.at("damaged_snapshots"))
                  << "," << num(s.at("department_stored_bytes")) << "," << num(s.at("compliant"))
                  << "\n";
      }
      text += num(s.at("source")) + "\t" + str(s.at("department")) + "\t" + str(s.at("host")) +
              "\t" + str(s.at("policy")) + "\t" + num(s.at("rpo_seconds")) + "\t" +
              num(s.at("rpo_achieved_seconds")) + " (" + str(s.at("rpo_state")) + ")\t" +
              num(s.at("rto_seconds")) + "\t" + drill_s + "\t" + num(s.at("drill_fresh")) + "\t" +
              (s.at("backup_success_percent").is_null()
                   ? std::string("-")  // no scheduled backup ended in the window
                   : num(s.at("backup_success_percent")) + "%") +
              "\t" + (s.at("compliant").as_bool() ? "yes" : "NO") + "\n";
    }
    if (comp_csv) return 0;
    Print(json, *r, text);
    return 0;
  }
  {
    // The scheduler's settings decide the next runs that status shows.
    auto config = cairn::vault::LoadConfig(data_dir + "/vault.toml");
    const auto scheduler = config.ok() ? config->scheduler : cairn::vault::SchedulerOptions{};
    if (auto done =
            cairn::vault::cmd::RunProtectionCommand(protection, service, me, json, scheduler)) {
      return *done;
    }
  }
  if (*alert_list) {
    auto list = service.ListAlerts(me, !alert_all, alert_limit);
    if (!list.ok()) return Fail(json, list.status());
    boost::json::array arr;
    std::string text;
    for (const auto& a : *list) {
      arr.push_back(cairn::vault::AlertJson(a));
      text += std::to_string(a.id) + "\t" + (a.firing() ? "FIRING" : "resolved") + "\t" +
              a.severity + "\t" + cairn::cli::Rfc3339(a.fired_micros) + "\t" + a.summary + "\n";
    }
    if (list->empty() && !alert_all) text = "no alert is firing\n";
    Print(json, {{"ok", true}, {"alerts", arr}}, text);
    return 0;
  }
  if (*job_list) {
    auto list = service.ListJobs();
    if (!list.ok()) return Fail(json, list.status());
    const uint64_t now = service.vault()->env()->NowMicros();
    const auto names = DepartmentNames(service);
    const auto snapshots = cairn::vault::JobSnapshots(service, *list);
    boost::json::array arr;
    std::string text;
    for (const auto& j : *list) {
      boost::json::object o = JobJson(names, j, now);
      auto snap = snapshots.find(j.id);
      const bool stats = snap != snapshots.end();
      if (stats) o["stats"] = cairn::vault::JobStatsJson(snap->second);
      arr.push_back(std::move(o));
      std::string state(cairn::vault::JobStateName(j.state));
      std::string detail;
      if (j.state == cairn::vault::JobState::kQueued) {
        detail = "waiting " + std::to_string((now - j.created_micros) / 1000000) + " s";
      } else if (j.state == cairn::vault::JobState::kSent) {
        detail = "running " + std::to_string((now - j.sent_micros) / 1000000) + " s";
      } else if (j.state == cairn::vault::JobState::kDone) {
        detail = "snapshot " + j.snapshot_id;
        if (stats) {
          const auto& s = snap->second;
          detail += ": " + std::to_string(s.files) + " files, " + cairn::HumanBytes(s.bytes) +
                    ", " + cairn::HumanBytes(s.new_bytes) + " new";
        }
      } else {
        detail = j.error;
      }
      text += std::to_string(j.id) + "\t" + state + "\t" + NameOf(names, j.department_id) + "\t" +
              (j.agent_serial.empty() ? j.host : j.host + " (" + j.agent_serial + ")") + "\t" +
              detail + "\n";
    }
    Print(json, {{"ok", true}, {"jobs", arr}}, text);
    return 0;
  }
  auto read_password = [&]() -> cairn::Result<std::optional<std::string>> {
    if (!password_stdin) return std::optional<std::string>();
    std::string line;
    std::getline(std::cin, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return std::optional<std::string>(line);
  };
  if (*user_create) {
    auto pw = read_password();
    if (!pw.ok()) return Fail(json, pw.status());
    auto secret = service.CreateUser(me, user_name, user_role, user_departments, *pw);
    if (!secret.ok()) return Fail(json, secret.status());
    boost::json::object o{{"ok", true}, {"user", user_name}, {"role", user_role}};
    if (!password_stdin) o["password"] = *secret;
    Print(json, o,
          "User " + user_name + " (" + user_role + ") created" +
              (password_stdin ? std::string(".\n")
                              : ".\n  password: " + *secret +
                                    "\nThe password is shown only now; hand it over safely.\n"));
    return 0;
  }
  if (*user_list) {
    auto users = service.ListUsers(me);
    if (!users.ok()) return Fail(json, users.status());
    boost::json::array arr;
    std::string text;
    for (const auto& u : *users) {
      arr.push_back(
          {{"user", u.name},
           {"role", u.role},
           {"departments", boost::json::array(u.departments.begin(), u.departments.end())},
           {"disabled", u.disabled},
           {"created", cli::Rfc3339(u.created_micros)}});
      std::string scope;
      for (const auto& d : u.departments) scope += (scope.empty() ? "" : ",") + d;
      text += u.name + "\t" + u.role + "\t" + (scope.empty() ? "-" : scope) +
              (u.disabled ? "\tdisabled" : "") + "\n";
    }
    Print(json, {{"ok", true}, {"users", arr}}, text);
    return 0;
  }
  if (*user_disable || *user_enable) {
    const bool disable = user_disable->parsed();
    if (auto s = service.SetUserDisabled(me, user_name, disable); !s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"user", user_name}, {"disabled", disable}},
          "User " + user_name + (disable ? " disabled\n" : " enabled\n"));
    return 0;
  }
  if (*user_passwd) {
    auto pw = read_password();
    if (!pw.ok()) return Fail(json, pw.status());
    // Without --password-stdin a new one is made and shown once.
    std::string password = pw->has_value() ? **pw : std::string();
    if (password.empty()) {
      auto generated = cairn::crypto::RandomPassword();
      if (!generated.ok()) return Fail(json, generated.status());
      password = *generated;
    }
    if (auto s = service.SetPassword(me, user_name, password); !s.ok()) return Fail(json, s);
    boost::json::object o{{"ok", true}, {"user", user_name}};
    if (!password_stdin) o["password"] = password;
    Print(json, o,
          "Password of " + user_name + " set" +
              (password_stdin ? std::string(".\n") : ": " + password + " (shown only now)\n"));
    return 0;
  }
  if (*user_cert) {
    auto csr = cairn::io::ReadFileToBytes(cairn::io::Env::Posix(), csr_file);
    if (!csr.ok()) return Fail(json, csr.status());
    auto pem = service.IssuePersonCertificate(me, user_name, cairn::AsString(*csr), cert_days);
    if (!pem.ok()) return Fail(json, pem.status());
    Print(json, {{"ok", true}, {"user", user_name}, {"certificate", *pem}}, *pem);
    return 0;
  }
  if (*ca_import) {
    auto pem = cairn::io::ReadFileToBytes(cairn::io::Env::Posix(), ca_file);
    if (!pem.ok()) return Fail(json, pem.status());
    if (auto s = service.ImportPersonCa(me, cairn::AsString(*pem)); !s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"imported", ca_file}},
          "Imported " + ca_file +
              ": its certificates log people in by their CN once serve restarts\n");
    return 0;
  }
  if (*user_token) {
    auto api_token = service.CreateApiToken(me, user_name, token_label);
    if (!api_token.ok()) return Fail(json, api_token.status());
    Print(json, {{"ok", true}, {"user", user_name}, {"token", *api_token}},
          *api_token + "\n(an API token of " + user_name +
              ": send it as `Authorization: Bearer <token>`; shown only now)\n");
    return 0;
  }
  if (*user_revoke_token) {
    if (auto s = service.RevokeApiToken(me, token_id); !s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"revoked", token_id}}, "API token " + token_id + " revoked\n");
    return 0;
  }
  if (*audit_list) {
    for (auto [text, out] : {std::pair{&since, &audit_filter.since_micros},
                             std::pair{&until, &audit_filter.until_micros}}) {
      if (text->empty()) continue;
      auto micros = ParseTime(*text);
      if (!micros.ok()) return Fail(json, micros.status());
      *out = *micros;
    }
    auto entries = (*vault)->audit()->List(audit_filter);
    if (!entries.ok()) return Fail(json, entries.status());
    if (csv) {
      std::cout << "seq,time,actor,address,action,department,object,details,hash\n";
      for (const auto& e : *entries) {
        std::cout << e.seq << "," << CsvField(cli::Rfc3339(e.time_micros)) << ","
                  << CsvField(e.actor) << "," << CsvField(e.address) << "," << CsvField(e.action)
                  << "," << CsvField(e.department) << "," << CsvField(e.object) << ","
                  << CsvField(cli::ToJson(e.details)) << "," << e.hash << "\n";
      }
      return 0;
    }
    boost::json::array arr;
    std::string text;
    for (const auto& e : *entries) {
      boost::json::value v = boost::json::parse(e.line);
      arr.push_back(std::move(v));
      text += std::to_string(e.seq) + "\t" + cli::Rfc3339(e.time_micros) + "\t" +
              cairn::EscapeForLog(e.actor) + "\t" + cairn::EscapeForLog(e.action) + "\t" +
              cairn::EscapeForLog(e.department) + "\t" + cairn::EscapeForLog(e.object) + "\n";
    }
    Print(json, {{"ok", true}, {"entries", arr}}, text);
    return 0;
  }
  if (*audit_key) {
    auto pub =
        cairn::io::ReadFileToBytes(service.vault()->env(), (*vault)->audit()->public_key_path());
    if (!pub.ok()) return Fail(json, pub.status());
    std::cout << cairn::AsString(*pub);
    return 0;
  }
  if (*agent_revoke) {
    Status s = service.RevokeAgent(me, serial);
    if (!s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"revoked", serial}}, "Certificate " + serial + " revoked\n");
    return 0;
  }
  return 0;
}
