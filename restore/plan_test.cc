// Unit tests of recovery plans (restore/plan.h): parsing and checking the
// plan file, the run order, the checks on this machine before anything is
// restored, and the report's shape. A plan restoring real systems from a
// real vault runs in tests/e2e/plan_test.sh.
#include "restore/plan.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

namespace cairn::restore {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFile = "/etc/cairn/fin.toml";

// Three systems over two priorities, every key used once.
constexpr const char* kGood = R"(
format = 1
name = "Finance department recovery"
parallel = 2
on_failure = "continue"
connections = 6

[[system]]
name = "fin-app"
priority = 2
state = "/var/lib/cairn-agent-fin/"
target = "/srv/new/fin-app"

[[system]]
name = "fin-db"
priority = 1
state = "/var/lib/cairn-agent-fin"
snapshot = "3fa2c81e"
host = "fin-db-01"
paths = ["/srv/db", "/etc"]
target = "/srv/new/fin-db"
check = "test -f srv/db/PG_VERSION"
check_timeout = 30
vaults = ["127.0.0.1:7443", "[::1]:7443"]
connections = 8

[[system]]
name = "hr-web"
priority = 2
state = "/var/lib/cairn-agent-hr"
target = "/srv/new/hr-web"
)";

// A plan whose one system is `body` (keys of a [[system]] table).
std::string OneSystem(const std::string& body) { return "name = \"p\"\n[[system]]\n" + body; }

constexpr const char* kMinimal =
    "name = \"s1\"\npriority = 1\nstate = \"/var/lib/a\"\ntarget = \"/srv/t\"\n";

std::string ErrorOf(const std::string& text) {
  auto plan = ParsePlan(text, kFile);
  EXPECT_FALSE(plan.ok()) << text;
  if (plan.ok()) return "";
  EXPECT_TRUE(plan.status().IsInvalidArgument()) << plan.status().ToString();
  return plan.status().message();
}

TEST(PlanParseTest, AGoodPlanParsesWithEveryKey) {
  auto plan = ParsePlan(kGood, kFile);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->file, kFile);
  EXPECT_EQ(plan->name, "Finance department recovery");
  EXPECT_EQ(plan->parallel, 2);
  EXPECT_EQ(plan->on_failure, OnFailure::kContinue);
  EXPECT_EQ(plan->connections, 6);
  ASSERT_EQ(plan->systems.size(), 3u);
  const PlanSystem& app = plan->systems[0];
  EXPECT_EQ(app.name, "fin-app");
  EXPECT_EQ(app.state, "/var/lib/cairn-agent-fin");  // made lexically normal
  EXPECT_EQ(app.snapshot, "latest");
  EXPECT_TRUE(app.host.empty());
  EXPECT_TRUE(app.check.empty());
  EXPECT_EQ(app.check_timeout.count(), 600);
  EXPECT_EQ(app.connections, 0);
  EXPECT_EQ(app.line, 8);  // its [[system]] header
  const PlanSystem& db = plan->systems[1];
  EXPECT_EQ(db.priority, 1);
  EXPECT_EQ(db.snapshot, "3fa2c81e");
  EXPECT_EQ(db.host, "fin-db-01");
  EXPECT_EQ(db.paths, (std::vector<std::string>{"/srv/db", "/etc"}));
  EXPECT_EQ(db.target, "/srv/new/fin-db");
  EXPECT_EQ(db.check, "test -f srv/db/PG_VERSION");
  EXPECT_EQ(db.check_timeout.count(), 30);
  EXPECT_EQ(db.vaults, (std::vector<std::string>{"127.0.0.1:7443", "[::1]:7443"}));
  EXPECT_EQ(db.connections, 8);
}

TEST(PlanParseTest, DefaultsAreOneAtATimeStopOnFailure) {
  auto plan = ParsePlan(OneSystem(kMinimal), kFile);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->parallel, 1);
  EXPECT_EQ(plan->on_failure, OnFailure::kStop);
  EXPECT_EQ(plan->connections, 4);
}

