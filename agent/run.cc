#include "agent/run.h"

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <deque>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "agent/consistency.h"
#include "agent/file_cache.h"
#include "agent/image_backup.h"
#include "agent/vault_session.h"
#include "lib/base/service_notify.h"
#include "lib/base/thread.h"
#include "lib/client/dial.h"
#include "lib/net/tls.h"
#include "lib/net/write_gate.h"

namespace cairn::agent {
namespace {

namespace asio = boost::asio;
using proto::MessageType;
using SteadyClock = std::chrono::steady_clock;

using net::WriteGate;

// The persistent connection while it is up.
struct JobLink {
  explicit JobLink(asio::any_io_executor ex) : ping_timer(ex) {}
  std::shared_ptr<net::Connection> conn;
  std::string address;
  WriteGate gate;
  bool closed = false;  // no more writes; set under the gate before Close()
  SteadyClock::time_point last_write = SteadyClock::now();
  asio::steady_timer ping_timer;
};

asio::awaitable<Status> WriteOn(JobLink& link, MessageType type, Bytes payload) {
  co_await link.gate.Lock();
  // Not a conditional expression: g++ 12 mishandles co_await inside one.
  Status s = Status::Unavailable("connection closed");
  if (!link.closed) s = co_await link.conn->WriteFrame(type, payload);
  if (s.ok()) link.last_write = SteadyClock::now();
  link.gate.Unlock();
  co_return s;
}

std::string JoinPaths(const std::vector<std::string>& paths) {
  return paths.empty() ? "(none)" : fmt::format("{}", fmt::join(paths, ", "));
}

}  // namespace

namespace {

// DIR/agent.toml, parsed; an empty table when there is none.
Result<toml::table> AgentToml(const std::string& state_dir) {
  std::ifstream in(client::IdentityPaths(state_dir).config());
  if (!in) return toml::table{};
  std::stringstream text;
  text << in.rdbuf();
  try {
    return toml::parse(text.str());
  } catch (const toml::parse_error& e) {
    return Status::Corruption("agent.toml: " + std::string(e.description()));
  }
}

}  // namespace

Result<bool> ConfiguredJobHooks(const std::string& state_dir) {
  CAIRN_ASSIGN_OR_RETURN(toml::table t, AgentToml(state_dir));
  const toml::node_view<toml::node> node = t["allow_job_hooks"];
  if (!node) return false;
  if (!node.is_boolean())
    return Status::Corruption("agent.toml: allow_job_hooks must be true or false");
  return node.value_or(false);
}

Result<std::vector<std::string>> ConfiguredBackupPaths(const std::string& state_dir) {
  CAIRN_ASSIGN_OR_RETURN(toml::table t, AgentToml(state_dir));
  std::vector<std::string> paths;
  const toml::node_view<toml::node> node = t["paths"];
  if (!node) return paths;
  const toml::array* a = node.as_array();
  if (a == nullptr) return Status::Corruption("agent.toml: paths must be an array of strings");
  for (const auto& v : *a) {
    auto s = v.value<std::string>();
    if (!s || s->empty()) {
      return Status::Corruption("agent.toml: paths must be an array of non-empty strings");
    }
    paths.push_back(*s);
  }
  return paths;
}

std::chrono::milliseconds BackoffDelay(int attempt, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max, double unit_random) {
  double base = static_cast<double>(initial.count());
  const double cap = static_cast<double>(max.count());
  for (int i = 0; i < attempt && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  const double factor = 0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(base * factor));
}

struct AgentService::Impl {
  Impl(client::Identity state_in, RunOptions options_in)
      : state(std::move(state_in)), options(std::move(options_in)) {}
  ~Impl() {
    if (job_thread.joinable()) job_thread.join();
  }

  client::Identity state;
  RunOptions options;
  std::vector<std::string> default_paths;
  asio::io_context io;
  std::optional<net::TlsContext> tls;

  // Everything below is used only on the io_context thread.
  bool stopping = false;
  std::shared_ptr<JobLink> link;
  asio::steady_timer backoff_timer{io};
  std::optional<uint64_t> running_job;
  std::thread job_thread;
  std::optional<proto::JobDone> unreported;  // finished, not yet delivered
  uint64_t ping_nonce = 0;
  std::mt19937_64 rng{std::random_device{}()};

  void BeginStop() {
    if (stopping) return;
    stopping = true;
    backoff_timer.cancel();
    if (running_job) {
      spdlog::info("stopping: waiting for job {} to finish", *running_job);
      return;  // OnJobFinished reports it, then ends the link
    }
    spdlog::info("stopping");
    if (link) link->conn->Cancel(Status::Cancelled("the agent is stopping"));
  }

