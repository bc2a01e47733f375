#include "vault/service/vault_service.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>

#include "lib/base/names.h"
#include "lib/chunk/rsync_delta.h"
#include "lib/crypto/random.h"
#include "lib/proto/token.h"

namespace cairn::vault {
namespace {

constexpr size_t kMaxManifestIds = 64u << 20;  // 64M chunks: 64 TiB at 1 MiB
constexpr uint64_t kMaxTokenTtlSeconds = 30ull * 86400;
constexpr size_t kDurableCheckBatch = 32768;
constexpr size_t kReplicaReplyBytes = 1u << 20;  // records in one get_replica_records reply

Status Violation(std::string_view what) { return Status::InvalidArgument(what); }

// Tests only (tests/e2e/replication_order_test.sh): with
// CAIRN_TEST_LIE_IN_REPLICA_ORDER set, this vault lies in its answers to
// get_replica_order, so that the test can show what a DR site does with a
// wrong or hostile source: "reverse" (every key, backwards), "short" (one
// key too few), "not-held" (the first ID said not to be held).
void LieAboutOrder(std::string_view lie, std::vector<uint64_t>* keys) {
  if (keys->empty()) return;
  if (lie == "reverse") {
    for (uint64_t& k : *keys) k = proto::ReplicaOrder::kNotHeld - 1 - k;
  } else if (lie == "short") {
    keys->pop_back();
  } else if (lie == "not-held") {
    keys->front() = proto::ReplicaOrder::kNotHeld;
  }
}

// What a client is told about a storage failure: the kind and what to do,
// never the vault's paths (those go to the vault's log).
Status ForClient(const Status& s) {
  if (s.IsNoSpace()) {
    return Status::NoSpace(
        "the vault is out of disk space; everything stored before is safe, retry once an "
        "operator has freed space");
  }
  if (s.IsNotFound()) return s;
  return Status(s.code(),
                "the vault could not read or store the data (" +
                    std::string(StatusCodeName(s.code())) + "); see the vault's log",
                s.retryable());
}

Status CheckTtl(uint64_t ttl_seconds) {
  if (ttl_seconds == 0 || ttl_seconds > kMaxTokenTtlSeconds) {
    return Status::InvalidArgument("token lifetime must be between 1 second and 30 days");
  }
  return Status::OK();
}

// "<micros>\t<what> by <by> on <host>[: reason]\n", appended to `path` and
// synced through `env` before it counts.
Result<std::string> LogFailover(io::Env* env, const std::string& path, std::string_view what,
                                std::string_view by, std::string_view reason) {
  if (by.empty()) return Status::InvalidArgument("--by is required: who decides this");
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "unknown");
  std::string line = std::to_string(env->NowMicros()) + "\t" + std::string(what) + " by " +
                     EscapeForLog(by) + " on " + EscapeForLog(host) +
                     (reason.empty() ? std::string() : ": " + EscapeForLog(reason)) + "\n";
  auto file = env->NewAppendableFile(path);
  if (file.status().IsNotFound()) file = env->NewExclusiveFile(path);
  if (!file.ok()) return file.status().WithContext(path);
  CAIRN_RETURN_IF_ERROR((*file)->Append(AsBytes(line)).WithContext(path));
  CAIRN_RETURN_IF_ERROR((*file)->Sync().WithContext(path));
  CAIRN_RETURN_IF_ERROR((*file)->Close());
  return line;
}

}  // namespace

// --- Actor -----------------------------------------------------------------

Actor Actor::Local() {
  Actor a;
  a.kind = Kind::kLocal;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) {
    a.name = pw->pw_name;
  } else {
    a.name = "uid" + std::to_string(::geteuid());
  }
  a.address = "local";
  return a;
}

Actor Actor::Self() {
  Actor a;
  a.kind = Kind::kVault;
  a.name = "vault";
  a.address = "local";
  return a;
}

Actor Actor::FromPeer(const crypto::PeerIdentity& peer, uint32_t department, std::string address) {
  Actor a;
  a.kind = peer.role == crypto::kRoleReplicator ? Kind::kReplicator : Kind::kAgent;
  a.name = peer.serial_hex;
  a.host = peer.host;
  a.department = department;
  a.address = std::move(address);
  return a;
}

std::string Actor::Describe() const {
  switch (kind) {
    case Kind::kLocal:
      return "local:" + name;
    case Kind::kUser:
      return "user " + name + " (" + role + ") at " + address;
    case Kind::kAgent:
      return "agent " + name + " (" + EscapeForLog(host) + ") at " + address;
    case Kind::kReplicator:
      return "replicator " + name + " (" + EscapeForLog(host) + ") at " + address;
    case Kind::kAnonymous:
      return "anonymous at " + address;
    case Kind::kVault:
      return "the vault";
  }
  return "?";
}

std::string Actor::AuditName() const {
  switch (kind) {
    case Kind::kLocal:
      return "local:" + name;
    case Kind::kUser:
      return "user:" + name;
    case Kind::kAgent:
      return "agent:" + name;
    case Kind::kReplicator:
      return "replicator:" + name;
    case Kind::kAnonymous:
      return "anonymous";
    case Kind::kVault:
      return "vault";
  }
  return "?";
}

void VaultService::Audit(const Actor& actor, std::string action, std::string department,
                         std::string object, boost::json::object details) const {
  if (vault_->audit() == nullptr) return;
  if (!actor.host.empty()) details["host"] = actor.host;
  Status s = vault_->audit()->Append(actor.AuditName(), actor.address, action,
                                     std::move(department), std::move(object), std::move(details));
  if (!s.ok()) spdlog::error("audit trail: recording {} failed: {}", action, s.ToString());
}

std::string VaultService::DepartmentName(uint32_t id) const {
  auto d = vault_->catalog()->FindDepartment(id);
  return d.ok() ? d->name : std::to_string(id);
}

VaultService::VaultService(Vault* vault, ServiceOptions options)
    : vault_(vault), options_(std::move(options)) {}

ChunkStore* VaultService::store() const { return vault_->store(); }

// --- Departments, tokens, agents --------------------------------------------

Result<Department> VaultService::CreateDepartment(const Actor& actor, std::string_view name) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageDepartments));
  CAIRN_RETURN_IF_ERROR(ValidateName("department", name));
  CAIRN_ASSIGN_OR_RETURN(Bytes wrapped, vault_->NewWrappedDepartmentKeys());
  CAIRN_ASSIGN_OR_RETURN(Department d, vault_->catalog()->CreateDepartment(name, wrapped, Now()));
  spdlog::info("department {} (id {}) created by {}", d.name, d.id, actor.Describe());
  Audit(actor, "department.create", d.name, d.name, {{"id", d.id}});
  return d;
}

