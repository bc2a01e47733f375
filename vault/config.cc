#include "vault/config.h"

#include <toml++/toml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "lib/net/address.h"
#include "vault/policy/schedule.h"

namespace cairn::vault {
namespace {

std::string Where(const std::string& path, const toml::node& node) {
  return path + " line " + std::to_string(node.source().begin.line);
}

}  // namespace

Result<VaultConfig> ParseConfig(std::string_view text, const std::string& path) {
  toml::table t;
  try {
    t = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Status::Corruption(path + " line " + std::to_string(e.source().begin.line) + ": " +
                              std::string(e.description()));
  }
  VaultConfig c;
  Status bad;
  auto fail = [&](const toml::node& node, const std::string& what) {
    if (bad.ok()) bad = Status::InvalidArgument(Where(path, node) + ": " + what);
  };
  using Setter = std::function<void(const toml::node&, const std::string& key)>;
  auto str = [&](std::string* out) -> Setter {
    return [&, out](const toml::node& n, const std::string& key) {
      if (auto v = n.value<std::string>(); v && n.is_string()) {
        *out = *v;
      } else {
        fail(n, "key '" + key + "' must be a string");
      }
    };
  };
  auto num = [&](uint64_t* out, uint64_t max) -> Setter {
    return [&, out, max](const toml::node& n, const std::string& key) {
      auto v = n.value<int64_t>();
      if (!n.is_integer() || !v || *v < 0 || static_cast<uint64_t>(*v) > max) {
        fail(n, "key '" + key + "' must be a whole number from 0 to " + std::to_string(max));
      } else {
        *out = static_cast<uint64_t>(*v);
      }
    };
  };
  auto flag = [&](bool* out) -> Setter {
    return [&, out](const toml::node& n, const std::string& key) {
      if (!n.is_boolean()) {
        fail(n, "key '" + key + "' must be true or false");
      } else {
        *out = *n.value<bool>();
      }
    };
  };
  uint64_t threads = 0, format = 0;
  const std::map<std::string, std::map<std::string, Setter>> schema = {
      {"", {{"format", num(&format, 1000)}, {"site", str(&c.site)}}},
      {"serve",
       {{"listen", str(&c.listen)},
        {"http", str(&c.http)},
        {"web_root", str(&c.web_root)},
        {"threads", num(&threads, 64)},
        {"session_idle_seconds", num(&c.session_idle_seconds, 7 * 86400)},
        {"console_session_idle_seconds", num(&c.console_session_idle_seconds, 86400)}}},
      {"syslog",
       {{"target", str(&c.syslog_target)},
        {"transport", str(&c.syslog_transport)},
        {"ca", str(&c.syslog_ca)},
        {"app_name", str(&c.syslog_app_name)}}},
      {"webhook", {{"url", str(&c.webhook_url)}, {"ca", str(&c.webhook_ca)}}},
      {"alerts",
       {{"interval_seconds", num(&c.alerts.interval_seconds, 3600)},
        {"agent_unseen_seconds", num(&c.alerts.agent_unseen_seconds, 365 * 86400)},
        {"job_failed", flag(&c.alerts.job_failed)},
        {"job_missed_seconds", num(&c.alerts.job_missed_seconds, 365 * 86400)},
        {"replication_lag_seconds", num(&c.alerts.replication_lag_seconds, 365 * 86400)},
        {"disk_free_percent", num(&c.alerts.disk_free_percent, 100)},
        {"audit_backlog_entries", num(&c.alerts.audit_backlog_entries, 1u << 30)},
        {"rpo_breached", flag(&c.alerts.rpo_breached)},
        {"anomaly_lock_seconds", num(&c.alerts.anomaly_lock_seconds, 365 * 86400)}}},
      {"scheduler",
       {{"spread_seconds", num(&c.scheduler.spread_seconds, 86400)},
        {"missed_after_seconds", num(&c.scheduler.missed_after_seconds, 7 * 86400)},
        {"deadline_seconds", num(&c.scheduler.deadline_seconds, 30 * 86400)},
        {"max_running_jobs", num(&c.scheduler.max_running_jobs, 100000)},
        {"retention_interval_seconds", num(&c.scheduler.retention_interval_seconds, 30 * 86400)},
        {"drill_retry_seconds", num(&c.scheduler.drill_retry_seconds, 30 * 86400)}}},
      {"pack_store",
       {{"kind", str(&c.pack_store.kind)},
        {"pool", str(&c.pack_store.pool)},
        {"ceph_conf", str(&c.pack_store.ceph_conf)},
        {"ceph_user", str(&c.pack_store.ceph_user)},
        {"namespace_prefix", str(&c.pack_store.namespace_prefix)},
        {"op_timeout_seconds", num(&c.pack_store.op_timeout_seconds, 3600)}}},
      {"storage",
       {{"gc_schedule", str(&c.storage.gc_schedule)},
        {"compact_below_percent", num(&c.storage.compact_below_percent, 100)},
        {"gc_session_wait_seconds", num(&c.storage.gc_session_wait_seconds, 7 * 86400)},
        {"scrub_schedule", str(&c.storage.scrub_schedule)},
        {"scrub_rate_bytes", num(&c.storage.scrub_rate_bytes, 1ull << 40)},
        {"scrub_repair", flag(&c.storage.scrub_repair)},
        {"pack_target_bytes", num(&c.storage.pack_target_bytes, 1ull << 32)}}},
  };
  for (const auto& [key, node] : t) {
    const std::string k(key.str());
    if (node.is_table()) {
      auto section = schema.find(k);
      if (section == schema.end() || k.empty()) {
        fail(node, "unknown section [" + k + "]");
        continue;
      }
      for (const auto& [sub, value] : *node.as_table()) {
        const std::string sk(sub.str());
        auto it = section->second.find(sk);
        if (it == section->second.end()) {
          fail(value, "unknown key '" + sk + "' in [" + k + "]");
        } else {
          it->second(value, k + "." + sk);
        }
      }
    } else {
      auto it = schema.at("").find(k);
      if (it == schema.at("").end()) {
        fail(node, "unknown key '" + k + "'");
      } else {
        it->second(node, k);
      }
    }
  }
  CAIRN_RETURN_IF_ERROR(bad);
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, uint64_t>>{
           {"scheduler.missed_after_seconds", c.scheduler.missed_after_seconds},
           {"scheduler.deadline_seconds", c.scheduler.deadline_seconds},
           {"scheduler.max_running_jobs", c.scheduler.max_running_jobs},
           {"scheduler.retention_interval_seconds", c.scheduler.retention_interval_seconds},
           {"scheduler.drill_retry_seconds", c.scheduler.drill_retry_seconds}}) {
    if (value == 0) {
      return Status::InvalidArgument(path + ": key '" + key + "' must be at least 1");
    }
  }
  if (c.alerts.interval_seconds == 0) {
    return Status::InvalidArgument(path + ": key 'alerts.interval_seconds' must be at least 1");
  }
  for (const auto& [key, spec] :
       {std::pair<const char*, std::string>{"storage.gc_schedule", c.storage.gc_schedule},
        {"storage.scrub_schedule", c.storage.scrub_schedule}}) {
    if (spec.empty() || spec == "off") continue;
    if (auto parsed = Schedule::Parse(spec); !parsed.ok()) {
      return Status::InvalidArgument(path + ": key '" + key + "': " + parsed.status().message());
    }
  }
  if (c.storage.pack_target_bytes != 0 && c.storage.pack_target_bytes < (1u << 20)) {
    return Status::InvalidArgument(path +
                                   ": key 'storage.pack_target_bytes' must be 0 or at least "
                                   "1048576 (1 MiB)");
  }
  const PackStoreConfig& ps = c.pack_store;
  if (ps.kind == "rados") {
    for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"pool", &ps.pool},
                                     {"ceph_conf", &ps.ceph_conf},
                                     {"ceph_user", &ps.ceph_user},
                                     {"namespace_prefix", &ps.namespace_prefix}}) {
      if (value->empty()) {
        return Status::InvalidArgument(path + ": [pack_store] of kind \"rados\" needs key '" + key +
                                       "'");
      }
    }
  } else if (!ps.kind.empty() && ps.kind != "local") {
    return Status::InvalidArgument(path + ": key 'pack_store.kind' must be \"local\" or \"rados\"");
  }
  c.format = static_cast<int>(format);
  c.threads = static_cast<int>(threads);
  auto check_address = [&](const std::string& v, const char* key) -> Status {
    if (v.empty()) return Status::OK();
    auto hp = net::ParseHostPort(v);
    if (!hp.ok())
      return Status::InvalidArgument(path + ": key '" + key + "': " + hp.status().message());
    return Status::OK();
  };
  CAIRN_RETURN_IF_ERROR(check_address(c.listen, "serve.listen"));
  CAIRN_RETURN_IF_ERROR(check_address(c.http, "serve.http"));
  CAIRN_RETURN_IF_ERROR(check_address(c.syslog_target, "syslog.target"));
  if (c.syslog_transport != "tcp" && c.syslog_transport != "tls") {
    return Status::InvalidArgument(path + ": key 'syslog.transport' must be \"tcp\" or \"tls\"");
  }
  if (!c.webhook_url.empty() && !c.webhook_url.starts_with("https://") &&
      !c.webhook_url.starts_with("http://")) {
    return Status::InvalidArgument(path + ": key 'webhook.url' must be an http:// or https:// URL");
  }
  return c;
}

Result<VaultConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no configuration file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace cairn::vault
