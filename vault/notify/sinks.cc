#include "vault/notify/sinks.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <vector>

#include "lib/base/cli.h"

namespace cairn::vault {

namespace {

constexpr int kFacilityLogAudit = 13;

// PRINTUSASCII (33..126), at most `max`, "-" when empty (RFC 5424 6.2).
std::string Header(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() == max) break;
    out += (c >= 33 && c <= 126) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

// PARAM-VALUE: '"', '\' and ']' escaped with '\' (RFC 5424 6.3.3).
std::string ParamValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string Detail(const AuditEntry& e, const char* key) {
  auto it = e.details.find(key);
  return it != e.details.end() && it->value().is_string() ? std::string(it->value().get_string())
                                                          : std::string();
}

int Severity(const AuditEntry& e) {
  if (e.action == "alert.fire") return Detail(e, "severity") == "critical" ? 2 : 4;
  if (e.action == "user.login_failed") return 4;
  return 5;
}

std::string LocalHostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "-";
  return buf;
}

}  // namespace

std::string FormatSyslog(const AuditEntry& e, const std::string& hostname,
                         const std::string& app_name, int pid) {
  std::string sd = "[cairn@32473 seq=\"" + std::to_string(e.seq) + "\" hash=\"" + e.hash +
                   "\" prev=\"" + e.prev + "\" actor=\"" + ParamValue(e.actor) + "\"";
  if (!e.department.empty()) sd += " department=\"" + ParamValue(e.department) + "\"";
  sd += "]";
  return "<" + std::to_string(kFacilityLogAudit * 8 + Severity(e)) + ">1 " +
         cli::Rfc3339(e.time_micros) + " " + Header(hostname, 255) + " " + Header(app_name, 48) +
         " " + std::to_string(pid) + " " + Header(e.action, 32) + " " + sd + " " + e.line;
}

SyslogSink::SyslogSink(SyslogOptions options) : options_(std::move(options)) {
  if (options_.hostname.empty()) options_.hostname = LocalHostname();
}

std::string SyslogSink::Describe() const {
  return "syslog collector " + options_.target + (options_.tls ? " (TLS)" : " (TCP)");
}

size_t SyslogSink::Deliver(std::span<const AuditEntry> entries, Status* error) {
  // A collector that closed (it stopped, or dropped an idle connection)
  // gets a new connection before anything is written.
  if (stream_ && stream_->PeerClosed()) stream_.reset();
  if (!stream_) {
    net::OutboundOptions o;
    o.host_port = options_.target;
    o.tls = options_.tls;
    o.ca_pem = options_.ca_pem;
    o.deadline = options_.deadline;
    auto s = net::OutboundStream::Connect(o);
    if (!s.ok()) {
      *error = s.status();
      return 0;
    }
    stream_ = std::move(*s);
  }
  const int pid = static_cast<int>(::getpid());
  // The wire offset at which each entry's frame ends (plain TCP: exact; the
  // acknowledged bytes then tell which entries reached the collector).
  std::vector<uint64_t> ends;
  uint64_t written = 0;
  Status failed;
  for (const auto& e : entries) {
    if (stream_->PeerClosed()) {
      failed = Status::Unavailable(options_.target + " closed the connection");
      break;
    }
    const std::string msg = FormatSyslog(e, options_.hostname, options_.app_name, pid);
    const std::string frame = std::to_string(msg.size()) + " " + msg;
    if (Status w = stream_->Write(frame); !w.ok()) {
      failed = w;
      break;
    }
    written += frame.size();
    ends.push_back(written);
  }
  // Until measured, nothing counts as acknowledged: a connection the
  // write's deadline closed may have lost what its buffer held, so those
  // entries go again (a duplicate rather than a loss).
  uint64_t unacked = written;
  Status acked = stream_->WaitAcknowledged(&unacked);
  if (failed.ok() && acked.ok()) return entries.size();
  *error = !failed.ok() ? failed : acked;
  stream_.reset();
  if (acked.ok()) return ends.size();
  // Plain TCP: what the collector's machine acknowledged was delivered.
  // TLS: records add bytes the count cannot place, so nothing counts (the
  // batch goes again: a duplicate rather than a loss).
  if (!options_.tls) {
    const uint64_t acknowledged = written - std::min(written, unacked);
    size_t n = 0;
    while (n < ends.size() && ends[n] <= acknowledged) ++n;
    return n;
  }
  return 0;
}

