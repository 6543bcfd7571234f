// X509-SVID verification: every rule, with certificates made in the test.
#include "ambient/identity/svid_verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "ambient/base/status.h"
#include "ambient/base/tls.h"
#include "support/test_pki.h"

namespace ambient::identity::testing {
namespace {

using ::ambient::test_support::CaSpec;
using ::ambient::test_support::CertSpec;
using ::ambient::test_support::Issue;
using ::ambient::test_support::Issued;
using ::ambient::test_support::KeyType;
using ::ambient::test_support::LeafSpec;
using ::ambient::test_support::MakeKey;
using ::ambient::test_support::Tampered;
using ::ambient::test_support::kDay;
using ::ambient::test_support::kNow;

using ::testing::HasSubstr;

constexpr char kTd[] = "example.org";
constexpr char kId[] = "spiffe://example.org/ns/default/sa/client";

std::shared_ptr<const TrustBundle> BundleOf(const std::string& td, std::vector<X509*> cas) {
  auto b = TrustBundle::FromAuthorities(*TrustDomain::Parse(td), cas);
  EXPECT_TRUE(b.ok()) << b.status();
  return *b;
}

class SvidVerifierTest : public ::testing::Test {
 protected:
  SvidVerifierTest() : ca_(Issue(CaSpec(kTd))), other_ca_(Issue(CaSpec("other.org", 2))) {
    source_ = std::make_shared<TrustBundleSource>(*TrustBundleSet::Create(
        {BundleOf(kTd, {ca_.cert.get()}), BundleOf("other.org", {other_ca_.cert.get()})}));
  }

  absl::StatusOr<SpiffeId> Verify(std::vector<X509*> chain,
                                  VerifyPolicy policy = VerifyPolicy::AnyTrustDomain(),
                                  int64_t now = kNow) {
    auto v = SvidVerifier::Create(source_, std::move(policy), [now] { return now; });
    EXPECT_TRUE(v.ok()) << v.status();
    return (*v)->Verify(chain);
  }

  void ExpectRejected(const absl::StatusOr<SpiffeId>& got, SvidError want,
                      const std::string& message_part) {
    ASSERT_FALSE(got.ok()) << "accepted " << got->str();
    EXPECT_EQ(DetailOf(got.status()), static_cast<int>(want)) << got.status();
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(message_part));
  }

  Issued ca_;
  Issued other_ca_;
  std::shared_ptr<TrustBundleSource> source_;
};

TEST_F(SvidVerifierTest, AcceptsLeafSignedByTrustDomainCa) {
  Issued leaf = Issue(LeafSpec(kId), &ca_);
  auto id = Verify({leaf.cert.get()});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->str(), kId);
}

TEST_F(SvidVerifierTest, AcceptsGoodIntermediateChain) {
  CertSpec inter_spec = CaSpec(kTd, 7);
  inter_spec.common_name = "intermediate";
  Issued inter = Issue(inter_spec, &ca_);
  Issued leaf = Issue(LeafSpec(kId), &inter);
  auto id = Verify({leaf.cert.get(), inter.cert.get()});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->str(), kId);
}

TEST_F(SvidVerifierTest, AcceptsRsaLeafAndDnsSansNextToTheUri) {
  CertSpec spec = LeafSpec(kId);
  spec.dns_sans = {"client.default.svc"};
  Issued leaf = Issue(spec, &ca_, MakeKey(KeyType::kRsa2048));
  EXPECT_TRUE(Verify({leaf.cert.get()}).ok());
}

TEST_F(SvidVerifierTest, RejectsMissingIntermediate) {
  CertSpec inter_spec = CaSpec(kTd, 7);
  inter_spec.common_name = "intermediate";
  Issued inter = Issue(inter_spec, &ca_);
  Issued leaf = Issue(LeafSpec(kId), &inter);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kUntrusted, "no chain to an authority");
}

TEST_F(SvidVerifierTest, RejectsEmptyChain) {
  ExpectRejected(Verify({}), SvidError::kEmptyChain, "no certificate");
}

TEST_F(SvidVerifierTest, RejectsLeafWithoutSan) {
  CertSpec spec = LeafSpec(kId);
  spec.uri_sans.clear();
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kNoUriSan, "no subjectAltName");
}

TEST_F(SvidVerifierTest, RejectsLeafWithOnlyDnsSan) {
  CertSpec spec = LeafSpec(kId);
  spec.uri_sans.clear();
  spec.dns_sans = {"example.org"};
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kNoUriSan, "no URI SAN");
}

TEST_F(SvidVerifierTest, RejectsTwoUriSans) {
  CertSpec spec = LeafSpec(kId);
  spec.uri_sans.push_back("spiffe://example.org/ns/default/sa/other");
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kMultipleUriSans, "2 URI SANs");
}

TEST_F(SvidVerifierTest, RejectsNonSpiffeUri) {
  Issued leaf = Issue(LeafSpec("https://example.org/ns/default/sa/client"), &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kInvalidSpiffeId, "scheme");
}

TEST_F(SvidVerifierTest, RejectsLeafIdWithoutPath) {
  Issued leaf = Issue(LeafSpec("spiffe://example.org"), &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kLeafIdWithoutPath, "no path");
}

