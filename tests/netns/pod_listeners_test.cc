#include "ambient/netns/pod_listeners.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "ambient/netns/pod_sockets.h"
#include "netns/test_util.h"
#include "support/privileged.h"

namespace ambient::netns {
namespace {

using testing::FdLeakCheck;
using testing::NetnsOfSocket;

int IntOption(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, level, name, &v, &len) != 0) return -1;
  return v;
}

// FreshPod is an unnamed netns with loopback up.
Netns FreshPod() {
  absl::StatusOr<Netns> ns = Netns::CreateUnnamed();
  if (!ns.ok()) return Netns();
  if (!BringUpLoopback(*ns).ok()) return Netns();
  return std::move(*ns);
}

// ConnectFrom connects a blocking TCP socket made in `ns` to `addr`; returns
// 0 or errno.
int ConnectFrom(const Netns& ns, const SocketAddress& addr) {
  absl::StatusOr<UniqueFd> s = SocketIn(ns, addr.family(), SOCK_STREAM, 0);
  if (!s.ok()) return -1;
  return connect(s->get(), addr.sockaddr_ptr(), addr.size()) == 0 ? 0 : errno;
}

TEST(PodListeners, OpensTheIstioSetInsideThePod) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  Netns pod = FreshPod();
  Netns elsewhere = FreshPod();
  ASSERT_TRUE(pod.valid() && elsewhere.valid());
  absl::StatusOr<PodListenerSet> set = PodListenerSet::Open(pod);
  ASSERT_TRUE(set.ok()) << set.status();

  // 3 wildcard TCP + DNS UDP/TCP on 127.0.0.1 and ::1.
  EXPECT_EQ(set->listeners().size(), 7u);
  struct {
    ListenerKind kind;
    uint16_t port;
  } want[] = {{ListenerKind::kOutbound, 15001},
              {ListenerKind::kInboundPlaintext, 15006},
              {ListenerKind::kInboundHbone, 15008}};
  for (const auto& w : want) {
    const PodListener* l = set->Find(w.kind);
    ASSERT_NE(l, nullptr) << ListenerKindName(w.kind);
    EXPECT_EQ(l->local.ToString(), absl::StrCat("[::]:", w.port));
    EXPECT_TRUE(l->transparent);
    EXPECT_EQ(IntOption(l->fd.get(), SOL_IP, IP_TRANSPARENT), 1);
    EXPECT_EQ(IntOption(l->fd.get(), IPPROTO_IPV6, IPV6_V6ONLY), 0);
  }
  ASSERT_NE(set->Find(ListenerKind::kDnsUdp, AF_INET), nullptr);
  EXPECT_EQ(set->Find(ListenerKind::kDnsUdp, AF_INET)->local.ToString(), "127.0.0.1:15053");
  ASSERT_NE(set->Find(ListenerKind::kDnsTcp, AF_INET6), nullptr);
  EXPECT_EQ(set->Find(ListenerKind::kDnsTcp, AF_INET6)->local.ToString(), "[::1]:15053");
  for (const PodListener& l : set->listeners()) {
    SCOPED_TRACE(l.local.ToString());
    EXPECT_EQ(NetnsOfSocket(l.fd.get()), pod.id());
    EXPECT_EQ(static_cast<uint32_t>(IntOption(l.fd.get(), SOL_SOCKET, SO_MARK)), 0x539u);
    EXPECT_EQ(IntOption(l.fd.get(), SOL_SOCKET, SO_REUSEPORT), 1);
  }

  // Reachable from inside the pod, over v4 and v6; absent from another netns.
  for (uint16_t port : {15001, 15006, 15008}) {
    EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET, port)), 0) << port;
    EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET6, port)), 0) << port;
    EXPECT_EQ(ConnectFrom(elsewhere, SocketAddress::Loopback(AF_INET, port)), ECONNREFUSED);
  }
  EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET, 15053)), 0);

  // Closing the set takes the ports away.
  *set = PodListenerSet();
  EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET, 15001)), ECONNREFUSED);
}

TEST(PodListeners, ReusePortLetsASecondProxyBindAndItsAbsenceFailsCleanly) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  Netns pod = FreshPod();
  ASSERT_TRUE(pod.valid());
  absl::StatusOr<PodListenerSet> old_proxy = PodListenerSet::Open(pod);
  ASSERT_TRUE(old_proxy.ok()) << old_proxy.status();
  absl::StatusOr<PodListenerSet> new_proxy = PodListenerSet::Open(pod);
  ASSERT_TRUE(new_proxy.ok()) << new_proxy.status();

  PodListenerOptions no_reuse;
  no_reuse.reuse_port = false;
  absl::StatusOr<PodListenerSet> clash = PodListenerSet::Open(pod, no_reuse);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists) << clash.status();
  EXPECT_NE(clash.status().message().find("15001"), std::string::npos) << clash.status();
}

