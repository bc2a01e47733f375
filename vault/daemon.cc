#include "vault/daemon.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/system_error.hpp>
#include <system_error>
#include <thread>
#include <vector>

#include "lib/base/service_notify.h"
#include "lib/base/thread.h"
#include "lib/http/server.h"
#include "lib/http/static_files.h"
#include "vault/api/rest_api.h"
#include "vault/maintenance.h"
#include "vault/scheduler.h"

namespace cairn::vault {

namespace asio = boost::asio;

namespace {

// Large buffers (frames of up to 16 MiB, manifests, records) come straight
// from mmap and go back to the system when freed. glibc's default raises
// its mmap threshold after the first such free, after which 16 MiB buffers
// stay in per-thread arenas for the life of the process: a vault would keep
// the high-water mark of every burst (seen: +60 MiB after ten large
// manifests, never returned).
void BoundHeap() {
  ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

#ifndef CAIRN_SOURCE_WEB_DIST
#define CAIRN_SOURCE_WEB_DIST ""
#endif

// The console's files: the web root asked for (an error when it does not
// hold a built console), else the installed one, else the source tree's
// build; else a page saying how to build it.
Result<std::unique_ptr<http::StaticFiles>> LoadConsole(const std::string& asked) {
  if (!asked.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto files, http::StaticFiles::Load(asked));
    spdlog::info("web console: {} files ({} bytes) from {}", files->files(), files->bytes(), asked);
    return files;
  }
  for (const std::string& root :
       {std::string("/usr/share/cairn/web"), std::string(CAIRN_SOURCE_WEB_DIST)}) {
    if (root.empty()) continue;
    auto files = http::StaticFiles::Load(root);
    if (files.ok()) {
      spdlog::info("web console: {} files ({} bytes) from {}", (*files)->files(), (*files)->bytes(),
                   root);
      return std::move(*files);
    }
  }
  spdlog::warn(
      "web console: not built (no index.html in /usr/share/cairn/web or {}); `/` says "
      "how to build it",
      CAIRN_SOURCE_WEB_DIST);
  return http::StaticFiles::NotBuilt(
      "it is not built. Build it with: cd web-ui && npm ci && npm run build, or "
      "pass --web-root");
}

// RunDaemon without the net for a thread that cannot be started: the
// scheduler's, the maintenance runner's and the monitor's threads throw
// EAGAIN from their constructors, here on the main thread (see RunDaemon).
Status RunDaemonOrThrow(const DaemonOptions& options, DaemonTask* task) {
  BoundHeap();
  OpenOptions oo;
  oo.serve = true;
  oo.pack_target_size = options.pack_target_size;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Vault> vault, Vault::Open(options.data_dir, oo));
  for (const auto& d : vault->store()->recovery().damaged) {
    spdlog::error("damaged pack left untouched: {}", d);
  }
  VaultService service(vault.get(), options.service);
  ServeOptions serve = options.serve;
  serve.max_running_jobs = options.scheduler.max_running_jobs;
  // Idle sessions are looked for often enough to go within a tenth of their
  // idle time, and at least every 10 s.
  serve.session_sweep = std::min<std::chrono::milliseconds>(
      serve.session_sweep,
      std::chrono::duration_cast<std::chrono::milliseconds>(options.service.session_idle) / 10 +
          std::chrono::milliseconds(100));
  if (task != nullptr) CAIRN_RETURN_IF_ERROR(task->Prepare(&service));

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  // The threads the vault cannot do without start first, the pools that
  // may run with fewer threads (the listener's store threads, the REST
  // handlers, the I/O threads) after them.
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Monitor> monitor,
                         Monitor::Start(&service, options.monitor));
  Scheduler scheduler(&service, options.scheduler);
  MaintenanceRunner maintenance(&service, options.storage);
  std::unique_ptr<VaultServer> server;
  if (!options.serve.listen.empty()) {
    server = std::make_unique<VaultServer>(&service, serve);
    CAIRN_ASSIGN_OR_RETURN(uint16_t port, server->Start(io));
    spdlog::info("{} (site {}) {} {} (port {}) from {}; packs in {}", options.what, vault->site(),
                 options.serving, options.serve.listen, port, options.data_dir,
                 vault->store()->packs()->Describe());
  }
  std::unique_ptr<RestApi> api;
  std::unique_ptr<http::Server> http_server;
  std::unique_ptr<http::StaticFiles> console;
  if (!options.http_listen.empty()) {
    ApiOptions api_options = options.api;
    Monitor* watching = monitor.get();
    api_options.audit_backlog = [watching] { return watching->AuditBacklog(); };
    api = std::make_unique<RestApi>(&service, server.get(), api_options);
    http::ServerOptions ho;
    ho.listen = options.http_listen;
    ho.certificate_chain_pem = vault->pki().served_chain_pem();
    ho.private_key_pem = vault->pki().tls_private_key_pem();
    ho.client_ca_pem = vault->pki().person_ca_pem();
    RestApi* handler = api.get();
    CAIRN_ASSIGN_OR_RETURN(console, LoadConsole(options.web_root));
    const http::StaticFiles* files = console.get();
    http_server = std::make_unique<http::Server>(io, ho, [handler, files](const http::Request& r) {
      const std::string& p = r.target.path;
      if (p.starts_with("/api/") || p == "/metrics") return handler->Handle(r);
      return files->Serve(r);
    });
    CAIRN_ASSIGN_OR_RETURN(uint16_t http_port, http_server->Start());
    spdlog::info("REST API and console on https://{} (port {})", options.http_listen, http_port);
  }
  std::atomic<bool> stopping{false};
  auto stop = [&](const std::string& why) {
    if (stopping.exchange(true)) return;
    spdlog::info("{}: stopping; draining connections, sealing packs", why);
    NotifyStopping("stopping: " + why);
    if (task != nullptr) task->Stop();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          if (http_server) co_await http_server->Stop();
          if (server) {
            co_await server->Stop(options.drain);
          } else {
            Status s = service.SealOpenPacks();
            if (!s.ok()) spdlog::error("sealing packs: {}", s.ToString());
          }
          work.reset();
          io.stop();
        },
        asio::detached);
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) stop("signal " + std::to_string(sig));
  });

  const int io_threads =
      options.threads > 0
          ? options.threads
          : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 64u));
  // I/O threads that cannot be started mean fewer of them; with a task,
  // which runs on this thread, at least one is needed.
  const size_t on_main = task == nullptr ? 1 : 0;  // this thread runs io too
  Status fewer;
  std::vector<std::thread> pool = StartThreads(
      "the vault's I/O threads", static_cast<size_t>(io_threads) - on_main,
      [&io](size_t) { io.run(); }, &fewer);
  if (!fewer.ok()) {
    if (pool.size() + on_main == 0) return fewer;
    spdlog::warn("{}; serving with {} of {}", fewer.message(), pool.size() + on_main, io_threads);
  }
  NotifyReady(task == nullptr ? "serving" : "serving and replicating");
  Status result;
  if (task == nullptr) {
    io.run();
  } else {
    result = task->Run(&service);
    asio::post(io, [&] { stop("task finished"); });
  }
  for (auto& t : pool) t.join();
  maintenance.Stop();
  scheduler.Stop();
  monitor->Stop();
  spdlog::info("{} stopped", options.what);
  return result;
}

}  // namespace

Status RunDaemon(const DaemonOptions& options, DaemonTask* task) {
  try {
    return RunDaemonOrThrow(options, task);
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::resource_unavailable_try_again) throw;
    return internal::ThreadStartError("the vault's threads", e.code().message());
  } catch (const boost::system::system_error& e) {  // Asio's, the same
    if (e.code() != boost::system::errc::resource_unavailable_try_again) throw;
    return internal::ThreadStartError("the vault's threads", e.code().message());
  }
}

}  // namespace cairn::vault
