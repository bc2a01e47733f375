// cairn-replicator: flags and wiring only. A DR site's replicator is the
// DR vault's daemon (vault/daemon.h) with the pulling half of replication
// (vault/replication/puller.h) as its task; its identity at the source is
// a client identity (lib/client).
//
//   cairn-replicator enroll --data DR_DIR --source H:P --token T
//   cairn-replicator run --data DR_DIR [--source H:P] [--listen H:P] [--once]
//                        [--limit-rate BYTES/s] [--json]
//
// `run` owns the DR vault's data directory: it serves it on --listen
// (restores, and backups once promoted) and pulls from the source, every
// --poll-ms in continuous mode. Exit codes: 0 success, 1 failure, 2 bad
// usage or input.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "lib/base/cli.h"
#include "lib/base/logging.h"
#include "lib/client/enroll.h"
#include "lib/client/identity.h"
#include "vault/config.h"
#include "vault/daemon.h"
#include "vault/replication/puller.h"

namespace {

using cairn::Status;
namespace json = boost::json;

namespace cli = cairn::cli;

int Fail(bool json, const Status& s) { return cli::Fail("cairn-replicator", json, s); }

// The progress line on a terminal: bytes, records, rate, ETA of the pass.
void PrintProgress(const cairn::vault::PassProgress& p) {
  const double rate = p.seconds > 0 ? static_cast<double>(p.bytes) / p.seconds : 0;
  std::string eta = "?";
  if (p.records > 0 && p.records_to_fetch >= p.records) {
    eta = cairn::HumanDuration(p.seconds / static_cast<double>(p.records) *
                               static_cast<double>(p.records_to_fetch - p.records));
  }
  std::fprintf(stderr, "\r\033[Ksnapshot %llu of %llu: %s, %llu of %llu records, %s/s, ETA %s",
               static_cast<unsigned long long>(p.snapshot),
               static_cast<unsigned long long>(p.snapshots), cairn::HumanBytes(p.bytes).c_str(),
               static_cast<unsigned long long>(p.records),
               static_cast<unsigned long long>(p.records_to_fetch),
               cairn::HumanBytes(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
}

// Set-up, then passes until stopped: every --poll-ms when all is pulled,
// with backoff after a failed pass; one pass with --once.
class PullTask : public cairn::vault::DaemonTask {
 public:
  PullTask(cairn::client::Identity identity, cairn::vault::ReplicatorOptions options, bool once,
           int poll_ms, bool json)
      : identity_(std::move(identity)),
        options_(std::move(options)),
        once_(once),
        poll_ms_(poll_ms),
        json_(json) {}

  // Set-up first, so that the listener starts with the source's trust (its
  // CA and this vault's certificate from it). With the source down, serve
  // with what an earlier set-up saved.
  Status Prepare(cairn::vault::VaultService* service) override {
    const bool had_trust = service->IsReplica();
    cairn::vault::ReplicationPuller setup(service, identity_, options_);
    auto s = setup.RunPass(/*setup_only=*/true);
    if (!s.ok()) {
      spdlog::warn("set-up with {} failed: {}", identity_.config.vault_addresses.front(),
                   s.status().ToString());
      if (once_) return s.status().WithContext("replication");
      return Status::OK();
    }
    if (!had_trust && service->IsReplica()) return service->vault()->ReloadPki();
    return Status::OK();
  }

  Status Run(cairn::vault::VaultService* service) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return Status::OK();
      puller_ = std::make_unique<cairn::vault::ReplicationPuller>(service, identity_, options_);
    }
    auto backoff = std::chrono::milliseconds(1000);
    while (!stopped_) {
      auto pass = puller_->RunPass();
      if (pass.ok()) {
        backoff = std::chrono::milliseconds(1000);
        if (options_.progress) std::fprintf(stderr, "\r\033[K");
        if (json_) cli::PrintJson(cairn::vault::PassJson(*pass));
        if (pass->snapshots > 0 || once_) {
          spdlog::info(
              "pass: {} snapshot(s), {} records, {} bytes in {:.1f} s; cursor {}, "
              "{} pending, lag {:.1f} s",
              pass->snapshots, pass->records, pass->bytes, pass->seconds, pass->cursor,
              pass->pending, pass->lag_seconds);
        }
        if (once_) return Status::OK();
        Sleep(std::chrono::milliseconds(poll_ms_));
      } else {
        if (pass.status().IsCancelled()) return Status::OK();
        if (once_) return pass.status().WithContext("replication");
        spdlog::warn("replication pass failed (retrying in {} s): {}", backoff.count() / 1000,
                     pass.status().ToString());
        Sleep(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
      }
    }
    return Status::OK();
  }

  void Stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    if (puller_) puller_->Cancel();
    wake_.notify_all();
  }

 private:
  void Sleep(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, d, [this] { return stopped_.load(); });
  }

