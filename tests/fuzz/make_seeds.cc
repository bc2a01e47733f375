// Writes the seed corpora in tests/fuzz/seeds/ from real encoder output, so
// fuzzing starts from valid records, packs and deltas. Re-run after a format
// change: cairn_make_fuzz_seeds tests/fuzz/seeds
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "lib/chunk/rsync_delta.h"
#include "lib/compress/zstd.h"
#include "lib/io/mem_env.h"
#include "lib/repo/pack.h"

namespace {

void WriteSeed(const std::filesystem::path& dir, const std::string& name, cairn::ByteView data) {
  std::filesystem::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

cairn::crypto::DepartmentKeys FuzzKeys() {
  // Must match FixedKeys() in record_fuzz.cc so seeds decode fully.
  cairn::crypto::DepartmentKeys k;
  k.data_key = *cairn::crypto::SecretKey::FromBytes(cairn::Bytes(32, 0x11));
  k.id_key = *cairn::crypto::SecretKey::FromBytes(cairn::Bytes(32, 0x22));
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cairn;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::path root = argv[1];
  auto encoder = std::move(*repo::RecordEncoder::Create(FuzzKeys(), {}));
  std::string text;
  for (int i = 0; i < 40; ++i) text += "pack files hold records of chunks; ";
  Bytes small(AsBytes(text).begin(), AsBytes(text).end());
  Bytes random(300);
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<uint8_t>(i * 131 + 7);
  Bytes rec_text, rec_random, rec_delta;
  (void)encoder->Encode(repo::RecordType::kData, encoder->Id(small), small, &rec_text);
  (void)encoder->Encode(repo::RecordType::kTree, encoder->Id(random), random, &rec_random);
  (void)encoder->Encode(repo::RecordType::kDelta, encoder->Id(random), random, &rec_delta);
  WriteSeed(root / "record", "text", rec_text);
  WriteSeed(root / "record", "random", rec_random);
  WriteSeed(root / "record", "delta", rec_delta);

  auto env = io::NewMemEnv();
  for (bool seal : {true, false}) {
    std::string path = seal ? "/sealed.pack" : "/open.pack";
    auto w = std::move(*repo::PackWriter::Create(env.get(), path, {repo::kPackVersion, 1, 9}));
    (void)w->Append(rec_text);
    (void)w->Append(rec_random);
    (void)w->Sync();
    if (seal) (void)w->Seal();
    w.reset();
    WriteSeed(root / "pack", seal ? "sealed" : "open", *io::ReadFileToBytes(env.get(), path));
  }

  // Delta seeds against the fuzzer's basis are built by the fuzzer's own
  // round-trip mode; here a real delta of a small edit, prefixed with the
  // mode byte 0 (patch an arbitrary delta).
  Bytes basis(64 * 1024);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto& c : basis) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<uint8_t>(x);
  }
  Bytes edited = basis;
  for (size_t i = 1000; i < 1100; ++i) edited[i] ^= 0x5a;
  auto sig = *chunk::ComputeSignature(basis, 4096);
  auto delta = *chunk::ComputeDelta(sig, edited);
  Bytes seed = {0};
  seed.insert(seed.end(), delta.begin(), delta.end());
  WriteSeed(root / "delta_patch", "edit", seed);
  WriteSeed(root / "delta_patch", "roundtrip", Bytes{1, 'h', 'e', 'l', 'l', 'o'});
  WriteSeed(root / "keys", "keys", crypto::SerializeDepartmentKeys(FuzzKeys()));

  auto compressor = std::move(*compress::Compressor::Create({}));
  Bytes frame;
  (void)compressor.Compress(small, &frame);
  Bytes zseed = {static_cast<uint8_t>(small.size()), static_cast<uint8_t>(small.size() >> 8), 0};
  zseed.insert(zseed.end(), frame.begin(), frame.end());
  WriteSeed(root / "zstd", "text", zseed);

  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
