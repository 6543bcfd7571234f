// The certificate manager driven by hand: fake time, an in-memory CA
// (test_ca.h) answering its requests, no sockets or threads. Each test
// checks what a node proxy would see: which certificate a pod's holder
// presents, when the CA is asked, and what is retried.
#include "ambient/xds/cert_manager.h"

#include <string>
#include <vector>

#include "ca.pb.h"
#include "gtest/gtest.h"
#include "support/test_pki.h"
#include "test_ca.h"

namespace ambient::xds {
namespace {

namespace ca_wire = ::ambient::wire::istio::ca;
using test_support::kDay;
using test_support::kNow;

identity::SpiffeId SaId(const std::string& sa) {
  return *identity::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/" + sa);
}

class CertManagerTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(kNow);
  test_support::Issued root_ = test_support::Issue(test_support::CaSpec("cluster.local", 1));

  CertManagerOptions Options(size_t concurrency = 8) {
    CertManagerOptions o;
    o.concurrency = concurrency;
    o.seed = 42;
    return o;
  }
  // Answer plays istiod for `f`: the CSR it carries signed for `as` (by
  // default the identity asked for), valid [nb, na].
  std::string Answer(const CertFetch& f, const std::string& as = "",
                     int64_t nb = kNow - 60, int64_t na = kNow + kDay) {
    ca_wire::IstioCertificateRequest req;
    EXPECT_TRUE(req.ParseFromString(f.request));
    std::string leaf = test_ca::SignCsr(req.csr(), as.empty() ? f.id.str() : as, root_, nb, na);
    return test_ca::Response({leaf, root_.CertPem()});
  }
};

TEST_F(CertManagerTest, FirstUserGetsACertificateFromOneCaRequest) {
  CertificateManager m(Options());
  auto holder = m.Acquire(SaId("a"), CertPriority::kWarmup, now_);
  EXPECT_EQ(holder->Get(), nullptr);  // nothing until the CA answers
  EXPECT_LE(m.NextDeadline(), now_);
  std::vector<CertFetch> f = m.StartFetches(now_);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].id, SaId("a"));
  // The request is what istiod expects from a node proxy.
  ca_wire::IstioCertificateRequest req;
  ASSERT_TRUE(req.ParseFromString(f[0].request));
  EXPECT_EQ(req.validity_duration(), 86400);
  EXPECT_EQ(req.metadata().fields().at("ImpersonatedIdentity").string_value(), SaId("a").str());
  EXPECT_TRUE(m.StartFetches(now_).empty());  // one request per identity
  EXPECT_EQ(m.NextDeadline(), absl::InfiniteFuture());

  ASSERT_TRUE(m.OnFetchDone(f[0].fetch, Answer(f[0]), now_).ok());
  ASSERT_NE(holder->Get(), nullptr);
  EXPECT_EQ(holder->Get()->id(), SaId("a"));
  std::vector<CertStatus> st = m.Status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].state, CertStatus::State::kAvailable);
  EXPECT_EQ(st[0].not_after, kNow + kDay);
  EXPECT_EQ(st[0].root_pem, root_.CertPem());
  // A second user shares the same holder and causes no request.
  EXPECT_EQ(m.Acquire(SaId("a"), CertPriority::kRealtime, now_), holder);
  EXPECT_TRUE(m.StartFetches(now_).empty());
}

TEST_F(CertManagerTest, RenewedHalfWayThroughItsValidityAndRotatedInThePlaceHolder) {
  CertificateManager m(Options());
  auto holder = m.Acquire(SaId("a"), CertPriority::kWarmup, now_);
  CertFetch f = m.StartFetches(now_).at(0);
  // Valid for 10 hours from now: renewal due at +5 h.
  ASSERT_TRUE(m.OnFetchDone(f.fetch, Answer(f, "", kNow, kNow + 36000), now_).ok());
  auto first = holder->Get();
  EXPECT_EQ(m.NextDeadline(), now_ + absl::Hours(5));
  EXPECT_TRUE(m.StartFetches(now_ + absl::Hours(5) - absl::Seconds(1)).empty());
  absl::Time later = now_ + absl::Hours(5);
  std::vector<CertFetch> renew = m.StartFetches(later);
  ASSERT_EQ(renew.size(), 1u);
  EXPECT_EQ(holder->Get(), first);  // still presenting the old one meanwhile
  ASSERT_TRUE(m.OnFetchDone(renew[0].fetch, Answer(renew[0], "", kNow + 18000, kNow + 54000),
                            later)
                  .ok());
  ASSERT_NE(holder->Get(), first);
  EXPECT_EQ(holder->Get()->not_before(), kNow + 18000);
}