TEST(PlanParseTest, PlanWideVaultsAreForSystemsThatNameNone) {
  auto plan = ParsePlan(
      "name = \"p\"\nvaults = [\"dr.city:7420\"]\n[[system]]\n" + std::string(kMinimal), kFile);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->vaults, (std::vector<std::string>{"dr.city:7420"}));
  EXPECT_TRUE(plan->systems[0].vaults.empty());
  EXPECT_NE(ErrorOf("name = \"p\"\nvaults = [\"dr.city\"]\n[[system]]\n" + std::string(kMinimal))
                .find("line 2: key 'vaults': 'dr.city' is not host:port"),
            std::string::npos);
}

TEST(PlanOrderTest, LowerPrioritiesFirstFileOrderWithin) {
  auto plan = ParsePlan(kGood, kFile);
  ASSERT_TRUE(plan.ok());
  // fin-db (1) alone, then fin-app and hr-web (2) in file order.
  EXPECT_EQ(PlanOrder(*plan), (std::vector<std::vector<size_t>>{{1}, {0, 2}}));

  Plan p;
  for (int prio : {30, 5, 30, 1, 5}) {
    PlanSystem s;
    s.priority = prio;
    p.systems.push_back(s);
  }
  EXPECT_EQ(PlanOrder(p), (std::vector<std::vector<size_t>>{{3}, {1, 4}, {0, 2}}));
}

TEST(PlanParseTest, UnknownKeysAreRefusedWithFileLineSystemAndKey) {
  std::string e = ErrorOf("name = \"p\"\nparalel = 2\n[[system]]\n" + std::string(kMinimal));
  EXPECT_NE(e.find(std::string(kFile) + " line 2: unknown key 'paralel'"), std::string::npos) << e;

  e = ErrorOf(OneSystem(std::string(kMinimal) + "chek = \"true\"\n"));
  EXPECT_NE(e.find(std::string(kFile) + " line 7: system 's1': unknown key 'chek'"),
            std::string::npos)
      << e;

  e = ErrorOf(OneSystem(kMinimal) + "[extra]\nx = 1\n");
  EXPECT_NE(e.find("unknown section [extra]"), std::string::npos) << e;
}

