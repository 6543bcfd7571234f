// Privileged: live interception. Two uniquely named namespaces, "node" and
// "pod", joined by a veth pair (198.18.0.1/24 + 2001:db8::1/64 on the node
// side, .2 / ::2 in the pod), the default in-pod rules applied in the pod
// with each backend, then real TCP and UDP traffic, IPv4 and IPv6. Nothing
// leaves the two namespaces; both are deleted when the test ends, also on
// failure.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/probe_set.h"
#include "redirect/exec_in_netns.h"
#include "support/privileged.h"

namespace ambient::redirect {
namespace {

using netns::Netns;
using netns::UniqueFd;

constexpr int kSoOriginalDst = 80;  // SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST

struct Addr {
  int family;
  std::string ip;
  uint16_t port;
};

sockaddr_storage ToSockaddr(const Addr& a, socklen_t* len) {
  sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (a.family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    inet_pton(AF_INET, a.ip.c_str(), &sin->sin_addr);
    *len = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a.port);
    inet_pton(AF_INET6, a.ip.c_str(), &sin6->sin6_addr);
    *len = sizeof(*sin6);
  }
  return ss;
}

std::string ToString(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", ntohs(sin->sin_port));
  }
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
  return absl::StrCat("[", buf, "]:", ntohs(sin6->sin6_port));
}

// Sh runs a command in the test's own namespace (ip -n NAME ... reaches
// into the named ones) and expects success.
void Sh(std::vector<std::string> argv) {
  absl::StatusOr<std::string> path = internal::FindProgram(argv[0]);
  ASSERT_TRUE(path.ok()) << argv[0];
  argv[0] = *path;
  absl::StatusOr<internal::ExecResult> r = internal::ExecIn(nullptr, argv, "");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << ": " << r->err;
}

// NamedNetns creates a uniquely named namespace and always deletes it.
class NamedNetns {
 public:
  explicit NamedNetns(const std::string& role) {
    static int counter = 0;
    name_ = absl::StrCat("ambient-test-", getpid(), "-rdx-", role, "-", counter++);
    Sh({"ip", "netns", "add", name_});
    absl::StatusOr<Netns> ns = Netns::OpenByName(name_);
    EXPECT_TRUE(ns.ok()) << ns.status();
    if (ns.ok()) ns_ = *std::move(ns);
  }
  ~NamedNetns() {
    internal::ExecIn(nullptr, {"/usr/sbin/ip", "netns", "del", name_}, "").IgnoreError();
  }
  const std::string& name() const { return name_; }
  const Netns& ns() const { return ns_; }

 private:
  std::string name_;
  Netns ns_;
};

UniqueFd Socket(const Netns& ns, int family, int type) {
  absl::StatusOr<UniqueFd> fd = netns::SocketIn(ns, family, type, 0);
  EXPECT_TRUE(fd.ok()) << fd.status();
  return fd.ok() ? *std::move(fd) : UniqueFd();
}

UniqueFd Listen(const Netns& ns, int family, uint16_t port, int type = SOCK_STREAM) {
  UniqueFd fd = Socket(ns, family, type);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  socklen_t len;
  sockaddr_storage ss = ToSockaddr({family, family == AF_INET ? "0.0.0.0" : "::", port}, &len);
  EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(listen(fd.get(), 16), 0);
  }
  fcntl(fd.get(), F_SETFL, O_NONBLOCK);
  return fd;
}

bool Readable(int fd, int timeout_ms) {
  pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

// Connect opens a TCP connection from `ns` to `to` (with SO_MARK `mark` when
// non-zero, from source address `from` when not empty) and returns the
// client socket.
UniqueFd Connect(const Netns& ns, const Addr& to, uint32_t mark = 0, const std::string& from = "") {
  UniqueFd fd = Socket(ns, to.family, SOCK_STREAM);
  if (mark != 0) {
    EXPECT_EQ(setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
  }
  if (!from.empty()) {
    socklen_t blen;
    sockaddr_storage src = ToSockaddr({to.family, from, 0}, &blen);
    EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&src), blen), 0) << strerror(errno);
  }
  timeval tv = {3, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  socklen_t len;
  sockaddr_storage ss = ToSockaddr(to, &len);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0)
      << "connect to " << to.ip << ":" << to.port << ": " << strerror(errno);
  return fd;
}

