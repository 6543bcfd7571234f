// Test apps for the end-to-end tests: a TCP server that answers what it
// read and records its peers, and a client exchange, both on sockets made
// inside a network namespace by a caller-supplied function.
#ifndef AMBIENT_TESTS_E2E_POD_APPS_H_
#define AMBIENT_TESTS_E2E_POD_APPS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ambient::e2e {

// SocketMaker returns a new stream socket of `family` inside some netns, or -1.
using SocketMaker = std::function<int(int family)>;

// Fd closes its descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

inline void SetTimeouts(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Sockaddr fills `out` with ip:port (IPv4 or IPv6) and returns its length,
// or 0 when `ip` is not a numeric address.
inline socklen_t Sockaddr(const char* ip, int port, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return sizeof(sockaddr_in);
  }
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return sizeof(sockaddr_in6);
  }
  return 0;
}

// IpOf formats the IP of an IPv4 or IPv6 socket address.
inline std::string IpOf(const sockaddr_storage& a) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, ip, sizeof(ip));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr, ip, sizeof(ip));
  }
  return ip;
}

// AppServer listens on ip:port inside a netns; each connection is read to
// EOF and answered "pong from <ip>: <what it read>"; it records the peer IPs.
class AppServer {
 public:
  // `socket` makes a TCP socket inside the server's netns.
  AppServer(const SocketMaker& socket, const char* ip, int port) {
    sockaddr_storage a;
    socklen_t len = Sockaddr(ip, port, &a);
    if (len == 0) return;
    Fd fd(socket(a.ss_family));
    if (!fd.valid()) return;
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return;
    if (listen(fd.get(), 16) != 0) return;
    fd_ = std::move(fd);
    ip_ = ip;
    thread_ = std::thread([this] { Serve(); });
  }
  ~AppServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return fd_.valid(); }
  std::vector<std::string> peers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      Fd c(accept(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len));
      if (!c.valid()) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        peers_.push_back(IpOf(peer));
      }
      SetTimeouts(c.get());
      std::string got;
      char buf[4096];
      for (;;) {
        ssize_t n = read(c.get(), buf, sizeof(buf));
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      std::string reply = absl::StrCat("pong from ", ip_, ": ", got);
      (void)!write(c.get(), reply.data(), reply.size());
    }
  }

  Fd fd_;
  std::string ip_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> peers_;
};

// Exchange connects from inside a netns (sockets from `socket`) to ip:port,
// sends `message`, half-closes and returns everything read until EOF (or an
// error text starting "error:").
inline std::string Exchange(const SocketMaker& socket, const char* ip, int port,
                            const std::string& message) {
  sockaddr_storage a;
  socklen_t len = Sockaddr(ip, port, &a);
  if (len == 0) return "error: bad address";
  Fd owned(socket(a.ss_family));
  if (!owned.valid()) return "error: cannot make a socket in the namespace";
  const Fd* fd = &owned;
  SetTimeouts(fd->get());
  if (connect(fd->get(), reinterpret_cast<sockaddr*>(&a), len) != 0) {
    return absl::StrCat("error: connect: ", std::strerror(errno));
  }
  if (write(fd->get(), message.data(), message.size()) != static_cast<ssize_t>(message.size())) {
    return absl::StrCat("error: write: ", std::strerror(errno));
  }
  shutdown(fd->get(), SHUT_WR);
  std::string got;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd->get(), buf, sizeof(buf));
    if (n < 0) return absl::StrCat("error: read: ", std::strerror(errno), " after \"", got, "\"");
    if (n == 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

}  // namespace ambient::e2e

#endif  // AMBIENT_TESTS_E2E_POD_APPS_H_
