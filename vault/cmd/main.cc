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
#include <thread>

#include "lib/base/logging.h"
#include "vault/server.h"
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

int Fail(bool json, const Status& s) {
  std::cerr << "cairn-vault: " << s.message() << "\n";
  if (json) {
    boost::json::object o{{"ok", false},
                          {"error", std::string(cairn::StatusCodeName(s.code()))},
                          {"message", s.message()}};
    std::cout << boost::json::serialize(o) << "\n";
  }
  return s.code() == cairn::StatusCode::kInvalidArgument ? 2 : 1;
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
  token_create->add_option("--department", name, "Department the agent will belong to")->required();
  token_create->add_option("--data", data_dir, "Vault data directory")->required();
  token_create->add_option("--ttl", ttl, "Seconds until the token expires")->capture_default_str();
  token_create->add_flag("--json", json, "Print the result as one JSON object");

  auto* snapshot = app.add_subcommand("snapshot", "Snapshots");
  snapshot->require_subcommand(1);
  auto* snapshot_list = snapshot->add_subcommand("list", "List a department's snapshots, newest first");
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
    cairn::vault::OpenOptions oo;
    oo.serve = true;
    auto vault = cairn::vault::Vault::Open(data_dir, oo);
    if (!vault.ok()) return Fail(false, vault.status());
    const auto& rec = (*vault)->store()->recovery();
    for (const auto& d : rec.damaged) spdlog::error("damaged pack left untouched: {}", d);
    if (!http.empty()) {
      spdlog::warn("--http {}: the REST API and web console are not part of this build yet", http);
    }
    boost::asio::io_context io;
    cairn::vault::ServeOptions so;
    so.listen = listen;
    cairn::vault::VaultServer server(vault->get(), so);
    auto port = server.Start(io);
    if (!port.ok()) return Fail(false, port.status());
    spdlog::info("vault (site {}) serving agents on {} (port {}) from {}", (*vault)->site(), listen,
                 *port, data_dir);
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      spdlog::info("signal {}: draining connections, sealing packs", sig);
      boost::asio::co_spawn(
          io,
          [&]() -> boost::asio::awaitable<void> {
            co_await server.Stop(std::chrono::seconds(5));
            io.stop();
          },
          boost::asio::detached);
    });
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
    io.run();
    for (auto& t : pool) t.join();
    spdlog::info("vault stopped");
    return 0;
  }

  auto vault = cairn::vault::Vault::Open(data_dir, {});
  if (!vault.ok()) return Fail(json, vault.status());
  auto& v = **vault;

  if (*dept_create) {
    auto d = v.CreateDepartment(name);
    if (!d.ok()) return Fail(json, d.status());
    Print(json, {{"ok", true}, {"department", d->name}, {"id", d->id}},
          "Department " + d->name + " created (id " + std::to_string(d->id) + ")\n");
    return 0;
  }
  if (*dept_list) {
    auto list = v.catalog()->ListDepartments();
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
  if (*token_create) {
    auto t = v.CreateEnrollmentToken(name, ttl);
    if (!t.ok()) return Fail(json, t.status());
    Print(json, {{"ok", true}, {"department", name}, {"token", *t}, {"expires_in_seconds", ttl}},
          *t + "\n");
    return 0;
  }
  if (*snapshot_list) {
    auto d = v.catalog()->FindDepartment(name);
    if (!d.ok()) return Fail(json, d.status());
    auto list = v.catalog()->ListSnapshots(d->id, 0);
    if (!list.ok()) return Fail(json, list.status());
    boost::json::array arr;
    std::string text;
    for (const auto& s : *list) {
      boost::json::array paths(s.paths.begin(), s.paths.end());
      arr.push_back({{"id", s.id}, {"host", s.host}, {"paths", paths},
                     {"kind", s.kind == 2 ? "image" : "files"}, {"time_micros", s.time_micros},
                     {"files", s.files}, {"bytes", s.bytes}, {"new_bytes", s.new_bytes},
                     {"chunks", s.manifest_count}});
      text += s.id + "\t" + s.host + "\t" + std::to_string(s.files) + " files\t" +
              cairn::HumanBytes(s.bytes) + "\t" + (s.paths.empty() ? "" : s.paths[0]) + "\n";
    }
    Print(json, {{"ok", true}, {"department", d->name}, {"snapshots", arr}}, text);
    return 0;
  }
  if (*agent_list) {
    auto list = v.catalog()->ListAgents();
    if (!list.ok()) return Fail(json, list.status());
    boost::json::array arr;
    std::string text;
    for (const auto& a : *list) {
      auto d = v.catalog()->FindDepartment(a.department_id);
      std::string dname = d.ok() ? d->name : "?";
      arr.push_back(
          {{"serial", a.serial}, {"department", dname}, {"host", a.host}, {"revoked", a.revoked}});
      text += a.serial + "\t" + dname + "\t" + a.host + (a.revoked ? "\trevoked" : "") + "\n";
    }
    Print(json, {{"ok", true}, {"agents", arr}}, text);
    return 0;
  }
  if (*agent_revoke) {
    Status s = v.catalog()->RevokeAgent(serial, cairn::io::Env::Posix()->NowMicros());
    if (!s.ok()) return Fail(json, s);
    Print(json, {{"ok", true}, {"revoked", serial}}, "Certificate " + serial + " revoked\n");
    return 0;
  }
  return 0;
}
