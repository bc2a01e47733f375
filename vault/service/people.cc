// VaultService: people, roles, logins and API tokens (doc/design.md
// section 18).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "lib/base/names.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "vault/service/vault_service.h"

namespace cairn::vault {
namespace {

constexpr size_t kMinPasswordLength = 12;
// Failed logins allowed before the back-off starts, and its ceiling.
constexpr int kFreeFailures = 3;
constexpr uint64_t kMaxBackoffMicros = 300'000'000;  // 5 min
constexpr std::string_view kApiTokenPrefix = "cairn-api-";

bool IsRole(std::string_view role) {
  return role == "admin" || role == "operator" || role == "dr" || role == "auditor";
}

std::string_view PermissionName(Permission p) {
  switch (p) {
    case Permission::kReadState:
      return "read the vault's state";
    case Permission::kManageDepartments:
      return "create departments";
    case Permission::kEnrol:
      return "create enrolment tokens";
    case Permission::kRevoke:
      return "revoke agents";
    case Permission::kRunJobs:
      return "start backups";
    case Permission::kRestore:
      return "read a department's data";
    case Permission::kFailover:
      return "promote or demote a vault";
    case Permission::kReadAudit:
      return "read the audit trail";
    case Permission::kReadUsers:
      return "list users";
    case Permission::kManageUsers:
      return "manage users";
    case Permission::kManagePolicies:
      return "manage protection policies";
    case Permission::kManageSources:
      return "assign policies to sources";
    case Permission::kForget:
      return "forget snapshots";
    case Permission::kMaintainStorage:
      return "run garbage collection, compaction, scrub and repair";
  }
  return "do that";
}

// The roles that hold a permission (operators only within their scope).
bool RoleMay(std::string_view role, Permission p) {
  if (role == "admin") return true;
  switch (p) {
    case Permission::kReadState:
      return true;
    case Permission::kEnrol:
    case Permission::kRevoke:
    case Permission::kRunJobs:
    case Permission::kManagePolicies:
    case Permission::kManageSources:
    case Permission::kForget:
      return role == "operator";
    case Permission::kRestore:
      return role == "operator" || role == "dr";
    case Permission::kFailover:
      return role == "dr";
    case Permission::kReadAudit:
    case Permission::kReadUsers:
      return role == "auditor";
    case Permission::kManageDepartments:
    case Permission::kManageUsers:
    case Permission::kMaintainStorage:
      return false;
  }
  return false;
}

}  // namespace

bool VaultService::InScope(const Actor& actor, std::string_view department) const {
  if (actor.kind != Actor::Kind::kUser || actor.role != "operator") return true;
  return std::find(actor.departments.begin(), actor.departments.end(), department) !=
         actor.departments.end();
}

Status VaultService::Authorize(const Actor& actor, Permission what,
                               std::string_view department) const {
  if (actor.kind == Actor::Kind::kLocal) return Status::OK();  // a shell on the vault host
  // The vault's own rules at work (retention, alerts). Locks still hold:
  // they are checked where a snapshot is forgotten, for every actor.
  if (actor.kind == Actor::Kind::kVault) return Status::OK();
  if (actor.kind != Actor::Kind::kUser) {
    return Status::PermissionDenied("only people may " + std::string(PermissionName(what)));
  }
  if (!RoleMay(actor.role, what)) {
    return Status::PermissionDenied("the " + actor.role + " role may not " +
                                    std::string(PermissionName(what)));
  }
  if (!department.empty() && !InScope(actor, department)) {
    // Outside an operator's scope a department does not exist: no probing.
    return Status::NotFound("no department " + std::string(department));
  }
  return Status::OK();
}

Result<std::string> VaultService::CreateUser(const Actor& actor, std::string_view name,
                                             std::string_view role,
                                             const std::vector<std::string>& departments,
                                             std::optional<std::string> password) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  CAIRN_RETURN_IF_ERROR(ValidateName("user", name));
  if (!IsRole(role)) {
    return Status::InvalidArgument("role '" + EscapeForLog(role) +
                                   "' is not one of admin, operator, dr, auditor");
  }
  if (role == "operator" && departments.empty()) {
    return Status::InvalidArgument("an operator needs at least one --department");
  }
  if (role != "operator" && !departments.empty()) {
    return Status::InvalidArgument("only operators are scoped to departments (the " +
                                   std::string(role) + " role sees them all)");
  }
  for (const auto& d : departments) {
    CAIRN_RETURN_IF_ERROR(vault_->catalog()->FindDepartment(d).status());
  }
  std::string secret;
  if (password) {
    secret = *password;
  } else {
    CAIRN_ASSIGN_OR_RETURN(secret, crypto::RandomPassword());
  }
  if (secret.size() < kMinPasswordLength) {
    return Status::InvalidArgument("a password needs at least " +
                                   std::to_string(kMinPasswordLength) + " characters");
  }
  UserRecord u;
  u.name = std::string(name);
  u.role = std::string(role);
  u.departments = departments;
  CAIRN_ASSIGN_OR_RETURN(u.password_hash, crypto::HashPassword(secret));
  u.created_micros = Now();
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->CreateUser(u));
  Audit(actor, "user.create", "", u.name,
        {{"role", u.role},
         {"departments", boost::json::array(departments.begin(), departments.end())}});
  return secret;
}

