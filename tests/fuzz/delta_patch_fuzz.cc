// Fuzzes the librsync patcher with arbitrary deltas against a fixed basis,
// and (first byte odd) the delta-then-patch round trip on arbitrary data.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lib/chunk/rsync_delta.h"

namespace {

const cairn::Bytes& Basis() {
  static const cairn::Bytes basis = [] {
    cairn::Bytes b(64 * 1024);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& c : b) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<uint8_t>(x);
    }
    return b;
  }();
  return basis;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  if (size == 0) return 0;
  constexpr size_t kMaxOutput = 256 * 1024;
  ByteView rest(data + 1, size - 1);
  if (data[0] & 1) {
    // Round trip: the new data is the basis with the input spliced in.
    Bytes fresh = Basis();
    size_t at = (static_cast<size_t>(data[0]) * 257) % fresh.size();
    size_t n = std::min(rest.size(), fresh.size() - at);
    std::memcpy(fresh.data() + at, rest.data(), n);
    static const Bytes sig = *chunk::ComputeSignature(Basis(), 4096);
    auto delta = chunk::ComputeDelta(sig, fresh);
    if (!delta.ok()) __builtin_trap();
    auto out = chunk::ApplyDelta(Basis(), *delta, kMaxOutput);
    if (!out.ok() || *out != fresh) __builtin_trap();
  } else {
    auto out = chunk::ApplyDelta(Basis(), rest, kMaxOutput);
    if (out.ok() && out->size() > kMaxOutput) __builtin_trap();
  }
  return 0;
}
