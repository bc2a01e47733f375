// Fuzzes the pack parsers: header, trailer, footer index, the sealed-pack
// reader with full verification, and crash recovery, on an in-memory file.
#include <cstddef>
#include <cstdint>

#include "lib/io/mem_env.h"
#include "lib/repo/pack.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  // Odd sizes get their pack checksums (and the first record's) fixed up.
  Bytes fixed(data, data + size);
  if (size % 2) {
    fuzz::FixRecordChecksums(fixed, repo::kPackHeaderSize);
    fuzz::FixPackChecksums(fixed);
  }
  ByteView in(fixed);
  (void)repo::ParsePackHeader(in);
  if (size >= repo::kPackTrailerSize) {
    auto trailer = repo::ParsePackTrailer(in.subspan(size - repo::kPackTrailerSize));
    if (trailer.ok()) {
      (void)repo::ParsePackIndex(in.subspan(0, size - repo::kPackTrailerSize), *trailer);
    }
  }
  static auto env = io::NewMemEnv();
  const std::string path = "/fuzz.pack";
  (void)env->RemoveFile(path);
  {
    auto f = env->NewWritableFile(path);
    if (!f.ok() || !(*f)->Append(in).ok()) __builtin_trap();
  }
  auto reader = repo::PackReader::Open(env.get(), path);
  if (reader.ok()) {
    (void)(*reader)->Verify();
    Bytes rec;
    for (const auto& e : (*reader)->entries()) (void)(*reader)->ReadRecord(e, &rec);
    // Locations from an index are untrusted too: take some from the input.
    if (size >= 12) {
      uint64_t offset = DecodeFixed64(data);
      uint32_t length = DecodeFixed32(data + 8);
      repo::ChunkId id{};
      Status s = (*reader)->ReadRecordAt(offset, length, id, &rec);
      if (!s.ok() && !rec.empty()) __builtin_trap();
    }
  }
  // committed_size from the input too: damage below it must never truncate.
  uint64_t committed = size >= 4 ? DecodeFixed32(data + size - 4) % (size + 1) : 0;
  uint64_t before = size;
  auto rec = repo::RecoverPack(env.get(), path, committed);
  if (!rec.ok() && rec.status().IsCorruption() && *env->GetFileSize(path) != before) {
    __builtin_trap();  // refused, yet changed the file
  }
  if (rec.ok()) {
    if (rec->recovered_size < committed) __builtin_trap();
    // A recovered open pack can be continued and sealed, and then reads back.
    if (rec->header_valid && !rec->was_sealed) {
      auto w = repo::PackWriter::Reopen(env.get(), path, rec->header, rec->entries);
      if (!w.ok() || !(*w)->Seal().ok()) __builtin_trap();
      auto sealed = repo::PackReader::Open(env.get(), path);
      if (!sealed.ok() || !(*sealed)->Verify().ok()) __builtin_trap();
      return 0;
    }
    // Recovery leaves exactly the records it reports, and is idempotent.
    auto again = repo::RecoverPack(env.get(), path, committed);
    if (!again.ok() || again->recovered_size != rec->recovered_size ||
        again->entries.size() != rec->entries.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
