// dns_bench: the DNS proxy (ambient/dns/server.h) on loopback against
// dnsmasq answering directly, in the same run. For each of
//   mesh       a service name the proxy answers itself,
//   forwarded  a name the proxy forwards to dnsmasq,
//   direct     the same name asked of dnsmasq itself,
// it sends UDP queries one at a time (ping-pong) for --seconds and prints
// answered queries per second and p50/p99 latency, then the same with
// --window queries in flight for throughput. Usage:
//   dns_bench [--seconds N] [--window N]
// Needs /usr/sbin/dnsmasq (scripts/install-deps.sh); no root.
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ambient/dns/server.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using ambient::SocketAddress;

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

std::string Query(const std::string& name, uint16_t id) {
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

int Connected(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  return fd;
}

struct Result {
  double qps = 0;
  double p50_us = 0, p99_us = 0;
  long lost = 0;
};

// PingPong: one query at a time; answers must carry an answer record.
Result PingPong(int port, const std::string& name, double seconds) {
  int fd = Connected(port);
  std::vector<double> lat;
  Result r;
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  uint16_t id = 1;
  char buf[1500];
  auto start = Clock::now();
  while (Clock::now() < end) {
    std::string q = Query(name, ++id);
    auto t0 = Clock::now();
    send(fd, q.data(), q.size(), 0);
    pollfd p{fd, POLLIN, 0};
    bool got = false;
    while (poll(&p, 1, 1000) == 1) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n >= 12 && static_cast<uint8_t>(buf[1]) == (id & 0xff) && buf[7] >= 1) {
        got = true;
        break;
      }
    }
    if (!got) {
      r.lost++;
      continue;
    }
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  double wall = std::chrono::duration<double>(Clock::now() - start).count();
  close(fd);
  if (lat.empty()) return r;
  std::sort(lat.begin(), lat.end());
  r.qps = lat.size() / wall;
  r.p50_us = lat[lat.size() / 2];
  r.p99_us = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  return r;
}

// Windowed: keep `window` queries in flight; answered per second.
double Windowed(int port, const std::string& name, double seconds, int window) {
  int fd = Connected(port);
  char buf[1500];
  long answered = 0;
  uint16_t id = 0;
  int in_flight = 0;
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    while (in_flight < window) {
      std::string q = Query(name, ++id);
      send(fd, q.data(), q.size(), 0);
      in_flight++;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) != 1) {
      in_flight = 0;  // lost ones: refill the window
      continue;
    }
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
      answered++;
      in_flight--;
    }
  }
  double wall = std::chrono::duration<double>(Clock::now() - start).count();
  close(fd);
  return answered / wall;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  int window = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--seconds") seconds = std::atof(argv[i + 1]);
    if (std::string(argv[i]) == "--window") window = std::atoi(argv[i + 1]);
  }
  if (access("/usr/sbin/dnsmasq", X_OK) != 0) {
    std::fprintf(stderr, "dns_bench: /usr/sbin/dnsmasq is missing\n");
    return 1;
  }
  int up_port = 0;
  close(BoundUdp(&up_port));
  std::vector<std::string> args = {"/usr/sbin/dnsmasq",
                                   "--keep-in-foreground",
                                   "--no-resolv",
                                   "--no-hosts",
                                   "--conf-file=/dev/null",
                                   "--pid-file=",
                                   "--listen-address=127.0.0.1",
                                   "--bind-interfaces",
                                   absl::StrCat("--port=", up_port),
                                   absl::StrCat("--user=", getpwuid(getuid())->pw_name),
                                   absl::StrCat("--group=", getgrgid(getgid())->gr_name),
                                   "--host-record=outside.test,192.0.2.7",
                                   "--cache-size=1000"};
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t dnsmasq = -1;
  if (posix_spawn(&dnsmasq, cargv[0], nullptr, nullptr, cargv.data(), environ) != 0) {
    std::fprintf(stderr, "dns_bench: cannot start dnsmasq\n");
    return 1;
  }

  ambient::runtime::WorkloadDirectory dir;
  ambient::runtime::Service svc;
  svc.name = "reviews";
  svc.ns = "default";
  svc.hostname = "reviews.default.svc.cluster.local";
  svc.vips = {*ambient::runtime::ParseNetworkAddress("198.19.0.10")};
  svc.ports = {{9080, 9080}};
  (void)dir.UpsertService(svc);
  auto loop = ambient::runtime::EventLoop::New();
  int port = 0;
  int udp = BoundUdp(&port);
  ambient::dns::DnsServerOptions o;
  o.directory = &dir;
  o.pod.ns = "default";
  o.upstreams = {*ambient::SocketAddress::Parse(absl::StrCat("127.0.0.1:", up_port))};
  o.max_in_flight = 1024;
  auto server = ambient::dns::DnsServer::Start(loop->get(), udp, -1, std::move(o));
  if (!server.ok()) {
    std::fprintf(stderr, "dns_bench: %s\n", server.status().ToString().c_str());
    kill(dnsmasq, SIGTERM);
    return 1;
  }
  std::thread t([&] { (*loop)->Run(); });
  // Wait for dnsmasq.
  for (int i = 0; i < 50 && PingPong(up_port, "outside.test", 0.05).qps == 0; ++i) usleep(100000);

  struct Case {
    const char* what;
    int port;
    const char* name;
  } cases[] = {{"mesh (proxy answers)", port, "reviews"},
               {"forwarded (proxy -> dnsmasq)", port, "outside.test"},
               {"direct (dnsmasq)", up_port, "outside.test"}};
  std::printf("%-30s %12s %10s %10s %16s\n", "case", "ping-pong/s", "p50 us", "p99 us",
              absl::StrCat("window ", window, " q/s").c_str());
  for (const Case& c : cases) {
    Result r = PingPong(c.port, c.name, seconds);
    double w = Windowed(c.port, c.name, seconds, window);
    std::printf("%-30s %12.0f %10.1f %10.1f %16.0f%s\n", c.what, r.qps, r.p50_us, r.p99_us, w,
                r.lost ? absl::StrCat("  (", r.lost, " lost)").c_str() : "");
  }
  (*loop)->Stop();
  t.join();
  server->reset();
  kill(dnsmasq, SIGTERM);
  waitpid(dnsmasq, nullptr, 0);
  return 0;
}