Result<std::vector<UserRecord>> VaultService::ListUsers(const Actor& actor) const {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kReadUsers));
  CAIRN_ASSIGN_OR_RETURN(auto users, vault_->catalog()->ListUsers());
  for (auto& u : users) u.password_hash.clear();
  return users;
}

Status VaultService::SetUserDisabled(const Actor& actor, std::string_view name, bool disabled) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  CAIRN_ASSIGN_OR_RETURN(UserRecord u, vault_->catalog()->FindUser(name));
  if (disabled && u.role == "admin" && !u.disabled) {
    CAIRN_ASSIGN_OR_RETURN(auto all, vault_->catalog()->ListUsers());
    const auto admins = std::count_if(all.begin(), all.end(), [](const UserRecord& x) {
      return x.role == "admin" && !x.disabled;
    });
    if (admins <= 1) {
      return Status::InvalidArgument("user " + u.name +
                                     " is the last enabled admin; create another first");
    }
  }
  u.disabled = disabled;
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutUser(u));
  Audit(actor, disabled ? "user.disable" : "user.enable", "", u.name);
  return Status::OK();
}

Status VaultService::SetPassword(const Actor& actor, std::string_view name,
                                 std::string_view password) {
  const bool self = actor.kind == Actor::Kind::kUser && actor.name == name;
  if (!self) CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  if (password.size() < kMinPasswordLength) {
    return Status::InvalidArgument("a password needs at least " +
                                   std::to_string(kMinPasswordLength) + " characters");
  }
  CAIRN_ASSIGN_OR_RETURN(UserRecord u, vault_->catalog()->FindUser(name));
  CAIRN_ASSIGN_OR_RETURN(u.password_hash, crypto::HashPassword(password));
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutUser(u));
  Audit(actor, "user.password", "", u.name);
  return Status::OK();
}

namespace {
// "10.0.0.5:41000" -> "10.0.0.5", "[::1]:443" -> "::1": throttling is per
// host, not per connection.
std::string HostOf(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    size_t end = address.find(']');
    if (end != std::string_view::npos) return std::string(address.substr(1, end - 1));
  }
  size_t colon = address.rfind(':');
  if (colon != std::string_view::npos && address.find(':') == colon) {
    return std::string(address.substr(0, colon));
  }
  return std::string(address);
}
}  // namespace

