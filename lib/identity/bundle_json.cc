#include "identity/bundle_json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/json_nesting.h"

namespace ambient::identity::internal {
namespace {

// IsStandardBase64 accepts RFC 4648 section 4 base64 with its padding and
// nothing else (no whitespace, no URL-safe alphabet), as RFC 7517's x5c is;
// the length is checked to be a multiple of 4 before.
bool IsStandardBase64(absl::string_view s) {
  size_t pad = 0;
  while (pad < 2 && pad < s.size() && s[s.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i + pad < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

using Json = nlohmann::json;

// Bundles nest four levels deep (five in a map). Deeper documents are refused
// before any parser sees them, with the error every JSON reader in ambient
// gives (ambient/base/json_nesting.h).
constexpr int kMaxNesting = 32;

// What a document is called in errors.
constexpr char kBundle[] = "bundle JSON";
constexpr char kBundleMap[] = "bundle map JSON";

// Shown is `text` as an error message may quote it: C-escaped, at most 64
// bytes of it (a member name can be as long as the document).
std::string Shown(absl::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() <= kMax) return absl::CHexEscape(text);
  return absl::StrCat(absl::CHexEscape(text.substr(0, kMax)), "...");
}

// DuplicateFinder watches the parser's events and remembers the first member
// name that appears twice in one object (RFC 8259 leaves duplicates to the
// reader; a bundle with two "keys" or a map naming a trust domain twice is
// ambiguous, so it is refused). `map_member` names the member of the
// top-level object whose own members are trust domains, or is empty.
class DuplicateFinder {
 public:
  explicit DuplicateFinder(absl::string_view map_member) : map_member_(map_member) {}

  bool OnEvent(Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start: {
        Frame frame;
        frame.is_object = event == Json::parse_event_t::object_start;
        frame.is_map = frame.is_object && !map_member_.empty() && frames_.size() == 1 &&
                       frames_[0].is_object && frames_[0].last_key == map_member_;
        frames_.push_back(std::move(frame));
        break;
      }
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case Json::parse_event_t::key: {
        if (frames_.empty() || !parsed.is_string()) break;
        Frame& frame = frames_.back();
        frame.last_key = parsed.get_ref<const std::string&>();
        if (!frame.keys.insert(frame.last_key).second && !found_) {
          found_ = true;
          in_map_ = frame.is_map;
          key_ = frame.last_key;
        }
        break;
      }
      case Json::parse_event_t::value:
        break;
    }
    return true;
  }

  // Status is OK, or the error for the first duplicated member: AlreadyExists
  // for a trust domain named twice, InvalidArgument otherwise.
  absl::Status Status(absl::string_view what) const {
    if (!found_) return absl::OkStatus();
    if (in_map_) {
      return absl::AlreadyExistsError(
          absl::StrCat(what, ": trust domain \"", Shown(key_), "\" appears twice"));
    }
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid: member \"", Shown(key_),
                                                   "\" appears twice in one object"));
  }