  cairn::client::Identity identity_;
  cairn::vault::ReplicatorOptions options_;
  bool once_;
  int poll_ms_;
  bool json_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stopped_{false};
  std::unique_ptr<cairn::vault::ReplicationPuller> puller_;
};

}  // namespace

int main(int argc, char** argv) {
  ::umask(077);
  CLI::App app{
      "cairn-replicator: pulls a source vault's snapshots into this site's vault (the DR copy),\n"
      "and serves that vault. The source never connects here. Environment: CAIRN_DATA (--data)."};
  app.require_subcommand(1);
  std::string data_dir, source, token, host, listen, http, web_root;
  uint64_t limit_rate = 0;
  std::vector<std::string> advertise;
  bool once = false;
  int poll_ms = 1000, threads = 4;
  cli::CommonFlags flags;
  cli::AddCommonFlags(app, &flags, "cairn-replicator");
  bool& json_out = flags.json;

  auto* enroll = app.add_subcommand("enroll", "Enrol with the source vault (a --replicator token)");
  enroll->add_option("--data", data_dir, "This site's vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  enroll->add_option("--source", source, "The source vault, host:port")->required();
  enroll->add_option("--token", token, "Token from `cairn-vault token create --replicator`")
      ->required();
  enroll->add_option("--host", host, "Name to enrol as (default: this host)");
  cli::AddJsonFlag(enroll, &flags);
  cli::Examples(
      enroll,
      "Example:\n  cairn-replicator enroll --data /srv/cairn-dr --source vault.city.gov:7420 "
      "--token cairn1-...");

  auto* run = app.add_subcommand("run", "Replicate (and serve this site's vault)");
  run->add_option("--data", data_dir, "This site's vault data directory")
      ->envname("CAIRN_DATA")
      ->required();
  run->add_option("--source", source, "The source vault, host:port (default: as enrolled)");
  run->add_option("--listen", listen,
                  "Serve this vault here too (restores; backups once promoted)");
  run->add_option("--advertise", advertise,
                  "Address agents use for this vault, repeatable (default: --listen)");
  run->add_option("--http", http,
                  "host:port for this DR vault's REST API and web console (DR teams promote "
                  "here)");
  run->add_option("--web-root", web_root, "The built web console (default as cairn-vault serve)");
  run->add_flag("--once", once, "One pass, then exit");
  run->add_option("--limit-rate", limit_rate,
                  "Bytes per second from the source, with a unit if you like (10M, 512k)")
      ->transform(CLI::AsSizeValue(false));
  run->add_option("--poll-ms", poll_ms, "Pause between passes in continuous mode")
      ->capture_default_str()
      ->check(CLI::Range(50, 3600000));
  run->add_option("--threads", threads, "I/O threads for the listener")->capture_default_str();
  int deadline_ms = 60000;
  run->add_option("--deadline-ms", deadline_ms,
                  "Give up on a silent source after this long (the pass is retried)")
      ->capture_default_str()
      ->check(CLI::Range(500, 3600000));
  run->add_flag("--json", json_out, "One JSON object per pass on stdout");
  cli::Examples(run,
                "Examples:\n"
                "  cairn-replicator run --data /srv/cairn-dr --listen 0.0.0.0:7420 --json\n"
                "  cairn-replicator run --data /srv/cairn-dr --once --limit-rate 20M");

  if (int rc = cli::Parse(app, argc, argv, "cairn-replicator"); rc >= 0) return rc;
  cairn::LogOptions log;
  log.program = "cairn-replicator";
  log.level = flags.Level(*run ? "info" : "warn");
  if (Status s = cairn::InitLogging(log); !s.ok()) return Fail(json_out, s);

  if (*enroll) {
    cairn::client::EnrollOptions eo;
    eo.vault = source;
    eo.token = token;
    eo.state_dir = cairn::vault::ReplicatorIdentityDir(data_dir);
    eo.host = host;
    eo.force = true;
    eo.replicator = true;
    eo.software = cli::VersionString("cairn-replicator");
    auto r = cairn::client::Enroll(eo);
    if (!r.ok()) return Fail(json_out, r.status());
    if (json_out) {
      cli::PrintJson(json::object{{"ok", true},
                                  {"source", source},
                                  {"certificate_serial", r->certificate_serial},
                                  {"ca_fingerprint", r->ca_fingerprint}});
    } else {
      std::cout << "Enrolled as a replicator of " << source << " (certificate "
                << r->certificate_serial << "); identity in "
                << cairn::vault::ReplicatorIdentityDir(data_dir) << "\n";
    }
    return 0;
  }

  auto identity = cairn::client::LoadIdentity(cairn::vault::ReplicatorIdentityDir(data_dir), false);
  if (!identity.ok()) {
    if (identity.status().IsNotFound()) {
      return Fail(json_out, Status::NotFound("no replicator identity in " + data_dir +
                                             " (run cairn-replicator enroll first)"));
    }
    return Fail(json_out, identity.status().WithContext("replicator identity"));
  }
  if (!source.empty()) identity->config.vault_addresses = {source};
  cairn::vault::ReplicatorOptions ro;
  ro.limit_rate = limit_rate;
  if (!json_out && ::isatty(STDERR_FILENO)) ro.progress = PrintProgress;
  ro.deadline = std::chrono::milliseconds(deadline_ms);
  ro.advertise = advertise;
  if (ro.advertise.empty() && !listen.empty()) ro.advertise = {listen};

  cairn::vault::DaemonOptions daemon;
  daemon.data_dir = data_dir;
  daemon.serve.listen = listen;
  daemon.threads = threads;
  daemon.what = "DR vault";
  daemon.serving = "serving on";
  daemon.http_listen = http;
  daemon.web_root = web_root;
  // The DR vault's own vault.toml: its alerts (replication lag), syslog and
  // webhook.
  if (auto config = cairn::vault::LoadConfig(data_dir + "/vault.toml"); config.ok()) {
    auto monitor = cairn::vault::MonitorOptionsFrom(*config);
    if (!monitor.ok())
      return Fail(json_out, monitor.status().WithContext(data_dir + "/vault.toml"));
    daemon.monitor = std::move(*monitor);
    if (daemon.http_listen.empty()) daemon.http_listen = config->http;
    if (daemon.web_root.empty()) daemon.web_root = config->web_root;
    daemon.api.session_idle = std::chrono::seconds(
        config->console_session_idle_seconds > 0 ? config->console_session_idle_seconds : 900);
  } else if (!config.status().IsNotFound()) {
    return Fail(json_out, config.status());
  }
  PullTask task(std::move(*identity), ro, once, poll_ms, json_out);
  Status s = cairn::vault::RunDaemon(daemon, &task);
  return s.ok() ? 0 : Fail(json_out, s);
}