Status VaultService::CheckThrottle(std::string_view account, std::string_view address) const {
  std::lock_guard<std::mutex> lock(login_mu_);
  const uint64_t now = Now();
  uint64_t wait = 0;
  for (const std::string& key : {"user:" + std::string(account), "addr:" + HostOf(address)}) {
    auto it = login_failures_.find(key);
    if (it != login_failures_.end() && it->second.next_allowed_micros > now) {
      wait = std::max(wait, it->second.next_allowed_micros - now);
    }
  }
  if (wait == 0) return Status::OK();
  return Status::Unavailable("too many failed logins; try again in " +
                             std::to_string((wait + 999'999) / 1'000'000) + " s");
}

void VaultService::NoteLoginFailure(const std::string& account, const std::string& address_in) {
  const std::string address = HostOf(address_in);
  std::lock_guard<std::mutex> lock(login_mu_);
  const uint64_t now = Now();
  for (const std::string& key : {"user:" + account, "addr:" + address}) {
    Failures& f = login_failures_[key];
    ++f.count;
    if (f.count >= kFreeFailures) {
      const int doublings = std::min(f.count - kFreeFailures, 20);
      f.next_allowed_micros =
          now + std::min<uint64_t>(kMaxBackoffMicros, uint64_t{1'000'000} << doublings);
    }
  }
  // Bounded memory whatever an attacker tries: past the bound, forget the
  // entries whose back-off has ended, then the ones that end soonest.
  if (login_failures_.size() > 100000) {
    std::erase_if(login_failures_,
                  [&](const auto& e) { return e.second.next_allowed_micros <= now; });
    while (login_failures_.size() > 100000) {
      auto soonest = std::min_element(
          login_failures_.begin(), login_failures_.end(), [](const auto& a, const auto& b) {
            return a.second.next_allowed_micros < b.second.next_allowed_micros;
          });
      login_failures_.erase(soonest);
    }
  }
}

Result<Actor> VaultService::Login(std::string_view name, std::string_view password,
                                  std::string_view address) {
  Actor who;
  who.kind = Actor::Kind::kAnonymous;
  who.address = std::string(address);
  const std::string account(name.substr(0, 256));
  if (Status t = CheckThrottle(account, address); !t.ok()) {
    Audit(who, "user.login_failed", "", account, {{"reason", "throttled"}});
    return t;
  }
  auto u = vault_->catalog()->FindUser(account);
  bool good = false;
  if (u.ok() && !u->password_hash.empty()) {
    auto v = crypto::VerifyPassword(password, u->password_hash);
    good = v.ok() && *v;
  } else {
    // Same work and answer as a wrong password: no account enumeration.
    // The dummy is a real hash (made once), so that scrypt runs.
    static const std::string dummy = [] {
      auto h = crypto::HashPassword("cairn-no-such-account");
      return h.ok() ? *h : std::string();
    }();
    (void)crypto::VerifyPassword(password, dummy);
  }
  if (!good || u->disabled) {
    NoteLoginFailure(account, std::string(address));
    const char* reason = !u.ok() ? "unknown user" : !good ? "wrong password" : "account disabled";
    Audit(who, "user.login_failed", "", account, {{"reason", reason}});
    spdlog::warn("failed login for {} from {}: {}", EscapeForLog(account), address, reason);
    if (good) return Status::PermissionDenied("account " + account + " is disabled");
    return Status::PermissionDenied("wrong user name or password");
  }
  {
    std::lock_guard<std::mutex> lock(login_mu_);
    login_failures_.erase("user:" + account);
    login_failures_.erase("addr:" + HostOf(address));
  }
  CAIRN_ASSIGN_OR_RETURN(Actor actor, UserActor(account, address));
  Audit(actor, "user.login", "", account);
  return actor;
}

Result<Actor> VaultService::CertificateLogin(const PersonCertificate& cert,
                                             std::string_view address) {
  Actor who;
  who.kind = Actor::Kind::kAnonymous;
  who.address = std::string(address);
  const std::string account(cert.cn.substr(0, 256));
  const bool own_ca = cert.root_fingerprint == vault_->pki().ca_fingerprint();
  auto refuse = [&](const std::string& reason) -> Status {
    NoteLoginFailure(account, std::string(address));
    Audit(who, "user.login_failed", "", account,
          {{"reason", reason}, {"method", "certificate"}, {"issuer", cert.root_fingerprint}});
    spdlog::warn("failed certificate login for {} from {}: {}", EscapeForLog(account), address,
                 reason);
    return Status::PermissionDenied("certificate login refused: " + reason);
  };
  // The vault's CA also signs agents' certificates: only one made for a
  // person (`cairn-vault user cert`) names an account. An imported CA is the
  // city's person CA: its certificates name accounts by CN.
  if (own_ca && cert.ou != crypto::kRolePerson) {
    return refuse("a certificate of role '" + EscapeForLog(cert.ou) + "' is not a person's");
  }
  auto actor = UserActor(account, address);
  if (!actor.ok()) return refuse("no enabled account " + EscapeForLog(account));
  Audit(*actor, "user.login", "", account,
        {{"method", "certificate"}, {"issuer", own_ca ? "vault CA" : "imported CA"}});
  return actor;
}

Result<std::string> VaultService::IssuePersonCertificate(const Actor& actor, std::string_view user,
                                                         std::string_view csr_pem,
                                                         int validity_days) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  CAIRN_ASSIGN_OR_RETURN(UserRecord u, vault_->catalog()->FindUser(user));
  if (u.disabled) return Status::InvalidArgument("account " + u.name + " is disabled");
  CAIRN_ASSIGN_OR_RETURN(std::string pem,
                         vault_->pki().IssuePerson(csr_pem, u.name, validity_days));
  CAIRN_ASSIGN_OR_RETURN(crypto::PeerIdentity id, crypto::ParseIdentity(pem));
  Audit(actor, "user.certificate", "", u.name,
        {{"serial", id.serial_hex}, {"days", validity_days}});
  return pem;
}

Status VaultService::ImportPersonCa(const Actor& actor, std::string_view pem) {
  CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  CAIRN_ASSIGN_OR_RETURN(std::string fingerprint, crypto::CertificateFingerprint(pem));
  if (fingerprint == vault_->pki().ca_fingerprint()) {
    return Status::InvalidArgument("that is the vault's own CA; it is trusted already");
  }
  CAIRN_RETURN_IF_ERROR(vault_->mutable_pki()->ImportPersonCa(pem));
  Audit(actor, "ca.import", "", fingerprint, {{"purpose", "people's certificates"}});
  return Status::OK();
}

Result<Actor> VaultService::UserActor(std::string_view name, std::string_view address) const {
  auto u = vault_->catalog()->FindUser(name);
  if (!u.ok() || u->disabled) {
    return Status::PermissionDenied("account " + std::string(name) + " is disabled or gone");
  }
  Actor a;
  a.kind = Actor::Kind::kUser;
  a.name = u->name;
  a.role = u->role;
  a.departments = u->departments;
  a.address = std::string(address);
  return a;
}

Result<std::string> VaultService::CreateApiToken(const Actor& actor, std::string_view user,
                                                 std::string_view label) {
  const bool self = actor.kind == Actor::Kind::kUser && actor.name == user;
  if (!self) CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  CAIRN_ASSIGN_OR_RETURN(UserRecord u, vault_->catalog()->FindUser(user));
  if (u.disabled) return Status::InvalidArgument("account " + u.name + " is disabled");
  Bytes id(8), secret(24);
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(id));
  CAIRN_RETURN_IF_ERROR(crypto::SecureRandom(secret));
  ApiTokenRecord t;
  t.id = ToHex(id);
  t.user = u.name;
  t.label = std::string(label.substr(0, 200));
  auto digest = crypto::Sha256(secret);
  t.secret_hash.assign(digest.begin(), digest.end());
  t.created_micros = Now();
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutApiToken(t));
  Audit(actor, "user.token_create", "", u.name, {{"token", t.id}, {"label", t.label}});
  std::string token = std::string(kApiTokenPrefix) + t.id + "." + ToHex(secret);
  SecureZero(secret.data(), secret.size());
  return token;
}

