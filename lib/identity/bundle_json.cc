#include "identity/bundle_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>
#include <openssl/base64.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "ambient/base/json_nesting.h"

namespace ambient::identity::internal {
namespace {

namespace pb = google::protobuf;

// protobuf's JSON converter looks well-known types up under this prefix.
constexpr char kUrlPrefix[] = "type.googleapis.com";

// The schema of the documents, as a FileDescriptorProto in text form.
// Bundle: spiffe_sequence (1), spiffe_refresh_hint (2), keys (3, a JSON list).
// BundleMap: trust_domains (1, map<string, Bundle>).
// MapPresence: trust_domains (1, any JSON value), to see whether the member
// is present at all (an empty map and a missing one look alike otherwise).
constexpr char kSchema[] = R"pb(
  name: "ambient/identity/internal/bundle_json.proto"
  package: "ambient.identity.internal"
  dependency: "google/protobuf/struct.proto"
  syntax: "proto2"
  message_type {
    name: "Bundle"
    field { name: "spiffe_sequence" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT64 json_name: "spiffeSequence" }
    field { name: "spiffe_refresh_hint" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "spiffeRefreshHint" }
    field { name: "keys" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".google.protobuf.Value" json_name: "keys" }
  }
  message_type {
    name: "BundleMap"
    field { name: "trust_domains" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".ambient.identity.internal.BundleMap.TrustDomainsEntry" json_name: "trustDomains" }
    nested_type {
      name: "TrustDomainsEntry"
      field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "key" }
      field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".ambient.identity.internal.Bundle" json_name: "value" }
      options { map_entry: true }
    }
  }
  message_type {
    name: "MapPresence"
    field { name: "trust_domains" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".google.protobuf.Value" json_name: "trustDomains" }
  }
)pb";

struct Schema {
  std::unique_ptr<pb::DescriptorPool> pool;
  std::unique_ptr<pb::util::TypeResolver> resolver;
};

const Schema* GetSchema() {
  // Built once; intentionally never destroyed (no non-trivial destructor at exit).
  static const Schema* const schema = []() -> const Schema* {
    // Make sure struct.proto is in the generated pool (it is linked in).
    pb::Value::descriptor();
    auto* s = new Schema;
    s->pool = std::make_unique<pb::DescriptorPool>(pb::DescriptorPool::generated_pool());
    pb::FileDescriptorProto file;
    if (!pb::TextFormat::ParseFromString(kSchema, &file) || s->pool->BuildFile(file) == nullptr) {
      return nullptr;
    }
    s->resolver.reset(pb::util::NewTypeResolverForDescriptorPool(kUrlPrefix, s->pool.get()));
    return s;
  }();
  return schema;
}

// Bundles nest four levels deep (five in a map). protobuf's JSON converter
// takes time quadratic in the nesting depth, so deeper documents are refused
// before they reach it (CheckJsonNesting counts brackets outside strings; the
// document is still parsed by protobuf).
constexpr int kMaxNesting = 32;

absl::StatusOr<std::string> JsonToBinary(absl::string_view json, absl::string_view type,
                                         absl::string_view what) {
  if (absl::Status s = CheckJsonNesting(json, kMaxNesting, what); !s.ok()) return s;
  const Schema* schema = GetSchema();
  if (schema == nullptr) return absl::InternalError("bundle JSON schema failed to build");
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  std::string binary;
  pb::util::Status status = pb::util::JsonToBinaryString(
      schema->resolver.get(), absl::StrCat(kUrlPrefix, "/ambient.identity.internal.", type),
      pb::StringPiece(json.data(), json.size()), &binary, options);
  if (!status.ok()) {
    std::string message(status.message());
    if (message.find("Repeated map key") != std::string::npos) {
      return absl::AlreadyExistsError(absl::StrCat(what, ": ", message));
    }
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid: ", message));
  }
  return binary;
}

const pb::Value* Field(const pb::Struct& s, const char* name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? nullptr : &it->second;
}

absl::Status KeysToAuthorities(const pb::Value& keys, ParsedBundle& out) {
  if (keys.kind_case() != pb::Value::kListValue) {
    return absl::InvalidArgumentError("bundle JSON: \"keys\" must be a list");
  }
  const auto& list = keys.list_value().values();
  for (int i = 0; i < list.size(); ++i) {
    if (list[i].kind_case() != pb::Value::kStructValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "] is not a JSON object"));
    }
    const pb::Struct& key = list[i].struct_value();
    const pb::Value* use = Field(key, "use");
    // Keys for other uses (jwt-svid, ...) or without a use are ignored.
    if (use == nullptr || use->kind_case() != pb::Value::kStringValue ||
        use->string_value() != "x509-svid") {
      continue;
    }
    const pb::Value* x5c = Field(key, "x5c");
    if (x5c == nullptr || x5c->kind_case() == pb::Value::kNullValue) continue;
    if (x5c->kind_case() != pb::Value::kListValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "].x5c must be a list of base64 strings"));
    }
    if (x5c->list_value().values_size() == 0) continue;  // spec: ignore the entry
    const pb::Value& first = x5c->list_value().values(0);
    if (first.kind_case() != pb::Value::kStringValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "].x5c[0] must be a base64 string"));
    }
    const std::string& b64 = first.string_value();
    size_t max_len = 0;
    if (!EVP_DecodedLength(&max_len, b64.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bundle JSON: keys[", i, "].x5c[0] is not standard base64 (length ", b64.size(), ")"));
    }
    std::string der(max_len, '\0');
    size_t der_len = 0;
    if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(der.data()), &der_len, max_len,
                          reinterpret_cast<const uint8_t*>(b64.data()), b64.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("bundle JSON: keys[", i, "].x5c[0] is not standard base64"));
    }
    der.resize(der_len);
    out.x509_authorities.push_back(std::move(der));
  }
  return absl::OkStatus();
}

