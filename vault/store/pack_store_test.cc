// The PackStore conformance suite (pack_store.h): one set of tests that
// every PackStore must pass, run here against the local store over each of
// the Envs it is used with: POSIX and io_uring on a real directory, memory,
// and the fault-injection Env that simulates power loss beneath it. A new
// store joins by adding its factory to kStores, as the Ceph RADOS store
// has (run against a real single-node cluster by store.rados_conformance).
#include "vault/store/pack_store.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <random>
#include <thread>

#include "lib/io/fault_injection_env.h"
#include "lib/io/mem_env.h"
#include "lib/io/uring_env.h"
#include "lib/repo/pack.h"
#include "lib/repo/record.h"
#include "lib/repo/test_util.h"
#include "vault/store/rados_pack_store.h"

namespace cairn::vault {
namespace {

using repo::testing::RandomBytes;
using repo::testing::ScratchDir;

// One store under test and what it can do.
struct Fixture {
  std::unique_ptr<io::Env> owned_env;
  std::unique_ptr<io::FaultInjectionEnv> fault;  // set when power loss can be simulated
  std::unique_ptr<PackStore> store;
};

struct StoreKind {
  const char* name;
  std::function<Fixture(const std::string& scratch)> make;
};

const StoreKind kStores[] = {
    {"LocalPosix",
     [](const std::string& dir) {
       Fixture f;
       f.store = std::move(*OpenLocalPackStore(io::Env::Posix(), dir + "/packs"));
       return f;
     }},
    {"LocalUring",
     [](const std::string& dir) {
       Fixture f;
       f.owned_env = io::NewUringEnv();
       f.store = std::move(*OpenLocalPackStore(f.owned_env.get(), dir + "/packs"));
       return f;
     }},
    {"LocalMem",
     [](const std::string&) {
       Fixture f;
       f.owned_env = io::NewMemEnv();
       f.store = std::move(*OpenLocalPackStore(f.owned_env.get(), "/v/packs"));
       return f;
     }},
    {"LocalOverFaultInjection",
     [](const std::string&) {
       Fixture f;
       f.owned_env = io::NewMemEnv();
       f.fault = std::make_unique<io::FaultInjectionEnv>(f.owned_env.get());
       f.store = std::move(*OpenLocalPackStore(f.fault.get(), "/v/packs"));
       return f;
     }},
    // A real Ceph cluster (tests/ceph/cluster), named by CAIRN_CEPH_CONF:
    // ctest's store.rados_conformance starts one and runs this suite on it.
    // Each test has a namespace prefix of its own.
    {"Rados",
     [](const std::string&) {
       Fixture f;
       const char* conf = std::getenv("CAIRN_CEPH_CONF");
       if (conf == nullptr) return f;
       RadosStoreOptions o;
       o.pool = "cairn";
       o.ceph_conf = conf;
       o.user = "admin";
       o.prefix = "test-" + std::to_string(std::random_device{}()) + "/";
       o.op_timeout = std::chrono::seconds(20);
       o.write_chunk = 64 << 10;  // several writes in flight per pack
       auto store = OpenRadosPackStore(o);
       EXPECT_TRUE(store.ok()) << store.status().ToString();
       if (store.ok()) f.store = std::move(*store);
       return f;
     }},
};

class PackStoreConformance : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    if (std::string(GetParam().name) == "Rados" && std::getenv("CAIRN_CEPH_CONF") == nullptr) {
      GTEST_SKIP() << "no Ceph cluster: CAIRN_CEPH_CONF is unset (ctest's "
                      "store.rados_conformance runs this suite on one)";
    }
    fixture_ = GetParam().make(scratch_.path());
    ASSERT_NE(fixture_.store, nullptr);
    store_ = fixture_.store.get();
    encoder_ = std::move(*repo::RecordEncoder::Create(repo::testing::TestKeys(), {}));
  }

  Bytes Record(uint64_t seed, size_t size = 3000) {
    Bytes plain = RandomBytes(size, seed), out;
    EXPECT_TRUE(encoder_->Encode(repo::RecordType::kData, encoder_->Id(plain), plain, &out).ok());
    return out;
  }

  // A pack of `n` records, synced and (optionally) sealed.
  std::vector<repo::PackEntry> WritePack(uint32_t dept, uint64_t id, int n, bool seal = true) {
    EXPECT_TRUE(store_->PrepareDepartment(dept).ok());
    auto w = repo::PackWriter::Create(store_->env(), store_->PackPath(dept, id),
                                      {repo::kPackVersion, dept, id});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return {};
    for (int i = 0; i < n; ++i) EXPECT_TRUE((*w)->Append(Record(id * 1000 + i)).ok());
    EXPECT_TRUE((*w)->Sync().ok());
    auto entries = (*w)->entries();
    if (seal) {
      EXPECT_TRUE((*w)->Seal().ok());
    }
    return entries;
  }

  ScratchDir scratch_;
  Fixture fixture_;
  PackStore* store_ = nullptr;
  std::unique_ptr<repo::RecordEncoder> encoder_;
};

