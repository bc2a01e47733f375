// When a policy's backups run: a calendar expression (the common subset of
// systemd's OnCalendar) or a fixed interval (doc/design.md section 20).
//
//   daily | hourly | weekly | monthly | yearly | minutely
//   [WEEKDAYS] [DATE] TIME       "Mon..Fri 22:00", "*-*-* 01:30",
//                                 "Sat,Sun *-*-* 03:00", "*-*-01 00:00",
//                                 "*-*-* 0/4:00" (every 4 hours)
//   every N(s|m|h|d|w)           "every 4h", "every 90m"
//
// Calendar times are in the vault's local time zone (TZ, else
// /etc/localtime); a local time that does not exist on a DST change runs
// at the time mktime(3) normalises it to, and one that happens twice runs
// once. Intervals are aligned to multiples of the interval since the Unix
// epoch, so that every vault process computes the same slots.
#ifndef CAIRN_VAULT_POLICY_SCHEDULE_H_
#define CAIRN_VAULT_POLICY_SCHEDULE_H_

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace cairn::vault {

// "30d", "4h", "90m", "45s", "2w", "1y" (365 days), or a sum of them
// ("1h30m"). InvalidArgument naming the text otherwise. Zero is allowed.
Result<uint64_t> ParseDurationSeconds(std::string_view text);
// The shortest text ParseDurationSeconds reads back: "4h", "1d12h", "0s".
std::string FormatDuration(uint64_t seconds);

class Schedule {
 public:
  // InvalidArgument naming what is wrong with `spec`.
  static Result<Schedule> Parse(std::string_view spec);

  // The first slot strictly after `after_micros` (microseconds since the
  // epoch), to the second. Never 0 for a parsed schedule; a calendar that
  // never matches (Feb 30) is refused by Parse.
  uint64_t NextAfter(uint64_t after_micros) const;
  // The longest time between two consecutive slots, in seconds (over a
  // year's slots, or the first 10,000): what a protection template's
  // minimum frequency is checked against.
  uint64_t MaxGapSeconds() const;
  const std::string& spec() const { return spec_; }
  bool is_interval() const { return interval_seconds_ != 0; }

 private:
  Schedule() = default;
  bool MatchesDay(int year, int month, int mday, int wday) const;

  std::string spec_;
  uint64_t interval_seconds_ = 0;
  // Calendar fields: allowed values.
  std::bitset<7> weekdays_;  // 0 = Sunday, as struct tm
  std::bitset<32> mdays_;    // 1..31
  std::bitset<13> months_;   // 1..12
  int year_ = -1;            // -1: any
  std::bitset<24> hours_;
  std::bitset<60> minutes_;
  std::bitset<60> seconds_;
};

}  // namespace cairn::vault

#endif  // CAIRN_VAULT_POLICY_SCHEDULE_H_
