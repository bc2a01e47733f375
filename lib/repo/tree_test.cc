#include "lib/repo/tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace cairn::repo {
namespace {

crypto::ChunkId IdOf(uint8_t b) {
  crypto::ChunkId id;
  id.fill(b);
  return id;
}

TreeEntry Base(std::string name, EntryType type) {
  TreeEntry e;
  e.name = std::move(name);
  e.type = type;
  e.mode = 0644;
  e.uid = 1000;
  e.gid = 100;
  e.user = "alice";
  e.group = "users";
  e.mtime_ns = 1700000000123456789;
  return e;
}

std::vector<TreeEntry> EveryType() {
  std::vector<TreeEntry> v;
  TreeEntry blk = Base("blk", EntryType::kBlockDev);
  blk.dev_major = 8;
  blk.dev_minor = 1;
  v.push_back(blk);
  TreeEntry chr = Base("chr", EntryType::kCharDev);
  chr.dev_major = 1;
  chr.dev_minor = 3;
  v.push_back(chr);
  TreeEntry dir = Base("dir", EntryType::kDir);
  dir.mode = 01755;
  dir.subtree = IdOf(7);
  v.push_back(dir);
  v.push_back(Base("fifo", EntryType::kFifo));
  TreeEntry file = Base("file", EntryType::kFile);
  file.size = 300 + 4096 + 100;
  file.content = {{RefKind::kData, IdOf(1), 300}, {RefKind::kData, IdOf(2), 100}};
  file.holes = {{300, 4096}};
  file.link_group = 42;
  file.xattrs = {{"user.a", {1, 2, 3}}, {"user.b", {}}};
  v.push_back(file);
  TreeEntry big = Base("huge", EntryType::kFile);
  big.size = 1ull << 40;
  big.content = {{RefKind::kList, IdOf(3), 1ull << 40}};
  v.push_back(big);
  TreeEntry link = Base("link", EntryType::kHardlink);
  link.size = file.size;
  link.link_group = 42;
  link.link_path = "home/alice/file";
  v.push_back(link);
  v.push_back(Base("sock", EntryType::kSocket));
  TreeEntry sym = Base("sym", EntryType::kSymlink);
  sym.mode = 0777;
  sym.symlink_target = "../some/where";
  v.push_back(sym);
  return v;
}

TEST(TreeTest, EveryEntryTypeRoundTrips) {
  DirPart part;
  part.entries = EveryType();
  part.next = IdOf(9);
  Result<Bytes> bytes = EncodeDirPart(part);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ASSERT_EQ(*PeekTreeObjectKind(*bytes), TreeObjectKind::kDirPart);
  Result<DirPart> back = DecodeDirPart(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, part);
  EXPECT_EQ(*EncodeDirPart(*back), *bytes);
  size_t sum = 2 + 4 + 1 + 32;
  for (const auto& e : part.entries) sum += EncodedEntrySize(e);
  EXPECT_EQ(sum, bytes->size());
}

TEST(TreeTest, EmptyDirectoryRoundTrips) {
  Result<Bytes> bytes = EncodeDirPart({});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->size(), 7u);
  EXPECT_EQ(*DecodeDirPart(*bytes), DirPart{});
}

TEST(TreeTest, EncodingIsDeterministic) {
  DirPart a, b;
  a.entries = EveryType();
  b.entries = EveryType();
  EXPECT_EQ(*EncodeDirPart(a), *EncodeDirPart(b));
  b.entries[3].mtime_ns += 1;
  EXPECT_NE(*EncodeDirPart(a), *EncodeDirPart(b));
}

TEST(TreeTest, ContentListRoundTrips) {
  ContentList list;
  for (int i = 0; i < 10; ++i) list.refs.push_back({RefKind::kData, IdOf(i), 1000u + i});
  Result<Bytes> bytes = EncodeContentList(list);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*PeekTreeObjectKind(*bytes), TreeObjectKind::kContentList);
  EXPECT_EQ(*DecodeContentList(*bytes), list);
  EXPECT_FALSE(DecodeDirPart(*bytes).ok());
  EXPECT_FALSE(EncodeContentList({}).ok());
}

