// The DNS proxy server (ambient/dns/server.h) on loopback: dig as the pod's
// client, dnsmasq as the upstream resolver, the server on an event loop
// thread as the node proxy runs it.
#include "ambient/dns/server.h"

#include <arpa/inet.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "support/process.h"

namespace ambient::dns {
namespace {

using ambient::SocketAddress;
using runtime::EventLoop;
using test_support::RunResult;

bool NeedTool(const char* path) {
  if (access(path, X_OK) == 0) return true;
  const char* req = std::getenv("AMBIENT_REQUIRE_PRIVILEGED");
  if (req != nullptr && std::string(req) == "1") {
    ADD_FAILURE() << path << " is missing (scripts/install-deps.sh installs it)";
  }
  return false;
}

int BoundUdp(int* port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// FreePort returns a loopback port that is free for both UDP and TCP right
// now (dnsmasq binds both; a UDP-only check let it collide with another
// test's TCP socket and fail to start).
int FreePort() {
  for (;;) {
    int port = 0;
    int udp = BoundUdp(&port);
    int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool both = bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(tcp);
    close(udp);
    if (both) return port;
  }
}

SocketAddress Loopback(int port) {
  return *ambient::SocketAddress::Parse(absl::StrCat("127.0.0.1:", port));
}

std::string BuildQuery(const std::string& name, uint16_t id) {
  std::string q;
  q.push_back(static_cast<char>(id >> 8));
  q.push_back(static_cast<char>(id & 0xff));
  q.append("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    q.push_back(static_cast<char>(label.size()));
    q.append(label.data(), label.size());
  }
  q.append("\x00\x00\x01\x00\x01", 5);
  return q;
}

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!NeedTool("/usr/sbin/dnsmasq") || !NeedTool("/usr/bin/dig")) {
      GTEST_SKIP() << "dnsmasq or dig missing";
    }
    Service svc;
    svc.name = "reviews";
    svc.ns = "default";
    svc.hostname = "reviews.default.svc.cluster.local";
    svc.vips = {*runtime::ParseNetworkAddress("198.19.0.10"),
                *runtime::ParseNetworkAddress("2001:db8:ffff::10")};
    svc.ports = {{9080, 9080}};
    ASSERT_TRUE(dir_.UpsertService(svc).ok());
    StartDnsmasq();
    auto loop = EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
  }

  void TearDown() override {
    if (thread_.joinable()) {
      OnLoop([this] { server_.reset(); });
      loop_->Stop();
      thread_.join();
    }
    server_.reset();
  }

  using Service = runtime::Service;

