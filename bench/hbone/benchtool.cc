// hbone_benchtool: helpers for bench/hbone/pair_bench.sh.
//   hbone_benchtool certs DIR           write ca.pem, server.{pem,key}, client.{pem,key}
//   hbone_benchtool echo ADDR           echo server (thread per connection); prints its port
//   hbone_benchtool pingpong ADDR N [SIZE]   N round trips of SIZE bytes (default 64)
//                                       on one connection; prints p50/p90/p99/p99.9 in us
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "certs") return Certs(argv[2]);
  if (argc >= 3 && std::string(argv[1]) == "echo") return Echo(argv[2]);
  if (argc >= 4 && std::string(argv[1]) == "pingpong") {
    return PingPong(argv[2], std::atoi(argv[3]), argc >= 5 ? std::atoi(argv[4]) : 64);
  }
  std::fprintf(stderr, "usage: hbone_benchtool certs DIR | echo ADDR | pingpong ADDR N [SIZE]\n");
  return 2;
}
