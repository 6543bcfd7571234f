#include "ambient/hbone/record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ambient/hbone/baggage.h"
#include "support/spiffe_ids.h"

namespace ambient::hbone {
namespace {

using test_support::Id;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

WorkloadInfo Info(const std::string& name, const std::string& ns) {
  WorkloadInfo w;
  w.name = name;
  w.ns = ns;
  return w;
}

TEST(RecordBuilderTest, InboundConnectTakesAuthorityAndClientBaggage) {
  ConnectRequest req;
  req.authority = "198.18.0.7:8080";
  req.headers.push_back({"baggage", BuildBaggage(Info("sleep", "client-ns"))});
  req.headers.push_back({"baggage", "not baggage at all ,,,=="});
  RecordBuilder b = RecordBuilder::ForConnect(Direction::kInbound, req);
  b.Source("198.18.0.5:40000", Id("spiffe://cluster.local/ns/client-ns/sa/sleep"))
      .Destination("198.18.0.7:15008", Id("spiffe://cluster.local/ns/srv/sa/echo"),
                   Info("echo", "srv"))
      .Started(kT0);
  ConnectionRecord r = b.Opened();
  EXPECT_EQ(r.direction, Direction::kInbound);
  EXPECT_EQ(r.dst_hbone_addr, "198.18.0.7:8080");
  EXPECT_EQ(r.src.name, "sleep");
  EXPECT_EQ(r.src.ns, "client-ns");
  EXPECT_EQ(r.dst.name, "echo");
  EXPECT_EQ(r.src_identity, "spiffe://cluster.local/ns/client-ns/sa/sleep");
  EXPECT_TRUE(r.error.ok());
  EXPECT_EQ(r.response_flags, "-");
  EXPECT_EQ(FormatAccessLog(r),
            "connection complete src.addr=198.18.0.5:40000 src.workload=\"sleep\" "
            "src.namespace=\"client-ns\" "
            "src.identity=\"spiffe://cluster.local/ns/client-ns/sa/sleep\" "
            "dst.addr=198.18.0.7:15008 dst.hbone_addr=198.18.0.7:8080 dst.workload=\"echo\" "
            "dst.namespace=\"srv\" dst.identity=\"spiffe://cluster.local/ns/srv/sa/echo\" "
            "direction=\"inbound\" bytes_sent=0 bytes_recv=0 duration=\"0ms\"");
}

TEST(RecordBuilderTest, OutboundConnectIgnoresRequestBaggage) {
  ConnectRequest req;
  req.authority = "198.18.0.7:8080";
  req.headers.push_back({"baggage", BuildBaggage(Info("sleep", "client-ns"))});
  ConnectionRecord r = RecordBuilder::ForConnect(Direction::kOutbound, req).Opened();
  EXPECT_TRUE(r.src.empty());
  EXPECT_EQ(r.direction, Direction::kOutbound);
}

TEST(RecordBuilderTest, PeerIdentityGoesToTheRemoteSide) {
  ConnectionRecord in =
      RecordBuilder(Direction::kInbound).PeerIdentity(Id("spiffe://a/ns/x/sa/y")).Opened();
  EXPECT_EQ(in.src_identity, "spiffe://a/ns/x/sa/y");
  EXPECT_EQ(in.dst_identity, "");
  ConnectionRecord out =
      RecordBuilder(Direction::kOutbound).PeerIdentity(Id("spiffe://a/ns/x/sa/y")).Opened();
  EXPECT_EQ(out.dst_identity, "spiffe://a/ns/x/sa/y");
  EXPECT_EQ(out.src_identity, "");
}

TEST(RecordBuilderTest, DestinationKeepsKnownIdentityAndWorkloadWhenGivenEmpty) {
  RecordBuilder b(Direction::kInbound);
  b.Destination("198.18.0.7:15008", Id("spiffe://a/ns/x/sa/y"), Info("echo", "x"));
  b.Destination("198.18.0.8:15008");
  EXPECT_EQ(b.record().dst_addr, "198.18.0.8:15008");
  EXPECT_EQ(b.record().dst_identity, "spiffe://a/ns/x/sa/y");
  EXPECT_EQ(b.record().dst.name, "echo");
}

TEST(RecordBuilderTest, ResponseBaggageOnlyFillsAnUnknownDestination) {
  RecordBuilder b(Direction::kOutbound);
  b.ResponseBaggage("definitely not=baggage;;;,");  // malformed: unknown
  EXPECT_TRUE(b.record().dst.empty());
  b.ResponseBaggage(BuildBaggage(Info("echo", "srv")));
  EXPECT_EQ(b.record().dst.name, "echo");
  b.ResponseBaggage(BuildBaggage(Info("other", "elsewhere")));
  EXPECT_EQ(b.record().dst.name, "echo");
  EXPECT_EQ(b.record().dst.ns, "srv");
}

TEST(RecordBuilderTest, RefusedHasNoDurationFailedHasOne) {
  RecordBuilder b(Direction::kInbound);
  b.Source("198.18.0.5:40000").Started(kT0);
  ConnectionRecord refused = b.Refused(absl::PermissionDeniedError("no"), "DENY");
  EXPECT_EQ(refused.response_flags, "DENY");
  EXPECT_EQ(refused.error, absl::PermissionDeniedError("no"));
  EXPECT_EQ(refused.duration, absl::ZeroDuration());
  ConnectionRecord failed =
      b.Failed(absl::UnavailableError("refused"), "CONNECT", kT0 + absl::Milliseconds(250));
  EXPECT_EQ(failed.duration, absl::Milliseconds(250));
  EXPECT_EQ(failed.response_flags, "CONNECT");
  EXPECT_THAT(FormatAccessLog(failed), HasSubstr("duration=\"250ms\" error=\"refused\""));
  // The builder itself is unchanged by the outcomes.
  EXPECT_TRUE(b.Opened().error.ok());
  EXPECT_EQ(b.Opened().response_flags, "-");
}

TEST(RecordBuilderTest, ClosedCarriesBytesDurationAndErrorFlags) {
  RecordBuilder b(Direction::kOutbound);
  b.Started(kT0);
  ConnectionRecord ok = b.Closed({490, 67}, absl::OkStatus(), kT0 + absl::Milliseconds(13));
  EXPECT_EQ(ok.bytes_sent, 490u);
  EXPECT_EQ(ok.bytes_recv, 67u);
  EXPECT_EQ(ok.duration, absl::Milliseconds(13));
  EXPECT_EQ(ok.response_flags, "-");
  EXPECT_THAT(FormatAccessLog(ok), Not(HasSubstr("error=")));
  ConnectionRecord reset = b.Closed({1, 2}, absl::AbortedError("reset"), kT0);
  EXPECT_EQ(reset.response_flags, "CONNECT");
  ConnectionRecord denied = b.Closed({0, 0}, absl::PermissionDeniedError("401"), kT0, "DENY");
  EXPECT_EQ(denied.response_flags, "DENY");
}

TEST(RecordBuilderTest, EditRunsTheHostHook) {
  RecordBuilder b(Direction::kInbound);
  b.Edit([](ConnectionRecord* r) { r->dst_service = "echo.srv.svc.cluster.local"; });
  b.Edit(nullptr);
  EXPECT_EQ(b.record().dst_service, "echo.srv.svc.cluster.local");
}

TEST(RecordBuilderTest, DialFailureFlags) {
  EXPECT_STREQ(RecordBuilder::DialFailureFlags(absl::PermissionDeniedError("id")),
               "IDENTITY_ERROR");
  EXPECT_STREQ(RecordBuilder::DialFailureFlags(absl::UnauthenticatedError("tls")), "TLS_FAILURE");
  EXPECT_STREQ(RecordBuilder::DialFailureFlags(absl::DeadlineExceededError("t")), "CONNECT");
}

}  // namespace
}  // namespace ambient::hbone