// AcceptOn accepts one connection on `listener` within a second and returns
// its original destination (SO_ORIGINAL_DST), or "" when none arrived.
std::string AcceptOn(int listener, int family, UniqueFd* accepted = nullptr) {
  if (!Readable(listener, 1000)) return "";
  UniqueFd conn(accept(listener, nullptr, nullptr));
  if (!conn.valid()) return "";
  sockaddr_storage orig;
  memset(&orig, 0, sizeof(orig));
  socklen_t len = sizeof(orig);
  int level = family == AF_INET ? SOL_IP : SOL_IPV6;
  std::string out = getsockopt(conn.get(), level, kSoOriginalDst, &orig, &len) == 0
                        ? ToString(orig)
                        : std::string("accepted (no original destination)");
  if (accepted != nullptr) *accepted = std::move(conn);
  return out;
}

struct Family {
  int af;
  std::string node_ip, pod_ip;
  std::string Bracket(const std::string& ip) const { return af == AF_INET ? ip : "[" + ip + "]"; }
};

class Interception : public ::testing::TestWithParam<std::tuple<Backend, int>> {
 protected:
  void SetUp() override {
    AMBIENT_REQUIRE_ROOT();
    family_ = std::get<1>(GetParam()) == AF_INET ? Family{AF_INET, "198.18.0.1", "198.18.0.2"}
                                                 : Family{AF_INET6, "2001:db8::1", "2001:db8::2"};
    node_ = std::make_unique<NamedNetns>("node");
    pod_ = std::make_unique<NamedNetns>("pod");
    const std::string n = node_->name(), p = pod_->name();
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", n, "link", "add", "veth-node", "type", "veth", "peer", "name",
                                 "veth-pod", "netns", p}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", n, "addr", "add", "198.18.0.1/24", "dev", "veth-node"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", n, "addr", "add", "2001:db8::1/64", "dev", "veth-node", "nodad"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", p, "addr", "add", "198.18.0.2/24", "dev", "veth-pod"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", p, "addr", "add", "2001:db8::2/64", "dev", "veth-pod", "nodad"}));
    for (const std::string& ns : {n, p}) {
      ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", ns, "link", "set", "lo", "up"}));
    }
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", n, "link", "set", "veth-node", "up"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", p, "link", "set", "veth-pod", "up"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", p, "route", "add", "default", "via", "198.18.0.1"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", p, "-6", "route", "add", "default", "via", "2001:db8::1"}));
    // Kubelet probes arrive SNATed to the probe address; the test uses one
    // from the test ranges, put on the node side of the veth.
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", n, "addr", "add", "198.18.1.127/32", "dev", "veth-node"}));
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", n, "addr", "add", "2001:db8::7127/128", "dev", "veth-node", "nodad",
                                "preferred_lft", "0"}));  // never picked as a source by itself
    ASSERT_NO_FATAL_FAILURE(Sh({"ip", "-n", p, "route", "add", "198.18.1.127/32", "dev", "veth-pod"}));
    Config config;
    config.backend = std::get<0>(GetParam());
    config.ipv6 = true;
    config.probe_snat_v4 = "198.18.1.127";
    config.probe_snat_v6 = "2001:db8::7127";
    ApplyOptions options;
    options.iptables_variant = IptablesVariant::kNft;
    absl::Status s = Apply(config, pod_->ns(), options);
    ASSERT_TRUE(s.ok()) << s;
  }

  const Netns& pod() { return pod_->ns(); }
  const Netns& node() { return node_->ns(); }

  Family family_;
  std::unique_ptr<NamedNetns> node_, pod_;
};

TEST_P(Interception, OutboundTcpLandsOn15001WithOriginalDestination) {
  UniqueFd l15001 = Listen(pod(), family_.af, 15001);
  UniqueFd client = Connect(pod(), {family_.af, family_.node_ip, 9090});
  EXPECT_EQ(AcceptOn(l15001.get(), family_.af), family_.Bracket(family_.node_ip) + ":9090");
}

TEST_P(Interception, InboundTcpToAppPortLandsOn15006) {
  UniqueFd l15006 = Listen(pod(), family_.af, 15006);
  UniqueFd client = Connect(node(), {family_.af, family_.pod_ip, 8080});
  EXPECT_EQ(AcceptOn(l15006.get(), family_.af), family_.Bracket(family_.pod_ip) + ":8080");
}

TEST_P(Interception, InboundTcpTo15008IsNotRedirected) {
  UniqueFd l15006 = Listen(pod(), family_.af, 15006);
  UniqueFd l15008 = Listen(pod(), family_.af, 15008);
  UniqueFd client = Connect(node(), {family_.af, family_.pod_ip, 15008});
  UniqueFd conn;
  EXPECT_NE(AcceptOn(l15008.get(), family_.af, &conn), "");
  EXPECT_FALSE(Readable(l15006.get(), 100)) << "15008 traffic reached 15006";
}

