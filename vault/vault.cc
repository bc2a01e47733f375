#include "vault/vault.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "lib/base/errno.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "lib/io/env.h"
#include "lib/proto/token.h"

namespace cairn::vault {
namespace {

constexpr int kFormatVersion = 1;
constexpr std::string_view kMasterKeyMagic = "CAIRNMK1";
constexpr size_t kMasterKeyFileSize = 8 + 32 + 32;  // magic, key, SHA-256 of both
constexpr int kCaValidityDays = 3650;
constexpr int kVaultCertValidityDays = 825;

struct Paths {
  explicit Paths(const std::string& dir) : d(dir) {}
  std::string config() const { return d + "/vault.toml"; }
  std::string master_key() const { return d + "/master.key"; }
  std::string ca_cert() const { return d + "/ca/ca.pem"; }
  std::string ca_key() const { return d + "/ca/ca.key"; }
  std::string tls_cert() const { return d + "/tls/vault.pem"; }
  std::string tls_key() const { return d + "/tls/vault.key"; }
  std::string lmdb() const { return d + "/lmdb"; }
  std::string lock() const { return d + "/serve.lock"; }
  std::string replica_dir() const { return d + "/replica"; }
  std::string source_ca() const { return d + "/replica/source-ca.pem"; }
  std::string replica_server_cert() const { return d + "/replica/server.pem"; }
  std::string promotions() const { return d + "/promotions.log"; }
  std::string d;
};

uint64_t NowMicros() { return io::Env::Posix()->NowMicros(); }

Status WriteSecret(const std::string& path, ByteView data) {
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(io::Env::Posix(), path, data));
  if (::chmod(path.c_str(), 0600) != 0) return ErrnoToStatus(errno, "chmod " + path);
  return Status::OK();
}

Result<std::string> ReadText(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(Bytes b, io::ReadFileToBytes(io::Env::Posix(), path));
  return std::string(AsString(b));
}

Bytes EncodeMasterKey(const crypto::SecretKey& key) {
  Bytes out(kMasterKeyMagic.begin(), kMasterKeyMagic.end());
  out.insert(out.end(), key.view().begin(), key.view().end());
  auto sum = crypto::Sha256(out);
  out.insert(out.end(), sum.begin(), sum.end());
  return out;
}

Result<crypto::SecretKey> DecodeMasterKey(ByteView b, const std::string& path) {
  if (b.size() != kMasterKeyFileSize || AsString(b.subspan(0, 8)) != kMasterKeyMagic ||
      !crypto::ConstantTimeEqual(crypto::Sha256(b.subspan(0, 40)), b.subspan(40))) {
    return Status::Corruption(path + " is not a valid Cairn master key");
  }
  return crypto::SecretKey::FromBytes(b.subspan(8, 32));
}

std::string RandomPassword() {
  // 20 characters from a 56-symbol alphabet without look-alikes: ~116 bits.
  static constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  Bytes r(20);
  (void)crypto::SecureRandom(r);
  std::string out;
  for (uint8_t b : r) out += kAlphabet[b % (sizeof(kAlphabet) - 1)];
  return out;
}

}  // namespace

