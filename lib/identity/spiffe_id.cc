// SPIFFE ID and trust-domain parsing (go-spiffe's accept set plus the
// specification's length limits), and ztunnel's Istio identity reading.
#include "ambient/identity/spiffe_id.h"

#include <array>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ambient/base/status.h"

namespace ambient::identity {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
static_assert(kScheme.size() == SpiffeId::kSchemeLength);

enum CharClass : uint8_t { kTrustDomainChar = 1, kPathChar = 2 };

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kTrustDomainChar | kPathChar;
  for (int c = '0'; c <= '9'; ++c) t[c] = kTrustDomainChar | kPathChar;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kPathChar;
  t['.'] = t['-'] = t['_'] = kTrustDomainChar | kPathChar;
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

// Quoted, escaped and shortened input for error messages.
std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 128;
  if (s.size() <= kMax) return absl::StrCat("\"", absl::CHexEscape(s), "\"");
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)), "\"... (", s.size(), " bytes)");
}

std::string ByteName(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return absl::StrCat("'", absl::string_view(&c, 1), "'");
  return absl::StrCat("byte 0x", absl::Hex(u, absl::kZeroPad2));
}

absl::Status Fail(SpiffeIdError e, absl::string_view what, absl::string_view input,
                  absl::string_view where = {}, absl::string_view kind = "SPIFFE ID") {
  return WithDetail(
      absl::InvalidArgumentError(absl::StrCat("invalid ", kind, " ", Quote(input), ": ", what,
                                              where.empty() ? "" : " (", where,
                                              where.empty() ? "" : ")")),
      static_cast<int>(e));
}

// Checks a trust domain name (no scheme). `input` is the whole text for
// messages, `offset` where `td` starts in it.
absl::Status CheckTrustDomain(absl::string_view td, absl::string_view input, size_t offset,
                              absl::string_view kind = "SPIFFE ID") {
  if (td.empty()) {
    return Fail(SpiffeIdError::kMissingTrustDomain, "trust domain is missing", input, {}, kind);
  }
  for (size_t i = 0; i < td.size(); ++i) {
    if (!(kClasses[static_cast<unsigned char>(td[i])] & kTrustDomainChar)) {
      return Fail(SpiffeIdError::kBadTrustDomainChar,
                  "trust domain characters are limited to lowercase letters, numbers, dots, "
                  "dashes, and underscores",
                  input, absl::StrCat(ByteName(td[i]), " at offset ", offset + i), kind);
    }
  }
  if (td.size() > kMaxTrustDomainLength) {
    return Fail(SpiffeIdError::kTrustDomainTooLong,
                absl::StrCat("trust domain is ", td.size(), " bytes long, more than the ",
                             kMaxTrustDomainLength, " allowed"),
                input, {}, kind);
  }
  return absl::OkStatus();
}

// Checks a path ("" or "/seg/seg"), go-spiffe's order: an empty or dot
// segment is reported where it is met; the last segment is checked for
// trailing slash / dot at the end.
absl::Status CheckPath(absl::string_view path, absl::string_view input, size_t offset) {
  size_t seg_start = 0;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '/') {
      if (i > 0) {
        size_t len = i - seg_start;  // includes the leading '/'
        if (len == 1) {
          return Fail(SpiffeIdError::kEmptySegment, "path cannot contain empty segments", input,
                      absl::StrCat("at offset ", offset + i));
        }
        if ((len == 2 && path[seg_start + 1] == '.') ||
            (len == 3 && path[seg_start + 1] == '.' && path[seg_start + 2] == '.')) {
          return Fail(SpiffeIdError::kDotSegment, "path cannot contain dot segments", input,
                      absl::StrCat("at offset ", offset + seg_start));
        }
      }
      seg_start = i;
      continue;
    }
    if (!(kClasses[static_cast<unsigned char>(c)] & kPathChar)) {
      return Fail(SpiffeIdError::kBadPathChar,
                  "path segment characters are limited to letters, numbers, dots, dashes, and "
                  "underscores",
                  input, absl::StrCat(ByteName(c), " at offset ", offset + i));
    }
  }
  if (path.empty()) return absl::OkStatus();
  size_t len = path.size() - seg_start;
  if (len == 1) {
    return Fail(SpiffeIdError::kTrailingSlash, "path cannot have a trailing slash", input);
  }
  if ((len == 2 && path[seg_start + 1] == '.') ||
      (len == 3 && path[seg_start + 1] == '.' && path[seg_start + 2] == '.')) {
    return Fail(SpiffeIdError::kDotSegment, "path cannot contain dot segments", input,
                absl::StrCat("at offset ", offset + seg_start));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SpiffeIdView> ParseSpiffeIdView(absl::string_view id) {
  if (id.empty()) return Fail(SpiffeIdError::kEmpty, "cannot be empty", id);
  if (!absl::StartsWith(id, kScheme)) {
    return Fail(SpiffeIdError::kBadScheme, "scheme is missing or invalid (must be \"spiffe://\")",
                id);
  }
  if (id.size() > kMaxSpiffeIdLength) {
    return Fail(SpiffeIdError::kTooLong,
                absl::StrCat("it is ", id.size(), " bytes long, more than the ",
                             kMaxSpiffeIdLength, " allowed"),
                id);
  }
  absl::string_view rest = id.substr(kScheme.size());
  size_t slash = rest.find('/');
  absl::string_view td = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash);
  if (absl::Status s = CheckTrustDomain(td, id, kScheme.size()); !s.ok()) return s;
  if (absl::Status s = CheckPath(path, id, kScheme.size() + td.size()); !s.ok()) return s;
  return SpiffeIdView{td, path};
}

