// Test support: a TCP echo server on 127.0.0.1 (an ephemeral port) that
// sends back every byte it reads, one connection after another, for tests that
// need a tunnel or proxy target. It stops when destroyed.
#ifndef AMBIENT_TESTS_SUPPORT_ECHO_LISTENER_H_
#define AMBIENT_TESTS_SUPPORT_ECHO_LISTENER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace ambient::test_support {

class EchoListener {
 public:
  EchoListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 16);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        char buf[4096];
        for (;;) {
          ssize_t n = read(c, buf, sizeof(buf));
          if (n <= 0) break;
          if (send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        }
        close(c);
      }
    });
  }
  ~EchoListener() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  const std::string& address() const { return address_; }

 private:
  int fd_;
  std::string address_;
  std::thread thread_;
};

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_ECHO_LISTENER_H_
