// Frames: the unit on every Cairn connection (agent, replicator and restore
// to vault). A frame is an 8-byte header and a payload:
//
//   0  2  magic    0x43 0x46 ("CF")
//   2  1  type     MessageType
//   3  1  flags    0 (reserved; readers reject anything else)
//   4  4  length   payload bytes, little-endian
//
// Readers parse the header first and refuse a length above the limit for
// that message type before allocating or reading the payload, so a peer can
// never make the other side buffer more than the limit (doc/protocol.md).
// Pure functions, no I/O: this is what the fuzzer drives.
#ifndef CAIRN_LIB_PROTO_FRAME_H_
#define CAIRN_LIB_PROTO_FRAME_H_

#include <cstdint>
#include <string_view>

#include "lib/base/bytes.h"
#include "lib/base/status.h"

namespace cairn::proto {

inline constexpr size_t kFrameHeaderSize = 8;
inline constexpr uint8_t kFrameMagic0 = 0x43;  // 'C'
inline constexpr uint8_t kFrameMagic1 = 0x46;  // 'F'

// Largest payload of any frame: one record (16 MiB of plaintext plus its
// overhead) with room for the message's own fields.
inline constexpr uint32_t kMaxFramePayload = (16u << 20) + 4096;
// Largest payload of a control message (everything but records and
// manifests). Keeps an unauthenticated or confused peer from making the
// other side allocate more than this.
inline constexpr uint32_t kMaxControlPayload = 1u << 20;

enum class MessageType : uint8_t {
  kError = 1,
  kHello = 2,
  kHelloOk = 3,
  kEnrollRequest = 4,
  kEnrollResponse = 5,
  kSessionBegin = 6,
  kSessionBegun = 7,
  kHaveChunks = 8,
  kHaveChunksReply = 9,
  kPutRecord = 10,
  kFlush = 11,
  kFlushed = 12,
  kCommit = 13,
  kCommitOk = 14,
  kJob = 15,
  kJobDone = 16,
  kPing = 17,
  kPong = 18,
  kListSnapshots = 19,
  kSnapshotList = 20,
  kGetRecords = 21,
  kRecords = 22,
  kManifestPart = 23,
  kGetDelta = 24,
  kDelta = 25,
  kReplicaList = 26,
  kReplicaSnapshots = 27,
  kGetManifest = 28,
  kManifest = 29,
  kGetReplicaRecords = 30,
  kReplicaSetup = 31,
  kReplicaSetupOk = 32,
  kRestoreBegin = 33,
  kRestoreBegun = 34,
  kJobProgress = 35,
  kPutDeltaRecord = 36,
  kDrillReport = 37,
  kDrillSigned = 38,
  kGetReplicaOrder = 39,
  kReplicaOrder = 40,
};

// Lower-case name for logs ("put_record"); "unknown" for anything else.
std::string_view MessageTypeName(MessageType type);
// Whether `type` is one of the values above.
bool IsKnownMessageType(uint8_t type);
// The payload limit for `type`: kMaxFramePayload for PutRecord, Records,
// ManifestPart, Delta, Manifest and ReplicaSetupOk, kMaxControlPayload for
// the rest.
uint32_t MaxPayloadFor(MessageType type);

struct FrameHeader {
  MessageType type = MessageType::kError;
  uint32_t length = 0;
};

// Parses the first kFrameHeaderSize bytes. InvalidArgument (a protocol
// violation: the connection is closed with that reason) for a bad magic,
// flags, an unknown type, or a length above MaxPayloadFor(type) and
// `limit`. `limit` lets a connection tighten the cap (before Hello only
// Hello is small).
Result<FrameHeader> ParseFrameHeader(ByteView bytes, uint32_t limit = kMaxFramePayload);

void EncodeFrameHeader(const FrameHeader& header, uint8_t* out);

// Header followed by payload, in one buffer (for small messages and tests).
Bytes EncodeFrame(MessageType type, ByteView payload);

}  // namespace cairn::proto

#endif  // CAIRN_LIB_PROTO_FRAME_H_
