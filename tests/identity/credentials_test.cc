// Credentials from PEM: key types, mismatches, SPIFFE ID, validity and the
// refresh point.
#include "ambient/identity/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

using ::testing::HasSubstr;

constexpr char kAppId[] = "spiffe://cluster.local/ns/default/sa/app";

class CredentialsTest : public ::testing::Test {
 protected:
  CredentialsTest() : ca_(Issue(CaSpec("cluster.local"))) {}
  Issued ca_;
};

TEST_F(CredentialsTest, LoadsP256ChainWithValidityAndRefreshPoint) {
  CertSpec spec = LeafSpec(kAppId);
  spec.not_before = 1700000000;
  spec.not_after = 1700000000 + 24 * 3600;
  Issued inter = Issue(CaSpec("cluster.local", 9), &ca_);
  Issued leaf = Issue(spec, &inter);
  auto c = Credentials::FromPem(leaf.CertPem() + inter.CertPem(), leaf.KeyPem());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->id().str(), kAppId);
  EXPECT_EQ((*c)->chain_der().size(), 2u);
  EXPECT_EQ((*c)->not_before(), 1700000000);
  EXPECT_EQ((*c)->not_after(), 1700000000 + 24 * 3600);
  EXPECT_EQ((*c)->refresh_at(), 1700000000 + 12 * 3600);
  EXPECT_EQ(X509_cmp((*c)->leaf(), leaf.cert.get()), 0);
}

TEST_F(CredentialsTest, LoadsRsaKeys) {
  Issued leaf = Issue(LeafSpec(kAppId), &ca_, MakeKey(KeyType::kRsa2048));
  auto c = Credentials::FromPem(leaf.CertPem(), leaf.KeyPem());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(EVP_PKEY_id((*c)->private_key()), EVP_PKEY_RSA);
}

TEST_F(CredentialsTest, RejectsKeyThatDoesNotMatchTheLeaf) {
  Issued leaf = Issue(LeafSpec(kAppId), &ca_);
  Issued other = Issue(LeafSpec(kAppId), &ca_);
  auto c = Credentials::FromPem(leaf.CertPem(), other.KeyPem());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("does not match"));
}

TEST_F(CredentialsTest, RejectsUnsupportedCurves) {
  Issued leaf = Issue(LeafSpec(kAppId), &ca_, MakeKey(KeyType::kP384));
  auto c = Credentials::FromPem(leaf.CertPem(), leaf.KeyPem());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("P-256"));
}

TEST_F(CredentialsTest, RejectsLeafWithoutSpiffeId) {
  CertSpec spec = LeafSpec(kAppId);
  spec.uri_sans = {};
  spec.dns_sans = {"app.default.svc"};
  Issued leaf = Issue(spec, &ca_);
  auto c = Credentials::FromPem(leaf.CertPem(), leaf.KeyPem());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("URI SAN"));
}

TEST_F(CredentialsTest, RejectsWhatCannotBeAnX509Svid) {
  Issued root_id = Issue(LeafSpec("spiffe://cluster.local"), &ca_);
  EXPECT_THAT(std::string(Credentials::FromPem(root_id.CertPem(), root_id.KeyPem())
                              .status()
                              .message()),
              HasSubstr("no path"));
  CertSpec ca_leaf = LeafSpec(kAppId);
  ca_leaf.is_ca = true;
  Issued ca_issued = Issue(ca_leaf, &ca_);
  EXPECT_THAT(std::string(Credentials::FromPem(ca_issued.CertPem(), ca_issued.KeyPem())
                              .status()
                              .message()),
              HasSubstr("CA flag"));
}

TEST_F(CredentialsTest, RejectsGarbage) {
  Issued leaf = Issue(LeafSpec(kAppId), &ca_);
  EXPECT_FALSE(Credentials::FromPem("", leaf.KeyPem()).ok());
  EXPECT_FALSE(Credentials::FromPem(leaf.CertPem(), "").ok());
  EXPECT_FALSE(Credentials::FromPem(leaf.CertPem(), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
  EXPECT_FALSE(Credentials::FromPem(leaf.KeyPem(), leaf.KeyPem()).ok());
}

TEST_F(CredentialsTest, HolderRotates) {
  Issued a = Issue(LeafSpec(kAppId, 1), &ca_);
  Issued b = Issue(LeafSpec(kAppId, 2), &ca_);
  CredentialHolder holder(*Credentials::FromPem(a.CertPem(), a.KeyPem()));
  auto first = holder.Get();
  holder.Set(*Credentials::FromPem(b.CertPem(), b.KeyPem()));
  EXPECT_EQ(X509_cmp(holder.Get()->leaf(), b.cert.get()), 0);
  // A reader holding the old pair keeps it intact.
  EXPECT_EQ(X509_cmp(first->leaf(), a.cert.get()), 0);
}

}  // namespace
}  // namespace ambient::identity::testing