Result<InitResult> InitVault(const InitOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data is required");
  if (options.site.empty() || options.site.size() > 64) {
    return Status::InvalidArgument("--site must be 1 to 64 characters");
  }
  Paths p(options.data_dir);
  io::Env* env = io::Env::Posix();
  std::error_code ec;
  if (std::filesystem::exists(p.config(), ec) || std::filesystem::exists(p.master_key(), ec)) {
    return Status::InvalidArgument(options.data_dir +
                                   " already holds a vault; refusing to overwrite it");
  }
  if (std::filesystem::exists(options.data_dir, ec)) {
    if (!std::filesystem::is_directory(options.data_dir, ec)) {
      return Status::InvalidArgument(options.data_dir + " exists and is not a directory");
    }
    if (!std::filesystem::is_empty(options.data_dir, ec)) {
      return Status::InvalidArgument(options.data_dir +
                                     " is not empty; init needs a new or empty directory");
    }
  }
  CAIRN_RETURN_IF_ERROR(env->CreateDirs(options.data_dir).WithContext("create data directory"));
  if (::access(options.data_dir.c_str(), W_OK) != 0) {
    return ErrnoToStatus(errno, "data directory " + options.data_dir);
  }
  for (const char* sub : {"/ca", "/tls", "/packs"}) {
    CAIRN_RETURN_IF_ERROR(env->CreateDir(options.data_dir + sub));
  }

  // Keys and certificates first; the config file last, as the mark that
  // init completed (a crash before it leaves a directory init refuses only
  // if master.key exists, which an operator then removes by hand).
  CAIRN_ASSIGN_OR_RETURN(crypto::SecretKey master, crypto::SecretKey::Generate());
  CAIRN_ASSIGN_OR_RETURN(
      crypto::CaMaterial ca,
      crypto::CreateCa("Cairn vault CA (" + options.site + ")", kCaValidityDays));
  CAIRN_ASSIGN_OR_RETURN(crypto::KeyPairPem tls_key, crypto::GenerateKeyPair());
  std::vector<std::string> hosts = options.hosts;
  if (hosts.empty()) hosts = {"127.0.0.1", "::1", "localhost"};
  CAIRN_ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(tls_key.private_key_pem, hosts[0]));
  crypto::PeerIdentity id;
  id.role = std::string(crypto::kRoleVault);
  id.department = options.site;
  id.host = hosts[0];
  CAIRN_ASSIGN_OR_RETURN(
      std::string tls_cert,
      crypto::IssueCertificate(ca, csr, id, kVaultCertValidityDays,
                               std::vector<std::string>(hosts.begin() + 1, hosts.end())));
  CAIRN_ASSIGN_OR_RETURN(std::string fingerprint,
                         crypto::CertificateFingerprint(ca.certificate_pem));

  CAIRN_RETURN_IF_ERROR(WriteSecret(p.master_key(), EncodeMasterKey(master)));
  CAIRN_RETURN_IF_ERROR(WriteSecret(p.ca_key(), AsBytes(ca.private_key_pem)));
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.ca_cert(), AsBytes(ca.certificate_pem)));
  CAIRN_RETURN_IF_ERROR(WriteSecret(p.tls_key(), AsBytes(tls_key.private_key_pem)));
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.tls_cert(), AsBytes(tls_cert)));

  InitResult result;
  result.admin_user = "admin";
  result.admin_password = RandomPassword();
  result.ca_fingerprint = fingerprint;
  {
    CAIRN_ASSIGN_OR_RETURN(auto lmdb, repo::LmdbEnv::Open(p.lmdb(), {}));
    CAIRN_ASSIGN_OR_RETURN(auto catalog, Catalog::Open(lmdb.get()));
    CAIRN_ASSIGN_OR_RETURN(std::string hash, crypto::HashPassword(result.admin_password));
    CAIRN_RETURN_IF_ERROR(catalog->PutUser(result.admin_user, "admin", hash));
  }
  std::string config =
      "# Cairn vault; created by cairn-vault init\nformat = " + std::to_string(kFormatVersion) +
      "\nsite = \"" + options.site + "\"\n";
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.config(), AsBytes(config)));
  return result;
}

