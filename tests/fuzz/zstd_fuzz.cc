// Fuzzes bounded zstd decompression: hostile frames must be refused without
// writing or allocating past the expected size. The first 3 bytes choose the
// expected size (up to 16 MiB, the record limit).
#include <cstddef>
#include <cstdint>

#include "lib/compress/zstd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  size_t expected = (static_cast<size_t>(data[0]) | data[1] << 8 | data[2] << 16) & 0xffffff;
  static auto d = std::move(*cairn::compress::Decompressor::Create());
  cairn::Bytes out;
  cairn::Status s = d.Decompress(cairn::ByteView(data + 3, size - 3), expected, &out);
  if (s.ok() && out.size() != expected) __builtin_trap();
  return 0;
}
