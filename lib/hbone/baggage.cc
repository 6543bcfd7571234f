#include "ambient/hbone/baggage.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ambient::hbone {

namespace {

constexpr absl::string_view kCluster = "k8s.cluster.name";
constexpr absl::string_view kNamespace = "k8s.namespace.name";
constexpr absl::string_view kService = "service.name";
constexpr absl::string_view kVersion = "service.version";
constexpr absl::string_view kRegion = "cloud.region";
constexpr absl::string_view kZone = "cloud.availability_zone";
constexpr absl::string_view kTypes[] = {"deployment", "cronjob", "pod", "job"};

bool IsKnownType(absl::string_view t) {
  for (absl::string_view k : kTypes) {
    if (k == t) return true;
  }
  return false;
}

// Safe: printable ASCII except the bytes baggage uses or forbids.
bool SafeByte(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != ';' && c != '\\' && c != '%';
}

void AppendMember(std::string* out, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  if (!out->empty()) out->push_back(',');
  absl::StrAppend(out, key, "=");
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : value) {
    if (SafeByte(c)) {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xf]);
    }
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decode percent-decodes `v`; nullopt for a value we do not keep (too
// long, a control byte, or a malformed escape).
std::optional<std::string> Decode(absl::string_view v) {
  if (v.empty()) return std::nullopt;
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (c == '%') {
      if (i + 2 >= v.size()) return std::nullopt;
      int hi = HexDigit(v[i + 1]);
      int lo = HexDigit(v[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (c < 0x20 || c == 0x7f) return std::nullopt;
    out.push_back(static_cast<char>(c));
    if (out.size() > kMaxBaggageValue) return std::nullopt;
  }
  return out;
}

}  // namespace

std::string BuildBaggage(const WorkloadInfo& w) {
  std::string out;
  AppendMember(&out, kCluster, w.cluster);
  AppendMember(&out, kNamespace, w.ns);
  std::string type = IsKnownType(w.workload_type) ? w.workload_type : "deployment";
  AppendMember(&out, absl::StrCat("k8s.", type, ".name"), w.name);
  AppendMember(&out, kService, w.canonical_service);
  AppendMember(&out, kVersion, w.canonical_revision);
  AppendMember(&out, kRegion, w.region);
  AppendMember(&out, kZone, w.zone);
  return out;
}

absl::Status CheckWorkloadInfo(const WorkloadInfo& w) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"name", &w.name},
      {"workload_type", &w.workload_type},
      {"ns", &w.ns},
      {"canonical_service", &w.canonical_service},
      {"canonical_revision", &w.canonical_revision},
      {"cluster", &w.cluster},
      {"region", &w.region},
      {"zone", &w.zone}};
  for (const auto& [what, value] : fields) {
    if (value->size() > kMaxBaggageValue) {
      return absl::InvalidArgumentError(
          absl::StrCat("workload ", what, " is longer than ", kMaxBaggageValue, " bytes"));
    }
    for (char c : *value) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return absl::InvalidArgumentError(
            absl::StrCat("workload ", what, " contains a control character"));
      }
    }
  }
  if (!w.workload_type.empty() && !IsKnownType(w.workload_type)) {
    return absl::InvalidArgumentError(absl::StrCat("workload_type \"", w.workload_type,
                                                   "\" is not deployment, cronjob, pod or job"));
  }
  return absl::OkStatus();
}

absl::StatusOr<WorkloadInfo> ParseBaggage(absl::string_view value) {
  if (value.size() > kMaxBaggageSize) {
    return absl::InvalidArgumentError(absl::StrCat("baggage of ", value.size(),
                                                   " bytes is longer than ", kMaxBaggageSize));
  }
  WorkloadInfo w;
  while (!value.empty()) {
    size_t comma = value.find(',');
    absl::string_view member = value.substr(0, comma);
    value = comma == absl::string_view::npos ? absl::string_view() : value.substr(comma + 1);
    member = member.substr(0, member.find(';'));  // properties are dropped
    size_t eq = member.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view key = absl::StripAsciiWhitespace(member.substr(0, eq));
    std::optional<std::string> v = Decode(absl::StripAsciiWhitespace(member.substr(eq + 1)));
    if (!v) continue;
    if (key == kCluster) {
      w.cluster = std::move(*v);
    } else if (key == kNamespace) {
      w.ns = std::move(*v);
    } else if (key == kService) {
      w.canonical_service = std::move(*v);
    } else if (key == kVersion) {
      w.canonical_revision = std::move(*v);
    } else if (key == kRegion) {
      w.region = std::move(*v);
    } else if (key == kZone) {
      w.zone = std::move(*v);
    } else if (key.size() > 9 && key.substr(0, 4) == "k8s." &&
               key.substr(key.size() - 5) == ".name") {
      absl::string_view type = key.substr(4, key.size() - 9);
      if (IsKnownType(type)) {
        w.name = std::move(*v);
        w.workload_type = std::string(type);
      }
    }
  }
  return w;
}

}  // namespace ambient::hbone
