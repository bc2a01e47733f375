// What a serving vault watches and reports beside its listeners: the alert
// rules, evaluated every few seconds (VaultService::EvaluateAlerts), and
// the audit trail's followers (a syslog collector, a webhook), from the
// [alerts], [syslog] and [webhook] sections of the configuration.
#ifndef CAIRN_VAULT_NOTIFY_MONITOR_H_
#define CAIRN_VAULT_NOTIFY_MONITOR_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "lib/base/status.h"
#include "vault/config.h"
#include "vault/notify/follower.h"
#include "vault/notify/sinks.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

struct MonitorOptions {
  AlertThresholds alerts;
  std::optional<SyslogOptions> syslog;
  std::optional<WebhookOptions> webhook;
  FollowerOptions follower;  // its name is set per sink
};

// The options a configuration asks for; reads the CA files it names.
// InvalidArgument naming the key for an unreadable or malformed CA file.
Result<MonitorOptions> MonitorOptionsFrom(const VaultConfig& config);

class Monitor {
 public:
  // Starts the followers and the alert thread. InvalidArgument for a bad
  // webhook URL.
  static Result<std::unique_ptr<Monitor>> Start(VaultService* service, MonitorOptions options);
  ~Monitor();  // stops
  void Stop();
  // Audit entries not yet forwarded to syslog; none without syslog.
  std::optional<uint64_t> AuditBacklog() const;

 private:
  Monitor(VaultService* service, MonitorOptions options)
      : service_(service), options_(std::move(options)) {}
  void RunAlerts();

  VaultService* service_;
  MonitorOptions options_;
  std::unique_ptr<AuditFollower> syslog_, webhook_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread alerts_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_NOTIFY_MONITOR_H_
