#include "agent/image_backup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "lib/chunk/rsync_delta.h"
#include "lib/crypto/aead.h"
#include "lib/crypto/hkdf.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"

namespace cairn::agent {
namespace {

using crypto::ChunkId;

constexpr uint32_t kExtent = 4u << 20;
constexpr uint32_t kBlock = 4096;

std::string TempDir() {
  std::string tmpl = ::testing::TempDir() + "/cairn_image_XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return std::filesystem::canonical(tmpl).string();
}

Bytes RandomBytes(size_t n, std::mt19937_64& rng) {
  Bytes b(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(b.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return b;
}

void WriteAt(const std::string& path, uint64_t offset, ByteView data) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(data.size()));
  ::close(fd);
}

Bytes ReadAll(const std::string& path) {
  Bytes out(std::filesystem::file_size(path));
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  ::close(fd);
  return out;
}

// An in-memory vault: records become durable on Flush, like the real one.
class FakeVault : public VaultSession {
 public:
  Result<std::vector<bool>> HaveChunks(const std::vector<ChunkId>& ids) override {
    if (ids.empty() || ids.size() > proto::kMaxIdsPerMessage) {
      return Status::InvalidArgument("bad have_chunks size");
    }
    std::vector<bool> out;
    for (const auto& id : ids) out.push_back(durable.count(id) > 0);
    return out;
  }
  Status PutRecord(ByteView record) override {
    auto view = repo::ParseRecord(record);
    if (!view.ok()) return view.status();
    if (durable.count(view->header.id)) return Status::InvalidArgument("put of a present chunk");
    unflushed[view->header.id] = Bytes(record.begin(), record.end());
    put_bytes += view->header.plain_size;
    if (view->header.type == repo::RecordType::kDelta) deltas_put++;
    return Status::OK();
  }
  Status Flush() override {
    for (auto& [id, r] : unflushed) durable[id] = std::move(r);
    unflushed.clear();
    return Status::OK();
  }
  Status KeepAlive() override { return Status::OK(); }
  Result<std::string> Commit(const ChunkId& root, const std::vector<ChunkId>& manifest,
                             const proto::SnapshotStats&) override {
    if (!unflushed.empty()) return Status::InvalidArgument("commit before flush");
    for (const auto& id : manifest) {
      if (!durable.count(id)) return Status::NotFound("manifest chunk missing");
    }
    if (!durable.count(root)) return Status::NotFound("root missing");
    last_manifest = manifest;
    return "snap-" + std::to_string(++commits);
  }
  void ResetCounters() {
    put_bytes = 0;
    deltas_put = 0;
  }

  std::map<ChunkId, Bytes> durable, unflushed;
  std::vector<ChunkId> last_manifest;
  uint64_t put_bytes = 0, deltas_put = 0;
  int commits = 0;
};

class ImageBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = std::move(*crypto::DepartmentKeys::Generate());
    root_ = TempDir();
    image_ = root_ + "/disk.img";
    auto store = ExtentStore::Open(root_ + "/lmdb", true);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    options_.images = {image_};
    options_.workers = 2;
    decoder_ = std::move(*repo::RecordDecoder::Create(keys_));
  }

  Result<ImageBackupResult> Backup() {
    vault_.ResetCounters();
    return RunImageBackup(keys_, store_.get(), &vault_, options_);
  }

  // Writes a random image of `extents` extents.
  void MakeImage(size_t extents) {
    Bytes data = RandomBytes(size_t{extents} * kExtent, rng_);
    WriteAt(image_, 0, data);
  }

  // Rewrites `count` distinct random 4 KiB blocks; returns their indexes.
  std::set<uint64_t> RewriteBlocks(size_t count) {
    const uint64_t blocks = std::filesystem::file_size(image_) / kBlock;
    std::set<uint64_t> chosen;
    while (chosen.size() < count) chosen.insert(rng_() % blocks);
    for (uint64_t b : chosen) WriteAt(image_, b * kBlock, RandomBytes(kBlock, rng_));
    return chosen;
  }

