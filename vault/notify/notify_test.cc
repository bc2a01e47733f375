// The configuration file, the syslog message format, and the follower over
// a real TCP collector that goes away and comes back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "lib/repo/test_util.h"
#include "vault/config.h"
#include "vault/notify/follower.h"
#include "vault/notify/sinks.h"
#include "vault/vault.h"

namespace cairn::vault {
namespace {

using repo::testing::ScratchDir;

TEST(ConfigTest, AFullFileParses) {
  auto c = ParseConfig(R"(format = 1
site = "city-dc"
[serve]
listen = "0.0.0.0:7420"
http = "127.0.0.1:7443"
threads = 8
[syslog]
target = "siem.city:6514"
transport = "tls"
ca = "/etc/cairn/siem-ca.pem"
[webhook]
url = "https://hooks.city/cairn"
[alerts]
agent_unseen_seconds = 7200
job_failed = false
disk_free_percent = 15
)",
                       "vault.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->site, "city-dc");
  EXPECT_EQ(c->http, "127.0.0.1:7443");
  EXPECT_EQ(c->threads, 8);
  EXPECT_EQ(c->syslog_transport, "tls");
  EXPECT_EQ(c->alerts.agent_unseen_seconds, 7200u);
  EXPECT_FALSE(c->alerts.job_failed);
  EXPECT_EQ(c->alerts.disk_free_percent, 15u);
  EXPECT_EQ(c->alerts.job_missed_seconds, AlertThresholds{}.job_missed_seconds);
}

// A bad file names the key and the line, and is refused as a whole.
TEST(ConfigTest, MistakesNameTheKeyAndTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"format = 1\n[serve]\nlisten = \"0.0.0.0:7420\"\nhtp = \"x:1\"\n",
       "vault.toml line 4: unknown key 'htp' in [serve]"},
      {"[alerts]\n\ndisk_free_percent = \"ten\"\n",
       "vault.toml line 3: key 'alerts.disk_free_percent' must be a whole number from 0 to 100"},
      {"[alerts]\ndisk_free_percent = 101\n", "line 2: key 'alerts.disk_free_percent'"},
      {"[alerts]\njob_failed = 1\n", "line 2: key 'alerts.job_failed' must be true or false"},
      {"[sislog]\ntarget = \"a:1\"\n", "line 1: unknown section [sislog]"},
      {"[serve]\nlisten = \"no port\"\n", "key 'serve.listen'"},
      {"[syslog]\ntarget = \"a:514\"\ntransport = \"udp\"\n", "'syslog.transport' must be"},
      {"[webhook]\nurl = \"ftp://x/\"\n", "'webhook.url' must be an http:// or https:// URL"},
      {"[serve]\nlisten = \"a:1\n", "vault.toml line 2"},  // TOML syntax
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.text, "vault.toml");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.text << " -> " << r.status().ToString();
  }
  EXPECT_TRUE(LoadConfig("/nonexistent/vault.toml").status().IsNotFound());
}

TEST(SyslogTest, MessagesFollowRfc5424) {
  AuditEntry e;
  e.seq = 42;
  e.time_micros = 1'796'000'000'123'456ull;
  e.actor = "user:ali\"ce]";
  e.action = "user.login_failed";
  e.department = "finance";
  e.prev = std::string(64, '0');
  e.hash = std::string(64, 'a');
  e.line = R"({"seq":42})";
  const std::string m = FormatSyslog(e, "vault 1", "cairn-vault", 77);
  EXPECT_EQ(m,
            "<108>1 2026-11-30T00:53:20.123Z vault_1 cairn-vault 77 user.login_failed "
            "[cairn@32473 seq=\"42\" hash=\"" +
                e.hash + "\" prev=\"" + e.prev +
                "\" actor=\"user:ali\\\"ce\\]\" department=\"finance\"] {\"seq\":42}");
  e.action = "alert.fire";
  e.details["severity"] = "critical";
  e.department.clear();
  EXPECT_EQ(FormatSyslog(e, "h", "a", 1).substr(0, 5), "<106>");
  e.action = "department.create";
  EXPECT_EQ(FormatSyslog(e, "h", "a", 1).substr(0, 5), "<109>");
}