Result<std::vector<Department>> VaultService::ListDepartments() const {
  return vault_->catalog()->ListDepartments();
}

Result<std::string> VaultService::CreateEnrollmentToken(const Actor& actor,
                                                        std::string_view department,
                                                        uint64_t ttl_seconds, bool drill_host) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kEnrol, department));
  CAIRN_RETURN_IF_ERROR(CheckTtl(ttl_seconds));
  CAIRN_ASSIGN_OR_RETURN(Department d, vault_->catalog()->FindDepartment(department));
  CAIRN_ASSIGN_OR_RETURN(std::string t, vault_->catalog()->CreateToken(
                                            d.id, Now(), ttl_seconds * 1'000'000, drill_host));
  spdlog::info("enrolment token for department {}{} created by {}", d.name,
               drill_host ? " (a drill host)" : "", actor.Describe());
  Audit(actor, "token.create", d.name, t.substr(0, t.find('.')),
        {{"ttl_seconds", ttl_seconds}, {"role", "agent"}, {"drill_host", drill_host}});
  return proto::FormatEnrollmentToken(vault_->pki().pinned_fingerprint(), t);
}

Result<std::string> VaultService::CreateReplicatorToken(const Actor& actor, uint64_t ttl_seconds) {
  // A replicator reads every department's data and receives their keys.
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageDepartments));
  CAIRN_RETURN_IF_ERROR(CheckTtl(ttl_seconds));
  CAIRN_ASSIGN_OR_RETURN(std::string t, vault_->catalog()->CreateToken(kReplicatorToken, Now(),
                                                                       ttl_seconds * 1'000'000));
  spdlog::info("replicator enrolment token created by {}", actor.Describe());
  Audit(actor, "token.create", "", t.substr(0, t.find('.')),
        {{"ttl_seconds", ttl_seconds}, {"role", "replicator"}});
  return proto::FormatEnrollmentToken(vault_->pki().pinned_fingerprint(), t);
}

Result<std::vector<AgentRecord>> VaultService::ListAgents() const {
  return vault_->catalog()->ListAgents();
}

Status VaultService::RevokeAgent(const Actor& actor, std::string_view serial) {
  CAIRN_ASSIGN_OR_RETURN(AgentRecord agent, vault_->catalog()->FindAgent(serial));
  CAIRN_RETURN_IF_ERROR(Authorize(
      actor, agent.department_id == 0 ? Permission::kManageDepartments : Permission::kRevoke,
      agent.department_id == 0 ? std::string() : DepartmentName(agent.department_id)));
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->RevokeAgent(serial, Now()));
  spdlog::warn("certificate {} revoked by {}", EscapeForLog(serial), actor.Describe());
  Audit(actor, "agent.revoke", agent.department_id == 0 ? "" : DepartmentName(agent.department_id),
        std::string(serial), {{"agent_host", agent.host}});
  return Status::OK();
}

bool VaultService::IsRevokedOrUnknown(std::string_view serial) const {
  return vault_->catalog()->IsRevokedOrUnknown(serial);
}

// --- Enrolment and admission -------------------------------------------------

Result<proto::EnrollResponse> VaultService::Enroll(const Actor& actor,
                                                   const proto::EnrollRequest& req) {
  CAIRN_RETURN_IF_ERROR(ValidateName("host", req.hostname));
  Catalog* catalog = vault_->catalog();
  CAIRN_ASSIGN_OR_RETURN(Catalog::TokenGrant grant, catalog->RedeemToken(req.token, Now()));
  const uint32_t department_id = grant.department;
  proto::EnrollResponse resp;
  resp.ca_pem = vault_->pki().served_ca_pem();
  if (department_id == kReplicatorToken) {
    CAIRN_ASSIGN_OR_RETURN(resp.certificate_pem,
                           vault_->pki().IssueReplicator(req.csr_pem, req.hostname));
    CAIRN_ASSIGN_OR_RETURN(crypto::PeerIdentity issued,
                           crypto::ParseIdentity(resp.certificate_pem));
    // Known to the catalog (department 0), so it can be listed and revoked.
    CAIRN_RETURN_IF_ERROR(catalog->AddAgent({issued.serial_hex, 0, req.hostname, Now(), false, 0}));
    if (!options_.advertised_address.empty()) resp.vault_addresses = {options_.advertised_address};
    spdlog::info("enrolled replicator {} (certificate {}) from {}", req.hostname, issued.serial_hex,
                 actor.address);
    return resp;
  }
  CAIRN_ASSIGN_OR_RETURN(Department dept, catalog->FindDepartment(department_id));
  CAIRN_ASSIGN_OR_RETURN(resp.certificate_pem,
                         vault_->pki().IssueAgent(req.csr_pem, dept.name, req.hostname));
  CAIRN_ASSIGN_OR_RETURN(crypto::PeerIdentity issued, crypto::ParseIdentity(resp.certificate_pem));
  AgentRecord agent{issued.serial_hex, dept.id, req.hostname, Now(), false, 0};
  agent.drill_host = grant.drill_host;
  CAIRN_RETURN_IF_ERROR(catalog->AddAgent(agent));
  CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, vault_->DepartmentKeys(dept.id));
  resp.department = dept.name;
  resp.department_id = dept.id;
  resp.department_keys = crypto::SerializeDepartmentKeys(keys);
  resp.vault_addresses = AgentAddresses();
  spdlog::info("enrolled agent {} of department {} (certificate {}) from {}; keys released",
               req.hostname, dept.name, issued.serial_hex, actor.address);
  Audit(actor, "agent.enroll", dept.name, issued.serial_hex,
        {{"agent_host", req.hostname}, {"keys_released", true}, {"drill_host", grant.drill_host}});
  return resp;
}

Result<Department> VaultService::AdmitAgent(const crypto::PeerIdentity& peer) const {
  auto dept = vault_->catalog()->FindDepartment(peer.department);
  if (!dept.ok()) return Status::PermissionDenied("certificate names an unknown department");
  return dept;
}

std::vector<std::string> VaultService::AgentAddresses() const {
  std::vector<std::string> out;
  if (auto v = vault_->catalog()->GetSetting("agent_addresses"); v.ok()) {
    size_t start = 0;
    while (start < v->size()) {
      size_t nl = v->find('\n', start);
      if (nl == std::string::npos) nl = v->size();
      if (nl > start) out.push_back(v->substr(start, nl - start));
      start = nl + 1;
    }
  }
  if (out.empty() && !options_.advertised_address.empty()) {
    out.push_back(options_.advertised_address);
  }
  return out;
}

