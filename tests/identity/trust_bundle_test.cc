// Trust bundles: PEM, SPIFFE bundle JSON and bundle-map edge cases, snapshots
// and the swappable source.
#include "ambient/identity/trust_bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "support/test_pki.h"

namespace ambient::identity::testing {
namespace {

using ::ambient::test_support::Base64;
using ::ambient::test_support::CaSpec;
using ::ambient::test_support::Issue;
using ::ambient::test_support::Issued;
using ::ambient::test_support::ToDer;

using ::testing::HasSubstr;

TrustDomain Td(const char* name) { return *TrustDomain::Parse(name); }

class BundleJsonTest : public ::testing::Test {
 protected:
  BundleJsonTest() : ca1_(Issue(CaSpec("example.org", 1))), ca2_(Issue(CaSpec("example.org", 2))) {}
  std::string B64(const Issued& i) { return Base64(ToDer(i.cert.get())); }
  std::string X509Key(const Issued& i) {
    return absl::StrCat(R"({"kty":"EC","use":"x509-svid","crv":"P-256","x5c":[")", B64(i), R"("]})");
  }
  absl::StatusOr<std::shared_ptr<const TrustBundle>> Parse(const std::string& json) {
    return TrustBundle::FromSpiffeJson(Td("example.org"), json);
  }
  Issued ca1_;
  Issued ca2_;
};

TEST_F(BundleJsonTest, ReadsX509AuthoritiesSequenceAndHint) {
  std::string json = absl::StrCat(
      R"({"spiffe_sequence": 18446744073709551615, "spiffe_refresh_hint": 300, "keys": [)",
      X509Key(ca1_), ",",
      R"({"kty":"EC","use":"jwt-svid","kid":"k1","crv":"P-256","x":"AA","y":"AA"},)",
      X509Key(ca2_), R"(], "some_future_member": {"a": [1, 2]}})");
  auto b = Parse(json);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ((*b)->authorities().size(), 2u);
  EXPECT_EQ(X509_cmp((*b)->authorities()[0].get(), ca1_.cert.get()), 0);
  EXPECT_EQ(X509_cmp((*b)->authorities()[1].get(), ca2_.cert.get()), 0);
  EXPECT_EQ((*b)->sequence(), 18446744073709551615ull);
  EXPECT_EQ((*b)->refresh_hint_seconds(), 300);
  EXPECT_EQ((*b)->trust_domain().name(), "example.org");
}

TEST_F(BundleJsonTest, SequenceAndHintAreOptional) {
  auto b = Parse(absl::StrCat(R"({"keys":[)", X509Key(ca1_), "]}"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE((*b)->sequence().has_value());
  EXPECT_FALSE((*b)->refresh_hint_seconds().has_value());
}

TEST_F(BundleJsonTest, KeysMustBePresentButMayBeEmpty) {
  auto missing = Parse(R"({"spiffe_sequence": 1})");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("\"keys\" is missing"));
  EXPECT_FALSE(Parse(R"({"keys": null})").ok());
  auto empty = Parse(R"({"keys": []})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->authorities().empty());
}

TEST_F(BundleJsonTest, IgnoresKeysForOtherUsesAndX509KeysWithoutCertificates) {
  auto b = Parse(absl::StrCat(
      R"({"keys":[{"kty":"EC","use":"jwt-svid"},{"kty":"EC"},{"kty":"EC","use":"X509-SVID","x5c":["!!"]},)",
      R"({"kty":"EC","use":"wit-svid"},{"use":"x509-svid"},{"use":"x509-svid","x5c":[]},)",
      R"({"use":"x509-svid","x5c":null},{"use":5},)", X509Key(ca1_), "]}"));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->authorities().size(), 1u);
}

TEST_F(BundleJsonTest, UsesOnlyTheFirstX5cCertificate) {
  auto b = Parse(absl::StrCat(R"({"keys":[{"use":"x509-svid","x5c":[")", B64(ca1_), R"(",")",
                              B64(ca2_), R"("]}]})"));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ((*b)->authorities().size(), 1u);
  EXPECT_EQ(X509_cmp((*b)->authorities()[0].get(), ca1_.cert.get()), 0);
}

