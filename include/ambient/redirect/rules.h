// ambient/redirect/rules.h: istio-cni's redirect rules as data.
//
// BuildIptables and BuildNftables turn a Config into the exact rule sets
// istio-cni programs, in istio's emission order, as typed values: tables,
// chains and rules made of match terms and one target. The renderers
// (render.h) spell them as iptables-restore payloads and nft scripts; the
// native nftables applier encodes the same values as netlink expressions, and
// the drift check compares what is installed against them. Each backend has
// its own term order because istio's two backends spell the same rule with
// terms in different orders, and the bytes must match.
#ifndef AMBIENT_REDIRECT_RULES_H_
#define AMBIENT_REDIRECT_RULES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ambient/redirect/config.h"

namespace ambient::redirect {

enum class IpFamily { kIPv4, kIPv6 };

// ---- iptables ------------------------------------------------------------

struct IptTerm {
  enum class Kind {
    kSource,        // [!] -s ADDR
    kDestination,   // [!] -d ADDR
    kInInterface,   // [!] -i NAME
    kOutInterface,  // [!] -o NAME
    kProtocol,      // -p tcp|udp [-m tcp|udp]   (text = "tcp"/"udp"; with_module)
    kDport,         // [-m tcp|udp] [!] --dport N (with_module adds -m <proto>)
    kSport,         // [-m tcp|udp] [!] --sport N
    kMark,          // -m mark [!] --mark V/M
    kConnmark,      // -m connmark [!] --mark V/M
    kSocketExists,  // -m owner --socket-exists
    kMatchSetDst,   // -m set --match-set NAME dst
  };
  Kind kind = Kind::kSource;
  bool negate = false;
  std::string text;        // address, interface, protocol or set name
  uint32_t value = 0;      // port or mark value
  uint32_t mask = 0;       // mark mask
  bool with_module = false;
  std::string module;      // for ports: the protocol module ("tcp"/"udp")
};

struct IptTarget {
  enum class Kind {
    kJump,             // -j CHAIN
    kAccept,           // -j ACCEPT
    kReturn,           // -j RETURN
    kRedirect,         // -j REDIRECT --to-ports N (or --to-port N)
    kConnmarkSet,      // -j CONNMARK --set-xmark V/M
    kConnmarkRestore,  // -j CONNMARK --restore-mark --nfmask M --ctmask M
    kCtZone,           // -j CT --zone N
    kSnat,             // -j SNAT --to-source ADDR
  };
  Kind kind = Kind::kAccept;
  std::string text;  // chain or address
  uint32_t value = 0;
  uint32_t mask = 0;
  bool singular_port = false;  // "--to-port" (istio's UDP DNS rule)
};

struct IptRule {
  std::string table;  // "mangle", "nat", "raw"
  std::string chain;
  int insert_position = 0;  // 0: -A CHAIN; n > 0: -I CHAIN n
  std::vector<IptTerm> terms;
  IptTarget target;
};

// One family's rules, in istio's insertion order across all tables.
struct IptRuleset {
  IpFamily family = IpFamily::kIPv4;
  std::vector<IptRule> rules;
};

// IsBuiltinChain reports whether `chain` is one of iptables' built-in chains.
bool IsBuiltinChain(const std::string& chain);

// BuildIptables returns the IPv4 ruleset and, with config.ipv6, the IPv6 one.
// InvalidArgument if Validate(config) fails.
absl::StatusOr<std::vector<IptRuleset>> BuildIptables(const Config& config);

// ---- nftables ------------------------------------------------------------

struct NftTerm {
  enum class Kind {
    kL4Proto,    // meta l4proto tcp|udp              (value = IPPROTO_*)
    kAddr,       // ip|ip6 saddr|daddr [!=] ADDR[/len] (family, is_source, text)
    kAddrInSet,  // ip|ip6 daddr @SET                  (family, text = set)
    kPort,       // tcp|udp dport|sport [!=] N         (value = port, proto)
    kMark,       // meta mark & / mark and ... [!=|==] (value, mask, style)
    kCtMark,     // ct mark and M == V
    kIfname,     // iifname|oifname [!=] NAME          (is_source = input)
    kSkuid,      // skuid N
  };
  // How istio's script spells a packet-mark match; the bytecode is the same.
  enum class MarkStyle {
    kMarkAnd,         // "mark and 0xfff != 0x539"
    kMarkAndWide,     // "mark and 0xfff  != 0x539" (two spaces)
    kMetaMarkAmp,     // "meta mark & 0xfff == 0x539"
    kMetaMarkAnd,     // "meta mark and 0xfff == 0x539"
  };
  Kind kind = Kind::kL4Proto;
  bool negate = false;
  IpFamily family = IpFamily::kIPv4;
  bool is_source = false;
  std::string text;
  bool with_prefix = false;  // spell "/32" or "/128" after the address
  uint32_t value = 0;
  uint32_t mask = 0;
  uint8_t proto = 0;  // IPPROTO_TCP / IPPROTO_UDP for kPort and kL4Proto
  MarkStyle mark_style = MarkStyle::kMarkAnd;
};

struct NftStatement {
  enum class Kind {
    kJump,            // jump CHAIN
    kAccept,          // accept
    kReturn,          // return
    kRedirect,        // redirect to :PORT
    kCtMarkSet,       // ct mark set ct mark & AND |  OR
    kMarkFromCtMark,  // meta mark set ct mark
    kCtZoneSet,       // ct zone set N
    kSnat,            // snat to ADDR (family)
  };
  Kind kind = Kind::kAccept;
  std::string text;  // chain or address
  uint32_t value = 0;
  uint32_t mask = 0;
  IpFamily family = IpFamily::kIPv4;
};

struct NftRule {
  std::string chain;
  std::vector<NftTerm> terms;
  bool counter = true;
  NftStatement statement;
};

struct NftChain {
  std::string name;
  bool base = false;
  std::string type;  // base chains: "nat", "filter", "route"
  std::string hook;  // base chains: "prerouting", "output", "postrouting"
  int priority = 0;
};

// A named address set (host rules: the probe sets). istio creates the sets
// apart from its rule transaction, so the script renderer does not print them;
// the native applier creates them (keeping existing elements) in its batch.
struct NftSet {
  std::string name;
  IpFamily family = IpFamily::kIPv4;
};

struct NftTable {
  std::string name;  // always family inet
  std::vector<NftChain> chains;
  std::vector<NftSet> sets;
  std::vector<NftRule> rules;
};

// The nftables transaction, in order: nat, mangle, then raw (DNS only); for
// host rules just the nat table.
struct NftRuleset {
  std::vector<NftTable> tables;
};

inline constexpr char kNftNatTable[] = "istio-ambient-nat";
inline constexpr char kNftMangleTable[] = "istio-ambient-mangle";
inline constexpr char kNftRawTable[] = "istio-ambient-raw";

// BuildNftables returns the nftables ruleset for `config`. Host rules need
// config.kubelet_uid (or a kubelet found in /proc); otherwise NotFound.
// InvalidArgument if Validate(config) fails.
absl::StatusOr<NftRuleset> BuildNftables(const Config& config);

// DetectKubeletUid scans `proc_root` (normally "/proc") for a process whose
// comm is kubelet, kubelite or k3s and returns the owner UID of that process.
// NotFound when there is none.
absl::StatusOr<uint32_t> DetectKubeletUid(const std::string& proc_root = "/proc");

}  // namespace ambient::redirect

#endif  // AMBIENT_REDIRECT_RULES_H_