TEST_P(PackStoreConformance, SealedPackReadsBackWhole) {
  auto entries = WritePack(3, 7, 20);
  auto reader = repo::PackReader::Open(store_->env(), store_->PackPath(3, 7));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->header().department_id, 3u);
  EXPECT_EQ((*reader)->header().pack_id, 7u);
  ASSERT_EQ((*reader)->entries().size(), entries.size());
  EXPECT_TRUE((*reader)->Verify().ok());
  for (const auto& e : entries) {
    Bytes out;
    EXPECT_TRUE((*reader)->ReadRecord(e, &out).ok());
  }
}

TEST_P(PackStoreConformance, AnExistingPackIsNeverReplaced) {
  WritePack(1, 5, 4);
  auto again =
      repo::PackWriter::Create(store_->env(), store_->PackPath(1, 5), {repo::kPackVersion, 1, 5});
  EXPECT_FALSE(again.ok());
  auto reader = repo::PackReader::Open(store_->env(), store_->PackPath(1, 5));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->entries().size(), 4u);
  EXPECT_TRUE((*reader)->Verify().ok());
}

TEST_P(PackStoreConformance, ListsPacksAndDepartmentsInOrder) {
  auto none = store_->ListPacks(9);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  WritePack(2, 30, 1);
  WritePack(2, 4, 1);
  WritePack(2, 17, 1);
  WritePack(1, 8, 1);
  EXPECT_EQ(*store_->ListPacks(2), (std::vector<uint64_t>{4, 17, 30}));
  EXPECT_EQ(*store_->ListPacks(1), (std::vector<uint64_t>{8}));
  EXPECT_EQ(*store_->ListDepartments(), (std::vector<uint32_t>{1, 2}));
  EXPECT_FALSE(store_->Describe().empty());
}

TEST_P(PackStoreConformance, RecoveryCutsATornTailDurably) {
  WritePack(4, 1, 5, /*seal=*/false);
  // A torn write: half a record's bytes after the last synced record.
  {
    auto f = store_->env()->NewAppendableFile(store_->PackPath(4, 1));
    ASSERT_TRUE(f.ok());
    Bytes half = Record(99);
    half.resize(half.size() / 2);
    ASSERT_TRUE((*f)->Append(half).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  auto rec = repo::RecoverPack(store_->env(), store_->PackPath(4, 1), 0);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->entries.size(), 5u);
  EXPECT_LT(rec->recovered_size, rec->original_size);
  EXPECT_EQ(*store_->env()->GetFileSize(store_->PackPath(4, 1)), rec->recovered_size);
  if (fixture_.fault) {
    ASSERT_TRUE(fixture_.fault->DropUnsyncedData().ok());
    EXPECT_EQ(*store_->env()->GetFileSize(store_->PackPath(4, 1)), rec->recovered_size);
  }
}

TEST_P(PackStoreConformance, ReadsFromManyThreadsAtOnce) {
  auto entries = WritePack(6, 2, 64);
  auto reader = repo::PackReader::Open(store_->env(), store_->PackPath(6, 2));
  ASSERT_TRUE(reader.ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < entries.size(); i += 4) {
        Bytes out;
        if (!(*reader)->ReadRecord(entries[i], &out).ok()) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllStores, PackStoreConformance, ::testing::ValuesIn(kStores),
                         [](const ::testing::TestParamInfo<StoreKind>& param) {
                           return std::string(param.param.name);
                         });

// Power loss: what was synced survives, a new pack's name only once synced,
// and nothing else.
// Only an Env that can simulate power loss can show it; the local store is
// checked over one.
class PackStorePowerLoss : public PackStoreConformance {};

TEST_P(PackStorePowerLoss, KeepsExactlyWhatWasSynced) {
  io::FaultInjectionEnv* fault = fixture_.fault.get();
  ASSERT_NE(fault, nullptr);
  ASSERT_TRUE(store_->PrepareDepartment(1).ok());
  auto w =
      repo::PackWriter::Create(store_->env(), store_->PackPath(1, 1), {repo::kPackVersion, 1, 1});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Record(1)).ok());
  ASSERT_TRUE((*w)->Sync().ok());  // the name and one record are durable
  const uint64_t synced = (*w)->synced_size();
  ASSERT_TRUE((*w)->Append(Record(2)).ok());  // never synced
  auto never =
      repo::PackWriter::Create(store_->env(), store_->PackPath(1, 2), {repo::kPackVersion, 1, 2});
  ASSERT_TRUE(never.ok());
  ASSERT_TRUE((*never)->Append(Record(3)).ok());
  ASSERT_TRUE(fault->DropUnsyncedData().ok());
  EXPECT_EQ(*store_->ListPacks(1), (std::vector<uint64_t>{1}));
  EXPECT_EQ(*store_->env()->GetFileSize(store_->PackPath(1, 1)), synced);
  auto rec = repo::RecoverPack(store_->env(), store_->PackPath(1, 1), synced);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->entries.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(StoresOverFaultInjection, PackStorePowerLoss,
                         ::testing::Values(kStores[3]),
                         [](const ::testing::TestParamInfo<StoreKind>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace cairn::vault