std::vector<std::string> VaultService::DrAddresses() const {
  std::vector<std::string> out;
  if (auto v = vault_->catalog()->GetSetting("dr_addresses"); v.ok()) {
    std::string_view rest = *v;
    while (!rest.empty()) {
      const size_t nl = std::min(rest.find('\n'), rest.size());
      if (nl > 0) out.emplace_back(rest.substr(0, nl));
      rest.remove_prefix(std::min(nl + 1, rest.size()));
    }
  }
  return out;
}

Status VaultService::SetAgentAddresses(const std::vector<std::string>& addresses) {
  std::string joined;
  for (const auto& a : addresses) joined += a + "\n";
  return vault_->catalog()->PutSetting("agent_addresses", joined);
}

// --- Backup sessions -----------------------------------------------------------

Status VaultService::PrepareToServe() {
  io::Env* env = vault_->env();
  const std::string dir = vault_->data_dir() + "/sessions";
  if (!env->FileExists(dir)) return env->CreateDir(dir);
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env->GetChildren(dir));
  for (const std::string& n : names) {
    if (n.ends_with(".manifest")) (void)env->RemoveFile(dir + "/" + n);
  }
  return Status::OK();
}

std::string VaultService::SpillPath(uint64_t session_id) const {
  char name[40];
  std::snprintf(name, sizeof(name), "/sessions/%016llx.manifest",
                static_cast<unsigned long long>(session_id));
  return vault_->data_dir() + name;
}

std::shared_ptr<BackupSession> VaultService::Adopt(SessionRecord record) {
  const uint64_t id = record.id;
  auto session = std::make_shared<BackupSession>(std::move(record), vault_->env(), SpillPath(id),
                                                 options_.manifest_memory_ids);
  sessions_[id] = session;
  return session;
}

Status VaultService::MakeRoomFor(const Actor& agent) {
  struct Bound {
    size_t max;
    std::function<bool(const SessionRecord&)> mine;
    const char* who;
  };
  const Bound bounds[] = {
      {options_.max_sessions_per_agent,
       [&](const SessionRecord& r) { return r.agent_serial == agent.name; }, "this agent"},
      {options_.max_sessions_per_department,
       [&](const SessionRecord& r) { return r.department_id == agent.department; },
       "this department"},
  };
  for (const Bound& b : bounds) {
    for (;;) {
      size_t count = 0;
      std::shared_ptr<BackupSession> idlest;
      for (const auto& [id, s] : sessions_) {
        if (!b.mine(s->record)) continue;
        ++count;
        // Held by a connection (use_count > 1): in use, never evicted.
        if (s.use_count() == 1 &&
            (!idlest || s->record.active_micros < idlest->record.active_micros)) {
          idlest = s;
        }
      }
      if (count < b.max) break;
      if (!idlest) {
        return Status::Unavailable(std::string(b.who) + " already has " + std::to_string(count) +
                                   " backup sessions running at the vault; retry when one ends");
      }
      spdlog::info("backup session {:016x} of {} forgotten to make room for a new one",
                   idlest->id(), EscapeForLog(idlest->record.host));
      sessions_.erase(idlest->id());
      (void)vault_->catalog()->DeleteSession(idlest->id());
    }
  }
  return Status::OK();
}

Result<std::shared_ptr<BackupSession>> VaultService::BeginSession(const Actor& agent,
                                                                  const proto::SessionBegin& begin,
                                                                  bool* resumed) {
  *resumed = false;
  if (IsReplica() && !IsPromoted()) {
    spdlog::warn("backup from {} refused: not promoted", agent.Describe());
    return Status::PermissionDenied(
        "this is the disaster-recovery copy (site " + vault_->site() +
        ") and it has not been promoted: back up to the primary vault, or, if the primary "
        "is lost, promote this one with `cairn-vault promote` (doc/dr-runbook.md)");
  }
  const uint64_t now = Now();
  std::lock_guard<std::mutex> lock(sessions_mu_);
  if (begin.resume_session_id != 0) {
    std::shared_ptr<BackupSession> session;
    if (auto it = sessions_.find(begin.resume_session_id); it != sessions_.end()) {
      session = it->second;
    } else if (auto row = vault_->catalog()->FindSession(begin.resume_session_id); row.ok()) {
      session = Adopt(std::move(*row));  // from before a vault restart
    }
    if (session && session->record.department_id == agent.department) {
      session->manifest.Clear();  // the manifest is re-sent before commit
      session->record.active_micros = now;
      *resumed = true;
      return session;
    }
  }
  CAIRN_RETURN_IF_ERROR(MakeRoomFor(agent));
  SessionRecord r;
  uint8_t random[8];
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(MutableByteView(random, 8)));
  r.id = DecodeFixed64(random) | 1;
  r.department_id = agent.department;
  r.agent_serial = agent.name;
  r.host = agent.host;
  r.kind = static_cast<uint8_t>(begin.kind);
  r.paths = begin.paths;
  r.created_micros = r.active_micros = now;
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutSession(r));
  return Adopt(std::move(r));
}

size_t VaultService::ExpireSessions() {
  const uint64_t now = Now();
  const uint64_t idle = static_cast<uint64_t>(options_.session_idle.count()) * 1'000'000;
  std::vector<uint64_t> expired;
  bool sweep_rows = false;
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      const auto& s = it->second;
      if (s.use_count() == 1 && now - std::min(now, s->record.active_micros) > idle) {
        expired.push_back(it->first);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
    // Rows of sessions not in memory (from before a restart) expire too;
    // reading them all once a minute is enough.
    if (now - std::min(now, last_row_sweep_micros_) > 60'000'000) {
      last_row_sweep_micros_ = now;
      sweep_rows = true;
    }
  }
  if (sweep_rows) {
    if (auto rows = vault_->catalog()->ListSessions(); rows.ok()) {
      std::lock_guard<std::mutex> lock(sessions_mu_);
      for (const SessionRecord& r : *rows) {
        if (!sessions_.contains(r.id) && now - std::min(now, r.active_micros) > idle &&
            std::find(expired.begin(), expired.end(), r.id) == expired.end()) {
          expired.push_back(r.id);
        }
      }
    }
  }
  for (uint64_t id : expired) {
    if (Status s = vault_->catalog()->DeleteSession(id); !s.ok()) {
      spdlog::warn("forgetting backup session {:016x}: {}", id, s.ToString());
    }
  }
  if (!expired.empty()) spdlog::info("{} idle backup session(s) forgotten", expired.size());
  return expired.size();
}

