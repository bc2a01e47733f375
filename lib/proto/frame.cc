#include "lib/proto/frame.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace cairn::proto {

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kError:
      return "error";
    case MessageType::kHello:
      return "hello";
    case MessageType::kHelloOk:
      return "hello_ok";
    case MessageType::kEnrollRequest:
      return "enroll_request";
    case MessageType::kEnrollResponse:
      return "enroll_response";
    case MessageType::kSessionBegin:
      return "session_begin";
    case MessageType::kSessionBegun:
      return "session_begun";
    case MessageType::kHaveChunks:
      return "have_chunks";
    case MessageType::kHaveChunksReply:
      return "have_chunks_reply";
    case MessageType::kPutRecord:
      return "put_record";
    case MessageType::kFlush:
      return "flush";
    case MessageType::kFlushed:
      return "flushed";
    case MessageType::kCommit:
      return "commit";
    case MessageType::kCommitOk:
      return "commit_ok";
    case MessageType::kJob:
      return "job";
    case MessageType::kJobDone:
      return "job_done";
    case MessageType::kPing:
      return "ping";
    case MessageType::kPong:
      return "pong";
    case MessageType::kListSnapshots:
      return "list_snapshots";
    case MessageType::kSnapshotList:
      return "snapshot_list";
    case MessageType::kGetRecords:
      return "get_records";
    case MessageType::kRecords:
      return "records";
    case MessageType::kManifestPart:
      return "manifest_part";
    case MessageType::kGetDelta:
      return "get_delta";
    case MessageType::kDelta:
      return "delta";
    case MessageType::kReplicaList:
      return "replica_list";
    case MessageType::kReplicaSnapshots:
      return "replica_snapshots";
    case MessageType::kGetManifest:
      return "get_manifest";
    case MessageType::kManifest:
      return "manifest";
    case MessageType::kGetReplicaRecords:
      return "get_replica_records";
    case MessageType::kReplicaSetup:
      return "replica_setup";
    case MessageType::kReplicaSetupOk:
      return "replica_setup_ok";
    case MessageType::kRestoreBegin:
      return "restore_begin";
    case MessageType::kRestoreBegun:
      return "restore_begun";
    case MessageType::kJobProgress:
      return "job_progress";
    case MessageType::kPutDeltaRecord:
      return "put_delta_record";
    case MessageType::kDrillReport:
      return "drill_report";
    case MessageType::kDrillSigned:
      return "drill_signed";
    case MessageType::kGetReplicaOrder:
      return "get_replica_order";
    case MessageType::kReplicaOrder:
      return "replica_order";
  }
  return "unknown";
}

bool IsKnownMessageType(uint8_t type) {
  return type >= static_cast<uint8_t>(MessageType::kError) &&
         type <= static_cast<uint8_t>(MessageType::kReplicaOrder);
}

uint32_t MaxPayloadFor(MessageType type) {
  switch (type) {
    case MessageType::kPutRecord:
    case MessageType::kPutDeltaRecord:
    case MessageType::kRecords:
    case MessageType::kManifestPart:
    case MessageType::kDelta:
    case MessageType::kManifest:
    case MessageType::kReplicaSetupOk:
      return kMaxFramePayload;
    default:
      return kMaxControlPayload;
  }
}

Result<FrameHeader> ParseFrameHeader(ByteView bytes, uint32_t limit) {
  if (bytes.size() < kFrameHeaderSize) return Status::InvalidArgument("frame header truncated");
  if (bytes[0] != kFrameMagic0 || bytes[1] != kFrameMagic1) {
    return Status::InvalidArgument("bad frame magic (not a Cairn peer?)");
  }
  if (!IsKnownMessageType(bytes[2])) {
    return Status::InvalidArgument("unknown message type " + std::to_string(bytes[2]));
  }
  if (bytes[3] != 0) return Status::InvalidArgument("frame flags must be zero");
  FrameHeader h;
  h.type = static_cast<MessageType>(bytes[2]);
  h.length = DecodeFixed32(bytes.data() + 4);
  uint32_t cap = std::min(limit, MaxPayloadFor(h.type));
  if (h.length > cap) {
    return Status::InvalidArgument(std::string(MessageTypeName(h.type)) + " frame of " +
                                   std::to_string(h.length) + " bytes exceeds the limit of " +
                                   std::to_string(cap));
  }
  return h;
}

void EncodeFrameHeader(const FrameHeader& header, uint8_t* out) {
  out[0] = kFrameMagic0;
  out[1] = kFrameMagic1;
  out[2] = static_cast<uint8_t>(header.type);
  out[3] = 0;
  EncodeFixed32(out + 4, header.length);
}

Bytes EncodeFrame(MessageType type, ByteView payload) {
  Bytes out(kFrameHeaderSize + payload.size());
  EncodeFrameHeader({type, static_cast<uint32_t>(payload.size())}, out.data());
  if (!payload.empty()) std::memcpy(out.data() + kFrameHeaderSize, payload.data(), payload.size());
  return out;
}

}  // namespace cairn::proto
