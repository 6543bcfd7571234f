// ambient/redirect/config.h: what a pod's (or a node's) redirect rules depend on.
//
// A Config is plain data: which backend renders and applies the rules, whether
// they are the in-pod rules or the node-level (host) rules for kubelet probes,
// IPv6, DNS capture (mesh-wide and per-pod), ingress mode, rerouted virtual
// interfaces and the probe SNAT addresses. Its fields mirror istio-cni's knobs
// one to one; the defaults are istio-cni's production defaults. ParseFlags
// reads the `ambientctl rules` CONFIG flags into a Config; Validate checks one
// built by hand. Neither touches the system.
#ifndef AMBIENT_REDIRECT_CONFIG_H_
#define AMBIENT_REDIRECT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace ambient::redirect {

// The constants istio-cni and ztunnel agree on (istio cni/pkg/config).
inline constexpr uint32_t kInpodMark = 0x539;          // ztunnel's SO_MARK
inline constexpr uint32_t kInpodMask = 0xfff;
inline constexpr uint32_t kInpodTproxyMark = 0x111;    // connmark for replies
inline constexpr uint32_t kInpodTproxyMask = 0xfff;
inline constexpr uint32_t kInpodRestoreMask = 0xffffffff;
inline constexpr uint32_t kRouteTable = 100;
inline constexpr uint32_t kRulePriority = 32764;
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlaintextPort = 15006;
inline constexpr uint16_t kInboundHbonePort = 15008;
inline constexpr uint16_t kDnsCapturePort = 15053;
inline constexpr uint16_t kDnsCtZone = 1;
inline constexpr char kDefaultProbeSnatV4[] = "169.254.7.127";
inline constexpr char kDefaultProbeSnatV6[] = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff";
inline constexpr char kProbeSetV4[] = "istio-inpod-probes-v4";
inline constexpr char kProbeSetV6[] = "istio-inpod-probes-v6";

enum class Backend {
  kIptables,  // iptables-restore payloads (iptables-nft or iptables-legacy)
  kNftables,  // native nftables (inet tables istio-ambient-*)
};

struct Config {
  Backend backend = Backend::kIptables;
  // Node-level rules for kubelet probes instead of the in-pod rules.
  bool host = false;
  // Also emit the IPv6 rules (and the IPv6 policy routing).
  bool ipv6 = false;
  // Mesh-wide DNS capture (istio REDIRECT_DNS, default on).
  bool dns_capture = true;
  // Per-pod override of dns_capture (annotation ambient.istio.io/dns-capture).
  std::optional<bool> pod_dns_capture;
  // Ingress mode (annotation ambient.istio.io/bypass-inbound-capture): no
  // inbound capture.
  bool bypass_inbound = false;
  // Interfaces whose inbound TCP is treated as outbound
  // (annotation istio.io/reroute-virtual-interfaces), in order.
  std::vector<std::string> reroute_interfaces;
  // Source address the node SNATs kubelet probes to, IPv4 and IPv6.
  std::string probe_snat_v4 = kDefaultProbeSnatV4;
  std::string probe_snat_v6 = kDefaultProbeSnatV6;
  // Kubelet's UID, matched by the nftables host rule. When unset, nftables
  // host rules look for a process named kubelet, kubelite or k3s in /proc.
  std::optional<uint32_t> kubelet_uid;

  // EffectiveDnsCapture is the per-pod override if set, else the mesh-wide one.
  bool EffectiveDnsCapture() const { return pod_dns_capture.value_or(dns_capture); }
};

// Validate returns OK when `config` can be rendered: addresses are literal
// IPv4/IPv6 addresses of the right family, interface names are valid Linux
// names (1 to 15 bytes of [A-Za-z0-9_.@:+-], not starting with '-'), and
// there are at most 64 of them. Else InvalidArgument naming the field.
absl::Status Validate(const Config& config);

// ParseFlags reads the `ambientctl rules` CONFIG flags (see DESIGN.md):
// --backend iptables|nftables, --host, --ipv6, --dns-capture on|off,
// --pod-dns-capture on|off, --bypass-inbound, --reroute-interface NAME
// (repeatable), --probe-snat-v4 IP, --probe-snat-v6 IP, --kubelet-uid N.
// Both "--flag value" and "--flag=value" are accepted. Any other argument, a
// missing or malformed value, or a Config that fails Validate gives
// InvalidArgument with a message naming the argument.
absl::StatusOr<Config> ParseFlags(absl::Span<const std::string> args);

// CanonicalAddress returns `text` as inet_ntop spells it, or InvalidArgument
// when it is not a literal address of the family (AF_INET or AF_INET6).
absl::StatusOr<std::string> CanonicalAddress(int family, const std::string& text);

}  // namespace ambient::redirect

#endif  // AMBIENT_REDIRECT_CONFIG_H_