Status VaultService::CheckpointAudit() {
  return vault_->audit() != nullptr ? vault_->audit()->Checkpoint() : Status::OK();
}

size_t VaultService::open_sessions() {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  return sessions_.size();
}

Result<std::vector<bool>> VaultService::HaveChunks(const Actor& agent,
                                                   std::span<const crypto::ChunkId> ids) {
  auto present = store()->Contains(agent.department, ids);
  if (!present.ok()) return ForClient(present.status());
  return present;
}

Status VaultService::PutRecord(const Actor& agent, ByteView record,
                               const crypto::ChunkId* delta_base) {
  CAIRN_RETURN_IF_ERROR(proto::CheckPutRecord(record));
  Status s = store()->Put(agent.department, record, nullptr, delta_base);
  if (s.ok() || s.IsCorruption() || s.IsInvalidArgument())
    return s;  // Corruption: a bad record, the client's fault
  spdlog::error("department {}: storing a record from {} failed: {}", agent.department,
                agent.Describe(), s.ToString());
  return ForClient(s);
}

Result<proto::Flushed> VaultService::Flush(BackupSession& session, uint64_t sequence) {
  SessionRecord& r = session.record;
  if (sequence <= r.last_flush) return Violation("flush sequence not increasing");
  auto flushed = store()->Flush(r.department_id);
  if (!flushed.ok()) {
    spdlog::error("department {}: flush failed: {}", r.department_id, flushed.status().ToString());
    return ForClient(flushed.status());
  }
  r.last_flush = sequence;
  ingested_bytes_ += flushed->bytes;
  r.records_stored += flushed->records;
  r.bytes_stored += flushed->bytes;
  r.active_micros = Now();
  if (Status s = vault_->catalog()->PutSession(r); !s.ok()) {
    // The data is durable; only a resume after a restart would miss it.
    spdlog::warn("backup session {:016x}: recording its progress failed: {}", r.id, s.ToString());
  }
  return proto::Flushed{sequence, r.records_stored, r.bytes_stored};
}

Status VaultService::AddManifestPart(BackupSession& session, const proto::ManifestPart& part) {
  if (part.session_id != session.id()) return Violation("manifest_part for another session");
  if (session.manifest.size() + part.ids.size() > kMaxManifestIds) {
    return Violation("manifest too large");
  }
  session.record.active_micros = Now();
  Status s = session.manifest.Append(part.ids);
  if (!s.ok()) {
    spdlog::error("backup session {:016x}: keeping its manifest failed: {}", session.id(),
                  s.ToString());
    return ForClient(s);
  }
  return Status::OK();
}

Status VaultService::CheckDurable(uint32_t department, const ManifestReader& manifest) const {
  uint64_t missing = 0;
  CAIRN_RETURN_IF_ERROR(manifest([&](std::span<const crypto::ChunkId> ids) -> Status {
    for (size_t i = 0; i < ids.size(); i += kDurableCheckBatch) {
      const size_t n = std::min(kDurableCheckBatch, ids.size() - i);
      CAIRN_ASSIGN_OR_RETURN(std::vector<bool> present,
                             store()->Contains(department, ids.subspan(i, n)));
      for (bool p : present) missing += !p;
    }
    return Status::OK();
  }));
  if (missing > 0) {
    return Status::NotFound(std::to_string(missing) +
                            " chunks of the manifest are not stored; upload and flush them");
  }
  return Status::OK();
}

// A commit in progress, from its durability check to its catalog write: GC's
// fence waits for those that began before the collection (maintenance.cc).
class VaultService::CommitTicket {
 public:
  explicit CommitTicket(VaultService* service) : service_(service) {
    std::lock_guard<std::mutex> lock(service_->commits_mu_);
    ticket_ = service_->next_commit_ticket_++;
    service_->commits_in_flight_.insert(ticket_);
  }
  ~CommitTicket() {
    std::lock_guard<std::mutex> lock(service_->commits_mu_);
    service_->commits_in_flight_.erase(ticket_);
  }
  CommitTicket(const CommitTicket&) = delete;
  CommitTicket& operator=(const CommitTicket&) = delete;

 private:
  VaultService* service_;
  uint64_t ticket_ = 0;
};

Result<proto::CommitOk> VaultService::Commit(const Actor& agent, BackupSession& session,
                                             const proto::Commit& commit) {
  SessionRecord& r = session.record;
  if (commit.session_id != r.id) return Violation("commit for another session");
  if (session.committed()) return proto::CommitOk{r.committed_snapshot, r.committed_micros};
  CommitTicket ticket(this);
  const ManifestReader manifest = session.manifest.Reader();
  Status check;
  if (commit.manifest_count != session.manifest.size()) {
    check = Status::InvalidArgument("commit says " + std::to_string(commit.manifest_count) +
                                    " manifest IDs, " + std::to_string(session.manifest.size()) +
                                    " were sent");
  }
  if (check.ok()) check = CheckDurable(r.department_id, manifest);
  if (check.ok()) {
    bool has_root = false;
    check = manifest([&](std::span<const crypto::ChunkId> ids) {
      has_root = has_root || std::find(ids.begin(), ids.end(), commit.root_tree) != ids.end();
      return Status::OK();
    });
    if (check.ok() && !has_root)
      check = Status::InvalidArgument("the root tree is not in the manifest");
  }
  if (!check.ok()) {
    session.manifest.Clear();
    return check;
  }
  SnapshotRecord snap;
  snap.department_id = r.department_id;
  snap.host = r.host;
  snap.paths = r.paths;
  snap.kind = r.kind;
  snap.time_micros = Now();
  snap.root_tree = commit.root_tree;
  SetStats(&snap, commit.stats);
  // The retention lock of its source's policy, in the commit itself.
  snap.locked_until_micros = LockFor(snap, 0);
  snap.stored_bytes = r.bytes_stored;
  CAIRN_ASSIGN_OR_RETURN(SnapshotRecord stored, vault_->catalog()->CommitSnapshot(snap, manifest));
  r.committed_snapshot = stored.id;
  r.committed_micros = stored.time_micros;
  r.active_micros = Now();
  session.manifest.Clear();
  if (Status s = vault_->catalog()->PutSession(r); !s.ok()) {
    spdlog::warn("backup session {:016x}: recording its commit failed: {}", r.id, s.ToString());
  }
  spdlog::info("department {}: snapshot {} committed by {} ({} files, {} new bytes)",
               r.department_id, stored.id, agent.Describe(), snap.files, snap.new_bytes);
  Audit(agent, "snapshot.commit", DepartmentName(r.department_id), stored.id,
        {{"paths", boost::json::array(r.paths.begin(), r.paths.end())},
         {"kind", r.kind == static_cast<uint8_t>(proto::SessionKind::kImage) ? "image" : "files"},
         {"files", snap.files},
         {"bytes", snap.bytes},
         {"new_bytes", snap.new_bytes},
         {"stored_bytes", snap.stored_bytes},
         {"chunks", stored.manifest_count}});
  CheckForAnomaly(stored);
  return proto::CommitOk{stored.id, stored.time_micros};
}

