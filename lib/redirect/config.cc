#include "ambient/redirect/config.h"

#include <netinet/in.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ambient/base/address.h"

namespace ambient::redirect {
namespace {

constexpr size_t kMaxInterfaces = 64;

bool ValidInterfaceName(absl::string_view name) {
  if (name.empty() || name.size() > 15 || name[0] == '-') return false;
  if (name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c == '@' || c == ':' || c == '+';
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<bool> ParseOnOff(absl::string_view flag, absl::string_view value) {
  if (value == "on" || value == "true") return true;
  if (value == "off" || value == "false") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": expected on or off, got '", value, "'"));
}

}  // namespace

absl::StatusOr<std::string> CanonicalAddress(int family, const std::string& text) {
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  if (!ip.ok() || ip->family() != family) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not an ", family == AF_INET ? "IPv4" : "IPv6", " address"));
  }
  return ip->ToString();
}

absl::Status Validate(const Config& config) {
  if (auto v4 = CanonicalAddress(AF_INET, config.probe_snat_v4); !v4.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("probe SNAT v4: ", v4.status().message()));
  }
  if (auto v6 = CanonicalAddress(AF_INET6, config.probe_snat_v6); !v6.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("probe SNAT v6: ", v6.status().message()));
  }
  if (config.reroute_interfaces.size() > kMaxInterfaces) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxInterfaces, " reroute interfaces are supported"));
  }
  for (const std::string& name : config.reroute_interfaces) {
    if (!ValidInterfaceName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("reroute interface: '", absl::CEscape(name), "' is not a valid interface name"));
    }
  }
  if (config.backend != Backend::kIptables && config.backend != Backend::kNftables) {
    return absl::InvalidArgumentError("unknown backend");
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseFlags(absl::Span<const std::string> args) {
  Config config;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    absl::string_view flag = arg;
    std::string value;
    bool has_inline = false;
    if (absl::StartsWith(arg, "--")) {
      size_t eq = arg.find('=');
      if (eq != absl::string_view::npos) {
        flag = arg.substr(0, eq);
        value = std::string(arg.substr(eq + 1));
        has_inline = true;
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", absl::CEscape(arg), "'"));
    }
    auto takes_value = [&](absl::string_view f) -> absl::Status {
      if (has_inline) return absl::OkStatus();
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(f, " needs a value"));
      }
      value = args[++i];
      return absl::OkStatus();
    };
    auto no_value = [&](absl::string_view f) -> absl::Status {
      if (has_inline) return absl::InvalidArgumentError(absl::StrCat(f, " takes no value"));
      return absl::OkStatus();
    };
    if (flag == "--backend") {
      if (auto s = takes_value(flag); !s.ok()) return s;
      if (value == "iptables") {
        config.backend = Backend::kIptables;
      } else if (value == "nftables") {
        config.backend = Backend::kNftables;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--backend: expected iptables or nftables, got '", absl::CEscape(value), "'"));
      }
    } else if (flag == "--host") {
      if (auto s = no_value(flag); !s.ok()) return s;
      config.host = true;
    } else if (flag == "--ipv6") {
      if (auto s = no_value(flag); !s.ok()) return s;
      config.ipv6 = true;
    } else if (flag == "--bypass-inbound") {
      if (auto s = no_value(flag); !s.ok()) return s;
      config.bypass_inbound = true;
    } else if (flag == "--dns-capture" || flag == "--pod-dns-capture") {
      if (auto s = takes_value(flag); !s.ok()) return s;
      absl::StatusOr<bool> on = ParseOnOff(flag, absl::CEscape(value));
      if (!on.ok()) return on.status();
      if (flag == "--dns-capture") {
        config.dns_capture = *on;
      } else {
        config.pod_dns_capture = *on;
      }
    } else if (flag == "--reroute-interface") {
      if (auto s = takes_value(flag); !s.ok()) return s;
      if (!ValidInterfaceName(value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--reroute-interface: '", absl::CEscape(value), "' is not a valid interface name"));
      }
      config.reroute_interfaces.push_back(value);
    } else if (flag == "--probe-snat-v4" || flag == "--probe-snat-v6") {
      if (auto s = takes_value(flag); !s.ok()) return s;
      int family = flag == "--probe-snat-v4" ? AF_INET : AF_INET6;
      absl::StatusOr<std::string> addr = CanonicalAddress(family, value);
      if (!addr.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": '", absl::CEscape(value), "' is not an ",
                         family == AF_INET ? "IPv4" : "IPv6", " address"));
      }
      (family == AF_INET ? config.probe_snat_v4 : config.probe_snat_v6) = *addr;
    } else if (flag == "--kubelet-uid") {
      if (auto s = takes_value(flag); !s.ok()) return s;
      uint32_t uid = 0;
      if (value.empty() || value[0] == '+' || value[0] == '-' ||
          !absl::SimpleAtoi(value, &uid) || uid == UINT32_MAX) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--kubelet-uid: '", absl::CEscape(value), "' is not a user ID"));
      }
      config.kubelet_uid = uid;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", absl::CEscape(flag), "'"));
    }
  }
  if (absl::Status s = Validate(config); !s.ok()) return s;
  return config;
}

}  // namespace ambient::redirect
