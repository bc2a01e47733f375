// Helpers for the fuzz targets: the formats' checksums are keyless XXH3, so
// a mutator almost never matches them by chance and would stop at the first
// check. "Fix-up" modes recompute them, as an attacker with write access to
// a pack could, so the fuzzer reaches the length and bounds logic behind.
#ifndef CAIRN_TESTS_FUZZ_FUZZ_UTIL_H_
#define CAIRN_TESTS_FUZZ_FUZZ_UTIL_H_

#include <xxhash.h>

#include "lib/base/bytes.h"
#include "lib/repo/pack.h"
#include "lib/repo/record.h"

namespace cairn::fuzz {

// Recomputes the header and record checksums of the record at `offset` in
// `buf`, using the (possibly mutated) lengths in its header, if they fit.
inline void FixRecordChecksums(Bytes& buf, size_t offset) {
  if (buf.size() < offset + repo::kRecordHeaderSize) return;
  uint8_t* p = buf.data() + offset;
  EncodeFixed32(p + 76, static_cast<uint32_t>(XXH3_64bits(p, 76)));
  uint64_t payload = DecodeFixed32(p + 72);
  uint64_t size = payload + repo::kRecordOverhead;
  if (buf.size() - offset < size) return;
  EncodeFixed64(p + size - 8, XXH3_64bits(p, size - 8));
}

// Recomputes a pack's header, trailer and index checksums from the
// (possibly mutated) trailer fields.
inline void FixPackChecksums(Bytes& buf) {
  if (buf.size() >= repo::kPackHeaderSize) {
    EncodeFixed32(buf.data() + 28, static_cast<uint32_t>(XXH3_64bits(buf.data(), 28)));
  }
  if (buf.size() < repo::kPackHeaderSize + repo::kPackTrailerSize) return;
  uint8_t* t = buf.data() + buf.size() - repo::kPackTrailerSize;
  uint64_t index_offset = DecodeFixed64(t + 16);
  uint64_t before = buf.size() - repo::kPackTrailerSize;
  if (index_offset <= before) {
    EncodeFixed64(t + 24, XXH3_64bits(buf.data() + index_offset, before - index_offset));
    EncodeFixed64(t + 32, XXH3_64bits(buf.data(), index_offset));
  }
  EncodeFixed64(t + 40, XXH3_64bits(t, 40));
}

}  // namespace cairn::fuzz

#endif  // CAIRN_TESTS_FUZZ_FUZZ_UTIL_H_