Status VaultService::RevokeApiToken(const Actor& actor, std::string_view id) {
  CAIRN_ASSIGN_OR_RETURN(ApiTokenRecord t, vault_->catalog()->FindApiToken(id));
  const bool own = actor.kind == Actor::Kind::kUser && actor.name == t.user;
  if (!own) CAIRN_RETURN_IF_ERROR(Authorize(actor, Permission::kManageUsers));
  t.revoked = true;
  CAIRN_RETURN_IF_ERROR(vault_->catalog()->PutApiToken(t));
  Audit(actor, "user.token_revoke", "", t.user, {{"token", t.id}});
  return Status::OK();
}

Result<std::vector<ApiTokenRecord>> VaultService::ListApiTokens(const Actor& actor) const {
  CAIRN_ASSIGN_OR_RETURN(auto all, vault_->catalog()->ListApiTokens());
  const bool everyone = Authorize(actor, Permission::kReadUsers).ok();
  std::vector<ApiTokenRecord> out;
  for (auto& t : all) {
    if (everyone || (actor.kind == Actor::Kind::kUser && t.user == actor.name)) {
      t.secret_hash.clear();
      out.push_back(std::move(t));
    }
  }
  return out;
}

Result<Actor> VaultService::AuthenticateToken(std::string_view token,
                                              std::string_view address) const {
  const Status refused = Status::PermissionDenied("the API token is unknown or revoked");
  if (!token.starts_with(kApiTokenPrefix)) return refused;
  token.remove_prefix(kApiTokenPrefix.size());
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos) return refused;
  auto secret = FromHex(token.substr(dot + 1));
  if (!secret.ok()) return refused;
  auto t = vault_->catalog()->FindApiToken(token.substr(0, dot));
  if (!t.ok() || t->revoked) return refused;
  if (!crypto::ConstantTimeEqual(crypto::Sha256(*secret), t->secret_hash)) return refused;
  return UserActor(t->user, address);
}

}  // namespace cairn::vault