TEST(PlanParseTest, MissingKeysAreNamed) {
  std::string e = ErrorOf("[[system]]\nname = \"a\"\n");
  EXPECT_NE(e.find("key 'name' is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("line 1: system 'a': key 'priority' is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("system 'a': key 'state' is missing"), std::string::npos) << e;
  EXPECT_NE(e.find("system 'a': key 'target' is missing"), std::string::npos) << e;

  e = ErrorOf(OneSystem("priority = 1\nstate = \"/s\"\ntarget = \"/t\"\n"));
  EXPECT_NE(e.find("system #1: key 'name' is missing"), std::string::npos) << e;

  e = ErrorOf("name = \"p\"\n");
  EXPECT_NE(e.find("names no system"), std::string::npos) << e;
}

TEST(PlanParseTest, EveryProblemIsListedNotJustTheFirst) {
  std::string e = ErrorOf(
      "name = \"p\"\nparallel = 0\n[[system]]\nname = \"a\"\npriority = 0\nstate = \"rel\"\n"
      "target = \"/t\"\n");
  EXPECT_NE(e.find("line 2: key 'parallel' must be a whole number from 1 to 64"), std::string::npos)
      << e;
  EXPECT_NE(e.find("line 5: system 'a': key 'priority' must be a whole number from 1 to 1000"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("line 6: system 'a': key 'state' must be an absolute path"), std::string::npos)
      << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 2) << e;
}

TEST(PlanParseTest, BadValuesAreRefused) {
  auto with = [](const std::string& extra) { return OneSystem(std::string(kMinimal) + extra); };
  struct Case {
    std::string text, expect;
  } cases[] = {
      {"name = \"p\"\nparallel = 65\n[[system]]\n" + std::string(kMinimal), "'parallel'"},
      {"name = \"p\"\nparallel = \"2\"\n[[system]]\n" + std::string(kMinimal), "'parallel'"},
      {"name = \"p\"\non_failure = \"retry\"\n[[system]]\n" + std::string(kMinimal),
       "'on_failure' must be \"stop\" or \"continue\""},
      {"name = \"\"\n[[system]]\n" + std::string(kMinimal), "'name' must not be empty"},
      {"name = \"p\"\nformat = 2\n[[system]]\n" + std::string(kMinimal), "'format' is 2"},
      {OneSystem("name = \"a b\"\npriority = 1\nstate = \"/s\"\ntarget = \"/t\"\n"),
       "key 'name' must be 1 to 64 letters"},
      {OneSystem("name = \"a\"\npriority = 1001\nstate = \"/s\"\ntarget = \"/t\"\n"),
       "'priority' must be a whole number from 1 to 1000"},
      {OneSystem("name = \"a\"\npriority = 1.5\nstate = \"/s\"\ntarget = \"/t\"\n"),
       "'priority' must be a whole number"},
      {OneSystem("name = \"a\"\npriority = 1\nstate = \"/s\"\ntarget = \"new/fin\"\n"),
       "key 'target' must be an absolute path"},
      {OneSystem("name = \"a\"\npriority = 1\nstate = \"/s\"\ntarget = \"/srv/..\"\n"),
       "key 'target' must not be the root directory"},
      {with("snapshot = \"LATEST\"\n"), "key 'snapshot' must be \"latest\""},
      {with("snapshot = \"3fa2-c81e\"\n"), "key 'snapshot'"},
      {with("vaults = [\"nowhere\"]\n"), "key 'vaults': 'nowhere' is not host:port"},
      {with("vaults = []\n"), "key 'vaults' must be a non-empty array of strings"},
      {with("paths = \"/srv\"\n"), "key 'paths' must be a non-empty array of strings"},
      {with("paths = [1]\n"), "key 'paths[]' must be a string"},
      {with("check_timeout = 5\n"), "key 'check_timeout' is given without a 'check'"},
      {with("check = \"true\"\ncheck_timeout = 0\n"), "'check_timeout' must be a whole number"},
      {with("connections = 65\n"), "'connections' must be a whole number from 1 to 64"},
      {with("check = \"\"\n"), "key 'check' must not be empty"},
      {"name = \"p\"\n[system]\n" + std::string(kMinimal), "one [[system]] per system"},
      {"name = \"p\"\nsystem = [1, 2]\n", "one [[system]] per system"},
  };
  for (const Case& c : cases) {
    const std::string e = ErrorOf(c.text);
    EXPECT_NE(e.find(c.expect), std::string::npos) << "got: " << e << "\nfor:\n" << c.text;
    EXPECT_TRUE(e.starts_with(kFile)) << e;
  }
}

TEST(PlanParseTest, DuplicateNamesAndOverlappingTargetsAreRefused) {
  std::string e = ErrorOf(
      "name = \"p\"\n"
      "[[system]]\nname = \"a\"\npriority = 1\nstate = \"/s\"\ntarget = \"/t/a\"\n"
      "[[system]]\nname = \"a\"\npriority = 2\nstate = \"/s\"\ntarget = \"/t/b\"\n");
  EXPECT_NE(e.find("line 7: system 'a': key 'name': a second system of this name (the first is "
                   "at line 2)"),
            std::string::npos)
      << e;

  e = ErrorOf(
      "name = \"p\"\n"
      "[[system]]\nname = \"a\"\npriority = 1\nstate = \"/s\"\ntarget = \"/t/a\"\n"
      "[[system]]\nname = \"b\"\npriority = 1\nstate = \"/s\"\ntarget = \"/t/a/\"\n");
  EXPECT_NE(e.find("system 'b': key 'target': /t/a is also the target of system 'a'"),
            std::string::npos)
      << e;

  e = ErrorOf(
      "name = \"p\"\n"
      "[[system]]\nname = \"a\"\npriority = 1\nstate = \"/s\"\ntarget = \"/t/a/inner\"\n"
      "[[system]]\nname = \"b\"\npriority = 2\nstate = \"/s\"\ntarget = \"/t/a\"\n");
  EXPECT_NE(e.find("system 'b': key 'target': /t/a overlaps the target of system 'a'"),
            std::string::npos)
      << e;

  // Side by side is fine: /t/a and /t/ab share a prefix, not a directory.
  EXPECT_TRUE(ParsePlan("name = \"p\"\n"
                        "[[system]]\nname = \"a\"\npriority = 1\nstate = \"/s\"\ntarget = "
                        "\"/t/a\"\n"
                        "[[system]]\nname = \"b\"\npriority = 1\nstate = \"/s\"\ntarget = "
                        "\"/t/ab\"\n",
                        kFile)
                  .ok());
}

TEST(PlanParseTest, TomlThatDoesNotParseNamesItsLine) {
  const std::string e = ErrorOf("name = \"p\"\n\n[[system]\n");
  EXPECT_NE(e.find(std::string(kFile) + " line 3: not valid TOML"), std::string::npos) << e;
}

TEST(PlanLoadTest, AMissingFileIsNotFound) {
  auto plan = LoadPlan("/nonexistent/plan.toml");
  ASSERT_FALSE(plan.ok());
  EXPECT_TRUE(plan.status().IsNotFound()) << plan.status().ToString();
  EXPECT_NE(plan.status().message().find("/nonexistent/plan.toml"), std::string::npos);
}

class PlanHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-plan-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Touch(const std::string& path) { std::ofstream(path) << "x"; }
  std::string dir_;
};

