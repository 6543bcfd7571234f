// The proxy end's ZDS state machine, driven with bytes only: no sockets, no
// threads, a hand-moved clock.
#include "ambient/netns/zds_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "netns/test_util.h"
#include "support/privileged.h"

namespace ambient::netns::zds {
namespace {

using ::ambient::netns::testing::OpenFdCount;
using Kind = ProxyAction::Kind;

const absl::Time kT0 = absl::FromUnixSeconds(1000);

std::vector<UniqueFd> OwnNetnsFd() {
  std::vector<UniqueFd> fds;
  fds.emplace_back(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  return fds;
}

std::string Req(RequestType type, const std::string& uid = "", bool info = true) {
  Request r;
  r.type = type;
  r.uid = uid;
  r.has_workload_info = info && type == RequestType::kAdd;
  if (r.has_workload_info) r.workload_info = {"name-" + uid, "demo", "sa"};
  absl::StatusOr<std::string> bytes = EncodeRequest(r);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

std::vector<ProxyAction> Drain(ProxySession& s) {
  std::vector<ProxyAction> out;
  while (std::optional<ProxyAction> a = s.NextAction()) out.push_back(std::move(*a));
  return out;
}

// Kinds spells the actions as text, e.g. "send remove:b snapshot".
std::string Kinds(const std::vector<ProxyAction>& actions) {
  std::string out;
  for (const ProxyAction& a : actions) {
    if (!out.empty()) out += " ";
    switch (a.kind) {
      case Kind::kSend:
        out += "send";
        break;
      case Kind::kAddWorkload:
        out += "add:" + a.uid;
        break;
      case Kind::kRemoveWorkload:
        out += "remove:" + a.uid;
        break;
      case Kind::kSnapshotComplete:
        out += "snapshot";
        break;
      case Kind::kDisconnected:
        out += "disconnected";
        break;
    }
  }
  return out;
}

// AckText decodes the Ack in a kSend action.
std::string AckText(const ProxyAction& a) {
  EXPECT_EQ(a.kind, Kind::kSend);
  absl::StatusOr<std::string> text = DecodeAck(a.bytes);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "<not an ack>";
}

// Connect makes `s` connected and checks the hello.
void Connect(ProxySession& s, absl::Time now = kT0) {
  s.Connected(now);
  std::vector<ProxyAction> a = Drain(s);
  ASSERT_EQ(Kinds(a), "send");
  EXPECT_TRUE(DecodeHello(a[0].bytes).ok());
}

// AddOk feeds an add for `uid` and completes it with `result`; returns the
// Ack text.
std::string Add(ProxySession& s, const std::string& uid, absl::Status result = absl::OkStatus(),
                absl::Time now = kT0) {
  EXPECT_TRUE(s.Receive(Req(RequestType::kAdd, uid), OwnNetnsFd(), false, now).ok());
  std::vector<ProxyAction> a = Drain(s);
  EXPECT_EQ(Kinds(a), "add:" + uid);
  if (a.size() != 1) return "<no add>";
  EXPECT_EQ(a[0].info.name, "name-" + uid);
  EXPECT_TRUE(a[0].netns.valid());
  EXPECT_TRUE(s.AddWorkloadDone(a[0].call, result, now).ok());
  a = Drain(s);
  EXPECT_EQ(Kinds(a), "send");
  return a.size() == 1 ? AckText(a[0]) : "<no ack>";
}

std::string Simple(ProxySession& s, RequestType type, const std::string& uid = "") {
  EXPECT_TRUE(s.Receive(Req(type, uid), {}, false, kT0).ok());
  std::vector<ProxyAction> a = Drain(s);
  if (a.empty() || a.back().kind != Kind::kSend) return "<no ack>";
  return AckText(a.back());
}

TEST(ZdsProxySession, HelloFirstThenReadyAfterTheSnapshot) {
  ProxySession s;
  EXPECT_FALSE(s.connected());
  EXPECT_FALSE(s.wants_datagram());
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  EXPECT_TRUE(s.connected());
  EXPECT_TRUE(s.wants_datagram());
  EXPECT_FALSE(s.ready());
  EXPECT_EQ(s.connect_count(), 1u);
  EXPECT_EQ(Add(s, "a"), "");
  EXPECT_FALSE(s.ready());  // no snapshot yet
  EXPECT_TRUE(s.Receive(Req(RequestType::kSnapshotSent), {}, false, kT0).ok());
  EXPECT_EQ(Kinds(Drain(s)), "snapshot send");
  EXPECT_TRUE(s.ready());
  EXPECT_EQ(s.workload_count(), 1u);
  EXPECT_EQ(s.snapshot_count(), 1u);
  EXPECT_EQ(s.next_deadline(), absl::InfiniteFuture());

  // The agent goes away: not ready, pods kept.
  s.Closed(absl::UnavailableError("peer closed the connection"));
  std::vector<ProxyAction> a = Drain(s);
  ASSERT_EQ(Kinds(a), "disconnected");
  EXPECT_EQ(a[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(s.ready());
  EXPECT_EQ(s.workload_count(), 1u);
  s.Closed(absl::UnavailableError("again"));  // already closed: nothing
  EXPECT_EQ(Kinds(Drain(s)), "");
  EXPECT_EQ(s.Receive(Req(RequestType::kSnapshotSent), {}, false, kT0).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ZdsProxySession, AddKeepDelAndTheSnapshotDropsWhatItDidNotName) {
  ProxySession s;
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  EXPECT_EQ(Add(s, "a"), "");
  EXPECT_EQ(Add(s, "b"), "");
  EXPECT_EQ(Add(s, "c"), "");
  EXPECT_EQ(Simple(s, RequestType::kSnapshotSent), "");
  EXPECT_EQ(s.workload_count(), 3u);

  // A new connection's snapshot names a (same netns: no handler call), keeps
  // c, and forgets b: b is removed, once, at snapshot_sent.
  s.Closed(absl::UnavailableError("gone"));
  Drain(s);
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "a"), OwnNetnsFd(), false, kT0).ok());
  std::vector<ProxyAction> a = Drain(s);
  ASSERT_EQ(Kinds(a), "send");  // idempotent
  EXPECT_EQ(AckText(a[0]), "");
  EXPECT_EQ(Simple(s, RequestType::kKeep, "c"), "");
  ASSERT_TRUE(s.Receive(Req(RequestType::kSnapshotSent), {}, false, kT0).ok());
  a = Drain(s);
  EXPECT_EQ(Kinds(a), "remove:b snapshot send");
  EXPECT_EQ(s.workload_count(), 2u);
  EXPECT_TRUE(s.ready());

  // After the snapshot: del removes; del of an unknown pod is acked quietly.
  ASSERT_TRUE(s.Receive(Req(RequestType::kDel, "a"), {}, false, kT0).ok());
  a = Drain(s);
  EXPECT_EQ(Kinds(a), "remove:a send");
  EXPECT_EQ(Simple(s, RequestType::kDel, "nobody"), "");
  EXPECT_EQ(s.workload_count(), 1u);
}

TEST(ZdsProxySession, RefusalsAreAckedWithTheirReasonAndKeepTheConnection) {
  const int fds_before = OpenFdCount();
  {
    ProxySession s;
    ASSERT_NO_FATAL_FAILURE(Connect(s));
    ASSERT_TRUE(
        s.Receive(Req(RequestType::kAdd, "x", /*info=*/false), OwnNetnsFd(), false, kT0).ok());
    std::vector<ProxyAction> a = Drain(s);
    ASSERT_EQ(Kinds(a), "send");
    EXPECT_EQ(AckText(a[0]), "protocol error: add for x without workload_info");

    ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "x"), {}, false, kT0).ok());
    a = Drain(s);
    ASSERT_EQ(Kinds(a), "send");
    EXPECT_EQ(AckText(a[0]), "protocol error: add for x needs exactly one netns fd, got 0");

    std::vector<UniqueFd> not_netns;
    not_netns.emplace_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "x"), std::move(not_netns), false, kT0).ok());
    a = Drain(s);
    ASSERT_EQ(Kinds(a), "send");
    EXPECT_TRUE(absl::StartsWith(AckText(a[0]), "add for x: ")) << AckText(a[0]);

    ASSERT_TRUE(s.Receive(Req(RequestType::kKeep, "x"), OwnNetnsFd(), false, kT0).ok());
    a = Drain(s);
    ASSERT_EQ(Kinds(a), "send");
    EXPECT_EQ(AckText(a[0]), "protocol error: keep must not carry a file descriptor");

    EXPECT_EQ(Simple(s, RequestType::kSnapshotSent), "");
    EXPECT_EQ(Simple(s, RequestType::kKeep, "x"), "protocol error: keep for x after snapshot");
    EXPECT_EQ(Simple(s, RequestType::kSnapshotSent),
              "protocol error: second snapshot_sent on one connection");
    EXPECT_TRUE(s.connected());
    EXPECT_TRUE(s.ready());
    EXPECT_EQ(s.workload_count(), 0u);
  }
  EXPECT_EQ(OpenFdCount(), fds_before);  // every refused descriptor was closed
}

