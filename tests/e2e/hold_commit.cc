// Test tool for gc_race_test.sh: a backup that holds a have_chunks answer
// for a long time before it commits, as a slow agent on a large tree does.
//
// usage: hold_commit STATE_DIR FILE SECONDS
// FILE (at most 64 KiB: one chunk, as the agent's chunker makes it) is
// asked for with have_chunks; only if the vault says it is missing is it
// uploaded. Then the tool waits SECONDS, and commits a snapshot (path
// /held) whose root holds FILE as "held.bin". Prints "present SNAPSHOT" or
// "uploaded SNAPSHOT"; a refused commit exits 1 with the vault's reason.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "agent/vault_session.h"
#include "lib/client/identity.h"
#include "lib/io/env.h"
#include "lib/repo/record.h"
#include "lib/repo/tree.h"
#include "tests/e2e/single_file_root.h"

namespace {

using cairn::Bytes;
using cairn::Status;
using cairn::crypto::ChunkId;
namespace repo = cairn::repo;

int Die(const Status& s) {
  std::fprintf(stderr, "hold_commit: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hold_commit STATE_DIR FILE SECONDS\n");
    return 2;
  }
  auto state = cairn::client::LoadIdentity(argv[1]);
  if (!state.ok()) return Die(state.status());
  auto content = cairn::io::ReadFileToBytes(cairn::io::Env::Posix(), argv[2]);
  if (!content.ok()) return Die(content.status());
  if (content->empty() || content->size() > 65536) {
    return Die(Status::InvalidArgument("FILE must hold 1 to 65536 bytes"));
  }
  auto encoder = repo::RecordEncoder::Create(state->keys, {});
  if (!encoder.ok()) return Die(encoder.status());
  auto session = cairn::agent::OpenVaultSession(*state, {"/held"});
  if (!session.ok()) return Die(session.status());

  const ChunkId data_id = (*encoder)->Id(*content);
  auto have = (*session)->HaveChunks({data_id});
  if (!have.ok()) return Die(have.status());
  const bool present = (*have)[0];
  auto put = [&](repo::RecordType type, const ChunkId& id, const Bytes& plain) -> Status {
    Bytes record;
    CAIRN_RETURN_IF_ERROR((*encoder)->Encode(type, id, plain, &record));
    return (*session)->PutRecord(record);
  };
  if (!present) {
    if (Status s = put(repo::RecordType::kData, data_id, *content); !s.ok()) return Die(s);
  }
  // The long hold: the vault's answer is all this backup has to go on.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(std::atoi(argv[3]));
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (Status s = (*session)->KeepAlive(); !s.ok()) return Die(s);
  }
  const repo::DirPart root = cairn::testing::SingleFileRoot(
      "held.bin", content->size(),
      {repo::ContentRef{repo::RefKind::kData, data_id, content->size()}});
  auto root_bytes = repo::EncodeDirPart(root);
  if (!root_bytes.ok()) return Die(root_bytes.status());
  const ChunkId root_id = (*encoder)->Id(*root_bytes);
  if (Status s = put(repo::RecordType::kTree, root_id, *root_bytes); !s.ok()) return Die(s);
  if (Status s = (*session)->Flush(); !s.ok()) return Die(s);
  cairn::proto::SnapshotStats stats;
  stats.files = 1;
  stats.bytes = content->size();
  auto snapshot = (*session)->Commit(root_id, {data_id, root_id}, stats);
  if (!snapshot.ok()) return Die(snapshot.status());
  std::printf("%s %s\n", present ? "present" : "uploaded", snapshot->c_str());
  return 0;
}
