// Pool driven as a host would, without sockets or threads: connections are
// numbers, time is explicit.
#include "ambient/hbone/pool.h"
#include "support/spiffe_ids.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace ambient::hbone {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Kind = Pool::Acquired::Kind;
using test_support::Id;

const char kUs[] = "spiffe://cluster.local/ns/client/sa/sleep";
const char kServer[] = "spiffe://cluster.local/ns/server/sa/echo";
const char kOtherServer[] = "spiffe://cluster.local/ns/server/sa/other";

const absl::Time kPoolT0 = absl::FromUnixSeconds(1000);

SocketAddress Via(const char* text) { return *SocketAddress::Parse(text); }
IpAddress Src(const char* text) { return *IpAddress::Parse(text); }

PoolKey Key(const char* via = "198.18.0.7:15008", const char* src_ip = "198.18.0.5") {
  return PoolKey::Make(Id(kUs), {Id(kServer)}, Via(via), Src(src_ip));
}

std::vector<Pool::WaiterId> Waiters(const Pool::Served& s) {
  std::vector<Pool::WaiterId> out;
  for (const Pool::Grant& g : s.grants) out.push_back(g.waiter);
  return out;
}

TEST(PoolTest, FirstRequestDialsAndLaterOnesWaitForThatDial) {
  Pool pool;
  Pool::Acquired a = pool.Acquire(Key(), kPoolT0);
  EXPECT_EQ(a.kind, Kind::kDial);
  EXPECT_NE(a.waiter, 0u);
  Pool::Acquired b = pool.Acquire(Key(), kPoolT0);
  Pool::Acquired c = pool.Acquire(Key(), kPoolT0);
  EXPECT_EQ(b.kind, Kind::kWait);
  EXPECT_EQ(c.kind, Kind::kWait);
  EXPECT_TRUE(pool.dialing(Key()));
  EXPECT_EQ(pool.waiters(), 3u);
  // Another key dials on its own.
  EXPECT_EQ(pool.Acquire(Key("198.18.0.8:15008"), kPoolT0).kind, Kind::kDial);
}

TEST(PoolTest, WaitersAreServedInArrivalOrderWhenTheDialCompletes) {
  Pool pool;
  Pool::WaiterId w1 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::WaiterId w2 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::WaiterId w3 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::Served s = pool.OnDialDone(Key(), 7, 100, kPoolT0 + absl::Seconds(1));
  EXPECT_THAT(Waiters(s), ElementsAre(w1, w2, w3));
  for (const Pool::Grant& g : s.grants) EXPECT_EQ(g.conn, 7u);
  EXPECT_THAT(s.failed, IsEmpty());
  EXPECT_FALSE(s.dial);
  EXPECT_EQ(pool.streams(7), 3u);
  EXPECT_EQ(pool.waiters(), 0u);
  // The next request uses the pooled connection: no dial.
  Pool::Acquired next = pool.Acquire(Key(), kPoolT0 + absl::Seconds(2));
  EXPECT_EQ(next.kind, Kind::kUse);
  EXPECT_EQ(next.conn, 7u);
  EXPECT_EQ(pool.streams(7), 4u);
}

TEST(PoolTest, DialFailureFailsEveryWaiterAndTheNextRequestDialsAgain) {
  Pool pool;
  Pool::WaiterId w1 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::WaiterId w2 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::Acquired other = pool.Acquire(Key("198.18.0.8:15008"), kPoolT0);
  Pool::Served s = pool.OnDialFailed(Key());
  EXPECT_THAT(s.failed, ElementsAre(w1, w2));
  EXPECT_THAT(s.grants, IsEmpty());
  EXPECT_FALSE(s.dial);
  EXPECT_FALSE(pool.dialing(Key()));
  EXPECT_EQ(pool.waiters(), 1u);  // the other key's waiter is untouched
  EXPECT_TRUE(pool.dialing(Key("198.18.0.8:15008")));
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).kind, Kind::kDial);
  (void)other;
}