TEST_F(BundleJsonTest, RejectsBadCertificateData) {
  // Not base64 at all.
  auto a = Parse(R"({"keys":[{"use":"x509-svid","x5c":["%%%"]}]})");
  EXPECT_THAT(std::string(a.status().message()), HasSubstr("base64"));
  // URL-safe base64 is not what x5c carries.
  std::string url_safe = absl::StrReplaceAll(B64(ca1_), {{"+", "-"}, {"/", "_"}});
  if (url_safe != B64(ca1_)) {
    EXPECT_FALSE(Parse(absl::StrCat(R"({"keys":[{"use":"x509-svid","x5c":[")", url_safe, R"("]}]})")).ok());
  }
  // Base64 of something that is not a certificate.
  auto c = Parse(absl::StrCat(R"({"keys":[{"use":"x509-svid","x5c":[")", Base64("hello world"),
                              R"("]}]})"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("does not parse"));
  // A certificate with trailing bytes.
  auto d = Parse(absl::StrCat(R"({"keys":[{"use":"x509-svid","x5c":[")",
                              Base64(ToDer(ca1_.cert.get()) + "xx"), R"("]}]})"));
  EXPECT_FALSE(d.ok());
  // Wrong JSON types.
  EXPECT_FALSE(Parse(R"({"keys":[{"use":"x509-svid","x5c":"abc"}]})").ok());
  EXPECT_FALSE(Parse(R"({"keys":[{"use":"x509-svid","x5c":[5]}]})").ok());
}

TEST_F(BundleJsonTest, RejectsMalformedDocuments) {
  for (const char* bad : {"", "{", "[]", "null", "42", R"({"keys": {}})", R"({"keys": "x"})",
                          R"({"keys": [1]})", R"({"keys": ["x"]})", R"({"keys": [[]]})",
                          R"({"keys": []} trailing)", R"({"spiffe_sequence": -1, "keys": []})",
                          R"({"spiffe_sequence": 1.5, "keys": []})",
                          R"({"spiffe_sequence": "x", "keys": []})",
                          R"({"spiffe_refresh_hint": "soon", "keys": []})"}) {
    auto b = Parse(bad);
    EXPECT_FALSE(b.ok()) << bad;
    if (!b.ok()) {
      EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad << b.status();
    }
  }
}

TEST_F(BundleJsonTest, ReadsJsonStrictly) {
  // RFC 8259 only: no trailing comma, no comment, UTF-8, no raw NUL byte,
  // nothing after the document.
  for (std::string bad : {std::string(R"({"keys": [],})"), std::string(R"({"keys": [] /* c */})"),
                          std::string("{\"keys\": [], \"note\": \"\xff\"}"),
                          std::string("{\"keys\": []}\0", 13),
                          std::string("{\"keys\": []}\0 {", 15),
                          std::string("{\"keys\":\0[]}", 12),
                          std::string(R"({"keys": []} {})")}) {
    auto b = Parse(bad);
    ASSERT_FALSE(b.ok()) << absl::CHexEscape(bad);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("bundle JSON is not valid"));
  }
  // An escaped NUL is a character like any other in a string nobody reads.
  EXPECT_TRUE(Parse(R"({"keys": [], "note": "a\u0000b"})").ok());
}