TEST_F(PlanHostTest, TargetsMustBeNewOrEmptyDirectories) {
  EXPECT_TRUE(CheckPlanTarget(dir_ + "/new").ok());
  EXPECT_TRUE(CheckPlanTarget(dir_ + "/new/deeper/still").ok());
  fs::create_directory(dir_ + "/empty");
  EXPECT_TRUE(CheckPlanTarget(dir_ + "/empty").ok());

  fs::create_directory(dir_ + "/full");
  Touch(dir_ + "/full/data");
  Status s = CheckPlanTarget(dir_ + "/full");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("is not empty (it holds 'data')"), std::string::npos) << s.message();

  Touch(dir_ + "/file");
  s = CheckPlanTarget(dir_ + "/file");
  EXPECT_NE(s.message().find("exists and is not a directory"), std::string::npos) << s.message();
  s = CheckPlanTarget(dir_ + "/file/below/deeper");
  EXPECT_NE(s.message().find("is not a directory"), std::string::npos) << s.message();

  fs::create_symlink(dir_ + "/empty", dir_ + "/link");
  s = CheckPlanTarget(dir_ + "/link");
  EXPECT_NE(s.message().find("is a symbolic link"), std::string::npos) << s.message();
}

TEST_F(PlanHostTest, NothingIsRestoredWhenAStateOrATargetIsBad) {
  fs::create_directory(dir_ + "/full");
  Touch(dir_ + "/full/data");
  fs::create_directory(dir_ + "/not-enrolled");
  const std::string text = "name = \"p\"\n[[system]]\nname = \"db\"\npriority = 1\nstate = \"" +
                           dir_ + "/not-enrolled\"\ntarget = \"" + dir_ +
                           "/out-db\"\n[[system]]\nname = \"web\"\npriority = 2\nstate = \"" +
                           dir_ + "/not-enrolled\"\ntarget = \"" + dir_ + "/full\"\n";
  auto plan = ParsePlan(text, kFile);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  Status s = CheckPlanOnHost(*plan);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find(std::string(kFile) + " line 2: system 'db': key 'state': " + dir_ +
                             "/not-enrolled is not an enrolled agent state directory"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("line 7: system 'web': key 'target': " + dir_ + "/full is not empty"),
            std::string::npos)
      << s.message();

  int finished = 0;
  PlanOptions options;
  options.on_finished = [&](const SystemReport&) { ++finished; };
  auto report = RunPlan(*plan, options);
  ASSERT_FALSE(report.ok());
  EXPECT_TRUE(report.status().IsInvalidArgument());
  EXPECT_EQ(finished, 0);
  EXPECT_FALSE(fs::exists(dir_ + "/out-db"));
  EXPECT_TRUE(fs::exists(dir_ + "/full/data"));
}