TEST(ZdsProxySession, TruncatedOrGarbageDatagramsEndTheConnection) {
  const int fds_before = OpenFdCount();
  {
    ProxySession s;
    ASSERT_NO_FATAL_FAILURE(Connect(s));
    ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "a"), OwnNetnsFd(), /*truncated=*/true, kT0).ok());
    std::vector<ProxyAction> a = Drain(s);
    ASSERT_EQ(Kinds(a), "send disconnected");
    EXPECT_EQ(AckText(a[0]), "message larger than 1024 bytes or with too much ancillary data");
    EXPECT_EQ(a[1].status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(s.connected());
    EXPECT_EQ(s.workload_count(), 0u);

    ASSERT_NO_FATAL_FAILURE(Connect(s));
    ASSERT_TRUE(s.Receive("\xff\xff\xff garbage", {}, false, kT0).ok());
    a = Drain(s);
    ASSERT_EQ(Kinds(a), "send disconnected");
    EXPECT_FALSE(AckText(a[0]).empty());
    EXPECT_EQ(a[1].status.message(), AckText(a[0]));
    EXPECT_EQ(s.Receive(Req(RequestType::kSnapshotSent), {}, false, kT0).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.connect_count(), 2u);
  }
  EXPECT_EQ(OpenFdCount(), fds_before);
}