 private:
  struct Frame {
    bool is_object = false;
    bool is_map = false;
    std::string last_key;
    std::set<std::string> keys;
  };
  std::string map_member_;
  std::vector<Frame> frames_;
  bool found_ = false;
  bool in_map_ = false;
  std::string key_;
};

// ParseErrorText is nlohmann's message without its "[json.exception.x.n] "
// tag and without the "last read: '<token>'" echo of the input (which can be
// megabytes of untrusted bytes); what the parser expected instead is kept.
std::string ParseErrorText(const Json::exception& e) {
  absl::string_view message = e.what();
  if (size_t end = message.find("] "); absl::StartsWith(message, "[") && end != message.npos) {
    message.remove_prefix(end + 2);
  }
  size_t echo = message.find("; last read: '");
  if (echo == message.npos) return std::string(message);
  std::string out(message.substr(0, echo));
  if (size_t expected = message.rfind("'; expected ");
      expected != message.npos && expected > echo) {
    absl::StrAppend(&out, message.substr(expected + 1));
  }
  return out;
}

// Parse reads `json` (strict RFC 8259: UTF-8, no comments, no trailing
// commas, nothing after the value) into `out`, refusing deep nesting and
// duplicated members first. Exceptions stay inside this function.
absl::Status Parse(absl::string_view json, absl::string_view what, absl::string_view map_member,
                   Json& out) {
  if (absl::Status s = CheckJsonNesting(json, kMaxNesting, what); !s.ok()) return s;
  // A raw NUL is never valid JSON (not whitespace; control characters in
  // strings must be escaped), but nlohmann's lexer takes it for the end of
  // the input, which would accept "{...}\0<anything>".
  if (size_t nul = json.find('\0'); nul != json.npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not valid: a NUL byte at offset ", nul));
  }
  DuplicateFinder duplicates(map_member);
  try {
    out = Json::parse(
        json.begin(), json.end(),
        [&duplicates](int, Json::parse_event_t event, Json& parsed) {
          return duplicates.OnEvent(event, parsed);
        },
        /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid: ", ParseErrorText(e)));
  }
  if (absl::Status s = duplicates.Status(what); !s.ok()) return s;
  if (!out.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid: not a JSON object"));
  }
  return absl::OkStatus();
}

const Json* Member(const Json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

// Integer reads a whole number into `out`: a JSON integer, or a number with
// no fraction ("1.0", "1e2"), within [min, max]. null and absent leave `out`
// unset.
template <typename T>
absl::Status Integer(const Json& object, const char* name, std::optional<T>& out) {
  const Json* v = Member(object, name);
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  auto bad = [name] {
    return absl::InvalidArgumentError(
        absl::StrCat(kBundle, " is not valid: \"", name, "\" must be an integer from ",
                     std::numeric_limits<T>::min(), " to ", std::numeric_limits<T>::max()));
  };
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return bad();
    out = static_cast<T>(u);
  } else if (v->is_number_integer()) {
    int64_t i = v->get<int64_t>();
    if (std::numeric_limits<T>::min() == 0 && i < 0) return bad();
    out = static_cast<T>(i);
  } else if (v->is_number_float()) {
    double d = v->get<double>();
    // 2^64 and 2^63 are exact doubles; the ranges below are half-open.
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi =
        std::numeric_limits<T>::min() == 0 ? 18446744073709551616.0 : 9223372036854775808.0;
    if (!std::isfinite(d) || std::trunc(d) != d || d < lo || d >= hi) return bad();
    out = static_cast<T>(d);
  } else {
    return bad();
  }
  return absl::OkStatus();
}

absl::Status KeysToAuthorities(const Json& keys, ParsedBundle& out) {
  if (!keys.is_array()) {
    return absl::InvalidArgumentError("bundle JSON: \"keys\" must be a list");
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const Json& key = keys[i];
    if (!key.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "] is not a JSON object"));
    }
    const Json* use = Member(key, "use");
    // Keys for other uses (jwt-svid, ...) or without a use are ignored.
    if (use == nullptr || !use->is_string() || use->get_ref<const std::string&>() != "x509-svid") {
      continue;
    }
    const Json* x5c = Member(key, "x5c");
    if (x5c == nullptr || x5c->is_null()) continue;
    if (!x5c->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "].x5c must be a list of base64 strings"));
    }
    if (x5c->empty()) continue;  // spec: ignore the entry
    const Json& first = (*x5c)[0];
    if (!first.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "].x5c[0] must be a base64 string"));
    }
    const std::string& b64 = first.get_ref<const std::string&>();
    if (b64.size() % 4 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bundle JSON: keys[", i, "].x5c[0] is not standard base64 (length ", b64.size(), ")"));
    }
    std::string der;
    if (!IsStandardBase64(b64) || !absl::Base64Unescape(b64, &der)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "].x5c[0] is not standard base64"));
    }
    out.x509_authorities.push_back(std::move(der));
  }
  return absl::OkStatus();
}

// BundleFrom reads one parsed bundle object.
absl::StatusOr<ParsedBundle> BundleFrom(const Json& bundle) {
  ParsedBundle out;
  if (absl::Status s = Integer(bundle, "spiffe_sequence", out.sequence); !s.ok()) return s;
  if (absl::Status s = Integer(bundle, "spiffe_refresh_hint", out.refresh_hint); !s.ok()) {
    return s;
  }
  const Json* keys = Member(bundle, "keys");
  if (keys == nullptr || keys->is_null()) {
    return absl::InvalidArgumentError("bundle JSON: \"keys\" is missing");
  }
  if (absl::Status s = KeysToAuthorities(*keys, out); !s.ok()) return s;
  return out;
}

}  // namespace

absl::StatusOr<ParsedBundle> ParseBundleJson(absl::string_view json) {
  Json doc;
  if (absl::Status s = Parse(json, kBundle, "", doc); !s.ok()) return s;
  return BundleFrom(doc);
}

absl::StatusOr<std::vector<std::pair<std::string, ParsedBundle>>> ParseBundleMapJson(
    absl::string_view json) {
  Json doc;
  if (absl::Status s = Parse(json, kBundleMap, "trust_domains", doc); !s.ok()) return s;
  const Json* domains = Member(doc, "trust_domains");
  if (domains == nullptr || domains->is_null()) {
    return absl::InvalidArgumentError("bundle map JSON: \"trust_domains\" is missing");
  }
  if (!domains->is_object()) {
    return absl::InvalidArgumentError("bundle map JSON: \"trust_domains\" must be an object");
  }
  std::vector<std::pair<std::string, ParsedBundle>> out;
  for (const auto& [name, value] : domains->items()) {
    absl::StatusOr<ParsedBundle> parsed =
        value.is_object()
            ? BundleFrom(value)
            : absl::InvalidArgumentError("bundle JSON: the bundle must be a JSON object");
    if (!parsed.ok()) {
      return absl::Status(parsed.status().code(), absl::StrCat("trust domain \"", Shown(name),
                                                               "\": ", parsed.status().message()));
    }
    out.emplace_back(name, *std::move(parsed));
  }
  return out;
}

}  // namespace ambient::identity::internal