TEST_F(BundleJsonTest, RefusesAMemberNamedTwiceInAnyObject) {
  for (const char* bad : {R"({"keys": [], "keys": []})",
                          R"({"spiffe_sequence": 1, "spiffe_sequence": 2, "keys": []})",
                          R"({"keys": [{"use": "jwt-svid", "use": "x509-svid"}]})",
                          R"({"keys": [], "ext": [{"a": 1, "a": 1}]})"}) {
    auto b = Parse(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
    EXPECT_THAT(std::string(b.status().message()), HasSubstr("appears twice")) << bad;
  }
  // The same name in two different objects is fine.
  EXPECT_TRUE(Parse(R"({"keys": [{"use": "a"}, {"use": "b"}]})").ok());
}

TEST_F(BundleJsonTest, SequenceAndHintMustBeWholeNumbersInRange) {
  auto whole = Parse(R"({"spiffe_sequence": 1e2, "spiffe_refresh_hint": -5.0, "keys": []})");
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ((*whole)->sequence(), 100u);
  EXPECT_EQ((*whole)->refresh_hint_seconds(), -5);
  auto max_hint = Parse(R"({"spiffe_refresh_hint": 9223372036854775807, "keys": []})");
  ASSERT_TRUE(max_hint.ok()) << max_hint.status();
  EXPECT_EQ((*max_hint)->refresh_hint_seconds(), INT64_MAX);
  auto absent = Parse(R"({"spiffe_sequence": null, "keys": []})");
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE((*absent)->sequence().has_value());
  for (const char* bad : {R"({"spiffe_sequence": 18446744073709551616, "keys": []})",
                          R"({"spiffe_sequence": 1e400, "keys": []})",
                          R"({"spiffe_sequence": "7", "keys": []})",
                          R"({"spiffe_sequence": true, "keys": []})",
                          R"({"spiffe_refresh_hint": 9223372036854775808, "keys": []})",
                          R"({"spiffe_refresh_hint": 0.5, "keys": []})"}) {
    auto b = Parse(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
  }
}

TEST_F(BundleJsonTest, ErrorsDoNotEchoTheDocument) {
  // A long bad string: the message says what is wrong, not the bytes.
  std::string junk(1 << 20, 'A');
  auto b = Parse(R"({"keys": [], "note": ")" + junk + "\x01\"}");
  ASSERT_FALSE(b.ok());
  EXPECT_LT(b.status().message().size(), 300u) << b.status().message().substr(0, 300);
  // A long duplicated name is shortened and escaped.
  // (JSON "\n" followed by 1000 'n's.)
  std::string name = "\\n" + std::string(1000, 'n');
  auto dup = Parse(absl::StrCat(R"({"keys": [], ")", name, R"(": 1, ")", name, R"(": 2})"));
  ASSERT_FALSE(dup.ok());
  EXPECT_LT(dup.status().message().size(), 300u);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("\\nnnn"));
}

TEST_F(BundleJsonTest, DeepNestingIsRejectedNotACrash) {
  std::string deep = R"({"keys":[{"use":"x509-svid","x5c":)" + std::string(100000, '[') +
                     std::string(100000, ']') + "}]}";
  auto rejected = Parse(deep);
  ASSERT_FALSE(rejected.ok());
  EXPECT_THAT(std::string(rejected.status().message()), HasSubstr("nested deeper than"));
  // Brackets inside strings do not count.
  auto in_string = Parse(R"({"keys":[], "note": ")" + std::string(1000, '[') + R"("})");
  EXPECT_TRUE(in_string.ok()) << in_string.status();
  std::string deep_map = R"({"trust_domains":)" + std::string(50000, '[');
  EXPECT_FALSE(TrustBundleSet::FromSpiffeBundleMapJson(deep_map).ok());
  std::string deep_obj;
  for (int i = 0; i < 20000; ++i) deep_obj += R"({"a":)";
  deep_obj += "1" + std::string(20000, '}');
  EXPECT_FALSE(Parse(R"({"keys":[)" + deep_obj + "]}").ok());
}

TEST_F(BundleJsonTest, BundleMapReadsSeveralTrustDomains) {
  Issued other = Issue(CaSpec("other.org", 3));
  std::string json = absl::StrCat(
      R"({"trust_domains": {"example.org": {"spiffe_sequence": 7, "keys":[)", X509Key(ca1_),
      R"(]}, "other.org": {"keys":[{"use":"x509-svid","x5c":[")", B64(other), R"("]}]}}})");
  auto set = TrustBundleSet::FromSpiffeBundleMapJson(json);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->size(), 2u);
  ASSERT_NE((*set)->Find("example.org"), nullptr);
  EXPECT_EQ((*set)->Find("example.org")->sequence(), 7u);
  ASSERT_NE((*set)->Find("other.org"), nullptr);
  EXPECT_EQ(X509_cmp((*set)->Find("other.org")->authorities()[0].get(), other.cert.get()), 0);
  EXPECT_EQ((*set)->Find("missing.org"), nullptr);
}

TEST_F(BundleJsonTest, BundleMapRejectsDuplicateTrustDomains) {
  std::string json = absl::StrCat(R"({"trust_domains": {"example.org": {"keys":[]}, )",
                                  R"("example.org": {"keys":[]}}})");
  auto set = TrustBundleSet::FromSpiffeBundleMapJson(json);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kAlreadyExists) << set.status();
  EXPECT_THAT(std::string(set.status().message()), HasSubstr("example.org"));
  // "trust_domains" itself twice, or a duplicate inside one bundle, is a
  // malformed document rather than a clash of trust domains.
  for (const char* bad : {R"({"trust_domains": {"a.org": {"keys":[]}}, "trust_domains": {}})",
                          R"({"trust_domains": {"a.org": {"keys":[], "keys":[]}}})"}) {
    auto s = TrustBundleSet::FromSpiffeBundleMapJson(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
  }
}

