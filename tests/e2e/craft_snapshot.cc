// Test tool: commits a snapshot whose tree holds an entry name that the
// tree encoder would never write ("../../escape", say), the way a hostile
// or broken agent holding the department keys could. The restore tests use
// it to show that cairn-restore refuses such an entry and still restores the
// rest.
//
// usage: craft_snapshot STATE_DIR NAME
// Layout of the snapshot: good.txt ("hello\n") and sub/NAME ("evil\n").
// With NAME "--slice-past-group" instead: good.txt, and two small files
// packed in one group record "hello\nworld\n": in.txt, a slice of it
// ("world\n"), and out.txt, a slice that reaches past the group's end.
// Prints the snapshot ID.
#include <cstdio>
#include <string>
#include <vector>

#include "agent/vault_session.h"
#include "lib/client/identity.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"

namespace {

using cairn::Bytes;
using cairn::ByteView;
using cairn::Result;
using cairn::Status;
using cairn::crypto::ChunkId;
namespace repo = cairn::repo;

int Die(const Status& s) {
  std::fprintf(stderr, "craft_snapshot: %s\n", s.ToString().c_str());
  return 1;
}

repo::TreeEntry FileEntry(const std::string& name, const ChunkId& id, uint64_t size) {
  repo::TreeEntry e;
  e.name = name;
  e.type = repo::EntryType::kFile;
  e.mode = 0644;
  e.mtime_ns = 1'700'000'000'000'000'000;
  e.size = size;
  e.content = {{repo::RefKind::kData, id, size}};
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: craft_snapshot STATE_DIR NAME\n");
    return 2;
  }
  const std::string evil = argv[2];
  auto state = cairn::client::LoadIdentity(argv[1]);
  if (!state.ok()) return Die(state.status());
  auto encoder = repo::RecordEncoder::Create(state->keys, {});
  if (!encoder.ok()) return Die(encoder.status());
  auto session = cairn::agent::OpenVaultSession(*state, {"/crafted"});
  if (!session.ok()) return Die(session.status());

  std::vector<ChunkId> manifest;
  auto put = [&](repo::RecordType type, ByteView plain) -> Result<ChunkId> {
    ChunkId id = (*encoder)->Id(plain);
    Bytes record;
    CAIRN_RETURN_IF_ERROR((*encoder)->Encode(type, id, plain, &record));
    CAIRN_RETURN_IF_ERROR((*session)->PutRecord(record));
    manifest.push_back(id);
    return id;
  };
  // Writes the root directory, commits, and prints the snapshot ID.
  auto commit = [&](const repo::DirPart& root, uint64_t files, uint64_t dirs) -> int {
    auto root_bytes = repo::EncodeDirPart(root);
    if (!root_bytes.ok()) return Die(root_bytes.status());
    auto root_id = put(repo::RecordType::kTree, *root_bytes);
    if (!root_id.ok()) return Die(root_id.status());
    if (Status s = (*session)->Flush(); !s.ok()) return Die(s);
    cairn::proto::SnapshotStats stats;
    stats.files = files;
    stats.dirs = dirs;
    auto snapshot = (*session)->Commit(*root_id, manifest, stats);
    if (!snapshot.ok()) return Die(snapshot.status());
    std::printf("%s\n", snapshot->c_str());
    return 0;
  };
  const std::string good = "hello\n", bad = "evil\n";
  if (evil == "--slice-past-group") {
    const std::string group = "hello\nworld\n";
    auto good_id = put(repo::RecordType::kData, cairn::AsBytes(good));
    auto group_id = put(repo::RecordType::kData, cairn::AsBytes(group));
    if (!good_id.ok() || !group_id.ok()) return Die(Status::IOError("put data"));
    repo::TreeEntry in = FileEntry("in.txt", {}, 6);
    in.content = {
        {repo::RefKind::kSlice, *group_id, 6, 6, (*encoder)->Id(cairn::AsBytes("world\n"))}};
    repo::TreeEntry out = FileEntry("out.txt", {}, 10);
    out.content = {{repo::RefKind::kSlice, *group_id, 10, 8, *good_id}};
    repo::DirPart root;
    root.entries = {FileEntry("good.txt", *good_id, good.size()), in, out};
    return commit(root, 3, 0);
  }
  auto good_id = put(repo::RecordType::kData, cairn::AsBytes(good));
  auto bad_id = put(repo::RecordType::kData, cairn::AsBytes(bad));
  if (!good_id.ok() || !bad_id.ok()) return Die(Status::IOError("put data"));

  // sub: one entry under a placeholder name of the same length, then the
  // name bytes are swapped for the evil ones after encoding.
  const std::string placeholder(evil.size(), 'x');
  repo::DirPart sub;
  sub.entries.push_back(FileEntry(placeholder, *bad_id, bad.size()));
  auto sub_bytes = repo::EncodeDirPart(sub);
  if (!sub_bytes.ok()) return Die(sub_bytes.status());
  std::string text(sub_bytes->begin(), sub_bytes->end());
  size_t at = text.find(placeholder);
  if (at == std::string::npos) return Die(Status::Corruption("placeholder not found"));
  std::copy(evil.begin(), evil.end(), sub_bytes->begin() + static_cast<long>(at));
  auto sub_id = put(repo::RecordType::kTree, *sub_bytes);
  if (!sub_id.ok()) return Die(sub_id.status());

  repo::DirPart root;
  root.entries.push_back(FileEntry("good.txt", *good_id, good.size()));
  repo::TreeEntry dir;
  dir.name = "sub";
  dir.type = repo::EntryType::kDir;
  dir.mode = 0755;
  dir.subtree = *sub_id;
  root.entries.push_back(dir);
  return commit(root, 2, 1);
}
