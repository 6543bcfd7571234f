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

// SocketMaker returns a new AF_INET stream socket inside some netns, or -1.
using SocketMaker = std::function<int()>;

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

inline sockaddr_in V4(const char* ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// AppServer listens on ip:port inside a netns; each connection is read to
// EOF and answered "pong from <ip>: <what it read>"; it records the peer IPs.
class AppServer {
 public:
  // `socket` makes a TCP socket inside the server's netns.
  AppServer(const SocketMaker& socket, const char* ip, int port) {
    Fd fd(socket());
    if (!fd.valid()) return;
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a = V4(ip, port);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return;
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
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      Fd c(accept(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len));
      if (!c.valid()) continue;
      char ip[INET_ADDRSTRLEN] = {0};
      inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
      {
        std::lock_guard<std::mutex> lock(mu_);
        peers_.push_back(ip);
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

// Exchange connects from inside a netns (sockets from `socket`) to ip:port, sends `message`, half-closes
// and returns everything read until EOF (or an error text starting "error:").
inline std::string Exchange(const SocketMaker& socket, const char* ip, int port,
                     const std::string& message) {
  Fd owned(socket());
  if (!owned.valid()) return "error: cannot make a socket in the namespace";
  const Fd* fd = &owned;
  SetTimeouts(fd->get());
  sockaddr_in a = V4(ip, port);
  if (connect(fd->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
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