Vault::~Vault() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<Vault>> Vault::Open(const std::string& data_dir,
                                           const OpenOptions& options) {
  Paths p(data_dir);
  std::unique_ptr<Vault> v(new Vault());
  v->data_dir_ = data_dir;
  auto config_text = ReadText(p.config());
  if (!config_text.ok()) {
    if (config_text.status().IsNotFound()) {
      return Status::NotFound(data_dir +
                              " is not a Cairn vault (no vault.toml; run `cairn-vault init`)");
    }
    return config_text.status();
  }
  try {
    toml::table config = toml::parse(*config_text, p.config());
    int64_t format = config["format"].value_or<int64_t>(0);
    if (format != kFormatVersion) {
      return Status::InvalidArgument(p.config() + ": unsupported vault format " +
                                     std::to_string(format));
    }
    v->site_ = config["site"].value_or<std::string>("");
  } catch (const toml::parse_error& e) {
    return Status::Corruption(p.config() + ": " + std::string(e.description()));
  }
  CAIRN_ASSIGN_OR_RETURN(Bytes mk, io::ReadFileToBytes(io::Env::Posix(), p.master_key()));
  CAIRN_ASSIGN_OR_RETURN(v->master_key_, DecodeMasterKey(mk, p.master_key()));
  SecureZero(mk.data(), mk.size());
  CAIRN_ASSIGN_OR_RETURN(v->ca_.certificate_pem, ReadText(p.ca_cert()));
  CAIRN_ASSIGN_OR_RETURN(v->ca_.private_key_pem, ReadText(p.ca_key()));
  CAIRN_ASSIGN_OR_RETURN(v->ca_fingerprint_,
                         crypto::CertificateFingerprint(v->ca_.certificate_pem));
  CAIRN_ASSIGN_OR_RETURN(v->tls_cert_pem_, ReadText(p.tls_cert()));
  CAIRN_ASSIGN_OR_RETURN(v->tls_key_pem_, ReadText(p.tls_key()));
  v->trusted_ca_pem_ = v->ca_.certificate_pem;
  v->served_chain_pem_ = v->tls_cert_pem_ + v->ca_.certificate_pem;
  v->served_ca_pem_ = v->ca_.certificate_pem;
  if (io::Env::Posix()->FileExists(p.source_ca()) &&
      io::Env::Posix()->FileExists(p.replica_server_cert())) {
    CAIRN_ASSIGN_OR_RETURN(std::string source_ca, ReadText(p.source_ca()));
    CAIRN_ASSIGN_OR_RETURN(std::string server, ReadText(p.replica_server_cert()));
    v->trusted_ca_pem_ += source_ca;
    v->served_chain_pem_ = server + source_ca;
    v->served_ca_pem_ = source_ca;
    CAIRN_ASSIGN_OR_RETURN(v->ca_fingerprint_, crypto::CertificateFingerprint(source_ca));
  }

  if (options.serve) {
    v->lock_fd_ = ::open(p.lock().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (v->lock_fd_ < 0) return ErrnoToStatus(errno, "open " + p.lock());
    if (::flock(v->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Status::Unavailable("another cairn-vault serve is running on " + data_dir)
            .WithRetryable(false);
      }
      return ErrnoToStatus(errno, "lock " + p.lock());
    }
  }
  CAIRN_ASSIGN_OR_RETURN(v->lmdb_, repo::LmdbEnv::Open(p.lmdb(), {}));
  CAIRN_ASSIGN_OR_RETURN(v->catalog_, Catalog::Open(v->lmdb_.get()));
  if (options.serve) {
    ChunkStoreOptions so;
    so.data_dir = data_dir;
    so.pack_target_size = options.pack_target_size;
    CAIRN_ASSIGN_OR_RETURN(v->store_, ChunkStore::Open(so, v->lmdb_.get()));
  }
  return v;
}

Result<Department> Vault::CreateDepartment(std::string_view name) {
  CAIRN_RETURN_IF_ERROR(ValidateDepartmentName(name));
  CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, crypto::DepartmentKeys::Generate());
  Bytes plain = crypto::SerializeDepartmentKeys(keys);
  auto wrapped = crypto::WrapSecret(master_key_, plain);
  SecureZero(plain.data(), plain.size());
  if (!wrapped.ok()) return wrapped.status();
  return catalog_->CreateDepartment(name, *wrapped, NowMicros());
}

Result<crypto::DepartmentKeys> Vault::DepartmentKeys(uint32_t department_id) const {
  CAIRN_ASSIGN_OR_RETURN(Department d, catalog_->FindDepartment(department_id));
  CAIRN_ASSIGN_OR_RETURN(Bytes plain, crypto::UnwrapSecret(master_key_, d.wrapped_keys));
  auto keys = crypto::ParseDepartmentKeys(plain);
  SecureZero(plain.data(), plain.size());
  return keys;
}

Result<std::string> Vault::CreateEnrollmentToken(std::string_view department,
                                                 uint64_t ttl_seconds) {
  if (ttl_seconds == 0 || ttl_seconds > 30ull * 86400) {
    return Status::InvalidArgument("token lifetime must be between 1 second and 30 days");
  }
  CAIRN_ASSIGN_OR_RETURN(Department d, catalog_->FindDepartment(department));
  CAIRN_ASSIGN_OR_RETURN(std::string t,
                         catalog_->CreateToken(d.id, NowMicros(), ttl_seconds * 1'000'000));
  return proto::FormatEnrollmentToken(ca_fingerprint_, t);
}