  // The plaintext of a record and its type. Delta records carry the ID of
  // the content they rebuild, not of their plaintext, so they are opened
  // here without the ID check (the restorer checks after applying).
  Bytes Open(const ChunkId& id, repo::RecordType* type) {
    EXPECT_TRUE(vault_.durable.count(id));
    const Bytes& record = vault_.durable[id];
    auto view = repo::ParseRecord(record);
    EXPECT_TRUE(view.ok());
    *type = view->header.type;
    Bytes plain;
    if (*type != repo::RecordType::kDelta) {
      EXPECT_TRUE(decoder_->Decode(record, &plain).ok());
      return plain;
    }
    auto key = crypto::DeriveSessionKey(keys_.data_key, view->header.key_id);
    auto opener = crypto::Opener::Create(*key);
    Bytes aad(record.begin(), record.begin() + 56);
    aad.insert(aad.end(), record.begin() + 68, record.begin() + 76);
    plain.resize(view->header.payload_size);
    EXPECT_TRUE(opener->Open(view->header.nonce, aad, view->ciphertext_and_tag, plain).ok());
    return plain;
  }

  // Rebuilds one extent from the vault: a kData record, or a delta applied
  // to its (recursively rebuilt) base; checks the ID of the result.
  Bytes Extent(const ChunkId& id, int* depth = nullptr) {
    repo::RecordType type;
    Bytes plain = Open(id, &type);
    if (depth != nullptr) *depth = 0;
    if (type == repo::RecordType::kDelta) {
      auto d = DecodeDeltaPlaintext(plain);
      EXPECT_TRUE(d.ok());
      int base_depth = 0;
      Bytes base = Extent(d->base, &base_depth);
      auto rebuilt = chunk::ApplyDelta(base, d->delta, repo::kMaxRecordPlainSize);
      EXPECT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
      plain = std::move(rebuilt).value();
      if (depth != nullptr) *depth = base_depth + 1;
    }
    EXPECT_EQ(crypto::ChunkIdHasher(keys_.id_key).Compute(plain), id)
        << "rebuilt extent does not match its ID";
    return plain;
  }

  // The image entry of the snapshot (root -> ... -> disk.img).
  repo::TreeEntry Entry(const ChunkId& root) {
    ChunkId dir = root;
    std::string rest = image_.substr(1);
    while (true) {
      const size_t slash = rest.find('/');
      const std::string name = rest.substr(0, slash);
      repo::RecordType type;
      auto part = repo::DecodeDirPart(Open(dir, &type));
      EXPECT_TRUE(part.ok()) << part.status().ToString();
      std::optional<repo::TreeEntry> found;
      for (auto& e : part->entries) {
        if (e.name == name) found = e;
      }
      EXPECT_TRUE(found.has_value()) << name;
      if (slash == std::string::npos) return *found;
      dir = found->subtree;
      rest = rest.substr(slash + 1);
    }
  }

  // Restores the whole image from a snapshot.
  Bytes Restore(const ChunkId& root) {
    repo::TreeEntry e = Entry(root);
    EXPECT_EQ(e.type, repo::EntryType::kImage);
    Bytes out(e.size, 0);
    uint64_t pos = 0;
    size_t hole = 0;
    for (const auto& ref : e.content) {
      EXPECT_EQ(ref.kind, repo::RefKind::kData);
      while (hole < e.holes.size() && e.holes[hole].offset == pos) pos += e.holes[hole++].length;
      Bytes x = Extent(ref.id);
      EXPECT_EQ(x.size(), ref.length);
      std::copy(x.begin(), x.end(), out.begin() + static_cast<std::ptrdiff_t>(pos));
      pos += x.size();
    }
    return out;
  }

  std::mt19937_64 rng_{42};
  crypto::DepartmentKeys keys_;
  std::string root_, image_;
  std::unique_ptr<ExtentStore> store_;
  std::unique_ptr<repo::RecordDecoder> decoder_;
  FakeVault vault_;
  ImageBackupOptions options_;
};