  // StartDnsmasq runs dnsmasq on a free port; a port taken between the
  // check and dnsmasq's bind makes it exit, and it is tried again.
  void StartDnsmasq() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (TryDnsmasq()) return;
    }
    FAIL() << "dnsmasq did not come up (last port " << upstream_port_ << ")";
  }
  bool TryDnsmasq() {
    upstream_port_ = FreePort();
    std::string big(200, 'x');
    passwd* pw = getpwuid(getuid());
    group* gr = getgrgid(getgid());
    dnsmasq_ = test_support::Child::Spawn(
        {"/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
         "--conf-file=/dev/null", "--pid-file=", "--listen-address=127.0.0.1", "--bind-interfaces",
         absl::StrCat("--port=", upstream_port_), absl::StrCat("--user=", pw->pw_name),
         absl::StrCat("--group=", gr->gr_name), "--host-record=outside.test,192.0.2.7",
         absl::StrCat("--txt-record=big.test,", big + "1", ",", big + "2", ",", big + "3")});
    if (!dnsmasq_.started()) return false;
    for (int i = 0; i < 50; ++i) {
      RunResult r =
          test_support::Run({"/usr/bin/dig", "@127.0.0.1", "-p", std::to_string(upstream_port_),
                             "+short", "+tries=1", "+time=1", "outside.test"});
      if (absl::StrContains(r.out, "192.0.2.7")) return true;
      if (dnsmasq_.Exited()) return false;  // e.g. the port was taken meanwhile
      usleep(100 * 1000);
    }
    return false;
  }

  // Serve starts the server on loopback and the loop thread.
  void Serve(DnsServerOptions o) {
    o.directory = &dir_;
    o.metrics = &metrics_;
    o.pod.ns = "default";
    if (o.upstreams.empty()) o.upstreams = {Loopback(upstream_port_)};
    // A port free for UDP may be taken for TCP by another test running in
    // parallel: try another one then.
    int udp = -1;
    absl::StatusOr<int> tcp = absl::UnknownError("no port tried");
    for (int i = 0; i < 20 && !tcp.ok(); ++i) {
      if (udp >= 0) close(udp);
      udp = BoundUdp(&port_);
      ASSERT_GE(udp, 0);
      tcp = runtime::Listen(Loopback(port_));
    }
    ASSERT_TRUE(tcp.ok()) << tcp.status();
    auto s = DnsServer::Start(loop_.get(), udp, *tcp, std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    thread_ = std::thread([this] { loop_->Run(); });
  }

  void OnLoop(std::function<void()> fn) {
    std::promise<void> done;
    loop_->Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  RunResult Dig(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/dig",        "@127.0.0.1", "-p",
                                     std::to_string(port_), "+tries=1",   "+time=3"};
    argv.insert(argv.end(), args.begin(), args.end());
    return test_support::Run(argv);
  }

  runtime::WorkloadDirectory dir_;
  DnsMetrics metrics_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<DnsServer> server_;
  std::thread thread_;
  test_support::Child dnsmasq_;
  int upstream_port_ = 0;
  int port_ = 0;
};

TEST_F(DnsServerTest, MeshNamesAnsweredOverUdpAndTcp) {
  Serve({});
  RunResult a = Dig({"+short", "reviews", "A"});
  EXPECT_EQ(a.out, "198.19.0.10\n") << a.err;
  RunResult aaaa = Dig({"+tcp", "+short", "reviews.default", "AAAA"});
  EXPECT_EQ(aaaa.out, "2001:db8:ffff::10\n") << aaaa.err;
  RunResult full = Dig({"reviews.default.svc.cluster.local"});
  EXPECT_TRUE(absl::StrContains(full.out, "status: NOERROR")) << full.out;
  EXPECT_TRUE(absl::StrContains(full.out, " 30 IN A\t198.19.0.10")) << full.out;
  EXPECT_EQ(metrics_.answered(), 3u);
  EXPECT_EQ(metrics_.requests(Transport::kUdp), 2u);
  EXPECT_EQ(metrics_.requests(Transport::kTcp), 1u);
  EXPECT_EQ(metrics_.upstream_requests(Transport::kUdp), 0u);
}

TEST_F(DnsServerTest, OtherNamesForwardedToTheUpstreamOverThePodsTransport) {
  Serve({});
  EXPECT_EQ(Dig({"+short", "outside.test"}).out, "192.0.2.7\n");
  EXPECT_EQ(Dig({"+tcp", "+short", "outside.test"}).out, "192.0.2.7\n");
  EXPECT_EQ(metrics_.upstream_requests(Transport::kUdp), 1u);
  EXPECT_EQ(metrics_.upstream_requests(Transport::kTcp), 1u);
  EXPECT_EQ(metrics_.upstream_failures(Transport::kUdp), 0u);
  std::string prom = metrics_.Prometheus();
  EXPECT_TRUE(absl::StrContains(
      prom, "istio_dns_upstream_request_duration_seconds_count{request_protocol=\"udp\"} 1"))
      << prom;
  EXPECT_TRUE(absl::StrContains(prom, "istio_dns_requests_total{request_protocol=\"tcp\"} 1"));
}

TEST_F(DnsServerTest, TruncatedUdpAnswerStaysTruncatedAndTheTcpRetryGetsItAll) {
  Serve({});
  RunResult udp = Dig({"+ignore", "+noedns", "big.test", "TXT"});
  EXPECT_TRUE(absl::StrContains(udp.out, " tc")) << udp.out;
  EXPECT_FALSE(absl::StrContains(udp.out, std::string(200, 'x') + "3")) << udp.out;
  RunResult retry = Dig({"+noedns", "big.test", "TXT"});
  EXPECT_TRUE(absl::StrContains(retry.out, std::string(200, 'x') + "3")) << retry.out;
  EXPECT_GE(metrics_.upstream_requests(Transport::kTcp), 1u);
}

