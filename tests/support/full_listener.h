// full_listener.h: a loopback listener whose accept queue is
// full, so the kernel drops further SYNs and a connect to it stays pending
// (retransmitting on loopback only) until the connector gives up. Used to
// keep an upstream dial in flight.
#ifndef AMBIENT_TESTS_SUPPORT_FULL_LISTENER_H_
#define AMBIENT_TESTS_SUPPORT_FULL_LISTENER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ambient::test_support {

struct FullListener {
  int listen_fd = -1;
  std::vector<int> queued;
  std::string address;  // "127.0.0.1:PORT"

  FullListener() {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listen_fd, 0), 0);
    socklen_t len = sizeof(a);
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    // Backlog 0 holds one connection; a second one makes sure.
    for (int i = 0; i < 2; ++i) {
      int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      queued.push_back(c);
    }
    usleep(20000);
  }
  ~FullListener() {
    for (int c : queued) close(c);
    close(listen_fd);
  }
  FullListener(const FullListener&) = delete;
  FullListener& operator=(const FullListener&) = delete;
};

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_FULL_LISTENER_H_
