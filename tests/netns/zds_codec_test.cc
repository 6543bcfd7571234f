// The ZDS codec against hand-assembled protobuf bytes: proves the wire format
// (package-independent field numbers) is istio's, and that bad bytes are refused.
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "ambient/netns/zds.h"

namespace ambient::netns::zds {
namespace {

using namespace std::string_literals;

TEST(ZdsCodec, HelloIsV1) {
  EXPECT_EQ(EncodeHello(), "\x08\x01"s);
  EXPECT_TRUE(DecodeHello("\x08\x01"s).ok());
  EXPECT_EQ(DecodeHello(""s).code(), absl::StatusCode::kInvalidArgument);         // NOT_USED
  EXPECT_EQ(DecodeHello("\x08\x02"s).code(), absl::StatusCode::kInvalidArgument);  // V2?
  EXPECT_EQ(DecodeHello("\x08"s).code(), absl::StatusCode::kInvalidArgument);      // cut short
  EXPECT_EQ(DecodeHello(std::string(2000, '\x08')).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ZdsCodec, RequestsUseIstioFieldNumbers) {
  Request del;
  del.type = RequestType::kDel;
  del.uid = "abc";
  // WorkloadRequest.del = 2 { DelWorkload.uid = 2 }.
  EXPECT_EQ(EncodeRequest(del).value(), "\x12\x05\x12\x03" "abc"s);

  Request keep;
  keep.type = RequestType::kKeep;
  keep.uid = "k";
  // WorkloadRequest.keep = 5 { KeepWorkload.uid = 1 }.
  EXPECT_EQ(EncodeRequest(keep).value(), "\x2a\x03\x0a\x01k"s);

  Request snap;
  snap.type = RequestType::kSnapshotSent;
  EXPECT_EQ(EncodeRequest(snap).value(), "\x1a\x00"s);

  Request add;
  add.type = RequestType::kAdd;
  add.uid = "u";
  add.has_workload_info = true;
  add.workload_info = {"n", "ns", "sa"};
  // add = 1 { uid = 1, workload_info = 2 { name = 1, namespace = 2, service_account = 3 } }
  const std::string add_bytes = "\x0a\x10\x0a\x01u\x12\x0b\x0a\x01n\x12\x02ns\x1a\x02sa"s;
  EXPECT_EQ(EncodeRequest(add).value(), add_bytes);

  absl::StatusOr<Request> back = DecodeRequest(add_bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->type, RequestType::kAdd);
  EXPECT_EQ(back->uid, "u");
  EXPECT_TRUE(back->has_workload_info);
  EXPECT_EQ(back->workload_info.ns, "ns");
  EXPECT_EQ(back->workload_info.service_account, "sa");
  back = DecodeRequest("\x12\x05\x12\x03" "abc"s);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->type, RequestType::kDel);
  EXPECT_EQ(back->uid, "abc");

  // Unknown fields (e.g. windows_namespace, future ones) are tolerated.
  back = DecodeRequest("\x0a\x05\x0a\x01u\x12\x00\x30\x07"s);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->has_workload_info);
  back = DecodeRequest("\x0a\x03\x0a\x01u"s);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->has_workload_info);
}

TEST(ZdsCodec, RejectsBadRequests) {
  const std::string bad[] = {
      ""s,                              // no payload
      "\x0a"s,                          // truncated tag
      "\x0a\x05\x0a\x01u"s,             // length past the end
      "\x12\x02\x0a\x00"s,              // del with uid in field 1 (not 2): empty uid
      "\x12\x00"s,                      // del without uid
      "\x0a\x00"s,                      // add without uid
      "\x2a\x03\x0a\x01\xff"s,          // keep with invalid UTF-8 uid
      "\x0a\x09\x0a\x01u\x12\x04\x0a\x02\xc0\x80"s,  // overlong UTF-8 in name
      std::string(1025, '\0'),          // over 1024 bytes
  };
  for (const std::string& b : bad) {
    EXPECT_EQ(DecodeRequest(b).status().code(), absl::StatusCode::kInvalidArgument)
        << absl::CHexEscape(b);
  }
  Request big;
  big.type = RequestType::kDel;
  big.uid = std::string(1100, 'x');
  EXPECT_EQ(EncodeRequest(big).status().code(), absl::StatusCode::kInvalidArgument);
  Request not_utf8;
  not_utf8.type = RequestType::kDel;
  not_utf8.uid = "\xff";
  EXPECT_EQ(EncodeRequest(not_utf8).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ZdsCodec, Acks) {
  EXPECT_EQ(EncodeAck(""), "\x0a\x00"s);
  EXPECT_EQ(DecodeAck("\x0a\x00"s).value(), "");
  EXPECT_EQ(DecodeAck(EncodeAck("no such pod")).value(), "no such pod");
  // A huge error is cut to fit one datagram, at a character boundary.
  std::string long_error;
  for (int i = 0; i < 600; ++i) long_error += "\xc3\xa9";  // é
  std::string ack = EncodeAck(long_error);
  EXPECT_LE(ack.size(), kMaxMessageSize);
  absl::StatusOr<std::string> text = DecodeAck(ack);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->size() % 2, 0u);
  EXPECT_GT(text->size(), 900u);
  EXPECT_EQ(DecodeAck(""s).status().code(), absl::StatusCode::kInvalidArgument);  // no ack
  EXPECT_EQ(DecodeAck("\x0a"s).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambient::netns::zds
