// Where the audit trail goes beside the vault (doc/design.md section 17):
//
//  - a syslog collector: every entry as an RFC 5424 message, framed by
//    octet counting (RFC 6587) over TCP, or over TLS (RFC 5425);
//  - a webhook: every alert that fires or resolves, as a JSON POST.
//
// Both are AuditSinks behind an AuditFollower, which keeps their cursors.
#ifndef CAIRN_VAULT_NOTIFY_SINKS_H_
#define CAIRN_VAULT_NOTIFY_SINKS_H_

#include <boost/json/object.hpp>
#include <memory>
#include <string>

#include "lib/net/outbound.h"
#include "vault/notify/follower.h"

namespace cairn::vault {

struct SyslogOptions {
  std::string target;  // "host:port"
  bool tls = false;
  std::string ca_pem;  // TLS: the collector's CA
  std::string app_name = "cairn-vault";
  std::string hostname;  // empty: this machine's name
  std::chrono::milliseconds deadline{std::chrono::seconds(10)};
};

// The RFC 5424 message of one audit entry, without its octet count:
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [cairn@32473 seq=".." hash=".."
//   prev=".." actor=".." department=".."] MSG
// Facility 13 (log audit); severity 2 (critical) for a critical alert, 4
// (warning) for a warning alert and a failed login, 5 (notice) otherwise.
// MSGID is the action; MSG is the entry's stored line, so that a
// collector holds the chain and can verify it.
std::string FormatSyslog(const AuditEntry& entry, const std::string& hostname,
                         const std::string& app_name, int pid);

class SyslogSink : public AuditSink {
 public:
  explicit SyslogSink(SyslogOptions options);
  size_t Deliver(std::span<const AuditEntry> entries, Status* error) override;
  std::string Describe() const override;

 private:
  SyslogOptions options_;
  std::unique_ptr<net::OutboundStream> stream_;
};

struct WebhookOptions {
  std::string url;     // "https://host[:port]/path" or "http://..."
  std::string ca_pem;  // https: the receiver's CA
  std::string site;    // the vault's site, in every payload (set by Monitor)
  std::chrono::milliseconds deadline{std::chrono::seconds(10)};
};

// The JSON a webhook receives for an alert.fire or alert.resolve entry:
// {"event": "alert.fire"|"alert.resolve", "site", "alert", "key", "rule",
// "severity", "department", "summary", "time", "audit_seq"}.
boost::json::object WebhookPayload(const AuditEntry& entry, const std::string& site);

class WebhookSink : public AuditSink {
 public:
  // InvalidArgument for a URL that is not http(s)://host[:port][/path].
  static Result<std::unique_ptr<WebhookSink>> Make(WebhookOptions options);
  // Other entries count as delivered; each alert is one POST, delivered on
  // a 2xx answer.
  size_t Deliver(std::span<const AuditEntry> entries, Status* error) override;
  std::string Describe() const override;

 private:
  explicit WebhookSink(WebhookOptions options) : options_(std::move(options)) {}
  Status Post(const std::string& body);
  WebhookOptions options_;
  std::string host_port_, host_, target_;
  bool tls_ = false;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_NOTIFY_SINKS_H_
