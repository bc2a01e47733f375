#include "vault/policy/policy.h"

#include "lib/base/names.h"
#include "vault/policy/schedule.h"

namespace cairn::vault {
namespace {

constexpr uint64_t kHour = 3600, kDay = 86400;

Status Weaker(const Policy& p, const std::string& what) {
  return Status::InvalidArgument("policy '" + p.name + "' is weaker than template " +
                                 p.template_name + ": " + what);
}

}  // namespace

const std::vector<ProtectionTemplate>& ProtectionTemplates() {
  // The graded protection scheme's levels 2 to 4: each adds to the one
  // below it.
  static const std::vector<ProtectionTemplate> kTemplates = {
      {"level2", "level 2: daily backups kept a month, local copy", 24 * kHour,
       Retention{0, 0, 7, 4, 0, 0}, false, 0, "daily", 24 * kHour, 24 * kHour, 0},
      {"level3", "level 3: daily backups kept a year, off-site copy, locked 7 days", 24 * kHour,
       Retention{0, 0, 14, 8, 12, 0}, true, 7 * kDay, "daily", 24 * kHour, 8 * kHour, 90 * kDay},
      {"level4", "level 4: backups every 4 hours kept 7 years, off-site copy, locked 30 days",
       4 * kHour, Retention{0, 0, 14, 8, 12, 7}, true, 30 * kDay, "every 4h", 4 * kHour, 2 * kHour,
       30 * kDay},
  };
  return kTemplates;
}

Result<const ProtectionTemplate*> FindTemplate(std::string_view name) {
  std::string known;
  for (const auto& t : ProtectionTemplates()) {
    if (t.name == name) return &t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  return Status::NotFound("no protection template '" + std::string(name) + "' (there are " + known +
                          ")");
}

Policy PolicyFromTemplate(const ProtectionTemplate& t, std::string name) {
  Policy p;
  p.name = std::move(name);
  p.template_name = t.name;
  p.schedule = t.default_schedule;
  p.keep = t.min_keep;
  p.offsite = t.offsite_required;
  p.lock_seconds = t.min_lock_seconds;
  p.rpo_seconds = t.default_rpo_seconds;
  p.rto_seconds = t.default_rto_seconds;
  p.drill_every_seconds = t.default_drill_every_seconds;
  return p;
}

Status CheckPolicy(const Policy& p) {
  if (Status s = ValidateName("policy", p.name); !s.ok()) return s;
  uint64_t gap = 0;
  if (!p.schedule.empty()) {
    auto schedule = Schedule::Parse(p.schedule);
    if (!schedule.ok()) return schedule.status();
    gap = schedule->MaxGapSeconds();
  }
  if (p.zstd_level < 1 || p.zstd_level > 19) {
    return Status::InvalidArgument("policy '" + p.name + "': zstd level " +
                                   std::to_string(p.zstd_level) + " is not in 1..19");
  }
  if (p.rpo_seconds != 0 && !p.schedule.empty() && p.rpo_seconds < gap) {
    return Status::InvalidArgument("policy '" + p.name + "': an RPO of " +
                                   FormatDuration(p.rpo_seconds) +
                                   " can never be met by schedule '" + p.schedule +
                                   "', whose runs are up to " + FormatDuration(gap) + " apart");
  }
  if (p.lock_seconds > 10 * 365 * kDay) {
    return Status::InvalidArgument("policy '" + p.name + "': a lock longer than 10 years");
  }
  if (p.drill_every_seconds != 0 && p.drill_every_seconds < kHour) {
    return Status::InvalidArgument("policy '" + p.name + "': drills at most every hour");
  }
  if (p.drill_check.size() > 4096 ||
      std::any_of(p.drill_check.begin(), p.drill_check.end(),
                  [](char ch) { return ch == '\0' || ch == '\n' || ch == '\r'; })) {
    return Status::InvalidArgument("policy '" + p.name +
                                   "': the drill check is one line of at most 4096 bytes");
  }
  if (p.drill_check_timeout_seconds > kDay) {
    return Status::InvalidArgument("policy '" + p.name + "': a drill check of at most a day");
  }
  if (p.template_name.empty()) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(const ProtectionTemplate* t, FindTemplate(p.template_name));
  if (p.schedule.empty()) {
    return Weaker(p, "it has no schedule; the template needs a backup at least every " +
                         FormatDuration(t->max_gap_seconds));
  }
  if (gap > t->max_gap_seconds) {
    return Weaker(p, "schedule '" + p.schedule + "' leaves up to " + FormatDuration(gap) +
                         " between backups; the template allows " +
                         FormatDuration(t->max_gap_seconds));
  }
  struct Floor {
    const char* flag;
    uint32_t have, need;
  };
  const Floor floors[] = {{"keep-last", p.keep.last, t->min_keep.last},
                          {"keep-hourly", p.keep.hourly, t->min_keep.hourly},
                          {"keep-daily", p.keep.daily, t->min_keep.daily},
                          {"keep-weekly", p.keep.weekly, t->min_keep.weekly},
                          {"keep-monthly", p.keep.monthly, t->min_keep.monthly},
                          {"keep-yearly", p.keep.yearly, t->min_keep.yearly}};
  // Keeping everything satisfies any retention floor.
  if (!p.keep.keeps_everything()) {
    for (const Floor& f : floors) {
      if (f.have < f.need) {
        return Weaker(p, std::string(f.flag) + " " + std::to_string(f.have) +
                             "; the template needs at least " + std::to_string(f.need));
      }
    }
  }
  if (t->offsite_required && !p.offsite) {
    return Weaker(p, "the template requires an off-site copy (--offsite)");
  }
  if (p.lock_seconds < t->min_lock_seconds) {
    return Weaker(p, "a retention lock of " + FormatDuration(p.lock_seconds) +
                         "; the template needs at least " + FormatDuration(t->min_lock_seconds));
  }
  return Status::OK();
}

}  // namespace cairn::vault
