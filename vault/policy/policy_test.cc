#include "vault/policy/policy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <functional>
#include <set>
#include <string>

#include "lib/base/cli.h"
#include "vault/policy/retention.h"
#include "vault/policy/schedule.h"

namespace cairn::vault {
namespace {

constexpr uint64_t kS = 1000000;

// Sets TZ for one test and restores it after.
class ZoneTest : public ::testing::Test {
 protected:
  void Zone(const char* tz) {
    setenv("TZ", tz, 1);
    tzset();
  }
  void TearDown() override {
    setenv("TZ", "UTC", 1);
    tzset();
  }
};

// "2026-12-02T10:00:00Z" -> microseconds.
uint64_t Utc(const char* text) {
  struct tm tm {};
  EXPECT_TRUE(strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm)) << text;
  return static_cast<uint64_t>(timegm(&tm)) * kS;
}

std::string Iso(uint64_t micros) {
  time_t t = static_cast<time_t>(micros / kS);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using ScheduleTest = ZoneTest;

TEST_F(ScheduleTest, CalendarAndIntervalSlotsInUtc) {
  Zone("UTC");
  struct Case {
    const char* spec;
    const char* after;
    const char* next;
  } cases[] = {
      {"daily", "2026-12-02T10:00:00Z", "2026-12-03T00:00:00Z"},
      {"*-*-* 01:30", "2026-12-02T01:29:59Z", "2026-12-02T01:30:00Z"},
      {"*-*-* 01:30", "2026-12-02T01:30:00Z", "2026-12-03T01:30:00Z"},
      // 2026-12-04 is a Friday.
      {"Mon..Fri 22:00", "2026-12-04T22:00:00Z", "2026-12-07T22:00:00Z"},
      {"Sat,Sun *-*-* 03:00", "2026-12-02T00:00:00Z", "2026-12-05T03:00:00Z"},
      {"*-*-01 00:00", "2026-12-02T00:00:00Z", "2027-01-01T00:00:00Z"},
      {"*-*-* 0/4:00", "2026-12-02T10:00:00Z", "2026-12-02T12:00:00Z"},
      {"hourly", "2026-12-02T10:59:59Z", "2026-12-02T11:00:00Z"},
      {"weekly", "2026-12-02T10:00:00Z", "2026-12-07T00:00:00Z"},
      {"yearly", "2026-12-02T10:00:00Z", "2027-01-01T00:00:00Z"},
      {"*-02-29 12:00", "2026-03-01T00:00:00Z", "2028-02-29T12:00:00Z"},
      {"every 4h", "2026-12-02T10:00:00Z", "2026-12-02T12:00:00Z"},
      {"every 90m", "2026-12-02T00:00:00Z", "2026-12-02T01:30:00Z"},
      {"  every   30s ", "2026-12-02T00:00:10Z", "2026-12-02T00:00:30Z"},
  };
  for (const auto& c : cases) {
    auto s = Schedule::Parse(c.spec);
    ASSERT_TRUE(s.ok()) << c.spec << ": " << s.status().ToString();
    EXPECT_EQ(Iso(s->NextAfter(Utc(c.after))), c.next) << c.spec << " after " << c.after;
  }
}

TEST_F(ScheduleTest, LongestGap) {
  Zone("UTC");
  struct Case {
    const char* spec;
    uint64_t gap;
  } cases[] = {{"daily", 86400},           {"Mon..Fri 22:00", 3 * 86400},
               {"*-*-* 0/4:00", 4 * 3600}, {"every 4h", 4 * 3600},
               {"monthly", 31 * 86400},    {"*-*-* 01,13:30", 12 * 3600}};
  for (const auto& c : cases) {
    auto s = Schedule::Parse(c.spec);
    ASSERT_TRUE(s.ok()) << c.spec;
    EXPECT_EQ(s->MaxGapSeconds(), c.gap) << c.spec;
  }
}

TEST_F(ScheduleTest, BadSpecsAreRefusedWithTheReason) {
  struct Case {
    const char* spec;
    const char* says;
  } cases[] = {
      {"", "empty"},
      {"every", "one duration"},
      {"every 0s", "at least 1s"},
      {"every 4 hours", "one duration"},
      {"every 4x", "unit"},
      {"Mon..Funday 10:00", "weekdays"},
      {"*-*-* 25:00", "hours are 0..23"},
      {"*-13-* 00:00", "months are 1..12"},
      {"*-02-30 00:00", "matches no date"},
      {"2020-01-01 00:00", "matches no date"},
      {"10:00 Mon", "weekdays must come first"},
      {"tomorrow", "weekdays are Mon..Sun"},
      {"*-*-* 1:2:3:4", "HOUR:MINUTE"},
  };
  for (const auto& c : cases) {
    auto s = Schedule::Parse(c.spec);
    ASSERT_FALSE(s.ok()) << "'" << c.spec << "' was accepted";
    EXPECT_TRUE(s.status().IsInvalidArgument());
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.spec << ": " << s.status().message();
  }
}

TEST_F(ScheduleTest, SpringForwardRunsTheMissingTimeOnce) {
  Zone("America/New_York");
  auto s = Schedule::Parse("*-*-* 02:30");
  ASSERT_TRUE(s.ok());
  // 2026-03-08: 02:00 EST becomes 03:00 EDT; 02:30 does not exist.
  uint64_t first = s->NextAfter(Utc("2026-03-07T07:30:00Z"));   // Mar 7 02:30 EST
  EXPECT_EQ(Iso(first), "2026-03-08T07:30:00Z");                // 03:30 EDT
  EXPECT_EQ(Iso(s->NextAfter(first)), "2026-03-09T06:30:00Z");  // 02:30 EDT
}

TEST_F(ScheduleTest, FallBackRunsTheRepeatedTimeOnce) {
  Zone("America/New_York");
  // 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
  auto s = Schedule::Parse("*-*-* 01:30");
  ASSERT_TRUE(s.ok());
  uint64_t t = Utc("2026-10-31T05:30:00Z");  // Oct 31 01:30 EDT
  std::vector<std::string> slots;
  for (int i = 0; i < 3; ++i) slots.push_back(Iso(t = s->NextAfter(t)));
  ASSERT_EQ(slots.size(), 3u);
  EXPECT_TRUE(slots[0] == "2026-11-01T05:30:00Z" || slots[0] == "2026-11-01T06:30:00Z") << slots[0];
  EXPECT_EQ(slots[1], "2026-11-02T06:30:00Z");
  EXPECT_EQ(slots[2], "2026-11-03T06:30:00Z");

  // Hourly across the change: strictly increasing, one 01:00 slot only.
  auto hourly = Schedule::Parse("hourly");
  ASSERT_TRUE(hourly.ok());
  t = Utc("2026-11-01T03:30:00Z");  // Oct 31 23:30 EDT
  std::set<uint64_t> seen;
  int ones = 0;
  for (int i = 0; i < 6; ++i) {
    uint64_t next = hourly->NextAfter(t);
    ASSERT_GT(next, t);
    t = next;
    time_t secs = static_cast<time_t>(t / kS);
    struct tm local {};
    localtime_r(&secs, &local);
    ones += local.tm_hour == 1;
  }
  EXPECT_EQ(ones, 1);
}

TEST_F(ScheduleTest, CalendarFollowsTheVaultsZone) {
  Zone("Asia/Shanghai");  // UTC+8, no DST
  auto s = Schedule::Parse("*-*-* 01:30");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Iso(s->NextAfter(Utc("2026-12-02T00:00:00Z"))), "2026-12-02T17:30:00Z");
}

TEST(DurationTest, ParsesAndFormats) {
  EXPECT_EQ(*ParseDurationSeconds("30d"), 30u * 86400);
  EXPECT_EQ(*ParseDurationSeconds("1h30m"), 5400u);
  EXPECT_EQ(*ParseDurationSeconds("2w"), 14u * 86400);
  EXPECT_EQ(*ParseDurationSeconds("0s"), 0u);
  for (const char* bad : {"", "30", "d", "4 h", "-1h", "1.5h", "99999999999h"}) {
    EXPECT_FALSE(ParseDurationSeconds(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatDuration(5400), "1h30m");
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(86400 + 3600), "1d1h");
}

// --- Retention: hand-computed cases --------------------------------------

struct Snap {
  const char* id;
  const char* time;
  const char* locked_until = nullptr;
};

// The IDs kept, newest first, each with its reasons joined by "+".
std::vector<std::string> Kept(const Retention& r, const std::vector<Snap>& snaps,
                              const char* now = "2027-06-01T00:00:00Z") {
  std::vector<RetentionInput> in;
  for (const auto& s : snaps) {
    in.push_back({s.id, Utc(s.time), s.locked_until ? Utc(s.locked_until) : 0});
  }
  std::vector<std::string> out;
  for (const auto& d : ApplyRetention(r, in, Utc(now))) {
    if (!d.keep) continue;
    std::string reasons;
    for (const auto& why : d.reasons) reasons += (reasons.empty() ? "" : "+") + why;
    out.push_back(d.id + ":" + reasons);
  }
  return out;
}

using RetentionTest = ZoneTest;

TEST_F(RetentionTest, DailyKeepsTheNewestOfEachDay) {
  Zone("UTC");
  std::vector<Snap> snaps = {
      {"a", "2026-12-01T06:00:00Z"}, {"b", "2026-12-01T18:00:00Z"}, {"c", "2026-12-02T06:00:00Z"},
      {"d", "2026-12-02T18:00:00Z"}, {"e", "2026-12-03T01:00:00Z"}, {"f", "2026-11-30T23:59:59Z"},
  };
  Retention r;
  r.daily = 3;
  EXPECT_EQ(Kept(r, snaps), (std::vector<std::string>{"e:daily 2026-12-03", "d:daily 2026-12-02",
                                                      "b:daily 2026-12-01"}));
}

TEST_F(RetentionTest, RulesCombineAndNameEveryReason) {
  Zone("UTC");
  std::vector<Snap> snaps = {
      {"a", "2026-11-29T12:00:00Z"},  // Sunday, ISO week 48
      {"b", "2026-11-30T12:00:00Z"},  // Monday, week 49
      {"c", "2026-12-01T12:00:00Z"},
      {"d", "2026-12-01T13:00:00Z"},
  };
  Retention r;
  r.last = 2;
  r.daily = 2;
  r.weekly = 2;
  r.monthly = 2;
  EXPECT_EQ(Kept(r, snaps), (std::vector<std::string>{
                                "d:last+daily 2026-12-01+weekly 2026-W49+monthly 2026-12", "c:last",
                                "b:daily 2026-11-30+monthly 2026-11", "a:weekly 2026-W48"}));
}

TEST_F(RetentionTest, PeriodsAreTheVaultsLocalDays) {
  std::vector<Snap> snaps = {{"early", "2026-12-01T15:00:00Z"}, {"late", "2026-12-01T17:00:00Z"}};
  Retention r;
  r.daily = 2;
  Zone("UTC");  // one day: only the newest is kept
  EXPECT_EQ(Kept(r, snaps), (std::vector<std::string>{"late:daily 2026-12-01"}));
  Zone("Asia/Shanghai");  // 23:00 on the 1st and 01:00 on the 2nd
  EXPECT_EQ(Kept(r, snaps),
            (std::vector<std::string>{"late:daily 2026-12-02", "early:daily 2026-12-01"}));
}

TEST_F(RetentionTest, TheRepeatedHourOfFallBackIsOneHour) {
  Zone("America/New_York");
  std::vector<Snap> snaps = {
      {"h00", "2026-11-01T04:10:00Z"},   // 00:10 EDT
      {"h01a", "2026-11-01T05:10:00Z"},  // 01:10 EDT
      {"h01b", "2026-11-01T06:10:00Z"},  // 01:10 EST
      {"h02", "2026-11-01T07:10:00Z"},   // 02:10 EST
  };
  Retention r;
  r.hourly = 10;
  EXPECT_EQ(Kept(r, snaps),
            (std::vector<std::string>{"h02:hourly 2026-11-01 02h", "h01b:hourly 2026-11-01 01h",
                                      "h00:hourly 2026-11-01 00h"}));
  // The 25-hour day is one day.
  Retention d;
  d.daily = 1;
  EXPECT_EQ(Kept(d, snaps), (std::vector<std::string>{"h02:daily 2026-11-01"}));
}

TEST_F(RetentionTest, LocksKeepWhatRulesWouldForget) {
  Zone("UTC");
  std::vector<Snap> snaps = {
      {"old", "2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z"},
      {"expired", "2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z"},
      {"new", "2026-06-01T00:00:00Z"},
  };
  Retention r;
  r.last = 1;
  EXPECT_EQ(Kept(r, snaps, "2026-06-02T00:00:00Z"),
            (std::vector<std::string>{"new:last", "old:locked until 2026-12-31T00:00:00.000Z"}));
  // No rules: everything stays.
  EXPECT_EQ(Kept(Retention{}, snaps).size(), 3u);
}

// --- Policies and templates ----------------------------------------------

TEST(PolicyTest, TemplatesRefuseWeakerPoliciesAndNameTheRule) {
  auto t = FindTemplate("level3");
  ASSERT_TRUE(t.ok());
  Policy p = PolicyFromTemplate(**t, "finance-db");
  EXPECT_TRUE(CheckPolicy(p).ok()) << CheckPolicy(p).ToString();

  struct Case {
    std::function<void(Policy&)> change;
    const char* says;
  } cases[] = {
      {[](Policy& q) { q.schedule = "Mon..Fri 22:00", q.rpo_seconds = 0; }, "leaves up to 3d"},
      {[](Policy& q) { q.keep.daily = 7; }, "keep-daily 7; the template needs at least 14"},
      {[](Policy& q) { q.keep.monthly = 0; }, "keep-monthly 0"},
      {[](Policy& q) { q.offsite = false; }, "off-site"},
      {[](Policy& q) { q.lock_seconds = 86400; }, "retention lock of 1d"},
      {[](Policy& q) { q.schedule.clear(); }, "no schedule"},
  };
  for (const auto& c : cases) {
    Policy q = p;
    c.change(q);
    Status s = CheckPolicy(q);
    ASSERT_FALSE(s.ok()) << c.says;
    EXPECT_NE(s.message().find("weaker than template level3"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
  // Stronger is fine.
  Policy q = p;
  q.schedule = "every 1h";
  q.rpo_seconds = 3600;
  q.keep.daily = 60;
  q.lock_seconds = 90 * 86400;
  EXPECT_TRUE(CheckPolicy(q).ok()) << CheckPolicy(q).ToString();
}

TEST(PolicyTest, AnRpoTheScheduleCannotMeetIsRefused) {
  Policy p;
  p.name = "x";
  p.schedule = "daily";
  p.rpo_seconds = 4 * 3600;
  Status s = CheckPolicy(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("can never be met"), std::string::npos) << s.message();
  p.rpo_seconds = 26 * 3600;
  EXPECT_TRUE(CheckPolicy(p).ok());
  p.name = "bad name";
  EXPECT_FALSE(CheckPolicy(p).ok());
  EXPECT_FALSE(FindTemplate("level9").ok());
}

}  // namespace
}  // namespace cairn::vault
