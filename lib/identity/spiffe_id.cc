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

// Where a check failed: the error, the offset of the offending byte or
// segment in the checked text, and the byte.
struct Problem {
  SpiffeIdError error = SpiffeIdError::kNone;
  size_t offset = 0;
  char byte = 0;
};

inline bool IsDotSegment(absl::string_view seg) {  // seg includes its leading '/'
  return (seg.size() == 2 && seg[1] == '.') || (seg.size() == 3 && seg[1] == '.' && seg[2] == '.');
}

// Checks a trust domain name (no scheme) starting at `offset` of the input.
Problem CheckTrustDomain(absl::string_view td, size_t offset) {
  if (td.empty()) return {SpiffeIdError::kMissingTrustDomain, offset};
  for (size_t i = 0; i < td.size(); ++i) {
    if (!(kClasses[static_cast<unsigned char>(td[i])] & kTrustDomainChar)) {
      return {SpiffeIdError::kBadTrustDomainChar, offset + i, td[i]};
    }
  }
  if (td.size() > kMaxTrustDomainLength) return {SpiffeIdError::kTrustDomainTooLong, td.size()};
  return {};
}

// Checks a path ("" or "/seg/seg") in go-spiffe's order: an empty or dot
// segment is reported where it is met, the last segment (trailing slash,
// dot) at the end.
Problem CheckPath(absl::string_view path, size_t offset) {
  size_t seg_start = 0;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '/') {
      if (i > 0) {
        absl::string_view seg = path.substr(seg_start, i - seg_start);
        if (seg.size() == 1) return {SpiffeIdError::kEmptySegment, offset + i};
        if (IsDotSegment(seg)) return {SpiffeIdError::kDotSegment, offset + seg_start};
      }
      seg_start = i;
      continue;
    }
    if (!(kClasses[static_cast<unsigned char>(c)] & kPathChar)) {
      return {SpiffeIdError::kBadPathChar, offset + i, c};
    }
  }
  if (path.empty()) return {};
  absl::string_view last = path.substr(seg_start);
  if (last.size() == 1) return {SpiffeIdError::kTrailingSlash, offset + seg_start};
  if (IsDotSegment(last)) return {SpiffeIdError::kDotSegment, offset + seg_start};
  return {};
}

Problem CheckId(absl::string_view id, SpiffeIdView* out) {
  if (id.empty()) return {SpiffeIdError::kEmpty};
  if (!absl::StartsWith(id, kScheme)) return {SpiffeIdError::kBadScheme};
  if (id.size() > kMaxSpiffeIdLength) return {SpiffeIdError::kTooLong, id.size()};
  absl::string_view rest = id.substr(kScheme.size());
  size_t slash = rest.find('/');
  absl::string_view td = rest.substr(0, slash);
  absl::string_view path =
      slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash);
  if (Problem p = CheckTrustDomain(td, kScheme.size()); p.error != SpiffeIdError::kNone) return p;
  if (Problem p = CheckPath(path, kScheme.size() + td.size()); p.error != SpiffeIdError::kNone) {
    return p;
  }
  out->trust_domain = td;
  out->path = path;
  return {};
}

// The error for `p` found in `input`; `kind` names what was parsed.
absl::Status ToStatus(const Problem& p, absl::string_view input, absl::string_view kind) {
  std::string what;
  switch (p.error) {
    case SpiffeIdError::kEmpty:
      what = "cannot be empty";
      break;
    case SpiffeIdError::kBadScheme:
      what = "scheme is missing or invalid (must be \"spiffe://\")";
      break;
    case SpiffeIdError::kMissingTrustDomain:
      what = "trust domain is missing";
      break;
    case SpiffeIdError::kBadTrustDomainChar:
      what = absl::StrCat(
          "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and "
          "underscores (",
          ByteName(p.byte), " at offset ", p.offset, ")");
      break;
    case SpiffeIdError::kBadPathChar:
      what = absl::StrCat(
          "path segment characters are limited to letters, numbers, dots, dashes, and "
          "underscores (",
          ByteName(p.byte), " at offset ", p.offset, ")");
      break;
    case SpiffeIdError::kEmptySegment:
      what = absl::StrCat("path cannot contain empty segments (at offset ", p.offset, ")");
      break;
    case SpiffeIdError::kDotSegment:
      what = absl::StrCat("path cannot contain dot segments (at offset ", p.offset, ")");
      break;
    case SpiffeIdError::kTrailingSlash:
      what = "path cannot have a trailing slash";
      break;
    case SpiffeIdError::kTooLong:
      what = absl::StrCat("it is ", p.offset, " bytes long, more than the ", kMaxSpiffeIdLength,
                          " allowed");
      break;
    case SpiffeIdError::kTrustDomainTooLong:
      what = absl::StrCat("trust domain is ", p.offset, " bytes long, more than the ",
                          kMaxTrustDomainLength, " allowed");
      break;
    case SpiffeIdError::kNone:
      return absl::OkStatus();
  }
  return WithDetail(
      absl::InvalidArgumentError(absl::StrCat("invalid ", kind, " ", Quote(input), ": ", what)),
      static_cast<int>(p.error));
}

}  // namespace

absl::Status ValidateSpiffeIdList(const std::vector<std::string>& ids, absl::string_view what) {
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<SpiffeIdView> v = ParseSpiffeIdView(ids[i]);
    if (v.ok()) continue;
    std::string hint;
    if (DetailOf(v.status()) == static_cast<int>(SpiffeIdError::kBadScheme) &&
        ids[i].find("://") == std::string::npos &&
        ValidateSpiffeId(absl::StrCat("spiffe://", ids[i])) == SpiffeIdError::kNone) {
      hint = absl::StrCat(" (a SPIFFE ID starts with \"spiffe://\": did you mean \"spiffe://",
                          ids[i], "\"? Only authz policy principals leave the scheme out)");
    }
    return WithDetail(
        absl::InvalidArgumentError(absl::StrCat(what, "[", i, "]: ", v.status().message(), hint)),
        DetailOf(v.status()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SpiffeId>> ParseSpiffeIdList(const std::vector<std::string>& ids,
                                                        absl::string_view what) {
  if (absl::Status s = ValidateSpiffeIdList(ids, what); !s.ok()) return s;
  std::vector<SpiffeId> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    absl::StatusOr<SpiffeId> parsed = SpiffeId::Parse(id);
    if (!parsed.ok()) return parsed.status();  // not reached: validated above
    out.push_back(*std::move(parsed));
  }
  return out;
}

SpiffeIdError ValidateSpiffeId(absl::string_view id) {
  SpiffeIdView view;
  return CheckId(id, &view).error;
}

absl::StatusOr<SpiffeIdView> ParseSpiffeIdView(absl::string_view id) {
  SpiffeIdView view;
  Problem p = CheckId(id, &view);
  if (p.error != SpiffeIdError::kNone) return ToStatus(p, id, "SPIFFE ID");
  return view;
}

absl::StatusOr<TrustDomain> TrustDomain::Parse(absl::string_view name) {
  if (absl::StrContains(name, ":/")) {
    absl::StatusOr<SpiffeIdView> view = ParseSpiffeIdView(name);
    if (!view.ok()) return view.status();
    return TrustDomain(std::string(view->trust_domain));
  }
  if (Problem p = CheckTrustDomain(name, 0); p.error != SpiffeIdError::kNone) {
    return ToStatus(p, name, "trust domain");
  }
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
    return absl::InvalidArgumentError(
        absl::StrCat("not an Istio identity ", Quote(uri),
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