Status VaultService::SealOpenPacks() {
  return store() != nullptr ? store()->SealAll() : Status::OK();
}

// --- Reads -----------------------------------------------------------------------

Result<proto::SnapshotList> VaultService::ListSnapshots(const Actor& agent, uint32_t limit) const {
  const size_t n = limit == 0 ? proto::kMaxSnapshotsPerList : limit;
  CAIRN_ASSIGN_OR_RETURN(auto list, vault_->catalog()->ListSnapshots(agent.department, n));
  proto::SnapshotList reply;
  size_t budget = proto::kMaxControlPayload - 1024;
  for (const auto& s : list) {
    size_t size = 200 + s.host.size();
    for (const auto& p : s.paths) size += 4 + p.size();
    if (size > budget) break;
    budget -= size;
    reply.snapshots.push_back(ToSnapshotInfo(s));
  }
  return reply;
}

Result<proto::RecordsPayload> VaultService::ReadRecords(uint32_t department,
                                                        std::span<const crypto::ChunkId> ids,
                                                        bool whole_packs, size_t max_bytes) const {
  // Read straight into the reply: no buffer per record, no copy into the
  // frame, and no zero-fill of what the read overwrites. The reply is cut
  // after the records read whole (KeepFirst below): the buffer's other bytes
  // are what an earlier reply left there, perhaps another department's
  // records.
  std::optional<proto::RecordsPayload> reply;
  auto place = [this, &reply](std::span<const uint32_t> lengths) {
    reply.emplace(lengths, &reply_buffers_);
    return reply->records();
  };
  auto records = store()->ReadPrefix(
      department, ids.subspan(0, std::min(ids.size(), proto::kMaxRecordsPerMessage)),
      std::min(max_bytes, proto::kMaxFramePayload - 1024 - 4 * proto::kMaxRecordsPerMessage),
      whole_packs, place);
  if (!records.ok()) {
    if (!records.status().IsNotFound()) {
      spdlog::error("department {}: reading chunk {} failed: {}", department,
                    ids.empty() ? std::string("-") : ToHex(ids[0]), records.status().ToString());
    }
    const std::string chunk = ids.empty() ? std::string("?") : ToHex(ids[0]);
    if (records.status().IsNotFound()) return Status::NotFound("chunk " + chunk + " is not stored");
    return Status(records.status().code(),
                  "chunk " + chunk + " could not be read at the vault (" +
                      std::string(StatusCodeName(records.status().code())) +
                      "); the vault's log has the details" +
                      (records.status().IsCorruption()
                           ? "; it is damaged on disk: `cairn-vault scrub` repairs it from the DR "
                             "copy and marks the snapshots that need it"
                           : ""),
                  records.status().retryable());
  }
  reply->KeepFirst(*records);
  return std::move(*reply);
}

Status VaultService::BeginRestore(const Actor& agent, const proto::RestoreBegin& begin) const {
  if (begin.purpose != "restore" && begin.purpose != "verify" && begin.purpose != "browse") {
    return Status::InvalidArgument("restore_begin: purpose '" + EscapeForLog(begin.purpose) +
                                   "' is not restore, verify or browse");
  }
  auto snapshot = vault_->catalog()->FindSnapshot(agent.department, begin.snapshot_id);
  if (!snapshot.ok()) {
    if (snapshot.status().IsNotFound()) {
      return Status::NotFound("no snapshot " + EscapeForLog(begin.snapshot_id) +
                              " in this department");
    }
    return snapshot.status();
  }
  if (begin.continuation) return Status::OK();
  const std::string dept = DepartmentName(agent.department);
  spdlog::info("{} of snapshot {} (department {}) by {}{}", begin.purpose, snapshot->id, dept,
               agent.Describe(),
               begin.target.empty() ? std::string()
                                    : std::string(begin.in_place ? " in place at " : " to ") +
                                          EscapeForLog(begin.target));
  boost::json::object details{{"snapshot_host", snapshot->host}};
  if (begin.purpose == "restore") {
    details["target"] = begin.target;
    details["in_place"] = begin.in_place;
  }
  Audit(agent, "restore." + begin.purpose, dept, snapshot->id, std::move(details));
  return Status::OK();
}

Result<proto::DeltaReply> VaultService::ComputeDelta(const Actor& agent, const proto::GetDelta& ask,
                                                     DeltaContext* context) const {
  if (!context->decoder) {
    CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, vault_->DepartmentKeys(agent.department));
    CAIRN_ASSIGN_OR_RETURN(context->decoder, repo::RecordDecoder::Create(keys));
    spdlog::info("department {}: keys opened to serve an in-place restore to {}", agent.department,
                 agent.Describe());
    // The one time the vault decrypts a department's data: a key release.
    Audit(agent, "keys.use", DepartmentName(agent.department), "get_delta",
          {{"purpose", "in-place restore"}});
  }
  const uint32_t department = agent.department;
  repo::RecordSource source = [&](const crypto::ChunkId& id) -> Result<Bytes> {
    Bytes record;
    Status s = store()->Read(department, id, &record);
    if (!s.ok()) {
      if (!s.IsNotFound()) spdlog::error("get_delta: chunk {}: {}", ToHex(id), s.ToString());
      return s.IsNotFound()
                 ? Status::NotFound("chunk " + ToHex(id) + " is not stored")
                 : Status::Corruption("chunk " + ToHex(id) + " could not be read at the vault");
    }
    return record;
  };
  proto::DeltaReply reply;
  reply.request_id = ask.request_id;
  if (ask.have != crypto::ChunkId{}) {
    // The client holds an earlier version of this extent: the deltas stored
    // since are the answer, with nothing to rebuild or compute.
    CAIRN_ASSIGN_OR_RETURN(auto chain, repo::DeltasBetween(context->decoder.get(), ask.have, ask.id,
                                                           source, proto::kMaxDeltaReplyLen));
    if (chain.has_value()) {
      reply.kind = proto::DeltaKind::kDeltas;
      reply.deltas = std::move(*chain);
      return reply;
    }
    if (ask.signature.empty()) {
      reply.kind = proto::DeltaKind::kNoChain;
      return reply;
    }
  }
  Bytes content;
  CAIRN_RETURN_IF_ERROR(
      repo::ReadChunk(context->decoder.get(), ask.id, source, proto::kMaxDeltaReplyLen, &content));
  auto delta = chunk::ComputeDelta(ask.signature, content);
  if (!delta.ok()) {
    SecureZero(content.data(), content.size());
    // A signature librsync would not accept is the client's fault.
    return Status::InvalidArgument("get_delta: " + delta.status().message());
  }
  if (delta->size() < content.size()) {
    reply.kind = proto::DeltaKind::kDelta;
    reply.data = std::move(*delta);
    SecureZero(content.data(), content.size());
  } else {
    reply.kind = proto::DeltaKind::kWhole;
    reply.data = std::move(content);
  }
  return reply;
}

