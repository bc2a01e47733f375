// Fuzzes the tree object decoders (lib/repo/tree.h) with bytes a hostile or
// damaged vault could hand a restore after decryption: every accepted input
// must re-encode to exactly the same bytes, and every accepted name must be
// one a restore can create safely.
#include <cstddef>
#include <cstdint>

#include "lib/repo/tree.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::ByteView in(data, size);
  auto part = cairn::repo::DecodeDirPart(in);
  if (part.ok()) {
    auto again = cairn::repo::EncodeDirPart(*part);
    if (!again.ok()) __builtin_trap();
    if (again->size() != size || !cairn::Equal(*again, in)) __builtin_trap();
    for (const auto& e : part->entries) {
      if (!cairn::repo::IsValidEntryName(e.name)) __builtin_trap();
    }
    auto runs = cairn::repo::SplitDirectory(part->entries);
    if (runs.empty()) __builtin_trap();
  }
  auto list = cairn::repo::DecodeContentList(in);
  if (list.ok()) {
    auto again = cairn::repo::EncodeContentList(*list);
    if (!again.ok() || !cairn::Equal(*again, in)) __builtin_trap();
  }
  if (part.ok() && list.ok()) __builtin_trap();  // the kind byte tells them apart
  return 0;
}
