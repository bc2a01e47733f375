// GFS retention: which snapshots of one series a policy keeps, and why
// (doc/design.md section 20). The rules are restic's: "keep N daily" keeps
// the newest snapshot of each of the N most recent days that have one;
// periods are the vault's local calendar (hours, days, ISO weeks starting
// Monday, months, years), so a DST change makes a 23- or 25-hour day that
// still counts once. A snapshot may be kept by several rules; a locked one
// is kept whatever the rules say. With no rule at all, everything is kept.
#ifndef CAIRN_VAULT_POLICY_RETENTION_H_
#define CAIRN_VAULT_POLICY_RETENTION_H_

#include <cstdint>
#include <string>
#include <vector>

namespace cairn::vault {

struct Retention {
  uint32_t last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  bool keeps_everything() const {
    return last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0;
  }
  friend bool operator==(const Retention&, const Retention&) = default;
};

// One snapshot of a series, as retention sees it.
struct RetentionInput {
  std::string id;
  uint64_t time_micros = 0;
  uint64_t locked_until_micros = 0;  // 0: not locked
};

struct RetentionDecision {
  std::string id;
  uint64_t time_micros = 0;
  bool keep = false;
  bool forgotten = false;  // set when applied
  // Why it is kept: "last", "hourly 2026-12-01 14h", "daily 2026-12-01",
  // "weekly 2026-W48", "monthly 2026-12", "yearly 2026",
  // "locked until <RFC 3339>", "no retention rules".
  std::vector<std::string> reasons;
};

// Decides for every snapshot of one series (any order in; newest first
// out). `now_micros` only decides which locks still hold.
std::vector<RetentionDecision> ApplyRetention(const Retention& rules,
                                              std::vector<RetentionInput> snapshots,
                                              uint64_t now_micros);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_POLICY_RETENTION_H_
