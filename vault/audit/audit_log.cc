#include "vault/audit/audit_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <fstream>

#include "lib/base/cli.h"
#include "lib/base/errno.h"
#include "lib/base/json_escape.h"
#include "lib/crypto/hash.h"
#include "lib/crypto/pki.h"

namespace cairn::vault {
namespace {

constexpr std::string_view kHashMarker = ",\"hash\":\"";
constexpr std::string_view kCheckpointAction = "audit.checkpoint";
const std::string kZeroHash(64, '0');

struct Paths {
  explicit Paths(const std::string& d) : dir(d + "/audit") {}
  std::string log() const { return dir + "/log"; }
  std::string key() const { return dir + "/signing.key"; }
  std::string pub() const { return dir + "/signing.pub"; }
  std::string dir;
};

void AddString(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":\"";
  AppendJsonEscaped(out, value);
  out += '"';
}

// The line of an entry without its hash (the bytes the hash covers).
std::string Body(const AuditEntry& e) {
  std::string out = "{\"seq\":" + std::to_string(e.seq);
  AddString(out, "time", cli::Rfc3339(e.time_micros));
  out += ",\"time_micros\":" + std::to_string(e.time_micros);
  AddString(out, "actor", e.actor);
  AddString(out, "address", e.address);
  AddString(out, "action", e.action);
  AddString(out, "department", e.department);
  AddString(out, "object", e.object);
  out += ",\"details\":" + cli::ToJson(e.details);
  AddString(out, "prev", e.prev);
  return out;
}

std::string HexHash(std::string_view bytes) { return ToHex(crypto::Sha256(AsBytes(bytes))); }

// What a checkpoint signs: a domain, its seq, and the hash it seals.
Result<Bytes> CheckpointMessage(uint64_t seq, std::string_view prev_hex) {
  CAIRN_ASSIGN_OR_RETURN(Bytes prev, FromHex(prev_hex));
  std::string_view domain = "cairn-audit-checkpoint-v1";
  Bytes m(domain.begin(), domain.end());
  m.push_back(0);
  for (int i = 0; i < 8; ++i) m.push_back(static_cast<uint8_t>(seq >> (8 * i)));
  m.insert(m.end(), prev.begin(), prev.end());
  return m;
}

// The size of the open file `fd`.
Result<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoToStatus(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

// `size` bytes of the open file `fd` from `offset`.
Result<std::string> ReadAt(int fd, uint64_t offset, uint64_t size, const std::string& path) {
  std::string buf(size, '\0');
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoToStatus(n < 0 ? errno : EIO, "read " + path);
    done += static_cast<size_t>(n);
  }
  return buf;
}

// The last line of the open file `fd` ("" for an empty file).
Result<std::string> ReadLastLine(int fd, const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(const uint64_t size, FileSize(fd, path));
  if (size == 0) return std::string();
  uint64_t window = 64 << 10;
  for (;;) {
    const uint64_t start = size > window ? size - window : 0;
    CAIRN_ASSIGN_OR_RETURN(std::string buf, ReadAt(fd, start, size - start, path));
    if (buf.back() != '\n') {
      return Status::Corruption(path + " does not end with a whole line (an append was cut)");
    }
    buf.pop_back();
    const size_t nl = buf.rfind('\n');
    if (nl != std::string::npos) return buf.substr(nl + 1);
    if (start == 0) return buf;
    window *= 4;
  }
}

// Cuts what follows the last whole line of the open file `fd`: the part of
// an append a crash interrupted. That entry was never durable, so nothing
// that was acknowledged goes. Returns the bytes cut ("" when the file ends
// with a whole line).
Result<std::string> CutTornTail(int fd, const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(const uint64_t size, FileSize(fd, path));
  if (size == 0) return std::string();
  CAIRN_ASSIGN_OR_RETURN(std::string last, ReadAt(fd, size - 1, 1, path));
  if (last == "\n") return std::string();
  // The last newline, reading backwards in blocks.
  constexpr uint64_t kBlock = 64 << 10;
  uint64_t end = size;
  uint64_t keep = 0;  // bytes to keep: up to and including the last newline
  while (end > 0 && keep == 0) {
    const uint64_t start = end > kBlock ? end - kBlock : 0;
    CAIRN_ASSIGN_OR_RETURN(std::string buf, ReadAt(fd, start, end - start, path));
    if (const size_t nl = buf.rfind('\n'); nl != std::string::npos) keep = start + nl + 1;
    end = start;
  }
  CAIRN_ASSIGN_OR_RETURN(std::string torn,
                         ReadAt(fd, keep, std::min<uint64_t>(size - keep, 4096), path));
  if (::ftruncate(fd, static_cast<off_t>(keep)) != 0 || ::fdatasync(fd) != 0) {
    return ErrnoToStatus(errno, "truncate the cut append of " + path);
  }
  spdlog::warn(
      "{}: an append was cut (a crash during a write); {} byte(s) after the last whole "
      "entry removed and the repair recorded",
      path, size - keep);
  if (size - keep > torn.size()) torn += "...";
  return torn;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "write " + path);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace

Result<AuditEntry> ParseAuditLine(std::string_view line) {
  const size_t marker = line.rfind(kHashMarker);
  if (marker == std::string_view::npos || line.size() < marker + kHashMarker.size() + 66 ||
      line.substr(line.size() - 2) != "\"}") {
    return Status::InvalidArgument("not an audit entry (no hash at its end)");
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return Status::InvalidArgument("not valid JSON");
  const auto& o = v.get_object();
  AuditEntry e;
  auto str = [&](const char* key, std::string* out) -> bool {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return false;
    *out = std::string(it->value().get_string());
    return true;
  };
  auto num = [&](const char* key, uint64_t* out) -> bool {
    auto it = o.find(key);
    if (it == o.end()) return false;
    if (it->value().is_uint64()) {
      *out = it->value().get_uint64();
    } else if (it->value().is_int64() && it->value().get_int64() >= 0) {
      *out = static_cast<uint64_t>(it->value().get_int64());
    } else {
      return false;
    }
    return true;
  };
  auto details = o.find("details");
  if (!num("seq", &e.seq) || !num("time_micros", &e.time_micros) || !str("actor", &e.actor) ||
      !str("address", &e.address) || !str("action", &e.action) ||
      !str("department", &e.department) || !str("object", &e.object) || !str("prev", &e.prev) ||
      !str("hash", &e.hash) || details == o.end() || !details->value().is_object()) {
    return Status::InvalidArgument("a field is missing or of the wrong type");
  }
  e.details = details->value().get_object();
  e.line = std::string(line);
  // The hash covers the bytes before it, exactly as stored.
  if (HexHash(line.substr(0, marker)) != e.hash) {
    return Status::InvalidArgument("its hash does not match its content (the entry was edited)");
  }
  return e;
}

std::string AuditLog::log_path() const { return Paths(data_dir_).log(); }
std::string AuditLog::public_key_path() const { return Paths(data_dir_).pub(); }

Status AuditLog::Create(io::Env* env, const std::string& data_dir) {
  Paths p(data_dir);
  CAIRN_RETURN_IF_ERROR(env->CreateDir(p.dir));
  if (env->FileExists(p.key())) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(crypto::KeyPairPem key, crypto::GenerateSigningKey());
  CAIRN_RETURN_IF_ERROR(io::WriteFileAtomically(env, p.key(), AsBytes(key.private_key_pem)));
  if (::chmod(p.key().c_str(), 0600) != 0) return ErrnoToStatus(errno, "chmod " + p.key());
  return io::WriteFileAtomically(env, p.pub(), AsBytes(key.public_key_pem));
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(io::Env* env, const std::string& data_dir,
                                                 Catalog* catalog) {
  Paths p(data_dir);
  if (!env->FileExists(p.key())) CAIRN_RETURN_IF_ERROR(Create(env, data_dir));
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->env_ = env;
  log->data_dir_ = data_dir;
  log->catalog_ = catalog;
  CAIRN_ASSIGN_OR_RETURN(Bytes key, io::ReadFileToBytes(env, p.key()));
  log->signing_key_pem_ = std::string(AsString(key));
  SecureZero(key.data(), key.size());
  return log;
}

Status AuditLog::AppendLocked(int fd, AuditEntry e) {
  const std::string path = log_path();
  CAIRN_ASSIGN_OR_RETURN(std::string torn, CutTornTail(fd, path));
  CAIRN_ASSIGN_OR_RETURN(std::string last, ReadLastLine(fd, path));
  uint64_t last_seq = 0;
  std::string last_hash = kZeroHash;
  std::string last_action;
  uint64_t since_checkpoint = 0;
  if (!last.empty()) {
    auto parsed = ParseAuditLine(last);
    if (!parsed.ok()) {
      return Status::Corruption(path + ": the last entry does not hold (" +
                                parsed.status().message() + "); run `cairn-vault audit verify`");
    }
    last_seq = parsed->seq;
    last_hash = parsed->hash;
    last_action = parsed->action;
    auto it = parsed->details.find("since_checkpoint");
    since_checkpoint = it != parsed->details.end() && it->value().is_int64()
                           ? static_cast<uint64_t>(it->value().get_int64())
                           : 0;
  }
  auto write = [&](AuditEntry& entry) -> Status {
    entry.seq = ++last_seq;
    entry.prev = last_hash;
    const std::string body = Body(entry);
    entry.hash = HexHash(body);
    entry.line = body + std::string(kHashMarker) + entry.hash + "\"}";
    CAIRN_RETURN_IF_ERROR(WriteAll(fd, entry.line + "\n", path));
    last_hash = entry.hash;
    return Status::OK();
  };
  if (!torn.empty()) {
    // The repair is itself an entry, with what was cut (its start).
    AuditEntry r;
    r.time_micros = e.time_micros;
    r.actor = "vault";
    r.address = "local";
    r.action = "audit.repair";
    r.details["cut"] = torn;
    r.details["since_checkpoint"] = static_cast<int64_t>(since_checkpoint + 1);
    CAIRN_RETURN_IF_ERROR(write(r));
    ++since_checkpoint;
    last_action = r.action;
  }
  const bool checkpoint_only = e.action == kCheckpointAction;
  // Nothing since the last checkpoint (or nothing at all): nothing to seal.
  if (checkpoint_only && (last_seq == 0 || last_action == kCheckpointAction)) return Status::OK();
  if (!checkpoint_only) {
    // How many entries since the last checkpoint, carried in each entry so
    // that the next writer (maybe another process) knows when one is due.
    e.details["since_checkpoint"] = static_cast<int64_t>(since_checkpoint + 1);
    CAIRN_RETURN_IF_ERROR(write(e));
    ++since_checkpoint;
  }
  if (checkpoint_only || since_checkpoint >= kCheckpointEvery) {
    AuditEntry c;
    c.time_micros = e.time_micros;
    c.actor = "vault";
    c.address = "local";
    c.action = std::string(kCheckpointAction);
    CAIRN_ASSIGN_OR_RETURN(Bytes message, CheckpointMessage(last_seq + 1, last_hash));
    CAIRN_ASSIGN_OR_RETURN(Bytes sig, crypto::SignEd25519(signing_key_pem_, message));
    c.details["signature"] = ToHex(sig);
    c.details["since_checkpoint"] = 0;
    CAIRN_RETURN_IF_ERROR(write(c));
  }
  if (::fdatasync(fd) != 0) return ErrnoToStatus(errno, "fdatasync " + path);
  if (catalog_ != nullptr) {
    CAIRN_RETURN_IF_ERROR(
        catalog_->PutSetting("audit_head", std::to_string(last_seq) + " " + last_hash));
  }
  return Status::OK();
}

Status AuditLog::Append(std::string actor, std::string address, std::string action,
                        std::string department, std::string object, boost::json::object details) {
  AuditEntry e;
  e.time_micros = env_->NowMicros();
  e.actor = std::move(actor);
  e.address = std::move(address);
  e.action = std::move(action);
  e.department = std::move(department);
  e.object = std::move(object);
  e.details = std::move(details);
  std::lock_guard<std::mutex> lock(mu_);
  const std::string path = log_path();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open " + path);
  Status s;
  if (::flock(fd, LOCK_EX) != 0) {
    s = ErrnoToStatus(errno, "lock " + path);
  } else {
    s = AppendLocked(fd, std::move(e));
  }
  ::close(fd);  // releases the lock
  return s;
}

Status AuditLog::Checkpoint() {
  return Append("vault", "local", std::string(kCheckpointAction), "", "", {});
}

Status AuditLog::ForEachAfter(uint64_t after_seq,
                              const std::function<bool(const AuditEntry&)>& sink) const {
  std::ifstream in(log_path());
  if (!in) return Status::OK();  // nothing logged yet
  std::string line;
  while (std::getline(in, line)) {
    auto e = ParseAuditLine(line);
    if (!e.ok()) return Status::Corruption(log_path() + ": " + e.status().message());
    if (e->seq <= after_seq) continue;
    if (!sink(*e)) break;
  }
  return Status::OK();
}

Status AuditLog::ReadFrom(uint64_t offset, size_t max, std::vector<AuditEntry>* out,
                          uint64_t* next) const {
  *next = offset;
  std::ifstream in(log_path(), std::ios::binary);
  if (!in) return Status::OK();  // nothing logged yet
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in)
    return Status::InvalidArgument(log_path() + ": offset " + std::to_string(offset) +
                                   " is past the end (was the log replaced?)");
  std::string line;
  while (out->size() < max && std::getline(in, line)) {
    if (in.eof()) break;  // no newline: an append in progress
    auto e = ParseAuditLine(line);
    if (!e.ok()) {
      return Status::Corruption(log_path() + " at byte " + std::to_string(*next) + ": " +
                                e.status().message());
    }
    *next += line.size() + 1;
    out->push_back(std::move(*e));
  }
  return Status::OK();
}

uint64_t AuditLog::HeadSeq() const {
  if (catalog_ == nullptr) return 0;
  auto head = catalog_->GetSetting("audit_head");
  return head.ok() ? std::strtoull(head->c_str(), nullptr, 10) : 0;
}

Result<std::vector<AuditEntry>> AuditLog::List(const AuditFilter& f) const {
  std::vector<AuditEntry> out;
  CAIRN_RETURN_IF_ERROR(ForEachAfter(0, [&](const AuditEntry& e) {
    if (f.since_micros != 0 && e.time_micros < f.since_micros) return true;
    if (f.until_micros != 0 && e.time_micros > f.until_micros) return true;
    if (!f.actor.empty() && e.actor.find(f.actor) == std::string::npos) return true;
    if (!f.department.empty() && e.department != f.department) return true;
    if (!f.action.empty() && e.action != f.action && !e.action.starts_with(f.action + ".")) {
      return true;
    }
    out.push_back(e);
    return true;
  }));
  if (f.limit != 0 && out.size() > f.limit) out.erase(out.begin(), out.end() - f.limit);
  return out;
}

AuditVerification AuditLog::Verify(io::Env* env, const std::string& data_dir,
                                   const std::string& public_key_pem, uint64_t head_seq,
                                   const std::string& head_hash) {
  AuditVerification v;
  auto broken = [&](uint64_t seq, uint64_t line, std::string reason) {
    v.ok = false;
    v.broken_seq = seq;
    v.broken_line = line;
    v.reason = std::move(reason);
    return v;
  };
  std::string key = public_key_pem;
  if (key.empty()) {
    auto pub = io::ReadFileToBytes(env, Paths(data_dir).pub());
    if (!pub.ok()) return broken(0, 0, "no public key: " + pub.status().message());
    key = std::string(AsString(*pub));
  }
  std::ifstream in(Paths(data_dir).log());
  if (!in) {
    if (head_seq > 0)
      return broken(
          0, 0, "the log is missing, but the catalog records entry " + std::to_string(head_seq));
    return v;  // nothing was ever logged
  }
  std::string line, prev = kZeroHash, head_hash_seen;
  uint64_t expected = 1, number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (in.eof()) return broken(expected, number, "the last line is cut short");
    auto e = ParseAuditLine(line);
    if (!e.ok())
      return broken(expected, number,
                    "entry " + std::to_string(expected) + ": " + e.status().message());
    if (e->seq != expected) {
      return broken(expected, number,
                    "expected entry " + std::to_string(expected) + ", found entry " +
                        std::to_string(e->seq) + " (entries were deleted, inserted or reordered)");
    }
    if (e->prev != prev) {
      return broken(e->seq, number,
                    "entry " + std::to_string(e->seq) +
                        " does not follow the entry before it (its prev hash differs): an entry "
                        "before it was deleted, inserted, reordered or rewritten");
    }
    if (e->action == kCheckpointAction) {
      auto sig = e->details.find("signature");
      auto message = CheckpointMessage(e->seq, e->prev);
      Result<Bytes> sig_bytes = sig != e->details.end() && sig->value().is_string()
                                    ? FromHex(std::string_view(sig->value().get_string()))
                                    : Result<Bytes>(Status::InvalidArgument("no signature"));
      Result<bool> good = sig_bytes.ok() && message.ok()
                              ? crypto::VerifyEd25519(key, *message, *sig_bytes)
                              : Result<bool>(false);
      if (!good.ok() || !*good) {
        return broken(e->seq, number,
                      "checkpoint " + std::to_string(e->seq) +
                          ": its signature does not hold under the vault's audit key (the log "
                          "before it was rewritten, or the checkpoint forged)");
      }
      ++v.checkpoints;
      v.last_checkpoint_seq = e->seq;
    }
    prev = e->hash;
    if (e->seq == head_seq) head_hash_seen = e->hash;
    ++v.entries;
    ++expected;
  }
  if (head_seq > v.entries) {
    return broken(v.entries + 1, number + 1,
                  "the log ends at entry " + std::to_string(v.entries) +
                      ", but the catalog records entry " + std::to_string(head_seq) +
                      ": the log was truncated");
  }
  if (head_seq > 0 && head_hash_seen != head_hash) {
    return broken(head_seq, 0,
                  "entry " + std::to_string(head_seq) +
                      " is not the one the catalog recorded (the log was rewritten)");
  }
  return v;
}

Result<Bytes> AuditLog::Sign(ByteView message) const {
  return crypto::SignEd25519(signing_key_pem_, message);
}

}  // namespace cairn::vault
