// Fuzzes the pack parsers: header, trailer, footer index, the sealed-pack
// reader with full verification, and crash recovery, on an in-memory file.
#include <cstddef>
#include <cstdint>

#include "lib/io/mem_env.h"
#include "lib/repo/pack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  ByteView in(data, size);
  (void)repo::ParsePackHeader(in);
  if (size >= repo::kPackTrailerSize) {
    auto trailer = repo::ParsePackTrailer(in.subspan(size - repo::kPackTrailerSize));
    if (trailer.ok()) {
      (void)repo::ParsePackIndex(in.subspan(0, size - repo::kPackTrailerSize), *trailer);
    }
  }
  static auto env = io::NewMemEnv();
  const std::string path = "/fuzz.pack";
  {
    auto f = env->NewWritableFile(path);
    if (!f.ok() || !(*f)->Append(in).ok()) __builtin_trap();
  }
  auto reader = repo::PackReader::Open(env.get(), path);
  if (reader.ok()) {
    (void)(*reader)->Verify();
    Bytes rec;
    for (const auto& e : (*reader)->entries()) (void)(*reader)->ReadRecord(e, &rec);
  }
  auto rec = repo::RecoverPack(env.get(), path);
  if (rec.ok()) {
    // Recovery leaves exactly the records it reports, and is idempotent.
    auto again = repo::RecoverPack(env.get(), path);
    if (!again.ok() || again->recovered_size != rec->recovered_size ||
        again->entries.size() != rec->entries.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