TEST_F(SvidVerifierTest, RejectsCaLeaf) {
  CertSpec spec = LeafSpec(kId);
  spec.is_ca = true;
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kLeafIsCa, "CA flag");
}

TEST_F(SvidVerifierTest, RejectsKeyCertSignLeaf) {
  CertSpec spec = LeafSpec(kId);
  spec.key_usage = "critical,digitalSignature,keyCertSign";
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kLeafKeyCertSign, "keyCertSign");
}

TEST_F(SvidVerifierTest, RejectsCrlSignLeaf) {
  CertSpec spec = LeafSpec(kId);
  spec.key_usage = "critical,digitalSignature,cRLSign";
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kLeafCrlSign, "cRLSign");
}

TEST_F(SvidVerifierTest, RejectsMissingDigitalSignature) {
  CertSpec spec = LeafSpec(kId);
  spec.key_usage = "critical,keyEncipherment";
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kNoDigitalSignature, "digitalSignature");
}

TEST_F(SvidVerifierTest, RejectsMissingKeyUsage) {
  CertSpec spec = LeafSpec(kId);
  spec.key_usage.clear();
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kNoKeyUsage, "no keyUsage");
}

TEST_F(SvidVerifierTest, RejectsExpiredLeaf) {
  CertSpec spec = LeafSpec(kId);
  spec.not_before = kNow - 3 * kDay;
  spec.not_after = kNow - 1;
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kExpired, "depth 0");
  // The injected clock decides: two days earlier the same chain is fine.
  EXPECT_TRUE(Verify({leaf.cert.get()}, {}, kNow - 2 * kDay).ok());
}

// RFC 5280 4.1.2.5: the validity period includes notAfter itself (issue 17;
// BoringSSL alone rejects that second, go-spiffe and Go accept it), and
// notBefore itself.
TEST_F(SvidVerifierTest, NotAfterAndNotBeforeSecondsAreInsideTheValidity) {
  CertSpec spec = LeafSpec(kId);
  spec.not_before = kNow - kDay;
  spec.not_after = kNow;
  Issued leaf = Issue(spec, &ca_);
  EXPECT_TRUE(Verify({leaf.cert.get()}, {}, kNow).ok());
  ExpectRejected(Verify({leaf.cert.get()}, {}, kNow + 1), SvidError::kExpired, "depth 0");
  EXPECT_TRUE(Verify({leaf.cert.get()}, {}, kNow - kDay).ok());
  ExpectRejected(Verify({leaf.cert.get()}, {}, kNow - kDay - 1), SvidError::kNotYetValid,
                 "not yet valid");
}

TEST_F(SvidVerifierTest, IntermediateEndingNowIsStillValid) {
  CertSpec inter_spec = CaSpec(kTd, 7);
  inter_spec.not_before = kNow - 10 * kDay;
  inter_spec.not_after = kNow;
  Issued inter = Issue(inter_spec, &ca_);
  Issued leaf = Issue(LeafSpec(kId), &inter);
  EXPECT_TRUE(Verify({leaf.cert.get(), inter.cert.get()}, {}, kNow).ok());
  ExpectRejected(Verify({leaf.cert.get(), inter.cert.get()}, {}, kNow + 1), SvidError::kExpired,
                 "depth 1");
}

TEST_F(SvidVerifierTest, RejectsNotYetValidLeaf) {
  CertSpec spec = LeafSpec(kId);
  spec.not_before = kNow + 60;
  spec.not_after = kNow + 3 * kDay;
  Issued leaf = Issue(spec, &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kNotYetValid, "not yet valid");
  EXPECT_TRUE(Verify({leaf.cert.get()}, {}, kNow + 61).ok());
}

TEST_F(SvidVerifierTest, RejectsExpiredIntermediateWithItsDepth) {
  CertSpec inter_spec = CaSpec(kTd, 7);
  inter_spec.not_before = kNow - 10 * kDay;
  inter_spec.not_after = kNow - kDay;
  Issued inter = Issue(inter_spec, &ca_);
  Issued leaf = Issue(LeafSpec(kId), &inter);
  ExpectRejected(Verify({leaf.cert.get(), inter.cert.get()}), SvidError::kExpired, "depth 1");
}

TEST_F(SvidVerifierTest, RejectsUntrustedRoot) {
  Issued rogue = Issue(CaSpec(kTd, 99));
  Issued leaf = Issue(LeafSpec(kId), &rogue);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kUntrusted, "example.org");
  // Presenting the rogue root in the chain does not help.
  ExpectRejected(Verify({leaf.cert.get(), rogue.cert.get()}), SvidError::kUntrusted, "");
}

TEST_F(SvidVerifierTest, BundleOfAnotherTrustDomainDoesNotVouch) {
  // A leaf claiming example.org, signed by other.org's CA (which we trust
  // for other.org only): rejected, trust domains are isolated.
  Issued leaf = Issue(LeafSpec(kId), &other_ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kUntrusted, "example.org");
  // The same CA signing an other.org ID is fine.
  Issued good = Issue(LeafSpec("spiffe://other.org/ns/x/sa/y"), &other_ca_);
  EXPECT_TRUE(Verify({good.cert.get()}).ok());
}