TEST_F(CertManagerTest, AtMostEightInFlightAndAFreedSlotStartsTheNext) {
  CertificateManager m(Options());
  for (int i = 0; i < 20; ++i) m.Acquire(SaId("sa" + std::to_string(i)), CertPriority::kWarmup, now_);
  std::vector<CertFetch> f = m.StartFetches(now_);
  EXPECT_EQ(f.size(), 8u);
  EXPECT_EQ(m.in_flight(), 8u);
  EXPECT_TRUE(m.StartFetches(now_).empty());
  EXPECT_EQ(m.NextDeadline(), absl::InfiniteFuture());  // every slot busy
  ASSERT_TRUE(m.OnFetchDone(f[0].fetch, Answer(f[0]), now_).ok());
  EXPECT_LE(m.NextDeadline(), now_);
  EXPECT_EQ(m.StartFetches(now_).size(), 1u);
  // A failed call frees its slot too.
  EXPECT_FALSE(m.OnFetchDone(f[1].fetch, absl::UnavailableError("reset"), now_).ok());
  EXPECT_EQ(m.StartFetches(now_).size(), 1u);
  EXPECT_EQ(m.in_flight(), 8u);
}

TEST_F(CertManagerTest, AWaitingConnectionGoesBeforeWarmupAndWarmupBeforeRenewals) {
  CertificateManager m(Options(1));
  // "renew" holds a certificate that is due for renewal now.
  m.Acquire(SaId("renew"), CertPriority::kWarmup, now_);
  CertFetch f = m.StartFetches(now_).at(0);
  ASSERT_TRUE(m.OnFetchDone(f.fetch, Answer(f, "", kNow - 100, kNow + 100), now_).ok());
  absl::Time t = now_ + absl::Seconds(60);
  m.Acquire(SaId("warm1"), CertPriority::kWarmup, t);
  m.Acquire(SaId("warm2"), CertPriority::kWarmup, t);
  m.Acquire(SaId("rt"), CertPriority::kRealtime, t);
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    std::vector<CertFetch> got = m.StartFetches(t);
    ASSERT_EQ(got.size(), 1u);
    order.push_back(got[0].id.str().substr(got[0].id.str().rfind('/') + 1));
    ASSERT_TRUE(m.OnFetchDone(got[0].fetch, Answer(got[0]), t).ok());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"rt", "warm1", "warm2", "renew"}));
  // A queued warmup raised by a waiting connection jumps the queue.
  m.Acquire(SaId("w3"), CertPriority::kWarmup, t);
  m.Acquire(SaId("w4"), CertPriority::kWarmup, t);
  m.Acquire(SaId("w4"), CertPriority::kRealtime, t);
  EXPECT_EQ(m.StartFetches(t).at(0).id, SaId("w4"));
}

TEST_F(CertManagerTest, FailuresBackOffFromOneSecondDoublingToAtMost150WithJitter) {
  CertificateManager m(Options());
  auto holder = m.Acquire(SaId("a"), CertPriority::kWarmup, now_);
  absl::Time t = now_;
  double expect = 1;
  for (int i = 0; i < 12; ++i) {
    std::vector<CertFetch> f = m.StartFetches(t);
    ASSERT_EQ(f.size(), 1u) << "attempt " << i;
    absl::Status s = m.OnFetchDone(f[0].fetch, absl::UnavailableError("istiod down"), t);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    absl::Duration wait = m.NextDeadline() - t;
    EXPECT_GE(wait, absl::Seconds(expect * 0.8)) << "attempt " << i;
    EXPECT_LE(wait, absl::Seconds(expect * 1.2)) << "attempt " << i;
    EXPECT_TRUE(m.StartFetches(t + wait - absl::Milliseconds(1)).empty());
    t += wait;
    expect = std::min(expect * 2, 150.0);
  }
  EXPECT_EQ(holder->Get(), nullptr);
  std::vector<CertStatus> st = m.Status();
  EXPECT_EQ(st[0].state, CertStatus::State::kUnavailable);
  EXPECT_EQ(st[0].failures, 12u);
  EXPECT_NE(st[0].last_error.find("istiod down"), std::string::npos);
  // One success resets the backoff: the next failure waits ~1 s again.
  CertFetch f = m.StartFetches(t).at(0);
  int64_t t_unix = absl::ToUnixSeconds(t);
  ASSERT_TRUE(m.OnFetchDone(f.fetch, Answer(f, "", t_unix - 10, t_unix + 20), t).ok());
  EXPECT_NE(holder->Get(), nullptr);
  absl::Time renew = m.NextDeadline();
  f = m.StartFetches(renew).at(0);
  m.OnFetchDone(f.fetch, absl::UnavailableError("again"), renew).IgnoreError();
  EXPECT_LE(m.NextDeadline() - renew, absl::Seconds(1.2));
}

