#include "vault/notify/monitor.h"

#include <spdlog/spdlog.h>

#include "lib/io/env.h"

namespace cairn::vault {

namespace {

Result<std::string> ReadCa(const std::string& path, const char* key) {
  if (path.empty()) return std::string();
  auto bytes = io::ReadFileToBytes(io::Env::Posix(), path);
  if (!bytes.ok()) {
    return Status::InvalidArgument(std::string("key '") + key + "': " + bytes.status().message());
  }
  std::string pem(AsString(*bytes));
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Status::InvalidArgument(std::string("key '") + key + "': " + path +
                                   " holds no PEM certificate");
  }
  return pem;
}

}  // namespace

Result<MonitorOptions> MonitorOptionsFrom(const VaultConfig& c) {
  MonitorOptions m;
  m.alerts = c.alerts;
  if (!c.syslog_target.empty()) {
    SyslogOptions s;
    s.target = c.syslog_target;
    s.tls = c.syslog_transport == "tls";
    s.app_name = c.syslog_app_name;
    CAIRN_ASSIGN_OR_RETURN(s.ca_pem, ReadCa(c.syslog_ca, "syslog.ca"));
    if (s.tls && s.ca_pem.empty()) {
      return Status::InvalidArgument(
          "key 'syslog.ca' is required with transport \"tls\" (the collector's CA, PEM)");
    }
    m.syslog = std::move(s);
  }
  if (!c.webhook_url.empty()) {
    WebhookOptions w;
    w.url = c.webhook_url;
    CAIRN_ASSIGN_OR_RETURN(w.ca_pem, ReadCa(c.webhook_ca, "webhook.ca"));
    m.webhook = std::move(w);
  }
  return m;
}

Result<std::unique_ptr<Monitor>> Monitor::Start(VaultService* service, MonitorOptions options) {
  std::unique_ptr<Monitor> m(new Monitor(service, std::move(options)));
  Vault* vault = service->vault();
  if (vault->audit() != nullptr) {
    if (m->options_.webhook) {
      m->options_.webhook->site = vault->site();
      CAIRN_ASSIGN_OR_RETURN(auto sink, WebhookSink::Make(*m->options_.webhook));
      FollowerOptions f = m->options_.follower;
      f.name = "webhook";
      m->webhook_ = std::make_unique<AuditFollower>(vault->audit(), vault->env(), vault->data_dir(),
                                                    std::move(sink), f);
    }
    if (m->options_.syslog) {
      FollowerOptions f = m->options_.follower;
      f.name = "syslog";
      m->syslog_ =
          std::make_unique<AuditFollower>(vault->audit(), vault->env(), vault->data_dir(),
                                          std::make_unique<SyslogSink>(*m->options_.syslog), f);
      m->syslog_->Start();
      spdlog::info("forwarding the audit trail to syslog at {} ({})", m->options_.syslog->target,
                   m->options_.syslog->tls ? "TLS" : "TCP");
    }
    if (m->webhook_) {
      m->webhook_->Start();
      spdlog::info("posting alerts to {}", m->options_.webhook->url);
    }
  }
  m->alerts_ = std::thread([raw = m.get()] { raw->RunAlerts(); });
  return m;
}

Monitor::~Monitor() { Stop(); }

void Monitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (alerts_.joinable()) alerts_.join();
  if (syslog_) syslog_->Stop();
  if (webhook_) webhook_->Stop();
}

std::optional<uint64_t> Monitor::AuditBacklog() const {
  if (!syslog_) return std::nullopt;
  return syslog_->Backlog();
}

void Monitor::RunAlerts() {
  const auto every = std::chrono::seconds(options_.alerts.interval_seconds);
  while (true) {
    VaultService::AlertInputs inputs;
    inputs.audit_backlog = AuditBacklog();
    auto changes = service_->EvaluateAlerts(options_.alerts, inputs);
    if (!changes.ok()) {
      spdlog::error("evaluating alerts: {}", changes.status().ToString());
    } else {
      for (const auto& a : *changes) {
        if (a.firing()) {
          spdlog::warn("alert {} fired: {}", a.key, a.summary);
        } else {
          spdlog::info("alert {} resolved: {}", a.key, a.summary);
        }
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (wake_.wait_for(lock, every, [this] { return stopping_; })) return;
  }
}

}  // namespace cairn::vault