TEST_F(BundleJsonTest, BundleMapEdgeCases) {
  auto empty = TrustBundleSet::FromSpiffeBundleMapJson(R"({"trust_domains": {}})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ((*empty)->size(), 0u);
  auto missing = TrustBundleSet::FromSpiffeBundleMapJson(R"({"keys": []})");
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("\"trust_domains\" is missing"));
  EXPECT_FALSE(TrustBundleSet::FromSpiffeBundleMapJson(R"({"trust_domains": []})").ok());
  EXPECT_FALSE(TrustBundleSet::FromSpiffeBundleMapJson(R"({"trust_domains": null})").ok());
  auto bad_name =
      TrustBundleSet::FromSpiffeBundleMapJson(R"({"trust_domains": {"Bad Name": {"keys":[]}}})");
  EXPECT_THAT(std::string(bad_name.status().message()), HasSubstr("Bad Name"));
  auto bad_bundle =
      TrustBundleSet::FromSpiffeBundleMapJson(R"({"trust_domains": {"ok.org": {"nokeys":[]}}})");
  EXPECT_THAT(std::string(bad_bundle.status().message()), HasSubstr("ok.org"));
  // A full SPIFFE ID as the key names its trust domain.
  auto by_id = TrustBundleSet::FromSpiffeBundleMapJson(
      R"({"trust_domains": {"spiffe://id.org": {"keys":[]}}})");
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  EXPECT_NE((*by_id)->Find("id.org"), nullptr);
}

TEST(TrustBundlePem, ReadsEveryCertificate) {
  Issued a = Issue(CaSpec("example.org", 1));
  Issued b = Issue(CaSpec("example.org", 2));
  auto bundle = TrustBundle::FromPem(Td("example.org"), a.CertPem() + "\n" + b.CertPem());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ((*bundle)->authorities().size(), 2u);
  // Duplicates collapse.
  auto dup = TrustBundle::FromPem(Td("example.org"), a.CertPem() + a.CertPem());
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ((*dup)->authorities().size(), 1u);
}

TEST(TrustBundlePem, RejectsWhatIsNotACertificateList) {
  Issued a = Issue(CaSpec("example.org", 1));
  EXPECT_THAT(std::string(TrustBundle::FromPem(Td("example.org"), "").status().message()),
              HasSubstr("no certificate"));
  EXPECT_FALSE(TrustBundle::FromPem(Td("example.org"), "garbage").ok());
  auto key = TrustBundle::FromPem(Td("example.org"), a.CertPem() + a.KeyPem());
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("PRIVATE KEY"));
  auto bad = TrustBundle::FromPem(Td("example.org"),
                                  "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("does not parse"));
}

TEST(TrustBundleSet, RejectsDuplicateTrustDomainsAndSwapsAtomically) {
  Issued a = Issue(CaSpec("example.org", 1));
  auto b1 = *TrustBundle::FromPem(Td("example.org"), a.CertPem());
  auto b2 = *TrustBundle::FromPem(Td("example.org"), a.CertPem());
  auto dup = TrustBundleSet::Create({b1, b2});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);

  TrustBundleSource source(*TrustBundleSet::Create({b1}));
  auto before = source.Get();
  auto other = *TrustBundle::FromPem(Td("other.org"), a.CertPem());
  source.Update(other);
  auto after = source.Get();
  // The old snapshot is untouched; the new one has both.
  EXPECT_EQ(before->size(), 1u);
  EXPECT_EQ(after->size(), 2u);
  EXPECT_TRUE(source.Remove(Td("example.org")));
  EXPECT_FALSE(source.Remove(Td("example.org")));
  EXPECT_EQ(source.Get()->size(), 1u);
  EXPECT_EQ(after->size(), 2u);
  source.Set(nullptr);
  EXPECT_EQ(source.Get()->size(), 0u);
}

}  // namespace
}  // namespace ambient::identity::testing
