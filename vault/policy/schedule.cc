#include "vault/policy/schedule.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <tuple>
#include <vector>

namespace cairn::vault {
namespace {

constexpr uint64_t kMicros = 1000000;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

bool ParseInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status Bad(std::string_view spec, std::string_view why) {
  return Status::InvalidArgument("schedule '" + std::string(spec) + "': " + std::string(why) +
                                 " (examples: daily, '*-*-* 01:30', 'Mon..Fri 22:00', "
                                 "'*-*-* 0/4:00', 'every 4h')");
}

// One calendar component: "*", or a comma list of "a", "a..b", "a/step".
template <size_t N>
bool ParseValues(std::string_view text, int lo, int hi, std::bitset<N>* out) {
  if (text == "*") {
    for (int v = lo; v <= hi; ++v) out->set(static_cast<size_t>(v));
    return true;
  }
  for (std::string_view item : Split(text, ',')) {
    int a, b, step = 1;
    size_t dots = item.find("..");
    size_t slash = item.find('/');
    if (dots != std::string_view::npos) {
      if (!ParseInt(item.substr(0, dots), &a) || !ParseInt(item.substr(dots + 2), &b)) return false;
    } else if (slash != std::string_view::npos) {
      std::string_view first = item.substr(0, slash);
      if (first == "*") {
        a = lo;
      } else if (!ParseInt(first, &a)) {
        return false;
      }
      if (!ParseInt(item.substr(slash + 1), &step) || step < 1) return false;
      b = hi;
    } else {
      if (!ParseInt(item, &a)) return false;
      b = a;
    }
    if (a < lo || b > hi || a > b) return false;
    for (int v = a; v <= b; v += step) out->set(static_cast<size_t>(v));
  }
  return true;
}

int Weekday(std::string_view name) {
  static constexpr std::string_view kShort[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  static constexpr std::string_view kLong[] = {"sunday",   "monday", "tuesday", "wednesday",
                                               "thursday", "friday", "saturday"};
  std::string n = Lower(name);
  for (int i = 0; i < 7; ++i) {
    if (n == kShort[i] || n == kLong[i]) return i;
  }
  return -1;
}

bool ParseWeekdays(std::string_view text, std::bitset<7>* out) {
  for (std::string_view item : Split(text, ',')) {
    size_t dots = item.find("..");
    int a = Weekday(item.substr(0, dots));
    int b = dots == std::string_view::npos ? a : Weekday(item.substr(dots + 2));
    if (a < 0 || b < 0) return false;
    // Mon..Sun wraps through the week's end as systemd's does not; we
    // allow Fri..Mon to mean Fri, Sat, Sun, Mon.
    for (int d = a;; d = (d + 1) % 7) {
      out->set(static_cast<size_t>(d));
      if (d == b) break;
    }
  }
  return true;
}

std::string_view Expand(std::string_view keyword) {
  if (keyword == "minutely") return "*-*-* *:*:00";
  if (keyword == "hourly") return "*-*-* *:00:00";
  if (keyword == "daily") return "*-*-* 00:00:00";
  if (keyword == "weekly") return "Mon *-*-* 00:00:00";
  if (keyword == "monthly") return "*-*-01 00:00:00";
  if (keyword == "yearly" || keyword == "annually") return "*-01-01 00:00:00";
  return {};
}

using Wall = std::tuple<int, int, int, int, int, int>;

Wall WallOf(time_t t) {
  struct tm tm {};
  localtime_r(&t, &tm);
  return {tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
}

}  // namespace

Result<uint64_t> ParseDurationSeconds(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("duration '" + std::string(text) +
                                   "': expected a number and a unit s, m, h, d, w or y, such as "
                                   "30d, 4h, 90m or 1h30m");
  };
  if (text.empty()) return bad();
  uint64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || i == text.size() || i - start > 9) return bad();
    uint64_t n = std::stoull(std::string(text.substr(start, i - start)));
    uint64_t unit;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      case 'y':
        unit = 365 * 86400;
        break;
      default:
        return bad();
    }
    ++i;
    total += n * unit;
  }
  if (total > 100ull * 365 * 86400) return bad();
  return total;
}