TEST_P(Interception, MarkedSocketBypassesCapture) {
  UniqueFd l15001 = Listen(pod(), family_.af, 15001);
  UniqueFd upstream = Listen(node(), family_.af, 9090);
  UniqueFd client = Connect(pod(), {family_.af, family_.node_ip, 9090}, /*mark=*/0x539);
  UniqueFd conn;
  EXPECT_NE(AcceptOn(upstream.get(), family_.af, &conn), "") << "marked connection did not reach the node";
  EXPECT_FALSE(Readable(l15001.get(), 100)) << "marked connection was captured";
  // And an unmarked one is captured.
  UniqueFd plain = Connect(pod(), {family_.af, family_.node_ip, 9090});
  EXPECT_NE(AcceptOn(l15001.get(), family_.af), "");
}

TEST_P(Interception, UdpDnsLandsOn15053) {
  UniqueFd dns = Listen(pod(), family_.af, 15053, SOCK_DGRAM);
  UniqueFd client = Socket(pod(), family_.af, SOCK_DGRAM);
  socklen_t len;
  sockaddr_storage to = ToSockaddr({family_.af, family_.node_ip, 53}, &len);
  const char query[] = "dns?";
  ASSERT_EQ(sendto(client.get(), query, sizeof(query), 0, reinterpret_cast<sockaddr*>(&to), len),
            static_cast<ssize_t>(sizeof(query)));
  ASSERT_TRUE(Readable(dns.get(), 1000)) << "the DNS query did not reach 15053";
  char buf[64];
  EXPECT_EQ(recv(dns.get(), buf, sizeof(buf), 0), static_cast<ssize_t>(sizeof(query)));
  EXPECT_STREQ(buf, "dns?");
}

TEST_P(Interception, TcpDnsLandsOn15053) {
  UniqueFd dns = Listen(pod(), family_.af, 15053);
  UniqueFd client = Connect(pod(), {family_.af, family_.node_ip, 53});
  EXPECT_EQ(AcceptOn(dns.get(), family_.af), family_.Bracket(family_.node_ip) + ":53");
}

TEST_P(Interception, ProbeFromSnatAddressReachesAppDirectly) {
  const std::string probe = family_.af == AF_INET ? "198.18.1.127" : "2001:db8::7127";
  UniqueFd l15006 = Listen(pod(), family_.af, 15006);
  UniqueFd app = Listen(pod(), family_.af, 8080);
  UniqueFd client = Connect(node(), {family_.af, family_.pod_ip, 8080}, 0, probe);
  UniqueFd conn;
  EXPECT_NE(AcceptOn(app.get(), family_.af, &conn), "") << "the probe did not reach the app";
  EXPECT_FALSE(Readable(l15006.get(), 100)) << "the probe was captured";
}

// The whole kubelet-probe path: host rules in the node namespace SNAT the
// node's own connections to a pod only while the pod's address is in the
// probe set; with the SNAT the in-pod rules let the probe through to the
// app, without it the connection is captured like any inbound one.
TEST_P(Interception, HostProbeReachesAppOnlyWhileInProbeSet) {
  const std::string probe = family_.af == AF_INET ? "198.18.1.127" : "2001:db8::7127";
  Config host;
  host.backend = std::get<0>(GetParam());
  host.host = true;
  host.ipv6 = true;
  host.probe_snat_v4 = "198.18.1.127";
  host.probe_snat_v6 = "2001:db8::7127";
  host.kubelet_uid = geteuid();  // nftables matches the prober's UID: this test's
  ApplyOptions options;
  options.iptables_variant = IptablesVariant::kNft;
  ASSERT_TRUE(Apply(host, node(), options).ok());
  UniqueFd l15006 = Listen(pod(), family_.af, 15006);
  UniqueFd app = Listen(pod(), family_.af, 8080);
  auto probe_lands_on = [&]() -> std::string {
    UniqueFd client = Connect(node(), {family_.af, family_.pod_ip, 8080});
    pollfd both[2] = {{app.get(), POLLIN, 0}, {l15006.get(), POLLIN, 0}};
    if (poll(both, 2, 1000) <= 0) return "nowhere";
    UniqueFd conn;
    if (both[0].revents != 0 && !AcceptOn(app.get(), family_.af, &conn).empty()) {
      sockaddr_storage peer;
      socklen_t len = sizeof(peer);
      getpeername(conn.get(), reinterpret_cast<sockaddr*>(&peer), &len);
      std::string from = ToString(peer);
      return "app from " + from.substr(0, from.rfind(':'));
    }
    if (!AcceptOn(l15006.get(), family_.af).empty()) return "captured";
    return "nowhere";
  };
  EXPECT_EQ(probe_lands_on(), "captured");
  ASSERT_TRUE(AddProbeAddress(host, node(), family_.pod_ip, "pod-uid-1").ok());
  EXPECT_EQ(probe_lands_on(), "app from " + family_.Bracket(probe));
  ASSERT_TRUE(RemoveProbeAddress(host, node(), family_.pod_ip, "pod-uid-1").ok());
  EXPECT_EQ(probe_lands_on(), "captured");
}