TEST_F(DnsServerTest, UpstreamDownGivesServfail) {
  DnsServerOptions o;
  o.upstreams = {Loopback(FreePort())};  // nobody listens: refused at once
  Serve(std::move(o));
  RunResult udp = Dig({"outside.test"});
  EXPECT_TRUE(absl::StrContains(udp.out, "status: SERVFAIL")) << udp.out << udp.err;
  RunResult tcp = Dig({"+tcp", "outside.test"});
  EXPECT_TRUE(absl::StrContains(tcp.out, "status: SERVFAIL")) << tcp.out << tcp.err;
  EXPECT_GE(metrics_.upstream_failures(Transport::kUdp), 1u);
  EXPECT_GE(metrics_.upstream_failures(Transport::kTcp), 1u);
}

TEST_F(DnsServerTest, SilentUpstreamTimesOutToServfailThenTheNextResolverAnswers) {
  int hole_port = 0;
  int hole = BoundUdp(&hole_port);  // takes queries, never answers
  DnsServerOptions o;
  o.upstream_timeout = absl::Milliseconds(300);
  o.upstreams = {Loopback(hole_port)};
  Serve(std::move(o));
  RunResult r = Dig({"outside.test"});
  EXPECT_TRUE(absl::StrContains(r.out, "status: SERVFAIL")) << r.out;
  EXPECT_EQ(metrics_.upstream_failures(Transport::kUdp), 1u);
  close(hole);
}

TEST_F(DnsServerTest, FallsBackToTheNextResolver) {
  int hole_port = 0;
  int hole = BoundUdp(&hole_port);
  DnsServerOptions o;
  o.upstream_timeout = absl::Milliseconds(300);
  o.upstreams = {Loopback(hole_port), Loopback(upstream_port_)};
  Serve(std::move(o));
  EXPECT_EQ(Dig({"+short", "outside.test"}).out, "192.0.2.7\n");
  EXPECT_EQ(metrics_.upstream_failures(Transport::kUdp), 1u);
  close(hole);
}

TEST_F(DnsServerTest, InFlightLimitAnswersServfailAtOnce) {
  int hole_port = 0;
  int hole = BoundUdp(&hole_port);
  DnsServerOptions o;
  o.upstream_timeout = absl::Seconds(5);
  o.max_in_flight = 1;
  o.upstreams = {Loopback(hole_port)};
  Serve(std::move(o));
  int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  SocketAddress to = Loopback(port_);
  ASSERT_EQ(connect(c, to.sockaddr_ptr(), to.size()), 0);
  std::string q1 = BuildQuery("one.test", 1), q2 = BuildQuery("two.test", 2);
  ASSERT_EQ(send(c, q1.data(), q1.size(), 0), static_cast<ssize_t>(q1.size()));
  ASSERT_EQ(send(c, q2.data(), q2.size(), 0), static_cast<ssize_t>(q2.size()));
  pollfd p{c, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "no immediate answer to the query over the limit";
  char buf[512];
  ssize_t n = recv(c, buf, sizeof(buf), 0);
  ASSERT_GE(n, 12);
  EXPECT_EQ(buf[1], 2);         // the second query's ID
  EXPECT_EQ(buf[3] & 0x0f, 2);  // SERVFAIL
  EXPECT_EQ(metrics_.limited(), 1u);
  close(c);
  close(hole);
}

int ConnectTcp(int port) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  SocketAddress to = Loopback(port);
  if (connect(c, to.sockaddr_ptr(), to.size()) != 0) {
    close(c);
    return -1;
  }
  return c;
}

// ClosedByPeer waits up to 3 s for EOF or a reset on `fd`.
bool ClosedByPeer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 3000) != 1) return false;
  char b;
  return recv(fd, &b, 1, 0) <= 0;
}

