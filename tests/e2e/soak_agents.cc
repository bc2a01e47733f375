// Load tool for soak_test.sh: many agents against one real vault, over the
// real protocol (lib/client, agent/vault_session.h), with their backups
// spread over a simulated night.
//
// usage: soak_agents TOKENS STATE_ROOT VAULT_ADDR VAULT_PID NIGHT_SECONDS
//                    BACKUPS CHUNKS CHANGE_PERCENT OUT.json
//
// TOKENS has one line per agent: "DEPARTMENT TOKEN". Each agent enrols
// (STATE_ROOT/<n>; one enrolled by an earlier run is reused), then makes BACKUPS backups at random
// instants of the night (NIGHT_SECONDS of wall time), one thread per agent. A backup is one file of
// CHUNKS chunks of 16 KiB, of which CHANGE_PERCENT change from one backup to the next (the rest
// deduplicate): have_chunks, the missing records, the tree, flush and commit, as cairn-agent sends
// them. Meanwhile the vault process (VAULT_PID) is sampled every second: RSS, heap, CPU and open
// descriptors. OUT.json gets the figures; the exit status is 0 when every enrolment and backup
// succeeded.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/vault_session.h"
#include "lib/client/enroll.h"
#include "lib/client/identity.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"
#include "tests/e2e/single_file_root.h"

namespace {

using cairn::Bytes;
using cairn::Status;
using cairn::crypto::ChunkId;
using Clock = std::chrono::steady_clock;
namespace repo = cairn::repo;

constexpr size_t kChunkSize = 16384;

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Bytes ChunkContent(uint64_t agent, uint64_t chunk, uint64_t generation) {
  Bytes out(kChunkSize);
  uint64_t s = SplitMix((agent << 40) ^ (chunk << 16) ^ generation);
  for (size_t i = 0; i < out.size(); i += 8) {
    s = SplitMix(s);
    std::memcpy(out.data() + i, &s, 8);
  }
  return out;
}

struct Results {
  std::mutex mu;
  std::vector<double> commit_ms, backup_ms;
  uint64_t backups_ok = 0, bytes_sent = 0, bytes_logical = 0;
  std::map<std::string, int> errors;
  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ++errors[what.substr(0, 160)];
  }
};

// One backup of agent `n`; generations[c] says which version chunk c is at.
Status Backup(const cairn::client::Identity& id, uint64_t n, std::vector<uint64_t>* generations,
              int change_percent, std::mt19937_64* rng, Results* out) {
  const auto start = Clock::now();
  for (auto& g : *generations) {
    if (static_cast<int>((*rng)() % 100) < change_percent) ++g;
  }
  CAIRN_ASSIGN_OR_RETURN(auto encoder, repo::RecordEncoder::Create(id.keys, {}));
  CAIRN_ASSIGN_OR_RETURN(auto session,
                         cairn::agent::OpenVaultSession(id, {"/soak/" + std::to_string(n)}));
  std::vector<ChunkId> ids;
  std::vector<Bytes> contents;
  for (size_t c = 0; c < generations->size(); ++c) {
    contents.push_back(ChunkContent(n, c, (*generations)[c]));
    ids.push_back(encoder->Id(contents.back()));
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<bool> have, session->HaveChunks(ids));
  uint64_t sent = 0;
  Bytes record;
  for (size_t c = 0; c < ids.size(); ++c) {
    if (have[c]) continue;
    CAIRN_RETURN_IF_ERROR(encoder->Encode(repo::RecordType::kData, ids[c], contents[c], &record));
    CAIRN_RETURN_IF_ERROR(session->PutRecord(record));
    sent += record.size();
  }
  const uint64_t size = ids.size() * kChunkSize;
  std::vector<repo::ContentRef> refs;
  for (const ChunkId& c : ids) refs.push_back({repo::RefKind::kData, c, kChunkSize});
  CAIRN_ASSIGN_OR_RETURN(Bytes root_bytes, repo::EncodeDirPart(cairn::testing::SingleFileRoot(
                                               "data.bin", size, std::move(refs))));
  const ChunkId root_id = encoder->Id(root_bytes);
  CAIRN_RETURN_IF_ERROR(encoder->Encode(repo::RecordType::kTree, root_id, root_bytes, &record));
  CAIRN_RETURN_IF_ERROR(session->PutRecord(record));
  sent += record.size();
  ids.push_back(root_id);
  const auto commit_start = Clock::now();
  CAIRN_RETURN_IF_ERROR(session->Flush());
  cairn::proto::SnapshotStats stats;
  stats.files = 1;
  stats.bytes = size;
  CAIRN_RETURN_IF_ERROR(session->Commit(root_id, ids, stats).status());
  const auto end = Clock::now();
  std::lock_guard<std::mutex> lock(out->mu);
  out->commit_ms.push_back(std::chrono::duration<double, std::milli>(end - commit_start).count());
  out->backup_ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  ++out->backups_ok;
  out->bytes_sent += sent;
  out->bytes_logical += size;
  return Status::OK();
}