TEST(TreeTest, MalformedNamesAreRefused) {
  const std::vector<std::string> bad = {
      "", ".", "..", "a/b", "/", std::string("a\0b", 3), std::string(256, 'x')};
  for (const std::string& name : bad) {
    EXPECT_FALSE(IsValidEntryName(name)) << name;
    DirPart part;
    part.entries.push_back(Base("ok", EntryType::kFifo));
    EXPECT_TRUE(EncodeDirPart(part).ok());
    // Forge the name into valid bytes: encode "ok"-sized names, then patch.
    Bytes bytes = *EncodeDirPart(part);
    Bytes forged(bytes.begin(), bytes.begin() + 6);
    forged.push_back(static_cast<uint8_t>(name.size() & 0xff));
    forged.insert(forged.end(), name.begin(), name.end());
    forged.insert(forged.end(), bytes.begin() + 6 + 1 + 2, bytes.end());
    Result<DirPart> decoded = DecodeDirPart(forged);
    EXPECT_FALSE(decoded.ok()) << "name of " << name.size() << " bytes accepted";
    part.entries[0].name = name;
    EXPECT_FALSE(EncodeDirPart(part).ok());
  }
  EXPECT_TRUE(IsValidEntryName(std::string(255, 'x')));
  EXPECT_TRUE(IsValidEntryName("..."));
}

TEST(TreeTest, UnsortedOrDuplicateNamesAreRefused) {
  DirPart part;
  part.entries = {Base("b", EntryType::kFifo), Base("a", EntryType::kFifo)};
  EXPECT_FALSE(EncodeDirPart(part).ok());
  part.entries = {Base("a", EntryType::kFifo), Base("a", EntryType::kFifo)};
  EXPECT_FALSE(EncodeDirPart(part).ok());
  // Bytewise order: 'B' (0x42) sorts before 'a' (0x61), and 0xc3 after both.
  part.entries = {Base("B", EntryType::kFifo), Base("a", EntryType::kFifo),
                  Base("\xc3\xa9", EntryType::kFifo)};
  EXPECT_TRUE(EncodeDirPart(part).ok());
}

TEST(TreeTest, EveryTruncationIsRefused) {
  DirPart part;
  part.entries = EveryType();
  part.next = IdOf(5);
  Bytes bytes = *EncodeDirPart(part);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeDirPart(ByteView(bytes.data(), n)).ok()) << "prefix " << n;
  }
  Bytes longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(DecodeDirPart(longer).ok());
  ContentList list{{{RefKind::kData, IdOf(1), 5}}};
  Bytes lb = *EncodeContentList(list);
  for (size_t n = 0; n < lb.size(); ++n) {
    EXPECT_FALSE(DecodeContentList(ByteView(lb.data(), n)).ok());
  }
}

// A directory of `e` alone cannot be encoded.
void ExpectRefused(const TreeEntry& e) {
  DirPart part;
  part.entries = {e};
  EXPECT_FALSE(EncodeDirPart(part).ok()) << e.name;
}

TEST(TreeTest, InconsistentFilesAreRefused) {
  auto check = ExpectRefused;
  TreeEntry f = Base("f", EntryType::kFile);
  f.size = 10;
  check(f);  // no content for 10 bytes
  f.content = {{RefKind::kData, IdOf(1), 4}};
  f.holes = {{4, 3}, {5, 3}};  // overlapping
  check(f);
  f.holes = {{4, 7}};  // past the end
  check(f);
  f.holes = {{4, 6}};
  DirPart ok;
  ok.entries = {f};
  EXPECT_TRUE(EncodeDirPart(ok).ok());
  TreeEntry d = Base("d", EntryType::kDir);
  d.symlink_target = "x";
  check(d);
  TreeEntry h = Base("h", EntryType::kHardlink);
  h.link_path = "a/../b";
  h.link_group = 1;
  check(h);
  h.link_path = "a//b";
  check(h);
  h.link_path = "a/b";
  h.link_group = 0;
  check(h);
  TreeEntry m = Base("m", EntryType::kFifo);
  m.mode = 0100644;
  check(m);
  TreeEntry x = Base("x", EntryType::kFifo);
  x.xattrs = {{"user.b", {}}, {"user.a", {}}};
  check(x);
}

TEST(TreeTest, HugeCountsAreRefusedBeforeAllocating) {
  Bytes bytes = {kTreeVersion, 1, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(DecodeDirPart(bytes).ok());
  Bytes list = {kTreeVersion, 2, 0xff, 0xff, 0xff, 0x7f};
  EXPECT_FALSE(DecodeContentList(list).ok());
  Bytes wrong_version = {2, 1, 0, 0, 0, 0, 0};
  EXPECT_FALSE(DecodeDirPart(wrong_version).ok());
}

// Two small files packed into one group record, and a third whose content
// is a whole record of its own.
DirPart SlicedPart() {
  DirPart part;
  TreeEntry a = Base("a", EntryType::kFile);
  a.size = 300;
  a.content = {{RefKind::kSlice, IdOf(9), 300, 0, IdOf(1)}};
  TreeEntry b = Base("b", EntryType::kFile);
  b.size = 500;
  b.content = {{RefKind::kSlice, IdOf(9), 500, 300, IdOf(2)}};
  TreeEntry c = Base("c", EntryType::kFile);
  c.size = 7;
  c.content = {{RefKind::kData, IdOf(3), 7}};
  part.entries = {a, b, c};
  return part;
}

TEST(TreeTest, SlicesRoundTripAsVersion2) {
  DirPart part = SlicedPart();
  Bytes bytes = *EncodeDirPart(part);
  EXPECT_EQ(bytes[0], kTreeVersionSlices);
  EXPECT_EQ(*PeekTreeObjectKind(bytes), TreeObjectKind::kDirPart);
  auto back = DecodeDirPart(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, part);
  EXPECT_EQ(*EncodeDirPart(*back), bytes);
  size_t expected = 2 + 4 + 1;
  for (const TreeEntry& e : part.entries) expected += EncodedEntrySize(e);
  EXPECT_EQ(bytes.size(), expected);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeDirPart(ByteView(bytes.data(), n)).ok()) << "prefix " << n;
  }

  // Without a slice the same directory stays version 1, byte for byte
  // what a writer without slices made.
  part.entries.pop_back();
  part.entries.pop_back();
  part.entries[0].content = {{RefKind::kData, IdOf(1), 300}};
  EXPECT_EQ((*EncodeDirPart(part))[0], kTreeVersion);
}

