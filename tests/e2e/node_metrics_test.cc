// The example node proxy's HTTP endpoint (examples/node-proxy/metrics_server.h):
// what a Prometheus scraper and a readiness probe see, and that bad requests
// get an answer and change nothing.
#include "metrics_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/runtime/event_loop.h"
#include "e2e/http_fetch.h"

namespace ambient::examples {
namespace {

using e2e::Fetch;
using e2e::StatusLine;

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;
}

MetricsHandlers Fixed(std::string text, bool ready) {
  MetricsHandlers h;
  h.metrics = [text] { return text; };
  h.ready = [ready] { return ready; };
  return h;
}

TEST(HttpRespondTest, AnswersWhatAScraperAndAProbeAsk) {
  MetricsHandlers h = Fixed("istio_tcp_connections_opened_total 3\n", true);
  std::optional<std::string> r = HttpRespond("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", h);
  ASSERT_TRUE(r);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK");
  EXPECT_TRUE(absl::StrContains(*r, "Content-Type: text/plain; version=0.0.4"));
  EXPECT_TRUE(absl::StrContains(*r, "Content-Length: 37\r\n"));
  EXPECT_TRUE(absl::EndsWith(*r, "\r\n\r\nistio_tcp_connections_opened_total 3\n"));
  EXPECT_EQ(StatusLine(HttpRespond("GET /stats/prometheus HTTP/1.0\n\n", h)), "HTTP/1.1 200 OK");
  EXPECT_EQ(StatusLine(HttpRespond("GET /healthz/ready HTTP/1.1\r\n\r\n", h)), "HTTP/1.1 200 OK");
  EXPECT_EQ(StatusLine(HttpRespond("GET /healthz/ready HTTP/1.1\r\n\r\n", Fixed("", false))),
            "HTTP/1.1 503 Service Unavailable");
  r = HttpRespond("HEAD /metrics HTTP/1.1\r\n\r\n", h);
  ASSERT_TRUE(r);
  EXPECT_TRUE(absl::EndsWith(*r, "\r\n\r\n")) << "HEAD has no body";
  EXPECT_FALSE(HttpRespond("GET /metrics HTTP/1.1\r\nHost: a\r\n", h)) << "head not complete";
  EXPECT_FALSE(HttpRespond("", h));
}

TEST(HttpRespondTest, BadRequestsGetAClearStatus) {
  MetricsHandlers h = Fixed("x\n", true);
  EXPECT_EQ(StatusLine(HttpRespond("GET /nope HTTP/1.1\r\n\r\n", h)), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(StatusLine(HttpRespond("DELETE /metrics HTTP/1.1\r\n\r\n", h)),
            "HTTP/1.1 405 Method Not Allowed");
  for (const char* bad : {"\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n",
                          "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2\r\n\r\n",
                          "GET  /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n"}) {
    EXPECT_EQ(StatusLine(HttpRespond(bad, h)), "HTTP/1.1 400 Bad Request") << bad;
  }
  std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(MetricsServer::kMaxHead, 'a');
  EXPECT_EQ(StatusLine(HttpRespond(big, h)), "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(StatusLine(HttpRespond(big + "\r\n\r\n", h)),
            "HTTP/1.1 431 Request Header Fields Too Large");
  // Random bytes: always an answer or "need more", never a crash.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? "\r\n /"[rng() % 4] : rng());
    std::optional<std::string> r = HttpRespond(s, h);
    if (r) {
      EXPECT_TRUE(absl::StartsWith(*r, "HTTP/1.1 ")) << s;
    }
  }
}

TEST(MetricsServerTest, ServesTheCountersAsTheyMoveAndReadiness) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  auto metrics = std::make_shared<hbone::Metrics>();
  std::atomic<bool> ready{false};
  MetricsHandlers h;
  h.metrics = [metrics] { return metrics->Prometheus(); };
  h.ready = [&ready] { return ready.load(); };
  auto server = MetricsServer::New(loop->get(), "127.0.0.1:0", h);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->address().port();