// The vault process, sampled.
struct Sample {
  double rss_mib = 0, heap_mib = 0, cpu_s = 0;
  int fds = 0;
  int sockets = 0;  // of fds
};

Sample Probe(int pid) {
  Sample s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_mib = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("RssAnon:", 0) == 0) s.heap_mib = std::atof(line.c_str() + 8) / 1024;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
      if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    s.cpu_s = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  }
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(fd_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      ++s.fds;
      char target[64] = {};
      const std::string link = fd_dir + "/" + e->d_name;
      if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
          std::strncmp(target, "socket:", 7) == 0) {
        ++s.sockets;
      }
    }
    closedir(d);
  }
  return s;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 10) {
    std::fprintf(stderr,
                 "usage: soak_agents TOKENS STATE_ROOT VAULT_ADDR VAULT_PID NIGHT_SECONDS BACKUPS "
                 "CHUNKS CHANGE_PERCENT OUT.json\n");
    return 2;
  }
  const std::string state_root = argv[2], vault = argv[3], out_path = argv[9];
  const int vault_pid = std::atoi(argv[4]), night = std::atoi(argv[5]),
            backups = std::atoi(argv[6]), chunks = std::atoi(argv[7]), change = std::atoi(argv[8]);
  std::vector<std::pair<std::string, std::string>> tokens;
  {
    std::ifstream in(argv[1]);
    std::string dept, token;
    while (in >> dept >> token) tokens.emplace_back(dept, token);
  }
  if (tokens.empty() || night < 1 || backups < 1 || chunks < 1 || change < 0 || change > 100) {
    std::fprintf(stderr, "soak_agents: bad arguments\n");
    return 2;
  }
  Results results;
  // Enrolment, 8 at a time.
  std::vector<std::optional<cairn::client::Identity>> ids(tokens.size());
  const auto enroll_start = Clock::now();
  {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 8; ++w) {
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < tokens.size();) {
          cairn::client::EnrollOptions o;
          o.vault = vault;
          o.token = tokens[i].second;
          o.state_dir = state_root + "/" + std::to_string(i);
          o.host = tokens[i].first + "-srv" + std::to_string(i);
          // A second night reuses the first night's agents.
          if (!cairn::client::HoldsEnrollment(o.state_dir)) {
            auto r = cairn::client::Enroll(o);
            if (!r.ok()) {
              results.Error("enroll: " + r.status().ToString());
              continue;
            }
          }
          auto id = cairn::client::LoadIdentity(o.state_dir);
          if (!id.ok()) {
            results.Error("load identity: " + id.status().ToString());
            continue;
          }
          ids[i] = std::move(*id);
        }
      });
    }
    for (auto& t : workers) t.join();
  }
  const double enroll_s = std::chrono::duration<double>(Clock::now() - enroll_start).count();
  std::fprintf(stderr, "soak_agents: %zu agents enrolled in %.1f s\n", tokens.size(), enroll_s);

  // The night.
  std::atomic<bool> done{false};
  Sample first = Probe(vault_pid), peak = first, last = first;
  std::thread sampler([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      last = Probe(vault_pid);
      peak.rss_mib = std::max(peak.rss_mib, last.rss_mib);
      peak.heap_mib = std::max(peak.heap_mib, last.heap_mib);
      peak.fds = std::max(peak.fds, last.fds);
    }
  });
  const auto night_start = Clock::now();
  std::vector<std::thread> agents;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ids[i]) continue;
    agents.emplace_back([&, i] {
      std::mt19937_64 rng(i * 7919 + 1);
      std::vector<double> at;
      for (int b = 0; b < backups; ++b)
        at.push_back(std::uniform_real_distribution<>(0, night)(rng));
      std::sort(at.begin(), at.end());
      std::vector<uint64_t> generations(chunks, 0);
      for (double t : at) {
        std::this_thread::sleep_until(night_start + std::chrono::duration<double>(t));
        Status s = Backup(*ids[i], i, &generations, change, &rng, &results);
        if (!s.ok()) results.Error("backup: " + s.ToString());
      }
    });
  }
  for (auto& t : agents) t.join();
  const double night_s = std::chrono::duration<double>(Clock::now() - night_start).count();
  done = true;
  sampler.join();
  last = Probe(vault_pid);

  int errors = 0;
  for (const auto& [what, n] : results.errors) errors += n;
  std::ofstream out(out_path);
  out << "{\"agents\": " << tokens.size() << ", \"enrolled\": "
      << std::count_if(ids.begin(), ids.end(), [](const auto& x) { return x.has_value(); })
      << ", \"enroll_seconds\": " << enroll_s << ", \"night_seconds\": " << night_s
      << ", \"backups_planned\": " << tokens.size() * backups
      << ", \"backups_ok\": " << results.backups_ok << ", \"errors\": " << errors
      << ", \"bytes_logical\": " << results.bytes_logical
      << ", \"bytes_sent\": " << results.bytes_sent
      << ", \"sent_mb_per_s\": " << results.bytes_sent / night_s / 1e6
      << ", \"backups_per_s\": " << results.backups_ok / night_s
      << ", \"commit_ms\": {\"p50\": " << Pct(results.commit_ms, 0.5)
      << ", \"p99\": " << Pct(results.commit_ms, 0.99)
      << ", \"max\": " << Pct(results.commit_ms, 1.0) << "}"
      << ", \"backup_ms\": {\"p50\": " << Pct(results.backup_ms, 0.5)
      << ", \"p99\": " << Pct(results.backup_ms, 0.99) << "}"
      << ", \"vault\": {\"rss_mib_start\": " << first.rss_mib
      << ", \"rss_mib_peak\": " << peak.rss_mib << ", \"rss_mib_end\": " << last.rss_mib
      << ", \"heap_mib_start\": " << first.heap_mib << ", \"heap_mib_peak\": " << peak.heap_mib
      << ", \"heap_mib_end\": " << last.heap_mib
      << ", \"cpu_seconds\": " << last.cpu_s - first.cpu_s
      << ", \"cpu_percent_of_one_core\": " << 100 * (last.cpu_s - first.cpu_s) / night_s
      << ", \"fds_start\": " << first.fds << ", \"fds_peak\": " << peak.fds
      << ", \"fds_end\": " << last.fds << ", \"sockets_start\": " << first.sockets
      << ", \"sockets_end\": " << last.sockets << "}, \"error_kinds\": {";
  bool comma = false;
  for (const auto& [what, n] : results.errors) {
    std::string esc;
    for (char ch : what) esc += (ch == '"' || ch == '\\') ? ' ' : ch;
    out << (comma ? ", " : "") << "\"" << esc << "\": " << n;
    comma = true;
  }
  out << "}}\n";
  return errors == 0 && results.backups_ok == tokens.size() * backups ? 0 : 1;
}
