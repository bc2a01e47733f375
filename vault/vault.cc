#include "vault/vault.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <filesystem>
#include <sstream>

#include "lib/base/errno.h"
#include "lib/base/names.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/random.h"
#include "lib/io/uring_env.h"
#include "vault/config.h"

namespace cairn::vault {
namespace {

constexpr std::string_view kMasterKeyMagic = "CAIRNMK1";
constexpr size_t kMasterKeyFileSize = 8 + 32 + 32;  // magic, key, SHA-256 of both

struct Paths {
  explicit Paths(const std::string& dir) : d(dir) {}
  std::string config() const { return d + "/vault.toml"; }
  std::string master_key() const { return d + "/master.key"; }
  std::string lmdb() const { return d + "/lmdb"; }
  std::string packs() const { return d + "/packs"; }
  std::string lock() const { return d + "/serve.lock"; }
  std::string d;
};

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

// vault.toml, written through toml++ so that any site name is quoted right.
std::string FormatVaultConfig(std::string_view site, const RadosStoreOptions& rados) {
  toml::table t{{"format", kVaultFormatVersion}, {"site", std::string(site)}};
  if (!rados.pool.empty()) {
    t.insert("pack_store", toml::table{{"kind", "rados"},
                                       {"pool", rados.pool},
                                       {"ceph_conf", rados.ceph_conf},
                                       {"ceph_user", rados.user},
                                       {"namespace_prefix", rados.prefix}});
  }
  std::ostringstream out;
  out << "# Cairn vault; created by cairn-vault init\n" << t << "\n";
  return out.str();
}

}  // namespace

Result<InitResult> InitVault(const InitOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data is required");
  CAIRN_RETURN_IF_ERROR(ValidateName("site", options.site));
  Paths p(options.data_dir);
  io::Env* env = options.env != nullptr ? options.env : io::Env::Posix();
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
  // A pool: reached, and this vault's namespace prefix chosen, before
  // anything is written.
  RadosStoreOptions rados = options.rados;
  if (!rados.pool.empty()) {
    Bytes nonce(4);
    env->FillRandom(nonce);
    rados.prefix = "v-" + ToHex(nonce) + "/";
    CAIRN_RETURN_IF_ERROR(OpenRadosPackStore(rados).status());
  }
  CAIRN_RETURN_IF_ERROR(env->CreateDirs(options.data_dir).WithContext("create data directory"));
  if (::access(options.data_dir.c_str(), W_OK) != 0) {
    return ErrnoToStatus(errno, "data directory " + options.data_dir);
  }
  CAIRN_RETURN_IF_ERROR(env->CreateDir(p.packs()));

  // Keys and certificates first; the config file last, as the mark that
  // init completed (a crash before it leaves a directory init refuses only
  // if master.key exists, which an operator then removes by hand).
  CAIRN_ASSIGN_OR_RETURN(crypto::SecretKey master, crypto::SecretKey::Generate());
  std::vector<std::string> hosts = options.hosts;
  if (hosts.empty()) hosts = {"127.0.0.1", "::1", "localhost"};
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.master_key(), EncodeMasterKey(master)));
  if (::chmod(p.master_key().c_str(), 0600) != 0) {
    return ErrnoToStatus(errno, "chmod " + p.master_key());
  }
  CAIRN_RETURN_IF_ERROR(CertificateAuthority::Create(env, options.data_dir, options.site, hosts));
  CAIRN_ASSIGN_OR_RETURN(auto pki, CertificateAuthority::Load(env, options.data_dir));

  InitResult result;
  result.admin_user = "admin";
  CAIRN_ASSIGN_OR_RETURN(result.admin_password, crypto::RandomPassword());
  result.ca_fingerprint = pki->pinned_fingerprint();
  result.pack_store =
      rados.pool.empty() ? "local:" + p.packs() : "rados:" + rados.pool + "/" + rados.prefix;
  CAIRN_RETURN_IF_ERROR(AuditLog::Create(env, options.data_dir));
  {
    CAIRN_ASSIGN_OR_RETURN(auto lmdb, repo::LmdbEnv::Open(p.lmdb(), {}));
    CAIRN_ASSIGN_OR_RETURN(auto catalog, Catalog::Open(lmdb.get()));
    CAIRN_ASSIGN_OR_RETURN(std::string hash, crypto::HashPassword(result.admin_password));
    CAIRN_RETURN_IF_ERROR(catalog->PutUser(result.admin_user, "admin", hash));
    CAIRN_ASSIGN_OR_RETURN(auto audit, AuditLog::Open(env, options.data_dir, catalog.get()));
    CAIRN_RETURN_IF_ERROR(
        audit->Append(options.actor, "local", "vault.init", "", options.site,
                      boost::json::object{{"hosts", boost::json::array(hosts.begin(), hosts.end())},
                                          {"ca_fingerprint", result.ca_fingerprint},
                                          {"first_admin", result.admin_user}}));
  }
  CAIRN_RETURN_IF_ERROR(
      io::WriteFileAtomically(env, p.config(), AsBytes(FormatVaultConfig(options.site, rados))));
  return result;
}

