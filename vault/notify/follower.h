// Following the audit trail to a service outside the vault (a syslog
// collector, a webhook): a thread reads the entries after a durable cursor,
// hands them to a sink in order, and moves the cursor past what the sink
// delivered. While the service is down, entries wait in the log itself
// (which is durable), and go out in order when it returns: none is skipped,
// and none is sent twice unless the vault dies between a delivery and the
// cursor's write (then the entries after the cursor go again; their
// sequence numbers let the receiver see it).
//
// The cursor is DIR/audit/<name>.cursor: "<seq> <byte offset>\n", written
// atomically after every delivered batch.
#ifndef CAIRN_VAULT_NOTIFY_FOLLOWER_H_
#define CAIRN_VAULT_NOTIFY_FOLLOWER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "lib/base/status.h"
#include "vault/audit/audit_log.h"

namespace cairn::vault {

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Delivers `entries` (in order) and returns how many of them, from the
  // first, were delivered; an error after some were delivered sets
  // `*error` and returns that count. Called from the follower's thread.
  virtual size_t Deliver(std::span<const AuditEntry> entries, Status* error) = 0;
  // What it delivers to, for logs ("syslog collector 10.0.0.9:6514").
  virtual std::string Describe() const = 0;
};

struct FollowerOptions {
  std::string name;  // the cursor file's name: "syslog", "webhook"
  // How often the log is looked at for new entries.
  std::chrono::milliseconds poll{250};
  // After a failed delivery: wait `retry_min`, doubling to `retry_max`.
  std::chrono::milliseconds retry_min{std::chrono::seconds(1)};
  std::chrono::milliseconds retry_max{std::chrono::minutes(5)};
  size_t batch = 256;
};

class AuditFollower {
 public:
  AuditFollower(const AuditLog* log, io::Env* env, std::string data_dir,
                std::unique_ptr<AuditSink> sink, FollowerOptions options);
  ~AuditFollower();  // stops

  void Start();
  // Returns once the thread has stopped (a delivery in progress ends at
  // its own deadline).
  void Stop();
  // Entries the log holds past the cursor (what waits to go out).
  uint64_t Backlog() const;
  // The seq of the last entry delivered.
  uint64_t delivered() const { return cursor_seq_.load(); }

  std::string cursor_path() const;

 private:
  void Run();
  Status LoadCursor();
  Status SaveCursor(uint64_t seq, uint64_t offset);
  // Waits up to `d` or until Stop(); false when stopping.
  bool Sleep(std::chrono::milliseconds d);

  const AuditLog* log_;
  io::Env* env_;
  std::string data_dir_;
  std::unique_ptr<AuditSink> sink_;
  FollowerOptions options_;
  std::atomic<uint64_t> cursor_seq_{0};
  uint64_t cursor_offset_ = 0;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_NOTIFY_FOLLOWER_H_
