#include "ambient/authz/policy_codec.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <string>

#include <google/protobuf/stubs/logging.h>
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/json_nesting.h"
#include "ambient/base/status.h"
#include "authorization.pb.h"

namespace ambient::authz {
namespace {

namespace wire = ::ambient::wire::istio::security;
using Where = std::string;

absl::Status At(const Where& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status ConvertStrings(const google::protobuf::RepeatedPtrField<wire::StringMatch>& in,
                            const Where& where, std::vector<StringMatch>* out) {
  for (int i = 0; i < in.size(); ++i) {
    const wire::StringMatch& m = in.Get(i);
    switch (m.match_type_case()) {
      case wire::StringMatch::kExact:
        out->push_back(StringMatch::Exact(m.exact()));
        break;
      case wire::StringMatch::kPrefix:
        out->push_back(StringMatch::Prefix(m.prefix()));
        break;
      case wire::StringMatch::kSuffix:
        out->push_back(StringMatch::Suffix(m.suffix()));
        break;
      case wire::StringMatch::kPresence:
        out->push_back(StringMatch::Presence());
        break;
      default:
        return At(absl::StrCat(where, "[", i, "]"),
                  "string match has none of exact, prefix, suffix, presence");
    }
  }
  return absl::OkStatus();
}

absl::Status ConvertPrefixes(const google::protobuf::RepeatedPtrField<wire::Address>& in,
                             const Where& where, std::vector<IpPrefix>* out) {
  for (int i = 0; i < in.size(); ++i) {
    auto p = IpPrefix::FromBytes(in.Get(i).address(), in.Get(i).length());
    if (!p.ok()) return At(absl::StrCat(where, "[", i, "]"), p.status().message());
    out->push_back(*p);
  }
  return absl::OkStatus();
}

absl::Status ConvertPorts(const google::protobuf::RepeatedField<uint32_t>& in, const Where& where,
                          std::vector<uint16_t>* out) {
  for (int i = 0; i < in.size(); ++i) {
    if (in.Get(i) > 65535) {
      return At(absl::StrCat(where, "[", i, "]"), absl::StrCat("port ", in.Get(i), " > 65535"));
    }
    out->push_back(static_cast<uint16_t>(in.Get(i)));
  }
  return absl::OkStatus();
}

void ConvertAccounts(const google::protobuf::RepeatedPtrField<wire::ServiceAccountMatch>& in,
                     std::vector<ServiceAccountMatch>* out) {
  for (const auto& sa : in) out->push_back({sa.namespace_(), sa.serviceaccount()});
}

absl::Status ConvertMatch(const wire::Match& in, const Where& w, Match* out) {
  absl::Status s;
  if (!(s = ConvertStrings(in.namespaces(), w + ".namespaces", &out->namespaces)).ok()) return s;
  if (!(s = ConvertStrings(in.not_namespaces(), w + ".not_namespaces", &out->not_namespaces)).ok())
    return s;
  if (!(s = ConvertStrings(in.principals(), w + ".principals", &out->principals)).ok()) return s;
  if (!(s = ConvertStrings(in.not_principals(), w + ".not_principals", &out->not_principals)).ok())
    return s;
  if (!(s = ConvertPrefixes(in.source_ips(), w + ".source_ips", &out->source_ips)).ok()) return s;
  if (!(s = ConvertPrefixes(in.not_source_ips(), w + ".not_source_ips", &out->not_source_ips)).ok())
    return s;
  if (!(s = ConvertPrefixes(in.destination_ips(), w + ".destination_ips", &out->destination_ips))
           .ok())
    return s;
  if (!(s = ConvertPrefixes(in.not_destination_ips(), w + ".not_destination_ips",
                            &out->not_destination_ips))
           .ok())
    return s;
  if (!(s = ConvertPorts(in.destination_ports(), w + ".destination_ports", &out->destination_ports))
           .ok())
    return s;
  if (!(s = ConvertPorts(in.not_destination_ports(), w + ".not_destination_ports",
                         &out->not_destination_ports))
           .ok())
    return s;
  ConvertAccounts(in.service_accounts(), &out->service_accounts);
  ConvertAccounts(in.not_service_accounts(), &out->not_service_accounts);
  return absl::OkStatus();
}

absl::StatusOr<Policy> Convert(const wire::Authorization& in) {
  Policy p;
  p.name = in.name();
  p.ns = in.namespace_();
  p.dry_run = in.dry_run();
  switch (in.scope()) {
    case wire::GLOBAL:
      p.scope = Scope::kGlobal;
      break;
    case wire::NAMESPACE:
      p.scope = Scope::kNamespace;
      break;
    case wire::WORKLOAD_SELECTOR:
      p.scope = Scope::kWorkloadSelector;
      break;
    default:
      return At("scope", absl::StrCat("unknown scope ", in.scope()));
  }
  switch (in.action()) {
    case wire::ALLOW:
      p.action = Action::kAllow;
      break;
    case wire::DENY:
      p.action = Action::kDeny;
      break;
    default:
      return At("action", absl::StrCat("unknown action ", in.action()));
  }
  p.rules.resize(in.rules_size());
  for (int r = 0; r < in.rules_size(); ++r) {
    const wire::Rule& rule = in.rules(r);
    p.rules[r].clauses.resize(rule.clauses_size());
    for (int c = 0; c < rule.clauses_size(); ++c) {
      const wire::Clause& clause = rule.clauses(c);
      auto& matches = p.rules[r].clauses[c].matches;
      matches.resize(clause.matches_size());
      for (int m = 0; m < clause.matches_size(); ++m) {
        absl::Status s = ConvertMatch(
            clause.matches(m), absl::StrCat("rules[", r, "].clauses[", c, "].matches[", m, "]"),
            &matches[m]);
        if (!s.ok()) return s;
      }
    }
  }
  return p;
}

// Policies nest about a dozen levels; protobuf's JSON converter is quadratic
// in depth, so deeper input is refused before it gets there.
constexpr int kMaxJsonNesting = 32;

template <typename Message>
absl::Status ParseJson(absl::string_view json, Message* msg) {
  if (absl::Status s = CheckJsonNesting(json, kMaxJsonNesting, "policy JSON"); !s.ok()) return s;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  // Not UTF-8 where the schema says string: the parse fails, and protobuf
  // would also log it to the host's stderr; the library prints nothing.
  google::protobuf::LogSilencer quiet;
  auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), msg, options);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid policy JSON: ", std::string(s.message().data(), s.message().size())));
  }
  return absl::OkStatus();
}