TEST_F(SvidVerifierTest, RejectsTrustDomainWithoutBundle) {
  Issued leaf = Issue(LeafSpec("spiffe://unknown.org/ns/a/sa/b"), &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kNoBundle, "unknown.org");
}

TEST_F(SvidVerifierTest, RejectsTamperedSignature) {
  Issued leaf = Issue(LeafSpec(kId), &ca_);
  tls::UniquePtr<X509> bad = Tampered(leaf.cert.get());
  ExpectRejected(Verify({bad.get()}), SvidError::kBadSignature, "signature");
}

TEST_F(SvidVerifierTest, EmptyBundleRejectsEverythingOfItsTrustDomain) {
  source_->Update(BundleOf(kTd, {}));
  Issued leaf = Issue(LeafSpec(kId), &ca_);
  ExpectRejected(Verify({leaf.cert.get()}), SvidError::kUntrusted, "");
}

TEST_F(SvidVerifierTest, ClientPresetNeedsAnExpectedIdentity) {
  Issued leaf = Issue(LeafSpec(kId), &ca_);
  auto ok = Verify({leaf.cert.get()},
                   VerifyPolicy::ExpectIdentities({*SpiffeId::Parse("spiffe://example.org/a"),
                                                   *SpiffeId::Parse(kId)}));
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto bad = Verify({leaf.cert.get()},
                    VerifyPolicy::ExpectIdentities({*SpiffeId::Parse("spiffe://example.org/a")}));
  ExpectRejected(bad, SvidError::kUnexpectedIdentity, "not one of the expected");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SvidVerifierTest, ServerPresetNeedsOurTrustDomain) {
  Issued ours = Issue(LeafSpec(kId), &ca_);
  Issued theirs = Issue(LeafSpec("spiffe://other.org/ns/x/sa/y"), &other_ca_);
  auto policy = VerifyPolicy::SameTrustDomain(*TrustDomain::Parse(kTd));
  EXPECT_TRUE(Verify({ours.cert.get()}, policy).ok());
  auto bad = Verify({theirs.cert.get()}, policy);
  ExpectRejected(bad, SvidError::kTrustDomainNotAllowed, "other.org");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SvidVerifierTest, BundleSwapIsSeenByTheNextVerification) {
  Issued leaf = Issue(LeafSpec(kId), &ca_);
  auto v = *SvidVerifier::Create(source_, {}, [] { return kNow; });
  ASSERT_TRUE(v->Verify({leaf.cert.get()}).ok());
  Issued new_ca = Issue(CaSpec(kTd, 50));
  source_->Update(BundleOf(kTd, {new_ca.cert.get()}));
  EXPECT_EQ(DetailOf(v->Verify({leaf.cert.get()}).status()),
            static_cast<int>(SvidError::kUntrusted));
  Issued new_leaf = Issue(LeafSpec(kId), &new_ca);
  EXPECT_TRUE(v->Verify({new_leaf.cert.get()}).ok());
}

TEST_F(SvidVerifierTest, ConcurrentVerificationWhileBundlesSwap) {
  // Readers verify while a writer keeps swapping snapshots: each reader sees
  // either the old or the new bundle, never a torn one (and ASan/TSan stay
  // quiet).
  Issued leaf = Issue(LeafSpec(kId), &ca_);
  Issued new_ca = Issue(CaSpec(kTd, 60));
  auto v = *SvidVerifier::Create(source_, {}, [] { return kNow; });
  auto old_set = source_->Get();
  auto new_set = old_set->With(BundleOf(kTd, {new_ca.cert.get()}));
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0};
  std::atomic<int> odd{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto got = v->Verify({leaf.cert.get()});
        if (got.ok()) {
          ++accepted;
        } else if (DetailOf(got.status()) != static_cast<int>(SvidError::kUntrusted)) {
          ++odd;
        }
      }
    });
  }
  for (int i = 0; i < 200; ++i) source_->Set(i % 2 == 0 ? new_set : old_set);
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(odd.load(), 0);
  source_->Set(old_set);
  EXPECT_TRUE(v->Verify({leaf.cert.get()}).ok());
}

TEST_F(SvidVerifierTest, VerifyPemAndBuffers) {
  CertSpec inter_spec = CaSpec(kTd, 7);
  Issued inter = Issue(inter_spec, &ca_);
  Issued leaf = Issue(LeafSpec(kId), &inter);
  auto v = *SvidVerifier::Create(source_, {}, [] { return kNow; });
  auto id = v->VerifyPem(leaf.CertPem() + inter.CertPem());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->str(), kId);
  EXPECT_EQ(DetailOf(v->VerifyPem("").status()), static_cast<int>(SvidError::kEmptyChain));
  EXPECT_EQ(DetailOf(v->VerifyPem("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END "
                                  "CERTIFICATE-----\n")
                         .status()),
            static_cast<int>(SvidError::kMalformedCertificate));
}

}  // namespace
}  // namespace ambient::identity::testing