Result<std::vector<SnapshotRecord>> VaultService::ListSnapshots(std::string_view department) const {
  CAIRN_ASSIGN_OR_RETURN(Department d, vault_->catalog()->FindDepartment(department));
  return vault_->catalog()->ListSnapshots(d.id, 0);
}

// --- Jobs ----------------------------------------------------------------------

Result<JobRecord> VaultService::ResolveJobTarget(std::string_view agent,
                                                 std::string_view department) const {
  const Catalog& catalog = *vault_->catalog();
  uint32_t dept_id = 0;
  if (!department.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto d, catalog.FindDepartment(department));
    dept_id = d.id;
  }
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog.ListAgents());
  JobRecord job;
  // Replicators (department 0) never run jobs: a host that is also a DR
  // site's replicator is still one agent.
  auto eligible = [&](const AgentRecord& a) {
    return !a.revoked && a.department_id != 0 && (dept_id == 0 || a.department_id == dept_id);
  };
  for (const auto& a : agents) {
    if (a.serial == agent && eligible(a)) {
      job.agent_serial = a.serial;
      job.department_id = a.department_id;
      job.host = a.host;
      return job;
    }
  }
  std::set<uint32_t> departments;
  for (const auto& a : agents) {
    if (a.host == agent && eligible(a)) departments.insert(a.department_id);
  }
  if (departments.empty()) {
    return Status::NotFound(
        "no enrolled agent with serial or host '" + EscapeForLog(agent) + "'" +
        (department.empty() ? "" : " in department " + std::string(department)));
  }
  if (departments.size() > 1) {
    return Status::InvalidArgument("host '" + std::string(agent) +
                                   "' is enrolled in several departments; pass --department");
  }
  job.department_id = *departments.begin();
  job.host = std::string(agent);
  return job;
}

Result<uint64_t> VaultService::StartJob(const Actor& actor, std::string_view agent,
                                        std::string_view department, std::vector<std::string> paths,
                                        bool image) {
  CAIRN_ASSIGN_OR_RETURN(JobRecord job, ResolveJobTarget(agent, department));
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kRunJobs, DepartmentName(job.department_id)));
  job.paths = std::move(paths);
  job.image = image;
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, vault_->catalog()->EnqueueJob(job, Now()));
  spdlog::info("job {} queued for {} by {}", id, EscapeForLog(agent), actor.Describe());
  Audit(actor, "job.start", DepartmentName(job.department_id), std::to_string(id),
        {{"agent", std::string(agent)},
         {"paths", boost::json::array(job.paths.begin(), job.paths.end())},
         {"image", image}});
  return id;
}

Result<uint64_t> VaultService::StartSourceJob(const Actor& actor, uint64_t source_id) {
  auto source = vault_->catalog()->FindSource(source_id);
  const std::string department = source.ok() ? DepartmentName(source->department_id) : "";
  if (!source.ok() || !InScope(actor, department)) {
    return source.ok() || source.status().IsNotFound()
               ? Status::NotFound("no source " + std::to_string(source_id))
               : source.status();
  }
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kRunJobs, department));
  auto policy = vault_->catalog()->FindPolicy(source->policy);
  const JobRecord job = BackupJobOf(*source, policy.ok() ? &*policy : nullptr);
  CAIRN_ASSIGN_OR_RETURN(uint64_t id, vault_->catalog()->EnqueueJob(job, Now()));
  spdlog::info("job {} queued for source {} ({}) by {}", id, source_id, EscapeForLog(source->host),
               actor.Describe());
  Audit(actor, "job.start", department, std::to_string(id),
        {{"source", source_id}, {"agent", source->host}});
  return id;
}

Result<JobRecord> VaultService::FindJob(uint64_t id) const {
  return vault_->catalog()->FindJob(id);
}
Result<std::vector<JobRecord>> VaultService::ListJobs() const {
  return vault_->catalog()->ListJobs();
}
Result<std::vector<JobRecord>> VaultService::QueuedJobs() const {
  return vault_->catalog()->ListQueuedJobs();
}
Status VaultService::MarkJobSent(uint64_t id, std::string_view serial) {
  return vault_->catalog()->MarkJobSent(id, serial, Now());
}
Status VaultService::RequeueJob(uint64_t id) { return vault_->catalog()->RequeueJob(id); }

void VaultService::NoteJobProgress(const proto::JobProgress& progress) {
  std::lock_guard<std::mutex> lock(progress_mu_);
  // Bounded: one entry per running job; a vault runs far fewer.
  if (progress_.size() >= 100000 && !progress_.contains(progress.job_id)) return;
  progress_[progress.job_id] = {progress, Now()};
}

std::optional<VaultService::JobProgressNote> VaultService::JobProgressOf(uint64_t job_id) const {
  std::lock_guard<std::mutex> lock(progress_mu_);
  auto it = progress_.find(job_id);
  if (it == progress_.end()) return std::nullopt;
  return it->second;
}

