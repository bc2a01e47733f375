// Fuzzes the wire protocol parsers. The first byte picks a MessageType and
// the rest is decoded as its payload; a message that decodes must re-encode
// to exactly the same bytes (the encoding is canonical) and decode again to
// an equal message. The whole input is also parsed as a frame header, under
// the default limit and the pre-handshake one.
#include <cstddef>
#include <cstdint>

#include "lib/proto/frame.h"
#include "lib/proto/messages.h"

namespace {

using cairn::Bytes;
using cairn::ByteView;
namespace proto = cairn::proto;

template <typename T>
void RoundTrip(ByteView payload) {
  cairn::Result<T> m = T::Decode(payload);
  if (!m.ok()) {
    if (m.status().code() != cairn::StatusCode::kInvalidArgument) __builtin_trap();
    return;
  }
  Bytes again = m->Encode();
  if (!cairn::Equal(again, payload)) __builtin_trap();
  cairn::Result<T> m2 = T::Decode(again);
  if (!m2.ok() || !(*m2 == *m)) __builtin_trap();
}

void Decode(proto::MessageType type, ByteView payload) {
  using proto::MessageType;
  switch (type) {
    case MessageType::kError:
      return RoundTrip<proto::Error>(payload);
    case MessageType::kHello:
      return RoundTrip<proto::Hello>(payload);
    case MessageType::kHelloOk:
      return RoundTrip<proto::HelloOk>(payload);
    case MessageType::kEnrollRequest:
      return RoundTrip<proto::EnrollRequest>(payload);
    case MessageType::kEnrollResponse:
      return RoundTrip<proto::EnrollResponse>(payload);
    case MessageType::kSessionBegin:
      return RoundTrip<proto::SessionBegin>(payload);
    case MessageType::kSessionBegun:
      return RoundTrip<proto::SessionBegun>(payload);
    case MessageType::kHaveChunks:
      return RoundTrip<proto::HaveChunks>(payload);
    case MessageType::kHaveChunksReply:
      return RoundTrip<proto::HaveChunksReply>(payload);
    case MessageType::kPutRecord: {
      bool ok = proto::CheckPutRecord(payload).ok();
      if (ok != (!payload.empty() && payload.size() <= proto::kMaxRecordBytes)) __builtin_trap();
      return;
    }
    case MessageType::kFlush:
      return RoundTrip<proto::Flush>(payload);
    case MessageType::kFlushed:
      return RoundTrip<proto::Flushed>(payload);
    case MessageType::kCommit:
      return RoundTrip<proto::Commit>(payload);
    case MessageType::kCommitOk:
      return RoundTrip<proto::CommitOk>(payload);
    case MessageType::kJob:
      return RoundTrip<proto::Job>(payload);
    case MessageType::kJobDone:
      return RoundTrip<proto::JobDone>(payload);
    case MessageType::kPing:
      return RoundTrip<proto::Ping>(payload);
    case MessageType::kPong:
      return RoundTrip<proto::Pong>(payload);
    case MessageType::kListSnapshots:
      return RoundTrip<proto::ListSnapshots>(payload);
    case MessageType::kSnapshotList:
      return RoundTrip<proto::SnapshotList>(payload);
    case MessageType::kGetRecords:
      return RoundTrip<proto::GetRecords>(payload);
    case MessageType::kRecords:
      return RoundTrip<proto::Records>(payload);
    case MessageType::kManifestPart:
      return RoundTrip<proto::ManifestPart>(payload);
    case MessageType::kGetDelta:
      return RoundTrip<proto::GetDelta>(payload);
    case MessageType::kDelta:
      return RoundTrip<proto::DeltaReply>(payload);
    case MessageType::kReplicaList:
      return RoundTrip<proto::ReplicaList>(payload);
    case MessageType::kReplicaSnapshots:
      return RoundTrip<proto::ReplicaSnapshots>(payload);
    case MessageType::kGetManifest:
      return RoundTrip<proto::GetManifest>(payload);
    case MessageType::kManifest:
      return RoundTrip<proto::Manifest>(payload);
    case MessageType::kGetReplicaRecords:
      return RoundTrip<proto::GetReplicaRecords>(payload);
    case MessageType::kReplicaSetup:
      return RoundTrip<proto::ReplicaSetup>(payload);
    case MessageType::kReplicaSetupOk:
      return RoundTrip<proto::ReplicaSetupOk>(payload);
    case MessageType::kRestoreBegin:
      return RoundTrip<proto::RestoreBegin>(payload);
    case MessageType::kRestoreBegun:
      return RoundTrip<proto::RestoreBegun>(payload);
    case MessageType::kJobProgress:
      return RoundTrip<proto::JobProgress>(payload);
    case MessageType::kDrillReport:
      return RoundTrip<proto::DrillReport>(payload);
    case MessageType::kDrillSigned:
      return RoundTrip<proto::DrillSigned>(payload);
    case MessageType::kGetReplicaOrder:
      return RoundTrip<proto::GetReplicaOrder>(payload);
    case MessageType::kReplicaOrder:
      return RoundTrip<proto::ReplicaOrder>(payload);
    case MessageType::kPutDeltaRecord: {
      auto m = proto::PutDeltaRecord::Decode(payload);
      if (!m.ok()) return;
      Bytes again = proto::PutDeltaRecord::Encode(m->base, m->record);
      if (!cairn::Equal(again, payload)) __builtin_trap();
      return;
    }
  }
}

void CheckHeader(ByteView in, uint32_t limit) {
  cairn::Result<proto::FrameHeader> h = proto::ParseFrameHeader(in, limit);
  if (!h.ok()) return;
  if (h->length > limit || h->length > proto::MaxPayloadFor(h->type)) __builtin_trap();
  uint8_t again[proto::kFrameHeaderSize];
  proto::EncodeFrameHeader(*h, again);
  if (!cairn::Equal(ByteView(again, sizeof(again)), in.first(proto::kFrameHeaderSize))) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  CheckHeader(in, proto::kMaxFramePayload);
  CheckHeader(in, proto::kMaxHelloPayload);
  if (size == 0 || !proto::IsKnownMessageType(data[0])) return 0;
  Decode(static_cast<proto::MessageType>(data[0]), in.subspan(1));
  return 0;
}