TEST(PoolTest, StreamLimitSpillsToASecondConnection) {
  Pool pool;
  std::vector<Pool::WaiterId> ws;
  for (int i = 0; i < 5; ++i) ws.push_back(pool.Acquire(Key(), kPoolT0).waiter);
  // The server allows 2 streams per connection: 2 served, the rest need
  // another connection, asked for at once.
  Pool::Served s = pool.OnDialDone(Key(), 1, 2, kPoolT0);
  EXPECT_THAT(Waiters(s), ElementsAre(ws[0], ws[1]));
  EXPECT_TRUE(s.dial);
  EXPECT_TRUE(pool.dialing(Key()));
  // A request meanwhile waits behind them.
  Pool::Acquired late = pool.Acquire(Key(), kPoolT0);
  EXPECT_EQ(late.kind, Kind::kWait);
  s = pool.OnDialDone(Key(), 2, 2, kPoolT0);
  EXPECT_THAT(Waiters(s), ElementsAre(ws[2], ws[3]));
  for (const Pool::Grant& g : s.grants) EXPECT_EQ(g.conn, 2u);
  EXPECT_TRUE(s.dial);  // ws[4] and `late` still wait
  s = pool.OnDialDone(Key(), 3, 2, kPoolT0);
  EXPECT_THAT(Waiters(s), ElementsAre(ws[4], late.waiter));
  EXPECT_FALSE(s.dial);
  EXPECT_EQ(pool.connections(), 3u);
  // A freed place is used before a new dial; the first connection first.
  pool.StreamClosed(2, kPoolT0);
  pool.StreamClosed(1, kPoolT0);
  Pool::Acquired a = pool.Acquire(Key(), kPoolT0);
  EXPECT_EQ(a.kind, Kind::kUse);
  EXPECT_EQ(a.conn, 1u);
}

TEST(PoolTest, OptionCapsStreamsBelowTheConnectionsLimit) {
  PoolOptions o;
  o.max_streams_per_connection = 1;
  Pool pool(o);
  Pool::WaiterId w1 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::Served s = pool.OnDialDone(Key(), 1, 100, kPoolT0);
  EXPECT_THAT(Waiters(s), ElementsAre(w1));
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).kind, Kind::kDial);
}

TEST(PoolTest, SetStreamLimitApplies) {
  Pool pool;
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 100, kPoolT0);
  pool.SetStreamLimit(1, 1);  // the peer lowered it
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).kind, Kind::kDial);
}

TEST(PoolTest, KeysSeparateIdentitiesAddressesAndSourceIps) {
  Pool pool;
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 100, kPoolT0);
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).kind, Kind::kUse);
  // The order of expected identities does not matter.
  EXPECT_EQ(pool.Acquire(PoolKey::Make(Id(kUs), {Id(kServer), Id(kOtherServer)}, Via("198.18.0.7:15008"),
                                       Src("198.18.0.5")),
                         kPoolT0)
                .kind,
            Kind::kDial);
  EXPECT_EQ(pool.Acquire(PoolKey::Make(Id(kUs), {Id(kOtherServer), Id(kServer)}, Via("198.18.0.7:15008"),
                                       Src("198.18.0.5")),
                         kPoolT0)
                .kind,
            Kind::kWait);
  EXPECT_EQ(pool.Acquire(Key("198.18.0.7:15008", "198.18.0.6"), kPoolT0).kind, Kind::kDial);
  EXPECT_EQ(pool.Acquire(Key("198.18.0.9:15008"), kPoolT0).kind, Kind::kDial);
  EXPECT_EQ(pool.Acquire(PoolKey::Make(Id("spiffe://cluster.local/ns/client/sa/b"), {Id(kServer)},
                                       Via("198.18.0.7:15008"), Src("198.18.0.5")),
                         kPoolT0)
                .kind,
            Kind::kDial);
  EXPECT_EQ(
      pool.Acquire(PoolKey::Make(Id(kUs), {Id(kOtherServer)}, Via("198.18.0.7:15008"), Src("198.18.0.5")),
                   kPoolT0)
          .kind,
      Kind::kDial);
}

