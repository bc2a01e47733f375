// Fuzzes the department key file parser: every input is refused or parses
// to keys that serialise back to the same bytes.
#include <cstddef>
#include <cstdint>

#include "lib/crypto/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::ByteView in(data, size);
  auto keys = cairn::crypto::ParseDepartmentKeys(in);
  if (keys.ok()) {
    cairn::Bytes again = cairn::crypto::SerializeDepartmentKeys(*keys);
    if (!cairn::Equal(again, in)) __builtin_trap();
  }
  return 0;
}
