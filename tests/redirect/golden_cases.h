// The 14 istio golden cases (cni/pkg/{iptables,nftables}/common_test.go) as
// ambientctl CONFIG flags, shared by the render and apply tests.
#ifndef AMBIENT_TESTS_REDIRECT_GOLDEN_CASES_H_
#define AMBIENT_TESTS_REDIRECT_GOLDEN_CASES_H_

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ambient::redirect::testing {

struct GoldenCase {
  std::string name;               // file stem, e.g. "default_ipv6"
  std::vector<std::string> flags; // without --backend
  bool host = false;
};

// The in-pod goldens use this v6 probe SNAT test value; so do the nft host goldens.
inline constexpr char kGoldenV6[] = "e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164";

inline std::vector<GoldenCase> GoldenCases(bool nftables) {
  std::vector<GoldenCase> base = {
      {"default", {}},
      {"ingress", {"--dns-capture", "off", "--bypass-inbound"}},
      {"virtual_interfaces",
       {"--dns-capture", "off", "--reroute-interface", "fake1s0f0", "--reroute-interface",
        "fake1s0f1"}},
      {"ingress_and_virtual_interfaces",
       {"--dns-capture", "off", "--bypass-inbound", "--reroute-interface", "fake1s0f0",
        "--reroute-interface", "fake1s0f1"}},
      {"dns_pod_enabled_and_off_globally", {"--dns-capture", "off", "--pod-dns-capture", "on"}},
      {"dns_pod_disabled_and_on_globally", {"--dns-capture", "on", "--pod-dns-capture", "off"}},
  };
  std::vector<GoldenCase> out;
  for (const GoldenCase& c : base) {
    GoldenCase v4 = c;
    v4.flags.insert(v4.flags.end(), {"--probe-snat-v4", "169.254.7.127", "--probe-snat-v6", kGoldenV6});
    out.push_back(v4);
    GoldenCase v6 = v4;
    v6.name += "_ipv6";
    v6.flags.push_back("--ipv6");
    out.push_back(v6);
  }
  GoldenCase host{"hostprobe", {"--host"}, true};
  if (nftables) {
    host.flags.insert(host.flags.end(), {"--kubelet-uid", "1000", "--probe-snat-v6", kGoldenV6});
  } else {
    host.flags.insert(host.flags.end(),
                      {"--probe-snat-v6", "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"});
  }
  out.push_back(host);
  GoldenCase host6 = host;
  host6.name += "_ipv6";
  host6.flags.push_back("--ipv6");
  out.push_back(host6);
  return out;
}

inline std::string GoldenPath(const GoldenCase& c, bool nftables) {
  return std::string(AMBIENT_GOLDEN_DIR) + "/" + (nftables ? "nft/" : "") +
         c.name + ".golden";
}

inline bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// GoldenPayload returns the golden's restore payload (iptables: without the
// two recorded "iptables-save" / "ip6tables-save" lines).
inline bool GoldenPayload(const GoldenCase& c, bool nftables, std::string* out) {
  std::string text;
  if (!ReadFile(GoldenPath(c, nftables), &text)) return false;
  if (!nftables) {
    const std::string header = "iptables-save\nip6tables-save\n";
    if (text.compare(0, header.size(), header) != 0) return false;
    text = text.substr(header.size());
  }
  *out = text;
  return true;
}

}  // namespace ambient::redirect::testing

#endif  // AMBIENT_TESTS_REDIRECT_GOLDEN_CASES_H_