std::string FormatDuration(uint64_t seconds) {
  if (seconds == 0) return "0s";
  static constexpr std::pair<uint64_t, char> kUnits[] = {
      {365 * 86400, 'y'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  std::string out;
  for (auto [size, unit] : kUnits) {
    if (seconds >= size) {
      out += std::to_string(seconds / size) + unit;
      seconds %= size;
    }
  }
  return out;
}

Result<Schedule> Schedule::Parse(std::string_view spec_in) {
  std::string spec(spec_in);
  // Trim and collapse blanks.
  std::vector<std::string> tokens;
  {
    std::string cur;
    for (char c : spec) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!cur.empty()) tokens.push_back(std::move(cur)), cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) tokens.push_back(std::move(cur));
  }
  if (tokens.empty()) return Bad(spec, "empty");
  Schedule s;
  s.spec_ = tokens[0];
  for (size_t i = 1; i < tokens.size(); ++i) s.spec_ += " " + tokens[i];

  if (Lower(tokens[0]) == "every") {
    if (tokens.size() != 2) return Bad(spec, "'every' takes one duration");
    auto d = ParseDurationSeconds(tokens[1]);
    if (!d.ok()) return Bad(spec, d.status().message());
    if (*d < 1) return Bad(spec, "an interval must be at least 1s");
    s.interval_seconds_ = *d;
    return s;
  }
  if (tokens.size() == 1) {
    std::string_view expanded = Expand(Lower(tokens[0]));
    if (!expanded.empty()) {
      auto parsed = Parse(expanded);
      if (!parsed.ok()) return parsed.status();
      parsed->spec_ = Lower(tokens[0]);
      return parsed;
    }
  }
  if (tokens.size() > 3) return Bad(spec, "too many fields");

  std::string_view weekdays, date, time;
  for (const std::string& t : tokens) {
    if (t.find(':') != std::string::npos) {
      if (!time.empty()) return Bad(spec, "two times");
      time = t;
    } else if (t.find('-') != std::string::npos) {
      if (!date.empty() || !time.empty()) return Bad(spec, "the date must come before the time");
      date = t;
    } else if (std::isalpha(static_cast<unsigned char>(t[0]))) {
      if (!weekdays.empty() || !date.empty() || !time.empty()) {
        return Bad(spec, "weekdays must come first");
      }
      weekdays = t;
    } else {
      return Bad(spec, "'" + t + "' is neither weekdays, a date (Y-M-D) nor a time (H:M)");
    }
  }
  if (weekdays.empty()) {
    s.weekdays_.set();
  } else if (!ParseWeekdays(weekdays, &s.weekdays_)) {
    return Bad(spec, "weekdays are Mon..Sun, as 'Mon', 'Mon,Wed' or 'Mon..Fri'");
  }
  if (date.empty()) date = "*-*-*";
  auto parts = Split(date, '-');
  if (parts.size() != 3) return Bad(spec, "a date is YEAR-MONTH-DAY, each a number or *");
  if (parts[0] != "*") {
    if (!ParseInt(parts[0], &s.year_) || s.year_ < 1970 || s.year_ > 9999) {
      return Bad(spec, "the year is * or a year such as 2027");
    }
  }
  if (!ParseValues(parts[1], 1, 12, &s.months_)) return Bad(spec, "months are 1..12");
  if (!ParseValues(parts[2], 1, 31, &s.mdays_)) return Bad(spec, "days are 1..31");
  if (time.empty()) time = "00:00:00";
  auto hms = Split(time, ':');
  if (hms.size() < 2 || hms.size() > 3) return Bad(spec, "a time is HOUR:MINUTE[:SECOND]");
  if (!ParseValues(hms[0], 0, 23, &s.hours_)) return Bad(spec, "hours are 0..23");
  if (!ParseValues(hms[1], 0, 59, &s.minutes_)) return Bad(spec, "minutes are 0..59");
  if (hms.size() == 3) {
    if (!ParseValues(hms[2], 0, 59, &s.seconds_)) return Bad(spec, "seconds are 0..59");
  } else {
    s.seconds_.set(0);
  }
  // A calendar that never matches (Feb 30, or a year gone by) is refused
  // rather than scheduled never.
  if (s.NextAfter(static_cast<uint64_t>(::time(nullptr)) * kMicros) == 0) {
    return Bad(spec, "matches no date from now on");
  }
  return s;
}