boost::json::object WebhookPayload(const AuditEntry& e, const std::string& site) {
  auto detail = [&](const char* key) -> boost::json::value {
    auto it = e.details.find(key);
    return it != e.details.end() ? it->value() : boost::json::value(nullptr);
  };
  return {{"event", e.action},
          {"site", site},
          {"alert", detail("alert")},
          {"key", e.object},
          {"rule", detail("rule")},
          {"severity", detail("severity")},
          {"department", e.department},
          {"summary", detail("summary")},
          {"time", cli::Rfc3339(e.time_micros)},
          {"audit_seq", e.seq}};
}

Result<std::unique_ptr<WebhookSink>> WebhookSink::Make(WebhookOptions options) {
  auto url = boost::urls::parse_uri(options.url);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("webhook URL \"" + options.url + "\": " + why);
  };
  if (!url) return bad(url.error().message());
  const std::string scheme(url->scheme());
  if (scheme != "https" && scheme != "http") return bad("the scheme must be https or http");
  if (!url->has_authority() || url->host().empty()) return bad("no host");
  if (url->has_userinfo()) return bad("no user@ part (put credentials in the path or a proxy)");
  std::unique_ptr<WebhookSink> sink(new WebhookSink(std::move(options)));
  sink->tls_ = scheme == "https";
  sink->host_ = std::string(url->host_address());
  const std::string port = url->has_port() ? std::string(url->port()) : (sink->tls_ ? "443" : "80");
  const bool v6 = url->host_type() == boost::urls::host_type::ipv6;
  sink->host_port_ = (v6 ? "[" + sink->host_ + "]" : sink->host_) + ":" + port;
  sink->target_ = std::string(url->encoded_path());
  if (sink->target_.empty()) sink->target_ = "/";
  if (url->has_query()) sink->target_ += "?" + std::string(url->encoded_query());
  if (sink->tls_ && sink->options_.ca_pem.empty()) {
    return bad("an https webhook needs `ca` (the PEM file of the receiver's CA)");
  }
  return sink;
}

std::string WebhookSink::Describe() const { return "webhook " + options_.url; }

Status WebhookSink::Post(const std::string& body) {
  net::OutboundOptions o;
  o.host_port = host_port_;
  o.tls = tls_;
  o.ca_pem = options_.ca_pem;
  o.deadline = options_.deadline;
  CAIRN_ASSIGN_OR_RETURN(auto stream, net::OutboundStream::Connect(o));
  const std::string request =
      "POST " + target_ + " HTTP/1.1\r\nHost: " + host_port_ +
      "\r\nUser-Agent: " + cli::VersionString("cairn-vault") +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  CAIRN_RETURN_IF_ERROR(stream->Write(request));
  CAIRN_ASSIGN_OR_RETURN(
      std::string answer,
      stream->ReadUntil([](std::string_view got) { return got.find("\r\n") != std::string::npos; },
                        64 * 1024));
  // "HTTP/1.1 204 No Content"
  const std::string line = answer.substr(0, answer.find("\r\n"));
  if (!line.starts_with("HTTP/1.") || line.size() < 12) {
    return Status::Unavailable("webhook " + options_.url + " answered no HTTP status line");
  }
  const int code = std::atoi(line.substr(9, 3).c_str());
  if (code < 200 || code > 299) {
    return Status::Unavailable("webhook " + options_.url + " answered " + line.substr(9));
  }
  return Status::OK();
}

size_t WebhookSink::Deliver(std::span<const AuditEntry> entries, Status* error) {
  size_t n = 0;
  for (const auto& e : entries) {
    if (e.action == "alert.fire" || e.action == "alert.resolve") {
      if (Status s = Post(cli::ToJson(WebhookPayload(e, options_.site))); !s.ok()) {
        *error = s;
        return n;
      }
    }
    ++n;
  }
  return n;
}

}  // namespace cairn::vault