TEST(PodListeners, AllOrNothingWhenAPortIsTakenAndDnsOffSkipsIt) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  Netns pod = FreshPod();
  ASSERT_TRUE(pod.valid());
  // Something in the pod already holds 15008 (without SO_REUSEPORT).
  absl::StatusOr<UniqueFd> squatter = SocketIn(pod, AF_INET6, SOCK_STREAM, 0);
  ASSERT_TRUE(squatter.ok());
  SocketAddress any = SocketAddress::Any(AF_INET6, 15008);
  ASSERT_EQ(bind(squatter->get(), any.sockaddr_ptr(), any.size()), 0);
  ASSERT_EQ(listen(squatter->get(), 1), 0);
  absl::StatusOr<PodListenerSet> set = PodListenerSet::Open(pod);
  EXPECT_EQ(set.status().code(), absl::StatusCode::kAlreadyExists) << set.status();
  EXPECT_NE(set.status().message().find("[::]:15008"), std::string::npos) << set.status();
  // 15001 and 15006 were opened first and must be gone again.
  EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET, 15001)), ECONNREFUSED);
  EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET, 15006)), ECONNREFUSED);
  squatter->reset();

  PodListenerOptions no_dns;
  no_dns.dns = false;
  no_dns.mark = 0;
  no_dns.transparent = Transparency::kOff;
  set = PodListenerSet::Open(pod, no_dns);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->listeners().size(), 3u);
  EXPECT_EQ(set->Find(ListenerKind::kDnsUdp), nullptr);
  EXPECT_FALSE(set->Find(ListenerKind::kOutbound)->transparent);
  EXPECT_EQ(IntOption(set->Find(ListenerKind::kOutbound)->fd.get(), SOL_SOCKET, SO_MARK), 0);
}

TEST(PodListeners, PodWithoutIpv6OnLoopbackGetsIpv4DnsOnly) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  Netns pod = FreshPod();
  ASSERT_TRUE(pod.valid());
  absl::Status off = RunIn(pod, [] {
    // /proc/sys/net belongs to the netns of whoever opens it: this pod's.
    FILE* f = std::fopen("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w");
    if (f == nullptr) return absl::UnavailableError("cannot open disable_ipv6");
    std::fputs("1\n", f);
    return std::fclose(f) == 0 ? absl::OkStatus() : absl::UnavailableError("write failed");
  });
  ASSERT_TRUE(off.ok()) << off;
  absl::StatusOr<PodListenerSet> set = PodListenerSet::Open(pod);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->listeners().size(), 5u);
  EXPECT_NE(set->Find(ListenerKind::kDnsUdp, AF_INET), nullptr);
  EXPECT_EQ(set->Find(ListenerKind::kDnsUdp, AF_INET6), nullptr);
  EXPECT_EQ(ConnectFrom(pod, SocketAddress::Loopback(AF_INET, 15001)), 0);
}

// RedirectPort80 adds a REDIRECT like istio-cni's inside `pod` only (`tool`
// is iptables or ip6tables): TCP to port 80 -> 15001.
absl::Status RedirectPort80(const Netns& pod, const std::string& tool) {
  return RunIn(pod, [&] {
    int rc = std::system(
        (tool + " -w -t nat -A OUTPUT -p tcp --dport 80 -j REDIRECT --to-ports 15001").c_str());
    return rc == 0 ? absl::OkStatus() : absl::UnavailableError(tool + " failed");
  });
}

