// The REST API, /api/v1 on `cairn-vault serve --http` (doc/api.md is
// normative for every route, its roles and its JSON), and /metrics.
//
// Every route decodes, asks VaultService (which holds every rule, the
// role checks included) and answers JSON. Who asks comes from one of:
//   - a session cookie (POST /api/v1/login with a password, or with a
//     client certificate that names the account): HttpOnly, Secure,
//     SameSite=Strict, forgotten after `session_idle` without use; a write
//     with a cookie must carry the session's CSRF token in X-CSRF-Token;
//   - a bearer token ("Authorization: Bearer cairn-api-..."), for scripts
//     and Prometheus.
// Errors are {"error":{"code","message"}}: 401 without a valid session or
// token, 403 for a role that may not act, 404 for what does not exist or is
// outside an operator's departments (no probing), 400 for malformed input
// (unknown fields included), 429 while logins back off.
#ifndef CAIRN_VAULT_API_REST_API_H_
#define CAIRN_VAULT_API_REST_API_H_

#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/http/server.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {

class VaultServer;

struct ApiOptions {
  // What the protection status computes next runs with.
  SchedulerOptions scheduler;
  // A session unused this long is forgotten. Default 15 min.
  std::chrono::seconds session_idle{900};
  // A session lives at most this long. Default 12 h.
  std::chrono::hours session_max{12};
  // Audit entries not yet forwarded to syslog (none: no forwarding), for
  // /metrics. May be empty.
  std::function<std::optional<uint64_t>()> audit_backlog;
};

// Shapes the API and the command line's --json share (doc/api.md).
// An alert, as `GET /api/v1/alerts` and `cairn-vault alert list` show it.
boost::json::object AlertJson(const AlertRecord& alert);
// A snapshot of `department` (`GET /api/v1/departments/{d}/snapshots`,
// `cairn-vault snapshot list`): client::SnapshotJson plus the vault's own
// fields: chunks, locked_until, damaged (when scrub found it damaged).
boost::json::object SnapshotRecordJson(const SnapshotRecord& snapshot,
                                       const std::string& department);
// A source (`GET /api/v1/sources`, `cairn-vault source list`).
boost::json::object SourceJson(const SourceRecord& source, const std::string& department);
// A series and what retention does to it (`POST /api/v1/retention`,
// `cairn-vault snapshot forget --apply-retention`).
boost::json::object SeriesPlanJson(const VaultService::SeriesPlan& plan);
// The protection report (`GET /api/v1/status`, `cairn-vault status`).
boost::json::object ProtectionReportJson(const VaultService::ProtectionReport& report);
// A job (`GET /api/v1/jobs`, `cairn-vault job list`): its state, where it
// runs, what it backs up or which snapshot it reads (drills and restores),
// its snapshot once done and its error once failed or missed.
boost::json::object JobJson(const JobRecord& job, const std::string& department);
// A done job's history, from its snapshot (`stats` of `GET /api/v1/jobs`
// and `cairn-vault job list`): files, bytes, new and stored bytes,
// warnings, seconds.
boost::json::object JobStatsJson(const SnapshotRecord& snapshot);
// The snapshots that the done backup jobs among `jobs` made, by job ID (a
// drill's or a restore's snapshot is one it read, not its history): one
// listing per department, not one per job.
std::map<uint64_t, SnapshotRecord> JobSnapshots(const VaultService& service,
                                                const std::vector<JobRecord>& jobs);

class RestApi {
 public:
  // `server` (may be null) reports the agent listener's connections.
  RestApi(VaultService* service, const VaultServer* server, ApiOptions options = {});

  http::Response Handle(const http::Request& request);

  // Every route the API serves: "GET /api/v1/departments", ... (the test
  // that holds doc/api.md to the code reads this).
  static std::vector<std::string> RouteList();

  struct Call;
  struct Route;

 private:
  struct Session {
    std::string user, csrf;
    uint64_t created_micros = 0, used_micros = 0;
  };
  Result<Actor> Authenticate(const http::Request& request, bool* from_cookie,
                             std::string* session_id);
  http::Response Login(const http::Request& request);
  http::Response Logout(const http::Request& request);
  std::string Metrics();
  uint64_t Now() const { return service_->vault()->env()->NowMicros(); }

  VaultService* service_;
  const VaultServer* server_;
  ApiOptions options_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;  // by session ID; mu_
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_API_REST_API_H_