TEST_F(ImageBackupTest, ImageFirstBackupSendsEveryNonZeroExtentWhole) {
  MakeImage(4);
  WriteAt(image_, 4ull * kExtent, Bytes(kExtent, 0));               // extent 4: a hole
  WriteAt(image_, 5ull * kExtent, RandomBytes(kExtent / 2, rng_));  // short last extent
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->extents_total, 6u);
  EXPECT_EQ(r->extents_hole, 1u);
  EXPECT_EQ(r->extents_changed, 5u);
  EXPECT_EQ(r->extents_delta, 0u);
  EXPECT_EQ(vault_.deltas_put, 0u);
  // Whole extents (random data: stored raw) plus a few small tree objects.
  EXPECT_GE(r->new_bytes, 4ull * kExtent + kExtent / 2);
  EXPECT_LT(r->new_bytes, 4ull * kExtent + kExtent / 2 + 4096);

  repo::TreeEntry e = Entry(r->root_tree);
  EXPECT_EQ(e.name, "disk.img");
  EXPECT_EQ(e.size, 5ull * kExtent + kExtent / 2);
  EXPECT_EQ(e.extent_size, kExtent);
  ASSERT_EQ(e.holes.size(), 1u);
  EXPECT_EQ(e.holes[0], (repo::Hole{4ull * kExtent, kExtent}));
  EXPECT_EQ(e.content.size(), 5u);
  EXPECT_EQ(Restore(r->root_tree), ReadAll(image_));
  EXPECT_EQ(*store_->Count(), 5u);
}

TEST_F(ImageBackupTest, ImageUnchangedRebackupSendsNothing) {
  MakeImage(3);
  ASSERT_TRUE(Backup().ok());
  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->extents_changed, 0u);
  // No extent is sent again. Only the tree objects of the image's ancestor
  // directories (/tmp/..., which other processes change) may be new: tiny.
  const size_t ancestors = static_cast<size_t>(std::count(image_.begin(), image_.end(), '/'));
  EXPECT_LE(r->new_chunks, ancestors);
  EXPECT_LT(r->new_bytes, 4096u * ancestors);
  EXPECT_LT(vault_.put_bytes, 4096u * ancestors);
  EXPECT_EQ(vault_.commits, 2);
}

TEST_F(ImageBackupTest, ImageRandomBlockWritesGoAsSmallDeltas) {
  constexpr size_t kExtents = 16;  // 64 MiB
  MakeImage(kExtents);
  auto first = Backup();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const Bytes before = ReadAll(image_);

  const size_t blocks = kExtents * kExtent / kBlock / 100;  // 1% of the 4 KiB blocks
  std::set<uint64_t> written = RewriteBlocks(blocks);
  std::set<uint64_t> changed_extents;
  for (uint64_t b : written) changed_extents.insert(b * kBlock / kExtent);

  auto r = Backup();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const uint64_t whole_cost = changed_extents.size() * uint64_t{kExtent};
  std::printf(
      "1%% random 4 KiB writes: %zu blocks in %zu extents; sent %llu bytes "
      "(%llu in deltas) vs %llu for whole extents (%.2f%%); %.2fx the written bytes\n",
      written.size(), changed_extents.size(), static_cast<unsigned long long>(r->new_bytes),
      static_cast<unsigned long long>(r->delta_bytes), static_cast<unsigned long long>(whole_cost),
      100.0 * r->new_bytes / whole_cost,
      static_cast<double>(r->new_bytes) / (written.size() * kBlock));
  EXPECT_EQ(r->extents_changed, changed_extents.size());
  EXPECT_EQ(r->extents_delta, changed_extents.size());
  EXPECT_EQ(vault_.deltas_put, changed_extents.size());
  EXPECT_LE(r->new_bytes * 10, whole_cost);
  // About the bytes written, plus librsync's commands and the tree.
  EXPECT_LE(r->new_bytes, written.size() * kBlock * 11 / 10 + 64 * 1024);

  // Every base of every delta is in the manifest, and the image restores.
  std::set<ChunkId> manifest(vault_.last_manifest.begin(), vault_.last_manifest.end());
  repo::TreeEntry e = Entry(r->root_tree);
  for (const auto& ref : e.content) {
    repo::RecordType type;
    Bytes plain = Open(ref.id, &type);
    EXPECT_TRUE(manifest.count(ref.id));
    if (type == repo::RecordType::kDelta) {
      auto d = DecodeDeltaPlaintext(plain);
      ASSERT_TRUE(d.ok());
      EXPECT_TRUE(manifest.count(d->base));
    }
  }
  EXPECT_EQ(Restore(r->root_tree), ReadAll(image_));
  EXPECT_NE(Restore(first->root_tree), ReadAll(image_));
  EXPECT_EQ(Restore(first->root_tree), before);
}