TEST(ZdsProxySession, FailedAddsStayPendingAndAreRetriedAtTheDeadline) {
  ProxySessionOptions o;
  o.retry_interval = absl::Seconds(5);
  ProxySession s(o);
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  EXPECT_EQ(Add(s, "a", absl::UnavailableError("boom")), "add for a failed: boom");
  EXPECT_EQ(Simple(s, RequestType::kSnapshotSent), "");
  EXPECT_EQ(s.pending_count(), 1u);
  EXPECT_EQ(s.workload_count(), 0u);
  EXPECT_FALSE(s.ready());  // a pending pod keeps the proxy unready
  EXPECT_EQ(s.next_deadline(), kT0 + absl::Seconds(5));

  s.Tick(kT0 + absl::Seconds(4));
  EXPECT_EQ(Kinds(Drain(s)), "");
  s.Tick(kT0 + absl::Seconds(5));
  std::vector<ProxyAction> a = Drain(s);
  ASSERT_EQ(Kinds(a), "add:a");
  EXPECT_EQ(a[0].info.name, "name-a");
  EXPECT_FALSE(s.wants_datagram());  // no reading during a retry round
  EXPECT_EQ(s.next_deadline(), absl::InfiniteFuture());
  ASSERT_TRUE(
      s.AddWorkloadDone(a[0].call, absl::UnavailableError("boom"), kT0 + absl::Seconds(6)).ok());
  EXPECT_EQ(Kinds(Drain(s)), "");  // a retry is never acked
  EXPECT_EQ(s.next_deadline(), kT0 + absl::Seconds(11));
  EXPECT_TRUE(s.wants_datagram());

  s.Tick(kT0 + absl::Seconds(11));
  a = Drain(s);
  ASSERT_EQ(Kinds(a), "add:a");
  ASSERT_TRUE(s.AddWorkloadDone(a[0].call, absl::OkStatus(), kT0 + absl::Seconds(11)).ok());
  EXPECT_EQ(Kinds(Drain(s)), "");
  EXPECT_EQ(s.pending_count(), 0u);
  EXPECT_EQ(s.workload_count(), 1u);
  EXPECT_TRUE(s.ready());
  EXPECT_EQ(s.next_deadline(), absl::InfiniteFuture());
}