// ExpectOriginalDestination connects from inside `pod` to `target`, accepts
// that connection on `listen_fd` and expects OriginalDestination of the
// accepted socket to be `target` (redirected: the original destination;
// direct: the local address).
void ExpectOriginalDestination(const Netns& pod, int listen_fd, const std::string& target) {
  SCOPED_TRACE(target);
  absl::StatusOr<SocketAddress> to = SocketAddress::Parse(target);
  ASSERT_TRUE(to.ok());
  absl::StatusOr<UniqueFd> client = SocketIn(pod, to->family(), SOCK_STREAM, 0);
  ASSERT_TRUE(client.ok());
  ASSERT_EQ(connect(client->get(), to->sockaddr_ptr(), to->size()), 0) << strerror(errno);
  pollfd p{listen_fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  UniqueFd accepted(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted.valid());
  absl::StatusOr<SocketAddress> orig = OriginalDestination(accepted.get());
  ASSERT_TRUE(orig.ok()) << orig.status();
  EXPECT_EQ(orig->ToString(), target);
}

TEST(PodSockets, OriginalDestinationThroughRedirectAndFallback) {
  AMBIENT_REQUIRE_ROOT();
  Netns pod = FreshPod();
  ASSERT_TRUE(pod.valid());
  absl::StatusOr<PodListenerSet> set = PodListenerSet::Open(pod);
  ASSERT_TRUE(set.ok()) << set.status();
  absl::Status rule = RedirectPort80(pod, "iptables");
  ASSERT_TRUE(rule.ok()) << rule;

  int listen_fd = set->Find(ListenerKind::kOutbound)->fd.get();
  for (const char* target : {"127.0.0.2:80", "127.0.0.1:15001"}) {
    ASSERT_NO_FATAL_FAILURE(ExpectOriginalDestination(pod, listen_fd, target));
  }
  // IPv6: SO_ORIGINAL_DST does not know the connection, IP6T_SO_ORIGINAL_DST does.
  rule = RedirectPort80(pod, "ip6tables");
  ASSERT_TRUE(rule.ok()) << rule;
  ASSERT_NO_FATAL_FAILURE(ExpectOriginalDestination(pod, listen_fd, "[::1]:80"));
  UniqueFd unix_sock(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_EQ(OriginalDestination(unix_sock.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PodSockets, UpstreamSocketsCarryTheMarkAndSpoofTheClient) {
  AMBIENT_REQUIRE_ROOT();
  Netns pod = FreshPod();
  ASSERT_TRUE(pod.valid());
  NetnsSocketFactory factory(std::move(pod));
  absl::StatusOr<UniqueFd> out = OutboundUpstreamSocket(factory, AF_INET6);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(IntOption(out->get(), SOL_SOCKET, SO_MARK), 0x539);
  EXPECT_EQ(NetnsOfSocket(out->get()), factory.netns().id());

  absl::StatusOr<SocketAddress> client = SocketAddress::Parse("198.18.0.5:41000");
  absl::StatusOr<SocketAddress> app = SocketAddress::Parse("198.18.0.10:9080");
  ASSERT_TRUE(client.ok() && app.ok());
  bool spoofed = false;
  absl::StatusOr<UniqueFd> in = InboundUpstreamSocket(factory, *client, *app, kInpodMark, &spoofed);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_TRUE(spoofed);
  EXPECT_EQ(IntOption(in->get(), SOL_IP, IP_TRANSPARENT), 1);
  EXPECT_EQ(IntOption(in->get(), SOL_IP, IP_FREEBIND), 1);
  EXPECT_EQ(IntOption(in->get(), SOL_SOCKET, SO_MARK), 0x539);
  SocketAddress bound;
  socklen_t len = sizeof(sockaddr_storage);
  ASSERT_EQ(getsockname(in->get(), bound.mutable_sockaddr(), &len), 0);
  EXPECT_EQ(bound.IpString(), "198.18.0.5");

  // Same IP on both ends: no spoofing.
  absl::StatusOr<SocketAddress> self = SocketAddress::Parse("198.18.0.10:5000");
  in = InboundUpstreamSocket(factory, *self, *app, kInpodMark, &spoofed);
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(spoofed);
  EXPECT_EQ(IntOption(in->get(), SOL_IP, IP_TRANSPARENT), 0);
  // IPv6 client, v4-mapped destination (dual-stack listener): families differ -> plain.
  absl::StatusOr<SocketAddress> v6client = SocketAddress::Parse("[2001:db8::5]:1");
  absl::StatusOr<SocketAddress> mapped = SocketAddress::Parse("[::ffff:198.18.0.10]:9080");
  in = InboundUpstreamSocket(factory, *v6client, *mapped, kInpodMark, &spoofed);
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(spoofed);
  EXPECT_EQ(InboundUpstreamSocket(factory, SocketAddress(), *app).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SocketAddress, ParsesAndPrints) {
  for (const char* ok : {"1.2.3.4:80", "[2001:db8::1]:443", "0.0.0.0:0", "[::]:65535"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(ok);
    ASSERT_TRUE(a.ok()) << ok << ": " << a.status();
    EXPECT_EQ(a->ToString(), ok);
  }
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "::1:80",
                          "[1.2.3.4]:80", "[::1]80", "host:80", "1.2.3.4:8a", "[::1]:"}) {
    EXPECT_EQ(SocketAddress::Parse(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  absl::StatusOr<SocketAddress> m = SocketAddress::Parse("[::ffff:10.1.2.3]:7");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->IsV4Mapped());
  EXPECT_EQ(m->Unmapped().ToString(), "10.1.2.3:7");
}

}  // namespace
}  // namespace ambient::netns