absl::StatusOr<TrustDomain> TrustDomain::Parse(absl::string_view name) {
  if (absl::StrContains(name, ":/")) {
    absl::StatusOr<SpiffeIdView> view = ParseSpiffeIdView(name);
    if (!view.ok()) return view.status();
    return TrustDomain(std::string(view->trust_domain));
  }
  if (absl::Status s = CheckTrustDomain(name, name, 0, "trust domain"); !s.ok()) return s;
  return TrustDomain(std::string(name));
}

std::string TrustDomain::IdString() const { return absl::StrCat(kScheme, name_); }

absl::StatusOr<SpiffeId> SpiffeId::Parse(absl::string_view id) {
  absl::StatusOr<SpiffeIdView> view = ParseSpiffeIdView(id);
  if (!view.ok()) return view.status();
  return SpiffeId(std::string(id), static_cast<uint32_t>(view->trust_domain.size()));
}

absl::StatusOr<SpiffeId> SpiffeId::FromParts(const TrustDomain& td, absl::string_view path) {
  return Parse(absl::StrCat(kScheme, td.name(), path));
}

TrustDomain SpiffeId::trust_domain() const { return TrustDomain(std::string(trust_domain_name())); }

absl::StatusOr<IstioIdentity> IstioIdentity::Parse(absl::string_view uri) {
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an Istio identity ", Quote(uri), ": must start with \"spiffe://\""));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kScheme.size()), '/');
  if (parts.size() != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an Istio identity ", Quote(uri),
        ": expected spiffe://<trust domain>/ns/<namespace>/sa/<service account>, got ",
        parts.size(), " parts"));
  }
  if (parts[1] != "ns") {
    return absl::InvalidArgumentError(
        absl::StrCat("not an Istio identity ", Quote(uri), ": second part must be \"ns\""));
  }
  if (parts[3] != "sa") {
    return absl::InvalidArgumentError(
        absl::StrCat("not an Istio identity ", Quote(uri), ": fourth part must be \"sa\""));
  }
  return IstioIdentity(std::string(parts[0]), std::string(parts[2]), std::string(parts[4]));
}

absl::StatusOr<IstioIdentity> IstioIdentity::FromSpiffeId(const SpiffeId& id) {
  absl::StatusOr<IstioIdentity> istio = Parse(id.str());
  if (!istio.ok()) return istio.status();
  if (istio->ns().empty() || istio->service_account().empty()) {
    // Unreachable for a valid SPIFFE ID (no empty segments), kept for clarity.
    return absl::InvalidArgumentError(
        absl::StrCat("not an Istio identity ", Quote(id.str()), ": empty namespace or account"));
  }
  return istio;
}

std::string IstioIdentity::ToString() const {
  return absl::StrCat(kScheme, trust_domain_, "/ns/", namespace_, "/sa/", service_account_);
}

}  // namespace ambient::identity
