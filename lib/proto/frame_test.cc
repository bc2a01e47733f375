#include "lib/proto/frame.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::proto {
namespace {

Bytes Header(uint8_t type, uint32_t length, uint8_t flags = 0) {
  Bytes h(kFrameHeaderSize);
  h[0] = kFrameMagic0;
  h[1] = kFrameMagic1;
  h[2] = type;
  h[3] = flags;
  EncodeFixed32(h.data() + 4, length);
  return h;
}

constexpr uint8_t kFirstType = static_cast<uint8_t>(MessageType::kError);
constexpr uint8_t kLastType = static_cast<uint8_t>(MessageType::kReplicaOrder);

void ExpectInvalid(ByteView header, uint32_t limit, std::string_view contains) {
  Result<FrameHeader> h = ParseFrameHeader(header, limit);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find(contains), std::string::npos) << h.status().ToString();
}

TEST(FrameTest, EncodeThenParseEveryType) {
  for (int t = kFirstType; t <= kLastType; ++t) {
    auto type = static_cast<MessageType>(t);
    Bytes payload = {1, 2, 3};
    Bytes frame = EncodeFrame(type, payload);
    ASSERT_EQ(frame.size(), kFrameHeaderSize + 3);
    EXPECT_EQ(frame, [&] {
      Bytes want = Header(static_cast<uint8_t>(t), 3);
      want.insert(want.end(), payload.begin(), payload.end());
      return want;
    }());
    Result<FrameHeader> h = ParseFrameHeader(frame);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_EQ(h->type, type);
    EXPECT_EQ(h->length, 3u);
    EXPECT_NE(MessageTypeName(type), "unknown");
  }
  EXPECT_EQ(EncodeFrame(MessageType::kPing, {}).size(), kFrameHeaderSize);
}

TEST(FrameTest, NamesAreStableAndUnknownIsNamed) {
  EXPECT_EQ(MessageTypeName(MessageType::kPutRecord), "put_record");
  EXPECT_EQ(MessageTypeName(MessageType::kHaveChunksReply), "have_chunks_reply");
  EXPECT_EQ(MessageTypeName(static_cast<MessageType>(0)), "unknown");
  EXPECT_EQ(MessageTypeName(static_cast<MessageType>(kLastType + 1)), "unknown");
}

TEST(FrameTest, TruncatedHeaderRejected) {
  Bytes h = Header(static_cast<uint8_t>(MessageType::kPing), 8);
  for (size_t n = 0; n < kFrameHeaderSize; ++n) {
    ExpectInvalid(ByteView(h.data(), n), kMaxFramePayload, "truncated");
  }
}

TEST(FrameTest, BadMagicRejected) {
  Bytes h = Header(static_cast<uint8_t>(MessageType::kPing), 8);
  h[0] = 'X';
  ExpectInvalid(h, kMaxFramePayload, "magic");
  h = Header(static_cast<uint8_t>(MessageType::kPing), 8);
  h[1] = 0x47;
  ExpectInvalid(h, kMaxFramePayload, "magic");
  // A TLS record or an HTTP request on the wrong port.
  ExpectInvalid(AsBytes("GET / HTTP/1.1\r\n"), kMaxFramePayload, "magic");
}

TEST(FrameTest, NonZeroFlagsRejected) {
  for (int flags = 1; flags < 256; flags <<= 1) {
    ExpectInvalid(Header(static_cast<uint8_t>(MessageType::kPing), 8, static_cast<uint8_t>(flags)),
                  kMaxFramePayload, "flags");
  }
}

TEST(FrameTest, UnknownTypeRejected) {
  for (int t : {0, kLastType + 1, 0x7f, 0xff}) {
    EXPECT_FALSE(IsKnownMessageType(static_cast<uint8_t>(t)));
    ExpectInvalid(Header(static_cast<uint8_t>(t), 0), kMaxFramePayload, "unknown message type");
  }
  for (int t = kFirstType; t <= kLastType; ++t) EXPECT_TRUE(IsKnownMessageType(t));
}

TEST(FrameTest, LengthLimitDependsOnType) {
  for (int t = kFirstType; t <= kLastType; ++t) {
    auto type = static_cast<MessageType>(t);
    bool bulk = type == MessageType::kPutRecord || type == MessageType::kPutDeltaRecord ||
                type == MessageType::kRecords || type == MessageType::kManifestPart ||
                type == MessageType::kDelta || type == MessageType::kManifest ||
                type == MessageType::kReplicaSetupOk;
    uint32_t cap = bulk ? kMaxFramePayload : kMaxControlPayload;
    EXPECT_EQ(MaxPayloadFor(type), cap) << MessageTypeName(type);
    EXPECT_TRUE(ParseFrameHeader(Header(t, cap)).ok()) << MessageTypeName(type);
    ExpectInvalid(Header(t, cap + 1), kMaxFramePayload, "exceeds the limit");
    ExpectInvalid(Header(t, 0xffffffffu), kMaxFramePayload, "exceeds the limit");
  }
  // A control message one byte over its cap is refused even though a
  // record of that size would be fine.
  ExpectInvalid(Header(static_cast<uint8_t>(MessageType::kHaveChunks), kMaxControlPayload + 1),
                kMaxFramePayload, "have_chunks frame");
  EXPECT_TRUE(ParseFrameHeader(
                  Header(static_cast<uint8_t>(MessageType::kPutRecord), kMaxControlPayload + 1))
                  .ok());
}

TEST(FrameTest, LimitArgumentTightensButNeverLoosens) {
  const uint8_t hello = static_cast<uint8_t>(MessageType::kHello);
  const uint8_t put = static_cast<uint8_t>(MessageType::kPutRecord);
  EXPECT_TRUE(ParseFrameHeader(Header(hello, 4096), 4096).ok());
  ExpectInvalid(Header(hello, 4097), 4096, "exceeds the limit of 4096");
  ExpectInvalid(Header(put, 4097), 4096, "exceeds the limit of 4096");
  EXPECT_TRUE(ParseFrameHeader(Header(put, 0), 0).ok());
  ExpectInvalid(Header(put, 1), 0, "exceeds the limit of 0");
  // A limit above the type's own cap does not raise it.
  ExpectInvalid(Header(hello, kMaxControlPayload + 1), 0xffffffffu, "exceeds the limit");
  ExpectInvalid(Header(put, kMaxFramePayload + 1), 0xffffffffu, "exceeds the limit");
}

TEST(FrameTest, ParseReadsOnlyTheHeader) {
  Bytes frame = EncodeFrame(MessageType::kPong, Bytes(100, 0xee));
  Result<FrameHeader> h = ParseFrameHeader(ByteView(frame.data(), kFrameHeaderSize));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->length, 100u);
}

}  // namespace
}  // namespace cairn::proto