// Decodes the binary form of Bundle.
absl::StatusOr<ParsedBundle> DecodeBundle(const std::string& binary) {
  ParsedBundle out;
  bool have_keys = false;
  pb::Value keys;
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(binary.data()),
                              static_cast<int>(binary.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    uint64_t v = 0;
    std::string bytes;
    switch (tag) {
      case (1 << 3) | 0:
        if (!in.ReadVarint64(&v)) return absl::InternalError("bundle JSON: bad sequence");
        out.sequence = v;
        break;
      case (2 << 3) | 0:
        if (!in.ReadVarint64(&v)) return absl::InternalError("bundle JSON: bad refresh hint");
        out.refresh_hint = static_cast<int64_t>(v);
        break;
      case (3 << 3) | 2: {
        uint32_t len = 0;
        if (!in.ReadVarint32(&len) || !in.ReadString(&bytes, static_cast<int>(len)) ||
            !keys.ParseFromString(bytes)) {
          return absl::InvalidArgumentError("bundle JSON: \"keys\" could not be decoded");
        }
        have_keys = true;
        break;
      }
      default:
        return absl::InternalError("bundle JSON: unexpected field");
    }
  }
  if (!have_keys || keys.kind_case() == pb::Value::kNullValue ||
      keys.kind_case() == pb::Value::KIND_NOT_SET) {
    return absl::InvalidArgumentError("bundle JSON: \"keys\" is missing");
  }
  if (absl::Status s = KeysToAuthorities(keys, out); !s.ok()) return s;
  return out;
}

}  // namespace

absl::StatusOr<ParsedBundle> ParseBundleJson(absl::string_view json) {
  absl::StatusOr<std::string> binary = JsonToBinary(json, "Bundle", "bundle JSON");
  if (!binary.ok()) return binary.status();
  return DecodeBundle(*binary);
}

absl::StatusOr<std::vector<std::pair<std::string, ParsedBundle>>> ParseBundleMapJson(
    absl::string_view json) {
  absl::StatusOr<std::string> presence = JsonToBinary(json, "MapPresence", "bundle map JSON");
  if (!presence.ok()) return presence.status();
  {
    pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(presence->data()),
                                static_cast<int>(presence->size()));
    pb::Value value;
    bool present = false;
    for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
      uint32_t len = 0;
      std::string bytes;
      if (tag != ((1 << 3) | 2) || !in.ReadVarint32(&len) ||
          !in.ReadString(&bytes, static_cast<int>(len)) || !value.ParseFromString(bytes)) {
        return absl::InternalError("bundle map JSON: unexpected encoding");
      }
      present = true;
    }
    if (!present || value.kind_case() == pb::Value::kNullValue) {
      return absl::InvalidArgumentError("bundle map JSON: \"trust_domains\" is missing");
    }
    if (value.kind_case() != pb::Value::kStructValue) {
      return absl::InvalidArgumentError("bundle map JSON: \"trust_domains\" must be an object");
    }
  }
  absl::StatusOr<std::string> binary = JsonToBinary(json, "BundleMap", "bundle map JSON");
  if (!binary.ok()) return binary.status();
  std::vector<std::pair<std::string, ParsedBundle>> out;
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(binary->data()),
                              static_cast<int>(binary->size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    uint32_t len = 0;
    std::string entry;
    if (tag != ((1 << 3) | 2) || !in.ReadVarint32(&len) ||
        !in.ReadString(&entry, static_cast<int>(len))) {
      return absl::InternalError("bundle map JSON: unexpected encoding");
    }
    pb::io::CodedInputStream ein(reinterpret_cast<const uint8_t*>(entry.data()),
                                 static_cast<int>(entry.size()));
    std::string name;
    std::string bundle;
    for (uint32_t etag = ein.ReadTag(); etag != 0; etag = ein.ReadTag()) {
      uint32_t elen = 0;
      std::string* dst = etag == ((1 << 3) | 2) ? &name : etag == ((2 << 3) | 2) ? &bundle : nullptr;
      if (dst == nullptr || !ein.ReadVarint32(&elen) ||
          !ein.ReadString(dst, static_cast<int>(elen))) {
        return absl::InternalError("bundle map JSON: unexpected entry encoding");
      }
    }
    absl::StatusOr<ParsedBundle> parsed = DecodeBundle(bundle);
    if (!parsed.ok()) {
      return absl::Status(parsed.status().code(),
                          absl::StrCat("trust domain \"", name, "\": ", parsed.status().message()));
    }
    out.emplace_back(std::move(name), *std::move(parsed));
  }
  return out;
}

}  // namespace ambient::identity::internal
