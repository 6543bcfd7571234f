#include "ambient/hbone/server_decision.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;
using Stage = StreamAnswer::Stage;

const char kSleep[] = "spiffe://cluster.local/ns/client/sa/sleep";
const char kOther[] = "spiffe://cluster.local/ns/client/sa/other";

// Id is `text` as the identity::SpiffeId value ServerDecision takes.
identity::SpiffeId Id(const char* text) { return *identity::SpiffeId::Parse(text); }

std::function<RecordBuilder()> Rec() {
  return [] {
    ConnectRequest req;
    req.authority = "198.18.0.7:8080";
    RecordBuilder b = RecordBuilder::ForConnect(Direction::kInbound, req);
    b.Source("198.18.0.5:40000", Id(kSleep)).Destination("198.18.0.7:15008");
    return b;
  };
}

TEST(ServerDecisionTest, AcceptsWhenEveryStepPassesAndCountsThePendingDial) {
  ServerDecision d;
  std::vector<std::string> calls;
  ServerDecision::HostChecks host;
  host.resolve = [&] { calls.push_back("resolve"); return absl::OkStatus(); };
  host.authorize = [&] { calls.push_back("authorize"); return absl::OkStatus(); };
  host.route = [&] { calls.push_back("route"); return absl::OkStatus(); };
  bool built = false;
  StreamAnswer a = d.Decide(1, Id(kSleep), host, [&] { built = true; return Rec()(); });
  EXPECT_TRUE(a.accepted());
  EXPECT_EQ(a.http_status, 200);
  EXPECT_TRUE(a.reason.ok());
  EXPECT_FALSE(built) << "no record for an accepted stream";
  EXPECT_EQ(calls, (std::vector<std::string>{"resolve", "authorize", "route"}));
  EXPECT_EQ(d.pending(), 1u);
  EXPECT_EQ(d.pending_for_connection(1), 1u);
  EXPECT_EQ(d.pending_for_identity(Id(kSleep)), 1u);
  d.Release(1, Id(kSleep));
  EXPECT_EQ(d.pending(), 0u);
  EXPECT_EQ(d.pending_for_connection(1), 0u);
  EXPECT_EQ(d.pending_for_identity(Id(kSleep)), 0u);
}

TEST(ServerDecisionTest, PeerNotOnTheAllowListIs401DenyBeforeAnyHostCheck) {
  ServerDecision d({Id(kOther)});
  bool asked = false;
  ServerDecision::HostChecks host;
  host.resolve = [&] { asked = true; return absl::OkStatus(); };
  StreamAnswer a = d.Decide(1, Id(kSleep), host, Rec());
  EXPECT_EQ(a.stage, Stage::kIdentity);
  EXPECT_EQ(a.http_status, 401);
  EXPECT_EQ(a.reason.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(a.reason.message(), std::string("identity ") + kSleep + " is not allowed");
  EXPECT_EQ(a.record.response_flags, "DENY");
  EXPECT_EQ(a.record.error, a.reason);
  EXPECT_EQ(a.record.src_identity, kSleep);
  EXPECT_FALSE(asked);
  EXPECT_EQ(d.pending(), 0u);
  EXPECT_TRUE(d.Decide(1, Id(kOther), host, Rec()).accepted());
}

TEST(ServerDecisionTest, EachHostStepMapsToItsStatusAndFlags) {
  struct Case {
    int failing;  // 0 resolve, 1 authorize, 2 route
    Stage stage;
    int status;
    const char* flags;
  };
  for (const Case& c : {Case{0, Stage::kResolve, 503, "CONNECT"},
                        Case{1, Stage::kAuthorize, 401, "DENY"},
                        Case{2, Stage::kRoute, 503, "CONNECT"}}) {
    ServerDecision d;
    int later_calls = 0;
    ServerDecision::HostChecks host;
    auto step = [&](int n) -> absl::Status {
      if (n > c.failing) ++later_calls;
      return n == c.failing ? absl::UnavailableError("step failed") : absl::OkStatus();
    };
    host.resolve = [&] { return step(0); };
    host.authorize = [&] { return step(1); };
    host.route = [&] { return step(2); };
    StreamAnswer a = d.Decide(7, Id(kSleep), host, Rec());
    EXPECT_EQ(a.stage, c.stage) << c.failing;
    EXPECT_EQ(a.http_status, c.status) << c.failing;
    EXPECT_EQ(a.record.response_flags, c.flags) << c.failing;
    EXPECT_EQ(a.reason.message(), "step failed");
    EXPECT_THAT(FormatAccessLog(a.record), HasSubstr("error=\"step failed\""));
    EXPECT_EQ(later_calls, 0) << "steps after a refusal must not run";
    EXPECT_EQ(d.pending(), 0u);
  }
}

TEST(ServerDecisionTest, PendingDialLimitsPerConnectionAndPerIdentity) {
  ServerDecision d({}, PendingLimits{2, 3});
  ServerDecision::HostChecks host;
  EXPECT_TRUE(d.Decide(1, Id(kSleep), host, Rec()).accepted());
  EXPECT_TRUE(d.Decide(1, Id(kSleep), host, Rec()).accepted());
  StreamAnswer a = d.Decide(1, Id(kSleep), host, Rec());
  EXPECT_EQ(a.stage, Stage::kLimit);
  EXPECT_EQ(a.http_status, 503);
  EXPECT_EQ(a.reason.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a.reason.message(), "too many upstream connects pending for this connection (limit 2)");
  EXPECT_EQ(a.record.response_flags, "CONNECT");
  // Another connection of the same identity: one more fits, then the
  // identity's cap.
  EXPECT_TRUE(d.Decide(2, Id(kSleep), host, Rec()).accepted());
  a = d.Decide(2, Id(kSleep), host, Rec());
  EXPECT_EQ(a.reason.message(), "too many upstream connects pending for this identity (limit 3)");
  EXPECT_TRUE(d.Decide(2, Id(kOther), host, Rec()).accepted());
  EXPECT_EQ(d.pending(), 4u);
  d.Release(1, Id(kSleep));
  EXPECT_TRUE(d.Decide(3, Id(kSleep), host, Rec()).accepted());
  // A closed connection forgets its count; its dials still release.
  d.ConnectionClosed(1);
  EXPECT_EQ(d.pending_for_connection(1), 0u);
  d.Release(1, Id(kSleep));
  EXPECT_EQ(d.pending_for_identity(Id(kSleep)), 2u);
  // Raising the limits takes effect at once.
  d.SetLimits(PendingLimits{0, 0});
  EXPECT_TRUE(d.Decide(2, Id(kSleep), host, Rec()).accepted());
}

TEST(ServerDecisionTest, UpstreamFailedIs503ConnectWithTheRecord) {
  StreamAnswer a = ServerDecision::UpstreamFailed(absl::UnavailableError("connection refused"),
                                                 Rec()());
  EXPECT_EQ(a.stage, Stage::kUpstream);
  EXPECT_EQ(a.http_status, 503);
  EXPECT_FALSE(a.accepted());
  EXPECT_EQ(a.record.response_flags, "CONNECT");
  EXPECT_EQ(a.record.dst_hbone_addr, "198.18.0.7:8080");
  EXPECT_EQ(a.record.duration, absl::ZeroDuration());
}

}  // namespace
}  // namespace ambient::hbone
