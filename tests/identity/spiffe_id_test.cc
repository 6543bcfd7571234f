// SPIFFE ID and trust-domain parsing: go-spiffe's accept/reject set, the
// specification's length limits, error reasons and round trips; the Istio
// identity view.
#include "ambient/identity/spiffe_id.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "ambient/base/status.h"

namespace ambient::identity {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Case {
  const char* input;
  SpiffeIdError want;  // kNone: valid
  const char* td = "";
  const char* path = "";
};

class SpiffeIdCases : public ::testing::TestWithParam<Case> {};

TEST_P(SpiffeIdCases, ParsesOrRejectsWithTheRightReason) {
  const Case& c = GetParam();
  absl::StatusOr<SpiffeId> id = SpiffeId::Parse(c.input);
  absl::StatusOr<SpiffeIdView> view = ParseSpiffeIdView(c.input);
  EXPECT_EQ(ValidateSpiffeId(c.input), c.want);
  if (c.want == SpiffeIdError::kNone) {
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(id->str(), c.input);
    EXPECT_EQ(id->trust_domain_name(), c.td);
    EXPECT_EQ(id->path(), c.path);
    EXPECT_EQ(view->trust_domain, c.td);
    EXPECT_EQ(view->path, c.path);
    // Round trip through the parts.
    auto again = SpiffeId::FromParts(id->trust_domain(), id->path());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *id);
  } else {
    ASSERT_FALSE(id.ok()) << "accepted: " << c.input;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(DetailOf(id.status()), static_cast<int>(c.want)) << id.status();
    EXPECT_EQ(DetailOf(view.status()), static_cast<int>(c.want));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SpiffeIdCases,
    ::testing::Values(
        Case{"spiffe://trustdomain", SpiffeIdError::kNone, "trustdomain", ""},
        Case{"spiffe://trustdomain/path", SpiffeIdError::kNone, "trustdomain", "/path"},
        Case{"spiffe://trustdomain/path1/path2", SpiffeIdError::kNone, "trustdomain",
             "/path1/path2"},
        Case{"spiffe://cluster.local/ns/default/sa/bookinfo-ratings", SpiffeIdError::kNone,
             "cluster.local", "/ns/default/sa/bookinfo-ratings"},
        Case{"spiffe://trust-domain_1.example/UPPER/lower_-.", SpiffeIdError::kNone,
             "trust-domain_1.example", "/UPPER/lower_-."},
        Case{"spiffe://192.168.0.1/p", SpiffeIdError::kNone, "192.168.0.1", "/p"},
        Case{"spiffe://td/.path", SpiffeIdError::kNone, "td", "/.path"},
        Case{"spiffe://td/..path", SpiffeIdError::kNone, "td", "/..path"},
        Case{"spiffe://td/...", SpiffeIdError::kNone, "td", "/..."},
        Case{"spiffe://td/a./b..", SpiffeIdError::kNone, "td", "/a./b.."},
        Case{"", SpiffeIdError::kEmpty},
        Case{"s", SpiffeIdError::kBadScheme},
        Case{"spiffe:/", SpiffeIdError::kBadScheme},
        Case{"spiffe:", SpiffeIdError::kBadScheme},
        Case{"spiffe:/td/p", SpiffeIdError::kBadScheme},
        Case{"Spiffe://td/p", SpiffeIdError::kBadScheme},
        Case{"SPIFFE://td/p", SpiffeIdError::kBadScheme},
        Case{"https://td/p", SpiffeIdError::kBadScheme},
        Case{" spiffe://td/p", SpiffeIdError::kBadScheme},
        Case{"spiffe://", SpiffeIdError::kMissingTrustDomain},
        Case{"spiffe:///", SpiffeIdError::kMissingTrustDomain},
        Case{"spiffe:///path", SpiffeIdError::kMissingTrustDomain},
        Case{"spiffe://Trustdomain/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://td:8080/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://user@td/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://user:pw@td/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://t%64/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://[::1]/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://td?query", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://td#frag", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://t\xc3\xa9/p", SpiffeIdError::kBadTrustDomainChar},
        Case{"spiffe://td/p?q=1", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/p#frag", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/p%2Fq", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/%41", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/caf\xc3\xa9", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/a b", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/~user", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/p:8080", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/a@b", SpiffeIdError::kBadPathChar},
        Case{"spiffe://td/", SpiffeIdError::kTrailingSlash},
        Case{"spiffe://td/path/", SpiffeIdError::kTrailingSlash},
        Case{"spiffe://td//", SpiffeIdError::kEmptySegment},
        Case{"spiffe://td//path", SpiffeIdError::kEmptySegment},
        Case{"spiffe://td/a//b", SpiffeIdError::kEmptySegment},
        Case{"spiffe://td/path//", SpiffeIdError::kEmptySegment},
        Case{"spiffe://td/.", SpiffeIdError::kDotSegment},
        Case{"spiffe://td/..", SpiffeIdError::kDotSegment},
        Case{"spiffe://td/./a", SpiffeIdError::kDotSegment},
        Case{"spiffe://td/a/../b", SpiffeIdError::kDotSegment},
        Case{"spiffe://td/a/.", SpiffeIdError::kDotSegment},
        Case{"spiffe://td/a/..", SpiffeIdError::kDotSegment}));

TEST(SpiffeId, ByteSweepOverTrustDomainAndPath) {
  for (int b = 0; b < 256; ++b) {
    if (b == '/') continue;
    char c = static_cast<char>(b);
    bool td_ok = (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '.' || b == '-' ||
                 b == '_';
    bool path_ok = td_ok || (b >= 'A' && b <= 'Z');
    std::string in_td = std::string("spiffe://trustdomain") + c;
    std::string in_path = std::string("spiffe://trustdomain/path") + c;
    auto td = SpiffeId::Parse(in_td);
    auto path = SpiffeId::Parse(in_path);
    EXPECT_EQ(td.ok(), td_ok) << "byte " << b;
    EXPECT_EQ(path.ok(), path_ok) << "byte " << b;
    if (!td_ok) {
      EXPECT_EQ(DetailOf(td.status()), static_cast<int>(SpiffeIdError::kBadTrustDomainChar));
    }
    if (!path_ok) {
      EXPECT_EQ(DetailOf(path.status()), static_cast<int>(SpiffeIdError::kBadPathChar));
    }
  }
}

TEST(SpiffeId, LengthLimits) {
  std::string prefix = "spiffe://td/";
  std::string max_id = prefix + std::string(kMaxSpiffeIdLength - prefix.size(), 'a');
  EXPECT_TRUE(SpiffeId::Parse(max_id).ok());
  auto too_long = SpiffeId::Parse(max_id + "a");
  EXPECT_EQ(DetailOf(too_long.status()), static_cast<int>(SpiffeIdError::kTooLong));
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("2049 bytes"));

  std::string td255(kMaxTrustDomainLength, 'd');
  EXPECT_TRUE(SpiffeId::Parse("spiffe://" + td255 + "/p").ok());
  EXPECT_TRUE(TrustDomain::Parse(td255).ok());
  auto td_long = SpiffeId::Parse("spiffe://" + td255 + "d/p");
  EXPECT_EQ(DetailOf(td_long.status()), static_cast<int>(SpiffeIdError::kTrustDomainTooLong));
  EXPECT_EQ(DetailOf(TrustDomain::Parse(td255 + "d").status()),
            static_cast<int>(SpiffeIdError::kTrustDomainTooLong));
}

TEST(SpiffeId, ErrorsSayWhatAndWhere) {
  auto bad = SpiffeId::Parse("spiffe://td/ok/p?q");
  ASSERT_FALSE(bad.ok());
  std::string msg(bad.status().message());
  EXPECT_THAT(msg, HasSubstr("path segment characters are limited to letters"));
  EXPECT_THAT(msg, HasSubstr("'?' at offset 16"));
  EXPECT_THAT(msg, HasSubstr("\"spiffe://td/ok/p?q\""));

  auto upper = SpiffeId::Parse("spiffe://exAmple/p");
  EXPECT_THAT(std::string(upper.status().message()), HasSubstr("'A' at offset 11"));
  auto nul = SpiffeId::Parse(absl::string_view("spiffe://td/a\0b", 15));
  EXPECT_THAT(std::string(nul.status().message()), HasSubstr("byte 0x00 at offset 13"));
  auto dot = SpiffeId::Parse("spiffe://td/a/../b");
  EXPECT_THAT(std::string(dot.status().message()), HasSubstr("dot segments"));
  // Huge inputs are not echoed whole.
  auto huge = SpiffeId::Parse(std::string(100000, 'x'));
  EXPECT_LT(huge.status().message().size(), 400u);
}

TEST(SpiffeId, ListValidationNamesTheEntryAndSuggestsTheScheme) {
  EXPECT_TRUE(ValidateSpiffeIdList({}, "allow").ok());
  EXPECT_TRUE(
      ValidateSpiffeIdList({"spiffe://td/ns/a/sa/b", "spiffe://cluster.local"}, "allow").ok());

  absl::Status s = ValidateSpiffeIdList(
      {"spiffe://td/ns/a/sa/b", "cluster.local/ns/default/sa/demo"}, "allow");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DetailOf(s), static_cast<int>(SpiffeIdError::kBadScheme));
  EXPECT_THAT(std::string(s.message()), HasSubstr("allow[1]: invalid SPIFFE ID"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("did you mean \"spiffe://cluster.local/ns/default/sa/demo\""));

  s = ValidateSpiffeIdList({"spiffe://td/ns/a/sa/b/"}, "allow");
  EXPECT_EQ(DetailOf(s), static_cast<int>(SpiffeIdError::kTrailingSlash));
  EXPECT_THAT(std::string(s.message()), HasSubstr("allow[0]"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("trailing slash"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("did you mean")));

  // No suggestion when adding the scheme would not make it valid either.
  s = ValidateSpiffeIdList({"https://td/x"}, "allow");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("did you mean")));
  s = ValidateSpiffeIdList({""}, "expected");
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected[0]"));
}

TEST(SpiffeId, ComparesAndKnowsItsTrustDomain) {
  auto a = *SpiffeId::Parse("spiffe://example.org/a");
  auto b = *SpiffeId::Parse("spiffe://example.org/b");
  EXPECT_NE(a, b);
  EXPECT_LT(a, b);
  EXPECT_TRUE(a.MemberOf(*TrustDomain::Parse("example.org")));
  EXPECT_FALSE(a.MemberOf(*TrustDomain::Parse("example.com")));
  EXPECT_EQ(a.trust_domain().IdString(), "spiffe://example.org");
}

TEST(TrustDomain, ParsesNamesAndIds) {
  EXPECT_EQ(TrustDomain::Parse("example.org")->name(), "example.org");
  EXPECT_EQ(TrustDomain::Parse("spiffe://example.org")->name(), "example.org");
  EXPECT_EQ(TrustDomain::Parse("spiffe://example.org/path/x")->name(), "example.org");
  EXPECT_EQ(DetailOf(TrustDomain::Parse("").status()),
            static_cast<int>(SpiffeIdError::kMissingTrustDomain));
  EXPECT_EQ(DetailOf(TrustDomain::Parse("Example.org").status()),
            static_cast<int>(SpiffeIdError::kBadTrustDomainChar));
  EXPECT_EQ(DetailOf(TrustDomain::Parse("example.org:443").status()),
            static_cast<int>(SpiffeIdError::kBadTrustDomainChar));
  EXPECT_EQ(DetailOf(TrustDomain::Parse("spiffe://").status()),
            static_cast<int>(SpiffeIdError::kMissingTrustDomain));
  EXPECT_EQ(DetailOf(TrustDomain::Parse("http://example.org").status()),
            static_cast<int>(SpiffeIdError::kBadScheme));
  EXPECT_EQ(DetailOf(TrustDomain::Parse("spiffe://example.org/").status()),
            static_cast<int>(SpiffeIdError::kTrailingSlash));
  absl::Status status = TrustDomain::Parse("a b").status();
  EXPECT_THAT(std::string(status.message()), HasSubstr("invalid trust domain \"a b\""));
}

TEST(IstioIdentity, ReadsZtunnelShape) {
  auto id = IstioIdentity::Parse("spiffe://cluster.local/ns/default/sa/bookinfo");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->trust_domain(), "cluster.local");
  EXPECT_EQ(id->ns(), "default");
  EXPECT_EQ(id->service_account(), "bookinfo");
  EXPECT_EQ(id->ToString(), "spiffe://cluster.local/ns/default/sa/bookinfo");
  EXPECT_EQ(*id, IstioIdentity("cluster.local", "default", "bookinfo"));
}

TEST(IstioIdentity, RejectsOtherShapesLikeZtunnel) {
  for (const char* bad :
       {"spiffe://td/ns/a/sa/b/c", "spiffe://td/ns/a/sa", "spiffe://td/ns/a/xx/b",
        "spiffe://td/nss/a/sa/b", "spiffe://td", "http://td/ns/a/sa/b", "SPIFFE://td/ns/a/sa/b",
        "spiffe://td/ns/a/sa/b/"}) {
    EXPECT_FALSE(IstioIdentity::Parse(bad).ok()) << bad;
  }
  // ztunnel checks neither characters nor emptiness of the parts.
  EXPECT_TRUE(IstioIdentity::Parse("spiffe://td/ns//sa/").ok());
  EXPECT_TRUE(IstioIdentity::Parse("spiffe://TD/ns/a/sa/b").ok());
}

TEST(IstioIdentity, StrictViewOfASpiffeId) {
  auto ok = IstioIdentity::FromSpiffeId(*SpiffeId::Parse("spiffe://td/ns/a/sa/b"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->ns(), "a");
  EXPECT_FALSE(IstioIdentity::FromSpiffeId(*SpiffeId::Parse("spiffe://td/workload/x")).ok());
  EXPECT_FALSE(IstioIdentity::FromSpiffeId(*SpiffeId::Parse("spiffe://td")).ok());
}

}  // namespace
}  // namespace ambient::identity