Vault::~Vault() {
  store_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<std::unique_ptr<Vault>> Vault::Open(const std::string& data_dir,
                                           const OpenOptions& options) {
  Paths p(data_dir);
  std::unique_ptr<Vault> v(new Vault());
  v->data_dir_ = data_dir;
  v->env_ = options.env != nullptr ? options.env : io::Env::Posix();
  io::Env* env = v->env_;
  auto config_bytes = io::ReadFileToBytes(env, p.config());
  if (!config_bytes.ok()) {
    if (config_bytes.status().IsNotFound()) {
      return Status::NotFound(data_dir +
                              " is not a Cairn vault (no vault.toml; run `cairn-vault init`)");
    }
    return config_bytes.status();
  }
  try {
    toml::table config = toml::parse(AsString(*config_bytes), p.config());
    int64_t format = config["format"].value_or<int64_t>(0);
    if (format > kVaultFormatVersion) {
      return Status::InvalidArgument(
          data_dir + " was written by a newer Cairn (data format " + std::to_string(format) +
          "; this build reads format " + std::to_string(kVaultFormatVersion) +
          "): upgrade cairn-vault, or restore the data directory from before the upgrade");
    }
    if (format < 1) {
      return Status::Corruption(p.config() + ": no valid `format` (" + std::to_string(format) +
                                ")");
    }
    v->site_ = config["site"].value_or<std::string>("");
  } catch (const toml::parse_error& e) {
    return Status::Corruption(p.config() + " line " + std::to_string(e.source().begin.line) + ": " +
                              std::string(e.description()));
  }
  CAIRN_ASSIGN_OR_RETURN(VaultConfig config, ParseConfig(AsString(*config_bytes), p.config()));
  CAIRN_ASSIGN_OR_RETURN(Bytes mk, io::ReadFileToBytes(env, p.master_key()));
  CAIRN_ASSIGN_OR_RETURN(v->master_key_, DecodeMasterKey(mk, p.master_key()));
  SecureZero(mk.data(), mk.size());
  CAIRN_ASSIGN_OR_RETURN(v->pki_, CertificateAuthority::Load(env, data_dir));

  if (options.serve) {
    v->lock_fd_ = ::open(p.lock().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (v->lock_fd_ < 0) return ErrnoToStatus(errno, "open " + p.lock());
    if (::flock(v->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Status::Unavailable(
                   "another cairn-vault serve (or cairn-replicator run) is "
                   "using " +
                   data_dir)
            .WithRetryable(false);
      }
      return ErrnoToStatus(errno, "lock " + p.lock());
    }
  }
  CAIRN_ASSIGN_OR_RETURN(v->lmdb_, repo::LmdbEnv::Open(p.lmdb(), {}));
  CAIRN_ASSIGN_OR_RETURN(v->catalog_, Catalog::Open(v->lmdb_.get()));
  CAIRN_ASSIGN_OR_RETURN(v->audit_, AuditLog::Open(env, data_dir, v->catalog_.get()));
  if (options.serve) {
    if (config.pack_store.kind == "rados") {
      RadosStoreOptions ro;
      ro.pool = config.pack_store.pool;
      ro.ceph_conf = config.pack_store.ceph_conf;
      ro.user = config.pack_store.ceph_user;
      ro.prefix = config.pack_store.namespace_prefix;
      if (config.pack_store.op_timeout_seconds > 0) {
        ro.op_timeout = std::chrono::seconds(config.pack_store.op_timeout_seconds);
      }
      CAIRN_ASSIGN_OR_RETURN(v->packs_, OpenRadosPackStore(ro));
    } else {
      io::Env* pack_env = options.pack_env != nullptr ? options.pack_env : io::UringEnv::Default();
      CAIRN_ASSIGN_OR_RETURN(v->packs_, OpenLocalPackStore(pack_env, p.packs()));
    }
    ChunkStoreOptions so;
    so.packs = v->packs_.get();
    so.pack_target_size = options.pack_target_size;
    CAIRN_ASSIGN_OR_RETURN(v->store_, ChunkStore::Open(so, v->lmdb_.get()));
  }
  return v;
}

Status Vault::ReloadPki() {
  CAIRN_ASSIGN_OR_RETURN(pki_, CertificateAuthority::Load(env_, data_dir_));
  return Status::OK();
}

Result<Bytes> Vault::NewWrappedDepartmentKeys() const {
  CAIRN_ASSIGN_OR_RETURN(crypto::DepartmentKeys keys, crypto::DepartmentKeys::Generate());
  Bytes plain = crypto::SerializeDepartmentKeys(keys);
  auto wrapped = crypto::WrapSecret(master_key_, plain);
  SecureZero(plain.data(), plain.size());
  return wrapped;
}

Result<crypto::DepartmentKeys> Vault::DepartmentKeys(uint32_t department_id) const {
  CAIRN_ASSIGN_OR_RETURN(Department d, catalog_->FindDepartment(department_id));
  CAIRN_ASSIGN_OR_RETURN(Bytes plain, crypto::UnwrapSecret(master_key_, d.wrapped_keys));
  auto keys = crypto::ParseDepartmentKeys(plain);
  SecureZero(plain.data(), plain.size());
  return keys;
}

Result<Bytes> Vault::WrapDepartmentKeys(ByteView raw_keys) const {
  CAIRN_RETURN_IF_ERROR(crypto::ParseDepartmentKeys(raw_keys).status());
  return crypto::WrapSecret(master_key_, raw_keys);
}

}  // namespace cairn::vault