TEST(PoolTest, BrokenConnectionIsNeverReused) {
  Pool pool;
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 100, kPoolT0);
  pool.OnConnectionBroken(1);  // GOAWAY
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).kind, Kind::kDial);
  // Its stream ending does not bring it back.
  pool.StreamClosed(1, kPoolT0);
  EXPECT_THAT(pool.Connections(Key()), IsEmpty());
  Pool::Served s = pool.OnDialDone(Key(), 2, 100, kPoolT0);
  ASSERT_EQ(s.grants.size(), 1u);
  EXPECT_EQ(s.grants[0].conn, 2u);
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).conn, 2u);
  EXPECT_THAT(pool.Connections(Key()), ElementsAre(2u));
  EXPECT_EQ(pool.connections(), 2u);  // still known until it closes
  pool.OnConnectionClosed(1, kPoolT0);
  EXPECT_EQ(pool.connections(), 1u);
  pool.StreamClosed(1, kPoolT0);  // late reports about a gone connection are ignored
  EXPECT_EQ(pool.streams(2), 2u);
}

TEST(PoolTest, ClosedConnectionIsForgottenAndWaitersMoveOn) {
  Pool pool;
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 1, kPoolT0);
  Pool::Acquired w = pool.Acquire(Key(), kPoolT0);  // conn 1 is full
  ASSERT_EQ(w.kind, Kind::kDial);
  Pool::Served s = pool.OnConnectionClosed(1, kPoolT0);
  EXPECT_THAT(s.grants, IsEmpty());
  EXPECT_FALSE(s.dial);  // the dial is already in flight
  s = pool.OnDialDone(Key(), 2, 1, kPoolT0);
  EXPECT_THAT(Waiters(s), ElementsAre(w.waiter));
  EXPECT_EQ(pool.connections(), 1u);
}

TEST(PoolTest, CancelledWaiterIsNotServedAndTheDialStillPoolsItsConnection) {
  Pool pool;
  Pool::WaiterId w1 = pool.Acquire(Key(), kPoolT0).waiter;
  Pool::WaiterId w2 = pool.Acquire(Key(), kPoolT0).waiter;
  pool.Cancel(w1);
  pool.Cancel(w1);  // twice: ignored
  pool.Cancel(999);
  EXPECT_EQ(pool.waiters(), 1u);
  Pool::Served s = pool.OnDialDone(Key(), 1, 100, kPoolT0);
  EXPECT_THAT(Waiters(s), ElementsAre(w2));
  pool.Cancel(w2);  // already served: ignored
  EXPECT_EQ(pool.streams(1), 1u);
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0).kind, Kind::kUse);
}

TEST(PoolTest, IdleConnectionIsClosedAtItsDeadline) {
  PoolOptions o;
  o.idle_timeout = absl::Minutes(5);
  Pool pool(o);
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 100, kPoolT0);
  EXPECT_EQ(pool.NextDeadline(), absl::InfiniteFuture());  // a stream is open
  pool.Acquire(Key(), kPoolT0);
  pool.StreamClosed(1, kPoolT0 + absl::Seconds(10));
  EXPECT_EQ(pool.NextDeadline(), absl::InfiniteFuture());  // one still open
  pool.StreamClosed(1, kPoolT0 + absl::Seconds(20));
  absl::Time deadline = kPoolT0 + absl::Seconds(20) + absl::Minutes(5);
  EXPECT_EQ(pool.NextDeadline(), deadline);
  EXPECT_THAT(pool.OnTimer(deadline - absl::Milliseconds(1)), IsEmpty());
  EXPECT_THAT(pool.OnTimer(deadline), ElementsAre(1u));
  EXPECT_EQ(pool.NextDeadline(), absl::InfiniteFuture());
  // No longer handed out, even before it closes.
  EXPECT_EQ(pool.Acquire(Key(), deadline).kind, Kind::kDial);
}