TEST_F(ImageBackupTest, ImageDeltaPlaintextAppliesToTheBaseExactly) {
  MakeImage(1);
  ASSERT_TRUE(Backup().ok());
  const Bytes base = ReadAll(image_);
  WriteAt(image_, 12345 * 8, RandomBytes(300, rng_));  // unaligned, small
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->extents_delta, 1u);
  repo::TreeEntry e = Entry(r->root_tree);
  ASSERT_EQ(e.content.size(), 1u);
  repo::RecordType type;
  Bytes plain = Open(e.content[0].id, &type);
  ASSERT_EQ(type, repo::RecordType::kDelta);
  ASSERT_EQ(plain[0], kDeltaPlainVersion);
  auto d = DecodeDeltaPlaintext(plain);
  ASSERT_TRUE(d.ok());
  const crypto::ChunkIdHasher hasher(keys_.id_key);
  EXPECT_EQ(d->base, hasher.Compute(base));  // base = previous full content
  auto rebuilt = chunk::ApplyDelta(base, d->delta, kExtent);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
  EXPECT_EQ(*rebuilt, ReadAll(image_));
  EXPECT_EQ(hasher.Compute(*rebuilt), e.content[0].id);  // ID = new full content
  // Malformed plaintexts are refused.
  EXPECT_TRUE(DecodeDeltaPlaintext(ByteView(plain.data(), 32)).status().IsCorruption());
  plain[0] = 2;
  EXPECT_TRUE(DecodeDeltaPlaintext(plain).status().IsCorruption());
}

TEST_F(ImageBackupTest, ImageChainDepthBoundForcesAWholeExtent) {
  MakeImage(1);
  ASSERT_TRUE(Backup().ok());
  for (uint32_t i = 1; i <= kMaxDeltaChain + 1; ++i) {
    WriteAt(image_, uint64_t{i} * 7 * kBlock, RandomBytes(kBlock, rng_));
    auto r = Backup();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->extents_changed, 1u);
    repo::TreeEntry e = Entry(r->root_tree);
    int depth = -1;
    EXPECT_EQ(Extent(e.content[0].id, &depth), ReadAll(image_));
    if (i <= kMaxDeltaChain) {
      EXPECT_EQ(r->extents_delta, 1u) << "change " << i;
      EXPECT_EQ(depth, static_cast<int>(i));
      EXPECT_LT(r->new_bytes, kExtent / 8);
    } else {
      EXPECT_EQ(r->extents_delta, 0u) << "change " << i;
      EXPECT_EQ(depth, 0);
      EXPECT_GE(r->new_bytes, kExtent);
    }
    // The manifest: the extent, its whole chain, and one tree object per
    // directory from the root to the image.
    const size_t dirs = static_cast<size_t>(std::count(image_.begin(), image_.end(), '/'));
    EXPECT_EQ(vault_.last_manifest.size(), 1 + (i <= kMaxDeltaChain ? i : 0) + dirs);
  }
  // After the whole extent, deltas start again from depth 0.
  WriteAt(image_, 3 * kBlock, RandomBytes(kBlock, rng_));
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->extents_delta, 1u);
}

TEST_F(ImageBackupTest, ImageLargeRewriteIsSentWhole) {
  MakeImage(1);
  ASSERT_TRUE(Backup().ok());
  WriteAt(image_, 0, RandomBytes(kExtent / 4, rng_));  // a delta would be > 1/8
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->extents_changed, 1u);
  EXPECT_EQ(r->extents_delta, 0u);
  EXPECT_GE(r->new_bytes, kExtent);
}

