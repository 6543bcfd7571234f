// hbone_benchtool: helpers for bench/hbone/pair_bench.sh.
//   hbone_benchtool certs DIR           write ca.pem, server.{pem,key}, client.{pem,key}
//   hbone_benchtool echo ADDR           echo server (thread per connection); prints its port
//   hbone_benchtool pingpong ADDR N [SIZE]   N round trips of SIZE bytes (default 64)
//                                       on one connection; prints p50/p90/p99/p99.9 in us;
//                                       with BENCH_CDF_FILE set, also writes the latency
//                                       distribution there ("percentile us" per line)
//   hbone_benchtool echo-epoll ADDR     single-threaded echo server for many connections
//   hbone_benchtool idle ADDR N         open N connections, 1-byte echo on each, print
//                                       "ready", hold them until stdin closes
//   hbone_benchtool conns ADDR N        N times in a row: connect, 1-byte echo, close
//                                       (through a forwarder: one new tunnel each on
//                                       its pooled connection); prints p50/p90/p99 in
//                                       us of connect -> echoed byte, and tunnels/s
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hbone/test_pki.h"

namespace {

using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;

bool ParseAddr(const std::string& text, sockaddr_in* a) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  *a = sockaddr_in{};
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<uint16_t>(std::atoi(text.c_str() + colon + 1)));
  return inet_pton(AF_INET, text.substr(0, colon).c_str(), &a->sin_addr) == 1;
}

int Certs(const std::string& dir) {
  TestCa ca;
  KeyAndCert server = ca.Leaf("spiffe://cluster.local/ns/bench/sa/server");
  KeyAndCert client = ca.Leaf("spiffe://cluster.local/ns/bench/sa/client");
  std::ofstream(dir + "/ca.pem") << ca.CaPem();
  std::ofstream(dir + "/server.pem") << TestCa::CertPem(server);
  std::ofstream(dir + "/server.key") << TestCa::KeyPem(server);
  std::ofstream(dir + "/client.pem") << TestCa::CertPem(client);
  std::ofstream(dir + "/client.key") << TestCa::KeyPem(client);
  return 0;
}

int Echo(const std::string& addr) {
  sockaddr_in a;
  if (!ParseAddr(addr, &a)) return 2;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4096) != 0) {
    perror("echo: bind/listen");
    return 1;
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  for (;;) {
    int c = accept(fd, nullptr, nullptr);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::thread([c] {
      std::vector<char> buf(65536);
      for (;;) {
        ssize_t n = read(c, buf.data(), buf.size());
        if (n <= 0) break;
        if (write(c, buf.data(), static_cast<size_t>(n)) != n) break;
      }
      shutdown(c, SHUT_WR);
      close(c);
    }).detach();
  }
}

double NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int PingPong(const std::string& addr, int n, size_t size) {
  sockaddr_in a;
  if (!ParseAddr(addr, &a)) return 2;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    perror("pingpong: connect");
    return 1;
  }
  std::vector<char> msg(size, 'p');
  std::vector<char> buf(size);
  std::vector<double> rtt;
  rtt.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n + 100; ++i) {  // the first 100 warm up
    double t0 = NowUs();
    if (write(fd, msg.data(), size) != static_cast<ssize_t>(size)) return 1;
    size_t got = 0;
    while (got < size) {
      ssize_t r = read(fd, buf.data() + got, size - got);
      if (r <= 0) {
        std::fprintf(stderr, "pingpong: connection ended after %d round trips\n", i);
        return 1;
      }
      got += static_cast<size_t>(r);
    }
    if (i >= 100) rtt.push_back(NowUs() - t0);
  }
  close(fd);
  std::sort(rtt.begin(), rtt.end());
  auto pct = [&](double p) { return rtt[static_cast<size_t>(p * (rtt.size() - 1))]; };
  std::printf("p50=%.1f p90=%.1f p99=%.1f p99.9=%.1f\n", pct(0.5), pct(0.9), pct(0.99),
              pct(0.999));
  if (const char* cdf = std::getenv("BENCH_CDF_FILE"); cdf != nullptr && *cdf != '\0') {
    std::ofstream out(cdf);
    for (int i = 0; i <= 200; ++i) {
      // 1 % steps, then 0.01 % steps through the tail up to the maximum.
      double p = std::min(1.0, i < 100 ? i / 100.0 : 0.99 + (i - 100) * 0.0001);
      out << p * 100 << ' ' << pct(p) << '\n';
    }
  }
  return 0;
}

int EchoEpoll(const std::string& addr) {
  sockaddr_in a;
  if (!ParseAddr(addr, &a)) return 2;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4096) != 0) {
    perror("echo-epoll: bind/listen");
    return 1;
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
  std::fflush(stdout);
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  epoll_event events[256];
  char buf[65536];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int cfd = events[i].data.fd;
      if (cfd == fd) {
        for (;;) {
          int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(cfd, buf, sizeof(buf));
      if (r > 0) {
        (void)!write(cfd, buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EAGAIN) {
        epoll_ctl(ep, EPOLL_CTL_DEL, cfd, nullptr);
        close(cfd);
      }
    }
  }
}

int Idle(const std::string& addr, int n) {
  sockaddr_in a;
  if (!ParseAddr(addr, &a)) return 2;
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      std::fprintf(stderr, "idle: connection %d: %s\n", i, std::strerror(errno));
      return 1;
    }
    char c = 'i';
    if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
      std::fprintf(stderr, "idle: no echo on connection %d\n", i);
      return 1;
    }
    fds.push_back(fd);
  }
  std::printf("ready %d\n", n);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  for (int fd : fds) close(fd);
  return 0;
}

int Conns(const std::string& addr, int n) {
  sockaddr_in a;
  if (!ParseAddr(addr, &a)) return 2;
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  double start = NowUs();
  for (int i = 0; i < n + 50; ++i) {  // the first 50 warm up
    if (i == 50) start = NowUs();
    double t0 = NowUs();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      std::fprintf(stderr, "conns: connect %d: %s\n", i, std::strerror(errno));
      return 1;
    }
    char c = 'c';
    if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
      std::fprintf(stderr, "conns: no echo on connection %d\n", i);
      return 1;
    }
    if (i >= 50) us.push_back(NowUs() - t0);
    shutdown(fd, SHUT_WR);
    while (read(fd, &c, 1) > 0) {
    }
    close(fd);
  }
  double secs = (NowUs() - start) / 1e6;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<size_t>(p * (us.size() - 1))]; };
  std::printf("p50=%.1f p90=%.1f p99=%.1f per_s=%.0f\n", pct(0.5), pct(0.9), pct(0.99),
              static_cast<double>(n) / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "certs") return Certs(argv[2]);
  if (argc >= 3 && std::string(argv[1]) == "echo") return Echo(argv[2]);
  if (argc >= 4 && std::string(argv[1]) == "pingpong") {
    return PingPong(argv[2], std::atoi(argv[3]), argc >= 5 ? std::atoi(argv[4]) : 64);
  }
  if (argc >= 3 && std::string(argv[1]) == "echo-epoll") return EchoEpoll(argv[2]);
  if (argc >= 4 && std::string(argv[1]) == "idle") return Idle(argv[2], std::atoi(argv[3]));
  if (argc >= 4 && std::string(argv[1]) == "conns") return Conns(argv[2], std::atoi(argv[3]));
  std::fprintf(stderr,
               "usage: hbone_benchtool certs DIR | echo ADDR | echo-epoll ADDR | pingpong ADDR N "
               "[SIZE] | idle ADDR N | conns ADDR N\n");
  return 2;
}