TEST(PoolTest, ANewStreamCancelsTheIdleDeadline) {
  Pool pool;
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 100, kPoolT0);
  pool.StreamClosed(1, kPoolT0);
  EXPECT_NE(pool.NextDeadline(), absl::InfiniteFuture());
  EXPECT_EQ(pool.Acquire(Key(), kPoolT0 + absl::Minutes(4)).kind, Kind::kUse);
  EXPECT_EQ(pool.NextDeadline(), absl::InfiniteFuture());
  EXPECT_THAT(pool.OnTimer(kPoolT0 + absl::Hours(1)), IsEmpty());
  pool.StreamClosed(1, kPoolT0 + absl::Hours(1));
  EXPECT_EQ(pool.NextDeadline(), kPoolT0 + absl::Hours(1) + absl::Minutes(5));
}

TEST(PoolTest, AConnectionNobodyTookIsIdleFromTheStart) {
  Pool pool;
  Pool::WaiterId w = pool.Acquire(Key(), kPoolT0).waiter;
  pool.Cancel(w);
  Pool::Served s = pool.OnDialDone(Key(), 1, 100, kPoolT0);
  EXPECT_THAT(s.grants, IsEmpty());
  EXPECT_EQ(pool.NextDeadline(), kPoolT0 + absl::Minutes(5));
}

TEST(PoolTest, IdleDeadlinesOfSeveralConnectionsComeInOrder) {
  Pool pool;
  pool.Acquire(Key("198.18.0.7:15008"), kPoolT0);
  pool.OnDialDone(Key("198.18.0.7:15008"), 1, 100, kPoolT0);
  pool.Acquire(Key("198.18.0.8:15008"), kPoolT0);
  pool.OnDialDone(Key("198.18.0.8:15008"), 2, 100, kPoolT0);
  pool.StreamClosed(2, kPoolT0 + absl::Seconds(1));
  pool.StreamClosed(1, kPoolT0 + absl::Seconds(2));
  EXPECT_EQ(pool.NextDeadline(), kPoolT0 + absl::Seconds(1) + absl::Minutes(5));
  EXPECT_THAT(pool.OnTimer(kPoolT0 + absl::Seconds(1) + absl::Minutes(5)), ElementsAre(2u));
  EXPECT_EQ(pool.NextDeadline(), kPoolT0 + absl::Seconds(2) + absl::Minutes(5));
  EXPECT_THAT(pool.OnTimer(kPoolT0 + absl::Hours(1)), ElementsAre(1u));
}

TEST(PoolTest, ABrokenConnectionLeftOpenIsClosedWhenIdle) {
  Pool pool;
  pool.Acquire(Key(), kPoolT0);
  pool.OnDialDone(Key(), 1, 100, kPoolT0);
  pool.OnConnectionBroken(1);
  EXPECT_EQ(pool.NextDeadline(), absl::InfiniteFuture());  // its stream is open
  pool.StreamClosed(1, kPoolT0 + absl::Seconds(1));
  EXPECT_THAT(pool.OnTimer(kPoolT0 + absl::Seconds(1) + absl::Minutes(5)), ElementsAre(1u));
  pool.OnConnectionClosed(1, kPoolT0 + absl::Minutes(6));
  EXPECT_EQ(pool.connections(), 0u);
  EXPECT_EQ(pool.NextDeadline(), absl::InfiniteFuture());
}

TEST(PoolTest, UnknownConnectionsAreIgnored) {
  Pool pool;
  pool.StreamClosed(42, kPoolT0);
  pool.OnConnectionBroken(42);
  pool.SetStreamLimit(42, 3);
  Pool::Served s = pool.OnConnectionClosed(42, kPoolT0);
  EXPECT_THAT(s.grants, IsEmpty());
  EXPECT_FALSE(s.dial);
  s = pool.OnDialFailed(Key());  // no dial for this key
  EXPECT_THAT(s.failed, IsEmpty());
  EXPECT_EQ(pool.connections(), 0u);
}

}  // namespace
}  // namespace ambient::hbone
