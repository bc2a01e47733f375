// Fuzzes the record parser and the full decode path (checksum, GCM open,
// zstd, chunk ID check) with bytes an attacker or a bad disk could supply.
#include <cstddef>
#include <cstdint>

#include "lib/repo/record.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const cairn::crypto::DepartmentKeys& FixedKeys() {
  static const cairn::crypto::DepartmentKeys keys = [] {
    cairn::crypto::DepartmentKeys k;
    cairn::Bytes data(32, 0x11), id(32, 0x22);
    k.data_key = *cairn::crypto::SecretKey::FromBytes(data);
    k.id_key = *cairn::crypto::SecretKey::FromBytes(id);
    return k;
  }();
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Odd sizes get their checksums fixed up first (see fuzz_util.h), so both
  // the checksum gate and the logic behind it are exercised.
  cairn::Bytes fixed(data, data + size);
  if (size % 2) cairn::fuzz::FixRecordChecksums(fixed, 0);
  cairn::ByteView in(fixed);
  auto header = cairn::repo::ParseRecordHeader(in);
  auto view = cairn::repo::ParseRecord(in);
  if (view.ok() && !header.ok()) __builtin_trap();  // a whole record implies a valid header
  static auto decoder = std::move(*cairn::repo::RecordDecoder::Create(FixedKeys()));
  cairn::Bytes plain;
  cairn::Status s = decoder->Decode(in, &plain);
  if (!s.ok() && !plain.empty()) __builtin_trap();  // never hand back data on failure
  return 0;
}