bool Schedule::MatchesDay(int year, int month, int mday, int wday) const {
  return (year_ < 0 || year_ == year) && months_.test(static_cast<size_t>(month)) &&
         mdays_.test(static_cast<size_t>(mday)) && weekdays_.test(static_cast<size_t>(wday));
}

uint64_t Schedule::NextAfter(uint64_t after_micros) const {
  const time_t after = static_cast<time_t>(after_micros / kMicros);
  if (interval_seconds_ != 0) {
    uint64_t i = interval_seconds_;
    return (static_cast<uint64_t>(after) / i + 1) * i * kMicros;
  }
  // A slot counts when it is after `after` both in absolute time and on the
  // wall clock: so that a time which happens twice (the hour a DST change
  // repeats) runs once.
  const Wall after_wall = WallOf(after);
  struct tm start {};
  localtime_r(&after, &start);
  // Days ahead: enough for the next leap day, or a specific year.
  const int horizon = year_ < 0 ? 8 * 366 : (year_ - (start.tm_year + 1900) + 1) * 366;
  for (int ahead = 0; ahead <= horizon; ++ahead) {
    struct tm day {};
    day.tm_year = start.tm_year;
    day.tm_mon = start.tm_mon;
    day.tm_mday = start.tm_mday + ahead;
    day.tm_hour = 12;
    day.tm_isdst = -1;
    if (mktime(&day) == -1) return 0;
    if (year_ >= 0 && day.tm_year + 1900 > year_) return 0;
    if (!MatchesDay(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday, day.tm_wday)) continue;
    for (int h = 0; h < 24; ++h) {
      if (!hours_.test(static_cast<size_t>(h))) continue;
      if (ahead == 0 && h < start.tm_hour - 1) continue;  // long past (DST-safe margin)
      for (int m = 0; m < 60; ++m) {
        if (!minutes_.test(static_cast<size_t>(m))) continue;
        for (int sec = 0; sec < 60; ++sec) {
          if (!seconds_.test(static_cast<size_t>(sec))) continue;
          Wall wall{day.tm_year, day.tm_mon, day.tm_mday, h, m, sec};
          if (wall <= after_wall) continue;
          struct tm slot {};
          slot.tm_year = day.tm_year;
          slot.tm_mon = day.tm_mon;
          slot.tm_mday = day.tm_mday;
          slot.tm_hour = h;
          slot.tm_min = m;
          slot.tm_sec = sec;
          slot.tm_isdst = -1;
          time_t t = mktime(&slot);
          if (t == -1 || t <= after) continue;
          return static_cast<uint64_t>(t) * kMicros;
        }
      }
    }
  }
  return 0;
}

uint64_t Schedule::MaxGapSeconds() const {
  if (interval_seconds_ != 0) return interval_seconds_;
  // From the start of 2026 (local), over a year of slots or 10,000 of them.
  struct tm ref {};
  ref.tm_year = 126;
  ref.tm_mday = 1;
  ref.tm_isdst = -1;
  uint64_t t = static_cast<uint64_t>(mktime(&ref)) * kMicros;
  const uint64_t end = t + 366ull * 86400 * kMicros;
  uint64_t gap = 0;
  uint64_t prev = NextAfter(t);
  for (int i = 0; i < 10000 && prev != 0 && prev < end; ++i) {
    uint64_t next = NextAfter(prev);
    if (next == 0) return UINT64_MAX;  // a one-off: never again
    gap = std::max(gap, (next - prev) / kMicros);
    prev = next;
  }
  return gap;
}

}  // namespace cairn::vault