TEST(ZdsProxySession, DeletingAPendingPodEndsItsRetriesAndWithoutRetriesItIsForgotten) {
  ProxySession s;
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  EXPECT_EQ(Add(s, "a", absl::UnavailableError("boom")), "add for a failed: boom");
  EXPECT_NE(s.next_deadline(), absl::InfiniteFuture());
  EXPECT_EQ(Simple(s, RequestType::kDel, "a"), "");  // no remove: it never started
  EXPECT_EQ(s.pending_count(), 0u);
  EXPECT_EQ(s.next_deadline(), absl::InfiniteFuture());

  ProxySessionOptions o;
  o.retry_interval = absl::ZeroDuration();
  ProxySession no_retries(o);
  ASSERT_NO_FATAL_FAILURE(Connect(no_retries));
  EXPECT_EQ(Add(no_retries, "a", absl::UnavailableError("boom")), "add for a failed: boom");
  EXPECT_EQ(no_retries.pending_count(), 0u);
  EXPECT_EQ(no_retries.next_deadline(), absl::InfiniteFuture());
}

TEST(ZdsProxySession, AddCompletesAsynchronouslyAndTheAckWaitsForIt) {
  ProxySession s;
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "a"), OwnNetnsFd(), false, kT0).ok());
  std::vector<ProxyAction> a = Drain(s);
  ASSERT_EQ(Kinds(a), "add:a");  // no Ack yet
  EXPECT_FALSE(s.wants_datagram());
  EXPECT_EQ(s.Receive(Req(RequestType::kDel, "a"), {}, false, kT0).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Kinds(Drain(s)), "");
  EXPECT_EQ(s.AddWorkloadDone(a[0].call + 1, absl::OkStatus(), kT0).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(s.workload_count(), 0u);
  ASSERT_TRUE(s.AddWorkloadDone(a[0].call, absl::OkStatus(), kT0).ok());
  std::vector<ProxyAction> b = Drain(s);
  ASSERT_EQ(Kinds(b), "send");
  EXPECT_EQ(AckText(b[0]), "");
  EXPECT_EQ(s.workload_count(), 1u);
  EXPECT_EQ(s.AddWorkloadDone(a[0].call, absl::OkStatus(), kT0).code(),
            absl::StatusCode::kNotFound);  // only once

  // The connection ends while an add is outstanding: its result still
  // counts, but nobody is acked, and the next connection waits for it.
  ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "b"), OwnNetnsFd(), false, kT0).ok());
  a = Drain(s);
  ASSERT_EQ(Kinds(a), "add:b");
  s.Closed(absl::UnavailableError("gone"));
  EXPECT_EQ(Kinds(Drain(s)), "disconnected");
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  EXPECT_FALSE(s.wants_datagram());
  ASSERT_TRUE(s.AddWorkloadDone(a[0].call, absl::OkStatus(), kT0).ok());
  EXPECT_EQ(Kinds(Drain(s)), "");
  EXPECT_TRUE(s.wants_datagram());
  EXPECT_EQ(s.workload_count(), 2u);
}

TEST(ZdsProxySession, ReAddedWithAnotherNetnsIsRemovedThenAdded) {
  AMBIENT_REQUIRE_ROOT();
  absl::StatusOr<Netns> other = Netns::CreateUnnamed();
  ASSERT_TRUE(other.ok()) << other.status();
  ProxySession s;
  ASSERT_NO_FATAL_FAILURE(Connect(s));
  EXPECT_EQ(Add(s, "a"), "");
  std::vector<UniqueFd> fds;
  fds.emplace_back(fcntl(other->fd(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(s.Receive(Req(RequestType::kAdd, "a"), std::move(fds), false, kT0).ok());
  std::vector<ProxyAction> a = Drain(s);
  ASSERT_EQ(Kinds(a), "remove:a add:a");
  EXPECT_EQ(a[1].netns.id(), other->id());
  ASSERT_TRUE(s.AddWorkloadDone(a[1].call, absl::OkStatus(), kT0).ok());
  a = Drain(s);
  ASSERT_EQ(Kinds(a), "send");
  EXPECT_EQ(AckText(a[0]), "");
  EXPECT_EQ(s.workload_count(), 1u);
}

}  // namespace
}  // namespace ambient::netns::zds