TEST(PlanReportTest, JsonHasTheTimesAndCounts) {
  PlanReport r;
  r.file = kFile;
  r.name = "Finance";
  r.parallel = 2;
  r.started_micros = 1'700'000'000'000'000;
  r.finished_micros = r.started_micros + 2'500'000;
  r.total_seconds = 2.5004;
  SystemReport a;
  a.name = "fin-db";
  a.priority = 1;
  a.status = SystemStatus::kPassed;
  a.snapshot = "00000000000000ab";
  a.started_micros = r.started_micros;
  a.finished_micros = r.started_micros + 1'000'000;
  a.seconds_restore = 0.75;
  a.seconds_check = 0.25;
  a.seconds_total = 1.0;
  a.check = boost::json::object{{"command", "true"}, {"exit", 0}, {"timed_out", false}};
  SystemReport b;
  b.name = "fin-app";
  b.priority = 2;
  b.status = SystemStatus::kFailed;
  b.failure = "check failed: exit 3";
  SystemReport c;
  c.name = "hr-web";
  c.priority = 3;
  c.status = SystemStatus::kSkipped;
  c.failure = "not run";
  r.systems = {a, b, c};
  const boost::json::object j = PlanReportJson(r);
  EXPECT_EQ(j.at("plan").as_string(), "Finance");
  EXPECT_EQ(j.at("ok").as_bool(), false);
  EXPECT_EQ(j.at("started").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j.at("finished").as_string(), "2023-11-14T22:13:22.500Z");
  EXPECT_DOUBLE_EQ(j.at("total_seconds").as_double(), 2.5);
  EXPECT_EQ(j.at("on_failure").as_string(), "stop");
  EXPECT_EQ(j.at("passed").as_uint64(), 1u);
  EXPECT_EQ(j.at("failed").as_uint64(), 1u);
  EXPECT_EQ(j.at("skipped").as_uint64(), 1u);
  const auto& systems = j.at("systems").as_array();
  ASSERT_EQ(systems.size(), 3u);
  const auto& s0 = systems[0].as_object();
  EXPECT_EQ(s0.at("name").as_string(), "fin-db");
  EXPECT_EQ(s0.at("status").as_string(), "passed");
  EXPECT_TRUE(s0.at("ok").as_bool());
  EXPECT_TRUE(s0.at("failure").is_null());
  EXPECT_EQ(s0.at("snapshot").as_string(), "00000000000000ab");
  EXPECT_EQ(s0.at("started").as_string(), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(s0.at("finished").as_string(), "2023-11-14T22:13:21.000Z");
  EXPECT_DOUBLE_EQ(s0.at("seconds_restore").as_double(), 0.75);
  EXPECT_DOUBLE_EQ(s0.at("seconds_check").as_double(), 0.25);
  EXPECT_DOUBLE_EQ(s0.at("seconds_total").as_double(), 1.0);
  EXPECT_EQ(s0.at("check").at("exit").as_int64(), 0);
  const auto& s1 = systems[1].as_object();
  EXPECT_FALSE(s1.at("ok").as_bool());
  EXPECT_EQ(s1.at("failure").as_string(), "check failed: exit 3");
  EXPECT_TRUE(s1.at("snapshot").is_null());
  EXPECT_TRUE(s1.at("check").is_null());
  const auto& s2 = systems[2].as_object();
  EXPECT_EQ(s2.at("status").as_string(), "skipped");
  EXPECT_TRUE(s2.at("started").is_null());
}

}  // namespace
}  // namespace cairn::restore
