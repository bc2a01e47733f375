// cairn-vault: flags and wiring only; the logic lives in the cairn_vault
// library (vault/*.h).
#include <spdlog/spdlog.h>
#include <sys/stat.h>

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
#include "vault/daemon.h"
#include "vault/service/vault_service.h"
#include "vault/vault.h"

namespace {

using cairn::Status;

// Prints `result` as one JSON object on stdout (--json) or as text.
void Print(bool json, const boost::json::object& result, const std::string& text) {
  if (json) {
    std::cout << boost::json::serialize(result) << "\n";
  } else {
    std::cout << text;
  }
}

int Fail(bool json, const Status& s) { return cairn::FailCommand("cairn-vault", json, s); }

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

boost::json::object JobJson(const std::map<uint32_t, std::string>& names, const JobRecord& j,
                            uint64_t now) {
  boost::json::array paths(j.paths.begin(), j.paths.end());
  boost::json::object o{{"job", j.id},
                        {"state", std::string(cairn::vault::JobStateName(j.state))},
                        {"department", NameOf(names, j.department_id)},
                        {"host", j.host},
                        {"agent_serial", j.agent_serial},
                        {"paths", paths},
                        {"image", j.image},
                        {"created_micros", j.created_micros},
                        {"sent_micros", j.sent_micros},
                        {"finished_micros", j.finished_micros},
                        {"sent_to", j.sent_to}};
  if (j.state == JobState::kQueued) o["waiting_seconds"] = (now - j.created_micros) / 1e6;
  if (j.state == JobState::kDone) o["snapshot"] = j.snapshot_id;
  if (j.state == JobState::kFailed) o["message"] = j.error;
  return o;
}

// Polls job `id` until it is done or failed, or `seconds` pass.
int WaitForJob(const cairn::vault::VaultService& service, uint64_t id, double seconds, bool json) {
  auto* env = service.vault()->env();
  const auto names = DepartmentNames(service);
  const uint64_t deadline = env->MonotonicMicros() + static_cast<uint64_t>(seconds * 1e6);
  for (;;) {
    auto j = service.FindJob(id);
    if (!j.ok()) return Fail(json, j.status());
    const uint64_t now = env->NowMicros();
    if (j->state == JobState::kDone) {
      boost::json::object o = JobJson(names, *j, now);
      o["ok"] = true;
      Print(json, o, "snapshot " + j->snapshot_id + "\n");
      return 0;
    }
    if (j->state == JobState::kFailed || env->MonotonicMicros() >= deadline) {
      std::string message =
          j->state == JobState::kFailed
              ? "job " + std::to_string(id) + " failed: " + j->error
              : "job " + std::to_string(id) + " is still " +
                    std::string(cairn::vault::JobStateName(j->state)) + " after " +
                    std::to_string(static_cast<int>(seconds)) + " s" +
                    (j->state == JobState::kQueued ? " (is the agent running and connected?)" : "");
      std::cerr << "cairn-vault: " << message << "\n";
      if (json) {
        boost::json::object o = JobJson(names, *j, now);
        o["ok"] = false;
        o["error"] = j->state == JobState::kFailed ? "job_failed" : "timeout";
        o["message"] = message;
        std::cout << boost::json::serialize(o) << "\n";
      }
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::umask(077);  // keys, packs and the catalog are nobody else's business
  CLI::App app{"cairn-vault: the Cairn backup vault"};
  app.require_subcommand(1);
  std::string data_dir, site = "primary", log_level = "info";
  bool json = false;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  auto* init = app.add_subcommand("init", "Create a new vault: CA, master key, first admin");
  init->add_option("--data", data_dir, "Data directory (new or empty)")->required();
  init->add_option("--site", site, "Site name, e.g. primary or dr")->capture_default_str();
  std::vector<std::string> hosts;
  init->add_option("--host", hosts,
                   "Name or address agents use to reach this vault (repeatable; default "
                   "127.0.0.1, ::1, localhost)");
  init->add_flag("--json", json, "Print the result as one JSON object");

  auto* serve = app.add_subcommand("serve", "Run the vault: TLS listener for agents");
  std::string listen = "127.0.0.1:7420", http;
  int threads = 4;
  serve->add_option("--data", data_dir, "Vault data directory")->required();
  serve->add_option("--listen", listen, "host:port for agents")->capture_default_str();
  serve->add_option("--http", http, "host:port for the REST API and web console");
  serve->add_option("--threads", threads, "I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));

  auto* dept = app.add_subcommand("department", "Manage departments");
  dept->require_subcommand(1);
  auto* dept_create = dept->add_subcommand("create", "Create a department and its keys");
  std::string name;
  dept_create->add_option("NAME", name, "Department name: a-z, 0-9, '-'")->required();
  dept_create->add_option("--data", data_dir, "Vault data directory")->required();
  dept_create->add_flag("--json", json, "Print the result as one JSON object");
  auto* dept_list = dept->add_subcommand("list", "List departments");
  dept_list->add_option("--data", data_dir, "Vault data directory")->required();
  dept_list->add_flag("--json", json, "Print the result as one JSON object");

  auto* token = app.add_subcommand("token", "Enrolment tokens");
  token->require_subcommand(1);
  auto* token_create = token->add_subcommand("create", "Create a one-time enrolment token");
  uint64_t ttl = 3600;
  bool replicator_token = false;
  auto* token_department =
      token_create->add_option("--department", name, "Department the agent will belong to");
  token_create
      ->add_flag("--replicator", replicator_token,
                 "A token for a DR site's cairn-replicator instead (reads every department)")
      ->excludes(token_department);
  token_create->add_option("--data", data_dir, "Vault data directory")->required();
  token_create->add_option("--ttl", ttl, "Seconds until the token expires")->capture_default_str();
  token_create->add_flag("--json", json, "Print the result as one JSON object");

  std::string promoted_by, promote_reason;
  auto* promote = app.add_subcommand(
      "promote", "Failover: make this DR vault accept backups from the replicated departments");
  promote->add_option("--data", data_dir, "Vault data directory")->required();
  promote->add_option("--by", promoted_by, "Who decides the failover (recorded)")->required();
  promote->add_option("--reason", promote_reason, "Why (recorded)");
  promote->add_flag("--json", json, "Print the result as one JSON object");

  auto* demote = app.add_subcommand(
      "demote", "After failback: make this DR vault refuse backups again (recorded)");
  demote->add_option("--data", data_dir, "Vault data directory")->required();
  demote->add_option("--by", promoted_by, "Who decides (recorded)")->required();
  demote->add_option("--reason", promote_reason, "Why (recorded)");
  demote->add_flag("--json", json, "Print the result as one JSON object");

  auto* snapshot = app.add_subcommand("snapshot", "Snapshots");
  snapshot->require_subcommand(1);
  auto* snapshot_list =
      snapshot->add_subcommand("list", "List a department's snapshots, newest first");
  snapshot_list->add_option("--department", name, "Department")->required();
  snapshot_list->add_option("--data", data_dir, "Vault data directory")->required();
  snapshot_list->add_flag("--json", json, "Print the result as one JSON object");

  auto* agent = app.add_subcommand("agent", "Enrolled agents");
  agent->require_subcommand(1);
  auto* agent_list = agent->add_subcommand("list", "List enrolled agents");
  agent_list->add_option("--data", data_dir, "Vault data directory")->required();
  agent_list->add_flag("--json", json, "Print the result as one JSON object");
  auto* agent_revoke = agent->add_subcommand("revoke", "Revoke an agent's certificate at once");
  std::string serial;
  agent_revoke->add_option("SERIAL", serial, "Certificate serial (see `agent list`)")->required();
  agent_revoke->add_option("--data", data_dir, "Vault data directory")->required();
  agent_revoke->add_flag("--json", json, "Print the result as one JSON object");

  auto* job = app.add_subcommand("job", "Jobs sent to agents in run mode");
  job->require_subcommand(1);
  auto* job_start = job->add_subcommand("start", "Queue a backup job for an agent");
  std::string job_agent;
  std::vector<std::string> job_paths;
  bool job_image = false;
  double job_wait = 0;
  job_start->add_option("--agent", job_agent, "Agent certificate serial or host name")->required();
  job_start->add_option("--data", data_dir, "Vault data directory")->required();
  job_start->add_option("--department", name, "Department of the host (when ambiguous)");
  job_start->add_option("--path", job_paths,
                        "Path to back up (repeatable; default: the agent's backup set)");
  job_start->add_flag("--image", job_image, "Image backup");
  job_start->add_option("--wait", job_wait, "Wait up to SECONDS for the job to finish")
      ->check(CLI::Range(0.0, 31.0 * 86400));
  job_start->add_flag("--json", json, "Print the result as one JSON object");
  auto* job_list = job->add_subcommand("list", "List jobs, oldest first");
  job_list->add_option("--data", data_dir, "Vault data directory")->required();
  job_list->add_flag("--json", json, "Print the result as one JSON object");

  CLI11_PARSE(app, argc, argv);
  cairn::LogOptions log;
  log.program = "cairn-vault";
  log.level = log_level;
  if (Status s = cairn::InitLogging(log); !s.ok()) return Fail(json, s);

  if (*init) {
    cairn::vault::InitOptions opts{data_dir, site, hosts};
    auto r = cairn::vault::InitVault(opts);
    if (!r.ok()) return Fail(json, r.status());
    Print(json,
          {{"ok", true},
           {"data", data_dir},
           {"site", site},
           {"admin_user", r->admin_user},
           {"admin_password", r->admin_password},
           {"ca_fingerprint", r->ca_fingerprint}},
          "Vault created in " + data_dir + " (site " + site + ")\n" + "  CA fingerprint:  " +
              r->ca_fingerprint + "\n" + "  admin user:      " + r->admin_user + "\n" +
              "  admin password:  " + r->admin_password + "\n" +
              "The password is shown only now; store it safely.\n");
    return 0;
  }

  if (*serve) {
    if (!http.empty()) {
      spdlog::warn("--http {}: the REST API and web console are not part of this build yet", http);
    }
    cairn::vault::DaemonOptions daemon;
    daemon.data_dir = data_dir;
    daemon.serve.listen = listen;
    daemon.threads = threads;
    Status s = cairn::vault::RunDaemon(daemon);
    return s.ok() ? 0 : Fail(false, s);
  }

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
    auto t = service.CreateEnrollmentToken(me, name, ttl);
    if (!t.ok()) return Fail(json, t.status());
    Print(json, {{"ok", true}, {"department", name}, {"token", *t}, {"expires_in_seconds", ttl}},
          *t + "\n");
    return 0;
  }
  if (*snapshot_list) {
    auto list = service.ListSnapshots(name);
    if (!list.ok()) return Fail(json, list.status());
    boost::json::array arr;
    std::string text;
    for (const auto& s : *list) {
      boost::json::array paths(s.paths.begin(), s.paths.end());
      arr.push_back({{"id", s.id},
                     {"host", s.host},
                     {"paths", paths},
                     {"kind", s.kind == 2 ? "image" : "files"},
                     {"time_micros", s.time_micros},
                     {"files", s.files},
                     {"bytes", s.bytes},
                     {"new_bytes", s.new_bytes},
                     {"chunks", s.manifest_count}});
      text += s.id + "\t" + s.host + "\t" + std::to_string(s.files) + " files\t" +
              cairn::HumanBytes(s.bytes) + "\t" + (s.paths.empty() ? "" : s.paths[0]) + "\n";
    }
    Print(json, {{"ok", true}, {"department", name}, {"snapshots", arr}}, text);
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
      arr.push_back(
          {{"serial", a.serial}, {"department", dname}, {"host", a.host}, {"revoked", a.revoked}});
      text += a.serial + "\t" + dname + "\t" + a.host + (a.revoked ? "\trevoked" : "") + "\n";
    }
    Print(json, {{"ok", true}, {"agents", arr}}, text);
    return 0;
  }
  if (*job_start) {
    auto id = service.StartJob(me, job_agent, name, job_paths, job_image);
    if (!id.ok()) return Fail(json, id.status());
    if (job_wait <= 0) {
      Print(json, {{"ok", true}, {"job", *id}, {"state", "queued"}},
            "job " + std::to_string(*id) + " queued\n");
      return 0;
    }
    return WaitForJob(service, *id, job_wait, json);
  }
  if (*job_list) {
    auto list = service.ListJobs();
    if (!list.ok()) return Fail(json, list.status());
    const uint64_t now = service.vault()->env()->NowMicros();
    const auto names = DepartmentNames(service);
    boost::json::array arr;
    std::string text;
    for (const auto& j : *list) {
      arr.push_back(JobJson(names, j, now));
      std::string state(cairn::vault::JobStateName(j.state));
      std::string detail;
      if (j.state == cairn::vault::JobState::kQueued) {
        detail = "waiting " + std::to_string((now - j.created_micros) / 1000000) + " s";
      } else if (j.state == cairn::vault::JobState::kSent) {
        detail = "running " + std::to_string((now - j.sent_micros) / 1000000) + " s";
      } else if (j.state == cairn::vault::JobState::kDone) {
        detail = "snapshot " + j.snapshot_id;
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
  if (*agent_revoke) {
    Status s = service.RevokeAgent(me, serial);
    if (!s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"revoked", serial}}, "Certificate " + serial + " revoked\n");
    return 0;
  }
  return 0;
}