TEST_P(Interception, LoopbackAndOwnAddressAreNotRedirected) {
  UniqueFd l15001 = Listen(pod(), family_.af, 15001);
  UniqueFd app = Listen(pod(), family_.af, 8080);
  for (const std::string& to : {std::string(family_.af == AF_INET ? "127.0.0.1" : "::1"), family_.pod_ip}) {
    SCOPED_TRACE(to);
    UniqueFd client = Connect(pod(), {family_.af, to, 8080});
    UniqueFd conn;
    EXPECT_NE(AcceptOn(app.get(), family_.af, &conn), "");
  }
  EXPECT_FALSE(Readable(l15001.get(), 100)) << "local traffic was captured";
}

// ztunnel's path to the app: a transparent socket carrying ztunnel's mark,
// bound to the real client address (the node's), connects to the app in the
// pod. The app's replies go to a non-local address; only the connmark rules
// plus the fwmark 0x111 rule and table 100 bring them back to the socket.
TEST_P(Interception, MarkedTransparentConnectionGetsRepliesViaPolicyRouting) {
  UniqueFd app = Listen(pod(), family_.af, 8080);
  UniqueFd fd = Socket(pod(), family_.af, SOCK_STREAM);
  int one = 1;
  uint32_t mark = 0x539;
  if (family_.af == AF_INET) {
    ASSERT_EQ(setsockopt(fd.get(), SOL_IP, IP_TRANSPARENT, &one, sizeof(one)), 0);
  } else {
    ASSERT_EQ(setsockopt(fd.get(), SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)), 0);
  }
  ASSERT_EQ(setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
  socklen_t len;
  sockaddr_storage src = ToSockaddr({family_.af, family_.node_ip, 0}, &len);
  ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&src), len), 0) << strerror(errno);
  timeval tv = {3, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_storage dst = ToSockaddr({family_.af, family_.pod_ip, 8080}, &len);
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), len), 0)
      << "the app's replies did not come back: " << strerror(errno);
  ASSERT_TRUE(Readable(app.get(), 1000));
  sockaddr_storage peer;
  socklen_t plen = sizeof(peer);
  UniqueFd conn(accept(app.get(), reinterpret_cast<sockaddr*>(&peer), &plen));
  ASSERT_TRUE(conn.valid());
  std::string seen = ToString(peer);
  EXPECT_EQ(seen.rfind(family_.Bracket(family_.node_ip) + ":", 0), 0u) << seen;

  // Without the fwmark rule the same connection cannot complete.
  Sh({"ip", "-n", pod_->name(), family_.af == AF_INET ? "-4" : "-6", "rule", "del", "fwmark",
      "0x111/0xfff", "lookup", "100"});
  UniqueFd again = Socket(pod(), family_.af, SOCK_STREAM);
  setsockopt(again.get(), family_.af == AF_INET ? SOL_IP : SOL_IPV6,
             family_.af == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one, sizeof(one));
  setsockopt(again.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  src = ToSockaddr({family_.af, family_.node_ip, 0}, &len);
  ASSERT_EQ(bind(again.get(), reinterpret_cast<sockaddr*>(&src), len), 0);
  timeval short_tv = {0, 700000};
  setsockopt(again.get(), SOL_SOCKET, SO_SNDTIMEO, &short_tv, sizeof(short_tv));
  EXPECT_NE(connect(again.get(), reinterpret_cast<sockaddr*>(&dst), len), 0)
      << "connected without policy routing: the test proves nothing";
}

INSTANTIATE_TEST_SUITE_P(
    All, Interception,
    ::testing::Combine(::testing::Values(Backend::kIptables, Backend::kNftables),
                       ::testing::Values(AF_INET, AF_INET6)),
    [](const ::testing::TestParamInfo<std::tuple<Backend, int>>& info) {
      return absl::StrCat(std::get<0>(info.param) == Backend::kNftables ? "nftables" : "iptables",
                          std::get<1>(info.param) == AF_INET ? "_ipv4" : "_ipv6");
    });

}  // namespace
}  // namespace ambient::redirect