Status VaultService::ReportJobDone(const Actor& agent, const proto::JobDone& done) {
  {
    std::lock_guard<std::mutex> lock(progress_mu_);
    progress_.erase(done.job_id);
  }
  Catalog* catalog = vault_->catalog();
  auto job = catalog->FindJob(done.job_id);
  if (!job.ok() && !job.status().IsNotFound()) {
    spdlog::error("job {}: reading it failed: {}", done.job_id, job.status().ToString());
    return Status::OK();  // the vault's problem, not the agent's
  }
  // A job of another agent (or department) is answered like an unknown one.
  if (!job.ok() || job->department_id != agent.department || job->sent_to != agent.name) {
    return Violation("job_done for job " + std::to_string(done.job_id) +
                     ", which was not sent to this agent");
  }
  if (job->state != JobState::kSent) {
    // A report repeated after a reconnection: already recorded.
    spdlog::info("job {}: repeated job_done ignored (job is {})", job->id,
                 JobStateName(job->state));
    return Status::OK();
  }
  Status s = catalog->FinishJob(job->id, done.ok, done.snapshot_id, done.error, Now(), done.log);
  if (s.ok()) {
    Audit(agent, done.ok ? "job.done" : "job.failed", DepartmentName(job->department_id),
          std::to_string(job->id),
          done.ok ? boost::json::object{{"snapshot", done.snapshot_id}}
                  : boost::json::object{{"error", done.error}});
  }
  if (!s.ok()) {
    spdlog::error("job {}: recording job_done failed: {}", job->id, s.ToString());
  } else if (done.ok && job->kind != 1) {
    spdlog::info("job {} done by {}: {} of snapshot {}", job->id, agent.Describe(),
                 job->kind == 2 ? "drill" : "restore", done.snapshot_id);
  } else if (done.ok) {
    spdlog::info("job {} done by {}: snapshot {}", job->id, agent.Describe(), done.snapshot_id);
    if (Status a = AfterJobSnapshot(*job, done.snapshot_id); !a.ok()) {
      spdlog::error("job {}: locking and retention after it: {}", job->id, a.ToString());
    }
  } else {
    spdlog::warn("job {} failed on {}: {}", job->id, agent.Describe(), EscapeForLog(done.error));
  }
  return Status::OK();
}

// --- Disaster recovery ---------------------------------------------------------

bool VaultService::IsReplica() const { return vault_->catalog()->GetSetting("replica_of").ok(); }
bool VaultService::IsPromoted() const { return vault_->catalog()->GetSetting("promoted").ok(); }

Result<std::string> VaultService::Promote(const Actor& actor, std::string_view by,
                                          std::string_view reason, bool* already) {
  *already = false;
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kFailover));
  if (!IsReplica()) {
    return Status::InvalidArgument(vault_->data_dir() +
                                   " is not a DR copy (it has never replicated from a primary): "
                                   "there is nothing to promote");
  }
  if (auto was = vault_->catalog()->GetSetting("promoted"); was.ok()) {
    *already = true;
    return *was;
  }
  // The log first: a promotion that took effect is always in it.
  CAIRN_ASSIGN_OR_RETURN(std::string line, LogFailover(vault_->env(), vault_->promotions_log(),
                                                       "promoted", by, reason));
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutSetting("promoted", line));
  spdlog::warn("vault promoted by {} ({}): it now accepts backups", EscapeForLog(by),
               actor.Describe());
  Audit(actor, "vault.promote", "", vault_->site(),
        {{"by", std::string(by)}, {"reason", std::string(reason)}});
  return line;
}

Status VaultService::Demote(const Actor& actor, std::string_view by, std::string_view reason) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kFailover));
  if (!IsPromoted()) return Status::InvalidArgument(vault_->data_dir() + " is not promoted");
  CAIRN_ASSIGN_OR_RETURN(std::string line, LogFailover(vault_->env(), vault_->promotions_log(),
                                                       "demoted", by, reason));
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->DeleteSetting("promoted"));
  spdlog::warn("vault demoted by {} ({}): it refuses backups again", EscapeForLog(by),
               actor.Describe());
  Audit(actor, "vault.demote", "", vault_->site(),
        {{"by", std::string(by)}, {"reason", std::string(reason)}});
  return Status::OK();
}

Result<proto::ReplicaSetupOk> VaultService::ReplicaSetup(const Actor& replicator,
                                                         const proto::ReplicaSetup& req) {
  Catalog* catalog = vault_->catalog();
  proto::ReplicaSetupOk ok;
  ok.site = vault_->site();
  // A vault that is not itself a replica is the root of trust of its
  // agents: it names its CA, and, when the DR site says where agents reach
  // it, certifies the DR vault's TLS key (so that they accept it when they
  // fail over) and adds that address to the agents' list.
  const bool root = !IsReplica();
  if (root) ok.ca_pem = vault_->pki().ca().certificate_pem;
  if (root && !req.addresses.empty()) {
    std::vector<std::string> hosts;
    for (const std::string& a : req.addresses) {
      auto colon = a.rfind(':');
      std::string host = a.substr(0, colon);
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      if (!host.empty() && std::find(hosts.begin(), hosts.end(), host) == hosts.end()) {
        hosts.push_back(host);
      }
    }
    if (hosts.empty()) return Status::InvalidArgument("replica_setup names no usable DR address");
    for (const char* local : {"127.0.0.1", "::1", "localhost"}) {
      if (std::find(hosts.begin(), hosts.end(), local) == hosts.end()) hosts.push_back(local);
    }
    CAIRN_ASSIGN_OR_RETURN(ok.server_cert_pem,
                           vault_->pki().IssueReplicaServer(req.server_csr_pem, req.site, hosts));
    std::vector<std::string> addresses = AgentAddresses();
    for (const std::string& a : req.addresses) {
      if (std::find(addresses.begin(), addresses.end(), a) == addresses.end() &&
          addresses.size() < proto::kMaxVaultAddresses) {
        addresses.push_back(a);
      }
    }
    CAIRN_RETURN_IF_ERROR(SetAgentAddresses(addresses));
    std::string dr;
    for (const std::string& a : req.addresses) dr += a + "\n";
    CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutSetting("dr_addresses", dr));
  }
  ok.vault_addresses = AgentAddresses();
  CAIRN_ASSIGN_OR_RETURN(auto departments, catalog->ListDepartments());
  size_t released = 0;
  for (const Department& d : departments) {
    proto::ReplicaDepartment rd{d.id, d.name, d.created_micros, {}};
    if (std::find(req.known_departments.begin(), req.known_departments.end(), d.id) ==
        req.known_departments.end()) {
      CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, vault_->DepartmentKeys(d.id));
      rd.keys = crypto::SerializeDepartmentKeys(keys);
      ++released;
    }
    ok.departments.push_back(std::move(rd));
  }
  CAIRN_ASSIGN_OR_RETURN(auto agents, catalog->ListAgents());
  for (const AgentRecord& a : agents) {
    if (a.department_id == 0) continue;  // replicators stay here
    ok.agents.push_back(
        {a.serial, a.department_id, a.host, a.enrolled_micros, a.revoked, a.revoked_micros});
  }
  if (released > 0) {
    spdlog::warn("replication set-up from {}: keys of {} department(s) escrowed to site {}",
                 replicator.Describe(), released, EscapeForLog(req.site));
    boost::json::array names;
    for (const auto& d : ok.departments) {
      if (!d.keys.empty()) names.emplace_back(d.name);
    }
    Audit(replicator, "keys.release", "", "escrow",
          {{"site", req.site}, {"departments", std::move(names)}});
  }
  return ok;
}

