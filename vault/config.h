// The vault's configuration file: DATA/vault.toml by default, or
// `cairn-vault serve --config FILE` (doc/design.md section 19 lists every
// key). `init` writes `format` and `site`; an operator adds the rest:
//
//   [serve]   listen, http, web_root, threads, session_idle_seconds,
//             console_session_idle_seconds
//   [syslog]  target ("host:port"), transport ("tcp" or "tls"), ca (PEM file
//             to verify the collector with, for tls), app_name
//   [webhook] url ("https://host[:port]/path" or "http://..."), ca
//   [alerts]  interval_seconds, agent_unseen_seconds, job_failed, job_missed_seconds,
//             replication_lag_seconds, disk_free_percent,
//             audit_backlog_entries
//   [scheduler] spread_seconds, missed_after_seconds, deadline_seconds,
//             max_running_jobs, retention_interval_seconds
//
// A key that is not known, or of the wrong type, is refused with its name
// and its line: a typo never silently turns a setting off. Flags given to
// `serve` win over the file.
#ifndef CAIRN_VAULT_CONFIG_H_
#define CAIRN_VAULT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "lib/base/status.h"

namespace cairn::vault {

// The alert rules' thresholds; 0 (false) turns a rule off.
struct AlertThresholds {
  uint64_t interval_seconds = 30;         // how often the rules are evaluated
  uint64_t agent_unseen_seconds = 86400;  // an agent not seen for a day
  bool job_failed = true;                 // the newest job of a target failed
  uint64_t job_missed_seconds = 3600;     // a job queued an hour, its agent away
  uint64_t replication_lag_seconds = 3600;
  uint64_t disk_free_percent = 10;
  uint64_t audit_backlog_entries = 1000;  // entries not yet forwarded to syslog
  bool rpo_breached = true;               // a source's last good backup older than its RPO
  // Abnormal change (a backup unlike its series' recent ones): the earlier
  // snapshots are locked this long; 0 turns the rule off.
  uint64_t anomaly_lock_seconds = 7 * 86400;
};

// The scheduler's limits (doc/design.md section 20).
struct SchedulerOptions {
  // Starts of one slot are spread over up to this long (a fixed offset per
  // source, at most half the schedule's gap), so 600 agents due at 01:00 do
  // not all start in the same second.
  uint64_t spread_seconds = 300;
  // A queued job whose agent is not connected this long after it was
  // queued is missed; a sent job whose agent has been gone this long failed.
  uint64_t missed_after_seconds = 600;
  // A job not finished this long after it was queued (sent) failed.
  uint64_t deadline_seconds = 86400;
  // Jobs running at once on this vault (each agent runs one at a time).
  uint64_t max_running_jobs = 16;
  // Retention is applied after each scheduled backup, and to every series
  // this often.
  uint64_t retention_interval_seconds = 3600;
  // A scheduled drill that ended without a report (missed: no drill host,
  // or the host away; failed: the host died) is tried again this long after
  // it was queued.
  uint64_t drill_retry_seconds = 3600;
};

// [storage]: garbage collection, compaction and scrub in a serving vault
// (doc/design.md section 22). A schedule of "" or "off" never runs.
struct MaintenanceOptions {
  std::string gc_schedule = "03:30";
  uint64_t compact_below_percent = 50;
  // How long a run waits for backup sessions that began before it.
  uint64_t gc_session_wait_seconds = 6 * 3600;
  std::string scrub_schedule = "Sun 04:30";
  // Scrub's read rate in bytes per second (0: as fast as the disk goes).
  uint64_t scrub_rate_bytes = 100ull << 20;
  // Repair damaged records from the peer (DIR/replicator/) when scrub
  // finds them.
  bool scrub_repair = true;
  // Seal packs past this size (0: 32 MiB). Smaller packs compact sooner
  // and cost more files; at least 1 MiB.
  uint64_t pack_target_bytes = 0;
};

// [pack_store]: where the data directory's packs live, written by
// `cairn-vault init --store` (doc/design.md section 26). kind "" or "local":
// DATA/packs; "rados": a Ceph pool.
struct PackStoreConfig {
  std::string kind;
  std::string pool, ceph_conf, ceph_user, namespace_prefix;
  uint64_t op_timeout_seconds = 0;  // 0: the store's default
};

struct VaultConfig {
  int format = 0;
  std::string site;
  PackStoreConfig pack_store;
  // [serve]: empty/0 when not set.
  std::string listen, http, web_root;
  int threads = 0;
  uint64_t session_idle_seconds = 0, console_session_idle_seconds = 0;
  // [syslog]
  std::string syslog_target, syslog_transport = "tcp", syslog_ca, syslog_app_name = "cairn-vault";
  // [webhook]
  std::string webhook_url, webhook_ca;
  AlertThresholds alerts;
  SchedulerOptions scheduler;
  MaintenanceOptions storage;
};

// Parses and checks a configuration file. InvalidArgument "FILE line N:
// key 'k' ..." for an unknown key, a wrong type or a bad value; Corruption
// "FILE line N: ..." for TOML that does not parse; NotFound for no file.
Result<VaultConfig> LoadConfig(const std::string& path);
Result<VaultConfig> ParseConfig(std::string_view text, const std::string& path);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_CONFIG_H_