  std::atomic<bool> stop{false};
  std::thread runner([&] {
    while (!stop.load()) (*loop)->RunFor(absl::Milliseconds(20));
  });
  EXPECT_TRUE(absl::StartsWith(Fetch(port, "GET /healthz/ready HTTP/1.1\r\n\r\n"),
                               "HTTP/1.1 503"));
  std::string before = Fetch(port, "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(before, "HTTP/1.1 200 OK")) << before;
  EXPECT_FALSE(absl::StrContains(before, "istio_tcp_connections_opened_total{"));

  hbone::ConnectionRecord rec;
  rec.direction = hbone::Direction::kInbound;
  rec.src_identity = "spiffe://cluster.local/ns/demo/sa/client";
  rec.bytes_sent = 100;
  rec.bytes_recv = 42;
  metrics->ConnectionOpened(rec);
  metrics->ConnectionClosed(rec);
  ready = true;
  EXPECT_TRUE(absl::StartsWith(Fetch(port, "GET /healthz/ready HTTP/1.1\r\n\r\n"),
                               "HTTP/1.1 200 OK"));
  std::string after = Fetch(port, "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(absl::StrContains(after, "istio_tcp_connections_opened_total{")) << after;
  EXPECT_TRUE(absl::StrContains(after, "istio_tcp_connections_closed_total{")) << after;
  EXPECT_TRUE(absl::StrContains(after, "} 100\n")) << after;

  // Bad input, half requests and oversized heads: answered or dropped,
  // and the server keeps serving.
  const char tls_hello[] = "\x16\x03\x01\x02\x00 \xff\r\n\r\n";
  EXPECT_TRUE(absl::StartsWith(Fetch(port, std::string(tls_hello, sizeof(tls_hello) - 1)),
                               "HTTP/1.1 400"));
  EXPECT_TRUE(absl::StartsWith(Fetch(port, "GET /metrics HTTP/1.1\r\nX: " +
                                               std::string(20000, 'b') + "\r\n\r\n"),
                               "HTTP/1.1 431"));
  EXPECT_EQ(Fetch(port, "GET /metr"), "");
  EXPECT_TRUE(absl::StartsWith(Fetch(port, "GET /metrics HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK"));
  stop = true;
  runner.join();
}

TEST(MetricsServerTest, FreedWithConnectionsOpenLeavesNoDescriptors) {
  int before = OpenFds();
  {
    auto loop = runtime::EventLoop::New();
    ASSERT_TRUE(loop.ok());
    auto server = MetricsServer::New(loop->get(), "127.0.0.1:0", Fixed("", true));
    ASSERT_TRUE(server.ok());
    int port = (*server)->address().port();
    std::vector<int> clients;
    for (int i = 0; i < 5; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
      (void)!send(fd, "GET /", 5, MSG_NOSIGNAL);
      clients.push_back(fd);
    }
    (*loop)->RunFor(absl::Milliseconds(50));
    server->reset();
    (*loop)->RunFor(absl::Milliseconds(10));
    for (int fd : clients) close(fd);
  }
  EXPECT_EQ(OpenFds(), before);
}

// Issue 17, finding 5: 64 idle connections filled every slot and 40/40
// readiness probes failed. Now a new connection replaces the oldest idle
// one, so probes keep being answered while idle connections keep coming.
TEST(MetricsServerTest, IdleConnectionsCannotStarveReadiness) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  auto server = MetricsServer::New(loop->get(), "127.0.0.1:0", Fixed("", true));
  ASSERT_TRUE(server.ok());
  int port = (*server)->address().port();
  std::atomic<bool> stop{false};
  std::thread runner([&] {
    while (!stop.load()) (*loop)->RunFor(absl::Milliseconds(20));
  });
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> idle;
  auto open_idle = [&](int n) {
    for (int i = 0; i < n; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
        idle.push_back(fd);
      } else {
        close(fd);
      }
    }
  };
  open_idle(static_cast<int>(MetricsServer::kMaxConnections));
  usleep(100000);
  int answered = 0;
  for (int probe = 0; probe < 10; ++probe) {
    open_idle(8);  // the attacker keeps topping up
    if (absl::StartsWith(Fetch(port, "GET /healthz/ready HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK")) {
      ++answered;
    }
  }
  EXPECT_EQ(answered, 10);
  stop = true;
  runner.join();
  for (int fd : idle) close(fd);
}

TEST(MetricsServerTest, BadAddressesAreErrors) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(MetricsServer::New(loop->get(), "nowhere", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = MetricsServer::New(loop->get(), "127.0.0.1:0", {});
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(MetricsServer::New(loop->get(), (*first)->address().ToString(), {}).ok());
}

}  // namespace
}  // namespace ambient::examples