  asio::awaitable<Result<std::shared_ptr<JobLink>>> ConnectAny() {
    client::DialOptions dial = client::IdentityDialOptions(state);
    dial.role = proto::Role::kAgent;
    dial.software = kAgentSoftware;
    dial.deadline = options.connect_deadline;
    dial.connection.read_deadline = options.read_deadline;
    auto dialed =
        co_await client::Dial(io.get_executor(), *tls, state.config.vault_addresses, dial);
    if (!dialed.ok()) co_return dialed.status();
    auto changed = client::AdoptVaultAddresses(&state, dialed->hello_ok.vault_addresses);
    if (!changed.ok()) {
      spdlog::warn("could not record the vault's addresses: {}", changed.status().message());
    } else if (*changed) {
      spdlog::info("vault addresses are now: {}", fmt::join(state.config.vault_addresses, ", "));
    }
    auto l = std::make_shared<JobLink>(io.get_executor());
    l->conn = std::move(dialed->conn);
    l->address = std::move(dialed->address);
    co_return l;
  }

  asio::awaitable<Status> SendPing(JobLink& l) {
    proto::Ping ping{++ping_nonce};
    co_return co_await WriteOn(l, MessageType::kPing, ping.Encode());
  }

  // Sends Ping whenever nothing was sent for ping_interval, until the link
  // closes.
  asio::awaitable<void> Pinger(std::shared_ptr<JobLink> l) {
    while (!l->closed) {
      l->ping_timer.expires_at(l->last_write + options.ping_interval);
      boost::system::error_code ec;
      co_await l->ping_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (l->closed) break;
      if (SteadyClock::now() - l->last_write < options.ping_interval) continue;
      Status s = co_await SendPing(*l);
      if (!s.ok()) {
        l->conn->Cancel(s);  // the reader sees it and reconnects
        break;
      }
    }
  }

  // Delivers the unreported JobDone on `l`, if any.
  asio::awaitable<void> Report(std::shared_ptr<JobLink> l) {
    if (unreported) {
      proto::JobDone done = *unreported;
      Status s = co_await WriteOn(*l, MessageType::kJobDone, done.Encode());
      if (s.ok()) {
        if (unreported && unreported->job_id == done.job_id) unreported.reset();
        spdlog::info("job {}: reported to the vault", done.job_id);
      } else {
        spdlog::warn("job {}: reporting failed ({}); will report on the next connection",
                     done.job_id, s.message());
      }
    }
    if (stopping && !running_job) l->conn->Cancel(Status::Cancelled("the agent is stopping"));
  }

