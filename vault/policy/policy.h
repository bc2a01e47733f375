// Protection policies and the templates of the graded protection levels
// (doc/design.md section 20). Pure: no catalog, no clock. The service
// (vault/service/policies.cc) stores them, the scheduler runs them.
#ifndef CAIRN_VAULT_POLICY_POLICY_H_
#define CAIRN_VAULT_POLICY_POLICY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"
#include "vault/policy/retention.h"

namespace cairn::vault {

struct Policy {
  std::string name;
  std::string template_name;  // empty, or a ProtectionTemplate's name
  std::string schedule;       // Schedule::Parse text; empty: run only when asked
  Retention keep;
  int zstd_level = 3;
  bool offsite = false;                       // the snapshots must reach the DR site
  uint64_t rpo_seconds = 0, rto_seconds = 0;  // 0: not set
  uint64_t drill_every_seconds = 0;           // 0: no scheduled drill
  // What a scheduled drill runs in the restored sandbox (section 23); empty:
  // none. Its timeout; 0: 600 s.
  std::string drill_check;
  uint32_t drill_check_timeout_seconds = 0;
  // A source's pre-command that fails: false fails the backup; true lets it
  // go on crash-consistent (doc/design.md section 24).
  bool hook_failure_continue = false;
  uint64_t lock_seconds = 0;                // retention lock from each snapshot's time
  uint64_t bandwidth_bytes_per_second = 0;  // 0: unlimited
  uint64_t created_micros = 0, updated_micros = 0;
  friend bool operator==(const Policy&, const Policy&) = default;
};

// A protection level's floor: a policy that names the template may be
// stronger, never weaker.
struct ProtectionTemplate {
  std::string name;          // "level2", "level3", "level4"
  std::string description;   // for people
  uint64_t max_gap_seconds;  // backups at least this often
  Retention min_keep;
  bool offsite_required;
  uint64_t min_lock_seconds;
  // What a policy made from the template starts with.
  std::string default_schedule;
  uint64_t default_rpo_seconds, default_rto_seconds, default_drill_every_seconds;
};

const std::vector<ProtectionTemplate>& ProtectionTemplates();
// NotFound naming the templates there are.
Result<const ProtectionTemplate*> FindTemplate(std::string_view name);
// The template's own values, as a policy named `name`.
Policy PolicyFromTemplate(const ProtectionTemplate& t, std::string name);

// Checks a policy on its own (name, schedule, levels, durations, an RPO the
// schedule can meet) and against its template. InvalidArgument naming the
// first rule it breaks.
Status CheckPolicy(const Policy& policy);

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_POLICY_POLICY_H_
