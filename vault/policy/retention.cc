#include "vault/policy/retention.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>

#include "lib/base/cli.h"

namespace cairn::vault {
namespace {

struct tm LocalTime(uint64_t micros) {
  time_t t = static_cast<time_t>(micros / 1000000);
  struct tm tm {};
  localtime_r(&t, &tm);
  return tm;
}

std::string Format(const char* fmt, int a, int b = 0, int c = 0, int d = 0) {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}

// The ISO 8601 week: its year and number (weeks start on Monday; week 1
// holds the year's first Thursday).
std::pair<int, int> IsoWeek(const struct tm& tm) {
  char buf[16];
  strftime(buf, sizeof buf, "%G %V", &tm);
  int year = 0, week = 0;
  std::sscanf(buf, "%d %d", &year, &week);
  return {year, week};
}

}  // namespace

std::vector<RetentionDecision> ApplyRetention(const Retention& rules,
                                              std::vector<RetentionInput> snapshots,
                                              uint64_t now_micros) {
  std::stable_sort(snapshots.begin(), snapshots.end(),
                   [](const RetentionInput& a, const RetentionInput& b) {
                     return a.time_micros > b.time_micros;
                   });
  std::vector<RetentionDecision> out;
  out.reserve(snapshots.size());
  for (const auto& s : snapshots) {
    RetentionDecision d;
    d.id = s.id;
    d.time_micros = s.time_micros;
    out.push_back(std::move(d));
  }

  if (rules.keeps_everything()) {
    for (auto& d : out) d.keep = true, d.reasons.push_back("no retention rules");
  } else {
    struct Rule {
      uint32_t count;
      std::function<std::string(const struct tm&)> period;
    };
    const Rule kRules[] = {
        {rules.last, nullptr},
        {rules.hourly,
         [](const struct tm& t) {
           return "hourly " + Format("%04d-%02d-%02d %02dh", t.tm_year + 1900, t.tm_mon + 1,
                                     t.tm_mday, t.tm_hour);
         }},
        {rules.daily,
         [](const struct tm& t) {
           return "daily " + Format("%04d-%02d-%02d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
         }},
        {rules.weekly,
         [](const struct tm& t) {
           auto [y, w] = IsoWeek(t);
           return "weekly " + Format("%04d-W%02d", y, w);
         }},
        {rules.monthly,
         [](const struct tm& t) {
           return "monthly " + Format("%04d-%02d", t.tm_year + 1900, t.tm_mon + 1);
         }},
        {rules.yearly,
         [](const struct tm& t) { return "yearly " + Format("%04d", t.tm_year + 1900); }},
    };
    for (const Rule& rule : kRules) {
      if (rule.count == 0) continue;
      uint32_t kept = 0;
      std::string last_period;
      for (auto& d : out) {
        if (kept == rule.count) break;
        if (!rule.period) {
          d.keep = true;
          d.reasons.push_back("last");
          ++kept;
          continue;
        }
        std::string period = rule.period(LocalTime(d.time_micros));
        if (period == last_period) continue;  // an older one of a period already kept
        last_period = period;
        d.keep = true;
        d.reasons.push_back(std::move(period));
        ++kept;
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (snapshots[i].locked_until_micros > now_micros) {
      out[i].keep = true;
      out[i].reasons.push_back("locked until " + cli::Rfc3339(snapshots[i].locked_until_micros));
    }
  }
  return out;
}

}  // namespace cairn::vault