  Result<std::string> Execute(const proto::Job& job, const std::vector<std::string>& paths,
                              std::string* log) {
    if (options.run_job) return options.run_job(job, paths);
    if (job.kind == proto::JobKind::kDrill) {
      if (!options.run_drill) {
        return Status::Unavailable("this agent was not built to run restore drills");
      }
      return options.run_drill(job);
    }
    if (job.kind == proto::JobKind::kRestore) {
      if (!options.run_restore) {
        return Status::Unavailable("this agent was not built to run restores");
      }
      return options.run_restore(job);
    }
    if (job.kind != proto::JobKind::kBackupNow) {
      return Status::InvalidArgument("unknown job kind " +
                                     std::to_string(static_cast<int>(job.kind)));
    }
    if (job.zstd_level > 19) {
      return Status::InvalidArgument("the job asks for zstd level " +
                                     std::to_string(job.zstd_level) + " (1..19)");
    }
    CAIRN_ASSIGN_OR_RETURN(ConsistencyOptions consistency, ConsistencyOf(job, state.dir));
    if (!job.pre_command.empty() || !job.post_command.empty()) {
      // Commands from the vault run as this agent (root, usually): only
      // where the server's own administrator allowed it.
      CAIRN_ASSIGN_OR_RETURN(bool allowed, ConfiguredJobHooks(state.dir));
      if (!allowed) {
        return Status::PermissionDenied(
            "the source names a pre- or post-command, and this agent runs none from the vault: "
            "set allow_job_hooks = true in " +
            client::IdentityPaths(state.dir).config() + " on the agent's host to allow them");
      }
    }
    ConsistencyLog consistency_log;
    struct WriteLog {
      std::string* out;
      const ConsistencyLog& log;
      ~WriteLog() { *out = log.Text(proto::kMaxStringLen / 2); }
    } write_log{log, consistency_log};
    if (job.image) return ExecuteImage(job, paths, consistency, &consistency_log);
    if (paths.empty()) {
      return Status::InvalidArgument(
          "the job names no paths and no backup set is configured (--paths, or paths = [...] "
          "in agent.toml)");
    }
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> normalized, NormalizeBackupPaths(paths));
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<FileCache> cache,
                           FileCache::Open(client::IdentityPaths(state.dir).lmdb()));
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<VaultSession> session,
                           OpenVaultSession(state, normalized));
    session = LimitBandwidth(std::move(session), job.bandwidth);
    BackupOptions backup = options.backup;
    backup.paths = normalized;
    backup.progress = ProgressReporter(job.job_id);
    // The source's policy: its excludes add to the agent's own.
    backup.excludes.insert(backup.excludes.end(), job.excludes.begin(), job.excludes.end());
    if (job.zstd_level != 0) backup.zstd_level = job.zstd_level;
    std::optional<BackupResult> done;
    auto snapshot = RunConsistently(
        consistency, normalized, /*image=*/false,
        [&](const PitView& view) -> Result<std::string> {
          view.ApplyTo(&backup);
          CAIRN_ASSIGN_OR_RETURN(done, RunBackup(state.keys, cache.get(), session.get(), backup));
          return done->snapshot_id;
        },
        &consistency_log);
    session.reset();  // orderly close
    if (!snapshot.ok()) return snapshot.status();
    const BackupResult* result = &*done;
    for (const auto& w : result->warnings) spdlog::warn("job {}: {}", job.job_id, w);
    spdlog::info("job {}: {} files, {} bytes, {} new bytes in {:.1f} s", job.job_id, result->files,
                 result->bytes, result->new_bytes, result->seconds);
    return result->snapshot_id;
  }

  // Reports a running job's progress on the link (job_progress), at most
  // once a second and at its end. Called on the backup's threads.
  std::function<void(const BackupProgress&)> ProgressReporter(uint64_t job_id) {
    auto last = std::make_shared<std::atomic<int64_t>>(0);
    return [this, job_id, last](const BackupProgress& p) {
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              SteadyClock::now().time_since_epoch())
                              .count();
      if (!p.final && now - last->load() < 1000) return;
      last->store(now);
      proto::JobProgress m;
      m.job_id = job_id;
      m.files = p.files;
      m.bytes_done = p.bytes_covered;
      m.bytes_total = p.bytes_total;
      m.new_bytes = p.new_bytes;
      m.elapsed_millis = static_cast<uint64_t>(p.seconds * 1000);
      m.eta_seconds = p.eta_seconds < 0 ? proto::kEtaUnknown
                                        : static_cast<uint32_t>(std::min(p.eta_seconds, 4e9));
      asio::post(io, [this, m] {
        if (!link || link->closed) return;  // progress is best effort
        asio::co_spawn(
            io,
            [l = link, m]() -> asio::awaitable<void> {
              (void)co_await WriteOn(*l, MessageType::kJobProgress, m.Encode());
            },
            asio::detached);
      });
    };
  }

  // An image job: each path is a block device or an image file.
  Result<std::string> ExecuteImage(const proto::Job& job, const std::vector<std::string>& paths,
                                   const ConsistencyOptions& consistency,
                                   ConsistencyLog* consistency_log) {
    if (paths.empty()) return Status::InvalidArgument("the image job names no device or image");
    if (!job.excludes.empty()) return Status::InvalidArgument("an image job takes no excludes");
    CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> images, NormalizeImagePaths(paths));
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ExtentStore> store,
                           ExtentStore::Open(client::IdentityPaths(state.dir).lmdb()));
    SessionOptions session_options;
    session_options.kind = proto::SessionKind::kImage;
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<VaultSession> session,
                           OpenVaultSession(state, images, session_options));
    session = LimitBandwidth(std::move(session), job.bandwidth);
    ImageBackupOptions image;
    image.images = images;
    image.zstd_level = job.zstd_level != 0 ? job.zstd_level : options.backup.zstd_level;
    image.progress = ProgressReporter(job.job_id);
    std::optional<ImageBackupResult> done;
    auto snapshot = RunConsistently(
        consistency, images, /*image=*/true,
        [&](const PitView& view) -> Result<std::string> {
          view.ApplyTo(&image);
          CAIRN_ASSIGN_OR_RETURN(done,
                                 RunImageBackup(state.keys, store.get(), session.get(), image));
          return done->snapshot_id;
        },
        consistency_log);
    session.reset();  // orderly close
    if (!snapshot.ok()) return snapshot.status();
    const ImageBackupResult* result = &*done;
    for (const auto& w : result->warnings) spdlog::warn("job {}: {}", job.job_id, w);
    spdlog::info("job {}: {} image(s), {} bytes, {} of {} extents changed, {} new bytes",
                 job.job_id, result->images, result->bytes, result->extents_changed,
                 result->extents_total, result->new_bytes);
    return result->snapshot_id;
  }

  void StartJob(const proto::Job& job) {
    if (job_thread.joinable()) job_thread.join();
    running_job = job.job_id;
    std::vector<std::string> paths = job.paths.empty() ? default_paths : job.paths;
    spdlog::info("job {}: started ({} backup of {})", job.job_id, job.image ? "image" : "file",
                 JoinPaths(paths));
    Result<std::thread> started = StartThread("the job's thread", [this, job, paths] {
      proto::JobDone done;
      done.job_id = job.job_id;
      Result<std::string> r = Status::IOError("job did not run");
      try {
        r = Execute(job, paths, &done.log);
      } catch (const std::exception& e) {
        r = Status::IOError(std::string("unexpected exception: ") + e.what());
      }
      done.ok = r.ok();
      if (r.ok()) {
        done.snapshot_id = *r;
      } else {
        done.error = r.status().ToString();
        if (done.error.size() > proto::kMaxStringLen) done.error.resize(proto::kMaxStringLen);
      }
      asio::post(io, [this, done] { OnJobFinished(done); });
    });
    if (started.ok()) {
      job_thread = std::move(*started);
      return;
    }
    // Reported as the job's failure, like any other: the vault records it
    // and may run the job again.
    proto::JobDone failed{job.job_id, false, "", started.status().ToString()};
    asio::post(io, [this, failed] { OnJobFinished(failed); });
  }

  void OnJobFinished(const proto::JobDone& done) {
    if (job_thread.joinable()) job_thread.join();
    running_job.reset();
    if (done.ok) {
      spdlog::info("job {}: done, snapshot {}", done.job_id, done.snapshot_id);
    } else {
      spdlog::warn("job {}: failed: {}", done.job_id, done.error);
    }
    unreported = done;
    if (link && !link->closed) {
      asio::co_spawn(io, Report(link), asio::detached);
    } else if (stopping) {
      backoff_timer.cancel();
    }
  }

  asio::awaitable<Status> OnJob(JobLink& l, ByteView payload) {
    auto job = proto::Job::Decode(payload);
    if (!job.ok()) co_return job.status();
    if (running_job) {
      spdlog::warn("job {}: refused, job {} is running", job->job_id, *running_job);
      proto::JobDone busy{job->job_id, false, "",
                          "busy: job " + std::to_string(*running_job) + " is running"};
      co_return co_await WriteOn(l, MessageType::kJobDone, busy.Encode());
    }
    if (stopping) {
      proto::JobDone refused{job->job_id, false, "", "the agent is stopping"};
      co_return co_await WriteOn(l, MessageType::kJobDone, refused.Encode());
    }
    StartJob(*job);
    co_return Status::OK();
  }

  // Serves one established link until it fails or is cancelled.
  asio::awaitable<Status> ServeLink(std::shared_ptr<JobLink> l) {
    // An immediate Ping tells the vault this is a job link.
    CAIRN_CO_RETURN_IF_ERROR(co_await SendPing(*l));
    asio::co_spawn(io, Pinger(l), asio::detached);
    if (unreported) co_await Report(l);
    for (;;) {
      auto frame = co_await l->conn->ReadFrame(options.read_deadline, proto::kMaxControlPayload);
      if (!frame.ok()) co_return frame.status();
      switch (frame->type) {
        case MessageType::kPing: {
          auto ping = proto::Ping::Decode(frame->payload);
          if (!ping.ok()) co_return ping.status();
          CAIRN_CO_RETURN_IF_ERROR(
              co_await WriteOn(*l, MessageType::kPong, proto::Pong{ping->nonce}.Encode()));
          break;
        }
        case MessageType::kPong:
          CAIRN_CO_RETURN_IF_ERROR(proto::Pong::Decode(frame->payload).status());
          break;
        case MessageType::kJob:
          CAIRN_CO_RETURN_IF_ERROR(co_await OnJob(*l, frame->payload));
          break;
        case MessageType::kError: {
          auto e = proto::Error::Decode(frame->payload);
          if (!e.ok()) co_return e.status();
          Status s = e->ToStatus();
          co_return Status(s.code(), "vault: " + s.message(), s.retryable());
        }
        default:
          co_return Status::InvalidArgument(
              "unexpected " + std::string(proto::MessageTypeName(frame->type)) + " from the vault");
      }
    }
  }

  asio::awaitable<void> CloseLink(std::shared_ptr<JobLink> l) {
    co_await l->gate.Lock();
    l->closed = true;
    l->gate.Unlock();
    l->ping_timer.cancel();
    co_await l->conn->Close();
  }

  asio::awaitable<void> Main() {
    int attempt = 0;
    while (!stopping) {
      auto connected = co_await ConnectAny();
      if (connected.ok() && stopping) {
        co_await CloseLink(*connected);
        break;
      }
      if (connected.ok()) {
        attempt = 0;  // reset after a successful connection
        link = *connected;
        spdlog::info("connected to vault {}; waiting for jobs", link->address);
        Status why = co_await ServeLink(link);
        std::shared_ptr<JobLink> l = std::move(link);
        link.reset();
        co_await CloseLink(l);
        if (stopping) break;
        spdlog::warn("disconnected from vault {}: {}", l->address, why.ToString());
      } else {
        spdlog::warn("cannot connect: {}", connected.status().message());
      }
      if (stopping) break;
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      auto delay = BackoffDelay(attempt, options.backoff_initial, options.backoff_max, unit(rng));
      attempt = std::min(attempt + 1, 30);
      spdlog::info("reconnecting in {:.1f} s", static_cast<double>(delay.count()) / 1000.0);
      backoff_timer.expires_after(delay);
      boost::system::error_code ec;
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    // Stopping. A job still running is waited for (and reported above when
    // the link was up).
    asio::steady_timer wait(io);
    while (running_job) {
      wait.expires_after(std::chrono::milliseconds(100));
      boost::system::error_code ec;
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (unreported) {
      spdlog::warn("job {}: finished but not reported (no connection to the vault)",
                   unreported->job_id);
    }
    spdlog::info("stopped");
  }
};

AgentService::AgentService(client::Identity state, RunOptions options)
    : impl_(std::make_shared<Impl>(std::move(state), std::move(options))) {}

AgentService::~AgentService() = default;

void AgentService::Stop() {
  std::shared_ptr<Impl> impl = impl_;
  asio::post(impl->io, [impl] { impl->BeginStop(); });
}

Status AgentService::Run() {
  Impl& m = *impl_;
  if (m.state.config.vault_addresses.empty()) {
    return Status::InvalidArgument("the state directory names no vault address");
  }
  CAIRN_ASSIGN_OR_RETURN(net::TlsContext tls, client::ClientTls(m.state));
  m.tls = std::move(tls);
  if (m.options.paths.empty()) {
    CAIRN_ASSIGN_OR_RETURN(m.default_paths, ConfiguredBackupPaths(m.state.dir));
  } else {
    m.default_paths = m.options.paths;
  }
  spdlog::info("service started for {} (department {}); backup set: {}", m.state.config.host,
               m.state.config.department, JoinPaths(m.default_paths));
  // A killed agent's point-in-time views go now (agent/pit.h).
  std::vector<std::string> removed;
  if (Status s = CleanUpLeftViews(m.state.dir, &removed); !s.ok()) {
    spdlog::error("a view a killed agent left could not be removed: {}", s.ToString());
  }
  for (const auto& r : removed) spdlog::warn("removed what a killed backup left: {}", r);
  NotifyReady("running the vault's jobs for " + m.state.config.host);

  std::optional<asio::signal_set> signals;
  std::function<void()> arm;
  if (m.options.handle_signals) {
    signals.emplace(m.io, SIGINT, SIGTERM);
    arm = [&] {
      signals->async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}", sig);
        m.BeginStop();
        arm();
      });
    };
    arm();
  }
  std::exception_ptr failure;
  asio::co_spawn(m.io, m.Main(), [&](std::exception_ptr e) {
    failure = e;
    if (signals) signals->cancel();
    m.io.stop();
  });
  m.io.run();
  if (m.job_thread.joinable()) m.job_thread.join();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      return Status::IOError(std::string("unexpected exception: ") + e.what());
    } catch (...) {
      return Status::IOError("unexpected exception");
    }
  }
  return Status::OK();
}

}  // namespace cairn::agent