TEST(WebhookTest, UrlsAreChecked) {
  EXPECT_TRUE(WebhookSink::Make({"http://127.0.0.1:9/hook", "", "s"}).ok());
  EXPECT_TRUE(WebhookSink::Make({"https://hooks.city/x", "", "s"}).status().IsInvalidArgument());
  EXPECT_TRUE(WebhookSink::Make({"gopher://x/", "", "s"}).status().IsInvalidArgument());
  EXPECT_TRUE(WebhookSink::Make({"http://u:p@x/", "", "s"}).status().IsInvalidArgument());
  EXPECT_TRUE(WebhookSink::Make({"not a url", "", "s"}).status().IsInvalidArgument());
}

// A TCP collector on loopback: reads octet-counted frames and records the
// seq of each; can be stopped (gracefully: it half-closes first, drains,
// then closes) and started again on the same port.
class Collector {
 public:
  Collector() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t n = sizeof(a);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &n);
    port_ = ntohs(a.sin_port);
    ::close(listener_);
    listener_ = -1;
  }
  ~Collector() { Stop(); }
  uint16_t port() const { return port_; }

  void Start() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ::listen(listener_, 4);
    stop_ = false;
    thread_ = std::thread([this] { Serve(); });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  std::vector<uint64_t> seqs() {
    std::lock_guard<std::mutex> lock(mu_);
    return seqs_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::string buf;
      bool closing = false;
      while (true) {
        if (stop_ && !closing) {
          ::shutdown(fd, SHUT_WR);  // the FIN the vault looks for
          closing = true;
        }
        timeval tv{0, closing ? 200'000 : 50'000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char chunk[4096];
        ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
        if (n == 0 || (n < 0 && closing)) break;
        if (n < 0) continue;
        buf.append(chunk, static_cast<size_t>(n));
        while (true) {
          size_t sp = buf.find(' ');
          if (sp == std::string::npos) break;
          size_t len = std::stoul(buf.substr(0, sp));
          if (buf.size() < sp + 1 + len) break;
          std::string msg = buf.substr(sp + 1, len);
          buf.erase(0, sp + 1 + len);
          size_t at = msg.find("seq=\"");
          std::lock_guard<std::mutex> lock(mu_);
          seqs_.push_back(std::stoull(msg.substr(at + 5)));
        }
      }
      ::close(fd);
    }
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<uint64_t> seqs_;
};

TEST(FollowerTest, EveryEntryReachesACollectorThatCameAndWentOnceInOrder) {
  ScratchDir dir;
  InitOptions init;
  init.data_dir = dir.File("vault");
  ASSERT_TRUE(InitVault(init).ok());
  auto vault = *Vault::Open(init.data_dir, {});
  AuditLog* log = vault->audit();
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(log->Append("local:test", "local", "test.event", "", std::to_string(i), {}).ok());
    }
  };
  Collector collector;
  SyslogOptions so;
  so.target = "127.0.0.1:" + std::to_string(collector.port());
  so.deadline = std::chrono::milliseconds(2000);
  FollowerOptions fo;
  fo.name = "syslog";
  fo.poll = std::chrono::milliseconds(20);
  fo.retry_min = fo.retry_max = std::chrono::milliseconds(50);
  AuditFollower follower(log, vault->env(), init.data_dir, std::make_unique<SyslogSink>(so), fo);
  append(10);  // before the collector exists: they wait
  follower.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_GT(follower.Backlog(), 0u);
  collector.Start();
  for (int round = 0; round < 6; ++round) {
    append(25);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    if (round % 2 == 1) {
      collector.Stop();  // during activity
      append(15);
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      collector.Start();
    }
  }
  const uint64_t head = log->HeadSeq();
  for (int i = 0; i < 200 && follower.delivered() < head; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  follower.Stop();
  collector.Stop();
  auto seqs = collector.seqs();
  ASSERT_EQ(seqs.size(), head);
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1) << "at " << i;
  EXPECT_EQ(follower.Backlog(), 0u);
  // A new follower resumes from the durable cursor: nothing is sent twice.
  collector.Start();
  append(3);
  AuditFollower again(log, vault->env(), init.data_dir, std::make_unique<SyslogSink>(so), fo);
  again.Start();
  for (int i = 0; i < 100 && again.delivered() < log->HeadSeq(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  again.Stop();
  collector.Stop();
  seqs = collector.seqs();
  ASSERT_EQ(seqs.size(), log->HeadSeq());
  EXPECT_EQ(seqs.back(), log->HeadSeq());
}

}  // namespace
}  // namespace cairn::vault