Result<proto::ReplicaSnapshots> VaultService::ReplicaList(const proto::ReplicaList& req) const {
  const Catalog& catalog = *vault_->catalog();
  const size_t limit = req.limit == 0 ? proto::kMaxSnapshotsPerList : req.limit;
  // The DR site holds every snapshot up to the one it asks after (the
  // protection status's off-site state).
  if (req.after > replica_served_after_.load()) replica_served_after_.store(req.after);
  replica_served_micros_.store(Now());
  CAIRN_ASSIGN_OR_RETURN(auto list, catalog.ListSnapshotsAfter(req.after, limit));
  proto::ReplicaSnapshots reply;
  CAIRN_ASSIGN_OR_RETURN(reply.latest, catalog.LatestSnapshotNumber());
  std::map<uint32_t, std::string> names;
  size_t budget = proto::kMaxControlPayload - 1024;
  for (const auto& s : list) {
    if (!names.contains(s.department_id)) {
      auto d = catalog.FindDepartment(s.department_id);
      names[s.department_id] = d.ok() ? d->name : "";
    }
    proto::ReplicaSnapshot r;
    r.department_id = s.department_id;
    r.department = names[s.department_id];
    r.info = ToSnapshotInfo(s);
    r.manifest_count = s.manifest_count;
    size_t size = 300 + s.host.size() + r.department.size();
    for (const auto& p : s.paths) size += 4 + p.size();
    if (size > budget) break;
    budget -= size;
    reply.snapshots.push_back(std::move(r));
  }
  return reply;
}

Result<proto::Manifest> VaultService::GetManifest(const proto::GetManifest& req) const {
  CAIRN_ASSIGN_OR_RETURN(auto manifest,
                         vault_->catalog()->Manifest(req.department_id, req.snapshot_id));
  proto::Manifest reply;
  reply.total = manifest.size();
  reply.offset = std::min<uint64_t>(req.offset, manifest.size());
  const uint64_t end =
      std::min<uint64_t>(manifest.size(), reply.offset + proto::kMaxManifestIdsPerPart);
  reply.ids.assign(manifest.begin() + static_cast<long>(reply.offset),
                   manifest.begin() + static_cast<long>(end));
  return reply;
}

Result<proto::RecordsPayload> VaultService::ReadReplicaRecords(
    const proto::GetReplicaRecords& req) const {
  // A pass asks in the order get_replica_order gave, pack by pack: read
  // each pack ahead whole the first time it is touched. Runs of large
  // records come back in several smaller replies, which both ends allocate
  // without the page faults of fresh 16 MiB buffers.
  return ReadRecords(req.department_id, req.ids, /*whole_packs=*/true, kReplicaReplyBytes);
}

Result<proto::ReplicaOrder> VaultService::ReadReplicaOrder(
    const proto::GetReplicaOrder& req) const {
  CAIRN_ASSIGN_OR_RETURN(std::vector<uint64_t> keys,
                         store()->ReadOrder(req.department_id, req.ids));
  if (const char* lie = std::getenv("CAIRN_TEST_LIE_IN_REPLICA_ORDER"); lie != nullptr) {
    LieAboutOrder(lie, &keys);
  }
  return proto::ReplicaOrder{std::move(keys)};
}

Status VaultService::ApplyReplicaSetup(proto::ReplicaSetupOk& ok) {
  Catalog* catalog = vault_->catalog();
  Status result;
  // Key escrow: each new department's keys, wrapped under this vault's
  // master key before anything else happens with them.
  for (auto& d : ok.departments) {
    if (!d.keys.empty() && result.ok()) {
      auto wrapped = vault_->WrapDepartmentKeys(d.keys);
      if (!wrapped.ok()) {
        result = wrapped.status().WithContext("department " + d.name + " keys");
      } else {
        auto imported = catalog->ImportDepartment(d.id, d.name, *wrapped, d.created_micros);
        if (!imported.ok()) {
          result = imported.status();
        } else {
          spdlog::info("department {} (id {}): keys escrowed from site {}", d.name, d.id, ok.site);
        }
      }
    }
    SecureZero(d.keys.data(), d.keys.size());
  }
  CAIRN_RETURN_IF_ERROR(result);
  // Agents and revocations: a revocation here is never undone by the source.
  for (const auto& a : ok.agents) {
    auto here = catalog->FindAgent(a.serial);
    if (here.ok() && here->revoked) continue;
    CAIRN_RETURN_IF_ERROR(catalog->AddAgent(
        {a.serial, a.department_id, a.host, a.enrolled_micros, a.revoked, a.revoked_micros}));
  }
  // The source is the root of trust of its agents: keep its CA and the
  // certificate it gave this vault, and become its DR copy.
  if (!ok.ca_pem.empty()) {
    const bool first = !IsReplica();
    if (!ok.server_cert_pem.empty()) {
      CAIRN_RETURN_IF_ERROR(vault_->pki().SaveReplicaTrust(ok.ca_pem, ok.server_cert_pem));
    }
    CAIRN_RETURN_IF_ERROR(catalog->PutSetting("replica_of", ok.site));
    if (first) {
      spdlog::info("this vault is now the DR copy of site {}; it refuses backups until promoted",
                   ok.site);
    }
  }
  if (!ok.vault_addresses.empty()) CAIRN_RETURN_IF_ERROR(SetAgentAddresses(ok.vault_addresses));
  return Status::OK();
}

Result<bool> VaultService::CommitReplica(const SnapshotRecord& snapshot,
                                         const std::vector<crypto::ChunkId>& manifest) {
  CommitTicket ticket(this);
  CAIRN_RETURN_IF_ERROR(CheckDurable(snapshot.department_id, ManifestOf(manifest))
                            .WithContext("snapshot " + snapshot.id));
  CAIRN_ASSIGN_OR_RETURN(bool committed, vault_->catalog()->CommitReplica(snapshot, manifest));
  if (committed) {
    Actor self;
    self.kind = Actor::Kind::kLocal;
    self.name = "replication";
    self.address = "local";
    Audit(self, "snapshot.replicate", DepartmentName(snapshot.department_id), snapshot.id,
          {{"host", snapshot.host}, {"chunks", manifest.size()}});
  }
  return committed;
}

}  // namespace cairn::vault
