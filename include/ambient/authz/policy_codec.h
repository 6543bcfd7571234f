// ambient/authz/policy_codec.h: decoding Istio Authorization resources.
//
// The wire form is istio.security.Authorization as ztunnel receives it over
// xDS (same field numbers and enum values), in binary protobuf or in the
// protobuf JSON mapping (field names in lowerCamelCase or as in the .proto,
// enums by name, IP addresses as base64 bytes plus a prefix length), e.g.
//
//   {"name": "deny-b", "namespace": "ns1", "scope": "NAMESPACE", "action": "DENY",
//    "rules": [{"clauses": [{"matches": [{"principals": [{"exact": "td/ns/b/sa/b"}]}]}]}]}
//
// Decoding is stricter than ztunnel where ztunnel silently drops what it
// cannot read (which can widen a positive match): unknown JSON fields, a
// string match with no kind, a bad address or prefix length, a port above
// 65535 or an unknown enum value is an InvalidArgument error naming the
// place (e.g. "rules[0].clauses[1].matches[0].source_ips[2]: ...").
#ifndef AMBIENT_AUTHZ_POLICY_CODEC_H_
#define AMBIENT_AUTHZ_POLICY_CODEC_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/authz/policy.h"

namespace ambient::authz {

// DecodePolicyProto decodes one binary istio.security.Authorization.
absl::StatusOr<Policy> DecodePolicyProto(absl::string_view bytes);

// DecodePolicyJson decodes one Authorization in the protobuf JSON mapping.
absl::StatusOr<Policy> DecodePolicyJson(absl::string_view json);

// DecodePolicyListJson decodes {"policies": [Authorization, ...]}; it also
// accepts a bare JSON array of Authorizations or a single Authorization.
absl::StatusOr<std::vector<Policy>> DecodePolicyListJson(absl::string_view json);

}  // namespace ambient::authz

#endif  // AMBIENT_AUTHZ_POLICY_CODEC_H_