TEST_F(ImageBackupTest, ImageZeroExtentIsAHoleAndForgetsItsState) {
  MakeImage(2);
  ASSERT_TRUE(Backup().ok());
  EXPECT_EQ(*store_->Count(), 2u);
  WriteAt(image_, kExtent, Bytes(kExtent, 0));
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->extents_hole, 1u);
  EXPECT_EQ(r->new_bytes, vault_.put_bytes);
  EXPECT_LT(r->new_bytes, 4096u);  // only the tree changed
  repo::TreeEntry e = Entry(r->root_tree);
  ASSERT_EQ(e.holes.size(), 1u);
  EXPECT_EQ(e.holes[0], (repo::Hole{kExtent, kExtent}));
  EXPECT_EQ(e.content.size(), 1u);
  EXPECT_EQ(*store_->Count(), 1u);
  EXPECT_EQ(Restore(r->root_tree), ReadAll(image_));
}

TEST_F(ImageBackupTest, ImageFailedCommitTeachesTheStoreNothing) {
  MakeImage(1);
  ASSERT_TRUE(Backup().ok());
  WriteAt(image_, 0, RandomBytes(kBlock, rng_));
  // A vault that lost the base: the commit is refused and the store cleared.
  FakeVault empty;
  auto r = RunImageBackup(keys_, store_.get(), &empty, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_EQ(*store_->Count(), 0u);
  // The next run sends the extent whole and commits.
  r = RunImageBackup(keys_, store_.get(), &empty, options_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->extents_delta, 0u);
  EXPECT_EQ(*store_->Count(), 1u);
}

TEST_F(ImageBackupTest, ImageShrinkForgetsExtentsPastTheEnd) {
  MakeImage(3);
  ASSERT_TRUE(Backup().ok());
  EXPECT_EQ(*store_->Count(), 3u);
  ASSERT_EQ(::truncate(image_.c_str(), kExtent), 0);
  auto r = Backup();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->extents_total, 1u);
  EXPECT_EQ(*store_->Count(), 1u);
}

TEST_F(ImageBackupTest, ImageNotAFileIsRefused) {
  options_.images = {root_};
  EXPECT_TRUE(Backup().status().code() == StatusCode::kInvalidArgument);
  options_.images = {};
  EXPECT_TRUE(Backup().status().code() == StatusCode::kInvalidArgument);
}

TEST(ImageStateTest, ImageExtentStateRoundTrips) {
  ExtentState s;
  s.id[0] = 1;
  s.chain = {ChunkId{}, ChunkId{}};
  s.chain[1][5] = 7;
  s.signature = Bytes(100, 9);
  auto back = DecodeExtentState(EncodeExtentState(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, s);
  Bytes bad = EncodeExtentState(s);
  bad[0] = 9;
  EXPECT_FALSE(DecodeExtentState(bad).ok());
  EXPECT_FALSE(DecodeExtentState(ByteView(bad.data(), 10)).ok());
}

TEST(ImageTreeTest, ImageEntryRoundTripsAndIsChecked) {
  repo::TreeEntry e;
  e.name = "sda";
  e.type = repo::EntryType::kImage;
  e.mode = 0660;
  e.size = 3ull * kExtent + 100;
  e.extent_size = kExtent;
  e.content = {{repo::RefKind::kData, ChunkId{}, kExtent}, {repo::RefKind::kData, ChunkId{}, 100}};
  e.holes = {{0, 2ull * kExtent}};
  repo::DirPart part;
  part.entries = {e};
  auto bytes = repo::EncodeDirPart(part);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto back = repo::DecodeDirPart(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, part);
  EXPECT_EQ(bytes->size(), 2 + 4 + repo::EncodedEntrySize(e) + 1);
  EXPECT_EQ(repo::EntryTypeName(e.type), "image");

  repo::DirPart bad = part;
  bad.entries[0].extent_size = 1000;  // not a power of two
  EXPECT_FALSE(repo::EncodeDirPart(bad).ok());
  bad = part;
  bad.entries[0].holes = {{1, 2ull * kExtent - 1}};  // not whole extents
  bad.entries[0].content[0].length = kExtent + 1;
  EXPECT_FALSE(repo::EncodeDirPart(bad).ok());
  bad = part;
  bad.entries[0].link_group = 1;
  EXPECT_FALSE(repo::EncodeDirPart(bad).ok());
  repo::TreeEntry file;
  file.name = "f";
  file.extent_size = kExtent;  // only images have one
  bad.entries = {file};
  EXPECT_FALSE(repo::EncodeDirPart(bad).ok());
}

}  // namespace
}  // namespace cairn::agent
