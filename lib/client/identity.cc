#include "lib/client/identity.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <sstream>

#include "lib/base/errno.h"
#include "lib/io/env.h"

namespace cairn::client {
namespace {

Result<std::string> ReadText(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(Bytes b, io::ReadFileToBytes(io::Env::Posix(), path));
  return std::string(AsString(b));
}

}  // namespace

IdentityLock::~IdentityLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<IdentityLock> LockIdentity(const std::string& dir, std::string_view what) {
  const std::string path = IdentityPaths(dir).lock();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  IdentityLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoToStatus(errno, "lock " + path);
    char holder[128] = {};
    const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : std::string("?");
    while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
    return Status::InvalidArgument("another cairn-agent (" + who + ") is using " + dir +
                                   "; wait for it to finish, or stop it");
  }
  const std::string me = "pid " + std::to_string(::getpid()) + ", " + std::string(what) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, me.data(), me.size(), 0);
  return lock;
}

bool HoldsEnrollment(const std::string& dir) {
  struct stat st;
  return ::stat(IdentityPaths(dir).config().c_str(), &st) == 0;
}

Status CreateStateDir(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("--state is required");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), "create state directory " + dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir + " exists and is not a directory");
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoToStatus(errno, "chmod 0700 " + dir);
  return Status::OK();
}

Status WritePrivateFile(const std::string& path, ByteView data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "create " + tmp);
  Status s;
  if (::fchmod(fd, 0600) != 0) s = ErrnoToStatus(errno, "chmod " + tmp);
  size_t done = 0;
  while (s.ok() && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoToStatus(errno, "write " + tmp);
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoToStatus(errno, "fsync " + tmp);
  ::close(fd);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoToStatus(errno, "rename " + tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return io::Env::Posix()->SyncDir(io::ParentDir(path));
}

std::string FormatConfig(const IdentityConfig& config, std::string_view existing) {
  toml::table t;
  if (!existing.empty()) {
    try {
      t = toml::parse(existing);
    } catch (const toml::parse_error&) {
      t = toml::table();  // a damaged file is replaced whole
    }
  }
  toml::array addresses;
  for (const std::string& a : config.vault_addresses) addresses.push_back(a);
  t.insert_or_assign("format_version", config.format_version);
  t.insert_or_assign("vault_addresses", addresses);
  t.insert_or_assign("department", config.department);
  t.insert_or_assign("department_id", static_cast<int64_t>(config.department_id));
  t.insert_or_assign("host", config.host);
  std::ostringstream out;
  out << "# cairn client state; written by `cairn-agent enroll`.\n" << t << "\n";
  return out.str();
}

Result<IdentityConfig> ParseConfig(std::string_view text) {
  toml::table t;
  try {
    t = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return Status::Corruption("agent.toml: " + std::string(e.description()));
  }
  IdentityConfig c;
  auto version = t["format_version"].value<int64_t>();
  if (!version) return Status::Corruption("agent.toml: format_version missing");
  if (*version != kIdentityFormatVersion) {
    return Status::InvalidArgument("agent.toml: format version " + std::to_string(*version) +
                                   " is not supported by this cairn-agent");
  }
  c.format_version = static_cast<int>(*version);
  if (const toml::array* a = t["vault_addresses"].as_array()) {
    for (const auto& v : *a) {
      auto s = v.value<std::string>();
      if (!s) return Status::Corruption("agent.toml: vault_addresses holds a non-string");
      c.vault_addresses.push_back(*s);
    }
  }
  if (c.vault_addresses.empty()) return Status::Corruption("agent.toml: no vault_addresses");
  c.department = t["department"].value_or(std::string());
  auto id = t["department_id"].value<int64_t>();
  if (!id || *id < 0 || *id > UINT32_MAX) return Status::Corruption("agent.toml: department_id");
  c.department_id = static_cast<uint32_t>(*id);
  c.host = t["host"].value_or(std::string());
  return c;
}

Result<bool> AdoptVaultAddresses(Identity* identity, const std::vector<std::string>& advice) {
  if (advice.empty() || advice == identity->config.vault_addresses) return false;
  IdentityConfig updated = identity->config;
  updated.vault_addresses = advice;
  const std::string path = IdentityPaths(identity->dir).config();
  auto existing = ReadText(path);
  CAIRN_RETURN_IF_ERROR(WritePrivateFile(
      path, AsBytes(FormatConfig(updated, existing.ok() ? *existing : std::string()))));
  identity->config = std::move(updated);
  return true;
}

Status WriteEnrollment(const std::string& dir, const IdentityConfig& config,
                       std::string_view certificate_pem, std::string_view private_key_pem,
                       std::string_view ca_pem, ByteView department_keys) {
  IdentityPaths p(dir);
  CAIRN_RETURN_IF_ERROR(WritePrivateFile(p.private_key(), AsBytes(private_key_pem)));
  CAIRN_RETURN_IF_ERROR(WritePrivateFile(p.keys(), department_keys));
  CAIRN_RETURN_IF_ERROR(WritePrivateFile(p.certificate(), AsBytes(certificate_pem)));
  CAIRN_RETURN_IF_ERROR(WritePrivateFile(p.ca(), AsBytes(ca_pem)));
  return WritePrivateFile(p.config(), AsBytes(FormatConfig(config)));
}

Result<Identity> LoadIdentity(const std::string& dir, bool need_keys) {
  if (!HoldsEnrollment(dir)) {
    return Status::NotFound(dir +
                            " is not an enrolled agent state directory (run cairn-agent "
                            "enroll first)");
  }
  IdentityPaths p(dir);
  Identity s;
  s.dir = dir;
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadText(p.config()));
  CAIRN_ASSIGN_OR_RETURN(s.config, ParseConfig(text));
  CAIRN_ASSIGN_OR_RETURN(s.certificate_pem, ReadText(p.certificate()));
  CAIRN_ASSIGN_OR_RETURN(s.private_key_pem, ReadText(p.private_key()));
  CAIRN_ASSIGN_OR_RETURN(s.ca_pem, ReadText(p.ca()));
  if (!need_keys) return s;
  CAIRN_ASSIGN_OR_RETURN(Bytes keys, io::ReadFileToBytes(io::Env::Posix(), p.keys()));
  Result<crypto::DepartmentKeys> parsed = crypto::ParseDepartmentKeys(keys);
  SecureZero(keys.data(), keys.size());
  if (!parsed.ok()) return parsed.status().WithContext(p.keys());
  s.keys = std::move(parsed).value();
  return s;
}

}  // namespace cairn::client