TEST_F(DnsServerTest, TcpConnectionLimit) {
  DnsServerOptions o;
  o.max_tcp_connections = 2;
  Serve(std::move(o));
  int a = ConnectTcp(port_), b = ConnectTcp(port_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // Let the server accept both before the third arrives.
  for (int i = 0; i < 100; ++i) {
    size_t n = 0;
    OnLoop([&] { n = server_->tcp_connections(); });
    if (n == 2) break;
    usleep(10 * 1000);
  }
  int third = ConnectTcp(port_);
  ASSERT_GE(third, 0);
  EXPECT_TRUE(ClosedByPeer(third));
  EXPECT_EQ(metrics_.limited(), 1u);
  // The first two still work.
  std::string q = BuildQuery("reviews", 9);
  std::string framed = std::string(1, '\0') + static_cast<char>(q.size()) + q;
  ASSERT_EQ(send(a, framed.data(), framed.size(), 0), static_cast<ssize_t>(framed.size()));
  pollfd p{a, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 3000), 1);
  close(a);
  close(b);
  close(third);
}

TEST_F(DnsServerTest, PodReleasedWhileATcpConnectionIsOpen) {
  Serve({});
  int c = ConnectTcp(port_);
  ASSERT_GE(c, 0);
  ASSERT_EQ(send(c, "\x00\x20\x12", 3, 0), 3);  // half a query
  for (int i = 0; i < 100; ++i) {
    size_t n = 0;
    OnLoop([&] { n = server_->tcp_connections(); });
    if (n == 1) break;
    usleep(10 * 1000);
  }
  OnLoop([this] { server_.reset(); });
  EXPECT_TRUE(ClosedByPeer(c));
  EXPECT_LT(ConnectTcp(port_), 0) << "the listener outlived the server";
  close(c);
}

TEST(ResolvConfTest, ReadsNameserversAndSearch) {
  auto rc = ParseResolvConf(
      "# comment\nnameserver 192.0.2.53\nnameserver 2001:db8::53 ; v6\n"
      "domain corp.example\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n");
  ASSERT_TRUE(rc.ok()) << rc.status();
  ASSERT_EQ(rc->nameservers.size(), 2u);
  EXPECT_EQ(rc->nameservers[0].ToString(), "192.0.2.53:53");
  EXPECT_EQ(rc->nameservers[1].ToString(), "[2001:db8::53]:53");
  EXPECT_EQ(rc->search,
            (std::vector<std::string>{"default.svc.cluster.local", "svc.cluster.local"}));
  EXPECT_FALSE(ParseResolvConf("nameserver dns.example\n").ok());
}

TEST(ResolvConfTest, UpstreamListsAndTheNodesResolvConf) {
  auto list = ParseUpstreams("192.0.2.53:5353, [2001:db8::53]:53,198.18.0.1");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].ToString(), "192.0.2.53:5353");
  EXPECT_EQ((*list)[1].ToString(), "[2001:db8::53]:53");
  EXPECT_EQ((*list)[2].ToString(), "198.18.0.1:53");
  for (const char* bad : {"", "dns.example:53", "192.0.2.53:99999", "192.0.2.53,,"}) {
    auto r = ParseUpstreams(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }

  char path[] = "/tmp/ambient-resolv-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "search a.example\nnameserver 192.0.2.7\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto from_file = UpstreamsOrResolvConf("", path);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  ASSERT_EQ(from_file->size(), 1u);
  EXPECT_EQ((*from_file)[0].ToString(), "192.0.2.7:53");
  // An explicit list wins over the file.
  EXPECT_EQ((*UpstreamsOrResolvConf("192.0.2.8:53", path))[0].ToString(), "192.0.2.8:53");
  // A file without nameservers, and no file at all, are errors naming it.
  std::FILE* f = std::fopen(path, "w");
  ASSERT_NE(f, nullptr);
  std::fputs("search a.example\n", f);
  std::fclose(f);
  auto none = UpstreamsOrResolvConf("", path);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(none.status().message(), path));
  unlink(path);
  auto missing = UpstreamsOrResolvConf("", path);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), path));
}

}  // namespace
}  // namespace ambient::dns