TEST(TreeTest, SlicesAreRefusedWhereTheyDoNotBelong) {
  // A version 1 object cannot hold one (a reader before slices refuses
  // the version instead), and a version 2 object must.
  Bytes bytes = *EncodeDirPart(SlicedPart());
  Bytes v1 = bytes;
  v1[0] = kTreeVersion;
  EXPECT_FALSE(DecodeDirPart(v1).ok());
  DirPart plain;
  plain.entries = {Base("f", EntryType::kFifo)};
  Bytes v2 = *EncodeDirPart(plain);
  v2[0] = kTreeVersionSlices;
  EXPECT_FALSE(DecodeDirPart(v2).ok());
  Bytes list = *EncodeContentList(ContentList{{{RefKind::kData, IdOf(1), 5}}});
  list[0] = kTreeVersionSlices;
  EXPECT_FALSE(DecodeContentList(list).ok());
  EXPECT_FALSE(PeekTreeObjectKind(list).ok());

  auto refused = ExpectRefused;
  TreeEntry f = Base("f", EntryType::kFile);
  f.size = 10;
  f.content = {
      {RefKind::kSlice, IdOf(9), 10, static_cast<uint32_t>(kMaxDataRefLength - 9), IdOf(1)}};
  refused(f);  // ends past the largest record
  f.content = {{RefKind::kData, IdOf(9), 10, 4, {}}};
  refused(f);  // an offset on a data reference
  f.content = {{RefKind::kData, IdOf(9), 10, 0, IdOf(1)}};
  refused(f);  // a slice ID on a data reference
  f.size = 20;
  f.content = {{RefKind::kSlice, IdOf(9), 10, 0, IdOf(1)}, {RefKind::kList, IdOf(4), 10}};
  refused(f);  // slices and lists do not mix
  TreeEntry image = Base("img", EntryType::kImage);
  image.size = 10;
  image.extent_size = 64 << 10;
  image.content = {{RefKind::kSlice, IdOf(9), 10, 0, IdOf(1)}};
  refused(image);
  EXPECT_FALSE(EncodeContentList(ContentList{{{RefKind::kSlice, IdOf(9), 10, 0, IdOf(1)}}}).ok());

  // The decoder refuses what the encoder would: a slice past 16 MiB. The
  // four bytes before entry a's slice ID (IdOf(1)) are its offset, 0.
  Bytes bad = *EncodeDirPart(SlicedPart());
  const crypto::ChunkId id = IdOf(1);
  auto at = std::search(bad.begin(), bad.end(), id.begin(), id.end());
  ASSERT_NE(at, bad.end());
  ASSERT_EQ(*(at - 1), 0);
  *(at - 1) = 0x01;  // offset 16 MiB
  EXPECT_FALSE(DecodeDirPart(bad).ok());
}

TEST(TreeTest, SplitDirectoryKeepsPartsUnderTheLimit) {
  std::vector<TreeEntry> entries;
  for (int i = 0; i < 1000; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "f%05d", i);
    entries.push_back(Base(name, EntryType::kFifo));
  }
  auto runs = SplitDirectory(entries, 4096);
  ASSERT_GT(runs.size(), 1u);
  size_t expect_begin = 0;
  for (auto [b, e] : runs) {
    EXPECT_EQ(b, expect_begin);
    DirPart part;
    part.entries.assign(entries.begin() + b, entries.begin() + e);
    part.next = IdOf(1);
    EXPECT_LE(EncodeDirPart(part)->size(), 4096u);
    expect_begin = e;
  }
  EXPECT_EQ(expect_begin, entries.size());
  EXPECT_EQ(SplitDirectory({}).size(), 1u);
}

}  // namespace
}  // namespace cairn::repo
