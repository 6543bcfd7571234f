// `ambientctl spiffe parse|verify` run as a user would: the real binary on
// files this test writes (certificates made in code).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/test_pki.h"

namespace ambient::identity::testing {
namespace {

using ::ambient::test_support::Base64;
using ::ambient::test_support::CaSpec;
using ::ambient::test_support::Issue;
using ::ambient::test_support::Issued;
using ::ambient::test_support::LeafSpec;
using ::ambient::test_support::ToDer;
using ::ambient::test_support::kDay;
using ::ambient::test_support::kNow;

using ::testing::HasSubstr;
using CtlRun = test_support::RunResult;

class AmbientctlSpiffeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.Create("ambient-identity-ctl")); }

  std::string Write(const std::string& name, const std::string& data) {
    return dir_.Write(name, data);
  }

  // Ctl runs ambientctl with `args` (stdin empty).
  CtlRun Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), AMBIENTCTL_PATH);
    return test_support::Run(args);
  }

  test_support::TempDir dir_;
};

TEST_F(AmbientctlSpiffeTest, ParsePrintsTrustDomainAndPath) {
  CtlRun r = Ctl({"spiffe", "parse", "spiffe://cluster.local/ns/default/sa/app"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "trust_domain=cluster.local path=/ns/default/sa/app\n");
  CtlRun td = Ctl({"spiffe", "parse", "spiffe://example.org"});
  EXPECT_EQ(td.out, "trust_domain=example.org path=\n");
}

TEST_F(AmbientctlSpiffeTest, ParseRejectsWithReason) {
  CtlRun r = Ctl({"spiffe", "parse", "spiffe://Example.org/x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("trust domain characters are limited"));
  EXPECT_EQ(Ctl({"spiffe", "parse", "spiffe://td/a/"}).code, 1);
}

TEST_F(AmbientctlSpiffeTest, UsageErrorsAndHelp) {
  EXPECT_EQ(Ctl({"spiffe"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "bogus"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "parse"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "parse", "a", "b"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "verify", "--chain", "x"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "verify", "--bundle", "x", "--chain", "y", "--at", "soon"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "verify", "--bundle", "x", "--chain", "y", "--expect", "nope"}).code,
            2);
  EXPECT_EQ(Ctl({"spiffe", "verify", "--bundle"}).code, 2);
  EXPECT_EQ(Ctl({"spiffe", "verify", "--bundle", "x", "--chain", "y", "--trust-domain", "Bad TD"})
                .code,
            2);
  EXPECT_EQ(Ctl({"spiffe", "verify", "--frobnicate", "1"}).code, 2);
  for (auto args : std::vector<std::vector<std::string>>{
           {"spiffe", "--help"}, {"spiffe", "parse", "--help"}, {"spiffe", "verify", "--help"}}) {
    CtlRun r = Ctl(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("usage: ambientctl spiffe"));
  }
}

class AmbientctlVerifyTest : public AmbientctlSpiffeTest {
 protected:
  void SetUp() override {
    AmbientctlSpiffeTest::SetUp();
    ca_ = Issue(CaSpec("cluster.local"));
    inter_ = Issue(CaSpec("cluster.local", 2), &ca_);
    leaf_ = Issue(LeafSpec(kId), &inter_);
    bundle_ = Write("bundle.pem", ca_.CertPem());
    chain_ = Write("chain.pem", leaf_.CertPem() + inter_.CertPem());
  }
  static constexpr char kId[] = "spiffe://cluster.local/ns/default/sa/app";
  std::string At(int64_t t) { return absl::StrCat(t); }
  Issued ca_, inter_, leaf_;
  std::string bundle_, chain_;
};

TEST_F(AmbientctlVerifyTest, VerifiesChainAgainstPemBundle) {
  CtlRun r = Ctl({"spiffe", "verify", "--bundle", bundle_, "--chain", chain_, "--at", At(kNow)});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("identity=", kId, "\n"));
}

TEST_F(AmbientctlVerifyTest, VerifiesAgainstSpiffeJsonBundleAndBundleMap) {
  std::string b64 = Base64(ToDer(ca_.cert.get()));
  std::string json = Write(
      "bundle.json",
      absl::StrCat(R"({"spiffe_sequence":1,"keys":[{"kty":"EC","use":"x509-svid","x5c":[")", b64,
                   R"("]}]})"));
  CtlRun r = Ctl({"spiffe", "verify", "--bundle", json, "--chain", chain_, "--at", At(kNow)});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("identity=", kId, "\n"));
  std::string map = Write(
      "map.json", absl::StrCat(R"({"trust_domains":{"cluster.local":{"keys":[{"use":"x509-svid","x5c":[")",
                               b64, R"("]}]}}})"));
  CtlRun m = Ctl({"spiffe", "verify", "--bundle", map, "--chain", chain_, "--at", At(kNow)});
  EXPECT_EQ(m.code, 0) << m.err;
  // The JSON bundle belongs to --trust-domain: under another one it vouches
  // for nothing in cluster.local.
  CtlRun other = Ctl({"spiffe", "verify", "--bundle", json, "--chain", chain_, "--trust-domain",
                   "other.org", "--at", At(kNow)});
  EXPECT_EQ(other.code, 1);
  EXPECT_THAT(other.err, HasSubstr("no trust bundle for trust domain \"cluster.local\""));
}

TEST_F(AmbientctlVerifyTest, ExpectAndAt) {
  CtlRun ok = Ctl({"spiffe", "verify", "--bundle", bundle_, "--chain", chain_, "--expect",
                "spiffe://cluster.local/ns/x/sa/y", "--expect", kId, "--at", At(kNow)});
  EXPECT_EQ(ok.code, 0) << ok.err;
  CtlRun wrong = Ctl({"spiffe", "verify", "--bundle", bundle_, "--chain", chain_, "--expect",
                   "spiffe://cluster.local/ns/x/sa/y", "--at", At(kNow)});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_EQ(wrong.out, "");
  EXPECT_THAT(wrong.err, HasSubstr("not one of the expected"));
  CtlRun expired = Ctl({"spiffe", "verify", "--bundle", bundle_, "--chain", chain_, "--at",
                     At(kNow + 2 * kDay)});
  EXPECT_EQ(expired.code, 1);
  EXPECT_THAT(expired.err, HasSubstr("expired"));
}

TEST_F(AmbientctlVerifyTest, FailuresGoToStderr) {
  std::string leaf_only = Write("leaf.pem", leaf_.CertPem());
  CtlRun missing = Ctl({"spiffe", "verify", "--bundle", bundle_, "--chain", leaf_only, "--at",
                     At(kNow)});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no chain to an authority"));
  CtlRun no_file = Ctl({"spiffe", "verify", "--bundle", dir_.Path("nope"), "--chain", chain_});
  EXPECT_EQ(no_file.code, 1);
  EXPECT_THAT(no_file.err, HasSubstr("cannot open"));
  std::string junk = Write("junk.json", "{ not json");
  CtlRun bad_bundle = Ctl({"spiffe", "verify", "--bundle", junk, "--chain", chain_});
  EXPECT_EQ(bad_bundle.code, 1);
  EXPECT_THAT(bad_bundle.err, HasSubstr("not valid"));
  std::string empty = Write("empty.pem", "");
  CtlRun no_chain = Ctl({"spiffe", "verify", "--bundle", bundle_, "--chain", empty});
  EXPECT_EQ(no_chain.code, 1);
  EXPECT_THAT(no_chain.err, HasSubstr("no certificate"));
}

}  // namespace
}  // namespace ambient::identity::testing