Status Vault::SaveReplicaTrust(std::string_view source_ca_pem, std::string_view server_cert_pem) {
  Paths p(data_dir_);
  CAIRN_RETURN_IF_ERROR(crypto::CertificateFingerprint(source_ca_pem).status());
  CAIRN_RETURN_IF_ERROR(crypto::ParseIdentity(server_cert_pem).status());
  io::Env* env = io::Env::Posix();
  if (!env->FileExists(p.replica_dir())) CAIRN_RETURN_IF_ERROR(env->CreateDir(p.replica_dir()));
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.source_ca(), AsBytes(source_ca_pem)));
  return io::WriteFileAtomically(env, p.replica_server_cert(), AsBytes(server_cert_pem));
}

Result<Bytes> Vault::WrapDepartmentKeys(ByteView raw_keys) const {
  CAIRN_RETURN_IF_ERROR(crypto::ParseDepartmentKeys(raw_keys).status());
  return crypto::WrapSecret(master_key_, raw_keys);
}

std::vector<std::string> Vault::AgentAddresses() const {
  std::vector<std::string> out;
  auto v = catalog_->GetSetting("agent_addresses");
  if (!v.ok()) return out;
  size_t start = 0;
  while (start < v->size()) {
    size_t nl = v->find('\n', start);
    if (nl == std::string::npos) nl = v->size();
    if (nl > start) out.push_back(v->substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

Status Vault::SetAgentAddresses(const std::vector<std::string>& addresses) {
  std::string joined;
  for (const auto& a : addresses) joined += a + "\n";
  return catalog_->PutSetting("agent_addresses", joined);
}

bool Vault::IsReplica() const { return catalog_->GetSetting("replica_of").ok(); }
bool Vault::IsPromoted() const { return catalog_->GetSetting("promoted").ok(); }

namespace {

// Appends "<micros>\t<what> by <by> on <host>[: reason]" to DIR/promotions.log
// (fsynced) and returns the line.
Result<std::string> LogFailover(const std::string& path, std::string_view what, std::string_view by,
                                std::string_view reason) {
  if (by.empty()) return Status::InvalidArgument("--by is required: who decides this");
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "unknown");
  std::string line = std::to_string(NowMicros()) + "\t" + std::string(what) + " by " +
                     std::string(by) + " on " + host +
                     (reason.empty() ? std::string() : ": " + std::string(reason)) + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!written) return ErrnoToStatus(err, "write " + path);
  return line;
}

}  // namespace

Status Vault::Demote(std::string_view by, std::string_view reason) {
  CAIRN_ASSIGN_OR_RETURN(std::string line,
                         LogFailover(Paths(data_dir_).promotions(), "demoted", by, reason));
  return catalog_->DeleteSetting("promoted");
}

Status Vault::Promote(std::string_view by, std::string_view reason) {
  // The log first: a promotion that took effect is always in it.
  CAIRN_ASSIGN_OR_RETURN(std::string line,
                         LogFailover(Paths(data_dir_).promotions(), "promoted", by, reason));
  return catalog_->PutSetting("promoted", line);
}

Result<std::string> Vault::CreateReplicatorToken(uint64_t ttl_seconds) {
  if (ttl_seconds == 0 || ttl_seconds > 30ull * 86400) {
    return Status::InvalidArgument("token lifetime must be between 1 second and 30 days");
  }
  CAIRN_ASSIGN_OR_RETURN(
      std::string t, catalog_->CreateToken(kReplicatorToken, NowMicros(), ttl_seconds * 1'000'000));
  return proto::FormatEnrollmentToken(ca_fingerprint_, t);
}

Status Vault::CheckPassword(std::string_view user, std::string_view password) const {
  auto u = catalog_->FindUser(user);
  if (!u.ok()) {
    // Same work and answer as a wrong password: no user enumeration.
    (void)crypto::VerifyPassword(password, "scrypt$15$8$1$00$00");
    return Status::PermissionDenied("wrong user name or password");
  }
  CAIRN_ASSIGN_OR_RETURN(bool ok, crypto::VerifyPassword(password, u->second));
  if (!ok) return Status::PermissionDenied("wrong user name or password");
  return Status::OK();
}

}  // namespace cairn::vault