// IsPolicyList reports whether `json` is an object with a top-level "policies" member.
bool IsPolicyList(absl::string_view json) {
  google::protobuf::Struct top;
  if (!ParseJson(json, &top).ok()) return false;
  return top.fields().contains("policies");
}

}  // namespace

absl::StatusOr<Policy> DecodePolicyProto(absl::string_view bytes) {
  // Not UTF-8 where the schema says string: the parse fails, and protobuf
  // would also log it to the host's stderr; the library prints nothing.
  google::protobuf::LogSilencer quiet;
  wire::Authorization msg;
  if (!msg.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("invalid Authorization protobuf");
  }
  return Convert(msg);
}

absl::StatusOr<Policy> DecodePolicyJson(absl::string_view json) {
  wire::Authorization msg;
  if (absl::Status s = ParseJson(json, &msg); !s.ok()) return s;
  return Convert(msg);
}

absl::StatusOr<std::vector<Policy>> DecodePolicyListJson(absl::string_view json) {
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(json);
  wire::AuthorizationList list;
  if (!trimmed.empty() && trimmed.front() == '[') {
    // A bare array: wrap it so the JSON parser sees an AuthorizationList.
    if (absl::Status s = ParseJson(absl::StrCat("{\"policies\":", json, "}"), &list); !s.ok())
      return s;
  } else if (IsPolicyList(json)) {
    if (absl::Status s = ParseJson(json, &list); !s.ok()) return s;
  } else {
    auto one = DecodePolicyJson(json);
    if (!one.ok()) return one.status();
    return std::vector<Policy>{std::move(*one)};
  }
  std::vector<Policy> out;
  out.reserve(list.policies_size());
  for (int i = 0; i < list.policies_size(); ++i) {
    auto p = Convert(list.policies(i));
    if (!p.ok()) return Prefixed(absl::StrCat("policies[", i, "]"), p.status());
    out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace ambient::authz