TEST_F(CertManagerTest, AFailedRenewalKeepsTheValidCertificateUntilItExpires) {
  CertificateManager m(Options());
  auto holder = m.Acquire(SaId("a"), CertPriority::kWarmup, now_);
  CertFetch f = m.StartFetches(now_).at(0);
  // Valid until now + 100 s; renewal due at +50 s.
  ASSERT_TRUE(m.OnFetchDone(f.fetch, Answer(f, "", kNow, kNow + 100), now_).ok());
  auto cert = holder->Get();
  absl::Time t = now_ + absl::Seconds(50);
  for (int i = 0; i < 6; ++i) {
    std::vector<CertFetch> r = m.StartFetches(t);
    ASSERT_EQ(r.size(), 1u) << i;
    m.OnFetchDone(r[0].fetch, absl::UnavailableError("down"), t).IgnoreError();
    if (t < absl::FromUnixSeconds(kNow + 100)) {
      EXPECT_EQ(holder->Get(), cert) << "still valid at attempt " << i;
      // The retry never comes later than the expiry.
      EXPECT_LE(m.NextDeadline(), absl::FromUnixSeconds(kNow + 100));
      EXPECT_EQ(m.Status()[0].state, CertStatus::State::kAvailable);
    }
    t = m.NextDeadline();
  }
  // The last retry is due at the expiry itself; failing then (notAfter has
  // passed) takes the certificate out of the holder.
  EXPECT_EQ(t, absl::FromUnixSeconds(kNow + 100));
  // Failing at exactly notAfter keeps it (still valid that second) and does
  // not retry in a loop.
  std::vector<CertFetch> r = m.StartFetches(t);
  ASSERT_EQ(r.size(), 1u);
  m.OnFetchDone(r[0].fetch, absl::UnavailableError("down"), t).IgnoreError();
  EXPECT_EQ(holder->Get(), cert);
  EXPECT_GT(m.NextDeadline(), t);
  t = m.NextDeadline();
  r = m.StartFetches(t);
  ASSERT_EQ(r.size(), 1u);
  m.OnFetchDone(r[0].fetch, absl::UnavailableError("down"), t).IgnoreError();
  EXPECT_EQ(holder->Get(), nullptr);
  EXPECT_EQ(m.Status()[0].state, CertStatus::State::kUnavailable);
}

TEST_F(CertManagerTest, AnAnswerForAnotherIdentityOrUntrustedIsNotUsed) {
  CertificateManager m(Options());
  auto holder = m.Acquire(SaId("a"), CertPriority::kRealtime, now_);
  CertFetch f = m.StartFetches(now_).at(0);
  absl::Status s = m.OnFetchDone(f.fetch, Answer(f, SaId("mallory").str()), now_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_EQ(holder->Get(), nullptr);
  // Retried after the backoff; garbage bytes are refused the same way.
  absl::Time t = m.NextDeadline();
  EXPECT_GT(t, now_);
  f = m.StartFetches(t).at(0);
  s = m.OnFetchDone(f.fetch, std::string("\xff\x01garbage", 9), t);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(holder->Get(), nullptr);
  EXPECT_EQ(m.Status()[0].failures, 2u);
  EXPECT_EQ(m.stats().fetches_failed, 2u);
  // An unknown fetch number changes nothing.
  EXPECT_EQ(m.OnFetchDone(12345, std::string(), t).code(), absl::StatusCode::kNotFound);
}

TEST_F(CertManagerTest, TheLastReleaseDropsTheIdentityAndItsAnswerInFlight) {
  CertificateManager m(Options(1));
  auto holder = m.Acquire(SaId("a"), CertPriority::kWarmup, now_);
  m.Acquire(SaId("a"), CertPriority::kWarmup, now_);
  m.Acquire(SaId("b"), CertPriority::kWarmup, now_);
  CertFetch f = m.StartFetches(now_).at(0);
  ASSERT_EQ(f.id, SaId("a"));
  EXPECT_TRUE(m.Release(SaId("a")));
  EXPECT_EQ(m.Status().size(), 2u);  // one user left
  EXPECT_TRUE(m.Release(SaId("a")));
  EXPECT_FALSE(m.Release(SaId("a")));
  EXPECT_EQ(m.Status().size(), 1u);
  // Its answer arrives afterwards: dropped, the slot freed for "b".
  EXPECT_EQ(m.OnFetchDone(f.fetch, Answer(f), now_).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(holder->Get(), nullptr);
  EXPECT_EQ(m.stats().dropped_results, 1u);
  std::vector<CertFetch> next = m.StartFetches(now_);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, SaId("b"));
  // "b" released while only queued: nothing is asked for it any more.
  CertificateManager m2(Options());
  m2.Acquire(SaId("c"), CertPriority::kWarmup, now_);
  m2.Release(SaId("c"));
  EXPECT_TRUE(m2.StartFetches(now_).empty());
  EXPECT_EQ(m2.NextDeadline(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace ambient::xds
