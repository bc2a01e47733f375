// In-memory rsync signatures, deltas and patches (librsync 2.3).
//
// This is how Cairn streams block changes: the agent keeps the signature of
// each extent from the last backup; when an extent changes it computes a delta
// against that signature and sends the delta instead of the extent when that
// is much smaller; restore applies the delta to the base extent.
//
// Formats are librsync's own: signatures use RS_RK_BLAKE2_SIG_MAGIC (a
// Rabin-Karp rolling weak sum plus a truncated BLAKE2b strong sum), deltas
// RS_DELTA_MAGIC. Both are stable across librsync 2.x.
//
// Everything is in memory and synchronous; inputs are read-only views the
// caller keeps alive for the call. All functions are thread-safe (each call
// owns its librsync jobs). On failure nothing is returned but the Status.
//
// librsync logs through a process-wide hook. The first call into this module
// installs a hook that keeps the last librsync error line of the calling
// thread for the Status message, so librsync never writes to stderr.
#ifndef CAIRN_LIB_CHUNK_RSYNC_DELTA_H_
#define CAIRN_LIB_CHUNK_RSYNC_DELTA_H_

#include <cstddef>
#include <cstdint>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::chunk {

// 4 KiB: the unit of a random write on a disk image, so one rewritten block
// costs about one block of literal data in the delta.
inline constexpr uint32_t kDefaultRsyncBlockLen = 4096;
inline constexpr uint32_t kMinRsyncBlockLen = 256;
inline constexpr uint32_t kMaxRsyncBlockLen = 1u << 20;
// Strong-sum bytes per block. 16 bytes (128 bits of BLAKE2b): a false match,
// which would silently corrupt a restored extent, needs a collision between a
// block of the new data and one of the basis. By chance that is ~2^-128 per
// pair, negligible for any vault; on purpose it needs ~2^64 BLAKE2 work, out of
// reach for a user who can write files that get backed up. It is 4x smaller
// than the 32-byte maximum: with the 4-byte weak sum, a signature costs 20
// bytes per 4 KiB block (0.5% of the data), 20 KiB per 4 MiB extent.
inline constexpr uint32_t kRsyncStrongLen = 16;

// Size in bytes of the signature ComputeSignature returns for a basis of
// `basis_len` bytes: a 12-byte header plus 4 + kRsyncStrongLen per block.
uint64_t RsyncSignatureSize(uint64_t basis_len, uint32_t block_len = kDefaultRsyncBlockLen);

// The librsync signature of `basis`. InvalidArgument when block_len is outside
// [kMinRsyncBlockLen, kMaxRsyncBlockLen].
Result<Bytes> ComputeSignature(ByteView basis, uint32_t block_len = kDefaultRsyncBlockLen);

// A delta that turns the basis described by `signature` into `new_data`.
// Corruption when the signature is not one ComputeSignature could have
// produced (bad magic, block length out of range, truncated, bad strong-sum
// length); it is checked before librsync sees it, so a hostile signature
// cannot make librsync allocate more than its own size suggests.
Result<Bytes> ComputeDelta(ByteView signature, ByteView new_data);

// A delta found block by block at the same offsets, with no rolling search:
// block i of `new_data` is copied from the basis when its entry in
// `new_signature` (ComputeSignature of new_data) equals entry i of
// `old_signature` (the basis's), and sent as literal bytes otherwise. For
// data changed by whole blocks rewritten in place (a disk image) this is
// the delta ComputeDelta finds, at a fraction of the cost: the comparison
// is of sums already computed; a change that moved data is sent whole
// where ComputeDelta would find the move. The result is a librsync delta
// (ApplyDelta applies it). The strong sums carry the same guarantee as in
// ComputeDelta. InvalidArgument when the signatures differ in block or
// strong-sum length or `new_signature` does not have one entry per block
// of `new_data`; Corruption for a malformed signature.
Result<Bytes> ComputeAlignedDelta(ByteView old_signature, ByteView new_signature,
                                  ByteView new_data);

// Applies `delta` to `basis` and returns the new data. Treats the delta as
// untrusted: Corruption (never a crash, never more than about max_output
// bytes allocated) when it is truncated, malformed, has trailing bytes after
// its end command, copies any byte outside the basis, or would produce more
// than `max_output` bytes.
Result<Bytes> ApplyDelta(ByteView basis, ByteView delta, size_t max_output);
// The same, into `*out` (replaced; its capacity is reused: a caller that
// applies many deltas keeps one buffer instead of allocating each time).
// `out` must not hold `basis` or `delta`.
Status ApplyDelta(ByteView basis, ByteView delta, size_t max_output, Bytes* out);

}  // namespace cairn::chunk

#endif  // CAIRN_LIB_CHUNK_RSYNC_DELTA_H_
